# SPDX-License-Identifier: MIT
"""The notebook cell that ``%%as_module`` runs in, named as IPython named its code.

IPython compiles each cell under a name of its compiler's, ``shell.compile.get_code_name(raw,
transformed, In[N])``, and puts the cell's lines in linecache under it: ``<ipython-input-N-…>``
in a terminal, and in ipykernel the file the JupyterLab debugger writes the cell to
(``dumpCell``) and sets its breakpoints in.  A cell module's code compiled under that name,
with the cell's line numbers, is where a breakpoint set in the cell stops
(:class:`~ipyexecmod.cells.version.CellFile`).
"""

from __future__ import annotations

import linecache

from IPython.core.interactiveshell import InteractiveShell

from ..cells.version import CellFile

__all__ = ["cell_file"]

_BLANK = " \t\r"  # what a line IPython drops before a cell magic may hold, as we count lines


def cell_file(shell: InteractiveShell, line: str, cell: str) -> CellFile | None:
    """The cell that ``%%as_module line`` with ``cell`` as its body runs from, or ``None``
    if the shell's running cell is not this one as it is: ``run_cell_magic`` called by
    code, the magic under another cell magic, a cell IPython changed beyond its magic line,
    or a compiler that did not name the cell as its ``get_code_name`` says.

    The running cell is the one whose result the display hook holds (IPython sets it
    once the cell is compiled, and clears it when it ends).
    """
    result = getattr(shell.displayhook, "exec_result", None)
    info, number = getattr(result, "info", None), getattr(result, "execution_count", None)
    raw = getattr(info, "raw_cell", None)
    if not isinstance(raw, str) or not isinstance(number, int):
        return None
    lead = _lead(raw, line, cell)
    if lead is None:
        return None
    transformed = getattr(info, "transformed_cell", None)  # IPython ≥ 8.22
    if not isinstance(transformed, str):
        transformed = shell.transform_cell(raw)
    name = shell.compile.get_code_name(raw, transformed, number)
    if name not in linecache.cache:  # not the name the cell was compiled under
        return None
    return CellFile(name, lead)


def _lead(raw: str, line: str, cell: str) -> str | None:
    """The lines of cell ``raw`` before the body ``cell`` of its ``%%as_module line``
    (blank lines, which IPython drops, then the magic's line), or ``None`` if ``raw``
    is not that cell."""
    start = 0
    while True:
        end = raw.find("\n", start)
        if end < 0:
            return None
        if raw[start:end].strip(_BLANK):
            break
        start = end + 1
    if raw[start:end].rstrip(_BLANK) != f"%%as_module {line}".rstrip(" "):
        return None
    body = raw[end + 1 :]
    # IPython ends a cell with a newline before it takes the body out.
    if cell not in (body, body + "\n"):
        return None
    return raw[: end + 1]
