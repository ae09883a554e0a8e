# SPDX-License-Identifier: MIT
"""What an export did (:func:`ipyexecmod.export`, ``%export_module``): each file, and how."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import overload

from .tables import html_table, text_table

__all__ = ["Exported", "ExportedFile"]

#: What happened to each file, in words.
STATUSES = {
    "written": "written",
    "replaced": "written over an earlier export",
    "unchanged": "unchanged",
    "left": "left: no such module now",
}


@dataclass(frozen=True)
class ExportedFile:
    """One file of an export."""

    path: Path
    #: The module whose source it holds.
    module: str
    #: Its version (``None``: a package made for its modules, with no cell of its own).
    version: int | None
    #: ``"written"`` (new), ``"replaced"`` (an earlier export of it), ``"unchanged"``
    #: (this version, exported before), ``"left"`` (an earlier export of a module that
    #: no longer exists, not written now).
    status: str
    #: Where the user's file (or folder) in its way was moved (``force``).
    moved_aside: Path | None = None

    def describe(self) -> str:
        what = STATUSES[self.status]
        if self.moved_aside is not None:
            what += f"; what was in its way moved to {self.moved_aside}"
        return what


@dataclass(frozen=True)
class Exported(Sequence[ExportedFile]):
    """The files an export of module :attr:`name` to :attr:`root` wrote, or found there
    already, parents first; displays as a table (paths relative to :attr:`root`)."""

    name: str
    root: Path
    files: tuple[ExportedFile, ...]

    @overload
    def __getitem__(self, index: int) -> ExportedFile: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[ExportedFile, ...]: ...
    def __getitem__(self, index: int | slice) -> ExportedFile | tuple[ExportedFile, ...]:
        return self.files[index]

    def __len__(self) -> int:
        return len(self.files)

    def __iter__(self) -> Iterator[ExportedFile]:
        return iter(self.files)

    @property
    def written(self) -> tuple[Path, ...]:
        """The files this export wrote (new or replaced)."""
        return tuple(f.path for f in self.files if f.status in ("written", "replaced"))

    def _rows(self) -> list[tuple[str, str, str, str]]:
        return [
            (
                os.path.relpath(file.path, self.root),
                file.module,
                "" if file.version is None else str(file.version),
                file.describe(),
            )
            for file in self.files
        ]

    def _title(self) -> str:
        return f"{self.name} exported to {self.root}"

    def __repr__(self) -> str:
        table: Sequence[Sequence[str]] = [("file", "module", "version", "what"), *self._rows()]
        return f"{self._title()}:\n{text_table(table)}"

    def _repr_html_(self) -> str:
        from .tables import escape

        caption = f"<p>{escape(self._title())}</p>"
        return caption + html_table(("file", "module", "version", "what"), self._rows())
