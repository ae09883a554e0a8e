# SPDX-License-Identifier: MIT
"""What is wrong with the text of a ``%%as_module`` cell, and how IPython shows it.

:func:`not_source` and :func:`not_python` say why a cell cannot be a module's source;
:class:`TypoDisplay` has a cell's plain syntax error shown as a plain cell's.  No
IPython import: the magics pass the shell in, and this uses its public methods.
"""

from __future__ import annotations

import ast
import contextlib
import linecache
import re
from collections.abc import Iterator
from typing import Any

__all__ = ["TypoDisplay", "compiles", "not_python", "not_source"]

# A line with something other than blanks and a comment (found without splitting the cell).
_CODE_LINE = re.compile(r"^[ \t\f]*[^\s#]", re.MULTILINE)


def not_source(name: str, cell: str, first_line: int = 1) -> str | None:
    """Why ``cell`` cannot be the source of module ``name`` at all, or ``None``; its lines
    are numbered from ``first_line`` (the notebook cell's, whose first is the magic's)."""
    if not cell.strip():
        return f"the cell is empty: write the code of module {name!r} below %%as_module"
    if _CODE_LINE.search(cell) is None:
        return (
            f"the cell has only comments, so module {name!r} would have no code: "
            f"uncomment its code, or write it below %%as_module"
        )
    if "\0" in cell:
        line = cell.count("\n", 0, cell.index("\0")) + first_line
        return (
            f"{name!r} not defined: line {line} contains a null byte (\\x00), which Python "
            f"source cannot; delete it"
        )
    try:
        cell.isascii() or cell.encode("utf-8")
    except UnicodeEncodeError as exc:
        line = cell.count("\n", 0, exc.start) + first_line
        return (
            f"{name!r} not defined: line {line} contains {cell[exc.start]!r}, a lone "
            f"surrogate, which is not text (a bad copy and paste?); delete it"
        )
    return None


def compiles(cell: str) -> bool:
    """Whether ``cell`` compiles as a module (a SyntaxError then came from running it)."""
    try:
        compile(cell, "<cell>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return False
    return True


def not_python(shell: Any, cell: str, error: SyntaxError, first_line: int = 1) -> str | None:
    """Why a cell that failed to compile is not plain Python, or ``None`` if it is just wrong;
    its lines are numbered from ``first_line``, as ``error``'s are."""
    manager = shell.input_transformer_manager
    lines = (cell if cell.endswith("\n") else cell + "\n").splitlines(keepends=True)
    transformed = lines
    try:
        for transform in manager.line_transforms:
            transformed = transform(transformed)
        transformed = manager.do_token_transforms(transformed)
    except Exception:  # IPython's tokenizer gave up too: the Python error is the one to show
        return None
    for number, (before, after) in enumerate(zip(lines, transformed, strict=False), first_line):
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
    index = (error.lineno or 0) - first_line
    text = lines[index].strip() if 0 <= index < len(lines) else ""
    return (
        f"line {error.lineno} uses 'await' (or 'async for'/'async with') outside a function, "
        f"which a module cannot do: {text!r}; put it in an async function of the module and "
        f"await that from an ordinary cell"
    )


class TypoDisplay:
    """Has ``shell`` show a cell module's :class:`SyntaxError` in the 4 lines of a plain cell's.

    IPython shows a SyntaxError raised as a cell runs with every frame from its
    ``run_code`` down to ``compile()``, some 30 lines for a typo.  And it shows the
    failing line as linecache (or a file of that name) has it, if anything does, not
    the one the error carries.  :meth:`expect` puts a custom exception handler on the shell
    for one error (``run_code`` looks at ``custom_exceptions`` when an exception
    reaches it); the handler shows that error with ``showsyntaxerror()``, the plain
    cell's form, while linecache has the cell's lines, and gives any other exception
    to the handler that was there before, or to IPython's own display.  The handler
    goes once it has run, and at the start and end of every cell (:meth:`forget`),
    so an error caught in the cell leaves nothing behind.
    """

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self._expected: tuple[SyntaxError, str] | None = None
        # While one is installed: the exception types and handler before ours, and ours.
        self._outer: tuple[tuple[type[BaseException], ...], Any] = ((), None)
        self._handler: Any = None

    def expect(self, error: SyntaxError, source: str) -> None:
        """Show ``error``, about to be raised from compiling ``source``, the short way."""
        self._expected = error, source
        if self._handler is None:
            shell = self.shell
            self._outer = shell.custom_exceptions, shell.CustomTB
            shell.set_custom_exc((*shell.custom_exceptions, SyntaxError), self._show)
            self._handler = shell.CustomTB

    def forget(self, info: object = None) -> None:
        """Put back the custom exception handler that :meth:`expect` replaced."""
        if self._handler is not None and self.shell.CustomTB is self._handler:
            self.shell.custom_exceptions, self.shell.CustomTB = self._outer
        self._expected, self._outer, self._handler = None, ((), None), None

    def _show(
        self, shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: Any = None
    ) -> None:
        """The custom exception handler (``set_custom_exc`` makes it a method of ``shell``)."""
        expected, (outer_types, outer_handler) = self._expected, self._outer
        self.forget()
        if expected is not None and value is expected[0]:
            with _lines_shown(str(expected[0].filename), expected[1]):
                shell.showsyntaxerror()
        elif outer_types and isinstance(value, outer_types):
            outer_handler(etype, value, tb, tb_offset)
        else:  # what run_code does without a custom handler
            shell.showtraceback((etype, value, tb), tb_offset=tb_offset, running_compiled_code=True)


@contextlib.contextmanager
def _lines_shown(filename: str, source: str) -> Iterator[None]:
    """Let linecache give ``source``'s lines for ``filename`` while the block runs."""
    previous = linecache.cache.get(filename)
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    try:
        yield
    finally:
        if previous is None:
            linecache.cache.pop(filename, None)
        else:
            linecache.cache[filename] = previous
