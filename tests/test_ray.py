"""Cell modules in Ray tasks and actors, on a real local Ray runtime: pickled by value.

One runtime serves the whole module (starting one costs seconds); each ``ray.init``
with ``address="local"`` starts an instance of its own (its own ports and session
directory), so two runs of the suite at once do not meet.
"""

from __future__ import annotations

import sys
import textwrap
import types

import pytest
from helpers import HANG_GUARD, define, restored, run_python

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'ipyexecmod[ray]'")

from ray import cloudpickle  # noqa: E402

import ipyexecmod.ray  # noqa: E402
from ipyexecmod import cells  # noqa: E402

RUNTIME = {"num_cpus": 2, "include_dashboard": False, "log_to_driver": False}


@pytest.fixture(scope="module")
def runtime():
    """A local Ray runtime of this module's own, shut down after its last test."""
    ray.init(address="local", **RUNTIME)
    yield
    ray.shutdown()


@pytest.fixture
def enabled(runtime):
    """:func:`ipyexecmod.ray.enable` in effect for the test (what ``%load_ext`` does)."""
    ipyexecmod.ray.enable()
    yield
    ipyexecmod.ray.disable()


def run(function, *args):
    """``function(*args)`` as a Ray task, its result."""
    return ray.get(ray.remote(function).remote(*args), timeout=HANG_GUARD)


# -- what ipyexecmod relies on in Ray --


def test_ray_pickles_tasks_with_its_cloudpickle_and_honours_its_registry(runtime, unique):
    """Pins Ray's behaviour: a function of a module the workers cannot import fails there,
    and the same function registered by value with ``ray.cloudpickle`` runs."""
    name = unique("pin")
    module = cells.define(name, "def f(x):\n    return ('pin', x)\n")
    assert not ipyexecmod.ray.enabled()
    with pytest.raises(ray.exceptions.RayTaskError, match="failed to import"):
        run(module.f, 1)
    cloudpickle.register_pickle_by_value(module)
    try:
        assert run(module.f, 1) == ("pin", 1)
    finally:
        cloudpickle.unregister_pickle_by_value(module)


# -- the core API --


def test_a_task_runs_the_latest_version_and_an_older_handle_its_own(enabled, unique):
    name = unique("tasks")
    module = cells.define(name, "def f(x):\n    return ('v1', x)\n")
    assert run(module.f, 1) == ("v1", 1)
    old = ray.remote(module.f)
    cells.define(name, "def f(x):\n    return ('v2', x)\n")
    assert run(module.f, 2) == ("v2", 2)
    assert ray.get(old.remote(3), timeout=HANG_GUARD) == ("v1", 3)


def test_an_actor_keeps_its_version_and_one_made_after_runs_the_new(enabled, unique):
    name = unique("actors")
    body = "class Counter:\n    def __init__(self):\n        self.n = 0\n"
    body += "    def add(self):\n        self.n += {step}\n        return ({version!r}, self.n)\n"
    module = cells.define(name, body.format(step=1, version="v1"))
    before = ray.remote(module.Counter).remote()
    cells.define(name, body.format(step=10, version="v2"))
    after = ray.remote(module.Counter).remote()  # a new worker process: a late one
    assert ray.get([before.add.remote(), after.add.remote()], timeout=HANG_GUARD) == [
        ("v1", 1),
        ("v2", 10),
    ]


def test_instances_go_as_arguments_and_come_back_as_the_kernels_class(enabled, unique):
    name = unique("instances")
    body = "class Point:\n    def __init__(self, x):\n        self.x = x\n"
    body += "def double(p):\n    return Point(p.x * 2)\n"
    module = cells.define(name, body)
    result = run(module.double, module.Point(21))
    assert isinstance(result, module.Point)
    assert result.x == 42


def test_a_package_is_registered_once_for_its_submodules(enabled, unique):
    top = unique("pkg")
    cells.define(top, "")
    sub = cells.define(f"{top}.sub", "def f():\n    return __name__\n")
    assert top in ipyexecmod.ray.registered()
    assert f"{top}.sub" not in ipyexecmod.ray.registered()
    assert run(sub.f) == f"{top}.sub"


def test_a_failing_redefinition_leaves_the_previous_version_running(enabled, unique):
    name = unique("failing")
    module = cells.define(name, "def f():\n    return 'v1'\n")
    with pytest.raises(ZeroDivisionError):
        cells.define(name, "def f():\n    return 'v2'\n1 / 0\n")
    assert module.f() == "v1"
    assert run(module.f) == "v1"


def test_a_name_that_hides_another_module_hides_nothing_on_the_workers(enabled):
    """A cell module named as a module the workers have (``force``) goes by value too: the
    task runs the cell's code, and the workers' ``import colorsys`` is still the stdlib's."""
    assert "colorsys" not in sys.modules
    module = cells.define("colorsys", "def f():\n    return 'cell'\n", force=True)
    try:
        assert cells.finder.hides("colorsys") is not None
        assert "colorsys" in ipyexecmod.ray.registered()

        def stdlib_has_rgb():
            import importlib

            return hasattr(importlib.import_module("colorsys"), "rgb_to_hsv")

        assert run(stdlib_has_rgb) is True
        assert run(module.f) == "cell"
    finally:
        del sys.modules["colorsys"]


def test_a_module_restored_from_a_lasting_directory_is_registered_as_it_is_imported(
    enabled, unique, restoring
):
    source = "def f(x):\n    return ('restored', x)\n"
    module = restored(unique("restored"), source, restoring)
    assert run(module.f, 1) == ("restored", 1)


def test_disable_unregisters_only_what_enable_registered(runtime, unique):
    mine = types.ModuleType(unique("mine"))
    sys.modules[mine.__name__] = mine
    cloudpickle.register_pickle_by_value(mine)
    ours = unique("ours")
    cells.define(ours, "x = 1\n")
    ipyexecmod.ray.enable()
    assert ours in cloudpickle.list_registry_pickle_by_value()
    ipyexecmod.ray.disable()
    registry = cloudpickle.list_registry_pickle_by_value()
    assert ours not in registry
    assert mine.__name__ in registry
    cloudpickle.unregister_pickle_by_value(mine)


# -- the magics --


def test_the_magics_path_dependents_come_along(ip, runtime, unique):
    sa, sb = unique("sa"), unique("sb")
    define(ip, sa, "def f(x):\n    return ('v1', x)\n")
    b = define(ip, sb, f"from {sa} import f\ndef g(x):\n    return f(x)\n")
    assert run(b.g, 1) == ("v1", 1)
    define(ip, sa, "def f(x):\n    return ('v2', x)\n")
    assert run(b.g, 2) == ("v2", 2)


def test_unload_ext_unregisters_and_load_ext_registers_again(ip, runtime, unique):
    name = unique("unload")
    define(ip, name, "x = 1\n")
    assert name in cloudpickle.list_registry_pickle_by_value()
    ip.run_line_magic("unload_ext", "ipyexecmod")
    assert name not in cloudpickle.list_registry_pickle_by_value()
    assert not ipyexecmod.ray.enabled()
    ip.run_line_magic("load_ext", "ipyexecmod")
    assert name in cloudpickle.list_registry_pickle_by_value()


# -- the first import of Ray --


def test_a_cell_that_first_imports_ray_runs_an_earlier_cell_module():
    """In one cell: ``import ray``, ``ray.init()``, a task of a cell module defined in an
    earlier cell; in a new process with a real InteractiveShell, where Ray was never
    imported.  Afterwards nothing waits for Ray's import, and Ray's loader is its own."""
    code = f"""
        import sys
        from IPython.core.interactiveshell import InteractiveShell

        shell = InteractiveShell.instance()
        shell.run_line_magic("load_ext", "ipyexecmod")
        shell.run_cell_magic("as_module", "early", "def f(x):\\n    return ('early', x)\\n")
        from ipyexecmod._after_import import hooks
        assert "ray" not in sys.modules and "ray" in hooks.waiting
        result = shell.run_cell('''
        import ray, early
        ray.init(address="local", **{RUNTIME!r})
        print("result", ray.get(ray.remote(early.f).remote(1)))
        ray.shutdown()
        ''')
        result.raise_error()
        import ray
        shell.run_line_magic("unload_ext", "ipyexecmod")
        print("loader", type(ray.__loader__).__name__, type(ray.__spec__.loader).__name__)
        print("waiting", "ray" in hooks.waiting, hooks in sys.meta_path)
    """
    done = run_python(textwrap.dedent(code))
    assert done.returncode == 0, done.stderr
    assert "result ('early', 1)" in done.stdout
    assert "loader SourceFileLoader SourceFileLoader" in done.stdout
    assert "waiting False False" in done.stdout
