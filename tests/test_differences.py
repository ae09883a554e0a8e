"""The deliberate differences from the C API that the README lists, each shown on both sides.

Where C crashes, has undefined behaviour or half-fails on an argument of the
wrong type, the core raises before touching anything.
"""

from __future__ import annotations

import builtins
import sys
import types
from pathlib import PurePosixPath

import pytest
from differential import compile_module
from helpers import run_python

import ipyexecmod
from ipyexecmod import capi

X = compile_module("x = 1\n")


@pytest.fixture
def name(request: pytest.FixtureRequest):
    name = f"_dd_{request.node.name}".replace("[", "_").replace("]", "").replace("-", "_")
    yield name
    for key in [k for k in sys.modules if isinstance(k, str) and k.startswith(name)]:
        del sys.modules[key]


@pytest.mark.parametrize("api", [ipyexecmod, capi], ids=["core", "capi"])
@pytest.mark.parametrize("bad", ["x = 1", None, compile_module], ids=["str", "None", "function"])
def test_non_code_object_refused_before_any_change(api, bad, name):
    with pytest.raises(
        TypeError, match=r"^code must be a code object, not (str|NoneType|function)$"
    ):
        api.exec_code_module_object(name, bad)
    assert name not in sys.modules


class FakeCode:
    """Claims to be code through ``__class__``; C's exact type check would not see it."""

    co_freevars = ()
    co_filename = "fake.py"

    @property
    def __class__(self):
        return types.CodeType


@pytest.mark.parametrize("api", [ipyexecmod, capi], ids=["core", "capi"])
def test_spoofed_code_object_refused_before_any_change(api, name):
    existing = sys.modules[name] = types.ModuleType(name)
    with pytest.raises(TypeError, match=r"^code must be a code object, not FakeCode$"):
        api.exec_code_module_ex(name, FakeCode(), "fake.py")
    assert sys.modules[name] is existing and not hasattr(existing, "__file__")


def test_non_code_object_crashes_the_real_c_function():
    result = run_python(
        """
        import ctypes
        f = ctypes.pythonapi.PyImport_ExecCodeModuleEx
        f.argtypes = [ctypes.c_char_p, ctypes.py_object, ctypes.c_char_p]
        f.restype = ctypes.py_object
        f(b"crash_me", "not code", b"x.py")
        """
    )
    assert result.returncode < 0, result  # killed by a signal


@pytest.mark.parametrize("api", [ipyexecmod, capi], ids=["core", "capi"])
def test_code_with_free_variables_refused(api, name):
    def outer():
        y = 1

        def inner():
            return y

        return inner

    with pytest.raises(TypeError, match=r"code must not have free variables \(it has \('y',\)\)"):
        api.exec_code_module(name, outer().__code__)
    assert name not in sys.modules


def test_non_str_name_c_half_fails_core_refuses():
    with pytest.raises(AttributeError, match="rpartition"):
        capi.exec_code_module_object(987654321, X)
    assert sys.modules.pop(987654321).__name__ == 987654321  # C left it behind

    with pytest.raises(TypeError, match=r"^name must be a str, not int$"):
        ipyexecmod.exec_code_module_object(987654321, X)
    assert 987654321 not in sys.modules


def test_add_module_object_non_str_name():
    try:
        assert capi.add_module_object(123454321).__name__ == 123454321
    finally:
        sys.modules.pop(123454321, None)
    with pytest.raises(TypeError, match=r"^name must be a str, not int$"):
        ipyexecmod.add_module_object(123454321)
    assert 123454321 not in sys.modules


class Name(str):
    """Its instances are GC-tracked, unlike plain str."""


@pytest.mark.skipif(sys.version_info < (3, 13), reason="the abort is a 3.13 bug")
@pytest.mark.parametrize("bad", [frozenset({"a", "b"}), Name("_dd_str_subclass")], ids=repr)
def test_capi_refuses_gc_tracked_name_that_aborts_313(bad):
    with pytest.raises(
        TypeError, match=r"must be a plain str on Python 3\.13, not (frozenset|Name): C would abort"
    ):
        capi.add_module_object(bad)
    with pytest.raises(TypeError, match="C would abort"):
        capi.exec_code_module_object(bad, X)


@pytest.mark.skipif(sys.version_info < (3, 13), reason="the abort is a 3.13 bug")
def test_capi_lets_c_handle_tracked_names_that_do_not_abort():
    with pytest.raises(TypeError, match=r"^unhashable type: 'list'$"):  # C's own error
        capi.add_module_object(([],))
    key = frozenset({"_dd_existing"})
    sys.modules[key] = module = types.ModuleType("_dd_existing")
    try:
        assert capi.add_module_object(key) is module  # no new module: no abort
    finally:
        del sys.modules[key]


def test_core_takes_str_subclass_names(name):
    module = ipyexecmod.exec_code_module_object(Name(name), X)
    assert sys.modules[name] is module and module.x == 1


@pytest.mark.parametrize(
    ("pathname", "cpathname", "c_error"),
    [
        (PurePosixPath("p.py"), None, AttributeError),
        (b"p.py", None, TypeError),
        ("p.py", PurePosixPath("p.pyc"), AttributeError if sys.version_info >= (3, 12) else None),
    ],
    ids=["pathlike-pathname", "bytes-pathname", "pathlike-cpathname"],
)
def test_object_wrong_path_types(pathname, cpathname, c_error, name):
    if c_error is None:
        capi.exec_code_module_object(name, X, pathname, cpathname)  # 3.11 takes anything
    else:
        with pytest.raises(c_error):
            capi.exec_code_module_object(name, X, pathname, cpathname)
    assert name in sys.modules  # C went ahead: the module is there, half fixed up or not
    del sys.modules[name]

    with pytest.raises(
        TypeError, match=r"^c?pathname must be a str or None, not (PurePosixPath|bytes)$"
    ):
        ipyexecmod.exec_code_module_object(name, X, pathname, cpathname)
    assert name not in sys.modules


@pytest.mark.parametrize("api", [ipyexecmod, capi], ids=["core", "capi"])
@pytest.mark.parametrize(
    ("call", "argname"),
    [
        (lambda api, n: api.exec_code_module(n + "\0tail", X), "name"),
        (lambda api, n: api.add_module(n.encode() + b"\0tail"), "name"),
        (lambda api, n: api.exec_code_module_ex(n, X, "a\0b.py"), "pathname"),
        (lambda api, n: api.exec_code_module_with_pathnames(n, X, None, b"c\0.pyc"), "cpathname"),
    ],
    ids=["exec-name", "add-name", "pathname", "cpathname"],
)
def test_nul_in_c_string_refused(api, call, argname, name):
    with pytest.raises(ValueError, match=f"^{argname} must not contain a NUL character"):
        call(api, name)
    assert name not in sys.modules


def test_nul_in_c_string_is_silently_truncated_by_c(name):
    # What the check above prevents: C stops reading the name at the NUL.
    module = capi._ExecCodeModule(name.encode() + b"\0tail", X)
    assert module.__name__ == name
    assert sys.modules[name] is module


def test_caller_builtins_are_used_like_the_raw_c_function(name):
    custom = dict(vars(builtins), marker=True)
    scope = {"__builtins__": custom, "core": ipyexecmod, "raw": capi._ExecCodeModule, "X": X}
    exec(f"c = raw({(name + '_c').encode()!r}, X)\npy = core.exec_code_module({name!r}, X)", scope)
    assert scope["c"].__builtins__ is custom
    assert scope["py"].__builtins__ is custom
    # The capi wrapper's own frame is what C sees, so it hides the caller's builtins.
    exec(f"w = capi.exec_code_module({(name + '_w')!r}, X)", dict(scope, capi=capi))
    assert sys.modules[name + "_w"].__builtins__ is builtins.__dict__


def test_only_the_core_raises_an_exec_audit_event():
    result = run_python(
        """
        import sys, ipyexecmod
        from ipyexecmod import capi
        events = []
        sys.addaudithook(lambda event, args: event == "exec" and events.append(event))
        code = compile("x = 1", "<t>", "exec")
        capi.exec_code_module("audit_c", code)
        print(len(events), end=" ")
        ipyexecmod.exec_code_module("audit_py", code)
        print(len(events))
        """
    )
    assert result.stdout.split() == ["0", "1"], result


def test_sys_modules_rebound_before_import_is_what_the_core_keeps():
    result = run_python(
        """
        import ctypes, importlib.util, sys, typing  # 3.13's abc fails to import typing otherwise
        original = sys.modules
        sys.modules = dict(original)
        import ipyexecmod
        from ipyexecmod import capi
        print(capi.get_module_dict() is original, ipyexecmod.get_module_dict() is sys.modules)
        """
    )
    assert result.stdout.split() == ["True", "True"], result


def test_add_module_ref_on_every_version(name):
    module = ipyexecmod.add_module_ref(name)
    assert sys.modules[name] is module
    if sys.version_info < (3, 13):
        with pytest.raises(NotImplementedError, match=r"new in CPython 3\.13; use add_module"):
            capi.add_module_ref(name)
    else:
        assert capi.add_module_ref(name) is module


@pytest.mark.parametrize("api", [ipyexecmod, capi], ids=["core", "capi"])
def test_null_name_refused(api):
    with pytest.raises(
        TypeError, match=r"^name must (be a str or bytes, not NoneType|not be None)"
    ):
        api.exec_code_module_object(None, X) if api is capi else api.exec_code_module(None, X)


def test_module_subclass_result_type_is_kept(name):
    class Sub(types.ModuleType):
        pass

    sys.modules[name] = Sub(name)
    assert type(ipyexecmod.exec_code_module(name, X)) is Sub


def test_frame_below_module_code(name):
    code = compile_module("import sys\ncaller = sys._getframe(1).f_code.co_name\n")
    scope = {"raw": capi._ExecCodeModule, "core": ipyexecmod, "X": code}
    c_name = (name + "_c").encode()
    exec(f"def user():\n    raw({c_name!r}, X)\n    core.exec_code_module({name!r}, X)", scope)
    scope["user"]()
    assert sys.modules[name + "_c"].caller == "user"  # C: the frame that called it
    assert sys.modules[name].caller == "_exec_code_module"  # the core's own frame
