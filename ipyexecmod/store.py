# SPDX-License-Identifier: MIT
"""On-disk copies of cell modules, so that other processes can import them.

A :class:`CellStore` is a directory on :data:`sys.path` holding, for each cell
module, its source as ``NAME.py`` (a dotted name as a package directory with
``__init__.py`` files) and its bytecode as ``__pycache__/NAME.<cache tag>.pyc``.
The bytecode is hash-based and checked (PEP 552): the import system loads it
only for the exact source beside it, so no edit, however fast, can run stale
code.  Each file is written to a temporary name and renamed into place, so a
crash leaves the old file or the new one, never a torn one.  Files are created
with mode ``0o600`` and directories with ``0o700``, without following a
symbolic link planted where one of them goes.

Where and when: a kernel's private directory is memory-backed (``/dev/shm``)
where the platform has one with room, else in the temporary directory; a
lasting directory is wherever the user says.  A module's files are complete
once its definition has committed (when ``define`` returns; for a module that
another cell module's code defines, when that definition returns), so before
any process, task or shipment that could need them can start.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import keyword
import os
import shutil
import sys
from dataclasses import dataclass
from types import CodeType
from typing import NamedTuple

from . import ownership
from ._files import (
    StoreError,
    identity,
    make_directory,
    new_private_directory,
    unchanged,
    write_atomic,
)
from .ownership import Record, Records, Refusal, Writer
from .pyc import hash_pyc, is_sound_hash_pyc
from .workers import catchup
from .workers.board import Board

__all__ = [
    "STORE_SHOWN",
    "CellStore",
    "MemoryOnly",
    "Saved",
    "StoreError",
    "display_path",
    "kernel_board",
    "kernel_store",
    "lasting_store",
    "placement",
]


class _Written(NamedTuple):
    """A source and the identities of its file and its ``.pyc``, as last written or checked."""

    data: bytes
    source: tuple[int, ...]
    cached: tuple[int, ...]


class CellStore:
    """A directory of cell-module copies; see the module docstring."""

    def __init__(self, directory: str | os.PathLike[str], *, lasting: bool = True) -> None:
        self.directory = os.path.abspath(os.fspath(directory))
        #: What a lasting store wrote, and which kernel (:mod:`ipyexecmod.ownership`); a
        #: private directory has none: everything in it is its own.
        self.records = Records(self.directory) if lasting else None
        # Per source path: what was last written or checked there, so that writing an
        # unchanged version costs two stat() calls, and a changed one no read while the
        # files are the ones written here.
        self._written: dict[str, _Written] = {}
        self._paths: dict[tuple[str, bool], tuple[str, str]] = {}  # worked out once a name
        # The modules this process last wrote here, with their records' identities.
        self._mine: dict[str, tuple[int, ...] | None] = {}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.directory!r}>"

    @classmethod
    def temporary(cls) -> CellStore:
        """A new private directory (mode 0o700) for this process, removed when it exits.

        It is memory-backed (``/dev/shm``) where the platform has one with room,
        else in :func:`tempfile.gettempdir`.  A process killed outright (a kernel
        restarted with SIGKILL) cannot remove its directory; the directory names
        the process, and the next one removes it.
        """
        store = cls(new_private_directory(), lasting=False)
        atexit.register(_remove_own, store.directory, os.getpid())
        return store

    def install(self) -> None:
        """Put the directory on :data:`sys.path`, so spawned children find it too: first,
        or right after the kernel's board (whose stand-ins import the latest copies)."""
        if self.directory not in sys.path:
            boot = _boards[0].boot if _boards else None
            sys.path.insert(sys.path.index(boot) + 1 if boot in sys.path else 0, self.directory)

    def paths(self, name: str, is_package: bool) -> tuple[str, str]:
        """Where module ``name``'s source and ``.pyc`` go (``name`` is a checked dotted
        name: no path can escape the directory)."""
        paths = self._paths.get((name, is_package))
        if paths is None:
            path = self.source_path(name, is_package)
            paths = self._paths[name, is_package] = path, importlib.util.cache_from_source(path)
        return paths

    def source_path(self, name: str, is_package: bool) -> str:
        """Where module ``name``'s source goes."""
        parts = name.split(".")
        if is_package:
            return os.path.join(self.directory, *parts, "__init__.py")
        return os.path.join(self.directory, *parts[:-1], parts[-1] + ".py")

    def write(
        self, name: str, source: str, code: CodeType, *, is_package: bool, force: bool = False
    ) -> tuple[str, str]:
        """Write module ``name``'s source and checked-hash bytecode; return both paths.

        ``code`` must have been compiled from ``source`` (under any filename: the
        ``.pyc`` names the source's path).  Raises :class:`StoreError` if the
        directory cannot take them, or (a lasting store, unless ``force``) if a file
        the store did not write is in the way or another running kernel wrote the
        module (see :meth:`refusal`); with ``force``, files in the way are moved aside.
        """
        path, cached = self.paths(name, is_package)
        data = source.encode("utf-8")
        self.save(name, path, cached, data, code, is_package=is_package, force=force)
        return path, cached

    def save(
        self,
        name: str,
        path: str,
        cached: str,
        data: bytes,
        code: CodeType,
        *,
        is_package: bool,
        force: bool = False,
    ) -> Saved:
        """:meth:`write`, with the paths (from :meth:`paths`) and the encoded source given."""
        written = self._written.get(path)
        current = False  # whether the files are those last written or checked here
        if written is not None:
            try:
                current = (identity(path), identity(cached)) == written[1:]
            except OSError:
                pass  # gone: write as usual
            if current and written.data == data:
                return Saved()
        try:
            if not current:
                self._make_directory()
            with self._locked():
                saved = Saved() if current else self._clear_way(name, is_package, force)
                created = [] if current else self._make_parents(name)
                if is_package and not current:
                    make_directory(os.path.dirname(path))
                    self._remove_form(name, is_package=False)  # a module became a package
                elif not current:
                    self._remove_form(name, is_package=True)  # a package became a module
                fresh = current or not unchanged(path, data)
                if fresh:
                    write_atomic(path, data)
                if fresh or not is_sound_hash_pyc(cached, data):
                    if not current:
                        make_directory(os.path.dirname(cached))
                    # The code of the file at `path`, as Python would compile it, whatever
                    # name it was compiled under (a cell module's version has one of its own).
                    write_atomic(cached, hash_pyc(data, code))
                self._written[path] = _Written(data, identity(path), identity(cached))
                self._record(name, is_package, path, data, created, saved.replaced)
        except OSError as exc:
            self._written.pop(path, None)
            if isinstance(exc, StoreError):
                raise
            msg = f"could not write {name!r} to {self.directory}: {exc.strerror or exc}"
            raise StoreError(msg) from exc
        return saved

    def refusal(self, name: str, is_package: bool) -> Refusal | None:
        """Why module ``name`` may not be written here without ``force``: a file the store
        did not write is in the way, or another running kernel wrote it; ``None`` if it may."""
        if self.records is None or self._still_mine(name, is_package):
            return None
        way = self._in_the_way(name, is_package)
        if way:
            return ownership.files_in_the_way(name, self.directory, way)
        other = self._other_writer(name)
        if other is not None and other.is_running():
            return ownership.written_by_another(name, self.directory, other)
        return None

    def _clear_way(self, name: str, is_package: bool, force: bool) -> Saved:
        """Move aside the files in the way of module ``name`` (``force``) or refuse."""
        if self.records is None:
            return Saved()
        if not force:
            problem = self.refusal(name, is_package)
            if problem is not None:
                raise StoreError(str(problem).replace("cannot define", "did not write", 1))
        way = self._in_the_way(name, is_package)
        moved = tuple((path, ownership.move_aside(path)) for path in way)
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
        assert self.records is not None  # only a lasting store has anything of its own
        return files == written[1:] and self._mine[name] == self.records.identity_of(name)

    def _in_the_way(self, name: str, is_package: bool) -> list[str]:
        """What the store did not write and writing module ``name`` would replace, or be
        hidden by: its source or ``.pyc``, a parent's ``__init__.py``, or a directory
        ``NAME/`` (a package's place; a module's too, if it holds an ``__init__.py``) that
        holds nothing of the store's."""
        assert self.records is not None
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
        assert self.records is not None
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
        if self.records is None:
            return
        records = self.records
        before = records.get(name)
        files = {records.relative(p): ownership.digest(b"") for p in created}
        if before is not None:
            inits = {records.relative(p) for p in self._parent_inits(name)}
            files.update((f, d) for f, d in before.files.items() if f in inits)
        files[records.relative(path)] = ownership.digest(data)
        if replaced is None and before is not None and before.replaced is not None:
            if not ownership.same_notebook(before.replaced):  # until that notebook takes it back
                replaced = before.replaced
        records.put(Record(name, is_package, files, Writer.here(), replaced), path)
        self._mine[name] = records.identity_of(name)

    def _locked(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext() if self.records is None else self.records.locked()

    def take(self, path: str, cached: str, data: bytes) -> None:
        """Know the copy at ``path`` (and ``cached``), which holds ``data``, as one this
        process wrote: a copy an earlier kernel wrote, which this one takes over."""
        try:
            if unchanged(path, data) and is_sound_hash_pyc(cached, data):
                self._written[path] = _Written(data, identity(path), identity(cached))
        except OSError:
            pass

    def holds(self, path: str, data: bytes) -> bool:
        """Whether the source at ``path`` is ``data``, as written or checked here last."""
        written = self._written.get(path)
        return written is not None and written.data == data

    def _make_directory(self) -> None:
        """Make the directory, and its parents; an import that looked for modules in it
        while it was missing cached that it has none, which would hide those that other
        kernels write there."""
        os.makedirs(os.path.dirname(self.directory), exist_ok=True)
        make_directory(self.directory)
        if (
            self.directory in sys.path_importer_cache
            and not sys.path_importer_cache[self.directory]
        ):
            del sys.path_importer_cache[self.directory]

    def _parent_inits(self, name: str) -> list[str]:
        parts = name.split(".")
        return [
            os.path.join(self.directory, *parts[:depth], "__init__.py")
            for depth in range(1, len(parts))
        ]

    def _make_parents(self, name: str) -> list[str]:
        """Make the parent packages of module ``name``; return the ``__init__.py`` files
        created (never one that exists)."""
        created = []
        for init in self._parent_inits(name):
            make_directory(os.path.dirname(init))
            if not os.path.lexists(init):
                write_atomic(init, b"")
                created.append(init)
        return created

    def _remove_form(self, name: str, *, is_package: bool) -> None:
        """Remove module ``name``'s copy in the other form (``name.py`` or
        ``name/__init__.py``) and its ``.pyc``, if the store wrote them, so that one copy
        is left; a package's directory goes too if nothing else is left in it."""
        source, cached = self.paths(name, is_package)
        if not self.wrote(source):
            return
        for stale in (cached, source):
            if self.wrote(stale):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(stale)
        if is_package:
            for folder in (os.path.dirname(cached), os.path.dirname(source)):
                with contextlib.suppress(OSError):  # not empty, or gone
                    os.rmdir(folder)

    def repair(self) -> list[str]:
        """Rewrite every ``.pyc`` of the store's modules that Python would not load as it
        should (only those of sources the store wrote).

        One is rewritten when it is missing, truncated, written by another Python
        (magic number), not a checked hash of the source beside it, or has bytecode
        that does not unmarshal.  Returns the paths rewritten.
        """
        rewritten = []
        for name in self.module_names():
            path, cached = self.paths(name, self.copy_of(name)[1])
            try:
                with open(path, "rb") as file:
                    source = file.read()
                if is_sound_hash_pyc(cached, source):
                    continue
                code = compile(source, path, "exec", dont_inherit=True)
                make_directory(os.path.dirname(cached))
                write_atomic(cached, hash_pyc(source, code))
            except (OSError, SyntaxError, ValueError):
                continue  # Python will compile the source, or report its error, itself
            rewritten.append(cached)
        return rewritten

    def copy_of(self, name: str) -> tuple[str, bool]:
        """The source of module ``name``'s copy here, and whether it is a package."""
        record = None if self.records is None else self.records.get(name)
        if record is not None:
            is_package = record.is_package
        else:
            is_package = os.path.isdir(os.path.join(self.directory, *name.split(".")))
        return self.paths(name, is_package)[0], is_package

    def has_package(self, name: str) -> bool:
        """Whether the store holds module ``name`` as a package that it wrote."""
        if self.records is None:
            return False
        path, is_package = self.copy_of(name)
        return is_package and self.wrote(path)

    def wrote(self, path: object) -> bool:
        """Whether the file at ``path`` is one this store wrote (in a private directory:
        any file in it), unchanged since."""
        if not isinstance(path, str):
            return False
        if self.records is not None:
            return self.records.wrote(path)
        return os.path.abspath(path).startswith(self.directory + os.sep)

    def module_names(self) -> list[str]:
        """The modules the store wrote and holds as written, parents first."""
        if self.records is not None:
            records = self.records.all()
            return [r.name for r in records if self.wrote(self.paths(r.name, r.is_package)[0])]
        names = []
        for root, directories, files in os.walk(self.directory):
            directories[:] = sorted(d for d in directories if d.isidentifier())
            relative = os.path.relpath(root, self.directory)
            prefix = [] if relative == "." else relative.split(os.sep)
            for file in sorted(files):
                stem, extension = os.path.splitext(file)
                if extension != ".py" or not stem.isidentifier() or keyword.iskeyword(stem):
                    continue
                parts = prefix if stem == "__init__" else [*prefix, stem]
                if parts:
                    names.append(".".join(parts))
        return sorted(names, key=lambda n: (n.count("."), n))

    def taken_from_this_notebook(self) -> list[Record]:
        """The records of modules this notebook's kernels wrote here that a kernel of
        another notebook has replaced since (where the notebooks are known)."""
        here = ownership.this_notebook()
        if self.records is None or here is None:
            return []
        return [
            record
            for record in self.records.all()
            if record.replaced is not None
            and record.replaced.notebook == here
            and record.writer.notebook != here
        ]

    def forget(self, name: str) -> bool:
        """Remove module ``name``'s copy, which another place now holds, if this process
        wrote it (or a kernel of this notebook that has exited) and it has no submodules
        here; return whether it did.  A copy left behind would be what a new kernel imports."""
        if self.records is None or self.records.get(name) is None:
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
            assert self.records is not None  # only a lasting store has any
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


class Saved(NamedTuple):
    """What writing a copy did besides: the files it moved aside (``(path, aside)``),
    and the other kernel whose copy it replaced, if one of another notebook or running."""

    moved: tuple[tuple[str, str], ...] = ()
    replaced: Writer | None = None


def _remove_own(directory: str, owner: int) -> None:
    """Remove ``directory`` at exit, in the process that made it (not in a child forked
    from it that exits through :func:`sys.exit`)."""
    if os.getpid() == owner:
        shutil.rmtree(directory, ignore_errors=True)


@dataclass(frozen=True)
class MemoryOnly:
    """Where a module kept in memory only goes: nowhere, but the board of ``note_in``
    (the private directory) tells other processes that import it why they cannot."""

    note_in: CellStore


_stores: dict[str | None, CellStore] = {}
_boards: list[Board] = []


def kernel_store() -> CellStore:
    """This process's private store, made on first use with its board
    (:mod:`ipyexecmod.workers`), both put on :data:`sys.path`."""
    store = _stores.get(None)
    if store is None:
        store = _stores[None] = CellStore.temporary()
        board = Board(store.directory)
        _boards.append(board)
        catchup.serve(board)
    if _boards[0].boot not in sys.path:
        sys.path.insert(0, _boards[0].boot)
    store.install()
    return store


def _forget_kernel_store() -> None:
    """In a child forked from the kernel: the kernel's private directory and board stay
    the kernel's (the child follows the board: :mod:`ipyexecmod.workers`)."""
    _stores.pop(None, None)
    _boards.clear()


os.register_at_fork(after_in_child=_forget_kernel_store)


def kernel_board() -> Board | None:
    """The board of this process's private store, if it has been made."""
    return _boards[0] if _boards else None


def lasting_store(directory: str | os.PathLike[str]) -> CellStore:
    """The store in ``directory`` (kept across processes), put on :data:`sys.path`."""
    key = os.path.abspath(os.path.expanduser(os.fspath(directory)))
    store = _stores.get(key)
    if store is None:
        store = _stores[key] = CellStore(key)
    store.install()
    return store


def placement(*, persist: bool, directory: str | None) -> CellStore | MemoryOnly:
    """Where a cell module's copy goes: in memory only (with a note in the private
    directory), in the lasting ``directory``, or in the private directory."""
    if not persist:
        return MemoryOnly(kernel_store())
    return lasting_store(directory) if directory else kernel_store()


#: What :func:`display_path` shows in place of the private directory.
STORE_SHOWN = "<store>"


def display_path(text: str) -> str:
    """``text`` (a path, or a repr that holds paths) as shown to users: each path in this
    process's private directory starts with ``<store>`` (``<store>/geometry.py``).

    The private directory's name is random, so showing it would make every saved output
    (``%lsmod``, ``%modinfo``, tracebacks) change at each run; a lasting directory's paths
    are stable and shown as they are.  Only for display: ``__file__``, specs and
    ``co_filename`` keep the real paths.
    """
    store = _stores.get(None)  # never made just to be shown
    if store is None:
        return text
    if text == store.directory:
        return STORE_SHOWN
    return text.replace(store.directory + os.sep, STORE_SHOWN + os.sep)
