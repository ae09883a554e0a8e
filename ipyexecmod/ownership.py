# SPDX-License-Identifier: MIT
"""What a lasting store wrote, and which kernel wrote it.

A lasting directory (``persist_dir``) may hold the user's own files, and several
kernels may use it.  So the store keeps a *record* of each module it wrote, in
``DIR/.ipyexecmod/NAME.json``: the source file (and any empty parent
``__init__.py`` it created) with the SHA-256 of its bytes, whether it is a package,
and its *writer*: the kernel's process (pid, start time, host), the notebook it runs
if known, and when.  A file is the store's own only while a record lists it and its
bytes still hash to the recorded value (a copy edited by hand is the user's); the
``.pyc`` files of a source it owns are its own too.  Nothing else in the directory is
ever written, moved without ``force``, listed or repaired.

A writer is *running* while a process with its pid and start time exists on this
host: a kernel restarted is another process, so it may take over what its
predecessor wrote, while a kernel still running is told when another replaces its
copy (:meth:`~ipyexecmod.store.CellStore.replaced`).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

from ._files import identity, make_directory, write_atomic

__all__ = [
    "RECORDS",
    "Record",
    "Records",
    "Refusal",
    "Writer",
    "digest",
    "same_notebook",
    "this_notebook",
]

#: The folder of a lasting directory that holds its records.
RECORDS = ".ipyexecmod"


def digest(data: bytes) -> str:
    import hashlib  # here: only lasting stores need it

    return hashlib.sha256(data).hexdigest()


def this_notebook() -> str | None:
    """The notebook this kernel runs, where the frontend says: Jupyter's
    ``JPY_SESSION_NAME`` (also ipykernel's ``__session__``), or VS Code's
    ``__vsc_ipynb_file__``."""
    main = vars(sys.modules["__main__"])
    for found in (
        os.environ.get("JPY_SESSION_NAME"),
        main.get("__session__"),
        main.get("__vsc_ipynb_file__"),
    ):
        if isinstance(found, str) and found:
            return found
    return None


def _start_time(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot), where ``/proc`` says;
    with its pid, it names one process (pids are reused)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            fields = file.read().rpartition(b")")[2].split()
        return int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


_process: tuple[int, int | None, str] | None = None


def _this_process() -> tuple[int, int | None, str]:
    """This process's pid, start time and host, found once (again in a forked child)."""
    global _process
    if _process is None or _process[0] != os.getpid():
        pid = os.getpid()
        _process = (pid, _start_time(pid), socket.gethostname())
    return _process


@dataclass(frozen=True)
class Writer:
    """The kernel that wrote a copy, and when."""

    pid: int
    started: int | None
    host: str
    notebook: str | None
    at: float

    @classmethod
    def here(cls) -> Writer:
        """This process, now."""
        pid, started, host = _this_process()
        return cls(pid, started, host, this_notebook(), time.time())

    def is_this_process(self) -> bool:
        return (self.pid, self.started, self.host) == _this_process()

    def is_succeeded_here(self) -> bool:
        """Whether this process takes over what ``self`` wrote without a word: it is this
        process, or a kernel of this notebook (a restart) that has exited."""
        return self.is_this_process() or (not self.is_running() and same_notebook(self))

    def is_running(self) -> bool:
        """Whether the process that wrote it still runs (one on another host, as far as
        this one can tell, does)."""
        if self.host != _this_process()[2]:
            return True
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except OSError:
            pass  # another user's process
        return self.started is None or self.started == _start_time(self.pid)

    def describe(self) -> str:
        """Who and when, for a message: notebook, process and time."""
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.at))
        where = (
            f"pid {self.pid}"
            if self.host == _this_process()[2]
            else f"pid {self.pid} on {self.host}"
        )
        if self.notebook:
            return f"the kernel of notebook {self.notebook!r} ({where}, at {when})"
        return f"the kernel with {where} (at {when})"


@dataclass(frozen=True)
class Record:
    """What a store wrote for one module: its files (relative paths, ``/``-separated)
    with their digests, whether it is a package, who wrote it, and whose copy it
    replaced, if another kernel's."""

    name: str
    is_package: bool
    files: dict[str, str]
    writer: Writer
    replaced: Writer | None = None

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=1, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Record:
        raw: dict[str, Any] = json.loads(data)
        replaced = raw.get("replaced")
        return cls(
            name=str(raw["name"]),
            is_package=bool(raw["is_package"]),
            files={str(k): str(v) for k, v in raw["files"].items()},
            writer=Writer(**raw["writer"]),
            replaced=None if replaced is None else Writer(**replaced),
        )


class Records:
    """The records of one lasting directory, read afresh when their files change
    (other kernels write them too)."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.folder = os.path.join(directory, RECORDS)
        self._read: dict[str, tuple[tuple[int, ...], Record | None]] = {}
        # Per file path: the identity it had when it was found to hold the recorded digest.
        self._checked: dict[str, tuple[int, ...]] = {}
        # Which records list each file (a parent's __init__.py may be in its own and a child's).
        self._index: tuple[tuple[int, ...] | None, dict[str, set[str]]] = (None, {})

    def _path(self, name: str) -> str:
        return os.path.join(self.folder, name + ".json")

    def get(self, name: str) -> Record | None:
        """Module ``name``'s record, if the store wrote it (one that does not parse is none)."""
        path = self._path(name)
        try:
            now = identity(path)
        except OSError:
            self._read.pop(name, None)
            return None
        known = self._read.get(name)
        if known is not None and known[0] == now:
            return known[1]
        try:
            with open(path, "rb") as file:
                record: Record | None = Record.from_json(file.read())
        except (OSError, ValueError, KeyError, TypeError):
            record = None
        if record is not None and record.name != name:
            record = None
        self._read[name] = (now, record)
        return record

    def all(self) -> list[Record]:
        """Every record, parents first."""
        try:
            entries = sorted(os.listdir(self.folder))
        except OSError:
            return []
        names = [e.removesuffix(".json") for e in entries if e.endswith(".json")]
        records = [r for r in map(self.get, names) if r is not None]
        return sorted(records, key=lambda r: (r.name.count("."), r.name))

    def put(self, record: Record, written: str) -> None:
        """Write ``record``; ``written`` is the file of its just written, so known to
        hold its digest."""
        make_directory(self.folder)
        path = self._path(record.name)
        index_was_current = self._index[0] == identity(self.folder)
        write_atomic(path, record.to_json())
        self._read[record.name] = (identity(path), record)
        self._checked[written] = identity(written)
        if index_was_current:  # under the lock: the one change since is this record
            index = {f: names - {record.name} for f, names in self._index[1].items()}
            for file in record.files:
                index.setdefault(file, set()).add(record.name)
            self._index = (identity(self.folder), index)

    def drop(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(name))

    def identity_of(self, name: str) -> tuple[int, ...] | None:
        try:
            return identity(self._path(name))
        except OSError:
            return None

    def wrote(self, path: str) -> bool:
        """Whether the file at ``path`` is one the store wrote, unchanged since, or the
        ``.pyc`` of such a source."""
        relative = self._relative(path)
        if relative is None:
            return False
        if relative.rpartition("/")[0].endswith("__pycache__") and relative.endswith(".pyc"):
            import importlib.util

            try:
                return self.wrote(importlib.util.source_from_cache(path))
            except ValueError:
                return False
        records = [self.get(name) for name in self._names().get(relative, ())]
        wanted = {r.files[relative] for r in records if r is not None and relative in r.files}
        if not wanted:
            return False
        try:
            now = identity(path)
        except OSError:
            return False
        if self._checked.get(path) == now:
            return True
        try:
            with open(path, "rb") as file:
                ok = digest(file.read()) in wanted
        except OSError:
            return False
        if ok:
            self._checked[path] = now
        return ok

    def _relative(self, path: str) -> str | None:
        path = os.path.abspath(path)
        if not path.startswith(self.directory + os.sep):
            return None
        return os.path.relpath(path, self.directory).replace(os.sep, "/")

    def _names(self) -> dict[str, set[str]]:
        """Which records list each file, worked out again when a record comes or goes."""
        try:
            now: tuple[int, ...] | None = identity(self.folder)
        except OSError:
            now = None
        if self._index[0] != now or now is None:
            index: dict[str, set[str]] = {}
            for record in self.all():
                for file in record.files:
                    index.setdefault(file, set()).add(record.name)
            self._index = (now, index)
        return self._index[1]

    def relative(self, path: str) -> str:
        """``path`` relative to the directory, as records name files."""
        relative = self._relative(path)
        assert relative is not None, path
        return relative

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the directory's lock (other kernels writing to it wait), where the
        platform has ``fcntl``: a lock on the directory itself, so no file is made for it."""
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock, the checks still run just before writing
            yield
            return
        fd = os.open(self.directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock


def same_notebook(writer: Writer) -> bool:
    """Whether ``writer`` ran this kernel's notebook (unknown notebooks are the same)."""
    here = this_notebook()
    return writer.notebook is None or here is None or writer.notebook == here


class Refusal(NamedTuple):
    """Why a module is not written without ``force``, and what ``force`` would do."""

    problem: str
    force: str

    def __str__(self) -> str:
        return f"{self.problem}, or use force {self.force}"
