# SPDX-License-Identifier: MIT
"""The versions of a cell module: ``%modhistory``, ``%moddiff`` and ``%revert``.

Each version that ran in this kernel is kept (:mod:`ipyexecmod.cells.history`), up to
``c.ExecModMagics.history_limit`` per module.  A module restored from a lasting directory
has no versions until its cell runs here: the earlier kernel's versions were in its
memory, and the directory holds only the copy of the last one.
"""

from __future__ import annotations

import sys
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from .. import cells
from ..cells.history import Entry, HistoryError
from ..cells.version import CellModule
from ..inspection.history import ModuleDiff, ModuleHistory, module_diff, module_history
from .arguments import parse
from .definitions import refused, report_updated_instances

__all__ = ["HistoryMagics"]


@magics_class
class HistoryMagics(Magics):
    """Line magics that show a cell module's versions, compare them, and go back to one."""

    @magic_arguments()
    @argument("name", help="the cell module's dotted name")
    @line_magic
    def modhistory(self, line: str) -> ModuleHistory:
        """%modhistory NAME: the versions of a cell module that ran in this kernel.

        One row per version kept (ExecModMagics.history_limit, the oldest dropped first):
        its number, when it ran, the cell (In[N]), how it came (its cell, %reload_module,
        a run again for a module it imports, a %revert), the lines added and removed since
        the version before it, and * for the version in place.
        """
        args = parse(self.modhistory, line)
        record = _record(args.name)
        return module_history(args.name, record.history, record.version.source)

    @magic_arguments()
    @argument("name", help="the cell module's dotted name")
    @argument("a", nargs="?", type=int, help="a version (default: the one before the last)")
    @argument("b", nargs="?", type=int, help="a later version (default: the last)")
    @line_magic
    def moddiff(self, line: str) -> ModuleDiff:
        """%moddiff NAME [A [B]]: the unified diff between two versions of a cell module.

        No number: the version before the last against the last.  One: version A against
        the last (the one in place).  Two: version A against version B.  -1 is the last
        version, -2 the one before, and so on; %modhistory NAME lists the numbers.
        """
        args = parse(self.moddiff, line)
        record = _record(args.name)
        if args.a is None and len(record.history) < 2:
            msg = (
                f"{args.name!r} has one version kept, nothing to compare it with: run its "
                f"cell again to make another"
            )
            raise UsageError(msg)
        old = _version(args.name, record, -2 if args.a is None else args.a)
        new = _version(args.name, record, -1 if args.b is None else args.b)
        return module_diff(args.name, old, new)

    @magic_arguments()
    @argument("name", help="the cell module's dotted name")
    @argument("n", type=int, help="the version to go back to (%%modhistory NAME lists them)")
    @argument(
        "--no-deps",
        action="store_true",
        help="do not run again the cell modules that import it "
        "(see ExecModMagics.rerun_dependents)",
    )
    @argument(
        "--force",
        action="store_true",
        help="write the on-disk copy even over a file that another kernel wrote",
    )
    @line_magic
    def revert(self, line: str) -> None:
        """%revert NAME N: define a cell module again from the source of its version N.

        As running that version's cell again would: the same transaction (its dependents
        run again; the notebook's names, the on-disk copy and worker processes follow;
        if any code raises, everything is put back, and no version is added), in the
        place its copy is kept now.  It becomes a new version, even if N is the one in
        place (its code runs again).  Prints which version it is.
        """
        __tracebackhide__ = True
        args = parse(self.revert, line)
        record = _record(args.name)
        entry = _version(args.name, record, args.n)
        try:
            self._revert(args, record, entry)
        except cells.DefinitionError as exc:
            raise refused(exc) from None

    def _revert(self, args: Any, record: CellModule, entry: Entry) -> None:
        __tracebackhide__ = True
        assert self.shell is not None  # set by Magics.__init__
        definitions = self.shell.magics_manager.registry["ExecModMagics"]
        with definitions.reporting(args.name):
            cells.define(
                args.name,
                entry.source,
                force=args.force,
                defined_in=definitions.cell_number(),
                store=record.version.store,  # where the module is kept now
                rerun_dependents=definitions.rerun_dependents and not args.no_deps,
                how="revert",
                cause=str(entry.number),
            )
            now = cells.finder.modules[args.name].history.count
            print(f"{args.name!r} is version {entry.number}'s source again, as version {now}")
        if definitions.update_instances:
            cells.after_commit(report_updated_instances, args.name)


def _record(name: str) -> CellModule:
    """The registry's record of cell module ``name``, with at least one version kept;
    raises UsageError that says why there is none."""
    record = cells.finder.get(name)
    if record is not None and len(record.history):
        return record
    module = sys.modules.get(name)
    if record is not None and record.implicit:
        msg = (
            f"{name!r} is a package made for its modules, with no cell of its own, so it has "
            f"no versions; define it with %%as_module {name} to give it some"
        )
    elif record is not None or cells.finder.is_restored(module):
        path = getattr(module, "__file__", None) or (record and record.version.path)
        msg = (
            f"{name!r} was restored from its copy {path}, which an earlier kernel wrote: "
            f"the versions of that kernel were kept in its memory, and this kernel keeps "
            f"those that run in it; run its %%as_module cell to define it here"
        )
    elif module is not None:
        msg = (
            f"{name!r} is not a cell module, so it has no versions: only modules that "
            f"%%as_module defines have; %lsmod --cells lists them"
        )
    else:
        msg = f"no cell module named {name!r}; %lsmod --cells lists them"
    raise UsageError(msg)


def _version(name: str, record: CellModule, number: int) -> Entry:
    """Version ``number`` of module ``name``; raises UsageError naming the versions kept."""
    try:
        return record.history[number]
    except HistoryError as exc:
        msg = f"{name!r}: {exc}; %modhistory {name} lists them"
        raise UsageError(msg) from None
