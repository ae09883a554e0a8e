# SPDX-License-Identifier: MIT
"""Shipping cell modules, and keeping every cluster that has them up to date.

All the state lives in one :class:`Shipper`; the package exports the methods of
its one instance as functions (:func:`ipyexecmod.dask.ship` and the rest).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import weakref

import cloudpickle
from distributed import Client

from .. import cells
from .._warnings import warn
from . import _on_worker, families
from .clusters import Cluster, ShipError, check_client, current_client, placeholder
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
        """Start following definitions: the cells listener, the tokens, and the functions
        for the workers pickled by value.  Done by the first :meth:`ship` or ``set_auto(True)``.

        Turned on again after :meth:`disable`, it first brings every cluster it knows up to
        date with the definitions it missed.
        """
        if self.enabled:
            return
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

    def resume(self) -> None:
        """:meth:`enable` again if anything was shipped (``%load_ext`` after an unload)."""
        if self.clusters:
            self.enable()

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
        cloudpickle.unregister_pickle_by_value(_on_worker)
        listeners = cells.finder.listeners
        listeners[:] = [f for f in listeners if f != self.on_define]

    def ship(self, client: Client, *names: str) -> list[str]:
        """Ship the cell modules ``names`` to every current and future worker of ``client``.

        A dotted name ships its whole top-level package, and the cell modules a shipped
        module imports are shipped with it (first).  From now on each redefinition of
        these modules is shipped again before its cell finishes.  Returns the names of
        the modules shipped, sorted.

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
        everything = families.tops()
        shipped: list[str] = []
        for top in families.with_imports([top for top in everything if top in wanted]):
            shipped += self._send(client, cluster, top, real=True)
        self._send_placeholders(client, cluster, everything)
        return sorted(shipped)

    def set_auto(self, enabled: bool) -> None:
        """Ship every new or redefined cell module to the default client (``%ship --auto``).

        The default client is looked up at each definition, and after each notebook
        cell (:func:`ship_to_default`), so a client made later gets every module too.
        """
        if bool(enabled) == self.auto:
            return  # as it is (the %ship --auto magic and its option both say so)
        if enabled:
            self.enable()
        self.auto = bool(enabled)
        if self.auto:
            self.ship_to_default()

    def ship_to_default(self) -> None:
        """In auto mode, ship every cell module to the default client if it lacks them."""
        client = current_client() if self.auto else None
        if client is None or client.status != "running":
            return
        cluster = self._cluster(client)
        if not cluster.complete:
            cluster.complete = True
            for top in families.with_imports(families.tops()):
                try:
                    self._send(client, cluster, top, real=True)
                except Exception as exc:
                    _warn(exc, top)

    def on_define(self, name: str) -> None:
        """A cell module was (re)defined: bring every cluster that knows of it up to date."""
        self.tokens.bump()
        if not self.clusters and not self.auto:
            return
        top = name.partition(".")[0]
        default = current_client() if self.auto else None
        hides = cells.finder.hides(top) is not None
        for key, cluster in list(self.clusters.items()):
            client = cluster.client()
            if client is None:
                if cluster.unreachable():
                    del self.clusters[key]
                continue
            real = top in cluster.real or (default in cluster.clients and not hides)
            if not real and hides:
                continue  # a placeholder would hide the other module on the workers too
            try:
                self._update(client, cluster, name, real=real)
            except Exception as exc:
                _warn(exc, top)
        self.ship_to_default()

    def _update(self, client: Client, cluster: Cluster, name: str, *, real: bool) -> None:
        """Send the family of ``name``, just defined, after the cell modules it imports."""
        top = name.partition(".")[0]
        if real:
            for needed in families.with_imports([top])[:-1]:
                if needed not in cluster.real:
                    self._send(client, cluster, needed, real=True)
        self._send(client, cluster, top, real=real, rerun=name)

    def _catch_up(self) -> None:
        """Send every cluster with a running client what changed while disabled."""
        for cluster in list(self.clusters.values()):
            client = cluster.client()
            if client is None:
                continue
            everything = families.tops()
            real = [top for top in everything if top in cluster.real]
            for top in families.with_imports(real):
                try:
                    self._send(client, cluster, top, real=True)
                except Exception as exc:
                    _warn(exc, top)
            self._send_placeholders(client, cluster, everything)

    def _send(
        self, client: Client, cluster: Cluster, top: str, *, real: bool, rerun: str | None = None
    ) -> list[str]:
        """Send the family of ``top``, or its placeholder; return the names in it, sorted."""
        family = families.family(top)
        if not real:
            family = {
                name: version._replace(source=placeholder(name, top))
                for name, version in family.items()
            }
        if cluster.send(client, top, family, real=real, rerun=rerun):
            self.tokens.bump()  # a task may have failed for want of this code
        return sorted(family)

    def _send_placeholders(self, client: Client, cluster: Cluster, everything: list[str]) -> None:
        """Send a placeholder for each of ``everything`` the cluster has no real code of."""
        new: list[str] = []
        for top in everything:
            if top not in cluster.real:
                if top not in cluster.files:
                    new += families.family(top)
                self._send(client, cluster, top, real=False)
        if new:
            # Workers that a LocalCluster spawned from this kernel may have imported its
            # on-disk copies, which go stale: from now on they get the placeholder.
            client.run(_on_worker.forget, new)

    def _cluster(self, client: Client) -> Cluster:
        """What ``client``'s cluster has; raises TypeError as :func:`check_client`."""
        check_client(client)
        key = self.scheduler_ids.get(client)
        if key is None:
            key = self.scheduler_ids[client] = client.scheduler_info()["id"]
        cluster = self.clusters.get(key)
        if cluster is None:
            in_process = client.run_on_scheduler(os.getpid) == os.getpid()
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


def _warn(exc: Exception, top: str) -> None:
    """A shipment that happens on its own (a redefinition, auto mode) failed."""
    msg = f"{exc}; fix the cell and run it again, or run %ship {top}"
    warn(msg, RuntimeWarning)  # at the user's cell if in one, each time
