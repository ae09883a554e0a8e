# SPDX-License-Identifier: MIT
"""This Python's magic number and tag, and any ``.pyc`` decoded: ``%magic_number``,
``%magic_tag``, ``%pycinfo``."""

from __future__ import annotations

import importlib.util
import os
import sys

from ..execmodule import get_magic_number, get_magic_tag
from ..pyc import PycError, check_source, read_header, source_of
from .modules import ModuleInfo
from .tables import html_fields

__all__ = [
    "MagicNumber",
    "MagicTag",
    "PycInfo",
    "PycNotFound",
    "pyc_info",
    "pyc_info_for",
    "pyc_path",
]


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
        return html_fields(self._fields())


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
        return html_fields(fields)


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
