# SPDX-License-Identifier: MIT
"""Code compiled as the rest of a file that has lines before it: a notebook cell's body.

A cell module's code named after its cell has the cell's line numbers, its first line
being ``%%as_module NAME`` (:mod:`ipyexecmod.cells.version`), while its on-disk copy's
``.pyc`` must have the file's own.  The source is compiled once, as the file's code, and
the cell's is made from it by :func:`renumbered`, about fifty times faster than compiling
it again: since Python 3.10 a code object's line table counts from its ``co_firstlineno``,
so moving that moves every line and end line, as ``CodeType.replace`` allows.  Every code
object but the module's own is then exactly what compiling the cell would make; the module's
own keeps its first instruction (``RESUME``, which no traceback, breakpoint or line event
shows) on the lead's last line rather than on line 0.  And each class keeps the source's
own ``__firstlineno__`` (Python 3.13), which :func:`inspect.getsource` reads against the
module's ``__file__``, the copy with the source's own lines.
"""

from __future__ import annotations

import warnings
from types import CodeType

__all__ = ["compile_after", "renumbered"]


def renumbered(code: CodeType, filename: str, lines: int) -> CodeType:
    """``code`` and the code nested in it, named ``filename``, every line ``lines`` further."""
    consts = code.co_consts
    if CodeType in map(type, consts):  # most nest none: keep their tuple
        consts = tuple(
            renumbered(const, filename, lines) if type(const) is CodeType else const
            for const in consts
        )
    return code.replace(
        co_filename=filename, co_firstlineno=code.co_firstlineno + lines, co_consts=consts
    )


def compile_after(
    source: str, lead: str, filename: str, compiled_as: str | None = None
) -> tuple[CodeType, CodeType]:
    """``source`` compiled as a module: the code of a file named ``filename`` where the
    lines of ``lead`` come before it, and the source's own code.

    The compiler's warnings name ``compiled_as`` (by default ``filename``), with the
    source's own line numbers.  Raises :class:`SyntaxError` as compiling the file would:
    naming ``filename``, at the file's line.
    """
    compiled_as = filename if compiled_as is None else compiled_as
    try:
        own = compile(source, compiled_as, "exec", dont_inherit=True)
    except SyntaxError:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # shown once already
                compile("\n" * lead.count("\n") + source, filename, "exec", dont_inherit=True)
        except SyntaxError as error:
            raise error from None
        raise  # the file compiled (it cannot, but if it did): the source's own error
    return renumbered(own, filename, lead.count("\n")), own
