"""Stale objects of older versions (%modinfo's row stale) and --update-instances, in a real
InteractiveShell."""

from __future__ import annotations

import gc
import sys
import weakref

import pytest
from helpers import define

from ipyexecmod import cells
from ipyexecmod.cells.instances import update_instances
from ipyexecmod.cells.stale import find_stale

V1 = "def f(x):\n    return ('v1', x)\n\n\nclass C:\n    def version(self):\n        return 1\n"
V2 = V1.replace("'v1'", "'v2'").replace("return 1", "return 2")
V3 = V1.replace("'v1'", "'v3'").replace("return 1", "return 3")


@pytest.fixture
def nb(ip):
    """The shell; the notebook names a test binds are removed after it (they hold old
    versions alive)."""
    before = set(ip.user_ns)
    yield ip
    for name in set(ip.user_ns) - before:
        del ip.user_ns[name]


def run(ip, code: str) -> None:
    """Run ``code`` as a cell; what it raises fails the test."""
    ip.run_cell(code).raise_error()


def stale_row(ip, name: str) -> str:
    return str(ip.run_line_magic("modinfo", name)["stale"])


# -- the stale row ---------------------------------------------------------------------------


def test_stale_row_counts_old_instances_and_functions_with_their_notebook_names(nb, unique):
    sa = unique("sa")
    define(nb, sa, V1)
    run(nb, f"import {sa}\nfrom {sa} import f as nb_f\nobj = {sa}.C()\nitems = [{sa}.C()]")
    assert stale_row(nb, sa) == "none"
    nb.run_line_magic("config", "ExecModMagics.rebind_names = False")  # nb_f stays old
    define(nb, sa, V2)
    assert nb.user_ns["nb_f"](1) == ("v1", 1)
    assert not isinstance(nb.user_ns["obj"], sys.modules[sa].C)  # nothing moved by default
    row = stale_row(nb, sa)
    assert row == "2 instances of C (obj, list items); 1 function f (nb_f)"
    del nb.user_ns["nb_f"], nb.user_ns["items"]
    assert stale_row(nb, sa) == "1 instance of C (obj)"


def test_stale_row_names_modules_containers_and_subclasses(nb, unique):
    sa, other = unique("sa"), unique("other")
    define(nb, sa, V1)
    define(
        nb, other, f"from {sa} import f, C\n\n\nclass D(C):\n    pass\n\n\nkept = {{'c': C()}}\n"
    )
    define(nb, sa, V2, "--no-deps")  # other keeps what it took
    row = stale_row(nb, sa)
    assert "1 instance of C (dict)" in row
    assert f"1 function f (module {other})" in row
    assert f"1 class C (module {other}, subclass {other}.D)" in row


def test_a_failed_redefinition_replaces_nothing(nb, unique):
    sa = unique("sa")
    define(nb, sa, V1)
    run(nb, f"obj = {sa}.C()")
    with pytest.raises(ZeroDivisionError):
        define(nb, sa, V2 + "1 / 0\n")
    assert isinstance(nb.user_ns["obj"], sys.modules[sa].C)
    assert stale_row(nb, sa) == "none"


def test_old_versions_are_not_kept_alive(nb, unique):
    sa = unique("sa")
    module = define(nb, sa, V1)
    old_class, old_function = weakref.ref(module.C), weakref.ref(module.f)
    define(nb, sa, V2)
    gc.collect()  # a class is in reference cycles (its __mro__ holds it): only gc frees it
    assert old_class() is None and old_function() is None
    assert cells.finder.modules[sa].replaced.alive() == []


def test_the_core_works_without_ipython(unique):
    sa = unique("sa")
    cells.define(sa, V1)
    notebook = {"obj": sys.modules[sa].C()}
    cells.define(sa, V2)
    assert str(find_stale(cells.finder, sa, notebook)) == "1 instance of C (obj)"
    moved = update_instances(cells.finder, sa)
    assert str(moved) == f"moved 1 instance of {sa}.C to the new version"
    assert notebook["obj"].version() == 2
    assert str(find_stale(cells.finder, sa, notebook)) == "none"


# -- --update-instances ----------------------------------------------------------------------


def test_update_instances_moves_instances_so_isinstance_holds(nb, unique, capsys):
    sa = unique("sa")
    define(nb, sa, V1)
    run(nb, f"obj = {sa}.C()\nobj.data = [1, 2]")
    define(nb, sa, V2, "--update-instances")
    obj = nb.user_ns["obj"]
    assert isinstance(obj, sys.modules[sa].C)
    assert obj.version() == 2 and obj.data == [1, 2]
    assert capsys.readouterr().out == f"moved 1 instance of {sa}.C to the new version\n"
    assert stale_row(nb, sa) == "none"


def test_instances_of_any_earlier_version_move(nb, unique):
    sa = unique("sa")
    define(nb, sa, V1)
    run(nb, f"first = {sa}.C()")
    define(nb, sa, V2)
    run(nb, f"second = {sa}.C()")
    define(nb, sa, V3, "--update-instances")
    for name in ("first", "second"):
        assert isinstance(nb.user_ns[name], sys.modules[sa].C)
        assert nb.user_ns[name].version() == 3


def test_nested_classes_move_too(nb, unique):
    sa = unique("sa")
    body = "class C:\n    class Inner:\n        v = {}\n"
    define(nb, sa, body.format(1))
    run(nb, f"inner = {sa}.C.Inner()")
    define(nb, sa, body.format(2), "--update-instances")
    assert type(nb.user_ns["inner"]) is sys.modules[sa].C.Inner


def test_the_trait_moves_instances_on_every_redefinition(nb, unique, capsys):
    sa = unique("sa")
    define(nb, sa, V1)
    run(nb, f"obj = {sa}.C()")
    define(nb, sa, V2)
    assert not isinstance(nb.user_ns["obj"], sys.modules[sa].C)
    nb.run_line_magic("config", "ExecModMagics.update_instances = True")
    define(nb, sa, V3)
    assert nb.user_ns["obj"].version() == 3
    assert "moved 1 instance" in capsys.readouterr().out


def test_nothing_to_move_prints_nothing(nb, unique, capsys):
    sa = unique("sa")
    define(nb, sa, V1)
    define(nb, sa, V2, "--update-instances")
    assert capsys.readouterr().out == ""


def test_a_layout_mismatch_stays_and_the_row_says_why(nb, unique, capsys):
    sa = unique("sa")
    define(nb, sa, "class S:\n    __slots__ = ('a',)\n")
    run(nb, f"s = {sa}.S()")
    define(nb, sa, "class S:\n    __slots__ = ('a', 'b')\n", "--update-instances")
    assert type(nb.user_ns["s"]) is not sys.modules[sa].S
    reason = (
        "its instances' layout changed (__slots__, or a built-in base): "
        "__class__ assignment: 'S' object layout differs from 'S'"
    )
    out = capsys.readouterr().out
    assert out == f"left 1 instance of {sa}.S ({reason}) (see %modinfo {sa})\n"
    assert stale_row(nb, sa) == f"1 instance of S (s) not moved: {reason}"


def test_instances_of_a_class_that_is_gone_stay(nb, unique, capsys):
    # A module is executed again in its own namespace (as importlib.reload does): a class
    # the new source does not define is still there, unless the code takes its name away.
    sa = unique("sa")
    define(nb, sa, V1 + "\n\nclass Gone:\n    pass\n\n\nclass Renamed:\n    pass\n")
    run(nb, f"g = {sa}.Gone()\nr = {sa}.Renamed()\nobj = {sa}.C()")
    define(nb, sa, V2 + "del Gone\nRenamed = 'a str now'\n", "--update-instances")
    out = capsys.readouterr().out
    assert out == (
        f"moved 1 instance of {sa}.C to the new version; left 1 instance of {sa}.Gone "
        f"({sa} no longer defines Gone); 1 instance of {sa}.Renamed ({sa} no longer has a "
        f"class named Renamed) (see %modinfo {sa})\n"
    )
    assert stale_row(nb, sa) == (
        f"1 instance of Gone (g) not moved: {sa} no longer defines Gone; "
        f"1 instance of Renamed (r) not moved: {sa} no longer has a class named Renamed"
    )


# -- the decisions: enums, dataclasses, __init_subclass__, singledispatch -------------------


def test_enum_members_are_not_moved(nb, unique, capsys):
    sa = unique("sa")
    body = "import enum\n\n\nclass Color(enum.Enum):\n    RED = 1\n    BLUE = {}\n"
    define(nb, sa, body.format(2))
    run(nb, f"color = {sa}.Color.RED")
    capsys.readouterr()
    define(nb, sa, body.format(3), "--update-instances")
    assert capsys.readouterr().out == ""  # members are counted where they are held: below
    new = sys.modules[sa].Color
    assert not isinstance(nb.user_ns["color"], new)
    assert new[nb.user_ns["color"].name] is new.RED  # what the reason tells the user to do
    reason = f"enum members are not moved: use {sa}.Color[member.name]"
    # The old enum's other member is held by the old enum only: not counted.
    assert stale_row(nb, sa) == f"1 instance of Color (color) not moved: {reason}"


def test_frozen_dataclasses_move_when_their_fields_are_the_same(nb, unique):
    sa = unique("sa")
    body = (
        "from dataclasses import dataclass\n\n\n@dataclass(frozen=True)\n"
        "class P:\n    x: int\n{}\n    def version(self):\n        return {}\n"
    )
    define(nb, sa, body.format("", 1))
    run(nb, f"p = {sa}.P(1)\nq = {sa}.P(2)")
    define(nb, sa, body.format("", 2), "--update-instances")
    run(nb, f"assert isinstance(p, {sa}.P) and p.version() == 2")
    run(nb, f"assert p == {sa}.P(1)")  # the new __eq__ compares it as one of its own
    define(nb, sa, body.format("    y: int = 0", 3), "--update-instances")
    run(nb, "assert p.version() == 2")  # fields changed: the new methods would read a missing y
    # (No local variable of this test holds p: on 3.11 and 3.12 a frame's locals dict would.)
    assert (
        stale_row(nb, sa)
        == "2 instances of P (p, q) not moved: its fields changed from (x) to (x, y)"
    )


def test_init_subclass_registries_keep_their_old_entries(nb, unique):
    reg, sa = unique("reg"), unique("sa")
    define(
        nb,
        reg,
        "class Plugin:\n    registry = []\n\n"
        "    def __init_subclass__(cls, **kwargs):\n"
        "        super().__init_subclass__(**kwargs)\n"
        "        Plugin.registry.append(cls)\n",
    )
    body = (
        f"from {reg} import Plugin\n\n\nclass P(Plugin):\n    def run(self):\n        return {{}}\n"
    )
    define(nb, sa, body.format(1))
    run(nb, f"obj = {sa}.P()")
    define(nb, sa, body.format(2), "--update-instances")
    registry = sys.modules[reg].Plugin.registry
    assert len(registry) == 2 and registry[1] is sys.modules[sa].P  # the re-run registered it
    assert nb.user_ns["obj"].run() == 2
    # The old entry is not removed (the registry is the other module's): it is reported.
    assert stale_row(nb, sa) == "1 class P (list)"


def test_singledispatch_in_the_module_itself_dispatches_moved_instances_anew(nb, unique):
    sa = unique("sa")
    body = (
        "from functools import singledispatch\n\n\nclass C:\n    pass\n\n\n"
        "@singledispatch\ndef show(x):\n    return 'default'\n\n\n"
        "@show.register\ndef _(x: C):\n    return {!r}\n"
    )
    define(nb, sa, body.format("v1"))
    run(nb, f"obj = {sa}.C()")
    define(nb, sa, body.format("v2"), "--update-instances")
    assert sys.modules[sa].show(nb.user_ns["obj"]) == "v2"
    assert stale_row(nb, sa) == "none"  # the old dispatcher went with the old version


def test_singledispatch_elsewhere_keeps_the_old_registration_and_reports_it(nb, unique):
    fmt, sa = unique("fmt"), unique("sa")
    define(
        nb,
        fmt,
        "from functools import singledispatch\n\n\n"
        "@singledispatch\ndef show(x):\n    return 'default'\n",
    )
    registering = f"\n\n@{fmt}.show.register(C)\ndef _(x):\n    return 'v1'\n"
    body = f"import {fmt}\n\n\nclass C:\n    pass\n"
    define(nb, sa, body + registering)
    run(nb, f"obj = {sa}.C()")
    define(nb, sa, body, "--update-instances")  # no longer registers C
    show = sys.modules[fmt].show
    assert show(nb.user_ns["obj"]) == "default"  # it dispatches on its new class
    assert stale_row(nb, sa) == "1 class C (dict)"  # a key of the dispatcher's registry
    define(nb, sa, body + registering.replace("v1", "v2"), "--update-instances")
    assert show(nb.user_ns["obj"]) == "v2"


def test_update_instances_moves_those_of_the_dependents_run_again_too(nb, unique):
    sa, sb = unique("sa"), unique("sb")
    define(nb, sa, V1)
    define(nb, sb, f"import {sa}\n\n\nclass K:\n    pass\n")
    run(nb, f"k = {sb}.K()")
    define(nb, sa, V2, "--update-instances")
    assert isinstance(nb.user_ns["k"], sys.modules[sb].K)
