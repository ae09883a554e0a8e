# SPDX-License-Identifier: MIT
"""One version of a cell module, and the registry's record of a module's versions.

A :class:`Version` is worked out once, when its cell is defined: its source and
code (in a :class:`~ipyexecmod.SourceTextLoader`), the filename its code is
compiled under, its on-disk copy's paths, whether it is a package, the cell it
came from, and (on demand) the modules it imports.  The spec, the on-disk copy,
``%modinfo`` and Dask shipments all take it from here.

Each version's code has a filename of its own, ``PATH@N`` beside an on-disk copy at
``PATH`` (``ipyexecmod:NAME@N`` without one), ``N`` counting the module's compiled
versions in this process, failed ones included.  linecache holds each version's lines
under that name for as long as its code lives, so a failed version's traceback
(``%debug``) and a function kept from a replaced version (``inspect.getsource``,
``??``) show their own lines, not those of the version in place.  ``__file__`` and the
spec's ``origin`` still name ``PATH``, under which linecache has the current version's
lines (``inspect.getsource(module)`` reads ``__file__``).  The ``.pyc`` written there
holds the code as it ran: a process that imports it gets it named ``PATH``, as importlib
names the code of any ``.pyc`` after the source beside it.

A version defined by a notebook cell (:class:`CellFile`) has its code named after the cell
instead, as IPython names a plain cell's code (``shell.compile.get_code_name``: in
ipykernel, the file the JupyterLab debugger writes the cell to and sets its breakpoints
in), with the cell's line numbers: line N of the code is line N of the cell, whose first
line is ``%%as_module NAME``.  So a breakpoint set in the cell stops there, tracebacks say
``Cell In[3], line 4`` and linecache holds the whole cell under that name, which IPython
keeps for the session.  Without an on-disk copy, ``__file__`` is ``ipyexecmod:NAME``, under
which linecache has the current version's lines.  The source is compiled once, as the
copy's file (its ``.pyc``; the compiler's warnings name ``PATH@N``), and the cell's code made
from it (:mod:`ipyexecmod._renumber`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from functools import cached_property
from types import CodeType, ModuleType
from typing import TYPE_CHECKING, Any, NamedTuple

from .._renumber import compile_after
from ..loader import SourceTextLoader
from ..store import CellStore, Saved
from .history import History
from .imports import import_statements, imports_in
from .locks import CellSpec
from .stale import Replaced

if TYPE_CHECKING:
    from .dependents import Rerun

__all__ = ["CellFile", "CellModule", "Replacement", "Version"]

# Per module name, the number of its last version compiled (in any place).
_compiled: dict[str, int] = {}


class CellFile(NamedTuple):
    """The notebook cell a version's code is named after (see the module docstring)."""

    #: The name IPython compiled the cell under: the code's ``co_filename``.
    name: str
    #: The cell's lines before the module's source (its ``%%as_module NAME`` line),
    #: which the code's line numbers count.
    lead: str

    @property
    def first_line(self) -> int:
        """The cell's line number of the source's first line."""
        return self.lead.count("\n") + 1


@dataclass(frozen=True, eq=False)
class Version:
    """One version of cell module ``name``; see the module docstring."""

    name: str
    source: str
    code: CodeType
    #: The code's ``co_filename``: this version's own, ``PATH@N`` or ``ipyexecmod:NAME@N``,
    #: or its cell's.
    filename: str
    #: The on-disk copy's source, if it has one: ``__file__`` and the spec's ``origin``.
    path: str | None
    #: The on-disk copy's ``.pyc``, if it has one.
    cached: str | None
    is_package: bool
    #: What the module's spec names as its loader, serving ``source`` and ``code``.
    loader: SourceTextLoader
    #: Where its on-disk copy is, if it has one.
    store: CellStore | None = None
    #: The execution count (``In[N]``) of the cell it came from.
    defined_in: int | None = None
    #: The cell its code is named after, if it is.
    cell: CellFile | None = None
    #: Named after its cell, until its copy is written: its code as the copy's file has it.
    as_file: list[CodeType] = field(default_factory=list, repr=False)

    @classmethod
    def compile(
        cls,
        name: str,
        source: str,
        *,
        is_package: bool = False,
        store: CellStore | None = None,
        defined_in: int | None = None,
        cell: CellFile | None = None,
    ) -> Version:
        """Compile ``source`` as module ``name``; raises :class:`SyntaxError` if it does not.

        The code's filename is this version's own, or ``cell``'s (see the module
        docstring), so that a failed version's traceback and the version put back each
        keep their own lines.
        """
        path, cached = (None, None) if store is None else store.paths(name, is_package)
        own = _new_filename(name, f"ipyexecmod:{name}" if path is None else path)
        if cell is None:
            loader = SourceTextLoader(name, source, own, is_package=is_package)
            code = loader.get_code(name)
            return cls(name, source, code, own, path, cached, is_package, loader, store, defined_in)
        # Compiled as the copy's file (its .pyc), then named after the cell, with its lines.
        code, as_file = compile_after(source, cell.lead, cell.name, compiled_as=own)
        loader = SourceTextLoader(
            name, source, cell.name, is_package=is_package, code=code, lead=cell.lead
        )
        kept = [] if store is None else [as_file]
        return cls(
            *(name, source, code, cell.name, path, cached, is_package, loader, store),
            *(defined_in, cell, kept),
        )

    def again(self, defined_in: int | None) -> Version:
        """The same version, run again from cell ``In[defined_in]`` (nothing is compiled)."""
        self.loader.register_lines()  # they may have been dropped from linecache
        if defined_in == self.defined_in:
            return self
        return replace(self, defined_in=defined_in)

    def as_package(self) -> Version:
        """This version as a package, as ``x.py`` becomes ``x/__init__.py``: the same code
        (it has run), with the on-disk copy's new paths."""
        return self.placed(self.store, is_package=True)

    def placed(self, store: CellStore | None, *, is_package: bool) -> Version:
        """This version with its copy in ``store`` (a package or not): the same code (it
        has run), with the copy's new paths and a loader of its own."""
        path, cached = (None, None) if store is None else store.paths(self.name, is_package)
        loader = SourceTextLoader(
            self.name,
            self.source,
            self.filename,
            is_package=is_package,
            code=self.code,
            lead=self.loader.lead,
        )
        return replace(
            self, is_package=is_package, loader=loader, path=path, cached=cached, store=store
        )

    @cached_property
    def encoded(self) -> bytes:
        """The source as the bytes of its file."""
        return self.source.encode("utf-8")

    @cached_property
    def imports(self) -> frozenset[str]:
        """The modules its code imports as it runs (not inside functions), as absolute names."""
        return imports_in(self.name, self.code, self.is_package)

    @cached_property
    def from_imports(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """``(module, names)`` for each ``from module import names`` its code runs (see
        :func:`import_statements`)."""
        statements = import_statements(self.name, self.code, self.is_package)
        return tuple((module, names) for module, names in statements if names)

    @property
    def origin(self) -> str:
        """``__file__``: the on-disk copy's path; without one, the code's filename, or
        ``ipyexecmod:NAME`` for a version named after its cell (whose lines hold more)."""
        if self.path is not None:
            return self.path
        return self.filename if self.cell is None else f"ipyexecmod:{self.name}"

    def file_code(self) -> CodeType:
        """The code as its on-disk copy's file gives it: this version's, or for one named
        after its cell, the code with the file's line numbers compiled with it, given once
        (a copy is written once; compiled again if it is written again)."""
        if self.cell is None:
            return self.code
        if self.as_file:
            return self.as_file.pop()
        return SourceTextLoader.source_to_code(self.source, self.filename)

    def spec(self) -> CellSpec:
        """A spec like a file's: ``origin`` (``__file__``) is :attr:`origin`, and
        ``cached`` (``__cached__``) the on-disk copy's ``.pyc``."""
        origin = self.origin
        spec = CellSpec(self.name, self.loader, origin=origin, is_package=self.is_package)
        spec.has_location = True
        spec.cached = self.cached
        if self.is_package and self.path is not None:
            # The copy's directory, as a worker that imports the copy has it: pkgutil and
            # importlib.resources give the same answers in both.
            spec.submodule_search_locations = [os.path.dirname(self.path)]
        return spec

    def save(self, *, force: bool = False) -> Saved:
        """Make this the version whose lines linecache has under :attr:`origin`, and write
        the on-disk copy, if it has one; raises :class:`~ipyexecmod.store.StoreError` if it
        cannot (the lines are there all the same: the module in this process is this
        version).  With ``force``, files of the user's in its way are moved aside
        (:meth:`~ipyexecmod.store.CellStore.save`)."""
        if self.store is None:
            if self.cell is not None:
                self.loader.register_lines(self.origin)
            return Saved()
        assert self.path is not None and self.cached is not None  # set with the store
        self.loader.register_lines(self.path)
        return self.store.save(
            self.name,
            self.path,
            self.cached,
            self.encoded,
            self.file_code,
            is_package=self.is_package,
            force=force,
        )


def _new_filename(name: str, base: str) -> str:
    """``base@N`` for module ``name``'s next ``N`` whose name linecache does not hold (after
    ``%reset --aggressive`` imports this module anew, versions of before may still live)."""
    import linecache  # here: on 3.11 and 3.12 it brings tokenize and re along

    number = _compiled.get(name, 0) + 1
    while f"{base}@{number}" in linecache.cache:
        number += 1
    _compiled[name] = number
    return f"{base}@{number}"


class Replacement(NamedTuple):
    """A cell module whose code ran again in its existing object, in a definition that
    has committed: its namespace as it was before, and the versions before and after."""

    name: str
    old: dict[str, Any]
    module: ModuleType
    before: Version
    after: Version
    #: The classes and functions of versions before ``before`` still alive, with their names.
    earlier: tuple[tuple[str, Any], ...] = ()


@dataclass(eq=False)
class CellModule:
    """What the registry knows of one cell module: its current version and history."""

    version: Version
    #: Successful definitions after the first one.
    redefinitions: int = 0
    #: A parent package created for a dotted name, with no cell of its own.
    implicit: bool = False
    #: The dependents its latest definition ran again, in order.
    reran: tuple[Rerun, ...] = ()
    #: The user's files its latest definition moved aside (``force``), as ``(path, aside)``.
    moved_aside: tuple[tuple[str, str], ...] = ()
    #: The classes and functions of older versions, while they live (see :mod:`.stale`).
    replaced: Replaced = field(default_factory=Replaced, repr=False)
    #: Every version that ran, as far as kept (see :mod:`.history`).
    history: History = field(default_factory=History, repr=False)

    @property
    def name(self) -> str:
        return self.version.name

    @property
    def loader(self) -> SourceTextLoader:
        return self.version.loader

    def spec(self) -> CellSpec:
        return self.version.spec()
