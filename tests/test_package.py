"""The package surface: exports, isolation from IPython, argument errors, magic values."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest
from differential import compile_module

import ipyexecmod
from ipyexecmod import capi

C_FUNCTIONS = {
    "exec_code_module": "PyImport_ExecCodeModule",
    "exec_code_module_ex": "PyImport_ExecCodeModuleEx",
    "exec_code_module_object": "PyImport_ExecCodeModuleObject",
    "exec_code_module_with_pathnames": "PyImport_ExecCodeModuleWithPathnames",
    "add_module": "PyImport_AddModule",
    "add_module_object": "PyImport_AddModuleObject",
    "add_module_ref": "PyImport_AddModuleRef",
    "get_magic_number": "PyImport_GetMagicNumber",
    "get_magic_tag": "PyImport_GetMagicTag",
    "get_module_dict": "PyImport_GetModuleDict",
}

# PyImport_GetMagicNumber() per version, as measured in the reference (section 2.1).
MAGIC_NUMBERS = {(3, 11): 168627623, (3, 12): 168627659, (3, 13): 168627699}


def test_exports_name_every_c_function():
    assert set(C_FUNCTIONS) | {"SourceTextLoader"} == set(ipyexecmod.__all__)
    assert set(C_FUNCTIONS) == set(capi.__all__)
    for name in C_FUNCTIONS:
        assert callable(getattr(ipyexecmod, name)) and callable(getattr(capi, name))


def test_readme_table_maps_every_function():
    text = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `(\w+)\(.*?\)` \| `(\w+)` \|", text, re.MULTILINE))
    assert {k: rows.get(k) for k in C_FUNCTIONS} == C_FUNCTIONS


def test_import_leaves_ipython_out():
    # importlib.abc and typing would triple the import time (see benchmarks/RESULTS.md).
    probe = (
        "import sys, json, ipyexecmod; "
        "print(json.dumps(sorted(m for m in ('IPython', 'ipykernel', 'traitlets', 'ctypes', "
        "'ipyexecmod.capi', 'importlib.abc', 'typing') if m in sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout) == []


@pytest.mark.skipif(sys.version_info[:2] not in MAGIC_NUMBERS, reason="no measured value")
def test_magic_number_and_tag_values():
    expected = MAGIC_NUMBERS[sys.version_info[:2]]
    assert ipyexecmod.get_magic_number() == capi.get_magic_number() == expected
    assert ipyexecmod.get_magic_number().to_bytes(4, "little") == importlib.util.MAGIC_NUMBER
    tag = f"cpython-{sys.version_info.major}{sys.version_info.minor}"
    assert ipyexecmod.get_magic_tag() == capi.get_magic_tag() == tag


X = compile_module("x = 1\n")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ipyexecmod.exec_code_module(42, X), "name must be a str or bytes, not int"),
        (lambda: ipyexecmod.exec_code_module_object(b"m", X), "name must be a str, not bytes"),
        (lambda: ipyexecmod.add_module_object(["m"]), "name must be a str, not list"),
        (lambda: ipyexecmod.add_module(3.5), "name must be a str or bytes, not float"),
        (lambda: ipyexecmod.add_module_ref(None), "name must be a str or bytes, not NoneType"),
        (lambda: ipyexecmod.exec_code_module("m", "x = 1"), "code must be a code object, not str"),
        (
            lambda: ipyexecmod.exec_code_module_ex("m", X, PurePosixPath("m.py")),
            "pathname must be a str, bytes or None, not PurePosixPath",
        ),
        (
            lambda: ipyexecmod.exec_code_module_with_pathnames("m", X, None, 7),
            "cpathname must be a str, bytes or None, not int",
        ),
        (
            lambda: ipyexecmod.exec_code_module_object("m", X, None, b"m.pyc"),
            "cpathname must be a str or None, not bytes",
        ),
    ],
)
def test_wrong_types_raise_before_any_change(call, message):
    before = dict(sys.modules)
    with pytest.raises(TypeError, match=f"^{message}$"):
        call()
    assert sys.modules == before


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: capi.add_module(42), "name must be a str or bytes, not int"),
        (lambda: capi.exec_code_module(None, X), "name must be a str or bytes, not NoneType"),
        (
            lambda: capi.exec_code_module_object(None, X),
            "name must not be None: C would dereference NULL",
        ),
        (
            lambda: capi.exec_code_module_ex("m", X, 5),
            "pathname must be a str, bytes or None, not int",
        ),
        (lambda: capi.exec_code_module_object("m", [1]), "code must be a code object, not list"),
    ],
)
def test_capi_refuses_before_calling_c(call, message):
    before = dict(sys.modules)
    with pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
        call()
    assert sys.modules == before
