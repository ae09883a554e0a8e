# SPDX-License-Identifier: MIT
"""Cell modules on a Dask cluster: shipped to every worker, and never stale.

A task whose function comes from a module the workers cannot import does not
fail on a Dask cluster: the worker cannot unpickle it, and the future waits
forever.  :func:`ship` sends cell modules through Dask's own mechanism, the
``UploadFile`` worker plugin, which every current worker runs at once and every
worker that joins later runs when it starts::

    from ipyexecmod.dask import ship
    ship(client, "geo")                  # %ship geo in a notebook
    client.submit(geo.area, 2.0)

Once shipped to a cluster, a module stays current there: each redefinition of
its cell ships it again before the cell finishes, and a task submitted after
that runs the new code on every worker.  Three things make that true:

- a top-level module ships as ``NAME.py``, which the plugin writes and reloads;
  a dotted module ships as its whole top-level package, as ``NAME.zip``, and the
  submodules the plugin does not reload are reloaded by a small function sent
  with ``client.run`` (by value: the workers need no ipyexecmod);
- the Dask token of anything from a cell module or ``__main__`` includes a count
  of cell definitions and shipments, so ``client.submit(geo.area, 2.0)`` after a
  redefinition is a new task, not the finished one of the old code;
- a remote scheduler, which unpickles task graphs too, gets the files as well
  (``SchedulerUploadFile``); an in-process one (``LocalCluster``) already has them.

A shipped module brings the cell modules its code imports, shipped first.

So that forgetting to ship fails fast, every cell module not shipped to a client
that ipyexecmod knows (one shipped to, or the default client in auto mode) is
sent there as a placeholder: a task that uses it raises an :class:`ImportError`
that names the module and ``%ship``, in seconds.  A client ipyexecmod has never
been told of cannot be protected; Dask's wait is then endless.

:func:`set_auto` (``%ship --auto``) ships every cell module, new or redefined,
to the default client, whichever it is when the module is defined.

Importing this package changes nothing.  The first :func:`ship` or
``set_auto(True)`` calls :func:`enable`: it starts listening to cell
definitions and puts the count into Dask's tokens.  :func:`disable` (which
``%unload_ext ipyexecmod`` calls) undoes both, and turns auto mode off; the
next shipment enables them again and first sends every cluster what it missed.
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
    "resume",
    "set_auto",
    "ship",
    "ship_command",
    "ship_to_default",
]

ship = shipper.ship
set_auto = shipper.set_auto
ship_to_default = shipper.ship_to_default
enable = shipper.enable
disable = shipper.disable
resume = shipper.resume
