# SPDX-License-Identifier: MIT
"""Which modules are cell modules, and which are below a name: queries over the registry.

A cell module is one the finder defined, or one restored from an on-disk copy (imported
by another finder from a store of the finder's, in a later kernel).  The *family* of a
name is that module with every cell module below it: what a Dask shipment sends and what
:func:`ipyexecmod.files` lists.  Nothing here changes any state.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import TYPE_CHECKING

from .version import CellModule

if TYPE_CHECKING:
    from .registry import CellModuleFinder

__all__ = ["by_top", "is_cell_module", "members", "within"]


def within(name: str, top: str) -> bool:
    """Whether module ``name`` is ``top`` or below it."""
    return name == top or name.startswith(top + ".")


def is_cell_module(finder: CellModuleFinder, name: str) -> bool:
    """Whether ``name`` is a cell module of ``finder``, defined here or restored from a copy."""
    return name in finder or finder.is_restored(sys.modules.get(name))


def members(finder: CellModuleFinder, top: str) -> dict[str, CellModule | ModuleType]:
    """Module ``top`` and every cell module below it, by name: the finder's record of a
    module defined here, or the module itself if it was restored from a copy."""
    found: dict[str, CellModule | ModuleType] = {}
    for record in finder.records():
        if within(record.name, top):
            found[record.name] = record
    for name, module in list(sys.modules.items()):
        if within(name, top) and name not in found and finder.is_restored(module):
            found[name] = module
    return found


def by_top(
    finder: CellModuleFinder, tops: list[str]
) -> dict[str, dict[str, CellModule | ModuleType]]:
    """:func:`members` of each of the top-level names ``tops``, found in one pass."""
    found: dict[str, dict[str, CellModule | ModuleType]] = {top: {} for top in tops}
    for record in finder.records():
        family = found.get(record.name.partition(".")[0])
        if family is not None:
            family[record.name] = record
    for name, module in list(sys.modules.items()):
        family = found.get(name.partition(".")[0])
        if family is not None and name not in family and finder.is_restored(module):
            family[name] = module
    return found
