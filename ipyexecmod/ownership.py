# SPDX-License-Identifier: MIT
"""What a lasting store wrote, and which kernel wrote it.

A lasting directory (``persist_dir``) may hold the user's own files, and several
kernels may use it.  So the store keeps a *record* of each module it writes, in
``DIR/.ipyexecmod/NAME.json``, written before the files it lists: the source (with
the digest of the version being written and of the one before, in case the writing
stops half-way), its ``.pyc``, any empty parent ``__init__.py`` it creates, each with
the SHA-256 of its bytes; whether it is a package; its *writer*: the kernel's process
(pid, start time, host), the notebook it runs if known, and when; and the notebooks
whose copies it replaced.  A file is the store's own only while a record lists it with
its bytes' digest (a copy edited by hand is the user's); the ``.pyc`` files of a source
it owns are its own too.  A record that is not one of this format counts as none.

A writer is *running* while a process with its pid and start time exists on this
host: a kernel restarted is another process, so it takes over what its predecessor of
the same notebook wrote, while a kernel still running is told when another replaces
its copy (:meth:`~ipyexecmod.lasting.LastingStore.replaced`).
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
from typing import NamedTuple

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
_LATEST = 2**33  # seconds since the epoch: the year 2242


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
        process, or an exited kernel of the same notebook (a restart)."""
        return self.is_this_process() or (not self.is_running() and same_notebook(self))

    def is_running(self) -> bool:
        """Whether the process that wrote it still runs; one on another host (another
        container, or the directory copied from another machine) cannot be seen, and
        counts as exited."""
        if self.host != _this_process()[2]:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except OSError:
            pass  # another user's process
        return self.started is None or self.started == _start_time(self.pid)

    def state(self) -> str:
        """Whether it runs, for a message."""
        if self.host != _this_process()[2]:
            return "on another host, where this one cannot tell if it still runs"
        return "still running" if self.is_running() else "gone"

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

    @classmethod
    def from_dict(cls, raw: object) -> Writer:
        """A writer as a record holds it; raises ValueError if it is not one (fields
        this version does not know are left out: a later one may add some)."""
        bad = ValueError("not a writer")
        if not isinstance(raw, dict):
            raise bad
        pid, started, host, notebook, at = (
            raw.get(k) for k in ("pid", "started", "host", "notebook", "at")
        )
        if not (
            type(pid) is int
            and 0 < pid < 2**31  # a pid: os.kill takes no other
            and (started is None or type(started) is int)
            and isinstance(host, str)
            and (notebook is None or isinstance(notebook, str))
            and type(at) in (int, float)
            and 0 <= at < _LATEST  # type: ignore[operator]  # a number: time.localtime shows it
        ):
            raise bad
        return cls(pid, started, host, notebook, float(at))  # type: ignore[arg-type]  # checked


#: The records' format: one this version cannot read is none (its files are not its own).
FORMAT = 1


@dataclass(frozen=True)
class Record:
    """What a store wrote for one module: its files (relative paths, ``/``-separated),
    each with the digests its bytes may have (the version being written, and the one
    before it: the record is written first), whether it is a package, who wrote it, and
    the notebooks whose copies it replaced (each told when its kernel next starts)."""

    name: str
    is_package: bool
    files: dict[str, tuple[str, ...]]
    writer: Writer
    displaced: tuple[str, ...] = ()

    def to_json(self) -> bytes:
        return json.dumps({"format": FORMAT, **asdict(self)}, indent=1, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Record:
        """The record in ``data``; raises ValueError if it is not one of this format."""
        raw = json.loads(data)
        bad = ValueError("not a record of this format")
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise bad
        name, is_package, files = raw.get("name"), raw.get("is_package"), raw.get("files")
        displaced = raw.get("displaced", [])
        if not (
            isinstance(name, str)
            and type(is_package) is bool
            and isinstance(files, dict)
            and all(
                isinstance(f, str) and isinstance(d, list) and all(isinstance(x, str) for x in d)
                for f, d in files.items()
            )
            and isinstance(displaced, list)
            and all(isinstance(n, str) for n in displaced)
        ):
            raise bad
        return cls(
            name,
            is_package,
            {f: tuple(d) for f, d in files.items()},
            Writer.from_dict(raw.get("writer")),
            tuple(displaced),
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
        except (OSError, ValueError, RecursionError):
            record = None  # unreadable, not JSON, or not a record: its files are not its own
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

    def put(self, record: Record) -> None:
        """Write ``record`` (before the files it lists: a file the store writes is never
        one it has no record of)."""
        make_directory(self.folder)
        path = self._path(record.name)
        index_was_current = self._index[0] == identity(self.folder)
        before = self._read.get(record.name, ((), None))[1]
        try:
            write_atomic(path, record.to_json())
        except OSError:
            with contextlib.suppress(OSError):  # made for it, and left empty (a full disk)
                os.rmdir(self.folder)
            raise
        self._read[record.name] = (identity(path), record)
        if index_was_current:  # under the lock: the one change since is this record
            index = self._index[1]
            for file in () if before is None else before.files:
                index.get(file, set()).discard(record.name)
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
        if self._holds(path, relative):
            return True
        if relative.rpartition("/")[0].endswith("__pycache__") and relative.endswith(".pyc"):
            import importlib.util

            try:
                return self.wrote(importlib.util.source_from_cache(path))
            except ValueError:
                return False
        return False

    def _holds(self, path: str, relative: str) -> bool:
        """Whether a record lists the file at ``path`` with the digest of its bytes."""
        records = [self.get(name) for name in self._names().get(relative, ())]
        wanted = {d for r in records if r is not None for d in r.files.get(relative, ())}
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
    """Whether ``writer`` ran this kernel's notebook: the same one, or neither known (two
    IPython sessions in a terminal)."""
    return writer.notebook == this_notebook()


class Refusal(NamedTuple):
    """Why module ``name`` is not written to ``directory`` without ``force``: the
    ``reason``, the ``choices`` left, and what ``force`` would do."""

    name: str
    directory: str
    reason: str
    choices: str
    force: str

    @property
    def problem(self) -> str:
        return f"cannot define {self.name!r} in {self.directory}: {self.reason}; {self.choices}"

    def found_late(self) -> str:
        """The reason, found under the directory's lock just before writing."""
        return f"did not write {self.name!r} to {self.directory}: {self.reason}"

    def __str__(self) -> str:
        return f"{self.problem}, or use force {self.force}"
