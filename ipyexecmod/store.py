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
"""

from __future__ import annotations

import atexit
import importlib.util
import keyword
import marshal
import os
import shutil
import stat
import sys
import tempfile
from types import CodeType

__all__ = ["CellStore", "StoreError", "kernel_store", "lasting_store"]

# PEP 552 flags: hash-based (bit 0), checked (bit 1).
_CHECKED_HASH = (0b11).to_bytes(4, "little")


_PREFIX = "ipyexecmod-"


def _remove_directories_of_dead_processes() -> None:
    """Remove the private directories, owned by this user, of processes no longer running."""
    root = tempfile.gettempdir()
    try:
        entries = os.scandir(root)
    except OSError:
        return
    with entries:
        for entry in entries:
            pid = entry.name.removeprefix(_PREFIX).partition("-")[0]
            if not entry.name.startswith(_PREFIX) or not pid.isdigit():
                continue
            try:
                if entry.stat(follow_symlinks=False).st_uid != os.getuid():
                    continue
                os.kill(int(pid), 0)
            except ProcessLookupError:
                shutil.rmtree(entry.path, ignore_errors=True)
            except OSError:
                continue  # running under another user, or gone already


class StoreError(OSError):
    """A copy could not be written; the module still works in memory."""


def _make_directory(path: str) -> None:
    """Create ``path`` with mode 0o700, or accept it if it is a real directory already."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            msg = f"{path} exists and is not a directory (or is a symbolic link)"
            raise StoreError(msg) from None


def _write_atomic(path: str, data: bytes) -> None:
    """Replace the file at ``path`` with ``data``: a temporary file, then a rename.

    ``mkstemp`` creates the temporary file with ``O_EXCL | O_NOFOLLOW`` and mode
    0o600, and a rename replaces a symbolic link at ``path`` instead of following it.
    """
    fd, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def pyc_bytes(source: bytes, code: CodeType) -> bytes:
    """A checked-hash ``.pyc`` (PEP 552) of ``code``, compiled from ``source``."""
    return (
        importlib.util.MAGIC_NUMBER
        + _CHECKED_HASH
        + importlib.util.source_hash(source)
        + marshal.dumps(code)
    )


def _unchanged(path: str, data: bytes) -> bool:
    try:
        with open(path, "rb") as file:
            return file.read() == data
    except OSError:
        return False


def _identity(path: str) -> tuple[int, int, int, int]:
    """What changes when anything replaces or rewrites the file at ``path`` (``ctime``
    too: unlike ``mtime``, no one can set it back)."""
    status = os.stat(path, follow_symlinks=False)
    return status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns


def _pyc_is_sound(cached: str, source: bytes) -> bool:
    try:
        with open(cached, "rb") as file:
            data = file.read()
    except OSError:
        return False
    header = importlib.util.MAGIC_NUMBER + _CHECKED_HASH + importlib.util.source_hash(source)
    if not data.startswith(header):
        return False
    try:
        marshal.loads(data[16:])
    except (EOFError, ValueError, TypeError):
        return False
    return True


class CellStore:
    """A directory of cell-module copies; see the module docstring."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = os.path.abspath(os.fspath(directory))
        # Per source path: the source last written or checked there, and the identity
        # (inode, size, mtime, ctime) of it and its .pyc then, so that running a cell again
        # unchanged costs two stat() calls instead of reading and checking both files.
        self._known: dict[str, tuple[bytes, tuple[int, ...], tuple[int, ...]]] = {}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.directory!r}>"

    @classmethod
    def temporary(cls) -> CellStore:
        """A new private directory (mode 0o700) for this process, removed when it exits.

        A process killed outright (a kernel restarted with SIGKILL) cannot remove its
        directory; the directory names the process, and the next one removes it.
        """
        _remove_directories_of_dead_processes()
        # Zero-padded, so that the path has the same length in every process.
        store = cls(tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid():07d}-"))
        atexit.register(shutil.rmtree, store.directory, ignore_errors=True)
        return store

    def install(self) -> None:
        """Put the directory first on :data:`sys.path`, so spawned children find it too."""
        if self.directory not in sys.path:
            sys.path.insert(0, self.directory)

    def source_path(self, name: str, is_package: bool) -> str:
        """Where module ``name`` goes (``name`` is a checked dotted name: no path can escape)."""
        parts = name.split(".")
        if is_package:
            return os.path.join(self.directory, *parts, "__init__.py")
        return os.path.join(self.directory, *parts[:-1], parts[-1] + ".py")

    def write(
        self, name: str, source: str, code: CodeType | None, *, is_package: bool
    ) -> tuple[str, str]:
        """Write module ``name``'s source and checked-hash bytecode; return both paths.

        ``code`` must have been compiled from ``source``; ``None`` writes the source
        only.  Raises :class:`StoreError` if the directory cannot take them.
        """
        path = self.source_path(name, is_package)
        cached = importlib.util.cache_from_source(path)
        data = source.encode("utf-8")
        known = self._known.get(path)
        if known is not None and code is not None and known[0] == data:
            try:
                if (_identity(path), _identity(cached)) == known[1:]:
                    return path, cached
            except OSError:
                pass  # gone: check and write as usual
        try:
            self._make_parents(name)
            if is_package:
                _make_directory(os.path.dirname(path))
                self._remove_module_file(name)  # a module that became a package
            if not (_unchanged(path, data) and (code is None or _pyc_is_sound(cached, data))):
                _write_atomic(path, data)
                if code is not None:
                    _make_directory(os.path.dirname(cached))
                    _write_atomic(cached, pyc_bytes(data, code))
                elif os.path.lexists(cached):
                    os.unlink(cached)
            if code is not None:
                self._known[path] = (data, _identity(path), _identity(cached))
        except OSError as exc:
            self._known.pop(path, None)
            msg = f"could not write {name!r} to {self.directory}: {exc.strerror or exc}"
            raise StoreError(msg) from exc
        return path, cached

    def _make_parents(self, name: str) -> None:
        _make_directory(self.directory)
        parts = name.split(".")
        for depth in range(1, len(parts)):
            package = os.path.join(self.directory, *parts[:depth])
            _make_directory(package)
            init = os.path.join(package, "__init__.py")
            if not os.path.lexists(init):
                _write_atomic(init, b"")

    def _remove_module_file(self, name: str) -> None:
        path = self.source_path(name, is_package=False)
        for stale in (path, importlib.util.cache_from_source(path)):
            try:
                os.unlink(stale)
            except FileNotFoundError:
                pass

    def write_stub(self, name: str, is_package: bool) -> None:
        """Put a module in ``name``'s place that says why other processes cannot import it."""
        message = (
            f"module {name!r} exists only in the memory of the process that defined it "
            f"(%%as_module --no-persist); define it again without --no-persist so that "
            f"other processes can import it"
        )
        self.write(
            name, f"raise ImportError({message!r}, name={name!r})\n", None, is_package=is_package
        )

    def repair(self) -> list[str]:
        """Rewrite every ``.pyc`` of the store that Python would not load as it should.

        One is rewritten when it is missing, truncated, written by another Python
        (magic number), not a checked hash of the source beside it, or has bytecode
        that does not unmarshal.  Returns the paths rewritten.
        """
        rewritten = []
        for name in self.module_names():
            path = self.source_path(name, is_package=os.path.isdir(self._package_dir(name)))
            cached = importlib.util.cache_from_source(path)
            try:
                with open(path, "rb") as file:
                    source = file.read()
                if _pyc_is_sound(cached, source):
                    continue
                code = compile(source, path, "exec", dont_inherit=True)
                _make_directory(os.path.dirname(cached))
                _write_atomic(cached, pyc_bytes(source, code))
            except (OSError, SyntaxError, ValueError):
                continue  # Python will compile the source, or report its error, itself
            rewritten.append(cached)
        return rewritten

    def _package_dir(self, name: str) -> str:
        return os.path.join(self.directory, *name.split("."))

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


_stores: dict[str | None, CellStore] = {}


def kernel_store() -> CellStore:
    """This process's private store, made on first use and put on :data:`sys.path`."""
    store = _stores.get(None)
    if store is None:
        store = _stores[None] = CellStore.temporary()
    store.install()
    return store


def lasting_store(directory: str | os.PathLike[str]) -> CellStore:
    """The store in ``directory`` (kept across processes), put on :data:`sys.path`."""
    key = os.path.abspath(os.path.expanduser(os.fspath(directory)))
    store = _stores.get(key)
    if store is None:
        store = _stores[key] = CellStore(key)
    store.install()
    return store
