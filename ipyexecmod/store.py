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
import importlib.util
import keyword
import os
import shutil
import sys
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
from .pyc import hash_pyc, is_sound_hash_pyc
from .workers import catchup
from .workers.board import Board

__all__ = [
    "STORE_SHOWN",
    "CellStore",
    "MemoryOnly",
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

    def write(self, name: str, source: str, code: CodeType, *, is_package: bool) -> tuple[str, str]:
        """Write module ``name``'s source and checked-hash bytecode; return both paths.

        ``code`` must have been compiled from ``source`` (under any filename: the
        ``.pyc`` names the source's path).  Raises
        :class:`StoreError` if the directory cannot take them.
        """
        path, cached = self.paths(name, is_package)
        self.save(name, path, cached, source.encode("utf-8"), code, is_package=is_package)
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
    ) -> None:
        """:meth:`write`, with the paths (from :meth:`paths`) and the encoded source given."""
        written = self._written.get(path)
        current = False  # whether the files are those last written or checked here
        if written is not None:
            try:
                current = (identity(path), identity(cached)) == written[1:]
            except OSError:
                pass  # gone: write as usual
            if current and written.data == data:
                return
        try:
            if not current:  # checked once, then known: the directories are real ones
                self._make_parents(name)
                if is_package:
                    make_directory(os.path.dirname(path))
                    self._remove_module_file(name)  # a module that became a package
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
        except OSError as exc:
            self._written.pop(path, None)
            msg = f"could not write {name!r} to {self.directory}: {exc.strerror or exc}"
            raise StoreError(msg) from exc

    def holds(self, path: str, data: bytes) -> bool:
        """Whether the source at ``path`` is ``data``, as written or checked here last."""
        written = self._written.get(path)
        return written is not None and written.data == data

    def _make_parents(self, name: str) -> None:
        make_directory(self.directory)
        parts = name.split(".")
        for depth in range(1, len(parts)):
            package = os.path.join(self.directory, *parts[:depth])
            make_directory(package)
            init = os.path.join(package, "__init__.py")
            if not os.path.lexists(init):
                write_atomic(init, b"")

    def _remove_module_file(self, name: str) -> None:
        for stale in self.paths(name, is_package=False):
            try:
                os.unlink(stale)
            except FileNotFoundError:
                pass

    def repair(self) -> list[str]:
        """Rewrite every ``.pyc`` of the store that Python would not load as it should.

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

    def owns_path(self, path: object) -> bool:
        """Whether ``path`` lies in this store's directory."""
        if not isinstance(path, str):
            return False
        return os.path.abspath(path).startswith(self.directory + os.sep)

    def module_names(self) -> list[str]:
        """The modules with a source file in the directory, parents first."""
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
