"""SourceTextLoader: the InspectLoader protocol, driven through the real import system."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import inspect
import linecache
import pickle
import sys
import traceback
import types
from collections.abc import Iterator

import pytest

import ipyexecmod
from ipyexecmod import SourceTextLoader

SOURCE = '''\
"""A module made from text."""
import sys

VERSION = 1


def greet(who):
    return f"hello {who} v{VERSION}"


class Point:
    def __init__(self, x):
        self.x = x


def fail():
    raise RuntimeError("failing on purpose")
'''


class TextFinder(importlib.abc.MetaPathFinder):
    """A finder for the loaders it is given: enough for import_module and reload.

    Its specs have a location (the loader's filename), so modules get ``__file__``,
    which inspect needs to find a class's source.
    """

    def __init__(self) -> None:
        self.loaders: dict[str, SourceTextLoader] = {}

    def find_spec(self, fullname, path=None, target=None):
        loader = self.loaders.get(fullname)
        if loader is None:
            return None
        spec = importlib.util.spec_from_loader(fullname, loader, origin=loader.filename)
        spec.has_location = True
        return spec


@pytest.fixture
def finder() -> Iterator[TextFinder]:
    finder = TextFinder()
    sys.meta_path.insert(0, finder)
    yield finder
    sys.meta_path.remove(finder)
    for name in finder.loaders:
        sys.modules.pop(name, None)


def add(finder: TextFinder, name: str, source: str = SOURCE, **kwargs) -> SourceTextLoader:
    loader = SourceTextLoader(name, source, **kwargs)
    finder.loaders[name] = loader
    return loader


def test_protocol_methods():
    loader = SourceTextLoader("textmod", SOURCE)
    assert loader.get_source("textmod") == SOURCE
    assert loader.is_package("textmod") is False
    assert loader.get_code("textmod") is loader.get_code("textmod")  # compiled once
    assert loader.get_code("textmod").co_filename == "<textmod>"
    assert loader.create_module(importlib.util.spec_from_loader("textmod", loader)) is None
    assert SourceTextLoader("p", "", "<cell p>", is_package=True).is_package("p") is True
    assert repr(loader) == "<SourceTextLoader 'textmod' from '<textmod>'>"


def test_refuses_other_names():
    loader = SourceTextLoader("textmod", SOURCE)
    for method in (loader.get_source, loader.get_code, loader.is_package):
        with pytest.raises(ImportError, match="loader for 'textmod' cannot handle 'other'") as info:
            method("other")
        assert info.value.name == "other"


def test_given_code_is_used_as_is():
    code = compile("x = 2\n", "<given>", "exec")
    assert SourceTextLoader("m", "x = 2\n", "<given>", code=code).get_code("m") is code


def test_syntax_error_changes_nothing():
    loader = SourceTextLoader("textmod", SOURCE, "<cell textmod>")
    code = loader.get_code("textmod")
    with pytest.raises(SyntaxError) as info:
        loader.set_source("x = 1\ndef broken(:\n")
    assert (info.value.filename, info.value.lineno) == ("<cell textmod>", 2)
    assert loader.source == SOURCE
    assert loader.get_code("textmod") is code
    assert linecache.getline("<cell textmod>", 4) == "VERSION = 1\n"


def test_refuses_bytes_source_and_code_for_another_file():
    loader = SourceTextLoader("textmod", SOURCE, "<cell textmod>")
    with pytest.raises(TypeError, match=r"^source must be a str, not bytes; decode it first$"):
        loader.set_source(b"x = 1\n")
    other = compile("x = 1\n", "<elsewhere>", "exec")
    with pytest.raises(
        ValueError, match=r"compiled under '<elsewhere>', not this loader's filename"
    ):
        loader.set_source("x = 1\n", other)
    assert loader.source == SOURCE
    assert linecache.getline("<cell textmod>", 4) == "VERSION = 1\n"  # cache left intact


def test_future_flags_of_the_caller_do_not_leak_in():
    # This test module has no future import but annotations are evaluated eagerly only
    # if compile() did not inherit flags from anywhere.
    namespace: dict = {}
    exec(SourceTextLoader("ann", "def f(x: int): pass\n").get_code("ann"), namespace)
    assert namespace["f"].__annotations__ == {"x": int}


def test_import_reload_inspect_traceback_pickle(finder):
    add(finder, "textmod_a", filename="<cell textmod_a>")
    module = importlib.import_module("textmod_a")
    assert module.greet("you") == "hello you v1"
    assert module.__spec__.loader is finder.loaders["textmod_a"]
    assert inspect.getsource(module.greet).startswith("def greet(who):\n")
    assert inspect.getsource(module.Point).startswith("class Point:\n")
    assert inspect.getsource(module) == SOURCE
    linecache.checkcache()  # what tracebacks do: entries without files must survive
    with pytest.raises(RuntimeError) as info:
        module.fail()
    text = "".join(traceback.format_exception(info.value))
    assert 'File "<cell textmod_a>", line 17, in fail' in text
    assert 'raise RuntimeError("failing on purpose")' in text
    assert pickle.loads(pickle.dumps(module.greet)) is module.greet
    point = pickle.loads(pickle.dumps(module.Point(3)))
    assert (type(point), point.x) == (module.Point, 3)

    finder.loaders["textmod_a"].set_source(SOURCE.replace("VERSION = 1", "VERSION = 2"))
    reloaded = importlib.reload(module)
    assert reloaded is module
    assert module.greet("you") == "hello you v2"
    assert "VERSION = 2" in inspect.getsource(module)


def test_reload_error_keeps_module_as_importlib_does(finder):
    loader = add(finder, "textmod_b")
    module = importlib.import_module("textmod_b")
    loader.set_source("VERSION = 3\nraise ValueError('bad reload')\n")
    with pytest.raises(ValueError, match="bad reload"):
        importlib.reload(module)
    assert sys.modules["textmod_b"] is module
    assert module.VERSION == 3  # the same dict, partly re-executed


def test_package_and_submodule_imports(finder):
    add(finder, "textpkg", "from . import sub\nfrom .sub import VALUE\n", is_package=True)
    add(finder, "textpkg.sub", "VALUE = 'from sub'\n")
    pkg = importlib.import_module("textpkg")
    assert pkg.VALUE == "from sub"
    assert pkg.sub is sys.modules["textpkg.sub"]
    finder.loaders["textpkg.sub"] = finder.loaders.pop("textpkg.sub")  # kept for cleanup
    sys.modules.pop("textpkg.sub")


def test_loader_reaches_the_spec_through_the_core(finder):
    # The path %%as_module takes: loader set on the module, then PyImport_ExecCodeModuleObject.
    loader = add(finder, "textmod_c", filename="<cell textmod_c>")
    module = types.ModuleType("textmod_c")
    module.__loader__ = loader
    sys.modules["textmod_c"] = module
    result = ipyexecmod.exec_code_module_object("textmod_c", loader.get_code("textmod_c"))
    assert result is module
    assert module.__spec__.loader is loader
    assert module.__file__ == "<cell textmod_c>"
    assert inspect.getsource(module.greet).startswith("def greet")
    loader.set_source("VERSION = 9\n")
    assert importlib.reload(module).VERSION == 9
