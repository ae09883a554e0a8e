# SPDX-License-Identifier: MIT
"""The client preload: every :class:`distributed.Client` made in the kernel gets the cell
modules as it starts, before the notebook can submit a task with it.

Dask runs the ``dask_setup`` of each preload in its configuration's
``distributed.client.preload`` at the end of every client's start.  :func:`add` puts
:data:`PRELOAD` there while shipping is enabled, and :func:`remove` takes it out.  It is
the text of a preload, not this module's name: the configuration goes with the processes
Dask starts (a ``LocalCluster``'s workers, an ``SSHCluster``'s), some without ipyexecmod,
and there a client (``get_client()`` in a task) must still start.  It calls this module's
:func:`dask_setup` only where this module is imported, and that does nothing unless the
process is shipping.  Dask logs each preload it runs; those lines are kept out of the
notebook while enabled.
"""

from __future__ import annotations

import asyncio
import logging
import sys

import dask.config
from distributed import Client

__all__ = ["PRELOAD", "add", "dask_setup", "remove"]

_KEY = "distributed.client.preload"

#: The preload, as text (see the module docstring): it imports nothing that may be missing.
PRELOAD = """\
import sys  # ipyexecmod's: gives a client made in a notebook kernel its cell modules
def dask_setup(client):
    preload = sys.modules.get("ipyexecmod.dask.preload")
    return None if preload is None else preload.dask_setup(client)
"""

#: Dask's logger of preloads, and the level it had before :func:`add`.
_LOGGER = logging.getLogger("distributed.preloading")
_level: list[int] = []


async def dask_setup(client: Client) -> None:
    """Give ``client`` the cell modules (in a thread: shipping waits for the client's loop,
    which runs this)."""
    shipping = sys.modules.get("ipyexecmod.dask.shipping")
    if shipping is None or not shipping.shipper.enabled or client._asynchronous:
        return
    await asyncio.to_thread(shipping.shipper.greet, client)


def add() -> None:
    """Put :data:`PRELOAD` in Dask's client preloads, unless it is there."""
    preloads = _preloads()
    if PRELOAD not in preloads:
        dask.config.set({_KEY: [*preloads, PRELOAD]})
    if not _level and _LOGGER.getEffectiveLevel() < logging.WARNING:
        _level.append(_LOGGER.level)
        _LOGGER.setLevel(logging.WARNING)


def remove() -> None:
    """Take :data:`PRELOAD` out of Dask's client preloads, and put its logger's level back."""
    preloads = _preloads()
    if PRELOAD in preloads:
        dask.config.set({_KEY: [each for each in preloads if each != PRELOAD]})
    if _level:
        _LOGGER.setLevel(_level.pop())


def _preloads() -> list[str]:
    value = dask.config.get(_KEY, default=[])
    return [value] if isinstance(value, str) else list(value or [])
