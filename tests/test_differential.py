"""The core against the real C functions: same scenario, same observable outcome.

Every scenario runs once through ``ipyexecmod.capi`` (CPython's own
``PyImport_*`` functions, via ctypes) and once through the pure-Python core,
and everything it leaves behind is compared: module attributes in dict order,
spec and loader classes and fields, identities, ``sys.modules`` membership,
the exception raised.  Scenario names follow the reference's section names.
"""

from __future__ import annotations

import contextlib
import importlib.machinery
import importlib.util
import sys
import types
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from differential import PREFIX, Scenario, compile_module, describe, run

import ipyexecmod
from ipyexecmod import capi

SCENARIOS: list[Scenario] = []


def scenario(fn: Scenario) -> Scenario:
    SCENARIOS.append(fn)
    return fn


def existing(name: str, cls: type[types.ModuleType] = types.ModuleType, **attrs: Any) -> Any:
    module = cls(name)
    vars(module).update(attrs)
    sys.modules[name] = module
    return module


class BareLoader:
    """A loader with neither is_package nor get_filename."""

    def exec_module(self, module: types.ModuleType) -> None:  # pragma: no cover
        pass


@contextlib.contextmanager
def sys_modules_rebound() -> Iterator[dict[str, Any]]:
    """Rebind ``sys.modules`` to a copy (unsupported, gh-126038); yield the original."""
    original = sys.modules
    sys.modules = dict(original)
    try:
        yield original
    finally:
        sys.modules = original


X = compile_module("x = 1\n")


# -- PyImport_ExecCodeModule: get-or-create, __builtins__, exec, re-fetch -------


@scenario
def exec_new_module(api, name, tmp):
    m = api.exec_code_module(name, X)
    return {"module": describe(m), "is entry": m is sys.modules[name]}


@scenario
def exec_existing_module_reused_dict_kept(api, name, tmp):
    pre = existing(name, old=41)
    d = pre.__dict__
    m = api.exec_code_module(name, compile_module("x = old + 1\n"))
    return {"same object": m is pre, "same dict": m.__dict__ is d, "x": m.x}


@scenario
def exec_module_subclass_entry_reused(api, name, tmp):
    class Sub(types.ModuleType):
        pass

    pre = existing(name, Sub)
    return {"same object": api.exec_code_module(name, X) is pre}


@scenario
def exec_int_entry_replaced(api, name, tmp):
    sys.modules[name] = 42
    return {"module": describe(api.exec_code_module(name, X))}


@scenario
def exec_none_entry_replaced(api, name, tmp):
    sys.modules[name] = None
    return {"module": describe(api.exec_code_module(name, X))}


@scenario
def exec_preexisting_builtins_kept(api, name, tmp):
    custom = {"len": lambda obj: 42, "marker": True}
    existing(name, __builtins__=custom)
    m = api.exec_code_module(name, compile_module("n = len('abc')\n"))
    return {"n": m.n, "builtins kept": m.__builtins__ is custom}


@scenario
def exec_builtins_module_kept(api, name, tmp):
    import builtins

    existing(name, __builtins__=builtins)
    return {"kept": api.exec_code_module(name, X).__builtins__ is builtins}


@scenario
def exec_error_new_module_removed(api, name, tmp):
    holder = existing(name + "_holder")
    code = compile_module(
        f"import sys\nsys.modules[{name + '_holder'!r}].box = sys.modules[__name__]\n"
        "a = 1\nraise ValueError('boom')\n"
    )
    with pytest.raises(ValueError, match="boom") as info:
        api.exec_code_module(name, code)
    return {
        "detached": describe(holder.box),
        "in sys.modules": name in sys.modules,
        "error": str(info.value),
    }


@scenario
def exec_error_existing_module_removed(api, name, tmp):
    pre = existing(name, old=1)
    with pytest.raises(ZeroDivisionError):
        api.exec_code_module(name, compile_module("a = 1\n1 / 0\n"))
    return {"partial": describe(pre), "in sys.modules": name in sys.modules}


@scenario
def exec_base_exception_removes_module(api, name, tmp):
    try:
        api.exec_code_module(name, compile_module("raise KeyboardInterrupt('stop')\n"))
    except KeyboardInterrupt as exc:
        return {"raised": str(exc), "in sys.modules": name in sys.modules}
    raise AssertionError("KeyboardInterrupt did not propagate")


@scenario
def exec_error_removes_whatever_the_code_put_there(api, name, tmp):
    code = compile_module("import sys\nsys.modules[__name__] = 'other'\nraise OSError(5, 'x')\n")
    with pytest.raises(OSError):
        api.exec_code_module(name, code)
    return {"in sys.modules": name in sys.modules}


@scenario
def exec_code_deletes_own_entry(api, name, tmp):
    api.exec_code_module(name, compile_module("import sys\ndel sys.modules[__name__]\n"))
    return {}


@scenario
def exec_code_replaces_own_entry(api, name, tmp):
    code = compile_module("import sys, types\nsys.modules[__name__] = types.SimpleNamespace(t=1)\n")
    return {"result": describe(api.exec_code_module(name, code))}


@scenario
def exec_self_import_during_exec(api, name, tmp):
    code = compile_module(f"import sys\nimport {name} as me\nsame = me is sys.modules[__name__]\n")
    m = api.exec_code_module(name, code)
    return {"same": m.same, "initializing": hasattr(m.__spec__, "_initializing")}


@scenario
def exec_attributes_visible_during_exec(api, name, tmp):
    code = compile_module(
        "seen = list(globals())\nf = __file__\nc = __cached__\no = __spec__.origin\n"
        "l = type(__loader__).__name__\np = __package__\n"
    )
    m = api.exec_code_module_object(name, code, "vis.py", "vis.pyc")
    return {k: getattr(m, k) for k in ("seen", "f", "c", "o", "l", "p")}


@scenario
def exec_dotted_name_parent_missing(api, name, tmp):
    api.exec_code_module(name + ".child", X)
    return {"parent": name in sys.modules}


@scenario
def exec_dotted_name_parent_present_not_bound(api, name, tmp):
    parent = existing(name)
    api.exec_code_module(name + ".child", X)
    return {"bound": hasattr(parent, "child")}


@scenario
def exec_empty_name(api, name, tmp):
    try:
        m = api.exec_code_module("", X)
        return {"module": describe(m), "in": "" in sys.modules}
    finally:
        sys.modules.pop("", None)


@scenario
def exec_bytes_name(api, name, tmp):
    return {"name": api.exec_code_module(name.encode(), X).__name__}


@scenario
def exec_non_ascii_utf8_name(api, name, tmp):
    return {"name": api.exec_code_module((name + "_été").encode(), X).__name__}


@scenario
def exec_invalid_utf8_name(api, name, tmp):
    api.exec_code_module(name.encode() + b"\xff", X)
    return {}


@scenario
def exec_sys_modules_rebound(api, name, tmp):
    with sys_modules_rebound() as original:
        m = api.exec_code_module(name, X)
        rebound = name in sys.modules
    return {"in original": original.get(name) is m, "in rebound": rebound}


@scenario
def exec_no_warnings_emitted(api, name, tmp):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        api.exec_code_module_ex(name, X, "w.pyc")
    return {"warnings": [str(w.message) for w in caught]}


@scenario
def exec_reused_module_name_not_updated(api, name, tmp):
    existing(name).__name__ = "something.else"
    m = api.exec_code_module(name, X)
    return {"__name__": m.__name__, "spec name": m.__spec__.name}


@scenario
def exec_twice_accumulates(api, name, tmp):
    api.exec_code_module(name, compile_module("a = 1\n"))
    m = api.exec_code_module(name, compile_module("b = a + 1\n"))
    return {"module": describe(m)}


@scenario
def exec_code_defines_functions_and_classes(api, name, tmp):
    code = compile_module("def f():\n    return 7\nclass C:\n    y = 2\n", "cellsrc.py")
    m = api.exec_code_module(name, code)
    return {"f()": m.f(), "C.__module__": m.C.__module__, "f.__module__": m.f.__module__}


# -- the loader/spec fix-up (_fix_up_module) -----------------------------------


@scenario
def fixup_existing_loader_only(api, name, tmp):
    loader = BareLoader()
    existing(name, __loader__=loader)
    m = api.exec_code_module_ex(name, X, "lo.py")
    return {
        "loader kept": m.__loader__ is loader,
        "spec loader": m.__spec__.loader is loader,
        "module": describe(m),
    }


@scenario
def fixup_existing_source_text_loader_reaches_spec(api, name, tmp):
    loader = ipyexecmod.SourceTextLoader(name, "x = 1\n", is_package=True)
    existing(name, __loader__=loader)
    m = api.exec_code_module_object(name, loader.get_code(name))
    return {"spec loader": m.__spec__.loader is loader, "module": describe(m)}


@scenario
def fixup_existing_spec_only(api, name, tmp):
    loader = BareLoader()
    spec = importlib.machinery.ModuleSpec(name, loader, origin="custom-origin")
    existing(name, __spec__=spec)
    m = api.exec_code_module_ex(name, X, "so.py")
    return {
        "spec kept": m.__spec__ is spec,
        "loader from spec": m.__loader__ is loader,
        "module": describe(m),
    }


@scenario
def fixup_existing_spec_without_loader(api, name, tmp):
    existing(name, __spec__=importlib.machinery.ModuleSpec(name, None))
    return {"module": describe(api.exec_code_module_ex(name, X, "sw.py"))}


@scenario
def fixup_existing_loader_and_spec_kept(api, name, tmp):
    loader = BareLoader()
    spec = importlib.machinery.ModuleSpec(name, loader, origin="custom-origin")
    existing(name, __loader__=loader, __spec__=spec, __file__="orig.py", __cached__="orig.pyc")
    m = api.exec_code_module_ex(name, X, "new.py")
    return {"same": (m.__loader__ is loader, m.__spec__ is spec), "module": describe(m)}


@scenario
def fixup_falsy_loader_and_spec_replaced(api, name, tmp):
    existing(name, __loader__=0, __spec__="")
    return {"module": describe(api.exec_code_module_ex(name, X, "fz.py"))}


@scenario
def fixup_spec_goes_stale_on_second_exec(api, name, tmp):
    api.exec_code_module_ex(name, X, "first.py")
    return {"module": describe(api.exec_code_module_ex(name, X, "second.py"))}


@scenario
def fixup_truthy_non_spec_object(api, name, tmp):
    existing(name, __spec__="not a spec")
    api.exec_code_module_ex(name, X, "ns.py")
    return {}


class Impostor:
    """Claims to be a module through ``__class__``; PyModule_Check() is not fooled."""

    @property
    def __class__(self):
        return types.ModuleType


@scenario
def exec_spoofed_module_entry_replaced(api, name, tmp):
    sys.modules[name] = Impostor()
    return {"result": describe(api.exec_code_module(name, X))}


@scenario
def add_spoofed_module_entry_replaced(api, name, tmp):
    sys.modules[name] = Impostor()
    return {"result": describe(api.add_module_object(name))}


@scenario
def exec_uses_the_real_module_dict(api, name, tmp):
    class Hiding(types.ModuleType):
        @property
        def __dict__(self):
            return {}

    module = existing(name, Hiding)
    api.exec_code_module_ex(name, X, "hid.py")
    real = types.ModuleType.__dict__["__dict__"].__get__(module)
    return {"x": real.get("x"), "file": real.get("__file__")}


class Name(str):
    pass


@scenario
def str_subclass_name_reaches_c_as_plain_str(api, name, tmp):
    m = api.exec_code_module(Name(name), X)
    key = next(k for k in sys.modules if k == name)
    return {"types": [type(m.__name__).__name__, type(key).__name__, type(m.__file__).__name__]}


@scenario
def lone_surrogate_name_cannot_reach_c(api, name, tmp):
    api.add_module(name + "\ud800")
    return {}


@scenario
def lone_surrogate_path_cannot_reach_c(api, name, tmp):
    api.exec_code_module_ex(name, X, "p\ud800.py")
    return {}


@scenario
def surrogateescape_path_reaches_c(api, name, tmp):
    return {"module": describe(api.exec_code_module_ex(name, X, "p\udcff.py"))}


@scenario
def wp_source_lookup_error_swallowed(api, name, tmp):
    old, sys.pycache_prefix = sys.pycache_prefix, 5  # makes source_from_cache() raise TypeError
    try:
        cpath = f"__pycache__/q.{sys.implementation.cache_tag}.pyc"
        m = api.exec_code_module_with_pathnames(name, X, None, cpath)
    finally:
        sys.pycache_prefix = old
    return {"module": describe(m)}


# -- PyImport_ExecCodeModuleEx: pathname ----------------------------------------


# (scenario, pathname): what becomes __file__, spec origin, loader path and package-ness.
PATHNAMES = [
    ("relative_pathname", "relmod.py"),
    ("dot_slash_pathname", "./dotmod.py"),
    ("dot_dot_pathname_not_normalised", "a/../b/dd.py"),
    ("pyc_pathname_still_source_loader", "compiled.pyc"),
    ("init_py_pathname_is_package_without___path__", "pkg/__init__.py"),
    ("bytes_pathname", "bytes_été.py".encode()),
    ("undecodable_bytes_pathname", b"bad\xffname.py"),
    ("empty_pathname", b""),
]


def pathname_scenario(label: str, pathname: str | bytes) -> Scenario:
    def scenario(api, name, tmp):
        return {"module": describe(api.exec_code_module_ex(name, X, pathname))}

    scenario.__name__ = f"ex_{label}"
    return scenario


SCENARIOS.extend(pathname_scenario(*case) for case in PATHNAMES)


@scenario
def ex_null_pathname_uses_co_filename(api, name, tmp):
    return {"module": describe(api.exec_code_module_ex(name, compile_module("x = 1", "<cell>")))}


@scenario
def ex_absolute_pathname(api, name, tmp):
    return {"module": describe(api.exec_code_module_ex(name, X, str(tmp / "abs.py")))}


@scenario
def ex_init_py_pathname_for_name_ending___init__(api, name, tmp):
    m = api.exec_code_module_ex(name + ".__init__", X, "pkg/__init__.py")
    return {"module": describe(m)}


# -- PyImport_ExecCodeModuleObject: pathname and cpathname ----------------------


@scenario
def object_pathname_and_cpathname(api, name, tmp):
    m = api.exec_code_module_object(name, X, "objmod.py", "elsewhere/objmod.pyc")
    return {"module": describe(m)}


@scenario
def object_equal_paths_sourceless_loader(api, name, tmp):
    return {"module": describe(api.exec_code_module_object(name, X, "same.pyc", "same.pyc"))}


@scenario
def object_null_pathname_with_cpathname(api, name, tmp):
    return {"module": describe(api.exec_code_module_object(name, X, None, "only.pyc"))}


@scenario
def object_null_pathname_cpathname_equals_co_filename(api, name, tmp):
    return {"module": describe(api.exec_code_module_object(name, X, None, "<test>"))}


@scenario
def object_dot_slash_cpathname(api, name, tmp):
    return {"module": describe(api.exec_code_module_object(name, X, "d.py", "./c/./d.pyc"))}


@scenario
def object_absolute_cpathname(api, name, tmp):
    m = api.exec_code_module_object(name, X, "a.py", str(tmp / "cache" / "a.pyc"))
    return {"module": describe(m)}


@scenario
def object_name_with_nul(api, name, tmp):
    return {"module": describe(api.exec_code_module_object(name + "\0z", X))}


@scenario
def object_non_ascii_paths(api, name, tmp):
    return {"module": describe(api.exec_code_module_object(name, X, "π.py", "π.pyc"))}


# -- PyImport_ExecCodeModuleWithPathnames: source path from a cache path --------


def source_file(tmp: Path, relative: str) -> Path:
    path = tmp / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x = 1\n")
    return path


@scenario
def wp_pep3147_source_exists(api, name, tmp):
    cpath = importlib.util.cache_from_source(str(source_file(tmp, "pkgdir/mod.py")))
    return {"module": describe(api.exec_code_module_with_pathnames(name, X, None, cpath))}


@scenario
def wp_pep3147_source_missing(api, name, tmp):
    cpath = importlib.util.cache_from_source(str(tmp / "gone.py"))
    return {"module": describe(api.exec_code_module_with_pathnames(name, X, None, cpath))}


@scenario
def wp_pep3147_optimized_source_exists(api, name, tmp):
    cpath = importlib.util.cache_from_source(str(source_file(tmp, "o.py")), optimization=2)
    return {"module": describe(api.exec_code_module_with_pathnames(name, X, None, cpath))}


@scenario
def wp_relative_pep3147_source_exists(api, name, tmp):
    source_file(tmp, "rel.py")
    cpath = importlib.util.cache_from_source("rel.py")
    return {"module": describe(api.exec_code_module_with_pathnames(name, X, None, cpath))}


# (scenario, source file made first or None, cpathname): the source path derived from it.
CPATHNAMES = [
    ("legacy_pyc_source_exists", "leg.py", "leg.pyc"),
    ("legacy_pyc_source_missing", None, "nosrc.pyc"),
    ("legacy_pyo_source_exists", "old.py", "old.pyo"),
    ("uppercase_pyc_extension", "UP.PY", "UP.PYC"),
    ("cpathname_without_dot", None, "pathname"),
    ("cpathname_not_py_extension", None, "data.bin"),
    ("cpathname_dot_py_returned_as_is", "x.py", "x.py"),
]


def cpathname_scenario(label: str, source: str | None, cpathname: str) -> Scenario:
    def scenario(api, name, tmp):
        if source is not None:
            source_file(tmp, source)
        return {"module": describe(api.exec_code_module_with_pathnames(name, X, None, cpathname))}

    scenario.__name__ = f"wp_{label}"
    return scenario


SCENARIOS.extend(cpathname_scenario(*case) for case in CPATHNAMES)


@scenario
def wp_source_path_is_a_directory(api, name, tmp):
    (tmp / "isdir.py").mkdir()
    cpath = importlib.util.cache_from_source(str(tmp / "isdir.py"))
    return {"module": describe(api.exec_code_module_with_pathnames(name, X, None, cpath))}


@scenario
def wp_cpathname_empty_leaves_module(api, name, tmp):
    api.exec_code_module_with_pathnames(name, X, None, "")
    return {}


@scenario
def wp_pathname_and_cpathname(api, name, tmp):
    m = api.exec_code_module_with_pathnames(name, X, "given.py", "__pycache__/other.pyc")
    return {"module": describe(m)}


@scenario
def wp_bytes_paths(api, name, tmp):
    source_file(tmp, "bp.py")
    m = api.exec_code_module_with_pathnames(name.encode(), X, None, b"bp.pyc")
    return {"module": describe(m)}


@scenario
def wp_pycache_prefix_honoured(api, name, tmp):
    source = source_file(tmp, "pp.py")
    old, sys.pycache_prefix = sys.pycache_prefix, str(tmp / "prefix")
    try:
        cpath = importlib.util.cache_from_source(str(source))
        m = api.exec_code_module_with_pathnames(name, X, None, cpath)
    finally:
        sys.pycache_prefix = old
    return {"module": describe(m)}


@scenario
def wp_error_still_removes_module(api, name, tmp):
    source_file(tmp, "e.py")
    with pytest.raises(NameError, match="undefined_name"):
        api.exec_code_module_with_pathnames(name, compile_module("undefined_name"), None, "e.pyc")
    return {"in sys.modules": name in sys.modules}


# -- PyImport_AddModule, AddModuleObject, AddModuleRef ---------------------------


@scenario
def add_new_module(api, name, tmp):
    return {"module": describe(api.add_module(name))}


@scenario
def add_existing_module_identity(api, name, tmp):
    pre = existing(name, attr=1)
    return {"same": api.add_module(name) is pre, "module": describe(pre)}


@scenario
def add_module_subclass_kept(api, name, tmp):
    class Sub(types.ModuleType):
        pass

    pre = existing(name, Sub)
    return {"same": api.add_module_object(name) is pre}


@scenario
def add_non_module_entry_replaced(api, name, tmp):
    sys.modules[name] = types.SimpleNamespace(a=1)
    return {"module": describe(api.add_module(name))}


@scenario
def add_none_entry_replaced(api, name, tmp):
    sys.modules[name] = None
    return {"module": describe(api.add_module_object(name))}


@scenario
def add_dotted_name_no_parent(api, name, tmp):
    api.add_module(name + ".a.b")
    return {"parents": [k in sys.modules for k in (name, name + ".a")]}


@scenario
def add_bytes_name(api, name, tmp):
    return {"module": describe(api.add_module((name + "_ü").encode()))}


@scenario
def add_invalid_utf8_name(api, name, tmp):
    api.add_module(name.encode() + b"\xc3(")
    return {}


@scenario
def add_object_new_and_existing(api, name, tmp):
    first = api.add_module_object(name)
    return {"same": api.add_module_object(name) is first, "module": describe(first)}


@scenario
def add_object_unicode_name(api, name, tmp):
    return {"module": describe(api.add_module_object(name + "_名前"))}


@scenario
def add_module_does_not_import(api, name, tmp):
    (tmp / f"{name}_real.py").write_text("loaded = True\n")
    sys.path.insert(0, str(tmp))
    try:
        return {"module": describe(api.add_module(f"{name}_real"))}
    finally:
        sys.path.remove(str(tmp))


@scenario
def add_sys_modules_rebound(api, name, tmp):
    with sys_modules_rebound() as original:
        m = api.add_module(name)
        rebound = name in sys.modules
    return {"in original": original.get(name) is m, "in rebound": rebound}


@scenario
def add_module_ref_new_and_existing(api, name, tmp):
    # PyImport_AddModuleRef is new in 3.13; before that, AddModule has the same semantics.
    add = api.add_module if api is capi and sys.version_info < (3, 13) else api.add_module_ref
    first = add(name)
    return {"same": add(name) is first, "module": describe(first)}


# -- magic number, magic tag, module dict ---------------------------------------


@scenario
def magic_number(api, name, tmp):
    return {"value": api.get_magic_number()}


@scenario
def magic_tag(api, name, tmp):
    return {"value": api.get_magic_tag()}


@scenario
def magic_tag_ignores_sys_implementation_mutation(api, name, tmp):
    old = sys.implementation.cache_tag
    sys.implementation.cache_tag = "mutated-99"
    try:
        return {"value": api.get_magic_tag()}
    finally:
        sys.implementation.cache_tag = old


@scenario
def module_dict_is_sys_modules(api, name, tmp):
    return {"is": api.get_module_dict() is sys.modules}


@scenario
def module_dict_after_sys_modules_rebound(api, name, tmp):
    with sys_modules_rebound() as original:
        return {"is original": api.get_module_dict() is original}


# -- the tests --------------------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.__name__ for s in SCENARIOS])
def test_core_matches_c(scenario: Scenario, tmp_path: Path) -> None:
    name = f"{PREFIX}{scenario.__name__}"
    tmp = tmp_path.resolve()
    expected = run(scenario, capi, tmp / "c", name)
    actual = run(scenario, ipyexecmod, tmp / "core", name)
    assert actual == expected


def test_battery_is_large_enough() -> None:
    assert len(SCENARIOS) >= 40


# Facts from the reference, checked on the C side, so that the harness is seen
# to observe what matters (and a broken harness cannot pass by comparing nothing).
FRESH_KEYS = ["__name__", "__doc__", "__package__", "__loader__", "__spec__"]


def module_of(outcome: dict[str, Any], key: str = "module") -> dict[str, Any]:
    kind, _cls, items = outcome[key]
    assert kind == "module"
    return dict(items)


def test_harness_sees_fresh_module_layout(tmp_path: Path) -> None:
    outcome = run(add_new_module, capi, tmp_path / "r", "_diff_fresh")
    assert [k for k, _ in outcome["module"][2]] == FRESH_KEYS


def test_harness_sees_exec_attributes(tmp_path: Path) -> None:
    outcome = run(object_pathname_and_cpathname, capi, tmp_path.resolve() / "r", "_diff_attrs")
    attrs = module_of(outcome)
    assert list(attrs) == [*FRESH_KEYS, "__builtins__", "__file__", "__cached__", "x"]
    assert attrs["__builtins__"] == "<builtins.__dict__>"
    assert (attrs["__file__"], attrs["__cached__"]) == ("objmod.py", "elsewhere/objmod.pyc")
    spec = attrs["__spec__"]
    assert spec[3][:2] == ("loader", "SourceFileLoader")
    assert spec[4] == "<TMP>/objmod.py"
    if sys.version_info >= (3, 12):
        assert spec[5] == "<TMP>/elsewhere/objmod.pyc"
    else:
        assert spec[5] == f"<TMP>/__pycache__/objmod.{sys.implementation.cache_tag}.pyc"


def test_harness_sees_errors_and_removal(tmp_path: Path) -> None:
    outcome = run(exec_code_deletes_own_entry, capi, tmp_path / "r", "_diff_selfdel")
    assert outcome["raised"] == (
        "ImportError",
        "Loaded module '_diff_selfdel' not found in sys.modules",
    )
    outcome = run(wp_cpathname_empty_leaves_module, capi, tmp_path / "s", "_diff_empty")
    assert outcome["raised"][0] == "AttributeError"
    assert list(outcome["left in sys.modules"]) == ["_diff_empty"]
