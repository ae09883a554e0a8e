# SPDX-License-Identifier: MIT
"""Which cell modules there are, and which go together: queries over the registry.

A *family* is a top-level cell module or package with every cell module below
it: what one shipment sends.  Modules restored from on-disk copies (imported by
another finder in a later kernel) count as cell modules too.  Nothing here
changes any state.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from types import ModuleType
from typing import NamedTuple

from .. import cells
from ..cells import family as _family
from ..cells.family import within
from ..cells.imports import imports_of

__all__ = ["Member", "families", "family", "is_cell_top", "tops", "with_imports", "within"]


class Member(NamedTuple):
    """One module of a family, as it is shipped: its current version."""

    name: str
    source: bytes
    is_package: bool
    #: The modules its code imports as it runs (not inside functions), absolute.
    imports: frozenset[str]
    #: The filename its code is compiled under in the kernel (tracebacks show its lines).
    filename: str
    #: Its on-disk copy in the kernel, if it has one.
    path: str | None
    #: The lines before the source in the file ``filename`` names (a notebook cell's
    #: ``%%as_module NAME``: the code has the cell's line numbers), if any.
    lead: str = ""


def family(top: str) -> dict[str, Member]:
    """Module ``top`` and every cell module below it, by name."""
    found = _family.members(cells.finder, top).items()
    return {name: _version(name, record_or_module) for name, record_or_module in found}


def families(tops: list[str]) -> dict[str, dict[str, Member]]:
    """The :func:`family` of each of the top-level names ``tops``, found in one pass."""
    by_top = _family.by_top(cells.finder, tops).items()
    return {top: {n: _version(n, m) for n, m in members.items()} for top, members in by_top}


def tops() -> list[str]:
    """The top-level names of every cell module, in the order of definition (restored
    ones first), but those that hide another module (their placeholder would hide it
    on the workers too)."""
    names = [name for name, module in list(sys.modules.items()) if cells.finder.is_restored(module)]
    names += [record.name for record in cells.finder.records()]
    found = dict.fromkeys(name.partition(".")[0] for name in names)
    hidden = cells.finder.hidden(found)
    return [top for top in found if top not in hidden]


def with_imports(wanted: list[str]) -> list[str]:
    """``wanted`` and the cell packages and modules their code imports as it runs, each
    after those it imports (an import cycle is broken anywhere)."""
    order: list[str] = []
    visiting: set[str] = set()

    def visit(top: str) -> None:
        if top in order or top in visiting:
            return
        visiting.add(top)
        needed = {name.partition(".")[0] for v in family(top).values() for name in v.imports}
        for other in sorted(needed - {top}):
            if is_cell_top(other):
                visit(other)
        visiting.discard(top)
        order.append(top)

    for top in wanted:
        visit(top)
    return order


def is_cell_module(name: str) -> bool:
    """Whether ``name`` is a cell module, defined here or restored from a copy."""
    return _family.is_cell_module(cells.finder, name)


def is_cell_top(top: str) -> bool:
    """Whether ``top`` is a cell module that hides no other module."""
    return is_cell_module(top) and cells.finder.hides(top) is None


def _version(name: str, found: cells.CellModule | ModuleType) -> Member:
    """The version of a cell module (``found``), as its definition worked it out, or of a
    restored one (imported from a copy an earlier kernel wrote), read from its file."""
    if isinstance(found, ModuleType):
        return _restored(name, found.__file__, hasattr(found, "__path__"))  # type: ignore[arg-type]
    version = found.version
    return Member(
        name,
        version.encoded,
        version.is_package,
        version.imports,
        version.filename,
        version.path,
        version.loader.lead,
    )


def _restored(name: str, path: str, is_package: bool) -> Member:
    with open(path, "rb") as file:  # read each time: another kernel may have rewritten it
        source = file.read()
    return Member(name, source, is_package, _imports_of(name, source, is_package), path, path)


_imports_of = lru_cache(maxsize=256)(imports_of)  # by content: the same text parses the same
