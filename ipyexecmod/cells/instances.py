# SPDX-License-Identifier: MIT
"""Moving live instances of a cell module's older classes to its current ones.

:func:`update_instances` finds (with one :func:`gc.get_objects` walk) every instance
whose class an older version of the module defined, from any earlier version, and
gives it the current class of the same qualified name, by the same ``__class__``
assignment that CPython checks for a compatible layout, so that ``isinstance`` holds
and its methods are the new ones.  Its attributes are left as they are.  Decisions:

- An instance whose ``__class__`` CPython will not change (other ``__slots__``, another
  builtin base, an immutable base such as ``int``) stays, with CPython's reason.
- A class that the new version no longer defines (or that is no longer a class): its
  instances stay.
- Enum members stay: they are the singletons of their enum, and a moved one would be
  a member of none (``NewEnum.A is old_member`` could never hold); use
  ``NewEnum[member.name]``.
- Dataclasses, frozen ones too: moved if the new class has the same fields; a frozen
  one's ``__setattr__`` refuses every assignment, so the class is set through
  :meth:`object.__setattr__` (CPython's own layout check still applies).  Instances of
  a dataclass whose fields changed stay: the new methods would read fields they lack.
- ``__init_subclass__`` registries and ``functools.singledispatch`` dispatchers are not
  touched: running the new version registered its classes already.  A moved instance
  dispatches on its new class; a registration that only the old class has (in a
  dispatcher of another module) is no longer reached, and it keeps the old class
  alive, which the ``stale`` row of ``%modinfo`` then shows.
"""

from __future__ import annotations

import dataclasses
import enum
import gc
import sys
from collections import Counter
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .registry import CellModuleFinder

__all__ = ["Moved", "update_instances"]


@dataclass
class Moved:
    """What :func:`update_instances` did to the instances of module ``name``'s old classes."""

    name: str
    #: How many instances were moved, by qualified name.
    moved: Counter[str] = field(default_factory=Counter)
    #: Those left, by qualified name: how many, and why.
    left: dict[str, tuple[int, str]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.moved or self.left)

    def __str__(self) -> str:
        """One line: what moved, what was left and why."""
        parts = []
        if self.moved:
            moved = ", ".join(_count(n, f"{self.name}.{q}") for q, n in self.moved.items())
            parts.append(f"moved {moved} to the new version")
        if self.left:
            left = "; ".join(
                f"{_count(n, f'{self.name}.{q}')} ({why})" for q, (n, why) in self.left.items()
            )
            parts.append(f"left {left} (see %modinfo {self.name})")
        return "; ".join(parts) or "no instances of older versions"


def _count(n: int, qualname: str) -> str:
    return f"{n} instance{'' if n == 1 else 's'} of {qualname}"


def update_instances(finder: CellModuleFinder, name: str) -> Moved:
    """Move every live instance of cell module ``name``'s replaced classes, from any
    earlier version, to the class of the same qualified name in the current one
    (see the module docstring for what is not moved, and why).

    Raises KeyError if ``name`` is not a cell module imported now.
    """
    replaced = finder.modules[name].replaced
    module = sys.modules[name]
    result = Moved(name)
    old = {id(cls): cls for cls in replaced.classes()}
    if not old:
        return result
    reasons = {key: _reason_not_to_move(cls, module) for key, cls in old.items()}
    targets = {key: _resolve(module, cls.__qualname__) for key, cls in old.items()}
    counts: Counter[int] = Counter()
    for obj in [obj for obj in gc.get_objects() if id(type(obj)) in old]:
        key = id(type(obj))
        counts[key] += 1
        if reasons[key] is None:
            reasons[key] = _move(obj, targets[key])  # the same for every instance of a class
    for key, cls in old.items():  # in the order the classes were replaced: a stable line
        replaced.set_reason(cls, reasons[key])
        reason, count = reasons[key], counts[key]
        if isinstance(cls, enum.EnumMeta):
            continue  # every member lives in its class: %modinfo's stale row counts those held
        if reason is None and count:
            result.moved[cls.__qualname__] += count
        elif reason is not None and count:
            before, _ = result.left.get(cls.__qualname__, (0, ""))
            result.left[cls.__qualname__] = (before + count, reason)
    return result


def _move(obj: object, new: Any) -> str | None:
    """Give ``obj`` class ``new``; why it could not, or ``None``."""
    try:
        # Not obj.__class__ = new: a class's own __setattr__ (a frozen dataclass's) refuses it.
        object.__setattr__(obj, "__class__", new)
    except TypeError as exc:  # CPython's layout check: "... object layout differs from ..."
        return f"its instances' layout changed (__slots__, or a built-in base): {exc}"
    except AttributeError as exc:  # a class's own __class__ property
        return str(exc)
    return None


def _resolve(module: ModuleType, qualname: str) -> Any:
    """The object at ``qualname`` (``C`` or ``C.Inner``) in ``module``, or ``None``."""
    value: Any = module
    for part in qualname.split("."):
        value = vars(value).get(part) if hasattr(value, "__dict__") else None
    return value


def _reason_not_to_move(old: type, module: ModuleType) -> str | None:
    """Why no instance of ``old`` may move to the current class of its name, or ``None``."""
    name, qualname = module.__name__, old.__qualname__
    new = _resolve(module, qualname)
    if not isinstance(new, type):
        what = "no longer defines" if new is None else "no longer has a class named"
        return f"{name} {what} {qualname}"
    if isinstance(old, enum.EnumMeta):
        return f"enum members are not moved: use {name}.{qualname}[member.name]"
    if dataclasses.is_dataclass(old) and dataclasses.is_dataclass(new):
        before, after = _fields(old), _fields(new)
        if before != after:
            return f"its fields changed from ({', '.join(before)}) to ({', '.join(after)})"
    return None


def _fields(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]
