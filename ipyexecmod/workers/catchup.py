# SPDX-License-Identifier: MIT
"""The worker's side: import cell modules from the board, and catch up with the kernel.

A process that imports a cell module (through a stand-in in the board's ``.boot``
directory, or a child forked from the kernel) puts :data:`finder` first on
:data:`sys.meta_path`: it imports every module the board names from the copy the board
names, never from another copy on :data:`sys.path`.

Catching up: each module it imports gets a spec (:class:`WatchedSpec`) whose
``_initializing`` flag CPython reads whenever it finds the module in
:data:`sys.modules`: for an ``import`` statement, and for every function, class or
instance that an unpickler resolves (``pickle`` imports the module, then takes the
name from :data:`sys.modules`).  Reading it compares the board's counter with the one
this process last caught up with (8 bytes of shared memory).  If the counter moved and
the reader is not an ``import`` statement of running code, every module of this
process whose version the board no longer lists is imported again as a new module
object, in one step: the unpickler then takes the new function or class.  Running code
keeps the objects it holds, and its own ``import`` statements keep finding what they
found, so a task runs with the version it started with, and the next task with the
latest one.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
from importlib.machinery import ModuleSpec, PathFinder, SourceFileLoader
from importlib.util import cache_from_source
from types import FrameType, ModuleType
from typing import Any

from .board import Board, BoardView, Entry, source_hash
from .placeholders import Unavailable
from .verify import NotTheKernels, verified

__all__ = [
    "WatchedSpec",
    "WorkerFinder",
    "check",
    "finder",
    "from_kernel",
    "load",
    "serve",
    "watch_board",
]

_BUSY = -1  # the token of a module taken while its definition was under way
_HALF = -2  # in a child forked by another thread during the definition: half run
_CHECKED = (0b11).to_bytes(4, "little")  # PEP 552 flags: hash-based, checked


class _Watch:
    """This process's view of one kernel's board, and the versions it holds."""

    def __init__(self, view: BoardView | Board) -> None:
        #: In the kernel itself, its own board: nothing to catch up with.
        self.kernel = view if isinstance(view, Board) else None
        self.view = None if isinstance(view, Board) else view
        self.directory = view.directory
        self.seen = b"" if self.view is None else self.view.counter()
        #: The token of the version of each cell module in this process's sys.modules.
        self.loaded: dict[str, int] = {}
        self.lock = threading.RLock()
        self.catching_up = False

    @property
    def entries(self) -> dict[str, Entry]:
        if self.kernel is not None:
            return self.kernel.entries
        assert self.view is not None
        self.view.read()
        return self.view.entries

    def is_busy(self, name: str) -> bool:
        return self.view is not None and self.view.is_busy(name)

    def is_referenced(self, name: str) -> bool:
        return self.view is not None and self.view.is_referenced(name)

    def kernel_pid(self) -> int:
        return os.getpid() if self.view is None else self.view.kernel


_watch: _Watch | None = None
_lock = threading.RLock()


def check() -> None:
    """Catch up with the kernel if its board moved, unless the caller of the caller is
    an ``import`` statement of running code (see the module docstring)."""
    watch = _watch
    if watch is None or watch.view is None or watch.view.counter() == watch.seen:
        return
    if not is_import(sys._getframe(1).f_back):  # the getter's caller
        _catch_up(watch)


def is_import(frame: FrameType | None) -> bool:
    """Whether ``frame`` reads a module's spec to import it: an ``import`` statement, or
    importlib's own code (``importlib.import_module``)."""
    if frame is None:
        return False
    index = frame.f_lasti
    if index >= 0 and frame.f_code.co_code[index] == _import_name():
        return True
    return str(frame.f_globals.get("__name__", "")).startswith("importlib")


def _import_name() -> int:
    global _IMPORT_NAME
    if _IMPORT_NAME < 0:
        import opcode  # when first needed: it takes a millisecond to import

        _IMPORT_NAME = opcode.opmap["IMPORT_NAME"]
    return _IMPORT_NAME


_IMPORT_NAME = -1


class WatchedSpec(ModuleSpec):
    """The spec of a cell module imported from the board: reading its ``_initializing``
    flag catches up with the kernel (see the module docstring)."""

    _importing = False

    @property
    def _initializing(self) -> bool:
        check()
        return self._importing

    @_initializing.setter
    def _initializing(self, value: bool) -> None:
        self._importing = value


class CopyLoader(SourceFileLoader):
    """Loads a module's on-disk copy, and records which version it is.

    In a worker, only the kernel's version (:mod:`.verify`); in the kernel (a module
    restored from a lasting directory), whatever the copy holds, and the board is told
    which version that is.  Its ``.pyc`` is used only if it is the one the kernel wrote
    (checked, of the source the board names), and none is written: the directory is
    the kernel's, or a lasting one that it shares with other kernels."""

    def __init__(self, fullname: str, path: str, entry: Entry) -> None:
        super().__init__(fullname, path)
        self.token, self.source_hash = entry.token, entry.source_hash
        self.source: bytes | NotTheKernels | None = None  # as read and checked, once
        self.bytecode = cache_from_source(path) if sys.implementation.cache_tag else None

    def __repr__(self) -> str:  # shown by %modinfo: no address, which changes at each run
        return f"<{type(self).__name__} {self.name!r} from {self.path!r}>"

    def exec_module(self, module: ModuleType) -> None:
        _record(self.name, self.token)
        try:
            super().exec_module(module)
        except Exception as exc:
            if _watch is None or _watch.view is None:
                raise  # the kernel itself: its import fails as any other
            # In a worker, the import must not fail: the task that needs it says why.
            reason = str(exc) if isinstance(exc, NotTheKernels) else None
            Unavailable.instead_of(module, reason or _failed_reason(self.name, exc))

    def get_data(self, path: str) -> bytes:
        if path != self.path:
            data = super().get_data(path)
            if path == self.bytecode and data[4:16] != _CHECKED + self.source_hash:
                msg = f"not the .pyc of the board's version: {path}"
                raise OSError(msg)  # the source is compiled instead
            return data  # its .pyc, or a file of a package's (pkgutil.get_data)
        if self.source is None:  # the import system may ask twice
            try:
                self.source = self._read_source()
            except NotTheKernels as exc:
                self.source = exc
        if isinstance(self.source, NotTheKernels):
            raise self.source
        return self.source

    def _read_source(self) -> bytes:
        watch = _watch
        if watch is None or watch.view is None:
            data = super().get_data(self.path)
            if watch is not None and watch.kernel is not None:
                watch.kernel.executed(self.name, self.path, source_hash(data))
            return data
        data, entry = verified(watch.view, self.name, self.path, self._read_file)
        if entry.token != self.token:  # the kernel published it meanwhile
            self.token = entry.token
            _record(self.name, self.token)
        return data

    def _read_file(self) -> bytes:
        return super().get_data(self.path)

    def set_data(self, path: str, data: object, *, _mode: int = 0o666) -> None:
        """Write nothing: the kernel writes a module's ``.pyc`` with its copy."""


class _UnavailableLoader:
    """Makes the :class:`~.placeholders.Unavailable` module of a module this process
    cannot run."""

    def __init__(self, name: str, token: int, reason: str, is_package: bool) -> None:
        self.name, self.token, self.reason, self.is_package = name, token, reason, is_package

    def create_module(self, spec: ModuleSpec) -> ModuleType:
        return Unavailable(self.name, self.reason, is_package=self.is_package)

    def exec_module(self, module: ModuleType) -> None:
        _record(self.name, self.token)


def _record(name: str, token: int) -> None:
    if _watch is not None:
        _watch.loaded[name] = token


class WorkerFinder:
    """Finds the modules the board names, in the copy it names (see the module docstring)."""

    def find_spec(
        self, fullname: str, path: Any = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        watch = _watch
        if watch is None:
            return None
        entry = watch.entries.get(fullname)
        is_package = entry is not None and entry.is_package
        if watch.is_busy(fullname) and (entry is None or watch.is_referenced(fullname)):
            # Being defined, with no version before it, or one that would be wrong.
            reason = _busy_reason(fullname, watch.kernel_pid())
            return _unavailable(fullname, _BUSY, reason, is_package)
        if entry is None:
            return None
        if entry.origin is None:
            reason = _memory_only_reason(fullname, watch.kernel_pid())
            return _unavailable(fullname, entry.token, reason, is_package)
        loader = CopyLoader(fullname, entry.origin, entry)
        spec = WatchedSpec(fullname, loader, origin=entry.origin, is_package=is_package)
        spec.has_location = True
        if is_package:
            spec.submodule_search_locations = [os.path.dirname(entry.origin)]
        return spec

    def invalidate_caches(self) -> None:
        """Nothing to invalidate: the board says what is current."""


def _unavailable(name: str, token: int, reason: str, is_package: bool) -> WatchedSpec:
    loader: Any = _UnavailableLoader(name, token, reason, is_package)  # a Loader by its methods
    return WatchedSpec(name, loader, is_package=is_package)


finder = WorkerFinder()


def load(name: str, stub: str) -> None:
    """What a stand-in in ``.boot`` runs: import ``name`` through the worker finder
    instead, from the board of the directory that holds the stand-in."""
    directory = os.path.dirname(os.path.dirname(os.path.abspath(stub)))
    watch = _watch
    if watch is None or watch.directory != directory:
        if watch is not None and watch.view is None:  # a kernel, with a board of its own
            msg = f"No module named {name!r} (a cell module of another kernel, {directory})"
            raise ModuleNotFoundError(msg, name=name)
        watch = watch_board(directory)
    if name not in watch.entries and not watch.is_busy(name):
        msg = f"No module named {name!r} (the kernel that defined it no longer lists it)"
        raise ModuleNotFoundError(msg, name=name)
    del sys.modules[name]  # the stand-in; importlib puts back what the import below makes
    importlib.import_module(name)


def watch_board(directory: str) -> _Watch:
    """Follow the board of the kernel whose private directory is ``directory``."""
    global _watch
    with _lock:
        if _watch is None or _watch.directory != directory:
            _watch = _Watch(BoardView(directory))
        if finder not in sys.meta_path:
            sys.meta_path.insert(0, finder)
        return _watch


def serve(kernel: Board) -> None:
    """In the kernel: serve the modules of its own board (those restored from a lasting
    directory; the kernel's registry serves those it defined), with nothing to catch
    up with; a child forked from it catches up from then on.  A worker process keeps
    following its kernel's board."""
    global _watch
    with _lock:
        if _watch is not None and _watch.view is not None:
            return
        first = _watch is None
        _watch = _Watch(kernel)
        if finder not in sys.meta_path:
            # After the kernel's registry, which serves the modules it holds, and before
            # the path finder, which would find the stand-ins.
            paths = [i for i, f in enumerate(sys.meta_path) if f is PathFinder]
            sys.meta_path.insert(paths[0] if paths else len(sys.meta_path), finder)
        if first:
            os.register_at_fork(after_in_child=_forked)


def from_kernel(name: str) -> ModuleType | None:
    """In a worker, the kernel's module ``name`` if the board lists it (a cell module's
    code that defines another, run again in the worker, gets the kernel's definition);
    ``None`` in the kernel, or for a name the board does not list."""
    watch = _watch
    if watch is None or watch.view is None:
        return None
    if name not in watch.entries and not watch.is_busy(name):
        return None
    return importlib.import_module(name)


def _forked() -> None:
    """In a child forked from the kernel: its cell modules are the kernel's, as they were
    at the fork; from now on, it catches up with the kernel like any worker.

    A module being defined at the fork is the version being defined if the defining
    thread forked (a pool that the module's own code starts, as in a plain cell), and
    half run if another thread did (a pool replacing a worker): the child then takes the
    version before it, as any worker does.
    """
    global _watch, _lock
    _lock = threading.RLock()
    kernel = _watch
    if kernel is None or kernel.kernel is None:
        return
    counter, entries, claimed = kernel.kernel.snapshot()  # the kernel's, at the fork
    watch = _Watch(BoardView(kernel.directory, kernel.kernel.state))
    watch.seen = counter
    here = threading.get_ident()
    for name, entry in entries.items():
        if name in sys.modules:
            watch.loaded[name] = entry.token
    for name, thread in claimed.items():
        if name in sys.modules:
            watch.loaded[name] = _BUSY if thread == here else _HALF
            if thread != here:
                watch.seen = b""  # catch up at the first reference
    _watch = watch
    sys.meta_path[:] = [finder, *(f for f in sys.meta_path if f is not finder)]


def _catch_up(watch: _Watch) -> None:
    with watch.lock:
        if watch.catching_up:
            return
        watch.catching_up = True
        try:
            assert watch.view is not None
            while (counter := watch.view.counter()) != watch.seen:
                watch.seen = counter
                entries = watch.entries
                stale = [
                    name
                    for name, token in watch.loaded.items()
                    if name in sys.modules and _stale(watch, entries.get(name), name, token)
                ]
                if stale:
                    _replace(watch, stale)
        finally:
            watch.catching_up = False


def _stale(watch: _Watch, entry: Entry | None, name: str, token: int) -> bool:
    """Whether the version of ``name`` this process holds (``token``) is not the latest
    complete one: while a definition is under way, the one before it, unless a task
    refers to the module (its own code starts a pool), which it cannot have."""
    if token == _HALF:
        return True
    if token == _BUSY:  # as far as its code had run when this child was forked from it
        return not watch.is_busy(name)
    if entry is None or token != entry.token:
        return True
    return watch.is_busy(name) and watch.is_referenced(name)


def _replace(watch: _Watch, names: list[str]) -> None:
    """Import ``names`` again as new module objects, parents first; one that fails to
    import becomes an :class:`~.placeholders.Unavailable` module that says why."""
    order = sorted(names, key=lambda name: (name.count("."), name))
    for name in order:
        sys.modules.pop(name, None)
        del watch.loaded[name]
    for name in order:
        if name in sys.modules:  # imported by one before it
            continue
        try:
            importlib.import_module(name)
        except Exception as exc:
            entry = watch.entries.get(name)
            is_package = entry is not None and entry.is_package
            sys.modules[name] = Unavailable(name, _failed_reason(name, exc), is_package=is_package)
            watch.loaded[name] = _BUSY if entry is None else entry.token
    # A submodule not imported again belongs to its new parent as well.
    replaced = set(names)
    for name in list(watch.loaded):
        parent, _, child = name.rpartition(".")
        if parent in replaced and name in sys.modules and parent in sys.modules:
            setattr(sys.modules[parent], child, sys.modules[name])


def _failed_reason(name: str, exc: Exception) -> str:
    return (
        f"cell module {name!r} could not be imported in this process (pid {os.getpid()}): "
        f"{type(exc).__name__}: {exc}"
    )


def _memory_only_reason(name: str, kernel: int) -> str:
    return (
        f"cell module {name!r} is kept in the memory of the kernel (pid {kernel}) only "
        f"(%%as_module --no-persist, or ExecModMagics.persist = False), so another "
        f"process cannot import it; define it again without --no-persist (with "
        f"persist on) so that worker processes can import it"
    )


def _busy_reason(name: str, kernel: int) -> str:
    return (
        f"cell module {name!r} is being defined in the kernel (pid {kernel}): its code "
        f"is still running, so another process cannot import it yet (its code would run "
        f"again there). A pool that a cell module's own code creates with the 'fork' "
        f"start method works (its workers start with the module as far as its code has "
        f"run); otherwise, use the pool in a later cell"
    )
