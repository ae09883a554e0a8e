"""Property-based breadth: generated module sources, names and paths, core against C."""

from __future__ import annotations

import keyword
import sys
import tempfile
from pathlib import Path

from differential import PREFIX, compile_module, describe, run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ipyexecmod
from ipyexecmod import capi

identifiers = st.from_regex(r"[A-Za-z_À-ÿ][A-Za-z0-9_À-ÿ]{0,8}", fullmatch=True).filter(
    lambda s: s.isidentifier() and not keyword.iskeyword(s)
)
literals = st.one_of(
    st.integers(), st.text(max_size=10), st.booleans(), st.none(), st.floats(allow_nan=False)
)


@st.composite
def module_sources(draw) -> str:
    lines = []
    for _ in range(draw(st.integers(0, 6))):
        ident = draw(identifiers)
        kind = draw(st.sampled_from(["assign", "def", "class", "global-read", "del"]))
        value = repr(draw(literals))
        if kind == "assign":
            lines.append(f"{ident} = {value}")
        elif kind == "def":
            lines.append(f"def {ident}():\n    return {value}")
        elif kind == "class":
            lines.append(f"class {ident}:\n    attr = {value}")
        elif kind == "global-read":
            lines.append(f"seen_{ident} = sorted(k for k in globals() if k.startswith('__'))")
        else:
            lines.append(f"{ident} = 0\ndel {ident}")
    if draw(st.booleans()):
        lines.append(f"raise {draw(st.sampled_from(['ValueError', 'KeyError', 'SystemExit']))}(1)")
    return "\n".join(lines) + "\n"


module_names = st.lists(identifiers, min_size=1, max_size=3).map(lambda parts: ".".join(parts))
paths = st.sampled_from(
    [None, "m.py", "./m.py", "pkg/__init__.py", "m.pyc", "__pycache__/m.cpython-3.pyc", "", "x"]
)
prior_entries = st.sampled_from(["absent", "module", "none", "int"])
functions = st.sampled_from(
    [
        "exec_code_module",
        "exec_code_module_ex",
        "exec_code_module_object",
        "exec_code_module_with_pathnames",
    ]
)


def scenario_for(function, source, prior, pathname, cpathname):
    code = compile_module(source, "<generated>")

    def scenario(api, name, tmp):
        import types

        if prior != "absent":
            sys.modules[name] = {"module": types.ModuleType(name), "none": None, "int": 7}[prior]
        (tmp / "m.py").write_text(source)
        call = getattr(api, function)
        args = {"exec_code_module": (), "exec_code_module_ex": (pathname,)}.get(
            function, (pathname, cpathname)
        )
        try:
            return {"result": describe(call(name, code, *args))}
        except SystemExit as exc:
            return {"exit": str(exc)}

    return scenario


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(functions, module_sources(), module_names, prior_entries, paths, paths)
def test_generated_modules_match_c(function, source, suffix, prior, pathname, cpathname):
    scenario = scenario_for(function, source, prior, pathname, cpathname)
    name = f"{PREFIX}h_{suffix}"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp).resolve()
        assert run(scenario, ipyexecmod, root / "core", name) == run(
            scenario, capi, root / "c", name
        )


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\0"), max_size=12))
def test_add_module_any_text_name_matches_c(suffix):
    name = PREFIX + "t" + suffix
    try:
        c = describe(capi.add_module(name))
        del sys.modules[name]
        assert describe(ipyexecmod.add_module(name)) == c
        assert describe(ipyexecmod.add_module(name.encode())) == c
    finally:
        sys.modules.pop(name, None)
