# SPDX-License-Identifier: MIT
"""What the line magics return: plain values that also display well.

Each result is an ordinary Python value (a list of rows, a dict, an int, a
str) with a plain-text ``repr`` for terminals and an escaped HTML table
(``_repr_html_``) for notebooks, in a stable order so that stored notebook
outputs do not churn.  No IPython here: the magics only call these.
"""

from __future__ import annotations

import fnmatch
import html
import importlib.util
import os
import sys
from collections.abc import Iterable, Sequence
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

from .cells import CellModuleFinder, finder, module_origin
from .execmodule import get_magic_number, get_magic_tag
from .pyc import PycError, check_source, read_header, source_of

__all__ = [
    "MagicNumber",
    "MagicTag",
    "ModuleInfo",
    "ModuleList",
    "ModuleRow",
    "PycInfo",
    "PycNotFound",
    "list_modules",
    "module_info",
    "module_kind",
    "module_names",
    "pyc_info",
    "pyc_info_for",
    "pyc_path",
]


def _text_table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def _html_table(header: Sequence[str] | None, rows: Iterable[Sequence[object]]) -> str:
    def cells(tag: str, row: Sequence[object]) -> str:
        return "".join(f"<{tag}>{html.escape(str(cell))}</{tag}>" for cell in row)

    head = f"<thead><tr>{cells('th', header)}</tr></thead>" if header else ""
    body = "".join(f"<tr>{cells('td', row)}</tr>" for row in rows)
    return f"<table>{head}<tbody>{body}</tbody></table>"


# -- modules -----------------------------------------------------------------------


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
        return _text_table([ModuleRow._fields, *self])

    def _repr_html_(self) -> str:
        return _html_table(ModuleRow._fields, self)


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
        return _text_table([(key, str(value)) for key, value in self.items()])

    def _repr_html_(self) -> str:
        return _html_table(None, self.items())


def module_info(
    module: ModuleType, cells: CellModuleFinder = finder, *, name: str | None = None
) -> ModuleInfo:
    """Spec, loader, ``__file__``, ``__cached__``, package; for a cell module, its history.

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
    return info


# -- bytecode ----------------------------------------------------------------------


def _interpreter() -> str:
    implementation = {"cpython": "CPython"}.get(sys.implementation.name, sys.implementation.name)
    return f"{implementation} {sys.version_info.major}.{sys.version_info.minor}"


class MagicNumber(int):
    """:func:`~ipyexecmod.get_magic_number`: an int, shown with the bytes a ``.pyc`` starts with."""

    __str__ = int.__repr__

    @classmethod
    def current(cls) -> MagicNumber:
        return cls(get_magic_number())

    @property
    def header(self) -> bytes:
        """The 4 bytes every ``.pyc`` of this interpreter starts with."""
        return self.to_bytes(4, "little")

    @property
    def bytecode_version(self) -> int:
        """The number CPython's own history of magic numbers counts in (the low 16 bits)."""
        return self & 0xFFFF

    def _fields(self) -> list[tuple[str, str]]:
        fields = [
            ("magic number", f"{int(self)} (0x{int(self):08x})"),
            (".pyc header bytes", self.header.hex(" ")),
            ("bytecode version", str(self.bytecode_version)),
        ]
        if self == get_magic_number():
            fields.append(("interpreter", _interpreter()))
        fields.append(("decode a .pyc", "%pycinfo PATH_OR_MODULE"))
        return fields

    def __repr__(self) -> str:
        return "; ".join(f"{key}: {value}" for key, value in self._fields())

    def _repr_html_(self) -> str:
        return _html_table(None, self._fields())


class MagicTag(str):
    """:func:`~ipyexecmod.get_magic_tag`: a str, shown with the ``.pyc`` path it names."""

    __slots__ = ()

    @classmethod
    def current(cls) -> MagicTag:
        return cls(get_magic_tag())

    def _repr_html_(self) -> str:
        fields = [("magic tag", str(self)), ("interpreter", _interpreter())]
        if self == sys.implementation.cache_tag:
            fields.append(("bytecode of spam.py", importlib.util.cache_from_source("spam.py")))
        return _html_table(None, fields)


class PycInfo(ModuleInfo):
    """The decoded header of a ``.pyc`` (:func:`pyc_info`): a dict that displays as a table."""


class PycNotFound(PycError):
    """No ``.pyc`` for a target: not a file, and not an imported module that has one."""


def pyc_path(target: str) -> str:
    """The ``.pyc`` that ``target`` names: a path to a file, or an imported module's ``__cached__``.

    Raises :class:`PycNotFound` if ``target`` is neither a file nor the name of an
    imported module, or if the module has no ``.pyc`` file.
    """
    if os.path.isfile(target):
        return target
    module = sys.modules.get(target)
    if module is None:
        msg = f"{target!r} is neither a file nor an imported module"
        raise PycNotFound(msg)
    spec = getattr(module, "__spec__", None)
    path = getattr(module, "__cached__", None) or getattr(spec, "cached", None)
    if not path or not os.path.isfile(path):
        msg = (
            f"module {target!r} has no .pyc file (it is built in, frozen, from a cell, or "
            f"its bytecode was not written); give a path instead"
        )
        raise PycNotFound(msg)
    return str(path)


def pyc_info_for(target: str) -> PycInfo:
    """:func:`pyc_info` of the ``.pyc`` that ``target`` names (see :func:`pyc_path`).

    Raises :class:`PycNotFound` if there is no such ``.pyc``, its base class
    :class:`~ipyexecmod.pyc.PycError` if it cannot be decoded, and :class:`OSError` if
    it cannot be read.
    """
    return pyc_info(pyc_path(target))


def pyc_info(path: str) -> PycInfo:
    """Decode the ``.pyc`` at ``path`` and say whether it is valid for its source and for us.

    Raises :class:`~ipyexecmod.pyc.PycError` or :class:`OSError` if it cannot be read.
    """
    header = read_header(path)
    number = int.from_bytes(header.magic, "little")
    info = PycInfo(
        file=header.path,
        **{"magic number": f"{number} (0x{number:08x}), bytes {header.magic.hex(' ')}"},
        python=header.python or "unknown (not a released CPython 3.0 to 3.13)",
        invalidation=header.invalidation,
    )
    if header.invalidation == "timestamp":
        info["source mtime"] = header.source_mtime
        if header.source_size is not None:
            info["source size"] = header.source_size
    else:
        info["source hash"] = (header.source_hash or b"").hex()
    source = source_of(header.path)
    info["source file"] = source
    info["valid for its source"] = str(check_source(header, source)) if source else "unknown"
    info["valid for this Python"] = (
        "yes"
        if header.for_this_python
        else f"no: this is {_interpreter()}, whose magic number is "
        f"{importlib.util.MAGIC_NUMBER.hex(' ')}; it would ignore this file and recompile"
    )
    return info
