# SPDX-License-Identifier: MIT
"""One version of a cell module, and the registry's record of a module's versions.

A :class:`Version` is worked out once, when its cell is defined: its source and
code (in a :class:`~ipyexecmod.SourceTextLoader`), the filename its code is
compiled under, its on-disk copy's paths, whether it is a package, the cell it
came from, and (on demand) the modules it imports.  The spec, the on-disk copy,
``%modinfo`` and Dask shipments all take it from here.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from functools import cached_property
from types import CodeType

from ..loader import SourceTextLoader
from ..store import CellStore
from .locks import CellSpec
from .stale import Replaced

__all__ = ["CellModule", "Version"]

_serial = itertools.count(1)


@dataclass(frozen=True, eq=False)
class Version:
    """One version of cell module ``name``; see the module docstring."""

    name: str
    source: str
    code: CodeType
    #: The code's ``co_filename``: the on-disk copy's path, or a name of its own.
    filename: str
    #: The on-disk copy's ``.pyc``, if it has one.
    cached: str | None
    is_package: bool
    #: What the module's spec names as its loader, serving ``source`` and ``code``.
    loader: SourceTextLoader
    #: Where its on-disk copy is, if it has one.
    store: CellStore | None = None
    #: The execution count (``In[N]``) of the cell it came from.
    defined_in: int | None = None

    @classmethod
    def compile(
        cls,
        name: str,
        source: str,
        *,
        is_package: bool = False,
        store: CellStore | None = None,
        defined_in: int | None = None,
    ) -> Version:
        """Compile ``source`` as module ``name``; raises :class:`SyntaxError` if it does not.

        With a ``store``, the code's filename is its on-disk copy's path; without,
        a name unique to this version (``ipyexecmod:NAME@N``), so that a failed
        version's traceback and the version put back each keep their own lines.
        """
        if store is None:
            filename, cached = f"ipyexecmod:{name}@{next(_serial)}", None
        else:
            filename, cached = store.paths(name, is_package)
        loader = SourceTextLoader(name, source, filename, is_package=is_package)
        code = loader.get_code(name)
        return cls(name, source, code, filename, cached, is_package, loader, store, defined_in)

    def again(self, defined_in: int | None) -> Version:
        """The same version, run again from cell ``In[defined_in]`` (nothing is compiled)."""
        self.loader.register_lines()  # they may have been dropped from linecache
        if defined_in == self.defined_in:
            return self
        return replace(self, defined_in=defined_in)

    def as_package(self) -> Version:
        """This version as a package, as ``x.py`` becomes ``x/__init__.py``."""
        if self.store is not None:  # it moves on disk: compiled for its new file
            return Version.compile(
                self.name,
                self.source,
                is_package=True,
                store=self.store,
                defined_in=self.defined_in,
            )
        loader = SourceTextLoader(
            self.name, self.source, self.filename, is_package=True, code=self.code
        )
        return replace(self, is_package=True, loader=loader)

    @cached_property
    def encoded(self) -> bytes:
        """The source as the bytes of its file."""
        return self.source.encode("utf-8")

    @cached_property
    def imports(self) -> frozenset[str]:
        """The modules its code imports as it runs (not inside functions), as absolute names."""
        return imports_of(self.name, self.source, self.is_package)

    def spec(self) -> CellSpec:
        """A spec like a file's: ``origin`` (``__file__``) is the code's filename, and
        ``cached`` (``__cached__``) the on-disk ``.pyc``."""
        spec = CellSpec(self.name, self.loader, origin=self.filename, is_package=self.is_package)
        spec.has_location = True
        spec.cached = self.cached
        return spec

    def save(self) -> None:
        """Write the on-disk copy; raises :class:`~ipyexecmod.store.StoreError` if it cannot."""
        if self.store is not None:
            assert self.cached is not None  # set with the store
            self.store.save(
                self.name,
                self.filename,
                self.cached,
                self.encoded,
                self.code,
                is_package=self.is_package,
            )


def imports_of(name: str, source: str | bytes, is_package: bool) -> frozenset[str]:
    """The modules that module ``name``'s code imports as it runs (not those imported
    inside functions), as absolute names; none if it does not parse."""
    import ast  # only when asked: ast takes longer to import than all of ipyexecmod

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


@dataclass(eq=False)
class CellModule:
    """What the registry knows of one cell module: its current version and history."""

    version: Version
    #: Successful definitions after the first one.
    redefinitions: int = 0
    #: A parent package created for a dotted name, with no cell of its own.
    implicit: bool = False
    #: The classes and functions of older versions, while they live (see :mod:`.stale`).
    replaced: Replaced = field(default_factory=Replaced, repr=False)

    @property
    def name(self) -> str:
        return self.version.name

    @property
    def loader(self) -> SourceTextLoader:
        return self.version.loader

    def spec(self) -> CellSpec:
        return self.version.spec()
