# SPDX-License-Identifier: MIT
"""Lasting directories: on-disk copies kept across kernels, in a folder that may hold
the user's own files and that other kernels may share.

A :class:`LastingStore` is a :class:`~ipyexecmod.store.CellStore` that never writes
over, moves (without ``force``), repairs, restores or lists a file it did not write:
what it wrote is in its records (:mod:`ipyexecmod.ownership`), each written before
the files it lists.  Before a module is written, its place is checked: a file of the
user's there (or one that the import system would take instead: a package directory,
an extension module) is refused, or with ``force`` moved aside to ``PATH.orig``; a
module another running kernel wrote there is refused, or with ``force`` replaced (that
kernel finds out through :meth:`LastingStore.replaced`).  The checks are made again
under a lock on the directory just before anything is written, as other kernels may
write there meanwhile.  A kernel that starts using the directory takes over what the
earlier kernels of its notebook wrote (:meth:`LastingStore.open`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from dataclasses import replace
from importlib.machinery import EXTENSION_SUFFIXES, all_suffixes

from ._files import identity
from .ownership import (
    Record,
    Records,
    Refusal,
    Writer,
    digest,
    this_notebook,
)
from .store import CellStore, MemoryOnly, Saved, StoreError, kernel_store

__all__ = ["LastingStore", "lasting_store", "placement"]


class LastingStore(CellStore):
    """A lasting directory of cell-module copies; see the module docstring.

    ``directory`` may be a symbolic link to a directory: it is resolved once, here (what
    is inside is never followed)."""

    lasting = True

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        super().__init__(os.path.realpath(os.path.expanduser(os.fspath(directory))))
        #: What it wrote, and which kernel.
        self.records = Records(self.directory)
        # The modules this process last wrote (or took over) here, with their records'
        # identities: another kernel that replaces one changes it.
        self._mine: dict[str, tuple[int, ...] | None] = {}
        self._folder_seen: tuple[int, ...] | None = None  # the records' folder, last asked

    # -- before writing --

    def refusal(self, name: str, is_package: bool) -> Refusal | None:
        """Why module ``name`` may not be written here without ``force``: something the
        store did not write is in the way, or another running kernel wrote it; ``None``
        if it may."""
        if self._still_mine(name, is_package):
            return None
        way = self._in_the_way(name, is_package)
        if way:
            return files_in_the_way(name, self.directory, way)
        other = self._other_writer(name)
        if other is not None and other.is_running():
            return written_by_another(name, self.directory, other)
        return None

    def _clear_way(self, name: str, is_package: bool, force: bool) -> Saved:
        """Move aside what is in the way of module ``name`` (``force``), or refuse."""
        if not force:
            problem = self.refusal(name, is_package)
            if problem is not None:
                raise StoreError(problem.found_late())
        moved = tuple((path, move_aside(path)) for path in self._in_the_way(name, is_package))
        other = self._other_writer(name)
        return Saved(moved, None if other is None or other.is_succeeded_here() else other)

    def _still_mine(self, name: str, is_package: bool) -> bool:
        """Whether module ``name``'s files and record here are as this process last wrote
        them (three stat() calls)."""
        path, cached = self.paths(name, is_package)
        written = self._written.get(path)
        if written is None or name not in self._mine:
            return False
        try:
            files = (identity(path), identity(cached))
        except OSError:
            return False
        return files == written[1:] and self._mine[name] == self.records.identity_of(name)

    def _in_the_way(self, name: str, is_package: bool) -> list[str]:
        """What the store did not write and that writing module ``name`` would replace, or
        that the import system would take instead of it: its source, its ``.pyc``, an
        extension module of its name, a parent's ``__init__.py`` (and ``.pyc``), or a
        directory ``NAME/`` holding nothing of the store's (a package's place; a module's
        too, if it is a package) as a whole."""
        folder = os.path.join(self.directory, *name.split("."))
        inits = [os.path.join(folder, "__init__" + suffix) for suffix in all_suffixes()]
        way = []
        if os.path.lexists(folder) and not self._holds_folder(name, inits[0]):
            if is_package or any(os.path.lexists(init) for init in inits):
                way.append(folder)
        own = list(self.paths(name, is_package))
        if is_package:
            own += [os.path.join(folder, "__init__" + suffix) for suffix in EXTENSION_SUFFIXES]
        else:
            own += [folder + suffix for suffix in EXTENSION_SUFFIXES]
        for init in self._parent_inits(name):
            own += [init, importlib.util.cache_from_source(init)]
        inside = folder + os.sep
        return way + [
            path
            for path in own
            if not (way and path.startswith(inside))
            and os.path.lexists(path)
            and not self.wrote(path)
        ]

    def _holds_folder(self, name: str, init: str) -> bool:
        """Whether the directory of package ``name`` is the store's: its ``__init__.py``
        is, or a module below it is."""
        return self.wrote(init) or any(r.name.startswith(name + ".") for r in self.records.all())

    def _other_writer(self, name: str) -> Writer | None:
        """The writer of module ``name``'s copy here, if another process and the copy is
        still as it wrote it."""
        record = self.records.get(name)
        if record is None or record.writer.is_this_process():
            return None
        path = self.paths(name, record.is_package)[0]
        return record.writer if self.records.wrote(path) else None

    # -- writing --

    def _record(
        self,
        name: str,
        is_package: bool,
        path: str,
        data: bytes,
        cached: str,
        pyc: bytes,
        replaced: Writer | None,
    ) -> None:
        """Write module ``name``'s record, before its files: its source (as it will be,
        and as it was, in case the writing stops half-way), its ``.pyc``, and the
        parents' ``__init__.py`` files the store creates for it, now or before; and the
        notebooks whose copies it replaces."""
        records, relative = self.records, self.records.relative
        before = records.get(name)
        files: dict[str, tuple[str, ...]] = {}
        for init in self._parent_inits(name):
            if not os.path.lexists(init):
                files[relative(init)] = (digest(b""),)
            elif before is not None and relative(init) in before.files:
                files[relative(init)] = before.files[relative(init)]
        was = () if before is None else before.files.get(relative(path), ())[:1]
        files[relative(path)] = (digest(data), *was)
        files[relative(cached)] = (digest(pyc),)
        here = this_notebook()
        displaced = [n for n in (() if before is None else before.displaced) if n != here]
        if replaced is not None and replaced.notebook not in (None, here, *displaced):
            displaced.append(replaced.notebook)  # type: ignore[arg-type]  # not None
        records.put(Record(name, is_package, files, Writer.here(), tuple(displaced)))
        self._mine[name] = records.identity_of(name)

    def _locked(self) -> contextlib.AbstractContextManager[None]:
        return self.records.locked()

    # -- what it holds --

    def open(self) -> list[str]:
        """Start using the directory in this process: take over what the exited kernels
        of this notebook wrote (so that other kernels are refused it, and this one is told
        if one replaces it), repair the ``.pyc`` files, and return what this notebook
        must be told: the copies of its that another notebook's kernel replaced."""
        with contextlib.suppress(OSError), self._locked():
            for record in self.records.all():
                writer = record.writer
                path = self.paths(record.name, record.is_package)[0]
                if writer.is_this_process() or not writer.is_succeeded_here():
                    continue
                if self.wrote(path):
                    taken = replace(Writer.here(), at=writer.at)  # written then, kept now
                    self.records.put(replace(record, writer=taken))
                    self._mine[record.name] = self.records.identity_of(record.name)
        self.repair()
        here = this_notebook()
        return [
            taken_notice(record, self.directory)
            for record in self.records.all()
            if here is not None and here in record.displaced and record.writer.notebook != here
        ]

    def copy_of(self, name: str) -> tuple[str, bool]:
        """The source of module ``name``'s copy here, and whether it is a package."""
        record = self.records.get(name)
        if record is None:
            return super().copy_of(name)
        return self.paths(name, record.is_package)[0], record.is_package

    def has_package(self, name: str) -> bool:
        """Whether the store holds module ``name`` as a package that it wrote."""
        path, is_package = self.copy_of(name)
        return is_package and self.wrote(path)

    def wrote(self, path: object) -> bool:
        """Whether the file at ``path`` is one this store wrote, unchanged since (or the
        ``.pyc`` of such a source)."""
        return isinstance(path, str) and self.records.wrote(path)

    def module_names(self) -> list[str]:
        """The modules the store wrote and holds as written, parents first."""
        records = self.records.all()
        return [r.name for r in records if self.wrote(self.paths(r.name, r.is_package)[0])]

    def writer_of(self, name: str) -> Writer | None:
        record = self.records.get(name)
        return None if record is None else record.writer

    def kept_under(self, name: str) -> list[str]:
        """The modules below package ``name`` whose copies here this kernel succeeds to."""
        if not os.path.isdir(os.path.join(self.directory, *name.split("."))):
            return []  # the usual case: one stat()
        return [
            record.name
            for record in self.records.all()
            if record.name.startswith(name + ".")
            and record.writer.is_succeeded_here()
            and self.wrote(self.paths(record.name, record.is_package)[0])
        ]

    def forget(self, name: str) -> bool:
        """Remove module ``name``'s copy, which another place now holds, if this kernel
        succeeds to it (it wrote it, or an exited kernel of its notebook did) and it has
        no submodules here; return whether it did.  A copy left behind would be what a
        new kernel imports."""
        if self.records.get(name) is None:
            return False  # the usual case: one stat()
        try:
            with self._locked():
                record = self.records.get(name)
                if record is None or not record.writer.is_succeeded_here():
                    return False
                if any(r.name.startswith(name + ".") for r in self.records.all()):
                    return False
                path = self.paths(name, record.is_package)[0]
                if not self.wrote(path):
                    return False
                self._remove_form(name, is_package=record.is_package)
                self.records.drop(name)
        except OSError:
            return False  # left as it is: the next write there refuses or takes it
        self._mine.pop(name, None)
        self._written.pop(path, None)
        return True

    def replaced(self) -> list[Record]:
        """The records of modules this process wrote (or took over) here that another
        kernel has replaced since (each told once)."""
        try:
            folder: tuple[int, ...] | None = identity(self.records.folder)
        except OSError:
            folder = None
        if folder == self._folder_seen:
            return []  # one stat(): a record written or removed changes its folder
        self._folder_seen = folder  # before the scan: what changes during it, next time
        lost = []
        for name, known in list(self._mine.items()):
            now = self.records.identity_of(name)
            if now == known:
                continue
            record = self.records.get(name)
            if record is not None and record.writer.is_this_process():
                self._mine[name] = now
                continue
            del self._mine[name]
            if record is not None:
                lost.append(record)
        return lost


_stores: dict[str, LastingStore] = {}


def lasting_store(directory: str | os.PathLike[str]) -> LastingStore:
    """The store in ``directory`` (kept across processes), put on :data:`sys.path`."""
    key = os.path.realpath(os.path.expanduser(os.fspath(directory)))
    store = _stores.get(key)
    if store is None:
        store = _stores[key] = LastingStore(key)
    store.install()
    return store


def placement(*, persist: bool, directory: str | None) -> CellStore | MemoryOnly:
    """Where a cell module's copy goes: in memory only (with a note in the private
    directory), in the lasting ``directory``, or in the private directory."""
    if not persist:
        return MemoryOnly(kernel_store())
    return lasting_store(directory) if directory else kernel_store()


# -- moving aside, and what users are told --


def aside(path: str) -> str:
    """Where :func:`move_aside` would move ``path`` now: ``PATH.orig``, or ``PATH.orig-2``,
    ``-3``, ... (never a name that exists; never one Python would import)."""
    target, number = f"{path}.orig", 1
    while os.path.lexists(target):
        number += 1
        target = f"{path}.orig-{number}"
    return target


def move_aside(path: str) -> str:
    """Rename the file or directory at ``path`` to :func:`aside`'s name; return it."""
    target = aside(path)
    os.rename(path, target)
    return target


def files_in_the_way(name: str, directory: str, way: list[str]) -> Refusal:
    """Why module ``name`` is not written over the user's files ``way``."""
    they = way[0] if len(way) == 1 else ", ".join(way[:-1]) + " and " + way[-1]
    were = "was" if len(way) == 1 else "were"
    moves = ", ".join(f"{path} to {aside(path)}" for path in way)
    reason = (
        f"{they} {were} not written by ipyexecmod (or changed after it was), and "
        f"ipyexecmod never replaces, or hides, what it did not write"
    )
    choices = "choose another name or another persist_dir"
    return Refusal(name, directory, reason, choices, f"to move {moves} first (nothing is deleted)")


def written_by_another(name: str, directory: str, writer: Writer) -> Refusal:
    """Why module ``name``, written by another running kernel, is not replaced."""
    reason = (
        f"{writer.describe()} wrote it there and is still running, and its worker processes "
        f"import that copy"
    )
    choices = "choose another name, or give this notebook a persist_dir of its own"
    return Refusal(
        name, directory, reason, choices, "to replace it (that kernel is told at its next cell)"
    )


def taken_notice(record: Record, directory: str) -> str:
    """What a kernel of a notebook whose copy ``record`` replaced is told."""
    return (
        f"the copy of {record.name!r} in {directory} is not this notebook's any more: "
        f"{record.writer.describe()} replaced it, so `import {record.name}` gives that "
        f"version; run this notebook's cell for it again to put its own back (with --force "
        f"while that kernel runs), or give this notebook a persist_dir of its own"
    )
