# SPDX-License-Identifier: MIT
"""The board: how a kernel tells its worker processes which version of each cell module
is the latest, with no connection to them.

Three things in the kernel's private directory, each named with a leading dot so that
no module name can clash with it:

``.state``
    Shared memory (a memory-mapped file): a counter, bumped by every change to the
    board; the manifest's serial number; the names of the modules whose definition is
    under way; and a slot per module holding its *token*, the counter's value when its
    latest version committed, with the *hash* of that version's source
    (:func:`source_hash`): a worker imports a copy only if its bytes have that hash
    (:mod:`.verify`), never another kernel's code written over it.  A worker reads
    the counter's 8 bytes to know that nothing changed: a hundred nanoseconds, no
    system call.  A redefinition writes a slot and the counter: a few microseconds.
    The slots are 16 bytes each: 7934 of them, one taken by each module that is new
    or moves; after that, tokens and hashes are in the manifest, written each time.
``.manifest``
    For each cell module, its slot, where its on-disk copy is (``None`` for a module
    kept in memory only) and whether it is a package, in :mod:`marshal`'s format (the
    kernel's workers run its Python; it costs no import, unlike :mod:`json`).  Written
    whole, then renamed into place, only when a module is new or moves.
``.boot/``
    The :data:`sys.path` entry of the kernel and so of every process it spawns: for
    each top-level cell-module name, a three-line stand-in that installs the worker
    finder (:mod:`.catchup`) and imports the module through it.

The kernel writes the copies first, then the manifest, then the state, all before the
cell finishes; a task submitted after it finds, in any worker, that cell's definition or
a later one.  The state is a sequence lock: the counter is odd while the kernel writes it,
and a worker reads it again if the counter was odd or moved while it read.  A module
that moves gets a new slot, so a worker that read the manifest before the move pairs the
old place with the old token.
"""

from __future__ import annotations

import contextlib
import importlib.util
import marshal
import mmap
import os
import struct
import threading
from typing import NamedTuple

from .._files import make_directory, write_atomic
from .._warnings import warn

__all__ = ["NO_HASH", "Board", "BoardView", "Entry", "source_hash"]

STATE = ".state"
MANIFEST = ".manifest"
BOOT = ".boot"

_COUNTER = struct.Struct("<Q")  # a sequence lock: odd while the kernel writes
_FIELDS = struct.Struct("<QI")  # after it: the manifest's serial, the busy names' length
_TRIES = 100_000  # reads of a board being written before a worker keeps its view
_BUSY = slice(32, 32 + 4096)  # the busy names
_SLOTS = _BUSY.stop  # then a token (u64) and a source hash per module: 7934 slots
_SIZE = 128 * 1024
_SLOT = struct.Struct("<Q8s")  # written and read as one pair, under the sequence lock
_ALL = b"*"  # in place of busy names that do not fit: every module is busy and referenced
_REFERENCED = "!"  # before a busy name: a task refers to it (see Board.referenced)

STUB = """\
# Written by ipyexecmod: importing {name!r} here imports the latest version of the kernel's
# cell module, and keeps it current in this process (see ipyexecmod.workers).
from ipyexecmod.workers import load
load(__name__, __file__)
"""


#: The hash of a source the kernel could not read (a restored copy): any copy will do.
NO_HASH = bytes(8)


def source_hash(data: bytes) -> bytes:
    """The 8-byte hash of a source's bytes that PEP 552 ``.pyc`` files hold."""
    return importlib.util.source_hash(data)


def _hash_of(path: str) -> bytes:
    try:
        with open(path, "rb") as file:
            return source_hash(file.read())
    except OSError:
        return NO_HASH


class Entry(NamedTuple):
    """What the board says of one cell module."""

    #: The counter's value when its latest version committed (0: restored from a copy).
    token: int
    #: Its on-disk copy's source, or ``None`` if it is kept in memory only.
    origin: str | None
    is_package: bool
    #: The :func:`source_hash` of that version's source.
    source_hash: bytes = NO_HASH


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
        self._slots: dict[str, int] = {}  # a new one each time a module moves
        self._free_slot = 0
        self._counter = self._serial = 0
        self._claimed: dict[str, int] = {}  # being defined, by which thread
        self._referenced: set[str] = set()
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
            self._claimed[name] = threading.get_ident()
            self._write_state()

    def referenced(self, name: str) -> None:
        """A task pickled in the kernel refers to ``name`` while its definition is under
        way (its own code starts a pool): a worker that needs it fails fast, as it cannot
        have the version being defined, and the version before it would be a wrong one."""
        with self._lock:
            if name in self._claimed and name not in self._referenced:
                self._referenced.add(name)
                self._write_state()

    def publish(self, entries: dict[str, tuple[str | None, bool, bytes]]) -> None:
        """New versions have committed: ``entries`` gives, for each module, its copy's
        source (``None``: memory only), whether it is a package, and its source's hash."""
        with self._lock:
            token = self._counter + 2  # the counter once this change is written
            moved = False
            for name, (origin, is_package, digest) in entries.items():
                known = self.entries.get(name)
                self.entries[name] = Entry(token, origin, is_package, digest)
                if known is None or known[1:3] != (origin, is_package):
                    # A new slot: a worker reading the manifest before this one keeps
                    # the old slot, whose token goes with the old place.
                    self._slots[name] = self._new_slot()
                    moved = True
                moved = moved or self._slots[name] < 0  # its token is in the manifest
                if "." not in name:
                    self._stub(name)
                self._claimed.pop(name, None)
                self._referenced.discard(name)
            if moved:
                self._write_manifest()
            self._write_state({self._slots[name]: self.entries[name] for name in entries})

    def release(self) -> None:
        """The definition under way has ended (committed, or put back): the stand-ins
        written for names that it did not define go."""
        with self._lock:
            for top in self._fresh - self.entries.keys():
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(self.boot, f"{top}.py"))
                self._stubs.discard(top)
            self._fresh.clear()
            if self._claimed:
                self._claimed.clear()
                self._referenced.clear()
                self._write_state()

    def restore(self, entries: dict[str, tuple[str, bool]]) -> None:
        """Modules that a lasting directory holds from an earlier kernel, not defined here,
        each with the hash of its copy as it is now (as the kernel will import it)."""
        with self._lock:
            fresh = {name: each for name, each in entries.items() if name not in self.entries}
            for name, (origin, is_package) in fresh.items():
                self.entries[name] = Entry(0, origin, is_package, _hash_of(origin))
                self._slots[name] = self._new_slot()
                if "." not in name:
                    self._stub(name)
            if fresh:
                self._write_manifest()
                self._write_state({self._slots[name]: self.entries[name] for name in fresh})

    def executed(self, name: str, origin: str, digest: bytes) -> None:
        """The kernel imports module ``name`` (restored, not defined here) from the copy at
        ``origin``, whose source has hash ``digest``: if it is not the one the board
        gives, it is a new version, that workers then import (or catch up with)."""
        with self._lock:
            known = self.entries.get(name)
            if known is None or known.origin != origin or known.source_hash == digest:
                return
            self.entries[name] = known._replace(token=self._counter + 2, source_hash=digest)
            if self._slots[name] < 0:
                self._write_manifest()  # its token and hash are there
            self._write_state({self._slots[name]: self.entries[name]})

    def snapshot(self) -> tuple[bytes, dict[str, Entry], dict[str, int]]:
        """The counter (as a worker reads it), the entries, and the names being defined
        with the thread defining each: in a child forked from the kernel, as they were at
        the fork."""
        return _COUNTER.pack(self._counter), dict(self.entries), dict(self._claimed)

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

    def _new_slot(self) -> int:
        """A slot of its own, or -1 if there is no room (the manifest holds the token)."""
        if _SLOTS + (self._free_slot + 1) * _SLOT.size > _SIZE:
            return -1
        self._free_slot += 1
        return self._free_slot - 1

    def _write_manifest(self) -> None:
        """Write the manifest, with the serial number that the next state will carry."""
        self._serial += 1
        modules = {name: [self._slots[name], *entry] for name, entry in self.entries.items()}
        data = marshal.dumps({"kernel": os.getpid(), "serial": self._serial, "modules": modules})
        try:
            write_atomic(os.path.join(self.directory, MANIFEST), data)
        except OSError as exc:
            msg = (
                f"ipyexecmod could not tell worker processes of new versions of cell "
                f"modules ({exc}): workers started before now may run earlier versions; "
                f"start them again"
            )
            warn(msg, RuntimeWarning)  # at the user's cell, each time

    def _write_state(self, tokens: dict[int, Entry] | None = None) -> None:
        """Write the busy names, the manifest's serial and ``tokens`` (slot: the entry whose
        token and hash go there), as a sequence lock: the counter is odd while they are
        written, even once they are."""
        names = [*self._claimed, *(_REFERENCED + name for name in self._referenced)]
        data = "\n".join(names).encode()
        if len(data) > _BUSY.stop - _BUSY.start:
            data = _ALL
        self._counter += 1
        _COUNTER.pack_into(self.state, 0, self._counter)
        for slot, entry in (tokens or {}).items():
            if slot >= 0:
                offset = _SLOTS + slot * _SLOT.size
                _SLOT.pack_into(self.state, offset, entry.token, entry.source_hash)
        self.state[_BUSY.start : _BUSY.start + len(data)] = data
        _FIELDS.pack_into(self.state, _COUNTER.size, self._serial, len(data))
        self._counter += 1
        _COUNTER.pack_into(self.state, 0, self._counter)


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

    @property
    def read_at(self) -> bytes:
        """The counter as it was when the view was last brought up to date."""
        return self._read_at

    def read(self) -> None:
        """Read what changed since the last read; nothing if the counter has not moved.

        The counter is a sequence lock: odd while the kernel writes, so a read that
        saw it odd, or saw it move, is tried again.  If the kernel has gone (its
        directory with it), or keeps writing, the view stays as it was: consistent, and
        only older than a definition that had not yet finished.
        """
        for _ in range(_TRIES):
            counter = self.state[:8]
            if counter == self._read_at:
                return
            if counter[0] & 1:  # being written
                os.sched_yield()
                continue
            serial, length = _FIELDS.unpack_from(self.state, _COUNTER.size)
            if serial != self._serial:
                loaded = self._load_manifest(serial)
                if loaded is None:  # gone: the kernel has exited
                    return
                if not loaded:  # the kernel is writing the next one
                    os.sched_yield()
                    continue
            names = self.state[_BUSY.start : _BUSY.start + length]
            entries = {name: self._entry(*each) for name, each in self._manifest.items()}  # type: ignore[arg-type]
            if self.state[:8] == counter:  # nothing changed while reading
                self.entries, self._read_at = entries, counter
                self.busy, self.referenced = _busy(names)
                return

    def _load_manifest(self, serial: int) -> bool | None:
        """Load the manifest if it is the one of ``serial``; ``None`` if there is none."""
        try:
            with open(os.path.join(self.directory, MANIFEST), "rb") as file:
                data = marshal.load(file)
        except OSError:
            return None
        except (ValueError, EOFError, TypeError):
            return False
        if data["serial"] != serial:
            return False
        self.kernel, self._manifest, self._serial = data["kernel"], data["modules"], serial
        return True

    def _entry(
        self, slot: int, token: int, origin: str | None, is_package: bool, digest: bytes
    ) -> Entry:
        if slot >= 0:
            token, digest = _SLOT.unpack_from(self.state, _SLOTS + slot * _SLOT.size)
        return Entry(token, origin, is_package, digest)

    def is_busy(self, name: str) -> bool:
        return self.busy is None or name in self.busy

    def is_referenced(self, name: str) -> bool:
        return self.referenced is None or name in self.referenced


def _busy(names: bytes) -> tuple[frozenset[str] | None, frozenset[str] | None]:
    if names == _ALL:
        return None, None
    busy = [name for name in names.decode().split("\n") if name]
    referenced = frozenset(name[1:] for name in busy if name.startswith(_REFERENCED))
    return frozenset(name for name in busy if not name.startswith(_REFERENCED)), referenced


def _open_state(directory: str) -> mmap.mmap:
    fd = os.open(os.path.join(directory, STATE), os.O_RDONLY | os.O_NOFOLLOW)
    try:
        return mmap.mmap(fd, _SIZE, access=mmap.ACCESS_READ)
    finally:
        os.close(fd)
