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

Once shipped to a client, a module stays current there: each redefinition of
its cell ships it again before the cell finishes, and a task submitted after
that runs the new code on every worker.  Three things make that true:

- a top-level module ships as ``NAME.py``, which the plugin writes and reloads;
  a dotted module ships as its whole top-level package, as ``NAME.zip``, and the
  submodules the plugin does not reload are reloaded by a small function sent
  with ``client.run`` (by value: the workers need no ipyexecmod);
- the Dask token of a cell module's functions and classes includes a hash of
  the module's source, so ``client.submit(geo.area, 2.0)`` after a redefinition
  is a new task, not the finished one of the old code;
- a remote scheduler, which unpickles task graphs too, gets the files as well
  (``SchedulerUploadFile``); an in-process one (``LocalCluster``) already has them.

So that forgetting to ship fails fast, every cell module not shipped to a client
that ipyexecmod knows (one shipped to, or the default client in auto mode) is
sent there as a placeholder: a task that uses it raises an :class:`ImportError`
that names the module and ``%ship``, in seconds.  A client ipyexecmod has never
been told of cannot be protected; Dask's wait is then endless.

:func:`set_auto` (``%ship --auto``) ships every cell module, new or redefined,
to the default client, whichever it is when the module is defined.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import sys
import tempfile
import types
import warnings
import weakref
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

try:
    import cloudpickle
    from dask.base import normalize_token
    from distributed import Client
    from distributed.diagnostics.plugin import SchedulerUploadFile, UploadFile
except ImportError as exc:  # pragma: no cover - the test environment has distributed
    _msg = "ipyexecmod.dask needs Dask's distributed package: pip install 'ipyexecmod[dask]'"
    raise ImportError(_msg, name=exc.name) from exc

from . import _on_worker, cells

__all__ = ["current_client", "set_auto", "ship", "ship_to_default"]

_PLUGIN_PREFIX = "ipyexecmod-"

_STUB = '''\
"""A placeholder for {name!r}, a cell module of a notebook kernel, not shipped here.

ipyexecmod sends it so that a task that needs {name!r} fails with the message
below instead of hanging.  The real module replaces it once it is shipped.
"""

_ipyexecmod_message = {message!r}
_ipyexecmod_spec = __spec__


class _ipyexecmod_not_shipped:
    def __init__(self, path):
        self._path = path

    def __getattr__(self, attribute):
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        return _ipyexecmod_not_shipped(self._path + "." + attribute)

    def __call__(self, *args, **kwargs):
        raise ImportError(_ipyexecmod_message + " (needed for " + self._path + ")", name=__name__)

    def __repr__(self):
        return "<" + self._path + ", not shipped>"


def __getattr__(attribute):
    if globals().get("__spec__") is not _ipyexecmod_spec:  # the real module was loaded over this
        raise AttributeError(f"module {{__name__!r}} has no attribute {{attribute!r}}")
    return _ipyexecmod_not_shipped(__name__ + "." + attribute)
'''


@dataclass
class _Cluster:
    """What one client's cluster has been sent."""

    #: Whether its scheduler runs in this process (a ``LocalCluster``), with every module.
    in_process: bool
    #: Top-level names shipped for real (the others it knows are placeholders).
    real: set[str] = field(default_factory=set)
    #: The digest of the file last sent for each top-level name.
    files: dict[str, str] = field(default_factory=dict)
    #: The digest of the text last sent for each module.
    texts: dict[str, str] = field(default_factory=dict)
    #: Whether auto mode has shipped every cell module to it.
    complete: bool = False


_clusters: weakref.WeakKeyDictionary[Client, _Cluster] = weakref.WeakKeyDictionary()
_auto = False
#: How often each top-level package or module has changed: a module in it redefined, or
#: a new file of it sent to a cluster.  Part of the Dask tokens of its functions.
_changes: dict[str, int] = {}


def _changed(top: str) -> None:
    _changes[top] = _changes.get(top, 0) + 1


def ship(client: Client, *names: str) -> list[str]:
    """Ship the cell modules ``names`` to every current and future worker of ``client``.

    A dotted name ships its whole top-level package.  From now on each
    redefinition of these modules is shipped again before its cell finishes.
    Returns the names of the modules shipped, sorted.

    Raises
    ------
    ValueError
        A name is not a cell module, or no names were given.
    TypeError
        ``client`` is not a synchronous :class:`distributed.Client`, or is closed.
    """
    if not names:
        msg = "name at least one cell module to ship, e.g. ship(client, 'geo')"
        raise ValueError(msg)
    cluster = _cluster(client)
    wanted = {_shippable_top(name) for name in names}
    everything = _all_tops()
    shipped: list[str] = []
    # In the order of definition, so that a module that imports another comes after it.
    for top in everything:
        if top in wanted:
            shipped += _send(client, cluster, top, real=True)
    for top in everything:
        if top not in cluster.real:
            _send(client, cluster, top, real=False)
    return sorted(shipped)


def set_auto(enabled: bool) -> None:
    """Ship every new or redefined cell module to the default client (``%ship --auto``).

    The default client is looked up at each definition, and after each notebook
    cell (:func:`ship_to_default`), so a client made later gets every module too.
    """
    global _auto
    _auto = bool(enabled)
    if _auto:
        ship_to_default()


def ship_to_default() -> None:
    """In auto mode, ship every cell module to the default client if it lacks them."""
    client = current_client() if _auto else None
    if client is None:
        return
    cluster = _cluster(client)
    if not cluster.complete:
        cluster.complete = True
        for top in _all_tops():
            try:
                _send(client, cluster, top, real=True)
            except Exception as exc:
                _warn_failed(client, top, exc, real=True)


def _on_define(name: str) -> None:
    """A cell module was (re)defined: bring every cluster that knows of it up to date."""
    top = name.partition(".")[0]
    _changed(top)
    if not _clusters and not _auto:
        return
    default = current_client() if _auto else None
    hides = cells.finder.hides(top) is not None
    for client, cluster in list(_clusters.items()):
        if client.status in ("closing", "closed"):
            del _clusters[client]
            continue
        if client.status != "running":  # reconnecting: %ship again once it is back
            _warn_failed(client, top, ConnectionError(f"the client is {client.status}"), real=True)
            continue
        real = top in cluster.real or (client is default and not hides)
        if not real and hides:
            continue  # a placeholder would hide the other module on the workers too
        try:
            _send(client, cluster, top, real=real, rerun=name)
        except Exception as exc:
            _warn_failed(client, top, exc, real=real)
    ship_to_default()


def _warn_failed(client: Client, top: str, exc: Exception, *, real: bool) -> None:
    what = "shipping" if real else "sending a placeholder for"
    msg = (
        f"{what} {top!r} to {client} failed ({type(exc).__name__}: {exc}); its workers "
        f"may lack it or run an earlier version: fix that, then run %ship {top}"
    )
    warnings.warn(msg, RuntimeWarning, stacklevel=3)


# -- what is sent --


def _send(
    client: Client, cluster: _Cluster, top: str, *, real: bool, rerun: str | None = None
) -> list[str]:
    """Send the package or module ``top`` (or its placeholder) unless the cluster has it,
    and re-execute on the workers the modules they have imported in another version.

    ``rerun``, a module just redefined, is re-executed even if its text is unchanged,
    as it was in the kernel (it may read other modules that have changed).
    """
    family = _family(top)
    texts = {
        name: source if real else _stub(name, top).encode() for name, (source, _) in family.items()
    }
    if set(family) == {top} and not family[top][1]:
        filename, data, load = f"{top}.py", texts[top], real
    else:
        filename, data, load = f"{top}.zip", _zip(family, texts), True
    digests = {name: _digest(text) for name, text in texts.items()}
    stale = {name for name, digest in digests.items() if cluster.texts.get(name, digest) != digest}
    if real:
        cluster.real.add(top)
        if rerun is not None:
            stale.add(rerun)
    digest = _digest(data)
    if cluster.files.get(top) != digest:
        plugin_name = _PLUGIN_PREFIX + top
        with tempfile.TemporaryDirectory(prefix="ipyexecmod-ship-") as directory:
            path = os.path.join(directory, filename)
            with open(path, "wb") as file:
                file.write(data)
            client.register_plugin(UploadFile(path, load=load), name=plugin_name)
            if not cluster.in_process:
                if top in cluster.files:
                    client.unregister_scheduler_plugin(plugin_name)
                client.register_plugin(SchedulerUploadFile(path, load=load), name=plugin_name)
        cluster.files[top] = digest
        if load:
            stale.discard(top)  # the plugin has reloaded it
        if real:
            _changed(top)
    cluster.texts.update(digests)
    if stale:
        names = sorted(stale)
        client.run(_on_worker.reload_loaded, names)
        if not cluster.in_process:
            client.run_on_scheduler(_on_worker.reload_loaded, names)
    return sorted(family)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _zip(family: dict[str, tuple[bytes, bool]], texts: dict[str, bytes]) -> bytes:
    """A package as a zip archive, byte for byte the same for the same sources."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, (_, is_package) in sorted(family.items()):
            path = name.replace(".", "/") + ("/__init__.py" if is_package else ".py")
            info = zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, texts[name])
    return buffer.getvalue()


def _stub(name: str, top: str) -> str:
    message = (
        f"cell module {name!r} was not shipped to this Dask cluster: run `%ship {top}` in "
        f"the notebook (or ipyexecmod.dask.ship(client, {top!r})), or `%ship --auto`"
    )
    return _STUB.format(name=name, message=message)


# -- which modules --


def _family(top: str) -> dict[str, tuple[bytes, bool]]:
    """Module ``top`` and every cell module below it: name -> (source, is a package)."""
    family: dict[str, tuple[bytes, bool]] = {}
    for record in cells.finder.records():
        if _within(record.name, top):
            family[record.name] = (record.loader.source.encode(), record.is_package)
    for name, module in list(sys.modules.items()):
        if _within(name, top) and name not in family and cells.finder.is_restored(module):
            with open(module.__file__, "rb") as file:  # type: ignore[arg-type]
                family[name] = (file.read(), hasattr(module, "__path__"))
    return family


def _within(name: str, top: str) -> bool:
    return name == top or name.startswith(top + ".")


def _all_tops() -> list[str]:
    """The top-level names of every cell module, in the order of definition (restored
    ones first), but those that hide another module (their placeholder would hide it
    on the workers too)."""
    names = [name for name, module in list(sys.modules.items()) if cells.finder.is_restored(module)]
    names += [record.name for record in cells.finder.records()]
    tops = dict.fromkeys(name.partition(".")[0] for name in names)
    return [top for top in tops if cells.finder.hides(top) is None]


def _shippable_top(name: str) -> str:
    if not isinstance(name, str):
        msg = f"module names are str, not {type(name).__name__}"
        raise TypeError(msg)
    top = name.partition(".")[0]
    if name not in cells.finder and not cells.finder.is_restored(sys.modules.get(name)):
        if name in sys.modules or importlib.util.find_spec(top) is not None:
            hint = "ship an ordinary module's file with client.upload_file"
        else:
            hint = f"define it first with %%as_module {name}"
        msg = f"{name!r} is not a cell module: {hint}"
        raise ValueError(msg)
    hidden = cells.finder.hides(top)
    if hidden is not None:
        msg = (
            f"cannot ship {name!r}: on the workers it would hide the module {top!r} "
            f"from {hidden}; choose another name for the cell module"
        )
        raise ValueError(msg)
    return top


# -- clients --


def _cluster(client: Client) -> _Cluster:
    if not isinstance(client, Client):
        msg = f"ship to a distributed.Client, not {type(client).__name__}"
        raise TypeError(msg)
    if client.asynchronous:
        msg = "ipyexecmod ships through a synchronous Client; this one is asynchronous"
        raise TypeError(msg)
    if client.status in ("closing", "closed"):
        msg = f"{client} is closed; ship to a running client"
        raise TypeError(msg)
    cluster = _clusters.get(client)
    if cluster is None:
        in_process = client.run_on_scheduler(os.getpid) == os.getpid()
        cluster = _clusters[client] = _Cluster(in_process)
    return cluster


def current_client() -> Client | None:
    """The default client (:meth:`distributed.Client.current`), or ``None``."""
    try:
        client: Client = Client.current()
    except ValueError:  # none
        return None
    return client


# -- task keys --


@lru_cache(maxsize=256)
def _source_hash(source: str) -> bytes:
    return importlib.util.source_hash(source.encode())


def _versioned(previous: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Dask's token of a function or class, plus a hash of its cell module's source and
    the count of changes to its package: a task submitted after a redefinition, or after
    the module was shipped (a task may have failed for want of it), is a new task."""

    def normalize(obj: Any) -> Any:
        token = previous(obj)
        module = getattr(obj, "__module__", None)
        record = cells.finder.get(module) if isinstance(module, str) else None
        if record is None:
            return token
        changes = _changes.get(record.name.partition(".")[0], 0)
        return token, _source_hash(record.loader.source), changes

    normalize.ipyexecmod = True  # type: ignore[attr-defined]
    return normalize


def _install(kinds: Iterable[type]) -> None:
    for kind in kinds:
        previous = normalize_token.dispatch(kind)
        if not getattr(previous, "ipyexecmod", False):
            normalize_token.register(kind, _versioned(previous))


_install((types.FunctionType, type))
cloudpickle.register_pickle_by_value(_on_worker)
# One listener, even if this module is imported anew (``%reset --aggressive`` drops it).
cells.finder.listeners[:] = [
    listener
    for listener in cells.finder.listeners
    if getattr(listener, "__module__", None) != __name__
]
cells.finder.listeners.append(_on_define)
