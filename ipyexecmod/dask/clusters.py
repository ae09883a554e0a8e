# SPDX-License-Identifier: MIT
"""What one Dask cluster has been sent, and how cell modules are sent to it.

Modules travel in :class:`~._on_worker.Shipment` worker plugins: Dask runs a plugin on
every current worker at once, and on every worker that joins later as it starts, before
its first task.  The first shipment to a cluster bundles every cell module in one
plugin; later ones carry one family (a top-level module or package) each.  A scheduler
in another process, which unpickles task graphs too, gets each shipment through
``run_on_scheduler``.
"""

from __future__ import annotations

import hashlib
import time
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from distributed import Client

from .._warnings import warn
from ..workers import placeholders
from . import _on_worker
from ._on_worker import Entry, Shipment
from .families import Member
from .tokens import KERNEL

__all__ = [
    "Cluster",
    "ShipError",
    "check_client",
    "current_client",
    "not_shipped",
    "running_clients",
]


class ShipError(Exception):
    """A module cannot be shipped: not a cell module, or its import failed on the workers."""


@dataclass(eq=False)
class Cluster:
    """What one Dask cluster (one scheduler, whichever client reaches it) has been sent."""

    #: Whether its scheduler runs in this process (a ``LocalCluster``), with every module.
    in_process: bool
    clients: weakref.WeakSet[Client] = field(default_factory=weakref.WeakSet)
    #: Top-level names shipped for real (the others it knows are placeholders).
    real: set[str] = field(default_factory=set)
    #: What was last sent of each module, and its digest.
    sent: dict[str, tuple[Entry, str]] = field(default_factory=dict)
    #: Whether every cell module was sent (a bundle, at the first shipment).
    complete: bool = False

    def client(self) -> Client | None:
        """A running client of this cluster, if any is left."""
        return next((c for c in list(self.clients) if c.status == "running"), None)

    def unreachable(self) -> bool:
        """Whether every client of this cluster is closed (none can reach it any more)."""
        return all(c.status in ("closing", "closed") for c in list(self.clients))

    def send(
        self,
        client: Client,
        families: Mapping[str, Mapping[str, Member]],
        *,
        real: Iterable[str],
        rerun: str | None = None,
        load: bool = False,
    ) -> bool:
        """Send the families (by top-level name) that the cluster lacks: those in ``real``
        as code, the others as placeholders (unless it has their code); the workers import
        anew those they had imported in another version.  Returns whether new code was sent.

        ``rerun``, a module just redefined, is imported anew even if its text is unchanged,
        as it ran again in the kernel (it may read other modules that have changed).  ``load``
        imports the real modules on every worker now.  Until the cluster is
        ``complete``, everything goes in one bundle; after, each family in a plugin of its own.

        Raises :class:`ShipError` if real code failed to load or run again on a worker:
        then a task that needs it fails there with that error.
        """
        real = set(real)
        new: dict[str, dict[str, Entry]] = {}
        for top, family in families.items():
            as_code = top in real or top in self.real
            made = {name: _entry(member, as_code, top) for name, member in family.items()}
            entries = {
                name: entry
                for name, entry in made.items()
                if name == rerun or self._differs(name, entry)
            }
            if entries:
                new[top] = entries
        if not new:
            return False
        batches = [new] if not self.complete else [{top: e} for top, e in new.items()]
        for batch in batches:
            self.real |= real & set(batch)
            self._ship(client, batch, rerun=rerun, load=load)
        return any(entry.real for entries in new.values() for entry in entries.values())

    def _differs(self, name: str, entry: Entry) -> bool:
        sent = self.sent.get(name)
        return sent is None or sent[1] != _digest_entry(entry)

    def _ship(
        self,
        client: Client,
        batch: dict[str, dict[str, Entry]],
        *,
        rerun: str | None,
        load: bool,
    ) -> None:
        """Register one plugin with the entries of ``batch``.  If real code raises on a
        worker, that worker (and any that joins later) has a placeholder saying so, never
        an earlier version: raises :class:`ShipError` with the worker's error."""
        entries = {name: entry for family in batch.values() for name, entry in family.items()}
        entries = _unclaimed(client, self.clients, entries)
        plugin = _plugin_name(next(iter(batch)) if self.complete else None)
        shipment = Shipment(
            entries,
            _placeholders(),
            _on_worker.here(),
            rerun=[rerun] if rerun in entries else [],
            load=sorted(name for name, entry in entries.items() if entry.real) if load else [],
        )
        try:
            client.register_plugin(shipment, name=plugin)
            if not self.in_process:
                client.run_on_scheduler(_on_worker.ship_here, shipment)
        except Exception as exc:
            names = ", ".join(map(repr, sorted(batch)))
            msg = (
                f"{names} could not be loaded on the workers ({type(exc).__name__}: {exc}): "
                f"a task that needs it fails there with this error"
            )
            raise ShipError(msg) from exc
        finally:  # registered, even if its code failed on a worker: the workers have it
            for name, entry in entries.items():
                self.sent[name] = (entry, _digest_entry(entry))
            self.complete = True


def _unclaimed(
    client: Client, clients: Iterable[Client], entries: dict[str, Entry]
) -> dict[str, Entry]:
    """``entries``, but a placeholder that says so for each module that another kernel
    still connected to the cluster sends in another version: one worker process can
    hold one module of a name, so neither kernel's tasks may run it (each would get the
    other's without a word).  Once that kernel is gone, the next shipment sends the code."""
    who = "{}:{}".format(*_on_worker.here())
    ids = sorted(c.id for c in list(clients))
    digests = {name: _digest_entry(entry) for name, entry in entries.items()}
    try:
        conflicts = client.run_on_scheduler(_on_worker.claim, KERNEL, who, ids, digests)
    except Exception:  # the shipment that follows fails too, and says why
        return entries
    for name, other in conflicts.items():
        reason = (
            f"two notebook kernels send different modules named {name!r} to this Dask "
            f"cluster, this one ({who}) and {other}; a worker can hold only one, so tasks of "
            f"neither may run it: rename it in one notebook, then run its cell again in the other"
        )
        entries[name] = entries[name]._replace(real=False, text=reason)
        warn(reason, RuntimeWarning)  # at the user's cell, each time
    return entries


def check_client(client: object) -> None:
    """Raise :class:`TypeError` unless ``client`` is a running, synchronous Client."""
    if not isinstance(client, Client):
        msg = f"ship to a distributed.Client, not {type(client).__name__}"
        raise TypeError(msg)
    if client.asynchronous:
        msg = "ipyexecmod ships through a synchronous Client; this one is asynchronous"
        raise TypeError(msg)
    if client.status != "running":
        msg = f"{client} is {client.status}; ship to a running client"
        raise TypeError(msg)


def current_client() -> Client | None:
    """The default client (:meth:`distributed.Client.current`), or ``None``."""
    try:
        client: Client = Client.current()
    except ValueError:  # none
        return None
    return client


def running_clients() -> list[Client]:
    """Every running, synchronous client of this process, oldest first.

    ``Client._instances`` is where distributed keeps them (its tests check for leaked
    clients there); ``tests/test_dask.py`` pins that it holds every client made.
    """
    clients = list(Client._instances)
    return [c for c in clients if c.status == "running" and not c._asynchronous]


def not_shipped(name: str, top: str) -> str:
    """Why the placeholder of cell module ``name`` (of package ``top``) raises."""
    return (
        f"cell module {name!r} was not shipped to this Dask cluster: run `%ship {top}` in "
        f"the notebook (or ipyexecmod.dask.ship(client, {top!r})), or `%ship --auto`"
    )


def _entry(member: Member, as_code: bool, top: str) -> Entry:
    text = member.source if as_code else not_shipped(member.name, top)
    return Entry(
        _generation(), as_code, text, member.filename, member.path, member.is_package, member.lead
    )


def _digest_entry(entry: Entry) -> str:
    """What tells two entries apart, but their generation."""
    text = entry.text if isinstance(entry.text, bytes) else entry.text.encode()
    parts = (
        bytes([entry.real, entry.is_package]),
        text,
        entry.filename.encode(),
        entry.lead.encode(),
    )
    return hashlib.sha256(b"\0".join(parts)).hexdigest()


_last_generation = 0


def _generation() -> int:
    """A number larger than any before, in this kernel and (by the clock) in others."""
    global _last_generation
    _last_generation = max(time.time_ns(), _last_generation + 1)
    return _last_generation


def _plugin_name(top: str | None) -> str:
    """The plugin of the bundle (``top`` None), or of one family."""
    return f"ipyexecmod-{KERNEL}" + (f"-{top}" if top else "")


@lru_cache(maxsize=1)
def _placeholders() -> str:
    """The text of :mod:`ipyexecmod.workers.placeholders`, which the workers run."""
    return Path(placeholders.__file__).read_text("utf-8")
