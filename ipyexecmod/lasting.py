# SPDX-License-Identifier: MIT
"""Lasting directories: on-disk copies kept across kernels, in a folder that may hold
the user's own files and that other kernels may share.

A :class:`LastingStore` is a :class:`~ipyexecmod.store.CellStore` that never writes
over, moves (without ``force``), repairs, restores or lists a file it did not write:
what it wrote is in its records (:mod:`ipyexecmod.ownership`).  Before a module is
written, its place is checked: a file of the user's there is refused, or with
``force`` moved aside to ``PATH.orig``; a module another running kernel wrote there is
refused, or with ``force`` replaced (that kernel finds out through :meth:`replaced`).
The checks are made again under a lock on the directory just before anything is
written, as other kernels may write there meanwhile.
"""

from __future__ import annotations

import contextlib
import os

from ._files import identity
from .ownership import Record, Records, Refusal, Writer, digest, same_notebook, this_notebook
from .store import CellStore, MemoryOnly, Saved, StoreError, kernel_store

__all__ = ["LastingStore", "lasting_store", "placement"]


class LastingStore(CellStore):
    """A lasting directory of cell-module copies; see the module docstring."""

    lasting = True

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        super().__init__(directory)
        #: What it wrote, and which kernel.
        self.records = Records(self.directory)
        # The modules this process last wrote here, with their records' identities.
        self._mine: dict[str, tuple[int, ...] | None] = {}

    def refusal(self, name: str, is_package: bool) -> Refusal | None:
        """Why module ``name`` may not be written here without ``force``: a file the store
        did not write is in the way, or another running kernel wrote it; ``None`` if it may."""
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
        """Move aside the files in the way of module ``name`` (``force``) or refuse."""
        if not force:
            problem = self.refusal(name, is_package)
            if problem is not None:
                raise StoreError(str(problem).replace("cannot define", "did not write", 1))
        way = self._in_the_way(name, is_package)
        moved = tuple((path, move_aside(path)) for path in way)
        other = self._other_writer(name)
        if other is not None and other.is_succeeded_here():
            other = None  # a kernel of this notebook, restarted: this is its successor
        return Saved(moved, other)

    def _still_mine(self, name: str, is_package: bool) -> bool:
        """Whether module ``name``'s files and record here are as this process last wrote
        them (two stat() calls each)."""
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
        """What the store did not write and writing module ``name`` would replace, or be
        hidden by: its source or ``.pyc``, a parent's ``__init__.py``, or a directory
        ``NAME/`` (a package's place; a module's too, if it holds an ``__init__.py``) that
        holds nothing of the store's."""
        folder = os.path.join(self.directory, *name.split("."))
        init = os.path.join(folder, "__init__.py")
        if os.path.lexists(folder) and (is_package or os.path.lexists(init)):
            inside = name + "."
            if not (self.wrote(init) or any(r.name.startswith(inside) for r in self.records.all())):
                return [folder]  # the whole of it goes aside, or none
        own = [*self.paths(name, is_package), *self._parent_inits(name)]
        return [p for p in own if os.path.lexists(p) and not self.wrote(p)]

    def _other_writer(self, name: str) -> Writer | None:
        """The writer of module ``name``'s copy here, if another process and the copy is
        still as it wrote it."""
        record = self.records.get(name)
        if record is None or record.writer.is_this_process():
            return None
        path = self.paths(name, record.is_package)[0]
        return record.writer if self.records.wrote(path) else None

    def _record(
        self,
        name: str,
        is_package: bool,
        path: str,
        data: bytes,
        created: list[str],
        replaced: Writer | None,
    ) -> None:
        """Write module ``name``'s record: its source, and the parents' ``__init__.py``
        files the store created for it, now or before."""
        records = self.records
        before = records.get(name)
        files = {records.relative(p): digest(b"") for p in created}
        if before is not None:
            inits = {records.relative(p) for p in self._parent_inits(name)}
            files.update((f, d) for f, d in before.files.items() if f in inits)
        files[records.relative(path)] = digest(data)
        if replaced is None and before is not None and before.replaced is not None:
            if not same_notebook(before.replaced):  # until that notebook takes it back
                replaced = before.replaced
        records.put(Record(name, is_package, files, Writer.here(), replaced), path)
        self._mine[name] = records.identity_of(name)

    def _locked(self) -> contextlib.AbstractContextManager[None]:
        return self.records.locked()

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

    def taken_from_this_notebook(self) -> list[Record]:
        """The records of modules this notebook's kernels wrote here that a kernel of
        another notebook has replaced since (where the notebooks are known)."""
        here = this_notebook()
        if here is None:
            return []
        return [
            record
            for record in self.records.all()
            if record.replaced is not None
            and record.replaced.notebook == here
            and record.writer.notebook != here
        ]

    def writer_of(self, name: str) -> Writer | None:
        record = self.records.get(name)
        return None if record is None else record.writer

    def kept_under(self, name: str) -> list[str]:
        return [
            record.name
            for record in self.records.all()
            if record.name.startswith(name + ".")
            and record.writer.is_succeeded_here()
            and self.wrote(self.paths(record.name, record.is_package)[0])
        ]

    def forget(self, name: str) -> bool:
        """Remove module ``name``'s copy, which another place now holds, if this process
        wrote it (or a kernel of this notebook that has exited) and it has no submodules
        here; return whether it did.  A copy left behind would be what a new kernel imports."""
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
        """The records of modules this process wrote here that another kernel has
        replaced since (each told once)."""
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
    key = os.path.abspath(os.path.expanduser(os.fspath(directory)))
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
    was = "was" if len(way) == 1 else "were"
    moves = ", ".join(f"{path} to {aside(path)}" for path in way)
    problem = (
        f"cannot define {name!r} in {directory}: {they} {was} not written by ipyexecmod, "
        f"or changed after it was written, and ipyexecmod never replaces a file it did not "
        f"write; choose another name or another persist_dir"
    )
    return Refusal(problem, f"to move {moves} first (nothing is deleted)")


def written_by_another(name: str, directory: str, writer: Writer) -> Refusal:
    """Why module ``name``, written by another running kernel, is not replaced."""
    problem = (
        f"cannot define {name!r} in {directory}: {writer.describe()} wrote it there and is "
        f"still running, and its worker processes import that copy; choose another name, "
        f"or give this notebook a persist_dir of its own"
    )
    return Refusal(problem, "to replace it (that kernel is told at the end of its next cell)")


def taken_notice(record: Record, directory: str) -> str:
    """What a kernel of the notebook whose copy ``record`` replaced is told."""
    return (
        f"the copy of {record.name!r} in {directory} is not this notebook's any more: "
        f"{record.writer.describe()} replaced it, so `import {record.name}` gives that "
        f"version; run this notebook's cell for it again to put its own back (with --force "
        f"while that kernel runs), or give this notebook a persist_dir of its own"
    )


def rehomed_notice(name: str, directory: str, writer: Writer) -> str:
    """What a running kernel whose copy another kernel replaced is told."""
    return (
        f"{writer.describe()} replaced this kernel's copy of {name!r} in {directory} with "
        f"its own; this kernel keeps its version of {name!r}, and its worker processes now "
        f"import it from the kernel's private directory; define it here again with --force "
        f"to put it back there, or give this notebook a persist_dir of its own"
    )
