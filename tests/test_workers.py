"""Cell modules in worker processes (issue 16): real pools, real processes, no mocks.

Each start method (spawn, forkserver, fork) with ``concurrent.futures`` and
``multiprocessing.Pool``, and joblib's default backend (loky, whose workers live on
between calls): a pool made before a redefinition runs the new version at its next task;
a task already running finishes with the one it started with; a module kept in memory
only gives the caller an ImportError that says so, and the pool lives on.

Pools are shared by the tests of this module (two workers each, made once: spawning a
worker takes a third of a second), and every task that must reach both workers waits on
a barrier with the other one, so that each worker provably holds the old version before
a redefinition.  Nothing sleeps: a task that must still be running waits on an event
that the test sets; :data:`HANG_GUARD` only catches a hang.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import importlib
import importlib.util
import json
import marshal
import multiprocessing
import os
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import joblib
import pytest
from helpers import HANG_GUARD, define, run_python
from IPython.core.error import UsageError

from ipyexecmod import cells
from ipyexecmod.lasting import lasting_store
from ipyexecmod.pyc import hash_pyc
from ipyexecmod.store import kernel_store

# Fork pools fork a process that runs threads (the pools' own): Python 3.12+ warns of it.
pytestmark = pytest.mark.filterwarnings(
    "ignore:This process .* is multi-threaded, use of fork:DeprecationWarning"
)

SA = """\
import os

VERSION = {version}


def f():
    return VERSION


def warm(barrier, *calls):
    barrier.wait({guard})
    return (os.getpid(), VERSION, *[call() for call in calls])


class Point:
    def __init__(self, x):
        self.x = x
        self.made_by = VERSION

    def value(self):
        return VERSION, self.x


def make(x):
    return Point(x)


def value_of(point):
    return point.value()


def hold(started, go):
    started.set()
    go.wait({guard})
    import {name} as again

    return VERSION, f(), again.VERSION, again.f()
"""

SB = """\
import os

from {sa} import f, make


def g():
    return f()


def probe(barrier, point):
    barrier.wait({guard})
    return os.getpid(), g(), point.value(), make(point.x + 1)
"""

MEMORY_ONLY = "kept in the memory of the kernel"


def sa_body(name: str, version: int) -> str:
    return SA.format(name=name, version=version, guard=HANG_GUARD)


def sb_body(sa: str) -> str:
    return SB.format(sa=sa, guard=HANG_GUARD)


# -- the pools --


class Workers:
    """Two worker processes of one kind (a start method and an API), one interface."""

    def __init__(self, method: str, api: str) -> None:
        self.method, self.api = method, api
        self.pool: Any = None

    @contextlib.contextmanager
    def running(self) -> Iterator[Workers]:
        """The pool, shut down on leaving, whatever happened."""
        if self.api == "joblib":  # loky's reusable executor: the same workers each call
            yield self
            return
        context = multiprocessing.get_context(self.method)
        if self.api == "executor":
            pool = concurrent.futures.ProcessPoolExecutor(2, mp_context=context)
        else:
            pool = context.Pool(2)
        with pool:
            self.pool = pool
            yield self

    def submit(self, function: Callable[..., Any], *args: Any) -> Callable[[], Any]:
        """Start ``function(*args)`` in a worker; what to call for its result."""
        if self.api == "executor":
            future = self.pool.submit(function, *args)
            return lambda: future.result(HANG_GUARD)
        if self.api == "pool":
            result = self.pool.apply_async(function, args)
            return lambda: result.get(HANG_GUARD)
        # joblib has no submit: a call of Parallel in a thread of ours
        thread = concurrent.futures.ThreadPoolExecutor(1)
        future = thread.submit(self.map, function, [args])
        thread.shutdown(wait=False)
        return lambda: future.result(HANG_GUARD)[0]

    def map(self, function: Callable[..., Any], calls: list[tuple[Any, ...]]) -> list[Any]:
        """``function(*args)`` for each of ``calls``, all started before any is waited for."""
        if self.api == "joblib":
            return joblib.Parallel(n_jobs=2)(joblib.delayed(function)(*args) for args in calls)
        results = [self.submit(function, *args) for args in calls]
        return [result() for result in results]


KINDS = [
    pytest.param((method, api), id=f"{method}-{api}")
    for method in ("spawn", "forkserver", "fork")
    for api in ("executor", "pool")
] + [pytest.param(("loky", "joblib"), id="joblib")]


@pytest.fixture(scope="module")
def extension_loaded(shell) -> None:
    """What a kernel has before it starts a pool: the extension loaded, so the board's
    directory is on sys.path, and processes spawned from now on can import cell modules."""
    shell.run_line_magic("load_ext", "ipyexecmod")
    shell.run_line_magic("unload_ext", "ipyexecmod")


@pytest.fixture(scope="module", autouse=True)
def lokys_workers_go() -> Iterator[None]:
    """joblib's workers (loky's reusable executor) stop with this module's tests."""
    yield
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor().shutdown(wait=True)


@pytest.fixture(scope="module", params=KINDS)
def workers(request, extension_loaded) -> Iterator[Workers]:
    """Two workers of each kind, shared by this module's tests (pytest runs the tests of
    one kind together, then shuts its pool down)."""
    with Workers(*request.param).running() as running:
        yield running


@pytest.fixture(scope="module")
def manager(extension_loaded) -> Iterator[Any]:
    """Events and barriers that tasks in any worker can wait on."""
    with multiprocessing.get_context("spawn").Manager() as manager:
        yield manager


@pytest.fixture(scope="module")
def spawned(extension_loaded) -> Iterator[concurrent.futures.ProcessPoolExecutor]:
    """One spawned worker, shared by the tests that need a worker of no special kind."""
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        yield pool


def on_both(manager: Any, *args: Any) -> list[tuple[Any, ...]]:
    """Arguments for two calls, each with a barrier first that the other also waits on:
    each call runs in a worker of its own."""
    barrier = manager.Barrier(2)
    return [(barrier, *args), (barrier, *args)]


# -- the next task runs the latest version --


def test_a_pool_made_before_a_redefinition_runs_the_new_version_at_its_next_task(
    ip, unique, workers, manager
):
    sa, sb = unique("sa"), unique("sb")
    a = define(ip, sa, sa_body(sa, 1))
    b = define(ip, sb, sb_body(sa))
    before = workers.map(b.probe, on_both(manager, a.Point(1)))
    pids = {result[0] for result in before}
    assert len(pids) == 2  # both workers hold version 1 of both modules
    assert [result[1:3] for result in before] == [(1, (1, 1))] * 2

    a = define(ip, sa, sa_body(sa, 2))  # sb, a dependent, runs again in the kernel
    assert sorted(workers.map(a.warm, on_both(manager))) == sorted((pid, 2) for pid in pids)
    after = workers.map(b.probe, on_both(manager, a.Point(5)))
    assert {result[0] for result in after} == pids
    for _, g, value, made in after:
        assert (g, value) == (2, (2, 5))  # sb.g calls the new sa.f; the argument is new
        assert isinstance(made, sys.modules[sa].Point) and (made.x, made.made_by) == (6, 2)


def test_a_running_task_keeps_its_version_even_through_an_import_and_the_next_one_is_fresh(
    ip, unique, workers, manager
):
    sa = unique("sa")
    a = define(ip, sa, sa_body(sa, 1))
    pids = {pid for pid, _ in workers.map(a.warm, on_both(manager))}
    started, go = manager.Event(), manager.Event()
    held = workers.submit(a.hold, started, go)
    try:
        assert started.wait(HANG_GUARD)
        a = define(ip, sa, sa_body(sa, 2))
        # The other worker, while the first one is still in its task
        assert workers.map(a.f, [()]) == [2]
    finally:
        go.set()
    # Its own globals, its functions, and an `import` statement run in the task after the
    # redefinition: all version 1, never a mix
    assert held() == (1, 1, 1, 1)
    assert sorted(workers.map(a.warm, on_both(manager))) == sorted((pid, 2) for pid in pids)


# -- modules kept in memory only --


def test_a_memory_only_module_raises_an_import_error_in_the_caller_and_the_pool_lives_on(
    ip, unique, workers, manager
):
    ok, kept = unique("ok"), unique("kept")
    good = define(ip, ok, sa_body(ok, 1))
    workers.map(good.warm, on_both(manager))
    memory = define(ip, kept, sa_body(kept, 1), "--no-persist")
    for function, args in [(memory.f, ()), (good.value_of, (memory.Point(3),))]:
        with pytest.raises(ImportError, match=f"cell module '{kept}' is {MEMORY_ONLY}"):
            workers.map(function, [args])
    assert workers.map(good.f, [(), ()]) == [1, 1]  # the pool runs the next tasks


@pytest.mark.parametrize("api", ["executor", "pool"])
def test_a_fork_child_has_the_kernels_memory_only_module_until_it_is_redefined(
    ip, unique, manager, api
):
    ok, kept = unique("ok"), unique("kept")
    good = define(ip, ok, sa_body(ok, 1))
    memory = define(ip, kept, sa_body(kept, 1), "--no-persist")
    with Workers("fork", api).running() as forked:
        # Each worker, a copy of the kernel, takes the memory-only function by reference
        before = forked.map(good.warm, on_both(manager, memory.f))
        assert len({pid for pid, *_ in before}) == 2
        assert [result[1:] for result in before] == [(1, 1)] * 2
        memory = define(ip, kept, sa_body(kept, 2), "--no-persist")
        # ... and none can have the new version: no old one ever runs
        calls = on_both(manager, memory.f)  # held: a proxy dropped here is gone there
        results = [forked.submit(good.warm, *args) for args in calls]
        for result in results:
            with pytest.raises(ImportError, match=f"cell module '{kept}' is {MEMORY_ONLY}"):
                result()


# -- where workers import from --


def test_workers_started_before_the_first_definition_import_later_cell_modules(tmp_path):
    out = run_python(
        f"""
        import concurrent.futures, multiprocessing
        import joblib
        from IPython.core.interactiveshell import InteractiveShell
        from traitlets.config import Config

        config = Config()
        config.HistoryAccessor.enabled = False
        ip = InteractiveShell.instance(config=config)
        ip.run_line_magic("load_ext", "ipyexecmod")
        spawn = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=spawn) as pool:
            # both pools' workers start, with the sys.path of now
            print(pool.submit(abs, -1).result({HANG_GUARD}))
            print(joblib.Parallel(n_jobs=2)(joblib.delayed(abs)(-i) for i in (1, 2)))
            ip.run_cell_magic("as_module", "late", "def f(x):\\n    return x + 1\\n")
            import late

            print(pool.submit(late.f, 1).result({HANG_GUARD}))
            print(joblib.Parallel(n_jobs=2)(joblib.delayed(late.f)(i) for i in (1, 2)))
        """,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["1", "[1, 2]", "2", "[2, 3]"]


def test_a_module_moved_out_of_a_lasting_directory_is_never_imported_from_there(
    ip, unique, tmp_path, spawned
):
    name = unique("moved")
    lasting = tmp_path / "lasting"
    module = define(ip, name, sa_body(name, 1), f"--persist-dir {lasting}")
    assert Path(module.__file__) == lasting / f"{name}.py"
    assert spawned.submit(module.f).result(HANG_GUARD) == 1  # the warm worker has D's copy

    module = define(ip, name, sa_body(name, 2))  # into the private directory
    assert Path(module.__file__).parent != lasting
    assert spawned.submit(module.f).result(HANG_GUARD) == 2
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as new:
        assert new.submit(module.f).result(HANG_GUARD) == 2
        module = define(ip, name, sa_body(name, 3), "--no-persist")
        for worker in (spawned, new):
            with pytest.raises(ImportError, match=MEMORY_ONLY):
                worker.submit(module.f).result(HANG_GUARD)
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as newer:
        with pytest.raises(ImportError, match=MEMORY_ONLY):
            newer.submit(module.f).result(HANG_GUARD)


def tree(directory: str) -> set[str]:
    """The paths of the files and directories under ``directory``, relative to it."""
    return {
        os.path.relpath(os.path.join(root, entry), directory)
        for root, directories, files in os.walk(directory)
        for entry in [*directories, *files]
    }


@pytest.mark.parametrize("real", ["json", "own"])
def test_no_copy_under_a_real_package_that_would_hide_it_from_workers(
    ip, unique, tmp_path, monkeypatch, real
):
    if real == "json":
        package, tools = "json", json
    else:
        package = unique("lib")
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
        (tmp_path / package / "tools.py").write_text("def dumps(value):\n    return repr(value)\n")
        monkeypatch.syspath_prepend(str(tmp_path))
        tools = importlib.import_module(f"{package}.tools")
    private = kernel_store().directory
    files = tree(private)
    with pytest.raises(UsageError) as refused:
        define(ip, f"{package}.extra", "X = 1\n")
    message = str(refused.value)
    assert f"cannot keep an on-disk copy of '{package}.extra'" in message
    assert f"'{package}' is a package that ipyexecmod did not create" in message
    assert "define it with --no-persist" in message
    assert f"{package}.extra" not in sys.modules
    assert tree(private) == files  # not even a stand-in for the package
    if package != "json":  # what the message suggests works (json's would outlive the test)
        assert define(ip, f"{package}.extra", "X = 1\n", "--no-persist").X == 1
        assert tree(private) == files
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        assert pool.submit(tools.dumps, {"a": [1]}).result(HANG_GUARD) == tools.dumps({"a": [1]})


# -- pools in a cell module's own code --

OWN_POOL = {
    "executor": (
        "with concurrent.futures.ProcessPoolExecutor(\n"
        "    1, mp_context=multiprocessing.get_context({method!r})\n"
        ") as pool:\n"
        "    RESULT = list(pool.map(f, [1, 2]))\n"
    ),
    "pool": (
        "with multiprocessing.get_context({method!r}).Pool(1) as pool:\n"
        "    RESULT = pool.map(f, [1, 2])\n"
    ),
    # loky (spawn-like) by default; multiprocessing.Pool forks on Linux before Python 3.14
    "joblib": "RESULT = joblib.Parallel(n_jobs=2{backend})(joblib.delayed(f)(x) for x in [1, 2])\n",
}


def own_pool(version: int, method: str, api: str) -> str:
    backend = ', backend="multiprocessing"' if method == "fork" else ""
    pool = OWN_POOL[api].format(method=method, backend=backend)
    return (
        "import concurrent.futures\nimport multiprocessing\n\nimport joblib\n\n"
        f"VERSION = {version}\n\n\ndef f(x):\n    return VERSION, x\n\n\n{pool}"
    )


@pytest.mark.parametrize("api", ["executor", "pool", "joblib"])
def test_a_cell_modules_own_fork_pool_runs_the_version_being_defined(ip, unique, api):
    name = unique("own")
    assert define(ip, name, own_pool(1, "fork", api)).RESULT == [(1, 1), (1, 2)]
    assert define(ip, name, own_pool(2, "fork", api)).RESULT == [(2, 1), (2, 2)]


@pytest.mark.parametrize("api", ["executor", "pool", "joblib"])
def test_a_cell_modules_own_spawn_pool_fails_fast_and_the_good_version_stays(
    ip, unique, spawned, api
):
    name = unique("own")
    with pytest.raises(ImportError, match=f"cell module '{name}' is being defined"):
        define(ip, name, own_pool(1, "spawn", api))
    assert name not in sys.modules
    good = define(ip, name, "VERSION = 1\n\n\ndef f(x):\n    return VERSION, x\n")
    with pytest.raises(ImportError, match=f"cell module '{name}' is being defined"):
        define(ip, name, own_pool(2, "spawn", api))
    assert sys.modules[name] is good and good.f(1) == (1, 1)
    assert spawned.submit(good.f, 2).result(HANG_GUARD) == (1, 2)


# -- packages --

#: What a package looks like from inside a process: its __path__, the submodules that
#: pkgutil finds there, and what importlib.resources finds in it (if ``files`` is true).
PROBE = """(lambda m, resources: (
    list(m.__path__),
    sorted(i.name for i in __import__("pkgutil").iter_modules(m.__path__)),
    resources and sorted(str(p) for p in resources.files(m).iterdir()),
))(__import__("importlib").import_module({name!r}), {files} and __import__("importlib.resources"
).resources)"""


def test_a_cell_package_looks_the_same_in_the_kernel_and_its_workers(ip, unique, spawned):
    package = unique("pkg")
    define(ip, package, "X = 1\n")
    define(ip, f"{package}.sub", "Y = 2\n")
    define(ip, f"{package}.other", "Z = 3\n")
    probe = PROBE.format(name=package, files=True)
    directory = os.path.dirname(sys.modules[package].__file__)
    here = eval(probe)
    assert here[:2] == ([directory], ["other", "sub"])
    assert {os.path.join(directory, f"{m}.py") for m in ("__init__", "other", "sub")} <= set(
        here[2]
    )
    assert spawned.submit(eval, probe).result(HANG_GUARD) == here


def test_a_memory_only_cell_package_has_an_empty_path_in_the_kernel_and_its_workers(
    ip, unique, spawned
):
    package = unique("pkg")
    define(ip, f"{package}.sub", "Y = 2\n", "--no-persist")
    define(ip, package, "X = 1\n", "--no-persist")
    probe = PROBE.format(name=package, files=False)
    assert eval(probe) == ([], [], False)
    assert spawned.submit(eval, probe).result(HANG_GUARD) == ([], [], False)


# -- what a review found ----------------------------------------------------------------


NESTED = """\
import ipyexecmod.cells
import ipyexecmod.store

ipyexecmod.cells.define(
    {inner!r}, "W = {version}\\ndef h():\\n    return W\\n", store=ipyexecmod.store.kernel_store()
)
from {inner} import h

V = {version}


def f():
    return V, h()
"""


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_a_cell_module_that_defines_another_runs_as_in_the_kernel_and_leaves_the_board_alone(
    ip, unique, method
):
    """Its code, run again in a worker, gets the kernel's inner module instead of defining
    one there (a fork child would write the kernel's board; a spawned worker would refuse
    the name, or stop following the kernel)."""
    outer, inner = unique("outer"), unique("inner")
    context = multiprocessing.get_context(method)
    define(ip, outer, NESTED.format(inner=inner, version=1))
    later = unique("later")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        assert pool.submit(sys.modules[outer].f).result(HANG_GUARD) == (1, 1)
        define(ip, later, "def f():\n    return 'later'\n")  # after the worker started
        define(ip, outer, NESTED.format(inner=inner, version=2))
        assert pool.submit(sys.modules[outer].f).result(HANG_GUARD) == (2, 2)
        assert pool.submit(sys.modules[inner].h).result(HANG_GUARD) == 2
        assert pool.submit(sys.modules[later].f).result(HANG_GUARD) == "later"
    spawn = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=spawn) as fresh:
        # The board still lists what the kernel defined after the worker started.
        assert fresh.submit(sys.modules[later].f).result(HANG_GUARD) == "later"


HALF = """\
import sys

def f():
    return {version}

{wait}
def g():
    return {version}
"""


def test_a_child_forked_by_another_thread_during_a_definition_never_mixes_versions(ip, unique):
    """A pool forking a worker from its own thread while a module's code runs gives the
    child the module half run; the child must not run it (f of the new version with g of
    the old one)."""
    name = unique("half")
    define(ip, name, HALF.format(version=1, wait=""))
    blocked, go = unique("blocked"), unique("go")
    sys.modules[blocked], sys.modules[go] = threading.Event(), threading.Event()  # type: ignore[assignment]
    outcome: list[object] = []

    def fork_a_pool_meanwhile() -> None:
        sys.modules[blocked].wait(HANG_GUARD)  # type: ignore[attr-defined]
        try:
            with multiprocessing.get_context("fork").Pool(1) as pool:
                module = sys.modules[name]
                outcome.append(pool.apply(_both, (module.f, module.g)))
        except Exception as exc:
            outcome.append(exc)
        finally:
            sys.modules[go].set()  # type: ignore[attr-defined]

    thread = threading.Thread(target=fork_a_pool_meanwhile)
    thread.start()
    try:
        wait = f"sys.modules[{blocked!r}].set()\nsys.modules[{go!r}].wait({HANG_GUARD})\n"
        define(ip, name, HALF.format(version=2, wait=wait))
    finally:
        thread.join()
        del sys.modules[blocked], sys.modules[go]
    [result] = outcome
    # The pool's thread pickled the task during the definition: the child cannot have the
    # version being defined, so it says so; it never mixes the two.
    assert isinstance(result, ImportError) and "is being defined" in str(result), result


def _both(f: Callable[[], int], g: Callable[[], int]) -> tuple[int, int]:
    return f(), g()


@pytest.mark.parametrize("api", ["executor", "pool"])
def test_a_module_failing_its_first_import_in_a_worker_fails_the_task_not_the_pool(ip, unique, api):
    name = unique("needs_main")
    ip.user_ns["SCALE"] = 10
    module = define(ip, name, "import __main__\nK = __main__.SCALE\ndef f(x):\n    return K * x\n")
    assert module.f(2) == 20
    context = multiprocessing.get_context("spawn")
    if api == "executor":
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
            with pytest.raises(ImportError, match=r"could not be imported in this process .*SCALE"):
                pool.submit(module.f, 2).result(HANG_GUARD)
            assert pool.submit(len, "ok").result(HANG_GUARD) == 2  # the pool lives on
    else:
        with context.Pool(1) as pool:
            with pytest.raises(ImportError, match=r"could not be imported in this process .*SCALE"):
                pool.apply_async(module.f, (2,)).get(HANG_GUARD)
            assert pool.apply_async(len, ("ok",)).get(HANG_GUARD) == 2


# -- a copy that another kernel rewrote (issue 14) ----------------------------------------

NOT_THE_KERNELS = r"is not the version the kernel \(pid \d+\) has: another kernel has replaced"


def rewrite(path: Path, source: str) -> None:
    """What another kernel sharing a lasting directory leaves at ``path``: another source,
    with its checked ``.pyc``."""
    data = source.encode()
    path.write_bytes(data)
    Path(importlib.util.cache_from_source(str(path))).write_bytes(
        hash_pyc(data, compile(data, str(path), "exec"))
    )


def another_kernel(lasting: Path, name: str, source: str) -> None:
    """Define ``name`` in ``lasting`` in another process, with --force, as the kernel of
    another notebook would, and let that process exit."""
    out = run_python(
        f"""
        from ipyexecmod import cells
        from ipyexecmod.lasting import lasting_store

        store = lasting_store({str(lasting)!r})
        cells.finder.define({name!r}, {source!r}, store=store, force=True)
        """,
        env={**os.environ, "JPY_SESSION_NAME": "/elsewhere/other.ipynb"},
    )
    assert out.returncode == 0, out.stderr


def test_a_copy_rewritten_by_another_kernel_is_never_run_and_the_pool_lives_on(
    ip, unique, tmp_path, workers, manager
):
    name = unique("shared")
    lasting = tmp_path / "lasting"
    workers.map(abs, [(-1,), (-2,)])  # started: a fork child has no copy of the module
    module = define(ip, name, sa_body(name, 1), f"--persist-dir {lasting}")
    rewrite(lasting / f"{name}.py", sa_body(name, 666))
    with pytest.raises(ImportError, match=f"cell module '{name}': the copy at .*{NOT_THE_KERNELS}"):
        workers.map(module.f, [(), ()])
    assert module.f() == 1  # the kernel keeps its own
    assert workers.map(abs, [(-1,), (-2,)]) == [1, 2]  # the pool runs the next tasks
    # The kernel publishes its version again (here, in place of the other one): the next
    # task in each worker runs it
    module = define(ip, name, sa_body(name, 2), f"--force --persist-dir {lasting}")
    assert [result[1] for result in workers.map(module.warm, on_both(manager))] == [2, 2]


def test_a_pyc_that_claims_to_be_the_kernels_version_runs_only_with_its_source(
    ip, unique, tmp_path, spawned
):
    """An unchecked ``.pyc`` (which the import system runs without reading the source)
    with the kernel's hash in its header, but another kernel's code."""
    name = unique("claimed")
    lasting = tmp_path / "lasting"
    module = define(ip, name, sa_body(name, 1), f"--persist-dir {lasting}")
    cached = Path(importlib.util.cache_from_source(module.__file__))
    header = cached.read_bytes()[:16]
    unchecked = header[:4] + (1).to_bytes(4, "little") + header[8:]
    foreign = compile(sa_body(name, 666), module.__file__, "exec")
    cached.write_bytes(unchecked + marshal.dumps(foreign))
    assert spawned.submit(module.f).result(HANG_GUARD) == 1  # compiled from the source
    rewrite(lasting / f"{name}.py", sa_body(name, 666))
    cached.write_bytes(unchecked + marshal.dumps(foreign))
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as fresh:
        with pytest.raises(ImportError, match=NOT_THE_KERNELS):
            fresh.submit(module.f).result(HANG_GUARD)


POOLS = [
    pytest.param(("spawn", "executor"), id="spawn-executor"),
    pytest.param(("forkserver", "pool"), id="forkserver-pool"),
    pytest.param(("loky", "joblib"), id="joblib"),
]


@pytest.mark.parametrize("kind", POOLS)
def test_a_copy_another_kernel_replaced_fails_tasks_until_the_kernel_moves_its_own(
    ip, unique, tmp_path, extension_loaded, kind
):
    name = unique("forced")
    lasting = tmp_path / "lasting"
    module = define(ip, name, sa_body(name, 1), f"--persist-dir {lasting}")
    another_kernel(lasting, name, sa_body(name, 666))
    with Workers(*kind).running() as workers:
        with pytest.raises(ImportError, match=NOT_THE_KERNELS):
            workers.map(module.f, [(), ()])
        # The end of the cell: the kernel moves its version to its private directory
        with pytest.warns(RuntimeWarning, match=f"replaced this kernel's copy of '{name}'"):
            ip.run_cell("pass")
        assert Path(module.__file__).parent != lasting
        assert workers.map(module.f, [(), ()]) == [1, 1]
    with Workers(*kind).running() as workers:
        assert workers.map(module.f, [(), ()]) == [1, 1]


def test_a_restored_module_runs_in_workers_as_the_kernel_imported_it(ip, unique, tmp_path, spawned):
    """A module restored from a lasting directory that another kernel rewrites: workers run
    the version that the kernel imported, fail rather than run another, and run the new
    one once the kernel has reloaded it."""
    name = unique("restored")
    lasting = tmp_path / "lasting"
    another_kernel(lasting, name, sa_body(name, 1))
    cells.finder.add_store(lasting_store(lasting))  # the kernel restores it
    another_kernel(lasting, name, sa_body(name, 2))  # before the kernel imports it
    module = importlib.import_module(name)
    assert (module.f(), spawned.submit(module.f).result(HANG_GUARD)) == (2, 2)
    another_kernel(lasting, name, sa_body(name, 3))
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as fresh:
        with pytest.raises(ImportError, match=f"`%reload_module {name}` in the kernel"):
            fresh.submit(module.f).result(HANG_GUARD)
        assert spawned.submit(module.f).result(HANG_GUARD) == 2  # imported before: kept
        module = ip.run_line_magic("reload_module", name)
        assert module.f() == 3
        for worker in (fresh, spawned):
            assert worker.submit(module.f).result(HANG_GUARD) == 3


PROBER = """\
import importlib
import sys

from ipyexecmod.workers.placeholders import Unavailable


def fresh_imports(name, started, stop):
    \"\"\"Import ``name`` afresh again and again until ``stop``, then once more: the versions
    it ran (each once, in order) and why any import failed.\"\"\"
    versions, failures = [], []
    started.set()
    while True:
        last = stop.is_set()
        sys.modules.pop(name, None)
        module = importlib.import_module(name)
        if isinstance(module, Unavailable):
            failures.append(module.__doc__)
        elif not versions or versions[-1] != module.VERSION:
            versions.append(module.VERSION)
        if last:
            return versions, failures
"""


@pytest.mark.parametrize("where", ["private", "lasting"])
def test_workers_importing_while_the_kernel_redefines_never_fail_nor_go_back(
    ip, unique, tmp_path, manager, where
):
    """The kernel writes a module's copy, then tells its workers: a worker that reads the
    new copy first takes it as the version it is about to be told of."""
    name, prober = unique("busy"), unique("prober")
    options = f"--persist-dir {tmp_path / 'lasting'}" if where == "lasting" else ""
    probe = define(ip, prober, PROBER).fresh_imports
    define(ip, name, sa_body(name, 0), options)
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=context) as pool:
        stop = manager.Event()
        starts = [manager.Event(), manager.Event()]
        running = [pool.submit(probe, name, started, stop) for started in starts]
        try:
            assert all(started.wait(HANG_GUARD) for started in starts)
            for version in range(1, REDEFINITIONS + 1):
                define(ip, name, sa_body(name, version), options)
        finally:
            stop.set()
        for result in running:
            versions, failures = result.result(HANG_GUARD)
            assert failures == []
            assert versions == sorted(versions) and versions[-1] == REDEFINITIONS


REDEFINITIONS = 60


def test_a_cell_packages_data_files_read_through_its_loader_in_a_worker(ip, unique, spawned):
    """The loader checks a copy's ``.pyc`` and source, and gives any other file as it is."""
    package = unique("pkg")
    define(ip, f"{package}.sub", "Y = 2\n")
    module = define(
        ip,
        package,
        "import pkgutil\n\ndef read():\n    return pkgutil.get_data(__name__, 'data.txt')\n",
    )
    Path(module.__file__).with_name("data.txt").write_bytes(b"the data")
    assert spawned.submit(module.read).result(HANG_GUARD) == b"the data"
