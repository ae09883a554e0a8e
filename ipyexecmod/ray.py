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
Ray is imported, or else the moment ``import ray`` finishes (:mod:`ipyexecmod._after_import`
wraps Ray's own loader for that one import), so that even a cell that first imports Ray,
starts it and runs a task finds every cell module registered.  :func:`uninstall` undoes
all of it.  Importing this module imports neither Ray nor IPython.
"""

from __future__ import annotations

import sys
from importlib import import_module
from types import ModuleType

from . import cells
from ._after_import import hooks as after_import
from .cells.family import is_cell_module

__all__ = ["disable", "enable", "enabled", "install", "registered", "uninstall"]

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
    after_import.call_after("ray", enable)


def uninstall() -> None:
    """Undo :func:`install` (``%unload_ext ipyexecmod``): :func:`disable`, and stop
    waiting for ``import ray`` if Ray was never imported."""
    after_import.cancel(enable)
    disable()


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
        found.setdefault(next((p for p in prefixes if is_cell_module(cells.finder, p)), name), None)
    return list(found)
