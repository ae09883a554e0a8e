# SPDX-License-Identifier: MIT
"""The client preload: every :class:`distributed.Client` made in the kernel gets the cell
modules as it starts, before the notebook can submit a task with it.

Dask runs the ``dask_setup`` of each module named in its configuration's
``distributed.client.preload`` at the end of every client's start.  :func:`add` names
this module there while shipping is enabled; :func:`remove` takes it out.  In a process
that is not shipping (a worker that makes a client, having inherited the kernel's
configuration), ``dask_setup`` does nothing.
"""

from __future__ import annotations

import asyncio
import sys

import dask.config
from distributed import Client

__all__ = ["add", "dask_setup", "remove"]

_KEY = "distributed.client.preload"


async def dask_setup(client: Client) -> None:
    """Give ``client`` the cell modules (in a thread: shipping waits for the client's loop,
    which runs this)."""
    shipping = sys.modules.get("ipyexecmod.dask.shipping")
    if shipping is None or not shipping.shipper.enabled or client._asynchronous:
        return
    await asyncio.to_thread(shipping.shipper.greet, client)


def add() -> None:
    """Name this module in Dask's client preloads, unless it is there."""
    preloads = _preloads()
    if __name__ not in preloads:
        dask.config.set({_KEY: [*preloads, __name__]})


def remove() -> None:
    """Take this module out of Dask's client preloads."""
    preloads = _preloads()
    if __name__ in preloads:
        dask.config.set({_KEY: [name for name in preloads if name != __name__]})


def _preloads() -> list[str]:
    value = dask.config.get(_KEY, default=[])
    return [value] if isinstance(value, str) else list(value or [])
