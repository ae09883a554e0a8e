# SPDX-License-Identifier: MIT
"""What one Dask cluster has been sent, and how a module family is sent to it.

Files travel through Dask's own plugins: ``UploadFile`` (every current worker
runs it at once, and every worker that joins later when it starts) and, for a
scheduler in another process, ``SchedulerUploadFile``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.resources
import io
import os
import tempfile
import weakref
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

from distributed import Client
from distributed.diagnostics.plugin import SchedulerUploadFile, UploadFile

from . import _on_worker
from .families import Member

__all__ = ["Cluster", "ShipError", "check_client", "current_client", "placeholder"]

_PLUGIN_PREFIX = "ipyexecmod-"


class ShipError(Exception):
    """A module cannot be shipped: not a cell module, or its import failed on the workers."""


class File(NamedTuple):
    """The file last sent for one top-level name."""

    digest: str
    filename: str
    data: bytes
    #: Whether the plugin imports it (a placeholder ``.py`` is only written).
    load: bool


@dataclass(eq=False)
class Cluster:
    """What one Dask cluster (one scheduler, whichever client reaches it) has been sent."""

    #: Whether its scheduler runs in this process (a ``LocalCluster``), with every module.
    in_process: bool
    clients: weakref.WeakSet[Client] = field(default_factory=weakref.WeakSet)
    #: Top-level names shipped for real (the others it knows are placeholders).
    real: set[str] = field(default_factory=set)
    #: The file last sent for each top-level name.
    files: dict[str, File] = field(default_factory=dict)
    #: The digest of the text last sent for each module.
    texts: dict[str, str] = field(default_factory=dict)
    #: Whether auto mode has shipped every cell module to it.
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
        top: str,
        family: Mapping[str, Member],
        *,
        real: bool,
        rerun: str | None = None,
    ) -> bool:
        """Send the package or module ``top`` (``family``: real or placeholder texts) unless
        the cluster has it, and re-execute on the workers the modules they have imported
        in another version.  Returns whether new real code was registered.

        ``rerun``, a module just redefined, is re-executed even if its text is unchanged,
        as it was in the kernel (it may read other modules that have changed).  If the
        new code fails to import on a worker, the file sent before is put back.

        Raises :class:`ShipError` if ``real`` code failed to load on the workers; a
        placeholder that cannot be sent (a name too long for a file) is left out.
        """
        file = _file(top, family, load=real)
        digests = {name: _digest(version.source) for name, version in family.items()}
        stale = {name for name, digest in digests.items() if self.texts.get(name, digest) != digest}
        if real and rerun is not None:
            stale.add(rerun)
        previous = self.files.get(top)
        changed = previous is None or previous.digest != file.digest
        if changed:
            if not self._replace(client, top, file, previous, real=real):
                return False
            self.files[top] = file
            if file.load:
                stale.discard(top)  # the plugin has reloaded it
        if real:
            self.real.add(top)
        self.texts.update(digests)
        if stale:
            self._reload(client, sorted(stale))
        return changed and real

    def _replace(
        self, client: Client, top: str, file: File, previous: File | None, *, real: bool
    ) -> bool:
        """Register ``file`` for ``top``; on failure put ``previous`` back, and raise
        :class:`ShipError` for real code or return ``False`` for a placeholder."""
        try:
            _register(client, self, top, file, replace=previous is not None)
        except Exception as exc:
            if previous is not None:
                with contextlib.suppress(Exception):
                    _register(client, self, top, previous, replace=True)
            if not real:  # only a courtesy: do without it
                return False
            raise ShipError(self._failure(top, previous, exc)) from exc
        return True

    def _failure(self, top: str, previous: File | None, exc: Exception) -> str:
        if top in self.real:
            kept = "the version they had"
        else:
            kept = "its placeholder" if previous is not None else "nothing of it"
        return (
            f"{top!r} could not be loaded on the workers ({type(exc).__name__}: {exc}); "
            f"they keep {kept}"
        )

    def _reload(self, client: Client, names: list[str]) -> None:
        client.run(_on_worker.reload_loaded, names)
        if not self.in_process:
            client.run_on_scheduler(_on_worker.reload_loaded, names)


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


def placeholder(name: str, top: str) -> bytes:
    """The text of a placeholder for cell module ``name`` (of package ``top``)."""
    message = (
        f"cell module {name!r} was not shipped to this Dask cluster: run `%ship {top}` in "
        f"the notebook (or ipyexecmod.dask.ship(client, {top!r})), or `%ship --auto`"
    )
    text = _placeholder_text()
    return text.replace('"<MESSAGE>"', repr(message), 1).encode()


@lru_cache(maxsize=1)
def _placeholder_text() -> str:
    package = __name__.rpartition(".")[0]
    return (importlib.resources.files(package) / "_placeholder.py").read_text("utf-8")


def _file(top: str, family: Mapping[str, Member], *, load: bool) -> File:
    """A lone module as ``top.py`` (imported by the plugin if ``load``), anything else
    as the archive ``top.zip`` (always imported)."""
    if set(family) == {top} and not family[top].is_package:
        filename, data = f"{top}.py", family[top].source
    else:
        filename, data, load = f"{top}.zip", _zip(family), True
    return File(_digest(data), filename, data, load)


def _register(client: Client, cluster: Cluster, top: str, file: File, *, replace: bool) -> None:
    """Register ``file`` as Dask's UploadFile plugin(s) for ``top``."""
    name = _PLUGIN_PREFIX + top
    with tempfile.TemporaryDirectory(prefix="ipyexecmod-ship-") as directory:
        path = os.path.join(directory, file.filename)
        with open(path, "wb") as stream:
            stream.write(file.data)
        client.register_plugin(UploadFile(path, load=file.load), name=name)
        if not cluster.in_process:
            if replace:
                client.unregister_scheduler_plugin(name)
            client.register_plugin(SchedulerUploadFile(path, load=file.load), name=name)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _zip(family: Mapping[str, Member]) -> bytes:
    """A package as a zip archive, byte for byte the same for the same sources."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, version in sorted(family.items()):
            path = name.replace(".", "/") + ("/__init__.py" if version.is_package else ".py")
            info = zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, version.source)
    return buffer.getvalue()
