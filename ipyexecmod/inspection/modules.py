# SPDX-License-Identifier: MIT
"""What is imported: ``%lsmod``'s rows, ``%modinfo``'s details, module names to complete."""

from __future__ import annotations

import fnmatch
import sys
from importlib.machinery import (
    BuiltinImporter,
    ExtensionFileLoader,
    FrozenImporter,
    NamespaceLoader,
    SourceFileLoader,
    SourcelessFileLoader,
)
from types import ModuleType
from typing import Any, NamedTuple

from ..cells import CellModuleFinder, finder, module_origin
from ..cells.stale import find_stale
from .tables import html_fields, html_table, text_table

__all__ = [
    "ModuleInfo",
    "ModuleList",
    "ModuleRow",
    "list_modules",
    "module_info",
    "module_kind",
    "module_names",
]


def _loader_of(module: object) -> Any:
    spec = getattr(module, "__spec__", None)
    return getattr(spec, "loader", None) or getattr(module, "__loader__", None)


def module_kind(module: object, cells: CellModuleFinder = finder) -> str:
    """One of cell, restored, source, bytecode, extension, builtin, frozen, namespace, other.

    "restored" is a module imported from an on-disk copy that ipyexecmod wrote,
    in this process or an earlier one, without its cell having run here.
    """
    if cells.owns(module):
        return "cell"
    if cells.is_restored(module):
        return "restored"
    loader = _loader_of(module)
    kinds: tuple[tuple[type, str], ...] = (
        (SourceFileLoader, "source"),
        (SourcelessFileLoader, "bytecode"),
        (ExtensionFileLoader, "extension"),
        (BuiltinImporter, "builtin"),
        (FrozenImporter, "frozen"),
        (NamespaceLoader, "namespace"),
    )
    for cls, kind in kinds:
        # BuiltinImporter and FrozenImporter are their own loaders: classes, not instances.
        if isinstance(loader, cls) or loader is cls:
            return kind
    spec = getattr(module, "__spec__", None)
    if spec is not None and spec.origin is None and spec.submodule_search_locations is not None:
        return "namespace"  # 3.11's loader is a private class
    return "other"


def _loader_name(loader: object) -> str:
    if loader is None:
        return ""
    return loader.__name__ if isinstance(loader, type) else type(loader).__name__


class ModuleRow(NamedTuple):
    """One entry of :data:`sys.modules`."""

    name: str
    kind: str
    origin: str
    loader: str


class ModuleList(list[ModuleRow]):
    """Rows of :func:`list_modules`, sorted by name: a list that displays as a table."""

    def __repr__(self) -> str:
        if not self:
            return "no modules match"
        return text_table([ModuleRow._fields, *self])

    def _repr_html_(self) -> str:
        if not self:
            return "<p>no modules match</p>"
        return html_table(ModuleRow._fields, self)


def list_modules(
    pattern: str = "*", *, cells_only: bool = False, cells: CellModuleFinder = finder
) -> ModuleList:
    """The entries of :data:`sys.modules` whose name matches the glob ``pattern``.

    ``cells_only`` keeps only the modules ipyexecmod made (cell and restored).
    """
    rows = ModuleList()
    for name, module in list(sys.modules.items()):
        if not fnmatch.fnmatchcase(name, pattern):
            continue
        kind = module_kind(module, cells)
        if cells_only and kind not in ("cell", "restored"):
            continue
        rows.append(ModuleRow(name, kind, module_origin(module), _loader_name(_loader_of(module))))
    rows.sort()
    return rows


def module_names(
    prefix: str = "", *, cells_only: bool = False, cells: CellModuleFinder = finder
) -> list[str]:
    """The module names that start with ``prefix``: cell modules first, then the others
    in :data:`sys.modules` (``cells_only``: none), each group sorted.

    A notebook's own modules are the ones a user means most often; sorted with the
    rest, they would come after hundreds of ``IPython.*`` and ``_*`` names.
    """
    ours = sorted(r.name for r in cells.records() if r.name.startswith(prefix))
    if cells_only:
        return ours
    known = set(ours)
    others = sorted(n for n in list(sys.modules) if n.startswith(prefix) and n not in known)
    return ours + others


class ModuleInfo(dict[str, object]):
    """The details of one module (:func:`module_info`): a dict that displays as a table."""

    def __repr__(self) -> str:
        return text_table([(key, str(value)) for key, value in self.items()])

    def _repr_html_(self) -> str:
        return html_fields((key, _shown(value)) for key, value in self.items())


def _shown(value: object) -> object:
    # An empty string (a top-level module's __package__) would be a blank cell: it shows
    # as the literal it is, as None shows as None.
    return "''" if isinstance(value, str) and not value else value


def module_info(
    module: ModuleType,
    cells: CellModuleFinder = finder,
    *,
    name: str | None = None,
    notebook: dict[str, Any] | None = None,
) -> ModuleInfo:
    """Spec, loader, ``__file__``, ``__cached__``, package; for a cell module, its history
    and what its older versions left alive (:func:`~ipyexecmod.cells.stale.find_stale`,
    naming what the ``notebook``'s namespace binds).

    ``name`` is the name the module was looked up by (its key in :data:`sys.modules`);
    if the module's ``__name__`` differs (``_frozen_importlib`` is
    ``importlib._bootstrap``), that is shown too.
    """
    spec = getattr(module, "__spec__", None)
    namespace = getattr(module, "__dict__", {})
    own_name = getattr(module, "__name__", None)
    info = ModuleInfo(name=own_name if name is None else name)
    if own_name != info["name"]:
        info["__name__"] = own_name
    info.update(
        kind=module_kind(module, cells),
        origin=getattr(spec, "origin", None),
        loader=_loader_of(module),
        spec=spec,
        __file__=namespace.get("__file__"),
        __cached__=namespace.get("__cached__"),
        __package__=namespace.get("__package__"),
    )
    if "__path__" in namespace:
        info["__path__"] = namespace["__path__"]
    writer = cells.writer_of(module)
    if writer is not None and not writer.is_this_process():  # another kernel's copy
        info["copy written by"] = writer.describe()
    record = cells.get(own_name) if info["kind"] == "cell" else None  # type: ignore[arg-type]
    if record is not None:
        info["defined in"] = (
            "(a parent package, no cell)"
            if record.implicit
            else f"In[{record.version.defined_in}]"
            if record.version.defined_in is not None
            else "(not from a cell)"
        )
        info["redefinitions"] = record.redefinitions
        info["lines"] = len(record.version.source.splitlines())
        info["stale"] = find_stale(cells, record.name, notebook)
    return info
