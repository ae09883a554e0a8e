# SPDX-License-Identifier: MIT
"""The ``.pyc`` layout (PEP 3147 names, PEP 552 header): writing this Python's, reading any.

A ``.pyc`` file starts with 16 bytes: the magic number of the Python that wrote
it (2 bytes of bytecode version, then ``b"\\r\\n"``), a 32-bit flags field, and
either the source's modification time and size (flags 0) or an 8-byte
:func:`importlib.util.source_hash` of the source (flags 1: unchecked, 3: checked).
Python 3.0 to 3.6 wrote only 12 bytes: magic, mtime and (from 3.3) size.  The
code object follows the header, :mod:`marshal`-ed.

ipyexecmod writes checked-hash files (:func:`hash_pyc`): the import system
loads one only for the exact source it was compiled from, however fast an edit.
"""

from __future__ import annotations

import importlib.util
import marshal
import os
import sys
from dataclasses import dataclass
from types import CodeType

__all__ = [
    "PycError",
    "PycHeader",
    "Verdict",
    "check_source",
    "hash_pyc",
    "is_sound_hash_pyc",
    "python_for_magic",
    "read_header",
    "source_of",
]

_HEADER_SIZE = 16
# PEP 552 flags: hash-based (bit 0), checked (bit 1).
_CHECKED_HASH = (0b11).to_bytes(4, "little")

# The bytecode versions (low 16 bits of the magic number) of each Python's
# releases, first and last, as listed in CPython's Lib/importlib/_bootstrap_external.py
# (3.0 to 3.13) and Include/internal/pycore_magic_number.h (3.14+).
_VERSION_RANGES: tuple[tuple[str, int, int], ...] = (
    ("3.0", 3000, 3131),
    ("3.1", 3141, 3151),
    ("3.2", 3160, 3180),
    ("3.3", 3190, 3230),
    ("3.4", 3250, 3310),
    ("3.5", 3320, 3351),
    ("3.6", 3360, 3379),
    ("3.7", 3390, 3394),
    ("3.8", 3400, 3413),
    ("3.9", 3420, 3425),
    ("3.10", 3430, 3439),
    ("3.11", 3450, 3495),
    ("3.12", 3500, 3531),
    ("3.13", 3550, 3571),
)

_FLAG_KINDS = {0: "timestamp", 1: "unchecked hash", 3: "checked hash"}


class PycError(ValueError):
    """The file is not a ``.pyc`` that can be read: too short, or not a Python 3 magic number."""


def python_for_magic(magic: bytes) -> str | None:
    """The Python version (``"3.11"``) whose bytecode ``magic`` marks, if known.

    The running interpreter's own magic number is always known, even when it
    is newer than the table.
    """
    if magic == importlib.util.MAGIC_NUMBER:
        return f"{sys.version_info.major}.{sys.version_info.minor}"
    if len(magic) != 4 or magic[2:] != b"\r\n":
        return None
    number = int.from_bytes(magic[:2], "little")
    for version, first, last in _VERSION_RANGES:
        if first <= number <= last:
            return version
    return None


@dataclass(frozen=True)
class PycHeader:
    """The decoded header of one ``.pyc`` file."""

    path: str
    magic: bytes
    #: The Python version that wrote it, or ``None`` if unknown.
    python: str | None
    #: "timestamp", "unchecked hash" or "checked hash".
    invalidation: str
    #: Source modification time (seconds), for a timestamp pyc.
    source_mtime: int | None
    #: Source size in bytes (modulo 2**32), for a timestamp pyc from 3.3 on.
    source_size: int | None
    #: :func:`importlib.util.source_hash` of the source, for a hash-based pyc.
    source_hash: bytes | None
    #: Whether the running interpreter would load it (its magic number).
    for_this_python: bool


def _legacy_layout(python: str | None) -> bool:
    """Python 3.0 to 3.6 wrote no flags field."""
    if python is None:
        return False
    minor = int(python.split(".")[1])
    return minor < 7


def read_header(path: str | os.PathLike[str]) -> PycHeader:
    """Decode the header of the ``.pyc`` at ``path``.

    Raises :class:`PycError` if it is too short to hold a header, or its first
    four bytes are not a Python 3 magic number; :class:`OSError` if it cannot be read.
    """
    path = os.fspath(path)
    with open(path, "rb") as file:
        data = file.read(16)
    if len(data) < 4 or data[2:4] != b"\r\n":
        msg = f"{path} is not a .pyc file: it does not start with a magic number"
        raise PycError(msg)
    magic = data[:4]
    python = python_for_magic(magic)
    if python is None and not 3000 <= int.from_bytes(magic[:2], "little") < 10000:
        msg = f"{path} is not a Python 3 .pyc file: unknown magic number {magic.hex(' ')}"
        raise PycError(msg)
    if _legacy_layout(python):
        size = 12 if python not in ("3.0", "3.1", "3.2") else 8
        if len(data) < size:
            msg = f"{path} is truncated: its header needs {size} bytes, it has {len(data)}"
            raise PycError(msg)
        mtime = int.from_bytes(data[4:8], "little")
        source_size = int.from_bytes(data[8:12], "little") if size == 12 else None
        return PycHeader(path, magic, python, "timestamp", mtime, source_size, None, False)
    if len(data) < 16:
        msg = f"{path} is truncated: its header needs 16 bytes, it has {len(data)}"
        raise PycError(msg)
    flags = int.from_bytes(data[4:8], "little")
    if flags not in _FLAG_KINDS:
        msg = f"{path} has invalid flags {flags:#x} in its header (0, 1 or 3 expected)"
        raise PycError(msg)
    kind = _FLAG_KINDS[flags]
    for_this_python = magic == importlib.util.MAGIC_NUMBER
    if kind == "timestamp":
        mtime = int.from_bytes(data[8:12], "little")
        source_size = int.from_bytes(data[12:16], "little")
        return PycHeader(path, magic, python, kind, mtime, source_size, None, for_this_python)
    return PycHeader(path, magic, python, kind, None, None, data[8:16], for_this_python)


def source_of(path: str) -> str | None:
    """The source file a ``.pyc`` at ``path`` was compiled from, if it can be named.

    ``__pycache__/NAME.TAG.pyc`` (PEP 3147) belongs to ``NAME.py`` one directory up;
    a legacy ``NAME.pyc`` to ``NAME.py`` beside it.
    """
    try:
        return importlib.util.source_from_cache(path)
    except ValueError:
        base, extension = os.path.splitext(path)
        return base + ".py" if extension == ".pyc" else None


@dataclass(frozen=True)
class Verdict:
    """Whether a ``.pyc`` is valid for its source: ``valid`` (``None``: cannot tell), and why."""

    valid: bool | None
    reason: str

    def __str__(self) -> str:
        word = {True: "yes", False: "no", None: "unknown"}[self.valid]
        return f"{word}: {self.reason}"


def check_source(header: PycHeader, source: str) -> Verdict:
    """Whether ``header`` is valid for the file ``source``, and why."""
    try:
        if header.invalidation == "timestamp":
            stat = os.stat(source)
            mtime, size = int(stat.st_mtime) & 0xFFFFFFFF, stat.st_size & 0xFFFFFFFF
            if mtime != header.source_mtime:
                reason = f"the source's modification time is {mtime}, not {header.source_mtime}"
                return Verdict(False, reason)
            if header.source_size is not None and size != header.source_size:
                return Verdict(False, f"the source's size is {size}, not {header.source_size}")
            return Verdict(
                True,
                "same modification time and size (an edit of the same size within "
                "the same second would not be noticed)",
            )
        with open(source, "rb") as file:
            digest = importlib.util.source_hash(file.read())
    except OSError as exc:
        return Verdict(None, f"cannot read the source ({exc.strerror})")
    if digest == header.source_hash:
        return Verdict(True, "the source's hash matches")
    if header.invalidation == "unchecked hash":
        return Verdict(
            False, "the source's hash differs, but Python does not check (unchecked hash)"
        )
    return Verdict(False, "the source's hash differs")


# -- this Python's checked-hash files ------------------------------------------------


def _hash_header(source: bytes) -> bytes:
    return importlib.util.MAGIC_NUMBER + _CHECKED_HASH + importlib.util.source_hash(source)


def hash_pyc(source: bytes, code: CodeType) -> bytes:
    """A checked-hash ``.pyc`` (PEP 552) of ``code``, compiled from ``source``, for this Python."""
    return _hash_header(source) + marshal.dumps(code)


def is_sound_hash_pyc(path: str, source: bytes) -> bool:
    """Whether the file at ``path`` is a checked-hash ``.pyc`` of ``source`` that this
    Python would load: its magic number, the source's hash, bytecode that unmarshals."""
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError:
        return False
    if not data.startswith(_hash_header(source)):
        return False
    try:
        marshal.loads(data[_HEADER_SIZE:])
    except (EOFError, ValueError, TypeError):
        return False
    return True
