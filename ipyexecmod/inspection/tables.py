# SPDX-License-Identifier: MIT
"""Tables as plain text and as escaped HTML, for what the line magics return.

Each cell shows the private directory as ``<store>``
(:func:`~ipyexecmod.store.display_path`), so that saved outputs stay the same from run
to run; the values themselves keep the real paths.

The HTML sets no colour: it takes the notebook theme's (light or dark) as it is.  It only
aligns every cell left, inline: JupyterLab 4 right-aligns output table cells, which puts a
key far from its value and makes names and paths hard to read down a column.  An inline
style is kept where a stylesheet is not: a reopened, untrusted notebook's sanitizer keeps
``style`` attributes and drops ``<style>`` elements.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..store import display_path

__all__ = ["LEFT", "escape", "html_fields", "html_table", "text_table"]

# What html.escape(text, quote=True) replaces; the html package takes longer to import
# (its table of entities) than all of ipyexecmod's magics.
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;"})

#: The attribute every ``<th>`` and ``<td>`` carries (see the module's docstring).
LEFT = ' style="text-align:left;vertical-align:top"'


def escape(text: str) -> str:
    """``text`` safe inside HTML, as :func:`html.escape` makes it."""
    return text.translate(_ESCAPES)


def text_table(rows: Sequence[Sequence[str]]) -> str:
    """``rows`` (the first one a header, if any) in columns padded with spaces."""
    rows = [[display_path(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def _cell(tag: str, value: object, attributes: str = "") -> str:
    return f"<{tag}{attributes}{LEFT}>{escape(display_path(str(value)))}</{tag}>"


def html_table(header: Sequence[str] | None, rows: Iterable[Sequence[object]]) -> str:
    """A table with ``header`` (if any) as its column headers, one row per item of ``rows``.

    For a table of keys and values, :func:`html_fields` makes each key its row's header.
    """
    head = "".join(_cell("th", name, ' scope="col"') for name in header or ())
    thead = f"<thead><tr>{head}</tr></thead>" if head else ""
    body = "".join(f"<tr>{''.join(_cell('td', value) for value in row)}</tr>" for row in rows)
    return f"<table>{thead}<tbody>{body}</tbody></table>"


def html_fields(fields: Iterable[tuple[str, object]]) -> str:
    """A table of ``(key, value)`` pairs: each key is its row's header, its value beside it."""
    row_header = ' scope="row"'
    body = "".join(
        f"<tr>{_cell('th', key, row_header)}{_cell('td', value)}</tr>" for key, value in fields
    )
    return f"<table><tbody>{body}</tbody></table>"
