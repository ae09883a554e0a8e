# SPDX-License-Identifier: MIT
"""The board: how a kernel tells its worker processes which version of each cell module
is the latest, with no connection to them.

Three things in the kernel's private directory, each named with a leading dot so that
no module name can clash with it:

``.state``
    A page of shared memory (a memory-mapped file): a counter, bumped by every change
    to the board, then the names of the modules whose definition is under way.  A
    worker reads the counter's 8 bytes to know that nothing changed: a hundred
    nanoseconds, no system call.
``.manifest.json``
    For each cell module, the counter's value when its latest version committed (its
    *token*), where its on-disk copy is (``null`` for a module kept in memory only)
    and whether it is a package.  Written whole, then renamed into place.
``.boot/``
    The :data:`sys.path` entry of the kernel and so of every process it spawns: for
    each top-level cell-module name, a three-line stand-in that installs the worker
    finder (:mod:`.catchup`) and imports the module through it.

The kernel writes the copies first, then the manifest, then the counter; a worker
reads the counter first.  A task submitted after a cell has finished therefore finds,
in any worker, the counter of that cell's definition or a later one.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import struct
import warnings
from typing import NamedTuple

from .._files import make_directory, write_atomic

__all__ = ["Board", "Entry", "read_busy", "read_manifest"]

STATE = ".state"
MANIFEST = ".manifest.json"
BOOT = ".boot"

_SIZE = 4096  # the state: counter, busy names' length, busy names
_HEADER = struct.Struct("<QI")
_ALL = "*"  # in place of busy names that do not fit: every module is busy

STUB = """\
# Written by ipyexecmod: importing {name!r} here imports the latest version of the kernel's
# cell module, and keeps it current in this process (see ipyexecmod.workers).
from ipyexecmod.workers import load
load(__name__, __file__)
"""


class Entry(NamedTuple):
    """What the board says of one cell module."""

    #: The counter's value when its latest version committed (0: restored from a copy).
    token: int
    #: Its on-disk copy's source, or ``None`` if it is kept in memory only.
    origin: str | None
    is_package: bool


class Board:
    """The kernel's side of the board in ``directory`` (its private directory)."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.boot = os.path.join(directory, BOOT)
        make_directory(self.boot)
        path = os.path.join(directory, STATE)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            os.ftruncate(fd, _SIZE)
            self.state = mmap.mmap(fd, _SIZE)
        finally:
            os.close(fd)
        self.entries: dict[str, Entry] = {}
        self._counter = 0
        self._busy: list[str] = []
        self._stubs: set[str] = set()
        self._fresh: set[str] = set()  # stand-ins written since the last release
        self._write_manifest()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.directory!r}>"

    def claim(self, name: str) -> None:
        """A definition of ``name`` is under way: workers that need it fail fast."""
        self._stub(name.partition(".")[0])  # a first one too: workers find it busy
        self._busy.append(name)
        self._write_state()

    def publish(self, entries: dict[str, tuple[str | None, bool]]) -> None:
        """New versions have committed: ``entries`` gives, for each module, its copy's
        source (``None``: memory only) and whether it is a package."""
        token = self._counter + 1
        for name, (origin, is_package) in entries.items():
            self.entries[name] = Entry(token, origin, is_package)
            self._stub(name.partition(".")[0])
        self._busy = [name for name in self._busy if name not in entries]
        self._write_manifest()
        self._write_state()

    def release(self) -> None:
        """The definition under way has ended (committed, or put back): the stand-ins
        written for names that it did not define go."""
        for top in self._fresh - self.entries.keys():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self.boot, f"{top}.py"))
            self._stubs.discard(top)
        self._fresh.clear()
        if self._busy:
            self._busy.clear()
            self._write_state()

    def restore(self, entries: dict[str, tuple[str, bool]]) -> None:
        """Modules that a lasting directory holds from an earlier kernel, not defined here."""
        fresh = {name: each for name, each in entries.items() if name not in self.entries}
        for name, (origin, is_package) in fresh.items():
            self.entries[name] = Entry(0, origin, is_package)
            self._stub(name.partition(".")[0])
        if fresh:
            self._write_manifest()
            self._write_state()

    def _stub(self, top: str) -> None:
        if top not in self._stubs:
            path = os.path.join(self.boot, f"{top}.py")
            try:
                if not os.path.exists(path):
                    write_atomic(path, STUB.format(name=top).encode())
                    self._fresh.add(top)
            except OSError:
                return  # a name too long for a file: its copy cannot be written either
            self._stubs.add(top)

    def _write_manifest(self) -> None:
        modules = {name: list(entry) for name, entry in self.entries.items()}
        data = json.dumps({"kernel": os.getpid(), "modules": modules})
        try:
            write_atomic(os.path.join(self.directory, MANIFEST), data.encode())
        except OSError as exc:
            msg = (
                f"ipyexecmod could not tell worker processes of new versions of cell "
                f"modules ({exc}): workers started before now may run earlier versions; "
                f"start them again"
            )
            warnings.warn(msg, RuntimeWarning, stacklevel=4)

    def _write_state(self) -> None:
        names = "\n".join(self._busy).encode()
        if _HEADER.size + len(names) > _SIZE:
            names = _ALL.encode()
        self._counter += 1
        # The names first, then the counter: a worker that sees the new counter sees them.
        self.state[_HEADER.size : _HEADER.size + len(names)] = names
        self.state[: _HEADER.size] = _HEADER.pack(self._counter, len(names))


def read_manifest(directory: str) -> tuple[int, dict[str, Entry]]:
    """The kernel's process id and the entries of the board in ``directory``."""
    with open(os.path.join(directory, MANIFEST), "rb") as file:
        data = json.load(file)
    modules = {name: Entry(*entry) for name, entry in data["modules"].items()}
    return data["kernel"], modules


def read_busy(state: mmap.mmap) -> frozenset[str] | None:
    """The modules whose definition is under way; ``None`` means all of them."""
    _, length = _HEADER.unpack_from(state)
    names = state[_HEADER.size : _HEADER.size + length].decode()
    if names == _ALL:
        return None
    return frozenset(names.split("\n")) if names else frozenset()


def open_state(directory: str) -> mmap.mmap:
    """The board's state in ``directory``, to read."""
    fd = os.open(os.path.join(directory, STATE), os.O_RDONLY | os.O_NOFOLLOW)
    try:
        return mmap.mmap(fd, _SIZE, access=mmap.ACCESS_READ)
    finally:
        os.close(fd)
