# SPDX-License-Identifier: MIT
"""The IPython magics: ``%%as_module`` and the line magics that inspect modules.

Load them with ``%load_ext ipyexecmod``, or in a profile::

    c.InteractiveShellApp.extensions = ["ipyexecmod"]
    c.ExecModMagics.bind = True        # options: %config ExecModMagics

This package is the only part of ipyexecmod that imports IPython:
:mod:`.definitions` (``%%as_module`` and the options), :mod:`.modules` (the line
magics that inspect modules), :mod:`.history` (``%modhistory``, ``%moddiff``,
``%revert``), :mod:`.export` (``%export_module``), :mod:`.shipping` (``%ship``),
:mod:`.arguments` (reading a magic's line, completing module names), :mod:`.autoreload`
(keeping cell modules out of ``%autoreload``) and :mod:`.tracebacks` (naming cell modules'
frames without the private directory's random name).  It is a thin layer: definitions are
:mod:`ipyexecmod.cells`, which names binding may take is :mod:`ipyexecmod.binding`,
what is wrong with a cell's text and how a typo is shown is :mod:`ipyexecmod.typos`,
the values the line magics return are :mod:`ipyexecmod.inspection`, shipping is
:mod:`ipyexecmod.dask`; here each magic parses its line, calls one of them, and
turns a user's mistake into exactly :class:`~IPython.core.error.UsageError`
(IPython prints those on one line).
"""

from __future__ import annotations

import sys

from IPython.core.interactiveshell import InteractiveShell

from .. import cells
from .. import ray as ray_support  # imports no Ray
from .._after_import import hooks as after_import
from . import autoreload, tracebacks
from .arguments import complete_module_names
from .definitions import ExecModMagics
from .export import ExportMagics
from .history import HistoryMagics
from .modules import ModuleMagics
from .shipping import ShipMagics

__all__ = [
    "ExecModMagics",
    "ExportMagics",
    "HistoryMagics",
    "ModuleMagics",
    "ShipMagics",
    "load_ipython_extension",
    "unload_ipython_extension",
]


_MAGICS = (ExecModMagics, ModuleMagics, ShipMagics, HistoryMagics, ExportMagics)


def load_ipython_extension(shell: InteractiveShell) -> None:
    """Register the magics, the completer and the cell-module finder (``%load_ext``)."""
    unload_ipython_extension(shell)  # whatever an earlier load left behind
    cells.finder.notices_wait = True  # until a cell shows them: the kernel may be starting
    for cls in _MAGICS:
        shell.register_magics(cls(shell=shell))
    magics = shell.magics_manager.registry[ExecModMagics.__name__]
    for event, hook in magics.hooks():
        shell.events.register(event, hook)
    cells.finder.replacement_listeners.append(magics.rebind)
    shell.Completer.custom_matchers.append(complete_module_names)
    cells.finder.install()
    autoreload.keep_cells_out(shell)
    tracebacks.name_cell_frames(shell)
    ray_support.install()  # Ray pickles cell modules by value, from `import ray` on


def unload_ipython_extension(shell: InteractiveShell) -> None:
    """Remove all that loading added (``%unload_ext``); cell modules already imported stay."""
    manager = shell.magics_manager
    for cls in _MAGICS:
        magics = manager.registry.pop(cls.__name__, None)
        if magics is None:
            continue
        for kind, table in magics.magics.items():
            for name, method in table.items():
                if manager.magics[kind].get(name) == method:
                    del manager.magics[kind][name]
        if magics in shell.configurables:
            shell.configurables.remove(magics)
        if isinstance(magics, ExecModMagics):
            _stop_following_cells(shell, magics)
    identifier = complete_module_names.matcher_identifier
    shell.Completer.custom_matchers[:] = [
        matcher
        for matcher in shell.Completer.custom_matchers
        if getattr(matcher, "matcher_identifier", None) != identifier
    ]
    cells.finder.uninstall()
    cells.finder.notices_wait = False
    autoreload.give_cells_back(shell)
    tracebacks.show_paths_again(shell)
    ray_support.uninstall()


def _stop_following_cells(shell: InteractiveShell, magics: ExecModMagics) -> None:
    """Undo what ``magics`` set up to run around cells, and any shipping it started."""
    after_import.cancel(magics.follow_dask)
    if magics.rebind in cells.finder.replacement_listeners:
        cells.finder.replacement_listeners.remove(magics.rebind)
    for event, hook in magics.hooks():
        hook()  # what the end of a cell would have done
        shell.events.unregister(event, hook)
    shipping = sys.modules.get("ipyexecmod.dask")  # never imported just to unload
    if shipping is not None:
        shipping.disable()
