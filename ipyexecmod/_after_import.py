# SPDX-License-Identifier: MIT
"""Run a function once a package is imported, in whatever cell imports it.

ipyexecmod prepares Dask and Ray for cell modules as soon as the notebook imports them,
not at ``%load_ext`` (importing them costs seconds) and not at the next cell (a cell
that imports Dask, makes a client and submits a task would find nothing prepared).
:data:`hooks`, a finder first on :data:`sys.meta_path` while it waits for a package,
lets the other finders find it and wraps the loader they give for the time the package's
``__init__`` runs; then it puts the package's own loader back in ``__loader__`` and
``__spec__`` and calls the functions waiting.  Nothing of it stays on the package.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from importlib.abc import Loader
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

from ._warnings import warn

__all__ = ["AfterImport", "hooks"]

Callback = Callable[[], object]


class AfterImport:
    """The finder that waits for top-level packages to be imported; see the module."""

    def __init__(self) -> None:
        self.waiting: dict[str, list[Callback]] = {}

    def call_after(self, name: str, callback: Callback) -> None:
        """Call ``callback()`` once top-level package ``name`` is imported: now, if it is."""
        if sys.modules.get(name) is not None:  # None: blocked, as if not installed
            _call(callback, name)
            return
        callbacks = self.waiting.setdefault(name, [])
        if callback not in callbacks:
            callbacks.append(callback)
        self.keep_waiting()

    def keep_waiting(self) -> None:
        """Be on ``sys.meta_path`` while a callback waits (a failed definition puts
        ``sys.meta_path`` back as it was before it, without this finder)."""
        if self.waiting and self not in sys.meta_path:
            sys.meta_path.insert(0, self)

    def cancel(self, callback: Callback) -> None:
        """Stop waiting to call ``callback``; leave ``sys.meta_path`` once none wait."""
        for callbacks in self.waiting.values():
            if callback in callbacks:
                callbacks.remove(callback)
        self.waiting = {name: callbacks for name, callbacks in self.waiting.items() if callbacks}
        if not self.waiting and self in sys.meta_path:
            sys.meta_path.remove(self)

    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if path is not None or name not in self.waiting:
            return None
        spec = _found_by_others(self, name, path, target)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _ThenCall(spec.loader, self, name)
        return spec

    def imported(self, name: str) -> None:
        for callback in self.waiting.pop(name, []):
            _call(callback, name)
        if not self.waiting and self in sys.meta_path:
            sys.meta_path.remove(self)


class _ThenCall(Loader):
    """A package's loader, and then the functions waiting for it."""

    def __init__(self, loader: Loader, hooks: AfterImport, name: str) -> None:
        self.loader = loader
        self.hooks = hooks
        self.name = name

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        try:
            self.loader.exec_module(module)
        finally:
            module.__loader__ = self.loader
            if module.__spec__ is not None:
                module.__spec__.loader = self.loader
        self.hooks.imported(self.name)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.loader, attribute)  # resources, source: the package's own


def _found_by_others(
    finder: object, name: str, path: Sequence[str] | None, target: ModuleType | None
) -> ModuleSpec | None:
    for other in list(sys.meta_path):
        if other is finder:
            continue
        find_spec = getattr(other, "find_spec", None)
        spec = find_spec(name, path, target) if find_spec is not None else None
        if spec is not None:
            return spec  # type: ignore[no-any-return]
    return None


def _call(callback: Callback, name: str) -> None:
    try:
        callback()
    except Exception as exc:  # the import itself went well: the user's cell goes on
        warn(f"ipyexecmod could not prepare {name} for cell modules: {exc}", RuntimeWarning)


#: The one finder of this process.
hooks = AfterImport()
