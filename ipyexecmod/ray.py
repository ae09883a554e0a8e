# SPDX-License-Identifier: MIT
"""Cell modules in Ray tasks and actors: pickled by value, as a plain cell's code is.

Ray pickles a function or class defined in a plain cell (``__main__``) by value,
with its vendored cloudpickle, and ships it with the task; one from an importable
module goes by reference, and a worker that cannot import a cell module fails
with "The remote function failed to import on the worker".  :func:`enable` tells
Ray's cloudpickle (``ray.cloudpickle``, not the ``cloudpickle`` package Dask uses)
to pickle every cell module by value, with
:func:`ray.cloudpickle.register_pickle_by_value`, so cell modules work exactly as
plain cells do, on a local runtime and on a remote cluster alike, and nothing is
written on the workers::

    import ipyexecmod.ray
    ipyexecmod.ray.enable()          # %load_ext ipyexecmod does this itself
    ray.get(ray.remote(geo.area).remote(2.0))

What travels with a task is the code at the time Ray pickles it: after a
redefinition, the next ``ray.remote(geo.area)`` and the next actor run the new
version on every worker; a handle made before, and an actor created before, keep
theirs.  The registration is by name, so one per top-level cell module (a package
covers its submodules), made at :func:`enable` and, once Ray is imported, at each
first definition of a top-level name.

A cell module whose name hides another module (defined with ``force``) is
registered too: by value it hides nothing on the workers, where the name stays the
other module's.

:func:`install` is what ``%load_ext ipyexecmod`` calls: :func:`enable` at once if
Ray is imported, or else the moment ``import ray`` finishes (a finder on
:data:`sys.meta_path` that answers for the name ``ray`` only, with the real spec
whose loader calls :func:`enable` after ``exec_module``).  :func:`uninstall` undoes
all of it.  Importing this module imports neither Ray nor IPython.
"""

from __future__ import annotations

import sys
from importlib import import_module
from importlib.machinery import ModuleSpec, PathFinder
from types import ModuleType
from typing import Any

from . import cells

__all__ = ["RayImportHook", "disable", "enable", "enabled", "install", "registered", "uninstall"]

#: The names this module registered with Ray's cloudpickle (and only those).
_registered: set[str] = set()


def enable() -> None:
    """Have Ray pickle every cell module by value, now and each one defined from now on.

    Raises
    ------
    ImportError
        Ray is not installed (``pip install 'ipyexecmod[ray]'``).
    """
    try:
        import_module("ray.cloudpickle")  # to fail here, not in the listener
    except ImportError as exc:
        msg = "ipyexecmod.ray needs Ray: pip install 'ipyexecmod[ray]'"
        raise ImportError(msg, name=exc.name) from exc
    # One listener, even if this module was imported anew (``%reset --aggressive``).
    listeners = cells.finder.listeners
    listeners[:] = [f for f in listeners if getattr(f, "__module__", None) != __name__]
    listeners.append(_on_define)
    _register(_outermost(_cell_module_names()))


def disable() -> None:
    """Unregister exactly the names :func:`enable` registered, and stop following
    definitions; what the user registered themselves stays."""
    listeners = cells.finder.listeners
    listeners[:] = [f for f in listeners if getattr(f, "__module__", None) != __name__]
    cloudpickle = sys.modules.get("ray.cloudpickle")
    if cloudpickle is not None:
        for name in _registered & cloudpickle.list_registry_pickle_by_value():
            # A module object of that name is all it needs, the real one may be gone.
            cloudpickle.unregister_pickle_by_value(ModuleType(name))
    _registered.clear()


def enabled() -> bool:
    """Whether :func:`enable` is in effect (its listener follows definitions)."""
    return _on_define in cells.finder.listeners


def registered() -> list[str]:
    """The names :func:`enable` registered with Ray's cloudpickle, sorted."""
    return sorted(_registered)


def install() -> None:
    """:func:`enable` now if Ray is imported, or else when ``import ray`` finishes.

    Never imports Ray.  What ``%load_ext ipyexecmod`` calls; :func:`uninstall` undoes it.
    """
    _remove_hook()
    if "ray" in sys.modules:
        enable()
    else:
        # Before the finder of installed packages, after any that answers for names of
        # its own first (the cell modules' finder).
        path_finders = [i for i, f in enumerate(sys.meta_path) if f is PathFinder]
        sys.meta_path.insert(
            path_finders[0] if path_finders else len(sys.meta_path), RayImportHook()
        )


def uninstall() -> None:
    """Undo :func:`install` (``%unload_ext ipyexecmod``): :func:`disable`, and remove the
    import hook if Ray was never imported."""
    _remove_hook()
    disable()


class RayImportHook:
    """A meta-path finder for the name ``ray`` alone, while Ray is not imported: it
    returns the spec the finders after it have, with a loader that calls :func:`enable`
    once Ray's ``__init__`` has run, so every cell module is registered before Ray
    pickles anything, even in the cell that first imports Ray.
    """

    def find_spec(
        self, fullname: str, path: Any = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname != "ray" or fullname in sys.modules or self not in sys.meta_path:
            return None
        spec = _spec_after(self, fullname, path, target)
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            # Loader by its methods: importlib.abc would cost every %load_ext its import.
            spec.loader = _EnablingLoader(spec.loader)  # type: ignore[assignment]
        return spec

    def invalidate_caches(self) -> None:
        """Nothing to invalidate: the hook holds no view of the file system."""


class _EnablingLoader:
    """Ray's own loader, which calls :func:`enable` after executing Ray's package, and
    then puts itself back out of the module (``__loader__``, ``__spec__.loader``)."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)  # create_module, get_resource_reader, ...

    def exec_module(self, module: ModuleType) -> None:
        self.loader.exec_module(module)
        if getattr(module, "__loader__", None) is self:
            module.__loader__ = self.loader
        spec = getattr(module, "__spec__", None)
        if spec is not None and spec.loader is self:
            spec.loader = self.loader
        _remove_hook()
        enable()


def _spec_after(hook: RayImportHook, fullname: str, path: Any, target: Any) -> ModuleSpec | None:
    """The spec the finders after ``hook`` on :data:`sys.meta_path` have for ``fullname``."""
    finders = sys.meta_path[sys.meta_path.index(hook) + 1 :]
    for finder in finders:
        find_spec = getattr(finder, "find_spec", None)
        spec = None if find_spec is None else find_spec(fullname, path, target)
        if spec is not None:
            return spec  # type: ignore[no-any-return]
    return None


def _remove_hook() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != RayImportHook.__name__]


def _on_define(name: str) -> None:
    """A cell module was (re)defined: register its outermost cell module if new."""
    _register(_outermost([name]))


def _register(names: list[str]) -> None:
    """Register cell modules ``names`` (and so the cell modules below them) by value."""
    cloudpickle = import_module("ray.cloudpickle")
    already = cloudpickle.list_registry_pickle_by_value()
    for name in names:
        module = sys.modules.get(name)
        if module is not None and name not in already:  # None: a first definition failed
            cloudpickle.register_pickle_by_value(module)
            _registered.add(name)


def _cell_module_names() -> list[str]:
    """Every cell module: defined here, and restored from an on-disk copy."""
    restored = [name for name, module in list(sys.modules.items()) if cells.finder.ours(module)]
    return [record.name for record in cells.finder.records()] + restored


def _outermost(names: list[str]) -> list[str]:
    """For each of ``names``, the outermost cell module it is, or is below (a cell
    module may live in an ordinary package, which is not pickled by value)."""
    found: dict[str, None] = {}
    for name in names:
        parts = name.split(".")
        prefixes = (".".join(parts[: i + 1]) for i in range(len(parts)))
        found.setdefault(next((p for p in prefixes if _is_cell_module(p)), name), None)
    return list(found)


def _is_cell_module(name: str) -> bool:
    return name in cells.finder or cells.finder.ours(sys.modules.get(name))
