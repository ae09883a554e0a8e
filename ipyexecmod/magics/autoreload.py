# SPDX-License-Identifier: MIT
"""Keep the modules ipyexecmod made out of IPython's ``%autoreload``.

A redefinition rewrites the cell module's on-disk copy; with ``%autoreload 2`` on, the
reloader would see the newer mtime at the start of the next cell and reload the module,
running its top-level code a second time.  Only their cells redefine cell modules (and
modules restored from an on-disk copy, :meth:`~ipyexecmod.cells.CellModuleFinder.ours`);
autoreload goes on reloading every other module.

autoreload has no hook that asks about one module.  What comes closest is its reloader's
``skip_modules``, the mapping that ``%aimport -NAME`` fills: ``ModuleReloader.check`` asks
``NAME in skip_modules`` of every module it walks, before reading the file's mtime and
before its deduplicating reloader (IPython 9) sees the module.  :func:`keep_cells_out`
replaces that mapping with a :class:`SkipCellModules`, which keeps what ``%aimport -NAME``
puts in it and also answers yes, when asked, for every module ipyexecmod made; so nothing
has to be told of each new cell module.  :func:`give_cells_back` puts a plain dict back.
``tests/test_autoreload.py`` pins what this relies on in the installed IPython.
"""

from __future__ import annotations

import sys
from typing import Any

from IPython.core.interactiveshell import InteractiveShell

from .. import cells

__all__ = ["SkipCellModules", "give_cells_back", "keep_cells_out", "reloader"]


class SkipCellModules(dict[str, bool]):
    """autoreload's ``skip_modules``: the modules ``%aimport -NAME`` named, and every module
    ipyexecmod made, asked when autoreload checks (so a cell defined later counts too)."""

    def __contains__(self, name: object) -> bool:
        if super().__contains__(name):
            return True
        return isinstance(name, str) and cells.finder.ours(sys.modules.get(name))


def reloader(shell: InteractiveShell) -> Any | None:
    """The ``ModuleReloader`` of the autoreload extension loaded in ``shell``, or ``None``.

    ``AutoreloadMagics._reloader`` is not public, and the only way to it (IPython 8 and 9).
    """
    magics = shell.magics_manager.registry.get("AutoreloadMagics")
    return getattr(magics, "_reloader", None)


def keep_cells_out(shell: InteractiveShell) -> None:
    """Make the autoreload loaded in ``shell``, if any, skip every module ipyexecmod made.

    Done again after each cell (cheap, and a no-op once done), for an autoreload loaded
    after ipyexecmod.
    """
    found = reloader(shell)
    if found is not None and not isinstance(found.skip_modules, SkipCellModules):
        found.skip_modules = SkipCellModules(found.skip_modules)


def give_cells_back(shell: InteractiveShell) -> None:
    """Undo :func:`keep_cells_out` (``%unload_ext``): a plain dict again, with whatever
    ``%aimport -NAME`` put in it meanwhile.

    autoreload also forgets the mtime and source it noted for our modules when it first
    saw them: it takes their files as they are now, instead of reloading them at the next
    cell for redefinitions that have already run.
    """
    found = reloader(shell)
    if found is None or not isinstance(found.skip_modules, SkipCellModules):
        return
    found.skip_modules = dict(found.skip_modules)
    deduper = getattr(found, "deduper_reloader", None)  # IPython 9 and later
    sources = getattr(deduper, "source_by_modname", {})
    for name, module in list(sys.modules.items()):
        if cells.finder.ours(module):
            found.modules_mtimes.pop(name, None)
            sources.pop(name, None)
