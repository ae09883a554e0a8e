"""%pycinfo and ipyexecmod.pyc, on real .pyc files written by py_compile and by hand."""

from __future__ import annotations

import importlib.util
import os
import py_compile
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest
from IPython.core.error import UsageError

from ipyexecmod.inspection import pyc_info
from ipyexecmod.pyc import PycError, hash_pyc, python_for_magic, read_header

THIS = f"{sys.version_info.major}.{sys.version_info.minor}"
MODES = py_compile.PycInvalidationMode


def compiled(tmp_path: Path, mode: MODES, source: str = "x = 1\n") -> tuple[Path, Path]:
    path = tmp_path / "mod.py"
    path.write_text(source)
    pyc = Path(importlib.util.cache_from_source(str(path)))
    py_compile.compile(str(path), cfile=str(pyc), invalidation_mode=mode, doraise=True)
    return path, pyc


@pytest.mark.parametrize(
    ("mode", "kind"),
    [
        (MODES.TIMESTAMP, "timestamp"),
        (MODES.UNCHECKED_HASH, "unchecked hash"),
        (MODES.CHECKED_HASH, "checked hash"),
    ],
)
def test_headers_written_by_py_compile(tmp_path, mode, kind):
    source, pyc = compiled(tmp_path, mode)
    header = read_header(pyc)
    assert header.magic == importlib.util.MAGIC_NUMBER
    assert header.python == THIS and header.for_this_python
    assert header.invalidation == kind
    if kind == "timestamp":
        assert header.source_mtime == int(source.stat().st_mtime)
        assert header.source_size == source.stat().st_size
        assert header.source_hash is None
    else:
        assert header.source_hash == importlib.util.source_hash(source.read_bytes())
        assert header.source_mtime is None
    info = pyc_info(str(pyc))
    assert info["source file"] == str(source)
    assert info["valid for its source"].startswith("yes")
    assert info["valid for this Python"] == "yes"


def test_a_same_size_edit_in_the_same_second(tmp_path):
    # The %%writefile + reload trap: a timestamp pyc cannot see it; a checked hash can.
    for mode, verdict in [(MODES.TIMESTAMP, "yes"), (MODES.CHECKED_HASH, "no")]:
        source, pyc = compiled(tmp_path, mode, "x = 1\n")
        stat = source.stat()
        source.write_text("x = 2\n")
        os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        expected = {
            "yes": "yes: same modification time and size (an edit of the same size within "
            "the same second would not be noticed)",
            "no": "no: the source's hash differs",
        }[verdict]
        assert pyc_info(str(pyc))["valid for its source"] == expected


def test_an_edited_source_is_reported(tmp_path):
    source, pyc = compiled(tmp_path, MODES.UNCHECKED_HASH)
    source.write_text("x = 22\n")
    verdict = pyc_info(str(pyc))["valid for its source"]
    assert verdict == "no: the source's hash differs, but Python does not check (unchecked hash)"
    source, pyc = compiled(tmp_path, MODES.TIMESTAMP)
    source.write_text("x = 333\n")
    os.utime(source, (1, 1))
    assert re.fullmatch(
        r"no: the source's modification time is 1, not \d+",
        pyc_info(str(pyc))["valid for its source"],
    )
    source, pyc = compiled(tmp_path, MODES.TIMESTAMP, "x = 1\n")
    stat = source.stat()
    source.write_text("x = 10\n")
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    verdict = pyc_info(str(pyc))["valid for its source"]
    assert verdict == "no: the source's size is 7, not 6"
    source.unlink()
    verdict = pyc_info(str(pyc))["valid for its source"]
    assert verdict == "unknown: cannot read the source (No such file or directory)"


def test_the_table_knows_each_installed_python(tmp_path):
    # Asks each CPython found under pyenv for its own magic number: the table, not the
    # running interpreter's shortcut, must name its version.
    checked = 0
    for version in ("3.11", "3.12", "3.13"):
        # pyenv's own directories first: its shims refuse versions that are not active.
        root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
        python = next(iter(root.glob(f"versions/{version}.*/bin/python{version}")), None)
        python = python or shutil.which(f"python{version}")
        if python is None:
            continue
        out = subprocess.run(
            [str(python), "-c", "import importlib.util; print(importlib.util.MAGIC_NUMBER.hex())"],
            capture_output=True,
            text=True,
            check=True,
        )
        magic = bytes.fromhex(out.stdout.strip())
        bytecode_version = int.from_bytes(magic[:2], "little")
        assert [v for v, lo, hi in _ranges() if lo <= bytecode_version <= hi] == [version]
        checked += 1
    assert checked >= 1


def _ranges():
    from ipyexecmod import pyc

    return pyc._VERSION_RANGES


@pytest.mark.parametrize(
    ("number", "version"),
    [(3131, "3.0"), (3151, "3.1"), (3379, "3.6"), (3394, "3.7"), (3413, "3.8"), (3439, "3.10")],
)
def test_magic_numbers_of_older_pythons(number, version):
    assert python_for_magic(number.to_bytes(2, "little") + b"\r\n") == version


def test_a_foreign_python_is_named_and_not_valid_here(tmp_path):
    _, pyc = compiled(tmp_path, MODES.CHECKED_HASH)
    data = bytearray(pyc.read_bytes())
    data[:2] = (3413).to_bytes(2, "little")  # CPython 3.8
    pyc.write_bytes(bytes(data))
    info = pyc_info(str(pyc))
    assert info["python"] == "3.8"
    assert info["valid for this Python"] == (
        f"no: this is CPython {THIS}, whose magic number is "
        f"{importlib.util.MAGIC_NUMBER.hex(' ')}; it would ignore this file and recompile"
    )


def test_a_legacy_header_from_python_3_6(tmp_path):
    pyc = tmp_path / "old.pyc"
    pyc.write_bytes((3379).to_bytes(2, "little") + b"\r\n" + (1234).to_bytes(4, "little") * 2)
    header = read_header(pyc)
    assert (header.python, header.invalidation) == ("3.6", "timestamp")
    assert (header.source_mtime, header.source_size) == (1234, 1234)
    assert not header.for_this_python


def test_an_unknown_python_3_magic_number(tmp_path):
    pyc = tmp_path / "odd.pyc"
    pyc.write_bytes((3140).to_bytes(2, "little") + b"\r\n" + bytes(12))
    assert pyc_info(str(pyc))["python"] == "unknown (not a released CPython 3.0 to 3.13)"


def test_a_truncated_legacy_header(tmp_path):
    pyc = tmp_path / "old.pyc"
    pyc.write_bytes((3379).to_bytes(2, "little") + b"\r\n" + bytes(4))
    with pytest.raises(
        PycError, match=r"old\.pyc is truncated: its header needs 12 bytes, it has 8$"
    ):
        read_header(pyc)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"print('hi')\n", "is not a .pyc file: it does not start with a magic number"),
        (b"", "is not a .pyc file"),
        (
            importlib.util.MAGIC_NUMBER + b"\0\0",
            "is truncated: its header needs 16 bytes, it has 6",
        ),
        (importlib.util.MAGIC_NUMBER + b"\x07\0\0\0" + bytes(8), r"invalid flags 0x7"),
        ((2).to_bytes(2, "little") + b"\r\n" + bytes(12), "unknown magic number 02 00 0d 0a"),
    ],
)
def test_files_that_are_not_readable_pycs(tmp_path, content, message):
    path = tmp_path / "bad.pyc"
    path.write_bytes(content)
    with pytest.raises(PycError, match=message):
        read_header(path)


# -- the magic -----------------------------------------------------------------------------


def test_pycinfo_of_a_module_and_of_a_path(ip, tmp_path):
    import json

    info = ip.run_line_magic("pycinfo", "json")
    assert info["file"] == json.__cached__ and info["python"] == THIS
    _, pyc = compiled(tmp_path, MODES.CHECKED_HASH)
    info = ip.run_line_magic("pycinfo", str(pyc))
    assert info["invalidation"] == "checked hash"
    data, _ = ip.display_formatter.format(info)
    assert "checked hash" in data["text/plain"] and ">checked hash</td>" in data["text/html"]


def test_pycinfo_usage_errors(ip, tmp_path):
    with pytest.raises(UsageError, match="'_nothing_here' is neither a file nor an imported"):
        ip.run_line_magic("pycinfo", "_nothing_here")
    with pytest.raises(UsageError, match=r"module 'sys' has no \.pyc file"):
        ip.run_line_magic("pycinfo", "sys")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(UsageError, match=r"is not a \.pyc file"):
        ip.run_line_magic("pycinfo", str(text))
    assert "%pycinfo" in repr(ip.run_line_magic("magic_number", ""))


def test_check_source_gives_a_verdict_and_a_reason(tmp_path):
    from ipyexecmod.pyc import Verdict, check_source

    source, pyc = compiled(tmp_path, MODES.CHECKED_HASH)
    assert check_source(read_header(pyc), str(source)) == Verdict(True, "the source's hash matches")
    source.write_text("x = 2\n")
    verdict = check_source(read_header(pyc), str(source))
    assert verdict.valid is False and str(verdict) == "no: the source's hash differs"
    source.unlink()
    verdict = check_source(read_header(pyc), str(source))
    assert verdict.valid is None and str(verdict).startswith("unknown: cannot read the source")


def test_hash_pyc_is_what_py_compile_writes_for_a_checked_hash(tmp_path):
    from ipyexecmod.pyc import is_sound_hash_pyc

    source, pyc = compiled(tmp_path, MODES.CHECKED_HASH, "def f():\n    return 42\n")
    data = source.read_bytes()
    ours = hash_pyc(data, compile(data, str(source), "exec", dont_inherit=True))
    assert ours == pyc.read_bytes()
    assert is_sound_hash_pyc(str(pyc), data)
    pyc.write_bytes(ours[:20])  # truncated bytecode
    assert not is_sound_hash_pyc(str(pyc), data)
    assert not is_sound_hash_pyc(str(tmp_path / "missing.pyc"), data)


def _tree(code):
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _tree(const)
