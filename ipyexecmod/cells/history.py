# SPDX-License-Identifier: MIT
"""Every version of a cell module that ran, kept in the kernel: its source, when, from
which cell, and how it came.

Each successful run of a module's code in a definition that committed is one
:class:`Entry`, numbered from 1 on for the life of the kernel: its cell run (``"cell"``),
a definition through the API (``"define"``), ``%reload_module`` or
:meth:`CellModuleFinder.reload` (``"reload"``; a bare :func:`importlib.reload` runs the
code outside any definition, and is no version), a run again for a module it imports
(``"dependent"``), a revert (``"revert"``).  A definition that fails is no version: its
entry is taken back with the rest of the transaction.

An entry holds the source (the same string object as the version it came from, while
that lives), never the code or module: the history of a long session costs its sources
and a few hundred bytes per entry.  Each module keeps its last :data:`limit` entries
(``c.ExecModMagics.history_limit``), the oldest dropped first; numbers are never reused.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["DEFAULT_LIMIT", "Entry", "History", "HistoryError", "checked_limit"]

#: How many versions of each module are kept, unless told otherwise.
DEFAULT_LIMIT = 100


class HistoryError(LookupError):
    """A version that is not kept (dropped, or never was): the message says which are."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One version of a cell module that ran."""

    #: Its number among the module's versions, from 1 on.
    number: int
    source: str
    #: When it ran, as :func:`time.time` gives it.
    when: float
    #: The ``In[N]`` of the cell it came from (``None``: no cell, e.g. the API).
    defined_in: int | None
    #: ``"cell"``, ``"define"``, ``"reload"``, ``"dependent"`` or ``"revert"``.
    how: str
    #: What caused it: the module it ran again for (a dependent), the version it went
    #: back to (a revert, as ``"3"``); ``""`` otherwise.
    cause: str = ""

    def described(self) -> str:
        """How this version came, in words: ``cell``, ``dependent of geometry``,
        ``revert to 2``, ``%reload_module``, ``reload()``, ``define()``."""
        if self.how == "dependent":
            return f"dependent of {self.cause}"
        if self.how == "revert":
            return f"revert to {self.cause}"
        if self.how == "reload":  # %reload_module gives the cell it ran in; the API none
            return "reload()" if self.defined_in is None else "%reload_module"
        if self.how == "define":
            return "define()"
        return self.how


class History:
    """The versions of one cell module that are kept, oldest first."""

    __slots__ = ("_entries", "count")

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self._entries: deque[Entry] = deque(maxlen=checked_limit(limit))
        #: How many versions ran in all, kept or not: the last one's number.
        self.count = 0

    def __repr__(self) -> str:
        return f"<History: {len(self)} of {self.count} versions kept>"

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._entries)

    @property
    def limit(self) -> int:
        return self._entries.maxlen or 0

    @limit.setter
    def limit(self, limit: int) -> None:
        """Keep at most ``limit`` versions from now on (the oldest dropped first)."""
        self._entries = deque(self._entries, maxlen=checked_limit(limit))

    def add(self, source: str, how: str, defined_in: int | None = None, cause: str = "") -> Entry:
        """Record the next version; return its entry."""
        entry = Entry(self.count + 1, source, time.time(), defined_in, how, cause)
        self._entries.append(entry)
        self.count += 1
        return entry

    def take_back(self, entry: Entry) -> None:
        """Undo :meth:`add` of ``entry``, the last one (its definition failed)."""
        if self._entries and self._entries[-1] is entry:
            self._entries.pop()
            self.count -= 1

    def latest(self) -> Entry:
        """The version that ran last; raises :class:`HistoryError` if none is kept."""
        if not self._entries:
            msg = "no version is kept"
            raise HistoryError(msg)
        return self._entries[-1]

    def __getitem__(self, number: int) -> Entry:
        """Version ``number`` (``-1`` the last, ``-2`` the one before, ...).

        Raises
        ------
        HistoryError
            No such version is kept; the message says which are.
        """
        entries = self._entries
        if number < 0 and -number <= len(entries):
            return entries[number]
        first = self.count - len(entries) + 1
        if entries and first <= number <= self.count:
            return entries[number - first]
        msg = f"there is no version {number}: {self.kept()}"
        raise HistoryError(msg)

    def kept(self) -> str:
        """Which versions are kept, in words."""
        if not self._entries:
            return "no version is kept"
        first = self._entries[0].number
        if first == self.count:
            return f"only version {first} is kept"
        dropped = f" (older ones were dropped: the limit is {self.limit})" if first > 1 else ""
        return f"versions {first} to {self.count} are kept{dropped}"


def checked_limit(limit: int) -> int:
    """``limit``, if it is one; raises :class:`ValueError` if not."""
    if type(limit) is not int or limit < 1:
        msg = f"the history limit must be a whole number of versions, 1 or more, not {limit!r}"
        raise ValueError(msg)
    return limit
