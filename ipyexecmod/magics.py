# SPDX-License-Identifier: MIT
"""The IPython magics: ``%%as_module`` and the line magics that inspect modules.

Load them with ``%load_ext ipyexecmod``, or in a profile::

    c.InteractiveShellApp.extensions = ["ipyexecmod"]
    c.ExecModMagics.bind = True        # options: %config ExecModMagics

This is the only module of ipyexecmod that imports IPython.  It is a thin
layer: definitions are :mod:`ipyexecmod.cells`, the values the line magics
return are :mod:`ipyexecmod.inspection`; here user mistakes become exactly
:class:`~IPython.core.error.UsageError` (IPython prints those on one line).
"""

from __future__ import annotations

import ast
import importlib
import os
import re
import sys
import warnings
from types import ModuleType
from typing import TYPE_CHECKING, Any

from IPython.core.completer import CompletionContext, SimpleCompletion, context_matcher
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from traitlets import Bool, Unicode, observe

from . import cells
from .inspection import (
    MagicNumber,
    MagicTag,
    ModuleInfo,
    ModuleList,
    PycInfo,
    list_modules,
    module_info,
    pyc_info,
)
from .pyc import PycError
from .store import lasting_store, placement

if TYPE_CHECKING:
    from .dask import Shipment

__all__ = ["ExecModMagics", "load_ipython_extension", "unload_ipython_extension"]

# A line with something other than blanks and a comment (found without splitting the cell).
_CODE_LINE = re.compile(r"^[ \t\f]*[^\s#]", re.MULTILINE)

# The magics whose argument is a module name, for completion.
_MODULE_ARGUMENT = re.compile(
    r"\s*(?:[\w.]+\s*=\s*)?%?(?:reload_module|modinfo|lsmod|ship)\s+(?:-\S+\s+)*[\w.]*$"
)


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

    ship_auto = Bool(
        False,
        help="Ship every new or redefined cell module to the default Dask client "
        "(`%ship --auto`); needs ipyexecmod[dask].",
    ).tag(config=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.persist_dir:
            cells.finder.add_store(lasting_store(self.persist_dir))
        if self.ship_auto:
            _shipping().set_auto(True)

    @observe("ship_auto")
    def _ship_auto_changed(self, change: Any) -> None:
        if change["new"] or "ipyexecmod.dask" in sys.modules:
            _shipping().set_auto(change["new"])

    @observe("persist_dir")
    def _persist_dir_changed(self, change: Any) -> None:
        if change["new"]:
            cells.finder.add_store(lasting_store(change["new"]))

    def after_cell(self, result: Any = None) -> None:
        """After each cell (``post_run_cell``).

        Puts back the lines a failed redefinition replaced in linecache (IPython has
        shown its traceback by now), and gives the interactive ``__main__`` back the
        ``__spec__`` that ``%reset`` deletes, without which spawned processes cannot
        start at all.
        """
        cells.finder.restore_lines()
        cells.restore_main_spec()
        if self.ship_auto:  # a client made in this cell gets every module
            try:
                _shipping().ship_to_default()
            except Exception as exc:  # the cluster went away: say so, keep the kernel going
                warnings.warn(f"auto shipping failed: {exc}", RuntimeWarning, stacklevel=1)

    @property
    def _shell(self) -> InteractiveShell:
        assert self.shell is not None  # set by Magics.__init__
        return self.shell

    def _cell_number(self) -> int | None:
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
        args = parse_argstring(self.as_module, line)
        if args.no_persist and args.persist_dir:
            msg = "use --no-persist (memory only) or --persist-dir DIR, not both"
            raise UsageError(msg)
        problem = _not_source(args.name, cell)
        if problem is not None:
            raise UsageError(problem)
        store = placement(
            persist=self.persist and not args.no_persist,
            directory=args.persist_dir or self.persist_dir,
        )
        try:
            cells.define(
                args.name, cell, force=args.force, defined_in=self._cell_number(), store=store
            )
            cells.after_commit(self._bind, args)
        except cells.DefinitionError as exc:
            hint = ", or use --force to define it anyway" if exc.forceable else ""
            msg = f"{exc}{hint}"
            raise UsageError(msg) from None
        except SyntaxError as exc:
            reason = _not_python(self._shell, cell, exc)
            if reason is None:
                raise
            msg = f"{args.name!r} not defined: {reason}"
            raise UsageError(msg) from None

    def _bind(self, args: Any) -> None:
        """Once ``%%as_module`` has defined ``args.name`` (and the definition it was part
        of, if its cell ran in a cell module's code, has succeeded): bind the name."""
        top = args.name.partition(".")[0]
        if self.bind and not args.no_bind and top in sys.modules:
            self._shell.push({top: sys.modules[top]})

    @magic_arguments()
    @argument("pattern", nargs="?", default="*", help="a glob on module names (default: *)")
    @argument("--cells", action="store_true", help="only the modules ipyexecmod made")
    @line_magic
    def lsmod(self, line: str) -> ModuleList:
        """%lsmod [PATTERN] [--cells]: the entries of sys.modules, with kind, origin and loader.

        Returns a list of rows (name, kind, origin, loader), sorted by name.
        """
        args = parse_argstring(self.lsmod, line)
        return list_modules(args.pattern, cells_only=args.cells)

    @magic_arguments()
    @argument("name", help="the module's name in sys.modules")
    @line_magic
    def modinfo(self, line: str) -> ModuleInfo:
        """%modinfo NAME: one module in detail, and for a cell module the cell that defined it."""
        args = parse_argstring(self.modinfo, line)
        return module_info(_imported(args.name))

    @magic_arguments()
    @line_magic
    def magic_number(self, line: str) -> MagicNumber:
        """%magic_number: PyImport_GetMagicNumber(), the int this Python's .pyc files begin with."""
        parse_argstring(self.magic_number, line)
        return MagicNumber.current()

    @magic_arguments()
    @line_magic
    def magic_tag(self, line: str) -> MagicTag:
        """%magic_tag: PyImport_GetMagicTag(), the tag in the names of this Python's .pyc files."""
        parse_argstring(self.magic_tag, line)
        return MagicTag.current()

    @magic_arguments()
    @argument("target", help="a .pyc file, or an imported module (its __cached__ is read)")
    @line_magic
    def pycinfo(self, line: str) -> PycInfo:
        """%pycinfo PATH_OR_MODULE: decode a .pyc header and say whether it is still valid.

        Shows the magic number and the Python version that wrote the file, the
        invalidation mode (timestamp, unchecked hash, checked hash) with the
        source's mtime and size or hash, and whether the file is valid for its
        source and for the running Python.  Works on any .pyc.
        """
        args = parse_argstring(self.pycinfo, line)
        path = args.target
        if not os.path.isfile(path):
            module = sys.modules.get(path)
            if module is None:
                msg = f"{path!r} is neither a file nor an imported module"
                raise UsageError(msg)
            path = getattr(module, "__cached__", None) or getattr(module.__spec__, "cached", None)
            if not path or not os.path.isfile(path):
                msg = (
                    f"module {args.target!r} has no .pyc file (it is built in, frozen, "
                    f"from a cell, or its bytecode was not written); give a path instead"
                )
                raise UsageError(msg)
        try:
            return pyc_info(path)
        except (PycError, OSError) as exc:
            raise UsageError(str(exc)) from None

    @magic_arguments()
    @argument("name", help="the module's name in sys.modules")
    @line_magic
    def reload_module(self, line: str) -> ModuleType:
        """%reload_module NAME: reload a module; a cell module re-executes its latest source.

        A cell module is reloaded as a transaction: if its code raises, the
        module is put back as it was.  Returns the module.
        """
        __tracebackhide__ = True
        args = parse_argstring(self.reload_module, line)
        module = _imported(args.name)
        if cells.finder.owns(module):
            return cells.finder.reload(module.__name__)
        return importlib.reload(module)

    @magic_arguments()
    @argument("names", nargs="*", metavar="NAME", help="cell modules to ship")
    @argument(
        "--client",
        metavar="VAR",
        help="the variable holding the distributed.Client (default: the default client)",
    )
    @argument(
        "--auto",
        action="store_true",
        help="from now on, ship every new or redefined cell module to the default client "
        "(see ExecModMagics.ship_auto)",
    )
    @argument("--no-auto", action="store_true", help="turn --auto off")
    @line_magic
    def ship(self, line: str) -> Shipment | None:
        """%ship NAME [NAME ...] [--client VAR] | --auto | --no-auto: cell modules on Dask workers.

        Sends the modules to every current and future worker of a Dask cluster
        (a dotted name sends its whole package), through Dask's UploadFile
        plugin.  Each later redefinition of their cells sends them again before
        the cell finishes, and the next task runs the new code.  Returns what
        was shipped where (or nothing).  Needs ipyexecmod[dask].
        """
        args = parse_argstring(self.ship, line)
        if args.auto and args.no_auto:
            msg = "use --auto or --no-auto, not both"
            raise UsageError(msg)
        if args.client and (args.auto or args.no_auto):
            msg = "--auto always ships to the default client; leave out --client VAR"
            raise UsageError(msg)
        if not (args.names or args.auto or args.no_auto):
            msg = "name the cell modules to ship (%ship NAME ...), or use %ship --auto"
            raise UsageError(msg)
        auto = True if args.auto else False if args.no_auto else None
        shipping = _shipping()
        try:
            shipment: Shipment | None = shipping.ship_command(
                args.names, self._client(args.client), auto=auto
            )
        except shipping.ShipError as exc:
            raise UsageError(str(exc)) from None
        if auto is not None:
            self.ship_auto = auto  # as %config shows it; its observer changes nothing more
        return shipment

    def _client(self, variable: str | None) -> object:
        """The value of the notebook variable ``variable``; ``None`` (the default client)
        without one."""
        if variable is None:
            return None
        if variable not in self._shell.user_ns:
            msg = f"no variable {variable!r} in the notebook: --client names a variable"
            raise UsageError(msg)
        return self._shell.user_ns[variable]

    @context_matcher()
    def complete_module_names(self, context: CompletionContext) -> dict[str, Any]:
        """Complete module names after %reload_module, %modinfo and %lsmod."""
        if not _MODULE_ARGUMENT.match(context.line_with_cursor):
            return {"completions": [], "suppress": False}
        names = sorted(name for name in sys.modules if name.startswith(context.token))
        return {
            "completions": [SimpleCompletion(name, type="module") for name in names],
            "suppress": True,
        }


def _shipping() -> ModuleType:
    """:mod:`ipyexecmod.dask`, or a UsageError that says how to install it."""
    try:
        return importlib.import_module("ipyexecmod.dask")
    except ImportError as exc:
        raise UsageError(str(exc)) from None


def _imported(name: str) -> ModuleType:
    module = sys.modules.get(name)
    if module is not None:
        return module
    if name in cells.finder:
        msg = f"cell module {name!r} is not imported now; `import {name}` re-creates it"
    else:
        msg = f"no module named {name!r} is imported; check the name with %lsmod"
    raise UsageError(msg)


def _not_source(name: str, cell: str) -> str | None:
    """Why ``cell`` cannot be the source of module ``name`` at all, or ``None``."""
    if not cell.strip():
        return f"the cell is empty: write the code of module {name!r} below %%as_module"
    if _CODE_LINE.search(cell) is None:
        return (
            f"the cell has only comments, so module {name!r} would have no code: "
            f"uncomment its code, or write it below %%as_module"
        )
    if "\0" in cell:
        line = cell.count("\n", 0, cell.index("\0")) + 1
        return (
            f"{name!r} not defined: line {line} contains a null byte (\\x00), which Python "
            f"source cannot; delete it"
        )
    try:
        cell.isascii() or cell.encode("utf-8")
    except UnicodeEncodeError as exc:
        line = cell.count("\n", 0, exc.start) + 1
        return (
            f"{name!r} not defined: line {line} contains {cell[exc.start]!r}, a lone "
            f"surrogate, which is not text (a bad copy and paste?); delete it"
        )
    return None


def _not_python(shell: InteractiveShell, cell: str, error: SyntaxError) -> str | None:
    """Why a cell that failed to compile is not plain Python, or ``None`` if it is just wrong."""
    manager = shell.input_transformer_manager
    lines = (cell if cell.endswith("\n") else cell + "\n").splitlines(keepends=True)
    transformed = lines
    try:
        for transform in manager.line_transforms:
            transformed = transform(transformed)
        transformed = manager.do_token_transforms(transformed)
    except Exception:  # IPython's tokenizer gave up too: the Python error is the one to show
        return None
    for number, (before, after) in enumerate(zip(lines, transformed, strict=False), 1):
        if before != after:
            return (
                f"line {number} is IPython syntax (a magic, a shell command or a help "
                f"request), not Python: {before.strip()!r}; a module's code must be plain "
                f"Python, so run it in an ordinary cell"
            )
    try:
        compile(cell, "<cell>", "exec", ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
    except SyntaxError:
        return None
    text = lines[error.lineno - 1].strip() if error.lineno else ""
    return (
        f"line {error.lineno} uses 'await' (or 'async for'/'async with') outside a function, "
        f"which a module cannot do: {text!r}; put it in an async function of the module and "
        f"await that from an ordinary cell"
    )


def load_ipython_extension(shell: InteractiveShell) -> None:
    """Register the magics, the completer and the cell-module finder (``%load_ext``)."""
    unload_ipython_extension(shell)  # whatever an earlier load left behind
    magics = ExecModMagics(shell=shell)
    shell.register_magics(magics)
    shell.events.register("post_run_cell", magics.after_cell)
    shell.Completer.custom_matchers.append(magics.complete_module_names)
    cells.finder.defer_lines = True  # after_cell puts them back, once IPython has shown them
    cells.finder.install()


def unload_ipython_extension(shell: InteractiveShell) -> None:
    """Remove all that loading added (``%unload_ext``); cell modules already imported stay."""
    manager = shell.magics_manager
    magics = manager.registry.pop(ExecModMagics.__name__, None)
    if magics is not None:
        for kind, table in magics.magics.items():
            for name, method in table.items():
                if manager.magics[kind].get(name) == method:
                    del manager.magics[kind][name]
        if magics in shell.configurables:
            shell.configurables.remove(magics)
        magics.ship_auto = False
        magics.after_cell()
        shell.events.unregister("post_run_cell", magics.after_cell)
        shipping = sys.modules.get("ipyexecmod.dask")  # never imported just to unload
        if shipping is not None:
            shipping.disable()
    identifier = ExecModMagics.complete_module_names.matcher_identifier
    shell.Completer.custom_matchers[:] = [
        matcher
        for matcher in shell.Completer.custom_matchers
        if getattr(matcher, "matcher_identifier", None) != identifier
    ]
    cells.finder.defer_lines = False
    cells.finder.restore_lines()
    cells.finder.uninstall()
