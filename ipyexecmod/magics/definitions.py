# SPDX-License-Identifier: MIT
"""``%%as_module``, and the options of the magics (``%config ExecModMagics``)."""

from __future__ import annotations

import contextlib
import importlib
import sys
import warnings
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.core.magic import Magics, cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments
from traitlets import Bool, Int, TraitError, Unicode, observe, validate

from .. import cells
from .._after_import import hooks as after_import
from .._warnings import warn
from ..binding import binding_clash, rebind
from ..cells.dependents import describe
from ..cells.history import DEFAULT_LIMIT, checked_limit
from ..cells.instances import update_instances
from ..cells.version import CellFile
from ..lasting import lasting_store, placement
from ..loader import put_back_lines
from ..store import kernel_store
from ..typos import TypoDisplay, compiles, not_python, not_source
from . import autoreload
from .arguments import parse
from .cellfiles import cell_file

__all__ = ["ExecModMagics", "refused", "report_updated_instances", "shipping"]


@magics_class
class ExecModMagics(Magics):
    """Notebook cells as real, importable modules."""

    bind = Bool(
        True,
        help="Bind a cell module's name in the user namespace as `import NAME` would "
        "(for a dotted name, its top-level package). `%%as_module --no-bind` skips it "
        "for one cell.",
    ).tag(config=True)

    persist = Bool(
        True,
        help="Also write each cell module to disk, as NAME.py and a checked-hash .pyc, in a "
        "directory on sys.path, so that spawned processes can import it. `%%as_module "
        "--no-persist` keeps one module in memory only.",
    ).tag(config=True)

    persist_dir = Unicode(
        "",
        help="A lasting directory for the on-disk copies: a new kernel with the same setting "
        "can `import NAME` without running the cell again. Empty: a private directory, "
        "removed when the kernel exits. `%%as_module --persist-dir DIR` sets it for one cell.",
    ).tag(config=True)

    rerun_dependents = Bool(
        True,
        help="When a cell module is redefined or reloaded, run again the cell modules that "
        "import it, directly or through others, in the same all-or-nothing transaction. "
        "`%%as_module --no-deps` and `%reload_module --no-deps` skip it for one cell.",
    ).tag(config=True)

    rebind_names = Bool(
        True,
        help="When a cell module's code runs again, rebind the notebook's names that hold "
        "an object of its previous version (`from m import f`, `C = m.C`) to the new "
        "version's object of the same name.",
    ).tag(config=True)

    ship_auto = Bool(
        True,
        help="Ship every cell module, new or redefined, to every Dask client of the kernel, "
        "made before or after it (`%ship --auto`, `%ship --no-auto`).  Off, a task that needs "
        "a module not named to `%ship` fails at once with an ImportError that says so.",
    ).tag(config=True)

    update_instances = Bool(
        False,
        help="After each redefinition, move the live instances of the module's classes, from "
        "any earlier version, to the new class of the same name (`__class__` assignment), so "
        "that isinstance holds; those that cannot move are listed by `%modinfo NAME`. "
        "`%%as_module --update-instances` does it for one cell.",
    ).tag(config=True)

    history_limit = Int(
        DEFAULT_LIMIT,
        help="How many versions of each cell module the kernel keeps for `%modhistory`, "
        "`%moddiff` and `%revert` (the oldest dropped first); a change applies to every "
        "module at once.",
    ).tag(config=True)

    def __init__(self, **kwargs: Any) -> None:
        try:
            # The private directory and its board, first on sys.path: processes started
            # from now on can import cell modules defined later.  Before the configuration
            # is read: a persist_dir set there puts its modules on the board.
            kernel_store()
        except OSError as exc:
            warn(f"ipyexecmod: no private directory: {exc}", RuntimeWarning)
        super().__init__(**kwargs)
        self._typos = TypoDisplay(self.shell)
        self._rebound: list[str] = []
        self._reporting = False
        if self.persist_dir:
            cells.finder.add_store(lasting_store(self.persist_dir))
        after_import.call_after("distributed", self.follow_dask)
        cells.finder.history_limit = self.history_limit

    def follow_dask(self) -> None:
        """Once the notebook imports Dask's distributed: give every client the cell modules
        (their code with ``ship_auto``, placeholders without), and keep them current."""
        # Not the package: this may run as the package imports distributed, half-initialised.
        shipper = importlib.import_module("ipyexecmod.dask.shipping").shipper
        shipper.set_auto(self.ship_auto)  # before enable(): it greets the clients
        shipper.enable()

    @observe("ship_auto")
    def _ship_auto_changed(self, change: Any) -> None:
        if sys.modules.get("distributed") is not None:
            shipping().set_auto(change["new"])

    @validate("history_limit")
    def _valid_history_limit(self, proposal: Any) -> int:
        try:
            return checked_limit(proposal["value"])
        except ValueError as exc:
            raise TraitError(str(exc)) from None

    @observe("history_limit")
    def _history_limit_changed(self, change: Any) -> None:
        cells.finder.history_limit = change["new"]

    @observe("persist_dir")
    def _persist_dir_changed(self, change: Any) -> None:
        if change["new"]:
            cells.finder.add_store(lasting_store(change["new"]))

    def hooks(self) -> list[tuple[str, Callable[..., None]]]:
        """The shell events the magics follow, each with the method it calls."""
        return [
            ("pre_run_cell", self._typos.forget),
            ("pre_run_cell", self.put_back_lines),
            ("post_run_cell", self._typos.forget),
            ("post_run_cell", self.put_back_lines),
            ("post_run_cell", self.give_main_a_spec),
            ("pre_run_cell", self.notice_restored),
            ("post_run_cell", self.notice_restored),
            ("pre_run_cell", self.greet_dask_clients),
            ("post_run_cell", self.greet_dask_clients),
            ("post_run_cell", self.keep_cells_from_autoreload),
            ("pre_run_cell", self.tell_replaced_copies),
            ("post_run_cell", self.tell_replaced_copies),
        ]

    def tell_replaced_copies(self, info: object = None) -> None:
        """Before and after each cell: say which modules' lasting copies another kernel
        has replaced since (cell modules move to the private directory:
        :meth:`CellModuleFinder.rehome`), and what else the user must be told and had no
        cell to be shown in (a kernel starting on a lasting directory)."""
        for notice in [*cells.finder.take_notices(), *cells.finder.rehome()]:
            warnings.warn(notice, RuntimeWarning, stacklevel=2)

    def put_back_lines(self, info: object = None) -> None:
        """Put back the lines of replaced versions that something cleared from linecache
        (a debugger may clear it), before and after each cell."""
        put_back_lines()

    def give_main_a_spec(self, result: object = None) -> None:
        """Give the interactive ``__main__`` back the ``__spec__`` that ``%reset`` deletes."""
        cells.restore_main_spec()

    def keep_cells_from_autoreload(self, result: object = None) -> None:
        """Keep cell modules out of a ``%autoreload`` loaded in this cell (before the next)."""
        autoreload.keep_cells_out(self._shell)

    def notice_restored(self, info: object = None) -> None:
        """Before and after each cell: tell Dask and Ray of the modules the notebook
        restored from a lasting directory's copies (imported by another finder); a
        top-level one is told of as it is imported."""
        cells.finder.notice_restored()

    def greet_dask_clients(self, result: object = None) -> None:
        """Give a Dask client that the preload missed (made while the user's configuration
        replaced Dask's preload list) the cell modules, before and after each cell."""
        dask = sys.modules.get("ipyexecmod.dask")
        if dask is not None:
            dask.greet_clients()  # a failure warns

    @property
    def _shell(self) -> InteractiveShell:
        assert self.shell is not None  # set by Magics.__init__
        return self.shell

    def cell_number(self) -> int | None:
        """The ``In[N]`` of the running cell, or ``None`` outside a cell that stores history.

        ``shell.execution_count`` is N until IPython 8 but already N + 1 in IPython 9;
        the result of the running cell knows N in both.
        """
        result = getattr(self._shell.displayhook, "exec_result", None)
        return getattr(result, "execution_count", None)

    @magic_arguments()
    @argument("name", help="the module's dotted name, e.g. geometry or shapes.circle")
    @argument(
        "--no-bind",
        action="store_true",
        help="do not bind the name in the user namespace (see ExecModMagics.bind)",
    )
    @argument(
        "--no-persist",
        action="store_true",
        help="keep the module in memory only: no on-disk copy, so other processes cannot "
        "import it (see ExecModMagics.persist)",
    )
    @argument(
        "--persist-dir",
        metavar="DIR",
        help="write the on-disk copy to DIR, kept across kernels (see ExecModMagics.persist_dir)",
    )
    @argument(
        "--force",
        action="store_true",
        help="define the module even if NAME is a module that ipyexecmod did not create, "
        "or can be imported from elsewhere; the cell module then hides it",
    )
    @argument(
        "--no-deps",
        action="store_true",
        help="do not run again the cell modules that import this one "
        "(see ExecModMagics.rerun_dependents)",
    )
    @argument(
        "--update-instances",
        action="store_true",
        help="move the live instances of the module's older classes to the new ones "
        "(see ExecModMagics.update_instances)",
    )
    @cell_magic
    def as_module(self, line: str, cell: str) -> None:
        """%%as_module NAME: make the cell a real, importable module named NAME.

        The cell is compiled once, as a module, and executed as module NAME:
        `import NAME` then works in any cell and any module, and so do
        `importlib.reload`, `inspect.getsource`, tracebacks and pickling.
        Running the cell again updates the same module object; if that fails,
        the previous version is put back.  Missing parent packages of a dotted
        NAME are created.  The cell must be plain Python: no magics, shell
        commands or top-level await.
        """
        __tracebackhide__ = True
        args = parse(self.as_module, line)
        where = cell_file(self._shell, line, cell)  # None: not run from its own cell
        first = 1 if where is None else where.first_line
        problem = _bad_options(args) or not_source(args.name, cell, first)
        if problem is not None:
            raise UsageError(problem)
        try:
            self._define(args, cell, where)
        except cells.DefinitionError as exc:
            raise refused(exc) from None
        except SyntaxError as exc:
            if compiles(cell):
                raise  # raised by the code as it ran (eval, compile): its traceback says where
            reason = not_python(self._shell, cell, exc, first)
            if reason is not None:
                msg = f"{args.name!r} not defined: {reason}"
                raise UsageError(msg) from None
            self._typos.expect(exc, cell if where is None else where.lead + cell)
            raise

    def _define(self, args: Any, cell: str, where: CellFile | None) -> None:
        """Define ``cell`` as module ``args.name``, with the options in ``args``, its code
        named after the notebook cell ``where`` if given; bind it once the definition (and
        any it is part of: a cell module's code may run a cell) has committed."""
        __tracebackhide__ = True
        store = placement(
            persist=self.persist and not args.no_persist,
            directory=args.persist_dir or self.persist_dir,
        )
        with self.reporting(args.name):
            cells.define(
                args.name,
                cell,
                force=args.force,
                defined_in=self.cell_number(),
                store=store,
                rerun_dependents=self.rerun_dependents and not args.no_deps,
                how="cell",  # outside a cell that stores history too (no In[N])
                cell=where,
            )
        if self.bind and not args.no_bind:
            cells.after_commit(self._bind, args.name)
        if self.update_instances or args.update_instances:
            cells.after_commit(report_updated_instances, args.name)

    @contextlib.contextmanager
    def reporting(self, name: str) -> Iterator[None]:
        """Around a definition (or reload) of module ``name``: once it has committed, say
        which dependents ran again, then which notebook names were rebound."""
        self._reporting = True
        try:
            yield
        except BaseException:
            self._reporting = False
            raise
        cells.after_commit(self.report_reruns, name)

    def report_reruns(self, name: str | None) -> None:
        """Say, on one line each, which dependents module ``name``'s definition ran again,
        and which notebook names now hold the new versions' objects."""
        self._reporting = False
        record = None if name is None else cells.finder.get(name)
        if record is not None and record.reran:
            print(describe(record.name, record.reran))
        for path, aside in () if record is None else record.moved_aside:
            print(f"moved {path} (not written by ipyexecmod) aside to {aside}")
        rebound, self._rebound = self._rebound, []
        if rebound:
            print(f"rebound in the notebook: {', '.join(dict.fromkeys(rebound))}")

    def rebind(self, replacements: list[cells.Replacement]) -> None:
        """Rebind the notebook's names that hold an object the modules' code, run again,
        replaced (:func:`~ipyexecmod.binding.rebind`); warn of those left stale."""
        if not self.rebind_names:
            return
        rebound, left = rebind(self._shell.user_ns, replacements)
        self._rebound += rebound
        if not self._reporting:  # a definition that %%as_module does not report (cells.define)
            self.report_reruns(None)
        by_module: dict[str, list[str]] = {}
        for held, module in left:
            by_module.setdefault(module, []).append(held)
        for module, names in by_module.items():
            they = f"{names[0]} holds" if len(names) == 1 else f"{', '.join(names)} hold"
            msg = (
                f"{they} what an earlier version of {module!r} defined and its new version "
                f"does not: left as it is (the module keeps its old names too; del them there "
                f"and in the notebook if they are gone)"
            )
            warn(msg, RuntimeWarning)  # at the user's cell, each time

    def _bind(self, name: str) -> None:
        """Bind the top-level package of module ``name`` in the notebook, as ``import NAME``
        would, unless that would do harm (:func:`~ipyexecmod.binding.binding_clash`):
        then say so, on one line."""
        top = name.partition(".")[0]
        module = sys.modules.get(top)
        if module is None:
            return
        shell = self._shell
        if shell.user_ns.get(top) is module:
            return  # bound already (a cell run again)
        clash = binding_clash(top, module, shell.user_ns, shell.user_ns_hidden)
        if clash is None:
            shell.push({top: module})
        else:
            notice = f"module {name!r} is defined but not bound to {top!r}: {clash}"
            print(f"{notice}; `import {name} as ...` gets it", file=sys.stderr)


def refused(error: cells.DefinitionError) -> UsageError:
    """The user's error that a refused definition is, with the ``--force`` that would do it."""
    hint = f", or use --force {error.hint}" if error.forceable else ""
    return UsageError(f"{error}{hint}")


def report_updated_instances(name: str) -> None:
    """Move the instances of the older classes of module ``name`` and of the dependents it
    ran again; say so on one line each, if any."""
    record = cells.finder.modules[name]
    for each in [name, *(rerun.name for rerun in record.reran)]:
        moved = update_instances(cells.finder, each)
        if moved:
            print(moved)


def shipping() -> ModuleType:
    """:mod:`ipyexecmod.dask`, or a UsageError that says how to install it."""
    try:
        return importlib.import_module("ipyexecmod.dask")
    except ImportError as exc:
        raise UsageError(str(exc)) from None


def _bad_options(args: Any) -> str | None:
    """Why ``%%as_module``'s options contradict each other, or ``None``."""
    if args.no_persist and args.persist_dir:
        return "use --no-persist (memory only) or --persist-dir DIR, not both"
    return None
