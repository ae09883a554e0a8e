# SPDX-License-Identifier: MIT
"""Cell modules as plain ``.py`` files: the version that ran, to hand on (:func:`export`).

Each file holds the source of the module's version that last ran (its history's latest
entry, not the notebook's current text), byte for byte, after a two-line provenance
header (:mod:`ipyexecmod.exportfile`).  The files import in any Python, without ipyexecmod.

A file is ipyexecmod's own while its header parses and the digest of the rest of the
file matches the header's: an export edited by hand is the user's again.  No record is
kept beside the files, so a folder of exports can be copied or committed as it is.
Nothing that is not ipyexecmod's own is ever written over: a file in the way is refused
(nothing at all is written), or with ``force`` moved aside (``PATH.orig``), never deleted.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from importlib.machinery import EXTENSION_SUFFIXES, all_suffixes
from pathlib import Path

from . import cells
from .cells.family import members, within
from .cells.history import Entry, HistoryError
from .exportfile import UnreadableSource, read_header, render, write_all
from .inspection.exports import Exported, ExportedFile
from .lasting import aside

__all__ = [
    "ExportError",
    "Exported",
    "ExportedFile",
    "FilesInTheWay",
    "NotExportable",
    "export",
]


class ExportError(Exception):
    """An export that did not happen; nothing was written.  The message says why."""


class NotExportable(ExportError, ValueError):
    """The name is not that of a cell module with a version that ran here, or its source
    cannot be written as a file Python reads back the same."""


class FilesInTheWay(ExportError, FileExistsError):
    """Files that ipyexecmod did not write (or that were changed since) are where the
    export must go; :attr:`moves` says where ``force`` would move each one."""

    def __init__(self, message: str, moves: tuple[tuple[str, str], ...]) -> None:
        super().__init__(message)
        #: ``(path, aside)`` for each file or folder in the way.
        self.moves = moves


def export(name: str, to: str | os.PathLike[str] = ".", *, force: bool = False) -> Exported:
    """Write cell module ``name``'s version that last ran as plain ``.py`` files under ``to``.

    A module goes to ``to/NAME.py``; a package to ``to/NAME/__init__.py`` with every cell
    module below it (``to/NAME/sub.py``, ...).  A dotted name (``pkg.sub``) writes its
    parents' ``__init__.py`` too, so that the files import; a parent package made for its
    modules, with no cell of its own, gets an ``__init__.py`` that holds only the header.
    ``to`` (``~`` expanded) is made if missing, with its parents.  An earlier export of a
    file, unedited, is replaced, or left as it is if it holds the same version
    ("unchanged"); the earlier exports of modules below ``name`` that no longer exist are
    left as they are, and listed.

    Raises
    ------
    TypeError
        ``name`` is not a str.
    NotExportable
        ``name`` is not a cell module that ran in this kernel (unknown, an ordinary module,
        or one restored from a lasting directory), its source cannot be written as a file
        that Python reads back the same, or ``to`` is not a directory.
    FilesInTheWay
        Files of the user's are where the export must go (unless ``force``: then each is
        moved aside to ``PATH.orig``, ``PATH.orig-2``, ..., never deleted).
    ExportError
        A file could not be written (the OSError chained).

    In each case nothing was written (but for a failure in the last step, renaming each
    file written in full into place: those renamed before it stay).
    """
    if not isinstance(name, str):
        msg = f"export() takes a module name as a str, not {type(name).__name__}"
        raise TypeError(msg)
    root = os.path.realpath(os.path.expanduser(os.fspath(to)))
    if os.path.lexists(root) and not os.path.isdir(root):
        msg = f"cannot export {name!r} to {root}: it is not a directory; give a directory"
        raise NotExportable(msg)
    with cells.finder.lock:  # a package's modules as of one moment, not mid-definition
        versions = _versions(name)
    files = [_planned(root, each) for each in versions]
    way = {path: instead for file in files for path, instead in _obstacles(root, file).items()}
    if way and not force:
        raise _refusal(name, root, way)
    done = _write(root, files, list(way))
    return Exported(name, Path(root), tuple(done) + _left(root, name, files))


# -- what to write --


@dataclass(frozen=True)
class _File:
    """A file to write: where, for which module and version, its bytes, and what is
    there now (``"written"``: nothing of ipyexecmod's)."""

    path: str
    module: str
    version: int | None
    data: bytes
    status: str

    def done(self, moved_aside: str | None) -> ExportedFile:
        moved = None if moved_aside is None else Path(moved_aside)
        return ExportedFile(Path(self.path), self.module, self.version, self.status, moved)


#: The longest file name (in bytes) that common file systems take.
_NAME_MAX = 255

#: One module to write: its name, its version (``None``: a package made for its modules,
#: with no cell of its own), and whether it is a package.
_Source = tuple[str, Entry | None, bool]


def _versions(name: str) -> list[_Source]:
    """The parents of ``name``, then ``name`` and every cell module below it, each with
    the version of it that last ran; raises NotExportable if one has none here."""
    finder = cells.finder
    if name not in finder:
        raise NotExportable(_not_a_cell_module(name))
    parts = name.split(".")
    names = [".".join(parts[:depth]) for depth in range(1, len(parts))]
    family = members(finder, name)
    restored = sorted(each for each, found in family.items() if each not in finder)
    if restored:
        raise NotExportable(_restored(name, restored))
    names += sorted(family, key=lambda each: each.split("."))
    return [_version(name, each) for each in names]


def _version(name: str, each: str) -> _Source:
    record = cells.finder.get(each)
    if record is None:  # a parent of name that is an ordinary package
        msg = (
            f"cannot export {name!r}: its package {each!r} is not a cell module, so its "
            f"files would not import as they do here; export a cell module of a name of its own"
        )
        raise NotExportable(msg)
    if record.implicit:
        return each, None, True
    try:
        return each, record.history.latest(), record.version.is_package
    except HistoryError as exc:
        msg = f"cannot export {each!r}: {exc}; run its cell again, then export"
        raise NotExportable(msg) from None


def _not_a_cell_module(name: str) -> str:
    """Why ``name`` has nothing to export: not a module name, an ordinary or a restored
    module, or not defined (yet)."""
    if not all(part.isidentifier() for part in name.split(".")):
        return f"{name!r} is not a module name: name a cell module, e.g. geo or shapes.circle"
    module = sys.modules.get(name)
    if cells.finder.is_restored(module):
        return _restored(name, [name])
    if module is not None:
        where = getattr(module, "__file__", None)
        hint = f"its file is {where}" if where else "it has no file"
        return f"{name!r} is not a cell module: only modules made with %%as_module export ({hint})"
    return f"there is no cell module {name!r}: define it first with %%as_module {name}"


def _restored(name: str, restored: list[str]) -> str:
    they = ", ".join(repr(each) for each in restored)
    return (
        f"cannot export {name!r}: {they} came from a copy that an earlier kernel wrote, and "
        f"no version of it ran in this kernel; run its cell again, then export"
    )


def _planned(root: str, source: _Source) -> _File:
    """The file for one module: where, its bytes, and whether it is there already."""
    name, entry, is_package = source
    parts = name.split(".")
    path = (
        os.path.join(root, *parts, "__init__.py")
        if is_package
        else (os.path.join(root, *parts) + ".py")
    )
    if max(len(os.fsencode(part)) for part in parts) > _NAME_MAX - len(".py"):
        msg = f"cannot export {name!r}: its name is too long for a file name"
        raise NotExportable(msg)
    try:
        data = render(name, entry, is_package)
    except UnreadableSource as exc:
        raise NotExportable(str(exc)) from None
    status = "written"
    if read_header(path) is not None:  # ipyexecmod's: written over, or left if the same
        status = "unchanged" if _holds(path, data) else "replaced"
    return _File(path, name, None if entry is None else entry.number, data, status)


def _holds(path: str, data: bytes) -> bool:
    try:
        with open(path, "rb") as file:
            return file.read() == data
    except OSError:
        return False


# -- what is in the way --


def _obstacles(root: str, file: _File) -> dict[str, bool]:
    """What is in the way of ``file``, each with whether the import system would take it
    instead of the file: something not a folder where a folder of its must go (then
    nothing below it), the file itself if not ipyexecmod's, a package folder or an
    extension module of a module's name (taken instead)."""
    folder = root
    for part in os.path.relpath(os.path.dirname(file.path), root).split(os.sep):
        folder = os.path.join(folder, part)
        if os.path.lexists(folder) and (os.path.islink(folder) or not os.path.isdir(folder)):
            return {folder: False}
    found = {file.path: False} if file.status == "written" and os.path.lexists(file.path) else {}
    stem = file.path.removesuffix(".py")
    if not stem.endswith(os.sep + "__init__") and _is_package_folder(stem):
        found[stem] = True
    found.update((stem + end, True) for end in EXTENSION_SUFFIXES if os.path.lexists(stem + end))
    return found


def _is_package_folder(path: str) -> bool:
    return os.path.isdir(path) and any(
        os.path.lexists(os.path.join(path, "__init__" + suffix)) for suffix in all_suffixes()
    )


def _refusal(name: str, root: str, way: dict[str, bool]) -> FilesInTheWay:
    """Why the export is refused: each thing in the way, and where ``force`` moves it."""
    moves = tuple((path, aside(path)) for path in way)
    reasons = []
    theirs = [path for path, instead in way.items() if not instead]
    if theirs:
        one = len(theirs) == 1
        reasons.append(
            f"{', '.join(theirs)} {'is' if one else 'are'} not ipyexecmod's export (or "
            f"{'was' if one else 'were'} edited since), and ipyexecmod never writes over what "
            f"it did not write"
        )
    taken = [path for path, instead in way.items() if instead]
    if taken:
        reasons.append(f"Python would import {', '.join(taken)} instead of the export")
    plan = ", ".join(f"{path} to {moved}" for path, moved in moves)
    msg = (
        f"cannot export {name!r} to {root}: {'; '.join(reasons)}; nothing was written.  "
        f"Move {'it' if len(way) == 1 else 'them'}, export elsewhere, or use force (--force) "
        f"to move {plan} (nothing is deleted)"
    )
    return FilesInTheWay(msg, moves)


# -- writing --


def _write(root: str, files: list[_File], way: list[str]) -> list[ExportedFile]:
    """Move ``way`` aside and write ``files`` (:func:`.exportfile.write_all`); what was
    done to each; raises ExportError if a file could not be written."""
    writes = [(file.path, file.data) for file in files if file.status != "unchanged"]
    try:
        moved = write_all(writes, way)
    except OSError as exc:
        msg = f"could not export to {root}: {exc}"
        raise ExportError(msg) from exc
    return [file.done(_moved_for(file.path, moved)) for file in files]


def _moved_for(path: str, moved: list[tuple[str, str]]) -> str | None:
    """Where what was in the way of the file at ``path`` went: the file, a folder above
    it, or the package folder or extension module beside it."""
    stem = path.removesuffix(".py")
    for found, moved_to in moved:
        if found in (path, stem) or path.startswith(found + os.sep) or found.startswith(stem + "."):
            return moved_to
    return None


# -- what earlier exports left --


def _left(root: str, name: str, files: list[_File]) -> tuple[ExportedFile, ...]:
    """The files of earlier exports (unedited) of ``name`` or modules below it that this
    one did not write: of modules that no longer exist, or a package's earlier ``.py``."""
    written = {file.path for file in files}
    top = os.path.join(root, *name.split("."))
    found = [top + ".py"] if os.path.isdir(top) else []
    for folder, folders, names in os.walk(top):
        folders[:] = sorted(each for each in folders if each.isidentifier())
        found += [os.path.join(folder, each) for each in sorted(names) if each.endswith(".py")]
    left = []
    for path in found:
        header = None if path in written else read_header(path)
        if header is not None and within(header.module, name):
            left.append(ExportedFile(Path(path), header.module, header.version, "left"))
    return tuple(left)
