# SPDX-License-Identifier: MIT
"""What ``%ship`` does, and the value it shows: the magic only parses its line.

The messages here name the magic's options, as the magic's core may.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from distributed import Client

from ..inspection.tables import escape
from .clusters import ShipError, check_client, current_client
from .shipping import shipper

__all__ = ["Shipment", "ship_command"]


@dataclass(frozen=True)
class Shipment:
    """What ``%ship`` did: the modules shipped and where, and auto mode turned on or off.
    Displays as a sentence each."""

    modules: tuple[str, ...] = ()
    workers: int = 0
    address: str = ""
    #: Auto mode as ``%ship`` set it, if it did.
    auto: bool | None = None

    def __repr__(self) -> str:
        return "\n".join(self._sentences(str))

    def _repr_html_(self) -> str:
        code = lambda text: f"<code>{escape(text)}</code>"  # noqa: E731
        return "".join(f"<p>{sentence}</p>" for sentence in self._sentences(code))

    def _sentences(self, code: Callable[[str], str]) -> list[str]:
        sentences = []
        if self.modules:
            sentences.append(
                f"shipped {', '.join(map(code, self.modules))} to the {self.workers} workers "
                f"of {code(self.address)}, and to any that join; redefinitions ship again"
            )
        if self.auto:
            sentences.append(
                "auto shipping on: every Dask client of the kernel, made before or after, "
                "gets every cell module, and each redefinition"
            )
        elif self.auto is False:
            sentences.append(
                f"auto shipping off: only the modules named to {code('%ship')} run on the "
                "workers; a task that needs another fails with an ImportError that says so"
            )
        return sentences


def ship_command(
    names: Sequence[str], client: object = None, *, auto: bool | None = None
) -> Shipment | None:
    """Ship ``names`` (if any) to ``client``, by default the default client; then turn auto
    mode on or off (``auto``: for every client of the kernel).  Returns what to show, or
    ``None`` for nothing.

    Raises :class:`ShipError` for all a user can get wrong: no default client, ``client``
    not a running synchronous :class:`~distributed.Client`, names :func:`ship` refuses,
    or code that fails on the workers.
    """
    shipment = Shipment()
    if names:
        target = _client(client)
        shipped = tuple(shipper.ship(target, *names))
        workers = len(target.nthreads())  # asks the scheduler (scheduler_info() is a cache)
        assert target.scheduler is not None  # a running client has one
        shipment = Shipment(shipped, workers, str(target.scheduler.address))
    if auto is not None:
        shipper.set_auto(auto)
        shipment = dataclasses.replace(shipment, auto=auto)
    return shipment if shipment != Shipment() else None


def _client(client: object) -> Client:
    """``client`` checked, or the default client; raises ShipError."""
    if client is None:
        client = current_client()
        if client is None:
            msg = (
                "no Dask client to ship to: create one (client = Client(...)) first, "
                "or name one with --client VAR"
            )
            raise ShipError(msg)
    try:
        check_client(client)
    except TypeError as exc:
        raise ShipError(str(exc)) from exc
    assert isinstance(client, Client)  # checked just now
    return client
