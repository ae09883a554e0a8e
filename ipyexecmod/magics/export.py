# SPDX-License-Identifier: MIT
"""``%export_module``: a cell module's version that ran as plain ``.py`` files
(:mod:`ipyexecmod.exports`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from .arguments import parse

if TYPE_CHECKING:
    from ..inspection.exports import Exported

__all__ = ["ExportMagics"]


@magics_class
class ExportMagics(Magics):
    """``%export_module``."""

    @magic_arguments()
    @argument("name", help="the cell module (a package: with every cell module below it)")
    @argument(
        "--to",
        metavar="DIR",
        default=".",
        help="the folder to write the files under (default: the current directory)",
    )
    @argument(
        "--force",
        action="store_true",
        help="move files in the way aside (to PATH.orig) instead of refusing; none is deleted",
    )
    @line_magic
    def export_module(self, line: str) -> Exported:
        """%export_module NAME [--to DIR] [--force]: write the version of cell module NAME that
        ran last (not the cell's current text) as plain .py files under DIR.

        A package is written with every cell module below it, and a dotted name with its
        parents' __init__.py.  Each file starts with a header naming the module, its version,
        the cell and time it ran, and the SHA-256 of its source, and imports in any Python,
        without ipyexecmod.  A file that ipyexecmod did not write (or that was edited since)
        is never written over: the export is refused, and nothing written, unless --force
        moves it aside.  Returns the files, and what was done to each.
        """
        from .. import exports  # the first export pays for the machinery

        args = parse(self.export_module, line)
        try:
            return exports.export(args.name, args.to, force=args.force)  # it expands ~
        except exports.ExportError as exc:
            raise UsageError(str(exc)) from None
