# SPDX-License-Identifier: MIT
"""The board: how a kernel tells its worker processes which version of each cell module
is the latest, with no connection to them.

Three things in the kernel's private directory, each named with a leading dot so that
no module name can clash with it:

``.state``
    Shared memory (a memory-mapped file): a counter, bumped by every change to the
    board; the manifest's serial number; the names of the modules whose definition is
    under way; and a slot per module holding its *token*, the counter's value when its
    latest version committed.  A worker reads the counter's 8 bytes to know that
    nothing changed: a hundred nanoseconds, no system call.  A redefinition writes a
    slot and the counter: a few microseconds.
``.manifest``
    For each cell module, its slot, where its on-disk copy is (``None`` for a module
    kept in memory only) and whether it is a package, in :mod:`marshal`'s format (the
    kernel's workers run its Python; it costs no import, unlike :mod:`json`).  Written
    whole, then renamed into place, only when a module is new or moves.
``.boot/``
    The :data:`sys.path` entry of the kernel and so of every process it spawns: for
    each top-level cell-module name, a three-line stand-in that installs the worker
    finder (:mod:`.catchup`) and imports the module through it.

The kernel writes the copies first, then the manifest and the slots, then the counter;
a worker reads the counter first.  A task submitted after a cell has finished therefore
finds, in any worker, the counter of that cell's definition or a later one.
"""

from __future__ import annotations

import contextlib
import marshal
import mmap
import os
import struct
import threading
import warnings
from typing import NamedTuple

from .._files import make_directory, write_atomic

__all__ = ["Board", "BoardView", "Entry"]

STATE = ".state"
MANIFEST = ".manifest"
BOOT = ".boot"

_HEADER = struct.Struct("<QQI")  # counter, manifest serial, length of the busy names
_BUSY = slice(32, 32 + 4096)  # the busy names
_SLOTS = _BUSY.stop  # then a token (u64) per module
_SIZE = 64 * 1024
_SLOT = struct.Struct("<Q")
_ALL = b"*"  # in place of busy names that do not fit: every module is busy and referenced
_REFERENCED = "!"  # before a busy name: a task refers to it (see Board.referenced)

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
        fd = os.open(os.path.join(directory, STATE), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            os.ftruncate(fd, _SIZE)
            self.state = mmap.mmap(fd, _SIZE)
        finally:
            os.close(fd)
        self.entries: dict[str, Entry] = {}
        self._slots: dict[str, int] = {}
        self._counter = self._serial = 0
        self._busy: list[str] = []
        self._stubs: set[str] = set()
        self._fresh: set[str] = set()  # stand-ins written since the last release
        # Picklers in other threads mark names (referenced) while a definition runs.
        self._lock = threading.Lock()
        self._write_manifest()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.directory!r}>"

    def claim(self, name: str) -> None:
        """A definition of ``name`` is under way: workers that need it keep the version
        before it (a first one has none: they fail fast)."""
        with self._lock:
            if "." not in name:  # a package's parents are claimed too; not a foreign one
                self._stub(name)  # a first definition too: workers find it busy
            self._busy.append(name)
            self._write_state()

    def referenced(self, name: str) -> None:
        """A task pickled in the kernel refers to ``name`` while its definition is under
        way (its own code starts a pool): a worker that needs it fails fast, as it cannot
        have the version being defined, and the version before it would be a wrong one."""
        with self._lock:
            mark = _REFERENCED + name
            if name in self._busy and mark not in self._busy:
                self._busy.append(mark)
                self._write_state()

    def publish(self, entries: dict[str, tuple[str | None, bool]]) -> None:
        """New versions have committed: ``entries`` gives, for each module, its copy's
        source (``None``: memory only) and whether it is a package."""
        with self._lock:
            token = self._counter + 1
            changed = False  # what the manifest says: a new module, one that moved, no slot
            for name, (origin, is_package) in entries.items():
                known = self.entries.get(name)
                self.entries[name] = Entry(token, origin, is_package)
                slotted = self._write_slot(name, token)
                changed = (
                    changed or not slotted or known is None or known[1:] != (origin, is_package)
                )
                if "." not in name:
                    self._stub(name)
            self._busy = [
                name for name in self._busy if name.removeprefix(_REFERENCED) not in entries
            ]
            if changed:
                self._write_manifest()
            self._write_state()

    def release(self) -> None:
        """The definition under way has ended (committed, or put back): the stand-ins
        written for names that it did not define go."""
        with self._lock:
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
        with self._lock:
            fresh = {name: each for name, each in entries.items() if name not in self.entries}
            for name, (origin, is_package) in fresh.items():
                self.entries[name] = Entry(0, origin, is_package)
                if "." not in name:
                    self._stub(name)
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

    def _write_slot(self, name: str, token: int) -> bool:
        """Write ``name``'s token in its slot; ``False`` if there is no room for one (the
        manifest holds its token then)."""
        slot = self._slots.get(name)
        if slot is None:
            slot = len(self._slots)
            if _SLOTS + (slot + 1) * _SLOT.size > _SIZE:
                return False
            self._slots[name] = slot
        _SLOT.pack_into(self.state, _SLOTS + slot * _SLOT.size, token)
        return True

    def _write_manifest(self) -> None:
        modules = {
            name: [self._slots.get(name, -1), *entry] for name, entry in self.entries.items()
        }
        data = marshal.dumps({"kernel": os.getpid(), "modules": modules})
        try:
            write_atomic(os.path.join(self.directory, MANIFEST), data)
        except OSError as exc:
            msg = (
                f"ipyexecmod could not tell worker processes of new versions of cell "
                f"modules ({exc}): workers started before now may run earlier versions; "
                f"start them again"
            )
            warnings.warn(msg, RuntimeWarning, stacklevel=4)
        self._serial += 1

    def _write_state(self) -> None:
        names = "\n".join(self._busy).encode()
        if len(names) > _BUSY.stop - _BUSY.start:
            names = _ALL
        self._counter += 1
        # The rest first, then the counter: a worker that sees the new counter sees them.
        self.state[_BUSY.start : _BUSY.start + len(names)] = names
        _HEADER.pack_into(self.state, 0, self._counter, self._serial, len(names))


class BoardView:
    """A worker's view of the board in ``directory``: :meth:`read` brings it up to date."""

    def __init__(self, directory: str, state: mmap.mmap | None = None) -> None:
        self.directory = directory
        self.state = state if state is not None else _open_state(directory)
        self.kernel = 0  # the kernel's process id
        self.entries: dict[str, Entry] = {}
        #: The modules whose definition is under way, and those of them that a task
        #: refers to (see :meth:`Board.referenced`); ``None`` means all of them.
        self.busy: frozenset[str] | None = frozenset()
        self.referenced: frozenset[str] | None = frozenset()
        self._read_at = b""
        self._serial = -1
        self._manifest: dict[str, list[object]] = {}

    def counter(self) -> bytes:
        """The board's counter, as 8 bytes: it moves with every change."""
        return self.state[:8]

    def read(self) -> None:
        """Read what changed since the last read; nothing if the counter has not moved.
        If the kernel has gone, with its directory, the view stays as it was."""
        while (counter := self.state[:8]) != self._read_at:
            _, serial, length = _HEADER.unpack_from(self.state)
            if serial != self._serial:
                try:
                    with open(os.path.join(self.directory, MANIFEST), "rb") as file:
                        data = marshal.load(file)
                except (OSError, ValueError, EOFError, TypeError):
                    self._read_at = counter
                    return
                self.kernel, self._manifest, self._serial = data["kernel"], data["modules"], serial
            names = self.state[_BUSY.start : _BUSY.start + length]
            entries = {name: self._entry(*each) for name, each in self._manifest.items()}  # type: ignore[arg-type]
            if self.state[:8] == counter:  # nothing changed while reading
                self.entries, self._read_at = entries, counter
                self.busy, self.referenced = _busy(names)

    def _entry(self, slot: int, token: int, origin: str | None, is_package: bool) -> Entry:
        if slot >= 0:
            (token,) = _SLOT.unpack_from(self.state, _SLOTS + slot * _SLOT.size)
        return Entry(token, origin, is_package)

    def is_busy(self, name: str) -> bool:
        return self.busy is None or name in self.busy

    def is_referenced(self, name: str) -> bool:
        return self.referenced is None or name in self.referenced


def _busy(names: bytes) -> tuple[frozenset[str] | None, frozenset[str] | None]:
    if names == _ALL:
        return None, None
    busy = [name for name in names.decode().split("\n") if name]
    referenced = {name[1:] for name in busy if name.startswith(_REFERENCED)}
    return frozenset(busy) - {_REFERENCED + name for name in referenced}, frozenset(referenced)


def _open_state(directory: str) -> mmap.mmap:
    fd = os.open(os.path.join(directory, STATE), os.O_RDONLY | os.O_NOFOLLOW)
    try:
        return mmap.mmap(fd, _SIZE, access=mmap.ACCESS_READ)
    finally:
        os.close(fd)
