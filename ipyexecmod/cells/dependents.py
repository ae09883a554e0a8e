# SPDX-License-Identifier: MIT
"""Which cell modules depend on one, and in which order to run them again.

A cell module depends on the cell modules its code imports as it runs
(:attr:`Version.imports <ipyexecmod.cells.Version.imports>`): redefining one leaves
what its dependents took from it (``from sa import f``, values computed from it)
on the old version until they run again.  :func:`dependents` lists them,
directly or through others, each after the modules of the set it imports.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

from .version import CellModule

__all__ = ["Rerun", "dependents", "describe"]


class Rerun(NamedTuple):
    """A cell module run again after a redefinition, and the modules of the set it imports."""

    name: str
    because: tuple[str, ...]


def dependents(modules: Mapping[str, CellModule], name: str) -> list[Rerun]:
    """The cell modules that import ``name``, directly or through others, each after
    those of them it imports.

    Members of an import cycle cannot all come after each other: the cycle is broken at
    the first module (in the order they were first defined) that imports one already
    run, so that what it takes from outside the cycle is new, and the others follow it.
    Each module is listed once.
    """
    if not any(
        name in record.version.imports for other, record in modules.items() if other != name
    ):
        return []  # the common case, on every definition: nothing imports it
    imports = {
        other: record.version.imports
        for other, record in modules.items()
        if not record.implicit and other != name
    }
    affected = _reaching(imports, name)
    pending = [module for module in imports if module in affected]  # first defined, first
    done = {name}
    order: list[str] = []
    while pending:
        ready = [module for module in pending if imports[module] & affected <= done]
        if not ready:  # only cycles are left
            ready = [next((m for m in pending if imports[m] & done), pending[0])]
        order += ready
        done.update(ready)
        pending = [module for module in pending if module not in done]
    members = affected | {name}
    return [Rerun(module, tuple(sorted(imports[module] & members))) for module in order]


def _reaching(imports: Mapping[str, frozenset[str]], name: str) -> set[str]:
    """The modules in ``imports`` that import ``name``, directly or through others."""
    reached: set[str] = set()
    frontier = {name}
    while frontier:
        frontier = {
            module
            for module, imported in imports.items()
            if module not in reached and not imported.isdisjoint(frontier)
        }
        reached |= frontier
    return reached


def describe(name: str, reruns: Iterable[Rerun]) -> str:
    """One line for the user: which modules ran again after ``name``'s redefinition, and why."""
    reruns = list(reruns)
    names = ", ".join(rerun.name for rerun in reruns)
    if all(rerun.because == (name,) for rerun in reruns):
        they = "it imports" if len(reruns) == 1 else "they import"
        return f"re-ran {names} ({they} {name})"
    reasons = "; ".join(f"{rerun.name} imports {', '.join(rerun.because)}" for rerun in reruns)
    return f"re-ran {names} ({reasons})"
