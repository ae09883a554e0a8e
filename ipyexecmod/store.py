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
from collections.abc import Callable
from dataclasses import dataclass
from types import CodeType
from typing import NamedTuple

from ._files import (
    StoreError,
    identity,
    make_directory,
    new_private_directory,
    unchanged,
    write_atomic,
)
from .ownership import Record, Refusal, Writer
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
]


class _Written(NamedTuple):
    """A source and the identities of its file and its ``.pyc``, as last written or checked."""

    data: bytes
    source: tuple[int, ...]
    cached: tuple[int, ...]


class CellStore:
    """A directory of cell-module copies; see the module docstring.  This one is a
    private directory, all of whose files are its own;
    :class:`~ipyexecmod.lasting.LastingStore` is a lasting one."""

    #: Whether it is kept across kernels (and so keeps records of what it wrote).
    lasting = False

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = os.path.abspath(os.fspath(directory))
        # Per source path: what was last written or checked there, so that writing an
        # unchanged version costs two stat() calls, and a changed one no read while the
        # files are the ones written here.
        self._written: dict[str, _Written] = {}
        self._paths: dict[tuple[str, bool], tuple[str, str]] = {}  # worked out once a name

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
        store = cls(new_private_directory())
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
        code: CodeType | Callable[[], CodeType],
        *,
        is_package: bool,
        force: bool = False,
    ) -> Saved:
        """:meth:`write`, with the paths (from :meth:`paths`) and the encoded source given;
        ``code`` may be a function that gives it, called only if the copy is not
        already the one written."""
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
                # The code of the file at `path`, as Python would compile it, whatever
                # name it was compiled under (a cell module's version has one of its own).
                pyc = hash_pyc(data, code() if callable(code) else code)
                if not current:  # a module that became a package, or the other way round
                    self._remove_form(name, is_package=not is_package)
                self._record(name, is_package, path, data, cached, pyc, saved.replaced)
                if not current:
                    self._make_parents(name)
                    if is_package:
                        make_directory(os.path.dirname(path))
                fresh = current or not unchanged(path, data)
                if fresh:
                    write_atomic(path, data)
                if fresh or not is_sound_hash_pyc(cached, data):
                    if not current:
                        make_directory(os.path.dirname(cached))
                    write_atomic(cached, pyc)
                self._written[path] = _Written(data, identity(path), identity(cached))
        except OSError as exc:
            self._written.pop(path, None)
            if isinstance(exc, StoreError):
                raise
            msg = f"could not write {name!r} to {self.directory}: {exc.strerror or exc}"
            raise StoreError(msg) from exc
        return saved

    def refusal(self, name: str, is_package: bool) -> Refusal | None:
        """Why module ``name`` may not be written here without ``force``; in a private
        directory, where everything is the store's own, never."""
        return None

    def _clear_way(self, name: str, is_package: bool, force: bool) -> Saved:
        """Make way for module ``name``'s files; a private directory has nothing in it to
        move aside."""
        return Saved()

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
        """Note that module ``name`` is being written (a private directory keeps no
        records)."""

    def _locked(self) -> contextlib.AbstractContextManager[None]:
        """Keep other processes from writing here meanwhile (none write a private one)."""
        return contextlib.nullcontext()

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
        try:
            os.makedirs(os.path.dirname(self.directory), exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            blocker = self.directory
            while not os.path.lexists(blocker):
                blocker = os.path.dirname(blocker)
            msg = f"{blocker} is a file, not a directory"
            raise NotADirectoryError(msg) from None
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

    def _make_parents(self, name: str) -> None:
        """Make the parent packages of module ``name`` (never over an ``__init__.py``)."""
        for init in self._parent_inits(name):
            make_directory(os.path.dirname(init))
            if not os.path.lexists(init):
                write_atomic(init, b"")

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

    def open(self) -> list[str]:
        """Start using the directory in this process: repair its ``.pyc`` files; return
        what the user must be told of it (nothing, for a private directory)."""
        self.repair()
        return []

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
        is_package = os.path.isdir(os.path.join(self.directory, *name.split(".")))
        return self.paths(name, is_package)[0], is_package

    def has_package(self, name: str) -> bool:
        """Whether the store holds module ``name`` as a package that it took over from an
        earlier kernel (a private directory holds only this process's)."""
        return False

    def wrote(self, path: object) -> bool:
        """Whether the file at ``path`` is one this store wrote: in a private directory,
        any file in it."""
        return isinstance(path, str) and os.path.abspath(path).startswith(self.directory + os.sep)

    def module_names(self) -> list[str]:
        """The modules with a copy here, parents first."""
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

    def writer_of(self, name: str) -> Writer | None:
        """The kernel that wrote module ``name``'s copy here, if the store knows."""
        return None

    def kept_under(self, name: str) -> list[str]:
        """The modules below package ``name`` whose copies here a new kernel of this
        notebook would import; none in a private directory."""
        return []

    def forget(self, name: str) -> bool:
        """Remove module ``name``'s copy, which another place now holds, if a new kernel
        could import it from here; a private directory dies with its kernel."""
        return False

    def replaced(self) -> list[Record]:
        """The records of modules this process wrote here that another kernel has replaced
        since; none in a private directory."""
        return []


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
