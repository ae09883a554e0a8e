# SPDX-License-Identifier: MIT
"""What runs on Dask workers (and a scheduler in another process) for :mod:`ipyexecmod.dask`.

Everything here is sent by value (cloudpickle), so the workers need no ipyexecmod
installed: it may use the standard library and :mod:`distributed` only.

A kernel's cell modules reach a worker as :class:`Shipment` plugins, each carrying the
text of some modules, or a placeholder's reason for those the kernel did not ship.  A
shipment puts them into the process's :class:`CellFinder`, first on
:data:`sys.meta_path`, which then imports them from memory.  Each module's entry has a
*generation*; a shipment's entry replaces an older one only, so that the plugins a
late worker runs, in whatever order the scheduler keeps them, leave each module at its
latest version.  A module the process had imported is imported anew, as a new module
object: a task under way keeps the one it started with.

Nothing a finder serves fails to import: a placeholder, or real code that raises as it
runs, becomes a module whose every name unpickles and raises :class:`ImportError` when
used.  A task that needs it fails with the reason; the worker's connection never breaks
on a task it cannot unpickle.
"""

from __future__ import annotations

import importlib
import linecache
import os
import socket
import sys
from importlib.abc import Loader
from importlib.machinery import ModuleSpec
from types import CodeType, ModuleType
from typing import Any, NamedTuple

from distributed.diagnostics.plugin import WorkerPlugin

#: Which process is the kernel: the shipments leave it alone (in-process workers).
Origin = tuple[str, int]


class Entry(NamedTuple):
    """One cell module as shipped: its code, or a placeholder's reason."""

    generation: int
    real: bool
    #: The source (``real``), or why the module is a placeholder.
    text: bytes | str
    #: The filename its code is compiled under: the kernel's, so tracebacks show its lines.
    filename: str
    #: ``__file__`` in the kernel, if it has an on-disk copy.
    path: str | None
    is_package: bool
    #: The lines before the source in the file ``filename`` names, which the code's line
    #: numbers count (a notebook cell's ``%%as_module NAME``), if any.
    lead: str = ""


def here() -> Origin:
    return socket.gethostname(), os.getpid()


class CellFinder(Loader):
    """Imports the cell modules shipped to this process, from memory."""

    #: How the finder is recognised, whichever shipment's copy of this class made it.
    ipyexecmod_cells = True

    def __init__(self, placeholders: str) -> None:
        self.entries: dict[str, Entry] = {}
        #: What the code of each module that became a placeholder as it ran raised.
        self.failures: dict[str, Exception] = {}
        namespace: dict[str, Any] = {"__name__": "ipyexecmod.placeholders"}
        exec(placeholders, namespace)
        self.unavailable: Any = namespace["Unavailable"]

    @classmethod
    def installed(cls, placeholders: str) -> CellFinder:
        """The finder of this process, made and put first on ``sys.meta_path`` if new."""
        for finder in sys.meta_path:
            if getattr(finder, "ipyexecmod_cells", False) is True:
                return finder  # type: ignore[return-value]
        finder = cls(placeholders)
        sys.meta_path.insert(0, finder)
        return finder

    def merge(self, entries: dict[str, Entry]) -> set[str]:
        """Take the entries newer than those held; return their names."""
        newer = {
            name
            for name, entry in entries.items()
            if name not in self.entries or self.entries[name].generation < entry.generation
        }
        self.entries.update((name, entries[name]) for name in newer)
        return newer

    # -- the import protocol --

    def find_spec(self, name: str, path: object = None, target: object = None) -> ModuleSpec | None:
        entry = self.entries.get(name)
        if entry is None:
            return None
        origin = entry.path or entry.filename
        spec = ModuleSpec(name, self, origin=origin, is_package=entry.is_package)
        spec.has_location = entry.path is not None
        return spec

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        entry = self.entries[spec.name]
        if entry.real:
            return None
        module: ModuleType = self.unavailable(spec.name, entry.text, is_package=entry.is_package)
        return module

    def exec_module(self, module: ModuleType) -> None:
        """Run the module's code; if it raises, the module becomes a placeholder."""
        if isinstance(module, self.unavailable):
            return
        entry = self.entries[module.__name__]
        try:
            exec(_code(entry), vars(module))
        except Exception as exc:
            self.failures[module.__name__] = exc
            reason = (
                f"cell module {module.__name__!r} failed to import on this Dask worker "
                f"({type(exc).__name__}: {exc})"
            )
            self.unavailable.instead_of(module, reason)

    def get_source(self, name: str) -> str | None:
        entry = self.entries.get(name)
        if entry is None or not entry.real:
            return None
        text = entry.text
        return text.decode("utf-8") if isinstance(text, bytes) else text

    def is_package(self, name: str) -> bool:
        return self.entries[name].is_package

    # -- applying a shipment --

    def apply(self, entries: dict[str, Entry], rerun: list[str], load: list[str]) -> None:
        """Take ``entries``; import anew, as new module objects, the modules this process
        had imported that changed or are in ``rerun``, and import ``load``.

        A task already running keeps the module objects it started with, whole.  Code that
        raises makes its module a placeholder saying so (:meth:`exec_module`); the first
        such error is raised after all are done, for the kernel to tell the user.
        """
        importlib.invalidate_caches()
        changed = self.merge(entries) | (set(rerun) & set(self.entries))
        again = {name for name in changed if sys.modules.pop(name, None) is not None}
        failed: Exception | None = None
        for name in sorted(again | set(load), key=lambda name: name.count(".")):  # parents first
            if name in sys.modules or not self.entries[name].real:
                continue  # imported by another one's code; a placeholder comes when used
            self.failures.pop(name, None)
            module = importlib.import_module(name)
            failed = failed or self.failures.pop(name, None)
            if hasattr(module, "__path__"):
                _adopt_submodules(module)
        if failed is not None:
            raise failed


def _code(entry: Entry) -> CodeType:
    """The code of a real entry, as the kernel compiled it: under its filename, with its
    line numbers.  Code named after a notebook cell (a ``lead``) has the cell's: linecache
    has the cell's lines under that name, as in the kernel (from the source alone, it
    would show each line one off)."""
    if not entry.lead:
        return compile(entry.text, entry.filename, "exec", dont_inherit=True)
    source = entry.text.decode("utf-8") if isinstance(entry.text, bytes) else entry.text
    lines = (entry.lead + source).splitlines(keepends=True)
    # mtime None: kept by linecache.checkcache, even where a file of that name differs.
    linecache.cache[entry.filename] = (len(entry.lead) + len(source), None, lines, entry.filename)
    shifted = "\n" * entry.lead.count("\n") + source
    return compile(shifted, entry.filename, "exec", dont_inherit=True)


def _adopt_submodules(package: ModuleType) -> None:
    """Give a package imported anew the submodules still imported under it, as attributes."""
    prefix = package.__name__ + "."
    for name, module in list(sys.modules.items()):
        child = name[len(prefix) :]
        if name.startswith(prefix) and "." not in child and module is not None:
            setattr(package, child, module)


class Shipment(WorkerPlugin):
    """Cell modules for every worker of a cluster, and for each that joins later."""

    idempotent = False

    def __init__(
        self,
        entries: dict[str, Entry],
        placeholders: str,
        origin: Origin,
        *,
        rerun: list[str] | None = None,
        load: list[str] | None = None,
    ) -> None:
        self.entries = entries
        self.placeholders = placeholders
        self.origin = origin
        self.rerun = rerun or []
        self.load = load or []

    def setup(self, worker: object = None) -> None:
        if here() == self.origin:
            return  # a worker in the kernel's own process: it has the modules
        finder = CellFinder.installed(self.placeholders)
        finder.apply(self.entries, self.rerun, self.load)

    def teardown(self, worker: object = None) -> None:
        """Nothing: a shipment replaced by a later one leaves its modules in place."""


def ship_here(shipment: Shipment) -> None:
    """Apply ``shipment`` in this process (a scheduler's, through ``run_on_scheduler``)."""
    shipment.setup()


#: Where a scheduler keeps which kernel sends which version of each module (its metadata).
CLAIMS = "ipyexecmod-claims"


def claim(
    kernel: str, who: str, clients: list[str], digests: dict[str, str], dask_scheduler: Any
) -> dict[str, str]:
    """On the scheduler (``run_on_scheduler``): record that ``kernel`` (``who``, with
    ``clients``) sends these versions of modules; return, for each module another kernel
    still connected sends in another version, that kernel's ``who``.

    A kernel none of whose clients is connected any more claims nothing.  The scheduler
    runs this on its event loop, so two kernels' claims never interleave.
    """
    claims: dict[str, dict[str, tuple[str, str, list[str]]]]
    claims = dask_scheduler.get_metadata([CLAIMS], default={})
    connected = set(dask_scheduler.clients)
    conflicts: dict[str, str] = {}
    for name, digest in digests.items():
        holders = claims.setdefault(name, {})
        for other, (their_digest, their_who, their_clients) in list(holders.items()):
            if other != kernel and not connected.intersection(their_clients):
                del holders[other]  # that kernel is gone
            elif other != kernel and their_digest != digest:
                conflicts[name] = their_who
        holders[kernel] = (digest, who, clients)
    dask_scheduler.set_metadata([CLAIMS], claims)
    return conflicts
