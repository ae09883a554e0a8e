# SPDX-License-Identifier: MIT
"""Code compiled as the rest of a file that has lines before it: a notebook cell's body.

A cell module's code named after its cell has the cell's line numbers, its first line
being ``%%as_module NAME`` (:mod:`ipyexecmod.cells.version`), while its on-disk copy's
``.pyc`` must have the file's own.  The source is compiled once, as the file's code, and
the cell's is made from it by :func:`renumbered`, about fifty times faster than compiling
it again: since Python 3.10 a code object's line table counts from its ``co_firstlineno``,
so moving that moves every line and end line, as ``CodeType.replace`` allows.  The module's
own code keeps ``co_firstlineno`` 1, as every module's code has it (IPython's tracebacks
count a module frame's lines from it), and its line table's first line moves instead.
Every code object is then exactly what compiling the cell would make, but for the module's
first instruction (``RESUME``, which no traceback, breakpoint or line event shows), on
the lead's last line rather than on line 0.  And each class keeps the source's
own ``__firstlineno__`` (Python 3.13), which :func:`inspect.getsource` reads against the
module's ``__file__``, the copy with the source's own lines.
"""

from __future__ import annotations

import warnings
from types import CodeType

__all__ = ["compile_after", "renumbered"]


def renumbered(code: CodeType, filename: str, lines: int, *, nested: bool = False) -> CodeType:
    """``code`` and the code nested in it, named ``filename``, every line ``lines`` further
    (a module's own code keeps its ``co_firstlineno``, unless ``nested``)."""
    consts = code.co_consts
    if CodeType in map(type, consts):  # most nest none: keep their tuple
        consts = tuple(
            renumbered(const, filename, lines, nested=True) if type(const) is CodeType else const
            for const in consts
        )
    if nested:
        return code.replace(
            co_filename=filename, co_firstlineno=code.co_firstlineno + lines, co_consts=consts
        )
    table = _moved(code.co_linetable, lines)
    return code.replace(co_filename=filename, co_linetable=table, co_consts=consts)


# The line table (Objects/locations.md, Python 3.11 to 3.13): entries of one or more
# bytes, the first with bit 7 set and a 4-bit code; each entry's line is relative to the
# line before it, the first's to co_firstlineno.  Moving the first entry that has a line
# moves them all.
_NO_LOCATION, _LONG, _NO_COLUMNS, _ONE_LINE = 15, 14, 13, 10


def _moved(table: bytes, lines: int) -> bytes:
    """Line table ``table`` with every line ``lines`` further."""
    at = 0
    while at < len(table):
        head = table[at]
        code = (head >> 3) & 15
        if code == _NO_LOCATION:  # one byte, no line
            at += 1
            continue
        if code in (_LONG, _NO_COLUMNS):  # the line's delta comes first, a signed varint
            delta, end = _read_varint(table, at + 1)
            moved = _svarint(_signed(delta) + lines)
            return table[: at + 1] + moved + table[end:]
        # A short or one-line form: the same location in the long form, its line moved.
        if code < _ONE_LINE:
            second, size, delta = table[at + 1], 2, 0
            column = code * 8 + ((second >> 4) & 7)
            end_column = column + (second & 15)
        else:
            column, end_column, size, delta = table[at + 1], table[at + 2], 3, code - _ONE_LINE
        entry = bytes([0x80 | _LONG << 3 | head & 7]) + _svarint(delta + lines)
        entry += _varint(0) + _varint(column + 1) + _varint(end_column + 1)
        return table[:at] + entry + table[at + size :]
    return table  # no instruction has a line


def _read_varint(table: bytes, at: int) -> tuple[int, int]:
    """The varint at ``at`` (6 bits a byte, bit 6 set on all but the last), and its end."""
    value = shift = 0
    while True:
        byte = table[at]
        value |= (byte & 63) << shift
        at, shift = at + 1, shift + 6
        if not byte & 64:
            return value, at


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 64:
        out.append(64 | value & 63)
        value >>= 6
    out.append(value)
    return bytes(out)


def _signed(value: int) -> int:
    return -(value >> 1) if value & 1 else value >> 1


def _svarint(value: int) -> bytes:
    return _varint((-value) << 1 | 1 if value < 0 else value << 1)


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
