# SPDX-License-Identifier: MIT
"""Cell modules on a Dask cluster: on every worker, and never stale.

A task whose function comes from a module the workers cannot import does not fail
on a Dask cluster: the worker cannot unpickle it, its connection to the scheduler
breaks, and the future waits forever.  So every running :class:`distributed.Client`
of the kernel gets every cell module, in one bundle, as a worker plugin
(:class:`~._on_worker.Shipment`) that every current worker runs at once and every
worker that joins later runs as it starts: a client made before the modules when it
is enabled, one made after as it starts (a Dask client preload, :mod:`.preload`)::

    import ipyexecmod.dask
    ipyexecmod.dask.set_auto(True)       # %ship --auto, on by default in a notebook
    client.submit(geo.area, 2.0)

In auto mode a cluster gets the modules' code; otherwise only those named to
:func:`ship` (``%ship geo``), with those they import, and a placeholder for each other
one: a task that needs it fails in seconds with an :class:`ImportError` that says
``%ship NAME``.  On the workers the modules are imported from memory by a finder first
on ``sys.meta_path``; what cannot run there (a placeholder, code that raises) still
unpickles, and raises when used, so the worker's connection never breaks.

Once a cluster has a module's code, each redefinition of its cell ships it again
before the cell finishes, re-executing it where a worker imported it, and a task
submitted after that runs the new code on every worker: the Dask token of anything from
a cell module or ``__main__`` includes a count of cell definitions and shipments, so
``client.submit(geo.area, 2.0)`` after a redefinition is a new task, not the finished
one of the old code.  A scheduler in another process, which unpickles task graphs too,
gets every shipment as well.

Importing this package changes nothing.  :func:`enable` (which the first
:func:`ship` or ``set_auto(True)`` calls, and ``%load_ext ipyexecmod`` once the
notebook imports ``distributed``) starts listening to cell definitions, names the
preload in Dask's configuration, puts the count into Dask's tokens and greets the
running clients.  :func:`disable` (which ``%unload_ext ipyexecmod`` calls) undoes all
that, and turns auto mode off; enabled again, it first sends every cluster what it missed.
"""

from __future__ import annotations

try:
    import distributed  # noqa: F401
except ImportError as exc:  # pragma: no cover - the test environment has distributed
    _msg = "ipyexecmod.dask needs Dask's distributed package: pip install 'ipyexecmod[dask]'"
    raise ImportError(_msg, name=exc.name) from exc

from .clusters import ShipError, check_client, current_client
from .command import Shipment, ship_command
from .shipping import shipper

__all__ = [
    "ShipError",
    "Shipment",
    "check_client",
    "current_client",
    "disable",
    "enable",
    "greet_clients",
    "set_auto",
    "ship",
    "ship_command",
]

ship = shipper.ship
set_auto = shipper.set_auto
greet_clients = shipper.greet_clients
enable = shipper.enable
disable = shipper.disable
