# SPDX-License-Identifier: MIT
"""What a worker gets for a cell module it cannot run: a module whose names can be
unpickled, and raise :class:`ImportError` when used.

A task's function, class or instance is resolved as the task is unpickled.  If that
raised, the pool could not tell the caller: ``concurrent.futures`` reports a broken
pool, and ``multiprocessing.Pool`` loses the task and waits forever.  So every name of
such a module resolves to a stand-in class: calling it (a function, a class), or using
an instance of it that a task received, raises the ImportError that says why, from the
task, and so from ``future.result()``, ``AsyncResult.get()`` or joblib, in the caller.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

__all__ = ["Unavailable"]


def _is_special(name: str) -> bool:
    return name.startswith("__") and name.endswith("__")


class _StandIn(type):
    """The class of stand-ins: calling one raises; any attribute is a stand-in too."""

    _module: str
    _reason: str

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        raise ImportError(cls._reason, name=cls._module)

    def __getattr__(cls, attribute: str) -> Any:
        if _is_special(attribute):
            raise AttributeError(attribute)
        return _stand_in(cls._module, f"{cls.__qualname__}.{attribute}", cls._reason)


class _Instance:
    """An instance that a task received of a class that is a stand-in: its state is
    kept (pickle sets it), and anything else it is asked for raises."""

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict, slots)
            state = {**(state[0] or {}), **(state[1] or {})}
        if isinstance(state, dict):
            vars(self).update(state)

    def __getattr__(self, attribute: str) -> Any:
        if _is_special(attribute):
            raise AttributeError(attribute)
        cls = type(self)
        raise ImportError(cls._reason, name=cls._module)  # type: ignore[attr-defined]


def _stand_in(module: str, qualname: str, reason: str) -> _StandIn:
    cls = _StandIn(qualname.rpartition(".")[2], (_Instance,), {"_module": module})
    cls.__qualname__, cls.__module__, cls._reason = qualname, module, reason
    return cls


class Unavailable(ModuleType):
    """A cell module this process cannot run, for ``reason``; see the module docstring."""

    def __init__(self, name: str, reason: str, *, is_package: bool = False) -> None:
        super().__init__(name, f"ipyexecmod: {reason}")
        self.__reason = reason
        if is_package:
            self.__path__: list[str] = []

    @classmethod
    def instead_of(cls, module: ModuleType, reason: str) -> None:
        """Make ``module``, whose code failed as it ran, one of these: what its code
        defined before it failed goes, so that every name says why."""
        namespace = vars(module)
        kept = {name: value for name, value in namespace.items() if _is_special(name)}
        namespace.clear()
        namespace.update(kept)
        module.__class__ = cls
        module._Unavailable__reason = reason  # type: ignore[attr-defined]

    def __getattr__(self, attribute: str) -> Any:
        if _is_special(attribute):
            raise AttributeError(attribute)
        stand_in = _stand_in(self.__name__, attribute, self.__reason)
        setattr(self, attribute, stand_in)  # the same object each time: pickle checks it
        return stand_in
