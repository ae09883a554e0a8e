"""Cell modules on a real Dask cluster: worker processes on loopback, no mocks."""

from __future__ import annotations

import asyncio
import inspect
import os
import time
import traceback

import pytest
from IPython.core.error import UsageError

pytest.importorskip("distributed")

from distributed import Client, LocalCluster
from helpers import HANG_GUARD
from kernels import execute_text, kernel_running

from ipyexecmod import cells
from ipyexecmod.cells.version import CellFile
from ipyexecmod.dask import ShipError, Shipment, ship
from ipyexecmod.dask._on_worker import CellFinder, Entry
from ipyexecmod.dask.clusters import not_shipped
from ipyexecmod.store import kernel_store

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _cluster(workers: int) -> LocalCluster:
    return LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=":0",
    )


@pytest.fixture(scope="module")
def client():
    with _cluster(2) as cluster, Client(cluster) as client:
        yield client


def define(name: str, source: str):
    return cells.define(name, source, store=kernel_store())


def on_each_worker(client: Client, function, *args) -> dict[str, object]:
    """``function(*args)`` run as a task on every worker, by address."""
    workers = sorted(client.nthreads())  # asks the scheduler (scheduler_info() is a cache)
    futures = {
        worker: client.submit(function, *args, workers=[worker], pure=False) for worker in workers
    }
    return {worker: future.result(timeout=HANG_GUARD) for worker, future in futures.items()}


def test_a_shipped_function_runs_on_every_worker(client, unique):
    name = unique("geo")
    geo = define(name, "import os\ndef area(r):\n    return 3 * r * r\n")
    assert ship(client, name) == [name]
    results = on_each_worker(client, geo.area, 2)
    assert list(results.values()) == [12, 12]
    # Imported on the workers from memory, by the finder the shipment installed; named
    # as in the kernel, so that a worker's traceback shows the kernel's lines.
    found = client.run(lambda: type(__import__(name).__loader__).__name__)
    assert set(found.values()) == {"CellFinder"}
    files = client.run(
        lambda: (__import__(name).__file__, __import__(name).area.__code__.co_filename)
    )
    assert set(files.values()) == {(geo.__file__, geo.area.__code__.co_filename)}


def test_code_named_after_its_cell_has_the_cells_lines_on_the_workers(client, unique):
    """A module defined from its cell (issue 18) has the cell's name and line numbers on
    the workers too: a worker's traceback reads as the kernel's."""
    name = unique("geo")
    cell = CellFile(f"<ipython-input-1-{name}>", f"%%as_module {name}\n")
    source = "def fail():\n    raise ValueError('on purpose')\n"
    geo = cells.define(name, source, store=kernel_store(), cell=cell)
    ship(client, name)
    with pytest.raises(ValueError, match="on purpose") as caught:
        client.submit(geo.fail, pure=False).result(timeout=HANG_GUARD)
    frame = traceback.extract_tb(caught.value.__traceback__)[-1]
    assert (
        (frame.filename, frame.lineno)
        == (cell.name, 3)
        == (cell.name, geo.fail.__code__.co_firstlineno + 1)
    )
    assert frame.line == "raise ValueError('on purpose')"
    seen = on_each_worker(
        client,
        lambda: (
            inspect.getsource(__import__(name).fail),
            __import__(name).fail.__code__.co_firstlineno,
        ),
    )
    assert set(seen.values()) == {(source, 2)}


def test_a_module_whose_name_cannot_be_a_file_ships_all_the_same(client, unique):
    long_name = unique("x" * 300)
    with pytest.warns(RuntimeWarning, match="File name too long; module .* works in this process"):
        module = define(long_name, "def f():\n    return 'long'\n")
    assert ship(client, long_name) == [long_name]  # from memory: no file on the workers either
    assert set(on_each_worker(client, module.f).values()) == {"long"}


def test_a_redefinition_is_shipped_before_the_cell_finishes(client, unique):
    name = unique("step")
    module = define(name, "def step(x):\n    return x + 1\n")
    ship(client, name)
    first = client.submit(module.step, 1)
    assert first.result(timeout=HANG_GUARD) == 2
    define(name, "def step(x):\n    return x + 100\n")
    # `first` is still held, so Dask would hand it back for the same key: the key
    # must change with the code, and every worker must run the new code.
    second = client.submit(module.step, 1)
    assert second.key != first.key
    assert second.result(timeout=HANG_GUARD) == 101
    assert set(on_each_worker(client, module.step, 1).values()) == {101}
    assert first.result() == 2  # the old result is still the old code's


def test_running_a_cell_again_unchanged_reruns_it_on_the_workers(client, unique):
    """As in the kernel: the module may read another that has changed meanwhile."""
    top = unique("shop")
    define(f"{top}.tax", "RATE = 0.5\n")
    checkout = f"{top}.checkout"
    source = "from .tax import RATE\ndef total(cents):\n    return cents * (1 + RATE)\n"
    module = define(checkout, source)
    ship(client, top)
    assert set(on_each_worker(client, module.total, 100).values()) == {150}
    before = client.submit(module.total, 100)
    assert before.result(timeout=HANG_GUARD) == 150
    define(f"{top}.tax", "RATE = 0.25\n")
    define(checkout, source)  # the same text, run again
    assert module.total(100) == 125
    after = client.submit(module.total, 100)
    assert after.key != before.key
    assert after.result(timeout=HANG_GUARD) == 125
    assert set(on_each_worker(client, module.total, 100).values()) == {125}


def test_classes_and_map_see_the_new_version(client, unique):
    name = unique("shapes")
    module = define(name, "class Square:\n    def __init__(self, s):\n        self.s = s\n")
    ship(client, name)
    make = lambda cls, s: type(cls(s)).__module__ + str(vars(cls(s)))  # noqa: E731
    assert client.submit(make, module.Square, 2).result(timeout=HANG_GUARD) == f"{name}{{'s': 2}}"
    define(name, "class Square:\n    def __init__(self, s):\n        self.s = s * s\n")
    assert client.submit(make, module.Square, 2).result(timeout=HANG_GUARD) == f"{name}{{'s': 4}}"
    define(name, "class Square:\n    pass\ndef area(s):\n    return s * s\n")
    assert client.gather(client.map(module.area, [1, 2, 3])) == [1, 4, 9]


def test_a_dotted_module_ships_as_its_package(client, unique):
    top = unique("pkg")
    define(f"{top}.consts", "SCALE = 10\n")
    calc = define(f"{top}.calc", "from .consts import SCALE\ndef scale(x):\n    return x * SCALE\n")
    assert ship(client, f"{top}.calc") == [top, f"{top}.calc", f"{top}.consts"]
    assert set(on_each_worker(client, calc.scale, 2).values()) == {20}
    define(f"{top}.consts", "SCALE = 1000\n")  # the workers have both submodules loaded
    define(f"{top}.calc", "from .consts import SCALE\ndef scale(x):\n    return x * SCALE + 1\n")
    assert set(on_each_worker(client, calc.scale, 2).values()) == {2001}
    # A module added to the package later is shipped with it.
    extra = define(f"{top}.extra", "def twice(x):\n    return 2 * x\n")
    assert set(on_each_worker(client, extra.twice, 4).values()) == {8}
    packages = client.run(lambda: __import__(f"{top}.calc").__path__)
    assert set(map(tuple, packages.values())) == {()}  # from memory, below no directory


def test_a_module_not_shipped_fails_fast_with_a_message(client, unique):
    shipped, forgotten = unique("shipped"), unique("forgotten")
    define(shipped, "def f(x):\n    return x\n")
    module = define(forgotten, "def g(x):\n    return -x\n")
    ship(client, shipped)
    started = time.monotonic()
    failed = client.submit(module.g, 1)
    with pytest.raises(ImportError, match=rf"'{forgotten}' was not shipped .*%ship {forgotten}"):
        failed.result(timeout=HANG_GUARD)
    assert time.monotonic() - started < 30
    # Once shipped, the same call is a new task, though the failed one is still held.
    ship(client, forgotten)
    assert client.submit(module.g, 1).result(timeout=HANG_GUARD) == -1
    # Defined after the client was known, and below a package: a placeholder too.
    later = unique("later")
    nested = define(f"{later}.inner", "def h():\n    return 1\n")
    with pytest.raises(ImportError, match=rf"'{later}.inner' was not shipped .*%ship {later}"):
        client.submit(nested.h).result(timeout=HANG_GUARD)
    # Shipping it then replaces the placeholder, on workers that imported it too.
    ship(client, later)
    assert set(on_each_worker(client, nested.h).values()) == {1}


def test_shipping_bad_names_is_refused(client, unique):
    with pytest.raises(ShipError, match=r"'no_such_cell' is not a cell module: define it first"):
        ship(client, "no_such_cell")
    with pytest.raises(ShipError, match=r"'json' is not a cell module: ship an ordinary module"):
        ship(client, "json")
    with pytest.raises(ShipError, match=r"name at least one cell module"):
        ship(client)
    top = unique("top")
    define(top, "x = 1\n")
    with pytest.raises(ShipError, match=rf"'{top}.sub' is not a cell module: '{top}' is, but"):
        ship(client, f"{top}.sub")
    with pytest.raises(TypeError, match=r"ship to a distributed.Client, not str"):
        ship("tcp://127.0.0.1:1", unique())


def test_a_worker_that_joins_later_gets_the_current_version(unique):
    name = unique("late")
    module = define(name, "def f():\n    return 'v1'\n")
    with _cluster(1) as cluster, Client(cluster) as client:
        ship(client, name)
        define(name, "def f():\n    return 'v2'\n")
        cluster.scale(2)
        client.wait_for_workers(2, timeout=HANG_GUARD)
        assert on_each_worker(client, module.f) == dict.fromkeys(client.nthreads(), "v2")


def test_an_instance_of_an_unshipped_class_as_argument_fails_fast(client, unique):
    """The placeholder stands for instances too: the worker unpickles the argument, the
    task fails when it uses it, and the worker goes on."""
    known = define(unique("known"), "def describe(obj):\n    return obj.describe()\n")
    module = define(unique("unshipped"), "class Box:\n    def describe(self):\n        return 1\n")
    ship(client, known.__name__)
    with pytest.raises(ImportError, match=rf"'{module.__name__}' was not shipped"):
        client.submit(known.describe, module.Box()).result(timeout=HANG_GUARD)
    assert sorted(client.run(os.getpid)) == sorted(client.nthreads())  # every worker answers
    ship(client, module.__name__)
    assert client.submit(known.describe, module.Box()).result(timeout=HANG_GUARD) == 1


def test_a_cluster_spawned_from_the_kernel_runs_a_memory_only_module_into_an_error(unique):
    """Workers that a LocalCluster spawns from this process import cell modules from
    its board (ipyexecmod.workers) when ipyexecmod.dask does not follow clients: one with
    no on-disk copy fails its task with an ImportError that says why, rather than hanging."""
    import ipyexecmod.dask

    ipyexecmod.dask.disable()  # the next ship() enables it again
    kernel_store()  # the board, as %load_ext makes it
    module = cells.define(unique("unknown"), "def f():\n    return 1\n")
    with _cluster(1) as cluster, Client(cluster) as client:
        with pytest.raises(ImportError, match="is kept in the memory of the kernel"):
            client.submit(module.f).result(timeout=HANG_GUARD)


# -- the %ship magic, in a real InteractiveShell --


def test_ship_magic_ships_to_the_default_client(ip, client, unique, capsys):
    name = unique("magic")
    ip.run_cell_magic("as_module", name, "def f(x):\n    return x - 1\n")
    capsys.readouterr()
    shipment = ip.run_line_magic("ship", name)
    address = client.scheduler.address
    assert isinstance(shipment, Shipment)
    assert repr(shipment) == (
        f"shipped {name} to the 2 workers of {address}, and to any that join; "
        "redefinitions ship again"
    )
    assert shipment._repr_html_() == (
        f"<p>shipped <code>{name}</code> to the 2 workers of <code>{address}</code>, "
        "and to any that join; redefinitions ship again</p>"
    )
    assert capsys.readouterr().out == ""  # shown as the cell's value, not printed
    module = ip.user_ns[name]
    assert client.submit(module.f, 10).result(timeout=HANG_GUARD) == 9
    ip.run_cell_magic("as_module", name, "def f(x):\n    return x - 2\n")
    assert client.submit(module.f, 10).result(timeout=HANG_GUARD) == 8


def test_ship_magic_takes_a_client_variable(ip, client, unique):
    name = unique("byvar")
    ip.run_cell_magic("as_module", name, "def f():\n    return 'here'\n")
    ip.user_ns["my_client"] = client
    ip.run_line_magic("ship", f"{name} --client my_client")
    assert client.submit(ip.user_ns[name].f).result(timeout=HANG_GUARD) == "here"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("", r"name the cell modules to ship \(%ship NAME \.\.\.\), or use %ship --auto"),
        ("--auto --no-auto", r"use --auto or --no-auto, not both"),
        ("--auto --client c", r"--auto and --no-auto are for every client"),
        ("x --client nowhere", r"no variable 'nowhere' in the notebook"),
        ("x --client not_a_client", r"ship to a distributed.Client, not int"),
        ("no_such_cell", r"'no_such_cell' is not a cell module: define it first"),
        ("--bogus", r"unrecognized arguments: --bogus"),
    ],
)
def test_ship_magic_mistakes_are_usage_errors(ip, client, line, message):
    ip.user_ns["not_a_client"] = 42
    modules = dict(__import__("sys").modules)
    with pytest.raises(UsageError, match=message):
        ip.run_line_magic("ship", line)
    assert set(__import__("sys").modules) >= set(modules)


# -- in a real kernel (a fresh process: no other cell modules, no other client) --


def test_what_the_workers_finder_serves():
    """The finder the workers get, on its own (not installed): a placeholder stands for any
    name, unpickles an instance, and raises when used; newer entries win whatever their
    order; real code that raises as it runs becomes a placeholder too."""
    import importlib.util
    import pickle
    from pathlib import Path

    from ipyexecmod.workers import placeholders

    finder = CellFinder(Path(placeholders.__file__).read_text("utf-8"))

    def load(name: str):
        spec = finder.find_spec(name)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    finder.merge({"absent": Entry(2, False, not_shipped("absent", "absent"), "f", None, False)})
    assert finder.merge({"absent": Entry(1, True, b"x = 1\n", "f", None, False)}) == set()
    module = load("absent")
    with pytest.raises(
        ImportError,
        match=r"cell module 'absent' was not shipped to this Dask cluster: run `%ship absent`",
    ):
        module.area(2)
    box = module.Box.__new__(module.Box)
    box.__setstate__({"side": 2})
    with pytest.raises(ImportError, match=r"was not shipped"):
        box.area()
    assert pickle.loads(pickle.dumps(3)) == 3
    finder.merge({"broken": Entry(1, True, b"import no_such_module_here\n", "f", None, False)})
    with pytest.raises(
        ImportError,
        match=r"'broken' failed to import on this Dask worker "
        r"\(ModuleNotFoundError: No module named 'no_such_module_here'\)",
    ):
        load("broken").f()
    assert finder.merge({"absent": Entry(3, True, b"x = 1\n", "f", None, False)}) == {"absent"}
    assert load("absent").x == 1


def test_a_client_that_cannot_be_given_the_modules_warns_at_the_end_of_a_cell(
    ip, client, monkeypatch
):
    from ipyexecmod.dask.shipping import shipper

    def gone(*args, **kwargs) -> None:
        raise OSError("the scheduler is gone")

    cluster = shipper.clusters[client.scheduler_info()["id"]]
    monkeypatch.setattr(cluster, "complete", False)  # as a client new to ipyexecmod
    monkeypatch.setattr(type(cluster), "send", gone)
    with pytest.warns(
        RuntimeWarning,
        match=r"^could not give the cell modules to <Client: .*the scheduler is gone$",
    ):
        assert ip.run_cell("x = 1").success


def test_dask_in_a_kernel(tmp_path):
    """The issue's first failure: a client made before a module, no %ship, and the task runs;
    with auto off, it fails fast, the workers stay healthy, and %ship then works."""
    pytest.importorskip("jupyter_client")
    with kernel_running(tmp_path / "ipython") as (_, kernel):
        assert execute_text(kernel, "%load_ext ipyexecmod")[0]["status"] == "ok"
        reply, _ = execute_text(
            kernel,
            "from distributed import Client, LocalCluster\n"
            "cluster = LocalCluster(n_workers=2, threads_per_worker=1, host='127.0.0.1', "
            "dashboard_address=':0')\n"
            "client = Client(cluster)\n"
            "workers = sorted(client.nthreads())\n"
            "def everywhere(f, *args):\n"
            "    return [client.submit(f, *args, workers=[w], pure=False).result(600)"
            " for w in workers]",
        )
        assert reply["status"] == "ok"
        execute_text(kernel, "%%as_module geo\ndef area(r):\n    return 3 * r * r\n")
        assert execute_text(kernel, "print(client.submit(geo.area, 2).result(600))")[1] == "12\n"
        execute_text(kernel, "%%as_module geo\ndef area(r):\n    return 3.14 * r * r\n")
        assert execute_text(kernel, "print(everywhere(geo.area, 2))")[1] == "[12.56, 12.56]\n"
        execute_text(kernel, "%%as_module geo.units\nMETRE = 1.0\n")  # geo becomes a package
        assert (
            execute_text(
                kernel,
                "import geo.units\nprint(everywhere(lambda: __import__('geo.units').units.METRE))",
            )[1]
            == "[1.0, 1.0]\n"
        )
        assert execute_text(kernel, "%ship --no-auto")[0]["status"] == "ok"
        execute_text(kernel, "%%as_module fresh\ndef f(x):\n    return -x\n")
        reply, text = execute_text(kernel, "client.submit(fresh.f, 1).result(600)")
        assert reply["status"] == "error"
        assert "ImportError: cell module 'fresh' was not shipped to this Dask cluster" in text
        assert execute_text(kernel, "print(len(client.run(lambda: 1)))")[1] == "2\n"
        assert execute_text(kernel, "%ship fresh")[0]["status"] == "ok"
        assert execute_text(kernel, "print(everywhere(fresh.f, 1))")[1] == "[-1, -1]\n"
        reply, _ = execute_text(kernel, "client.close(); cluster.close()")
        assert reply["status"] == "ok"


def test_a_client_made_and_used_in_the_cell_that_imports_dask(tmp_path):
    """The cell imports distributed for the first time, makes a cluster and a client, and
    submits a task of a cell module defined before: the client preload gave it the modules."""
    pytest.importorskip("jupyter_client")
    with kernel_running(tmp_path / "ipython") as (_, kernel):
        assert execute_text(kernel, "%load_ext ipyexecmod")[0]["status"] == "ok"
        execute_text(kernel, "%%as_module geo\ndef area(r):\n    return 3 * r * r\n")
        reply, text = execute_text(
            kernel,
            "import sys\n"
            "assert 'distributed' not in sys.modules\n"
            "from distributed import Client, LocalCluster\n"
            "with LocalCluster(n_workers=1, threads_per_worker=1, host='127.0.0.1', "
            "dashboard_address=':0') as cluster, Client(cluster) as client:\n"
            "    print(client.submit(geo.area, 2).result(600))",
        )
        assert (reply["status"], text) == ("ok", "12\n")


@pytest.fixture
def remote_client(tmp_path):
    """A scheduler and a worker started as separate programs, as on a real cluster: they
    share nothing with this process (not even the on-disk copies' directory)."""
    import subprocess
    import sys

    scheduler_file = tmp_path / "scheduler.json"
    env = {**os.environ, "PYTHONPATH": "", "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    common = {
        "cwd": tmp_path,
        "env": env,
        "stdout": subprocess.DEVNULL,
        "stderr": subprocess.DEVNULL,
    }
    scheduler = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "distributed.cli.dask_scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--dashboard-address",
            ":0",
            "--scheduler-file",
            str(scheduler_file),
        ],
        **common,
    )
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "distributed.cli.dask_worker",
            "--scheduler-file",
            str(scheduler_file),
            "--nthreads",
            "1",
            "--no-dashboard",
            "--host",
            "127.0.0.1",
            "--local-directory",
            str(tmp_path / "worker"),
        ],
        **common,
    )
    try:
        deadline = time.monotonic() + HANG_GUARD
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        with Client(scheduler_file=str(scheduler_file), timeout=HANG_GUARD) as client:
            client.wait_for_workers(1, timeout=HANG_GUARD)
            yield client
    finally:
        for process in (worker, scheduler):
            process.terminate()
            process.wait(timeout=HANG_GUARD)


def test_a_remote_scheduler_gets_the_modules_too(remote_client, unique):
    top = unique("remote")
    module = define(f"{top}.core", "def f(x):\n    return [x, 'v1']\n")
    assert remote_client.run_on_scheduler(os.getpid) != os.getpid()
    ship(remote_client, top)
    assert remote_client.submit(module.f, 1).result(timeout=HANG_GUARD) == [1, "v1"]
    define(f"{top}.core", "def f(x):\n    return [x, 'v2']\n")
    assert remote_client.submit(module.f, 1).result(timeout=HANG_GUARD) == [1, "v2"]
    on_scheduler = remote_client.run_on_scheduler(lambda: __import__(f"{top}.core").core.f(0))
    assert on_scheduler == [0, "v2"]


# -- found by review --


def test_no_stale_result_through_methods_wrappers_instances_or_imports(client, unique):
    helpers, geo = unique("helpers"), unique("geo")
    define(helpers, "K = 1\n")
    source = (
        f"import functools\nimport {helpers}\nFACTOR = 1\n"
        "class Shape:\n"
        "    def __init__(self, r):\n        self.r = r\n"
        f"    def area(self):\n        return self.r * {helpers}.K\n"
        "    def __call__(self, x):\n        return self.area() + x\n"
        "@functools.lru_cache\n"
        f"def cached(x):\n    return x * FACTOR\n"
        f"def plain(x):\n    return x * {helpers}.K\n"
    )
    module = define(geo, source)
    assert ship(client, geo) == sorted([geo, helpers])  # `helpers` too: geo imports it
    shape = module.Shape(2)
    calls = {
        "method": lambda: client.submit(shape.area),
        "instance": lambda: client.submit(shape, 0),
        "plain": lambda: client.submit(module.plain, 2),
        "wrapper": lambda: client.submit(module.cached, 2),
    }

    def results(futures):
        return {what: future.result(timeout=HANG_GUARD) for what, future in futures.items()}

    held = {what: call() for what, call in calls.items()}
    assert results(held) == dict.fromkeys(calls, 2)
    define(helpers, "K = 100\n")  # geo is unchanged, and reads helpers.K when called
    assert results({what: call() for what, call in calls.items()}) == {
        "method": 200,
        "instance": 200,
        "plain": 200,
        "wrapper": 2,
    }
    define(geo, source.replace("FACTOR = 1", "FACTOR = 10"))
    assert module.cached(2) == 20
    assert client.submit(module.cached, 2).result(timeout=HANG_GUARD) == 20


def test_a_module_ships_with_the_cell_modules_it_imports(client, unique):
    first, second = unique("first"), unique("second")
    module = define(first, "def f():\n    return 'alone'\n")
    define(second, "def g():\n    return 'second'\n")
    define(first, f"from {second} import g\ndef f():\n    return g()\n")  # an edited cell
    assert ship(client, first) == sorted([first, second])
    assert set(on_each_worker(client, module.f).values()) == {"second"}
    # A module it starts to import later is shipped when it is redefined.
    third = unique("third")
    define(third, "def h():\n    return 'third'\n")
    define(first, f"from {third} import h\ndef f():\n    return h()\n")
    assert set(on_each_worker(client, module.f).values()) == {"third"}


def test_two_clients_of_one_cluster_share_what_it_has(unique):
    shipped, other = unique("shared"), unique("other")
    module = define(shipped, "def f():\n    return 'real'\n")
    define(other, "x = 1\n")
    with _cluster(1) as cluster, Client(cluster) as first, Client(cluster) as second:
        ship(first, shipped)
        ship(second, other)  # must not send a placeholder over `shipped`
        cluster.scale(2)
        second.wait_for_workers(2, timeout=HANG_GUARD)
        assert set(on_each_worker(second, module.f).values()) == {"real"}


def test_a_version_that_fails_on_the_workers_fails_its_tasks_never_runs_an_older_one(unique):
    """The kernel has the new version: a worker that cannot run it says so in every task
    that needs it (a worker that joins later too), and never runs the version before."""
    name = unique("fragile")
    module = define(name, "def f():\n    return 'v1'\n")
    on_workers_only = f"import os\nif os.getpid() != {os.getpid()}:\n    raise RuntimeError('no')\n"
    failing = rf"cell module '{name}' failed to import on this Dask worker \(RuntimeError: no\)"
    with _cluster(1) as cluster, Client(cluster) as client:
        ship(client, name)
        assert set(on_each_worker(client, module.f).values()) == {"v1"}  # imported there
        with pytest.warns(
            RuntimeWarning,
            match=rf"'{name}' could not be loaded on the workers \(RuntimeError: no\): a task "
            r"that needs it fails there with this error; fix the cell",
        ):
            define(name, on_workers_only + "def f():\n    return 'v2'\n")
        assert module.f() == "v2"
        with pytest.raises(ImportError, match=failing):
            client.submit(module.f).result(timeout=HANG_GUARD)
        client.restart()  # new worker processes get the same version, and say so
        with pytest.raises(ImportError, match=failing):
            client.submit(module.f).result(timeout=HANG_GUARD)
        define(name, "def f():\n    return 'v3'\n")  # fixed: every worker runs it
        assert set(on_each_worker(client, module.f).values()) == {"v3"}
        broken = unique("broken")
        define(broken, on_workers_only)
        with pytest.raises(
            ShipError, match=rf"'{broken}' could not be loaded on the workers \(RuntimeError: no\)"
        ):
            ship(client, broken)


def test_a_name_that_hides_another_module_is_neither_shipped_nor_stubbed(client, unique):
    define_forced = lambda: cells.define(  # noqa: E731
        "statistics", "x = 1\n", force=True, store=kernel_store()
    )
    import statistics as real

    try:
        define_forced()
        with pytest.raises(
            ShipError,
            match=r"cannot ship 'statistics': on the workers it would "
            r"hide the module 'statistics' from .*statistics",
        ):
            ship(client, "statistics")
        ship(client, define(unique("innocent"), "x = 1\n").__name__)
        shipped_files = client.run(
            lambda dask_worker: sorted(os.listdir(dask_worker.local_directory))
        )
        assert shipped_files
        assert not any("statistics.py" in files for files in shipped_files.values())
    finally:
        __import__("sys").modules["statistics"] = real
        cells.finder.modules.pop("statistics")  # no public way to undefine, in a test only


def test_ship_without_distributed_says_how_to_install_it(tmp_path):
    import subprocess
    import sys

    script = (
        "import sys\n"
        "sys.modules['distributed'] = None  # as if it were not installed\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "from IPython.core.error import UsageError\n"
        "ip = InteractiveShell.instance()\n"
        "ip.run_line_magic('load_ext', 'ipyexecmod')\n"
        "ip.run_cell_magic('as_module', 'geo', 'x = 1\\n')\n"
        "try:\n"
        "    ip.run_line_magic('ship', 'geo')\n"
        "except UsageError as exc:\n"
        "    print(exc)\n"
    )
    env = {**os.environ, "IPYTHONDIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=HANG_GUARD
    )
    assert result.stdout == (
        "ipyexecmod.dask needs Dask's distributed package: pip install 'ipyexecmod[dask]'\n"
    ), result.stderr


def test_a_closed_client_or_a_bad_name_type_is_refused(client, unique, ip):
    name = unique("closed")
    define(name, "x = 1\n")
    with pytest.raises(TypeError, match=r"module names are str, not int"):
        ship(client, 1)

    async def with_an_asynchronous_client() -> None:
        asynchronous = await Client(client.scheduler.address, asynchronous=True)
        try:
            with pytest.raises(TypeError, match=r"through a synchronous Client; this one is async"):
                ship(asynchronous, name)
        finally:
            await asynchronous.close()

    asyncio.run(with_an_asynchronous_client())
    with _cluster(1) as cluster:
        closed = Client(cluster)
        closed.close()
        ip.user_ns["closed_client"] = closed
        with pytest.raises(UsageError, match=r"is closed; ship to a running client"):
            ip.run_line_magic("ship", f"{name} --client closed_client")


def test_a_failing_listener_becomes_a_warning(unique):
    def listener(name):
        raise OSError("disk on fire")

    cells.finder.listeners.append(listener)
    try:
        name = unique("listened")
        with pytest.warns(
            RuntimeWarning, match=rf"module '{name}' is defined, but .* disk on fire"
        ):
            module = cells.define(name, "x = 1\n")
        assert module.x == 1
    finally:
        cells.finder.listeners.remove(listener)


# -- every client, with no %ship --


@pytest.fixture
def auto():
    """Auto mode on (as in a notebook), off again after the test."""
    import ipyexecmod.dask

    ipyexecmod.dask.set_auto(True)
    yield
    ipyexecmod.dask.set_auto(False)


def test_distributed_keeps_every_client_where_ipyexecmod_looks(unique):
    """Pins distributed's behaviour ipyexecmod relies on: ``Client._instances`` holds every
    client made, and a client preload named in the configuration runs as a client starts,
    before the constructor returns."""
    import dask.config

    started = []
    preload = (
        "import sys\n"
        "def dask_setup(client):\n"
        "    sys.modules['__main__'].__dict__.setdefault('_preloaded', []).append(client)\n"
    )
    main = __import__("__main__")
    with (
        _cluster(1) as cluster,
        dask.config.set({"distributed.client.preload": [preload]}),
        Client(cluster, set_as_default=False) as client,
    ):
        started = main.__dict__.pop("_preloaded", [])
        assert client in Client._instances
    assert started == [client]


def test_a_client_made_before_the_module_runs_it_with_no_ship(auto, unique):
    with _cluster(2) as cluster, Client(cluster, set_as_default=False) as client:
        name = unique("after")
        module = define(name, "def f(x):\n    return ('v1', x)\n")
        assert set(on_each_worker(client, module.f, 1).values()) == {("v1", 1)}
        define(name, "def f(x):\n    return ('v2', x)\n")
        assert client.submit(module.f, 1).result(timeout=HANG_GUARD) == ("v2", 1)
        cluster.scale(3)  # a worker that joins later
        client.wait_for_workers(3, timeout=HANG_GUARD)
        assert set(on_each_worker(client, module.f, 2).values()) == {("v2", 2)}


def test_a_client_made_after_the_module_gets_it_as_it_starts(auto, unique):
    top = unique("made")
    module = define(f"{top}.inner", "def f():\n    return 'inner'\n")
    with _cluster(1) as cluster, Client(cluster, set_as_default=False) as client:
        # No cell ends between the client's start and the task: the preload did it.
        assert client.submit(module.f).result(timeout=HANG_GUARD) == "inner"


def test_code_that_fails_on_the_workers_fails_the_task_not_the_worker(auto, unique):
    """Auto mode imports on first use; what raises there becomes a placeholder, so the
    worker unpickles the task, the task fails with the reason, and the worker goes on."""
    name = unique("picky")
    workers_only = f"import os\nif os.getpid() != {os.getpid()}:\n    import no_such_module_here\n"
    module = define(name, workers_only + "def f():\n    return 1\n")
    with _cluster(1) as cluster, Client(cluster, set_as_default=False) as client:
        with pytest.raises(
            ImportError,
            match=rf"cell module '{name}' failed to import on this Dask worker "
            r"\(ModuleNotFoundError: No module named 'no_such_module_here'\)",
        ):
            client.submit(module.f).result(timeout=HANG_GUARD)
        assert client.submit(abs, -1).result(timeout=HANG_GUARD) == 1
        define(name, "def f():\n    return 2\n")  # fixed: the next task runs it
        assert client.submit(module.f).result(timeout=HANG_GUARD) == 2


def test_a_remote_cluster_gets_every_module_with_no_ship(remote_client, auto, unique):
    top = unique("remote_auto")
    module = define(f"{top}.core", "def f(x):\n    return [x, 'v1']\n")
    assert remote_client.submit(module.f, 1).result(timeout=HANG_GUARD) == [1, "v1"]
    define(f"{top}.core", "def f(x):\n    return [x, 'v2']\n")
    assert remote_client.submit(module.f, 1).result(timeout=HANG_GUARD) == [1, "v2"]


def test_a_task_running_through_a_redefinition_runs_one_version(client, unique):
    """The workers import a new version as a new module object: a task under way keeps the
    one it started with, whole (never new helpers under old code)."""
    from distributed import Event

    name = unique("steady")
    source = (
        "from distributed import Event\n"
        "TAG = {tag!r}\n"
        "def helper():\n"
        "    return TAG\n"
        "def slow(started, go):\n"
        "    Event(started).set()\n"
        "    Event(go).wait()\n"
        "    return (TAG, helper())\n"
    )
    module = define(name, source.format(tag="v1"))
    ship(client, name)
    started, go = unique("started"), unique("go")
    running = client.submit(module.slow, started, go, pure=False)
    assert Event(started, client=client).wait(timeout=HANG_GUARD)
    define(name, source.format(tag="v2"))
    Event(go, client=client).set()
    assert running.result(timeout=HANG_GUARD) == ("v1", "v1")
    assert client.submit(module.helper).result(timeout=HANG_GUARD) == "v2"


def test_auto_on_again_sends_the_code_of_what_had_placeholders(unique):
    import ipyexecmod.dask

    ipyexecmod.dask.set_auto(False)
    with _cluster(1) as cluster, Client(cluster, set_as_default=False) as client:
        ipyexecmod.dask.enable()
        module = define(unique("later"), "def f():\n    return 'code'\n")
        with pytest.raises(ImportError, match="was not shipped"):
            client.submit(module.f).result(timeout=HANG_GUARD)
        ipyexecmod.dask.set_auto(True)  # what the ImportError suggests: %ship --auto
        try:
            assert client.submit(module.f).result(timeout=HANG_GUARD) == "code"
        finally:
            ipyexecmod.dask.set_auto(False)


def test_load_ext_after_a_client_was_made_sends_it_the_code(shell, unique):
    """The notebook's default (auto mode) holds from the first greeting: a client made while
    the extension was unloaded gets code, not placeholders, when it is loaded again."""
    name = unique("reloaded")
    shell.run_line_magic("load_ext", "ipyexecmod")
    try:
        shell.run_cell_magic("as_module", name, "def f():\n    return 'code'\n")
        shell.run_line_magic("unload_ext", "ipyexecmod")
        with _cluster(1) as cluster, Client(cluster, set_as_default=False) as client:
            shell.run_line_magic("load_ext", "ipyexecmod")
            module = shell.user_ns[name]
            assert client.submit(module.f).result(timeout=HANG_GUARD) == "code"
    finally:
        shell.run_line_magic("unload_ext", "ipyexecmod")


def test_a_module_restored_from_a_lasting_directory_is_sent_as_it_is_imported(
    remote_client, auto, unique, restoring
):
    """An earlier kernel wrote the copy; this one imports it after its client got every
    module, and submits in the same breath: the import itself sent it."""
    from helpers import restored

    source = "def f(x):\n    return ('restored', x)\n"
    module = restored(unique("restored"), source, restoring)
    assert remote_client.submit(module.f, 1).result(timeout=HANG_GUARD) == ("restored", 1)


def test_the_preload_lets_a_client_start_where_ipyexecmod_is_not_installed():
    """Dask passes the kernel's configuration to the processes it starts (an SSHCluster's
    workers): a client made there, with ipyexecmod's preload in it, still starts."""
    from helpers import run_python

    import ipyexecmod.dask
    from ipyexecmod.dask import preload

    ipyexecmod.dask.enable()
    try:
        assert preload.PRELOAD in dask_config_preloads()
        assert preload._LOGGER.getEffectiveLevel() >= 30  # Dask's lines about it: not shown
        out = run_python(f"""
            import sys
            sys.modules["ipyexecmod"] = None  # not installed
            import dask.config
            from distributed import Client, LocalCluster
            with dask.config.set({{"distributed.client.preload": [{preload.PRELOAD!r}]}}):
                with LocalCluster(n_workers=1, processes=False, dashboard_address=":0") as cluster:
                    with Client(cluster) as client:
                        print(client.submit(sum, [40, 2]).result({HANG_GUARD}))
            """)
        assert out.stdout == "42\n", out.stderr
    finally:
        ipyexecmod.dask.disable()
    assert preload.PRELOAD not in dask_config_preloads()


def dask_config_preloads() -> list[str]:
    import dask.config

    return list(dask.config.get("distributed.client.preload", default=[]))


def test_two_kernels_sending_one_name_in_two_versions_run_neither(remote_client, auto, unique):
    """A worker process holds one module of a name: while two connected kernels send
    different ones, every task of either fails saying so (none silently runs the other's);
    once one is gone, the other's next definition runs everywhere."""
    import subprocess
    import sys

    name = unique("utils")
    module = define(name, "def f():\n    return 'kernel A'\n")
    assert remote_client.submit(module.f).result(timeout=HANG_GUARD) == "kernel A"
    other = subprocess.Popen(  # kernel B: another process, a client of the same scheduler
        [
            sys.executable,
            "-c",
            _KERNEL_B.format(address=remote_client.scheduler.address, name=name),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        said = other.stdout.readline()  # B has defined and tried its own module
        assert said.startswith(
            "B: ImportError two notebook kernels send different modules named"
        ), said + other.stderr.read() if not said else said
        conflict = rf"two notebook kernels send different modules named '{name}'"
        with pytest.raises(ImportError, match=conflict):
            remote_client.submit(module.f, pure=False).result(timeout=HANG_GUARD)
        with pytest.warns(RuntimeWarning, match=conflict):
            define(name, "def f():\n    return 'kernel A, again'\n")
    finally:
        other.communicate("\n", timeout=HANG_GUARD)  # B closes its client and exits
    define(name, "def f():\n    return 'kernel A, alone'\n")
    assert remote_client.submit(module.f).result(timeout=HANG_GUARD) == "kernel A, alone"


_KERNEL_B = """
import sys
from distributed import Client
from ipyexecmod import cells
from ipyexecmod.cells.version import CellFile
import ipyexecmod.dask
with Client({address!r}, set_as_default=False) as client:
    ipyexecmod.dask.set_auto(True)
    module = cells.define({name!r}, "def f():\\n    return 'kernel B'\\n")
    try:
        print("B:", client.submit(module.f).result(600), flush=True)
    except ImportError as exc:
        print("B: ImportError", exc, flush=True)
    sys.stdin.readline()
"""
