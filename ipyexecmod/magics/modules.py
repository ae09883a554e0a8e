# SPDX-License-Identifier: MIT
"""The line magics that inspect modules: ``%lsmod``, ``%modinfo``, ``%magic_number``,
``%magic_tag``, ``%pycinfo`` and ``%reload_module``."""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from .. import cells
from ..inspection import (
    MagicNumber,
    MagicTag,
    ModuleInfo,
    ModuleList,
    PycInfo,
    list_modules,
    module_info,
    pyc_info_for,
)
from ..pyc import PycError
from .arguments import parse

__all__ = ["ModuleMagics"]


@magics_class
class ModuleMagics(Magics):
    """Line magics that show what is imported, and reload it."""

    @magic_arguments()
    @argument("pattern", nargs="?", default="*", help="a glob on module names (default: *)")
    @argument("--cells", action="store_true", help="only the modules ipyexecmod made")
    @line_magic
    def lsmod(self, line: str) -> ModuleList:
        """%lsmod [PATTERN] [--cells]: the entries of sys.modules, with kind, origin and loader.

        Returns a list of rows (name, kind, origin, loader), sorted by name.
        """
        args = parse(self.lsmod, line)
        return list_modules(args.pattern, cells_only=args.cells)

    @magic_arguments()
    @argument("name", help="the module's name in sys.modules")
    @line_magic
    def modinfo(self, line: str) -> ModuleInfo:
        """%modinfo NAME: one module in detail, and for a cell module the cell that defined it.

        For a cell module, the row `stale` counts the live objects of its older versions
        (instances of replaced classes, replaced functions and classes still held), with
        the notebook names or containers that hold them; it walks every object, on request.
        """
        args = parse(self.modinfo, line)
        assert self.shell is not None  # set by Magics.__init__
        return module_info(_imported(args.name), name=args.name, notebook=self.shell.user_ns)

    @magic_arguments()
    @line_magic
    def magic_number(self, line: str) -> MagicNumber:
        """%magic_number: PyImport_GetMagicNumber(), the int this Python's .pyc files begin with."""
        parse(self.magic_number, line)
        return MagicNumber.current()

    @magic_arguments()
    @line_magic
    def magic_tag(self, line: str) -> MagicTag:
        """%magic_tag: PyImport_GetMagicTag(), the tag in the names of this Python's .pyc files."""
        parse(self.magic_tag, line)
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
        args = parse(self.pycinfo, line)
        try:
            return pyc_info_for(args.target)
        except (PycError, OSError) as exc:
            raise UsageError(str(exc)) from None

    @magic_arguments()
    @argument("name", help="the module's name in sys.modules")
    @argument(
        "--no-deps",
        action="store_true",
        help="do not run again the cell modules that import it "
        "(see ExecModMagics.rerun_dependents)",
    )
    @line_magic
    def reload_module(self, line: str) -> ModuleType:
        """%reload_module NAME: reload a module; a cell module re-executes its latest source.

        A cell module is reloaded as a transaction, with the cell modules that
        import it run again after it: if any code raises, every module of the
        set is put back as it was.  Returns the module.
        """
        __tracebackhide__ = True
        args = parse(self.reload_module, line)
        module = _imported(args.name)
        if not cells.finder.owns(module):
            return importlib.reload(module)
        assert self.shell is not None  # set by Magics.__init__
        definitions = self.shell.magics_manager.registry["ExecModMagics"]
        deps = definitions.rerun_dependents and not args.no_deps
        with definitions.reporting(module.__name__):
            return cells.finder.reload(
                module.__name__, rerun_dependents=deps, defined_in=definitions.cell_number()
            )


def _imported(name: str) -> ModuleType:
    module = sys.modules.get(name)
    if module is not None:
        return module
    if name in cells.finder:
        msg = f"cell module {name!r} is not imported now; `import {name}` re-creates it"
    else:
        msg = f"no module named {name!r} is imported; check the name with %lsmod"
    raise UsageError(msg)
