# SPDX-License-Identifier: MIT
"""Where a definition's on-disk copy goes, and who is told of it.

Before anything runs: a package's modules are kept in one lasting directory
(:func:`refuse_split`, :func:`refuse_leaving`), and no copy goes under a package that
ipyexecmod did not create (:func:`refuse_copy_in`).  At commit: the copies are written
(:func:`save`), a copy of the module left in another place is removed, and worker
processes are told (:func:`publish`).  After a cell: modules whose lasting copy another
kernel replaced move to the private directory (:func:`rehome`).
"""

from __future__ import annotations

import contextlib
import os
import sys
from types import ModuleType
from typing import TYPE_CHECKING

from .._warnings import warn
from ..ownership import Writer
from ..store import CellStore, MemoryOnly, StoreError, kernel_board, kernel_store
from ..workers.board import source_hash
from .names import DefinitionError
from .version import CellModule, Version

if TYPE_CHECKING:
    from .registry import CellModuleFinder

__all__ = [
    "origin",
    "place",
    "publish",
    "refuse_copy_in",
    "refuse_leaving",
    "refuse_split",
    "rehome",
    "save",
    "store_holding",
]


def store_holding(finder: CellModuleFinder, name: str) -> CellStore | None:
    """The lasting store that holds a copy of module ``name`` that it wrote, if any."""
    for store in finder.stores:
        if store.lasting and store.wrote(store.copy_of(name)[0]):
            return store
    return None


def refuse_split(name: str, parent: CellModule, store: CellStore) -> None:
    """A module of a lasting store goes where its package is: a new kernel imports a
    package's modules from one directory."""
    other = parent.version.store
    if other is store or not store.lasting:
        return
    where = (
        "in memory only"
        if other is None
        else f"in {other.directory}"
        if other.lasting
        else "in the kernel's private directory"
    )
    cell = "made for its modules, with no cell of its own, " if parent.implicit else ""
    msg = (
        f"cannot keep {name!r} in {store.directory}: its package {parent.name!r} ({cell}is "
        f"kept {where}), and a package's modules are kept in one directory, so that a new "
        f"kernel imports them together; keep {name!r} {where}, or define {parent.name!r} "
        f"there first"
    )
    raise DefinitionError(msg)


def refuse_leaving(
    finder: CellModuleFinder, name: str, store: CellStore | MemoryOnly | None
) -> None:
    """A package whose modules this kernel (or an earlier one of its notebook) keeps in
    a lasting store stays there with them."""
    for other in finder.stores:
        inside = [] if other is store else other.kept_under(name)
        if inside:
            msg = (
                f"cannot move {name!r} out of {other.directory}: its modules "
                f"{', '.join(map(repr, inside))} are kept there, and a package's modules are "
                f"kept in one directory, so that a new kernel imports them together; define "
                f"{name!r} with that persist_dir"
            )
            raise DefinitionError(msg)


def refuse_copy_in(package: ModuleType, name: str) -> None:
    """A copy of ``name`` on disk could not be imported by other processes: they import
    ``package``, which ipyexecmod did not create, from its own place.  A package of the
    private directory in its place would hide the real one from them."""
    prefix = package.__name__
    where = getattr(package, "__file__", None) or list(getattr(package, "__path__", []))
    msg = (
        f"cannot keep an on-disk copy of {name!r}: {prefix!r} is a package that ipyexecmod "
        f"did not create ({where}), so other processes import it from there, where there "
        f"is no {name[len(prefix) + 1 :]!r}; define it with --no-persist to use it in this "
        f"kernel only, or give it a name outside {prefix!r}"
    )
    raise DefinitionError(msg)


def place(record: CellModule, module: ModuleType, version: Version) -> None:
    """Make ``version``, the same code as ``record``'s in another place, its version, with
    the module's spec and file attributes to match."""
    record.version = version
    spec = module.__spec__ = record.spec()
    module.__loader__ = record.loader
    if version.is_package:
        module.__path__ = list(spec.submodule_search_locations or ())
        module.__package__ = record.name
    vars(module)["__file__"], vars(module)["__cached__"] = spec.origin, spec.cached


def rehome(finder: CellModuleFinder) -> list[str]:
    """For each module whose lasting copy another kernel has replaced since this process
    wrote (or took over) it, what the user must be told; a cell module moves to the
    private directory (the same version: no code runs), and worker processes follow."""
    notices = []
    with finder.lock:
        for store in finder.stores:
            for lost in store.replaced():
                name, module = lost.name, sys.modules.get(lost.name)
                record = finder.get(name)
                if record is not None and record.version.store is store and finder.owns(module):
                    assert module is not None  # owned
                    version = record.version.placed(
                        kernel_store(), is_package=record.version.is_package
                    )
                    place(record, module, version)
                    with contextlib.suppress(StoreError):  # then workers hear it is memory-only
                        version.save()
                    publish(finder, [name])
                    notices.append(_rehomed(name, store.directory, lost.writer))
                else:
                    notices.append(_replaced(name, store.directory, lost.writer, module))
    return notices


def _rehomed(name: str, directory: str, writer: Writer) -> str:
    return (
        f"{writer.describe()} replaced this kernel's copy of {name!r} in {directory} with "
        f"its own; this kernel keeps its version of {name!r}, and its worker processes now "
        f"import it from the kernel's private directory; define it here again with --force "
        f"to put it back there, or give this notebook a persist_dir of its own"
    )


def _replaced(name: str, directory: str, writer: Writer, module: ModuleType | None) -> str:
    if module is None:
        now = f"`import {name}` now gives that version"
    else:
        now = (
            f"this kernel keeps the version it imported, which its worker processes can no "
            f"longer import; `%reload_module {name}` takes the new one"
        )
    return (
        f"{writer.describe()} replaced the copy of {name!r} in {directory} that this "
        f"notebook's kernel wrote; {now}, or define it here again (with --force while that "
        f"kernel runs)"
    )


def save(finder: CellModuleFinder, record: CellModule, force: bool) -> None:
    """Write the on-disk copy of ``record``'s module, and of parents that have none yet
    (a module that has just become a package moves to ``NAME/__init__.py``); note what
    was moved aside for it (``force``), and warn of another notebook's copy replaced.
    Once it is written (or the module is kept in memory only), a copy of it left in
    another lasting directory is removed: a new kernel would import that one."""
    record.moved_aside = ()
    store = record.version.store
    if store is None:
        record.version.save()  # no copy: its lines under its __file__, if it has them apart
    try:
        record.moved_aside = tuple(_write(finder, record, force))
    except StoreError as exc:
        msg = f"{exc}; module {record.name!r} works in this process only"
        warn(msg, RuntimeWarning)  # at the user's cell, each time
        return  # the old copy stays: better than none
    for other in finder.stores:
        if other is not store:
            other.forget(record.name)


def _write(finder: CellModuleFinder, record: CellModule, force: bool) -> list[tuple[str, str]]:
    """Write the copy of ``record``'s module, and those of its parents that have none yet
    (one just made a package, whatever ``record`` is kept in), each in its own store;
    return what was moved aside for them."""
    parts = record.name.split(".")
    moved: list[tuple[str, str]] = []
    for depth in range(1, len(parts) + 1):
        parent = finder.get(".".join(parts[:depth]))
        if parent is None or parent.version.store is None:
            continue
        store = parent.version.store
        path = parent.version.path  # a path: it has a store
        if parent is record or (path is not None and not os.path.exists(path)):
            saved = parent.version.save(force=force)
            moved += saved.moved
            if saved.replaced is not None:
                warn_replaced(parent.name, store, saved.replaced)
    return moved


def warn_replaced(name: str, store: CellStore, writer: Writer) -> None:
    msg = (
        f"the copy of {name!r} in {store.directory} that {writer.describe()} wrote (that "
        f"kernel is {writer.state()}) is replaced by this one"
    )
    warn(msg, RuntimeWarning)


def publish(finder: CellModuleFinder, names: list[str]) -> None:
    """Tell worker processes (:mod:`ipyexecmod.workers`) that modules ``names`` have new
    versions, and of their parent packages that they do not know yet or know elsewhere
    (one restored from a lasting directory, given a copy in the private one)."""
    board = kernel_board()
    if board is None:
        return
    entries: dict[str, tuple[str | None, bool, bytes]] = {}
    for name in names:
        parts = name.split(".")
        for depth in range(1, len(parts) + 1):
            prefix = ".".join(parts[:depth])
            record = finder.get(prefix)
            if record is None:
                continue
            version = record.version  # workers run a copy only if its source has this hash
            entry = (origin(version), version.is_package, source_hash(version.encoded))
            known = board.entries.get(prefix)
            if prefix == name or known is None or known[1:] != entry:  # new, or moved
                entries[prefix] = entry
    board.publish(entries)


def origin(version: Version) -> str | None:
    """The on-disk copy of ``version``, if it has one that holds it."""
    if version.store is None or version.path is None:
        return None  # memory only
    if not version.store.holds(version.path, version.encoded):
        return None  # the copy could not be written: other processes cannot have it
    return version.path
