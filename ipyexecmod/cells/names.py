# SPDX-License-Identifier: MIT
"""Which module names a cell may take: well formed, and not another module's."""

from __future__ import annotations

import importlib.machinery
import keyword
import os
import sys
import unicodedata
from collections.abc import Iterable
from importlib.machinery import ModuleSpec
from typing import TYPE_CHECKING, Any

from ..store import kernel_board
from ..workers.catchup import finder as worker_finder

if TYPE_CHECKING:
    from .registry import CellModuleFinder

__all__ = ["DefinitionError", "check_available", "check_module_name", "hides", "module_origin"]


class DefinitionError(ValueError):
    """A definition refused before any code ran; nothing was changed.

    ``forceable`` is true when ``force=True`` (``--force``) would define it anyway;
    ``hint`` says what it would do.
    """

    def __init__(
        self, message: str, *, forceable: bool = False, hint: str = "to define it anyway"
    ) -> None:
        super().__init__(message)
        self.forceable = forceable
        self.hint = hint


def check_module_name(name: str) -> None:
    """Raise :class:`DefinitionError` naming the bad part unless ``name`` is a dotted module name.

    Each part must be an identifier, not a keyword, and in NFKC form (Python
    normalizes identifiers, so ``import ﬁle`` imports ``file``).
    """
    if not isinstance(name, str):
        msg = f"a module name must be a str, not {type(name).__name__}"
        raise TypeError(msg)
    if not name:
        msg = "a module name is required"
        raise DefinitionError(msg)
    for part in name.split("."):
        if not part:
            problem = "has an empty part (a leading, trailing or doubled dot)"
        elif not part.isidentifier():
            problem = f"has a part {part!r} that is not a Python identifier"
        elif keyword.iskeyword(part):
            problem = f"has a part {part!r} that is a Python keyword"
        elif (normal := unicodedata.normalize("NFKC", part)) != part:
            problem = f"has a part {part!r} that Python would import as {normal!r}"
        else:
            continue
        msg = f"{name!r} is not a valid module name: it {problem}"
        raise DefinitionError(msg)


def module_origin(module: object) -> str:
    """Where ``module`` comes from: its file, else its spec's origin (``built-in``), else ``""``.

    A frozen standard module (``os`` since 3.11) has a ``__file__`` but the origin ``frozen``.
    """
    spec = getattr(module, "__spec__", None)
    origin = getattr(spec, "origin", None)
    if not getattr(spec, "has_location", False):
        origin = getattr(module, "__file__", None) or origin
    return str(origin) if origin else ""


def check_available(finder: CellModuleFinder, name: str) -> None:
    """Refuse a name, or a missing parent, that belongs to something else.

    Raises :class:`DefinitionError` (forceable) for a module ipyexecmod did not
    create, or one another finder would import from :data:`sys.path`.
    """
    module = sys.modules.get(name)
    if module is not None:
        if finder.ours(module):
            return
        origin = module_origin(module)
        where = f"from {origin!r}" if origin else "with no file"
        msg = (
            f"{name!r} is already imported, {where}, and ipyexecmod "
            f"did not create it: defining it would replace it for all code in this "
            f"process; choose another name"
        )
        raise DefinitionError(msg, forceable=True)
    parts = name.split(".")
    path = None
    for depth in range(1, len(parts) + 1):
        prefix = ".".join(parts[:depth])
        module = sys.modules.get(prefix)
        if prefix in finder or (module is not None and finder.ours(module)):
            return  # ours: below it, nothing else can import anything
        if module is not None:
            path = getattr(module, "__path__", None)
            if path is None:
                return  # not a package: the definition says so
            continue
        spec = foreign_spec(finder, prefix, path)
        if spec is not None and not _ours(finder, spec.origin):
            raise DefinitionError(_in_the_way(name, prefix, spec), forceable=True)
        return  # made in memory: below it, nothing else can import anything


def _in_the_way(name: str, prefix: str, spec: ModuleSpec) -> str:
    """Why the module that another finder has for ``prefix`` keeps ``name`` from being defined."""
    origin = spec.origin or "elsewhere"
    if spec.origin is None and spec.submodule_search_locations:
        directories = ", ".join(spec.submodule_search_locations)
        origin = f"{directories} (a namespace package: a directory without __init__.py)"
    if prefix == name:
        problem = f"it can be imported from {origin} and a cell module would hide it"
        hint = "choose another name"
    elif spec.submodule_search_locations is None:
        problem = f"its parent {prefix!r} (from {origin}) is a module, not a package"
        hint = "choose another name"
    else:
        problem = (
            f"its parent {prefix!r} can be imported from {origin} and a cell module would hide it"
        )
        hint = f"import {prefix!r} first"
    return f"cannot define {name!r}: {problem}; {hint}"


def hides(finder: CellModuleFinder, top: str) -> str | None:
    """Where the module that top-level name ``top`` would be without ipyexecmod comes from
    (a cell module defined with ``force``), or ``None`` if nothing else has it."""
    spec = foreign_spec(finder, top, _foreign_path(finder))
    return None if spec is None else spec.origin or "elsewhere"


def hidden(finder: CellModuleFinder, tops: Iterable[str]) -> dict[str, str]:
    """:func:`hides` for many top-level names: those another module has, with where from.

    Each directory on the path is listed once: a name none of them lists is looked up
    by the other finders only, not by the path finder (a ``stat()`` per path entry each).
    """
    path = _foreign_path(finder)
    listed = _names_in(path)
    others = [f for f in sys.meta_path if f is not importlib.machinery.PathFinder]
    found: dict[str, str] = {}
    for top in tops:
        finders = sys.meta_path if listed is None or top in listed else others
        spec = foreign_spec(finder, top, path, finders)
        if spec is not None:
            found[top] = spec.origin or "elsewhere"
    return found


def _foreign_path(finder: CellModuleFinder) -> list[str]:
    """``sys.path`` without the directories of ipyexecmod's copies and stand-ins."""
    ours = {store.directory for store in finder.stores}
    board = kernel_board()
    if board is not None:
        ours.add(board.boot)
    return [entry for entry in sys.path if os.path.abspath(entry or ".") not in ours]


def _names_in(path: list[str]) -> set[str] | None:
    """Every name before a dot in the directories of ``path`` (more than the modules
    there: never fewer); ``None`` if an entry is not a directory (a zip) or unreadable."""
    names: set[str] = set()
    for entry in path:
        try:
            with os.scandir(entry or ".") as listing:
                names.update(item.name.partition(".")[0] for item in listing)
        except NotADirectoryError:
            return None
        except FileNotFoundError:
            continue
        except OSError:
            return None
    return names


def _ours(finder: CellModuleFinder, origin: str | None) -> bool:
    """Whether ``origin`` is an on-disk copy, or a stand-in of the board (see
    :mod:`ipyexecmod.workers`)."""
    board = kernel_board()
    if board is not None and origin is not None and origin.startswith(board.boot + os.sep):
        return True
    return any(store.wrote(origin) for store in finder.stores)


def foreign_spec(
    finder: CellModuleFinder, name: str, path: Any, finders: Iterable[object] | None = None
) -> ModuleSpec | None:
    """The spec another meta-path finder (of ``finders``, by default all) has for ``name``,
    found without importing."""
    for other in sys.meta_path if finders is None else finders:
        find_spec = getattr(other, "find_spec", None)
        if other is finder or other is worker_finder or find_spec is None:
            continue
        spec: ModuleSpec | None = find_spec(name, path)
        if spec is not None:
            return spec
    return None
