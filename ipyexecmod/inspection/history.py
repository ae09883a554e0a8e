# SPDX-License-Identifier: MIT
"""The versions of a cell module, and the difference between two: ``%modhistory`` and
``%moddiff``.

Both are worked out from the sources the module's :class:`~ipyexecmod.cells.history.History`
keeps, when they are asked for: the history stores no diff and no line counts.  The HTML
diff is readable in JupyterLab's light and dark themes: its colours are JupyterLab's CSS
variables (each with a fallback for the classic notebook and nbviewer, which define
none), tints over the theme's own background and text colour, never a colour of its own
alone; and each line keeps its ``+`` or ``-``, so that it reads without colour too.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from ..cells.history import Entry, History
from .tables import escape, html_table, text_table

__all__ = ["ModuleDiff", "ModuleHistory", "VersionRow", "module_diff", "module_history"]


class VersionRow(NamedTuple):
    """One version of a module, as ``%modhistory`` shows it."""

    #: ``"*"`` for the version in place, ``""`` for the others.
    current: str
    version: int
    time: str
    cell: str
    how: str
    #: The lines added and removed since the version before it (``""``: that one is dropped).
    added: int | str
    removed: int | str


_HEADER = ("", "version", "time", "cell", "how", "added", "removed")


class ModuleHistory(list[VersionRow]):
    """The versions of one module that are kept, oldest first: a list that displays as a
    table, with a line saying which older versions were dropped, if any."""

    def __init__(self, name: str, rows: Iterable[VersionRow], dropped: str = "") -> None:
        super().__init__(rows)
        self.name = name
        #: Which older versions were dropped, in words (``""``: none).
        self.dropped = dropped

    def __repr__(self) -> str:
        table = text_table([_HEADER, *([str(cell) for cell in row] for row in self)])
        return f"{table}\n{self.dropped}" if self.dropped else table

    def _repr_html_(self) -> str:
        table = html_table(_HEADER, self)
        return f"{table}<p>{escape(self.dropped)}</p>" if self.dropped else table


def module_history(name: str, history: History, current_source: str) -> ModuleHistory:
    """The rows of module ``name``'s kept versions (``history``); the last one is marked
    as the one in place if its source is ``current_source``."""
    entries = list(history)
    today = time.localtime()[:3]
    rows = []
    before: Entry | None = None
    for entry in entries:
        added: int | str
        removed: int | str
        if before is None and entry.number > 1:
            added = removed = ""  # the version before it is dropped
        else:
            added, removed = _changes("" if before is None else before.source, entry.source)
        latest = entry is entries[-1] and entry.source == current_source
        rows.append(
            VersionRow(
                "*" if latest else "",
                entry.number,
                _when(entry.when, today),
                "-" if entry.defined_in is None else f"In[{entry.defined_in}]",
                entry.described(),
                added,
                removed,
            )
        )
        before = entry
    return ModuleHistory(name, rows, _dropped(entries, history.limit))


def _when(when: float, today: tuple[int, ...]) -> str:
    """``when`` in local time: the time of day, and the date too if it is not ``today``."""
    local = time.localtime(when)
    if local[:3] == today:
        return time.strftime("%H:%M:%S", local)
    return time.strftime("%Y-%m-%d %H:%M:%S", local)


def _dropped(entries: Sequence[Entry], limit: int) -> str:
    first = entries[0].number if entries else 1
    if first == 1:
        return ""
    which = {2: "version 1 was", 3: "versions 1 and 2 were"}.get(
        first, f"versions 1 to {first - 1} were"
    )
    return f"{which} dropped: the history keeps the last {limit} (ExecModMagics.history_limit)"


def _lines(source: str) -> list[str]:
    """``source``'s lines, each with its ``\\n`` (the last may have none); split at
    ``\\n`` only, as Python reads a module (``str.splitlines`` also splits at ``\\f``)."""
    parts = source.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _changes(old: str, new: str) -> tuple[int, int]:
    """The lines added and removed from ``old`` to ``new``, as a unified diff counts them."""
    import difflib  # here: `import ipyexecmod` need not pay for it

    added = removed = 0
    matcher = difflib.SequenceMatcher(None, _lines(old), _lines(new))
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            removed += i2 - i1
            added += j2 - j1
    return added, removed


class ModuleDiff:
    """The unified diff from one version of a module to another: text, and HTML with the
    added and removed lines marked."""

    def __init__(self, name: str, old: Entry, new: Entry, lines: Sequence[str]) -> None:
        self.name, self.old, self.new = name, old, new
        #: The diff's lines, each ending in ``\\n``; none if the sources are the same.
        self.lines = tuple(lines)

    def __repr__(self) -> str:
        if not self.lines:
            return self.same()
        return "".join(self.lines).rstrip("\n")

    def same(self) -> str:
        return f"versions {self.old.number} and {self.new.number} of {self.name!r} are the same"

    def _repr_html_(self) -> str:
        if not self.lines:
            return f"<p>{escape(self.same())}</p>"
        # The first two lines name the versions (--- and +++); a removed line may start so.
        body = "".join(_html_line(line, i < 2) for i, line in enumerate(self.lines))
        return f'<pre style="{_PRE}">{body}</pre>'


def module_diff(name: str, old: Entry, new: Entry) -> ModuleDiff:
    """The unified diff of module ``name`` from version ``old`` to version ``new``."""
    import difflib

    lines = []
    for line in difflib.unified_diff(
        _lines(old.source), _lines(new.source), _label(name, old), _label(name, new)
    ):
        if not line.endswith("\n"):  # the source's last line, with no newline after it
            line += "\n\\ No newline at end of file\n"
        lines.append(line)
    return ModuleDiff(name, old, new, lines)


def _label(name: str, entry: Entry) -> str:
    cell = "" if entry.defined_in is None else f", In[{entry.defined_in}]"
    return f"{name} (version {entry.number}{cell})"


# The theme's code font and text colour; JupyterLab's variables, with what the classic
# notebook and nbviewer (which define none) fall back to.
_PRE = (
    "font-family: var(--jp-code-font-family, monospace); "
    "font-size: var(--jp-code-font-size, inherit); "
    "color: var(--jp-content-font-color1, inherit); "
    "background: transparent; padding: 0; margin: 0; text-align: left"
)
# A tint of the theme's colour for success or error over the theme's background, so that
# the theme's text stays readable on it in light and dark themes alike.  A browser without
# color-mix() keeps the translucent fallback declared before it.
_TINT = (
    "display: block; background-color: {fallback}; "
    "background-color: color-mix(in srgb, var({variable}, {solid}) 25%, transparent)"
)
_NO_NEWLINE = "\\"
_STYLES = {
    "+": _TINT.format(
        fallback="rgba(46, 160, 67, 0.25)", variable="--jp-success-color1", solid="#2ea043"
    ),
    "-": _TINT.format(
        fallback="rgba(248, 81, 73, 0.25)", variable="--jp-error-color1", solid="#f85149"
    ),
    "@": "display: block; color: var(--jp-content-font-color2, inherit); font-style: italic",
    "header": "display: block; font-weight: bold",
    " ": "display: block",
    _NO_NEWLINE: "display: block; color: var(--jp-content-font-color2, inherit)",
}


def _html_line(line: str, header: bool) -> str:
    """One line of the diff (two, with a "no newline" marker) as marked-up spans."""
    style = _STYLES["header"] if header else _STYLES.get(line[:1], _STYLES[" "])
    first, _, marker = line.rstrip("\n").partition("\n")
    spans = f'<span style="{style}">{escape(first)}</span>'
    if marker:
        spans += f'<span style="{_STYLES[_NO_NEWLINE]}">{escape(marker)}</span>'
    return spans
