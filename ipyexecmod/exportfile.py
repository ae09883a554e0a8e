# SPDX-License-Identifier: MIT
"""The files of an export: each one's provenance header, written (:func:`render`) and
read back (:func:`read_header`), and all of them written, or none (:func:`write_all`).

The header is two comment lines::

    # ipyexecmod export: module 'geo', version 3 from In[12] at 2026-05-01T10:20:30+02:00
    # sha256 of the source around this header: 5f3c...

and the source follows byte for byte, except that a shebang line and a coding declaration
at its top stay above the header: Python reads a coding declaration in the first two lines
only, and a shebang in the first.  The file is encoded as the declaration says (UTF-8
without one), and the digest is of the file's bytes less the header's two lines.  A file
whose header parses and whose digest matches is ipyexecmod's own: one edited by hand is not.
"""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import io
import os
import re
import time
from typing import NamedTuple

from .cells.history import Entry
from .lasting import move_aside

__all__ = ["Header", "UnreadableSource", "read_header", "render", "write_all"]

_FIRST = "# ipyexecmod export: "
_SECOND = "# sha256 of the source around this header: "
_FIRST_PARSED = re.compile(
    rb"# ipyexecmod export: (?:module|package) '([ -&(-~]+)'(?:, version (\d+))?[^\r\n]*\r?\n"
)
_SECOND_PARSED = re.compile(rb"# sha256 of the source around this header: ([0-9a-f]{64})\r?\n")
# As the tokenizer reads them (tokenize.cookie_re and blank_re): a coding declaration, and
# a line after which one may come (blank, or a comment such as a shebang).
_CODING = re.compile(r"[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)", re.ASCII)
_COMMENT_OR_BLANK = re.compile(r"[ \t\f]*(?:[#\r\n]|$)", re.ASCII)
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)")
# How many lines of a file the header may come after.
_LEAD_MAX = 2


class Header(NamedTuple):
    """What an exported file's header says (that read back)."""

    module: str
    #: ``None``: a package made for its modules, with no cell of its own.
    version: int | None


class UnreadableSource(ValueError):
    """The source cannot be written as a file that Python reads back as the same text:
    its coding declaration names an encoding that cannot hold it."""


def render(name: str, entry: Entry | None, is_package: bool) -> bytes:
    """The file for version ``entry`` of module ``name`` (``None``: a package with no cell,
    an empty source); raises :class:`UnreadableSource` if Python would read it otherwise."""
    source = "" if entry is None else entry.source
    lead, encoding = _lead(source)
    first, rest = source[:lead], source[lead:]
    try:
        body = first.encode(encoding), rest.encode(encoding)
    except (UnicodeError, LookupError):
        raise UnreadableSource(_unreadable(name, source, lead, encoding)) from None
    header = (
        f"{_FIRST}{_describe(name, entry, is_package)}\n"
        f"{_SECOND}{hashlib.sha256(body[0] + body[1]).hexdigest()}\n"
    )
    data = body[0] + header.encode("ascii") + body[1]
    if _as_python_reads(data) != first + header + rest:
        raise UnreadableSource(_unreadable(name, source, lead, encoding))
    return data


def _describe(name: str, entry: Entry | None, is_package: bool) -> str:
    """The header's first line after its prefix; the name as :func:`ascii` gives it."""
    kind = "package" if is_package else "module"
    if entry is None:
        return f"{kind} {name!a}, made for its modules (no cell of its own)"
    how = "" if entry.how == "cell" else f" ({entry.described()})"
    cell = "no cell" if entry.defined_in is None else f"In[{entry.defined_in}]"
    when = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(entry.when))
    when = f"{when[:-2]}:{when[-2:]}"  # ISO 8601's +02:00, which %z gives as +0200
    return f"{kind} {name!a}, version {entry.number} from {cell}{how} at {when}"


def _lead(source: str) -> tuple[int, str]:
    """How many characters of ``source`` stay above the header (a shebang line, a coding
    declaration and the line before it), and the encoding the file must then have."""
    lines: list[str] = []
    for _ in range(_LEAD_MAX):
        found = _LINE.match(source, sum(map(len, lines)))
        if found is None:
            break
        lines.append(found.group())
    kept = 1 if lines and lines[0].startswith("#!") else 0
    for number, line in enumerate(lines):
        coding = _CODING.match(line)
        if coding is not None:
            return sum(map(len, lines[: number + 1])), coding.group(1)
        if not _COMMENT_OR_BLANK.match(line):
            break
    return sum(map(len, lines[:kept])), "utf-8"


def _as_python_reads(data: bytes) -> str | None:
    """``data`` decoded as Python decodes a source file, ``None`` if it cannot be."""
    import tokenize  # here: it imports re's compiled tables and more

    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        return data.decode(encoding)
    except (SyntaxError, LookupError, UnicodeError):
        return None


def _unreadable(name: str, source: str, lead: int, encoding: str) -> str:
    if not lead:  # UTF-8 holds any text but lone surrogates ("\udc80")
        return (
            f"cannot export {name!r}: its source holds characters no UTF-8 file can (lone "
            f"surrogates); take them out, run the cell again, then export"
        )
    declaration = source[:lead].splitlines()[-1]
    try:
        codecs.lookup(encoding)
        why = f"encoding {encoding!r} cannot hold all of its source as Python reads it"
    except LookupError:
        why = f"Python knows no encoding {encoding!r}"
    return (
        f"cannot export {name!r}: its coding declaration {declaration!r} says the file is in "
        f"{encoding}, but {why} (in the notebook it had no effect); declare utf-8 or remove "
        f"the line, run the cell again, then export"
    )


def read_header(path: str) -> Header | None:
    """What the header of the file at ``path`` says, if the file is ipyexecmod's own: its
    header parses and the digest of the rest of it matches; ``None`` otherwise (not an
    export, edited, unreadable, or a symbolic link)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with open(fd, "rb") as file:
            data = file.read()
    except OSError:
        return None
    return parse_header(data)


def parse_header(data: bytes) -> Header | None:
    """:func:`read_header` of a file's bytes."""
    start = 0
    for _ in range(_LEAD_MAX + 1):
        first = _FIRST_PARSED.match(data, start)
        if first is not None:
            second = _SECOND_PARSED.match(data, first.end())
            if second is None:
                return None
            body = data[:start] + data[second.end() :]
            if hashlib.sha256(body).hexdigest() != second.group(1).decode():
                return None
            name = codecs.decode(first.group(1).decode("ascii"), "unicode_escape")
            version = first.group(2)
            return Header(name, None if version is None else int(version))
        end = data.find(b"\n", start)
        if end < 0:
            return None
        start = end + 1
    return None


# -- writing --


def write_all(files: list[tuple[str, bytes]], way: list[str]) -> list[tuple[str, str]]:
    """Move each path of ``way`` aside (``PATH.orig``), then write ``files`` (``(path,
    data)``, their folders made as needed); return what was moved where.

    Each file is written to a new file in its folder first, then all are renamed into
    place, so that a failure before the renames leaves everything as it was (what was
    moved aside moved back), and one in the renames (rare: the names were made) leaves the
    files renamed so far.  The ``.pyc`` files Python cached for what was at each path are
    removed.  Raises OSError.
    """
    moved: list[tuple[str, str]] = []
    made: list[str] = []
    staged: list[tuple[str, str]] = []
    try:
        moved += [(path, move_aside(path)) for path in way]
        for path, data in files:
            _make_folders(os.path.dirname(path), made)
            staged.append((_staged(path, data), path))
    except BaseException:
        _undo(staged, made, moved)
        raise
    for number, (staging, path) in enumerate(staged):
        try:
            os.replace(staging, path)
        except BaseException:
            _undo(staged[number:], [], [])
            raise
        _drop_cached(path)
    return moved


def _make_folders(folder: str, made: list[str]) -> None:
    """Make ``folder`` and the folders above it that are missing, noting each."""
    if os.path.isdir(folder):
        return
    parent = os.path.dirname(folder)
    if parent != folder:
        _make_folders(parent, made)
    os.mkdir(folder)  # mode 0o777 less the umask: the folders are the user's
    made.append(folder)


_staging_names = iter(range(1, 2**62))


def _staged(path: str, data: bytes) -> str:
    """``data`` in a new file beside ``path``, under a short name that no import takes."""
    from ._files import write_atomic

    staging = os.path.join(
        os.path.dirname(path), f".export-{os.getpid()}-{next(_staging_names)}.tmp"
    )
    write_atomic(staging, data, mode=0o666)  # less the umask: an ordinary file of the user's
    return staging


def _undo(staged: list[tuple[str, str]], made: list[str], moved: list[tuple[str, str]]) -> None:
    for staging, _ in staged:
        with contextlib.suppress(OSError):
            os.unlink(staging)
    for folder in reversed(made):
        with contextlib.suppress(OSError):
            os.rmdir(folder)
    for path, moved_to in reversed(moved):
        with contextlib.suppress(OSError):
            os.rename(moved_to, path)


def _drop_cached(path: str) -> None:
    """Remove the ``.pyc`` files Python cached for an earlier file at ``path``: a new file
    of the same size, written in the same second, would pass their check and run old code."""
    folder, base = os.path.split(path)
    cached = re.compile(re.escape(base.removesuffix(".py")) + r"\.[^.]+(?:\.opt-\d+)?\.pyc")
    with contextlib.suppress(OSError), os.scandir(os.path.join(folder, "__pycache__")) as found:
        for entry in found:
            if cached.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
