# SPDX-License-Identifier: MIT
"""Shipping cell modules, and keeping every cluster that has them up to date.

All the state lives in one :class:`Shipper`; the package exports the methods of
its one instance as functions (:func:`ipyexecmod.dask.ship` and the rest).
"""

from __future__ import annotations

import importlib.util
import sys
import weakref
from collections.abc import Iterable

import cloudpickle
from distributed import Client

from .. import cells
from .._warnings import warn
from . import _on_worker, families, preload
from .clusters import Cluster, ShipError, check_client, running_clients
from .tokens import Tokens

__all__ = ["Shipper", "shipper"]


class Shipper:
    """What has been shipped where, auto mode, and the hooks that keep it all current."""

    def __init__(self) -> None:
        #: By scheduler id: two clients of one cluster share what it has.
        self.clusters: dict[str, Cluster] = {}
        self.scheduler_ids: weakref.WeakKeyDictionary[Client, str] = weakref.WeakKeyDictionary()
        self.auto = False
        #: The count folded into the Dask tokens of the notebook's objects.
        self.tokens = Tokens()
        self.enabled = False
        #: Whether cells may have been defined while disabled, unseen.
        self._behind = False

    def enable(self) -> None:
        """Start following definitions and clients: the cells listener, the tokens, the
        functions for the workers pickled by value, and the client preload that gives
        every client made from now on every cell module as it starts.  Every running client
        gets them now.  Done by the first :meth:`ship` or ``set_auto(True)``.

        Turned on again after :meth:`disable`, it first brings every cluster it knows up to
        date with the definitions it missed.
        """
        if not self.enabled:
            self.enabled = True
            self.tokens.install()
            cloudpickle.register_pickle_by_value(_on_worker)  # the workers need no ipyexecmod
            # One listener, even if this module was imported anew (``%reset --aggressive``).
            listeners = cells.finder.listeners
            listeners[:] = [f for f in listeners if getattr(f, "__module__", None) != __name__]
            listeners.append(self.on_define)
            if self._behind:
                self._behind = False
                self.tokens.bump()  # cells defined meanwhile ran no listener
                self._catch_up()
        self.greet_clients()

    def disable(self) -> None:
        """Undo :meth:`enable` and turn auto mode off (``%unload_ext ipyexecmod``).

        What was shipped stays on the clusters, and the next shipment starts again.
        """
        self.auto = False
        if not self.enabled:
            return
        self.enabled = False
        self._behind = True
        self.tokens.uninstall()
        preload.remove()
        cloudpickle.unregister_pickle_by_value(_on_worker)
        listeners = cells.finder.listeners
        listeners[:] = [f for f in listeners if f != self.on_define]

    def ship(self, client: Client, *names: str) -> list[str]:
        """Ship the cell modules ``names`` to every current and future worker of ``client``.

        A dotted name ships its whole top-level package, and the cell modules a shipped
        module imports are shipped with it.  The workers import them at once.  From now on
        each redefinition of these modules is shipped again before its cell finishes.
        Returns the names of the modules shipped, sorted.

        Raises
        ------
        ShipError
            A name is not a cell module, or hides another module; or importing a module
            on the workers failed (they keep the version they had).
        TypeError
            ``client`` is not a running, synchronous :class:`distributed.Client`.
        """
        if not names:
            msg = "name at least one cell module to ship, e.g. ship(client, 'geo')"
            raise ShipError(msg)
        cluster = self._cluster(client)
        wanted = {_shippable_top(name) for name in names}
        self.enable()
        real = families.with_imports([top for top in families.tops() if top in wanted])
        shipped = self._send(client, cluster, real, real=real, load=True)
        return sorted(name for top in real for name in shipped[top])

    def set_auto(self, enabled: bool) -> None:
        """Ship every cell module, new or redefined, to every client of this process
        (``%ship --auto``), made before or after the modules; with it off, only those
        named to :meth:`ship`, and placeholders for the others."""
        enabled = bool(enabled)
        if enabled == self.auto:
            return  # as it is (the %ship --auto magic and its option both say so)
        self.auto = enabled
        if enabled:
            self.enable()
            self._catch_up()  # the code of what clusters have as placeholders

    def greet_clients(self) -> None:
        """Give each running client that lacks them every cell module: their code in auto
        mode, placeholders otherwise.  Runs at :meth:`enable`, before and after each cell,
        and from the client preload as a client starts."""
        if not self.enabled:
            return
        preload.add()  # again, if the user's configuration replaced the list
        for client in running_clients():
            self.greet(client)

    def greet(self, client: Client) -> None:
        """Give ``client``'s cluster every cell module if it lacks them; a failure warns."""
        if not self.enabled:
            return
        try:
            cluster = self._cluster(client)
            if not cluster.complete:
                tops = families.tops()
                self._send(client, cluster, tops, real=tops if self.auto else (), everything=tops)
        except Exception as exc:  # the cluster went away: say so, keep the kernel going
            msg = f"could not give the cell modules to {client}: {exc}"
            warn(msg, RuntimeWarning)

    def on_define(self, name: str) -> None:
        """A cell module was (re)defined: bring every cluster up to date with it."""
        self.tokens.bump()
        top = name.partition(".")[0]
        hides = cells.finder.hides(top) is not None
        self.greet_clients()
        for key, cluster in list(self.clusters.items()):
            client = cluster.client()
            if client is None:
                if cluster.unreachable():
                    del self.clusters[key]
                continue
            if hides:
                continue  # on the workers it would hide the other module too
            real = self.auto or top in cluster.real
            try:
                tops = families.with_imports([top]) if real else [top]
                self._send(client, cluster, tops, real=tops if real else (), rerun=name)
            except Exception as exc:
                _warn(exc, top)

    def _catch_up(self) -> None:
        """Send every cluster with a running client what changed while disabled."""
        for cluster in list(self.clusters.values()):
            client = cluster.client()
            if client is None:
                continue
            tops = families.tops()
            real = families.with_imports(tops if self.auto else sorted(cluster.real & set(tops)))
            try:
                self._send(client, cluster, tops, real=real)  # placeholders for the others
            except Exception as exc:
                _warn(exc, None)

    def _send(
        self,
        client: Client,
        cluster: Cluster,
        tops: list[str],
        *,
        real: Iterable[str],
        rerun: str | None = None,
        load: bool = False,
        everything: list[str] | None = None,
    ) -> dict[str, list[str]]:
        """Send the families of ``tops`` (code for ``real``, placeholders for the others),
        and, to a cluster not yet complete, every other cell module (``everything``, if
        known); return the names in each family sent."""
        if cluster.complete:
            everything = []
        elif everything is None:
            everything = families.tops()
        sent = families.families(list(dict.fromkeys([*tops, *everything])))
        if cluster.send(client, sent, real=real, rerun=rerun, load=load):
            self.tokens.bump()  # a task may have failed for want of this code
        cluster.complete = True  # it has every cell module, even if there were none
        return {top: sorted(family) for top, family in sent.items()}

    def _cluster(self, client: Client) -> Cluster:
        """What ``client``'s cluster has; raises TypeError as :func:`check_client`."""
        check_client(client)
        key = self.scheduler_ids.get(client)
        if key is None:
            key = self.scheduler_ids[client] = client.scheduler_info()["id"]
        cluster = self.clusters.get(key)
        if cluster is None:
            in_process = client.run_on_scheduler(_on_worker.here) == _on_worker.here()
            cluster = self.clusters[key] = Cluster(in_process)
        cluster.clients.add(client)
        return cluster


#: The one shipper of this process.
shipper = Shipper()


def _shippable_top(name: str) -> str:
    """The top-level name to ship for ``name``; raises ShipError or TypeError."""
    if not isinstance(name, str):
        msg = f"module names are str, not {type(name).__name__}"
        raise TypeError(msg)
    top = name.partition(".")[0]
    if not families.is_cell_module(name):
        if families.is_cell_module(top):
            hint = f"{top!r} is, but has no cell module {name!r}; ship {top!r}"
        elif name in sys.modules or importlib.util.find_spec(top) is not None:
            hint = "ship an ordinary module's file with client.upload_file"
        else:
            hint = f"define it first with %%as_module {name}"
        msg = f"{name!r} is not a cell module: {hint}"
        raise ShipError(msg)
    hidden = cells.finder.hides(top)
    if hidden is not None:
        msg = (
            f"cannot ship {name!r}: on the workers it would hide the module {top!r} "
            f"from {hidden}; choose another name for the cell module"
        )
        raise ShipError(msg)
    return top


def _warn(exc: Exception, top: str | None) -> None:
    """A shipment that happens on its own (a redefinition, a client made, auto mode) failed."""
    then = f"run %ship {top}" if top else "run %ship NAME"
    msg = f"{exc}; fix the cell and run it again, or {then}"
    warn(msg, RuntimeWarning)  # at the user's cell if in one, each time
