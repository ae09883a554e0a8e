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
"""

from __future__ import annotations

import ast
import contextlib
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

__all__ = ["ShipError", "check_client", "current_client", "set_auto", "ship", "ship_to_default"]

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


class ShipError(Exception):
    """A module cannot be shipped: not a cell module, or its import failed on the workers."""


@dataclass(eq=False)
class _Cluster:
    """What one Dask cluster (one scheduler, whichever client reaches it) has been sent."""

    #: Whether its scheduler runs in this process (a ``LocalCluster``), with every module.
    in_process: bool
    clients: weakref.WeakSet[Client] = field(default_factory=weakref.WeakSet)
    #: Top-level names shipped for real (the others it knows are placeholders).
    real: set[str] = field(default_factory=set)
    #: The file last sent for each top-level name: (digest, filename, data, load).
    files: dict[str, tuple[str, str, bytes, bool]] = field(default_factory=dict)
    #: The digest of the text last sent for each module.
    texts: dict[str, str] = field(default_factory=dict)
    #: Whether auto mode has shipped every cell module to it.
    complete: bool = False

    def client(self) -> Client | None:
        """A running client of this cluster, if any is left."""
        return next((c for c in list(self.clients) if c.status == "running"), None)


#: By scheduler id: two clients of one cluster share what it has.
_clusters: dict[str, _Cluster] = {}
_scheduler_ids: weakref.WeakKeyDictionary[Client, str] = weakref.WeakKeyDictionary()
_auto = False
#: Bumped by each cell definition and each shipment of new code: part of the Dask token
#: of everything from a cell module or from the notebook's ``__main__``.
_generation = 0


def ship(client: Client, *names: str) -> list[str]:
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
    cluster = _cluster(client)
    wanted = {_shippable_top(name) for name in names}
    everything = _all_tops()
    shipped: list[str] = []
    for top in _with_imports([top for top in everything if top in wanted]):
        shipped += _send(client, cluster, top, real=True)
    new_placeholders: list[str] = []
    for top in everything:
        if top not in cluster.real:
            if top not in cluster.files:
                new_placeholders += _family(top)
            _send(client, cluster, top, real=False)
    if new_placeholders:
        # Workers that a LocalCluster spawned from this kernel may have imported its
        # on-disk copies, which go stale: from now on they get the placeholder.
        client.run(_on_worker.forget, new_placeholders)
    return sorted(shipped)


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
    if client is None or client.status != "running":
        return
    cluster = _cluster(client)
    if not cluster.complete:
        cluster.complete = True
        everything = _all_tops()
        for top in _with_imports(everything):
            try:
                _send(client, cluster, top, real=True)
            except Exception as exc:
                _warn(exc, top)


def current_client() -> Client | None:
    """The default client (:meth:`distributed.Client.current`), or ``None``."""
    try:
        client: Client = Client.current()
    except ValueError:  # none
        return None
    return client


def _on_define(name: str) -> None:
    """A cell module was (re)defined: bring every cluster that knows of it up to date."""
    global _generation
    _generation += 1
    if not _clusters and not _auto:
        return
    top = name.partition(".")[0]
    default = current_client() if _auto else None
    hides = cells.finder.hides(top) is not None
    for key, cluster in list(_clusters.items()):
        client = cluster.client()
        if client is None:
            if all(c.status in ("closing", "closed") for c in list(cluster.clients)):
                del _clusters[key]  # no client can reach it any more
            continue
        real = top in cluster.real or (default in cluster.clients and not hides)
        if not real and hides:
            continue  # a placeholder would hide the other module on the workers too
        try:
            if real:
                for needed in _with_imports([top])[:-1]:
                    if needed not in cluster.real:
                        _send(client, cluster, needed, real=True)
            _send(client, cluster, top, real=real, rerun=name)
        except Exception as exc:
            _warn(exc, top)
    ship_to_default()


def _warn(exc: Exception, top: str) -> None:
    """A shipment that happens on its own (a redefinition, auto mode) failed."""
    msg = f"{exc}; fix the cell and run it again, or run %ship {top}"
    warnings.warn(msg, RuntimeWarning, stacklevel=3)


# -- what is sent --


def _send(
    client: Client, cluster: _Cluster, top: str, *, real: bool, rerun: str | None = None
) -> list[str]:
    """Send the package or module ``top`` (or its placeholder) unless the cluster has it,
    and re-execute on the workers the modules they have imported in another version.

    ``rerun``, a module just redefined, is re-executed even if its text is unchanged,
    as it was in the kernel (it may read other modules that have changed).  If the
    new code fails to import on a worker, the file sent before is put back.
    """
    global _generation
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
    if real and rerun is not None:
        stale.add(rerun)
    digest = _digest(data)
    previous = cluster.files.get(top)
    if previous is None or previous[0] != digest:
        try:
            _register(client, cluster, top, filename, data, load, replace=previous is not None)
        except Exception as exc:
            if previous is not None:
                with contextlib.suppress(Exception):
                    _register(client, cluster, top, *previous[1:], replace=True)
            if not real:  # only a courtesy (a name too long for a file): do without it
                return []
            kept = (
                "the version they had"
                if top in cluster.real
                else "its placeholder"
                if previous is not None
                else "nothing of it"
            )
            msg = (
                f"{top!r} could not be loaded on the workers ({type(exc).__name__}: {exc}); "
                f"they keep {kept}"
            )
            raise ShipError(msg) from exc
        cluster.files[top] = (digest, filename, data, load)
        if load:
            stale.discard(top)  # the plugin has reloaded it
        if real:
            _generation += 1
    if real:
        cluster.real.add(top)
    cluster.texts.update(digests)
    if stale:
        names = sorted(stale)
        client.run(_on_worker.reload_loaded, names)
        if not cluster.in_process:
            client.run_on_scheduler(_on_worker.reload_loaded, names)
    return sorted(family)


def _register(
    client: Client,
    cluster: _Cluster,
    top: str,
    filename: str,
    data: bytes,
    load: bool,
    *,
    replace: bool,
) -> None:
    """Register the file as Dask's UploadFile plugin(s) for ``top``."""
    name = _PLUGIN_PREFIX + top
    with tempfile.TemporaryDirectory(prefix="ipyexecmod-ship-") as directory:
        path = os.path.join(directory, filename)
        with open(path, "wb") as file:
            file.write(data)
        client.register_plugin(UploadFile(path, load=load), name=name)
        if not cluster.in_process:
            if replace:
                client.unregister_scheduler_plugin(name)
            client.register_plugin(SchedulerUploadFile(path, load=load), name=name)


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
            family[record.name] = (record.version.encoded, record.version.is_package)
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


def _with_imports(tops: list[str]) -> list[str]:
    """``tops`` and the cell packages and modules their code imports as it runs, each
    after those it imports (an import cycle is broken anywhere)."""
    order: list[str] = []
    visiting: set[str] = set()

    def visit(top: str) -> None:
        if top in order or top in visiting:
            return
        visiting.add(top)
        needed = {
            imported.partition(".")[0]
            for name, (source, is_package) in _family(top).items()
            for imported in _imports(name, source, is_package)
        }
        for other in sorted(needed - {top}):
            if _is_cell_top(other):
                visit(other)
        visiting.discard(top)
        order.append(top)

    for top in tops:
        visit(top)
    return order


def _is_cell_top(top: str) -> bool:
    ours = top in cells.finder or cells.finder.is_restored(sys.modules.get(top))
    return ours and cells.finder.hides(top) is None


@lru_cache(maxsize=1024)
def _imports(name: str, source: bytes, is_package: bool) -> frozenset[str]:
    """The modules that module ``name``'s code imports as it runs (not those imported
    inside functions), as absolute names."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return frozenset()
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    nodes: list[ast.AST] = [tree]
    while nodes:
        node = nodes.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            found.add(".".join(part for part in (base, node.module or "") if part))
        nodes.extend(ast.iter_child_nodes(node))
    return frozenset(found)


def _shippable_top(name: str) -> str:
    if not isinstance(name, str):
        msg = f"module names are str, not {type(name).__name__}"
        raise TypeError(msg)
    top = name.partition(".")[0]
    if name not in cells.finder and not cells.finder.is_restored(sys.modules.get(name)):
        if top in cells.finder or cells.finder.is_restored(sys.modules.get(top)):
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


# -- clients --


def _cluster(client: Client) -> _Cluster:
    check_client(client)
    key = _scheduler_ids.get(client)
    if key is None:
        key = _scheduler_ids[client] = client.scheduler_info()["id"]
    cluster = _clusters.get(key)
    if cluster is None:
        in_process = client.run_on_scheduler(os.getpid) == os.getpid()
        cluster = _clusters[key] = _Cluster(in_process)
    cluster.clients.add(client)
    return cluster


# -- task keys --


def _from_notebook(obj: Any) -> bool:
    """Whether ``obj``, or its class, comes from a cell module or from ``__main__``."""
    for owner in (obj, type(obj)):
        try:
            module = getattr(owner, "__module__", None)
        except Exception:
            continue
        if isinstance(module, str) and (module == "__main__" or module in cells.finder):
            return True
    return False


def _versioned(previous: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Dask's token, plus the count of cell definitions and shipments for anything from a
    cell module or ``__main__``: after a redefinition (of any cell module: the code may
    call it), or after a module was shipped (a task may have failed for want of it), the
    same call is a new task, not the finished one of older code."""

    def normalize(obj: Any) -> Any:
        token = previous(obj)
        return (token, _generation) if _generation and _from_notebook(obj) else token

    normalize.ipyexecmod = True  # type: ignore[attr-defined]
    return normalize


def _install(kinds: Iterable[type]) -> None:
    for kind in kinds:
        previous = normalize_token.dispatch(kind)
        if getattr(previous, "ipyexecmod", False):
            continue
        normalize = _versioned(previous)
        normalize_token.register(kind, normalize)
        # Dask caches the handler found for each class; classes that fell back on the
        # generic one before now would keep it.
        for cached, handler in list(getattr(normalize_token, "_lookup", {}).items()):
            if handler is previous and cached is not kind:
                normalize_token.register(cached, normalize)


_install((types.FunctionType, type, object))
cloudpickle.register_pickle_by_value(_on_worker)
# One listener, even if this module is imported anew (``%reset --aggressive`` drops it).
cells.finder.listeners[:] = [
    listener
    for listener in cells.finder.listeners
    if getattr(listener, "__module__", None) != __name__
]
cells.finder.listeners.append(_on_define)
