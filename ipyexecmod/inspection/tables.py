# SPDX-License-Identifier: MIT
"""Tables as plain text and as escaped HTML, for what the line magics return.

Each cell shows the private directory as ``<store>``
(:func:`~ipyexecmod.store.display_path`), so that saved outputs stay the same from run
to run; the values themselves keep the real paths.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..store import display_path

__all__ = ["escape", "html_table", "text_table"]

# What html.escape(text, quote=True) replaces; the html package takes longer to import
# (its table of entities) than all of ipyexecmod's magics.
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;"})


def escape(text: str) -> str:
    """``text`` safe inside HTML, as :func:`html.escape` makes it."""
    return text.translate(_ESCAPES)


def text_table(rows: Sequence[Sequence[str]]) -> str:
    rows = [[display_path(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def html_table(header: Sequence[str] | None, rows: Iterable[Sequence[object]]) -> str:
    def cells(tag: str, row: Sequence[object]) -> str:
        return "".join(f"<{tag}>{escape(display_path(str(cell)))}</{tag}>" for cell in row)

    head = f"<thead><tr>{cells('th', header)}</tr></thead>" if header else ""
    body = "".join(f"<tr>{cells('td', row)}</tr>" for row in rows)
    return f"<table>{head}<tbody>{body}</tbody></table>"
