"""Worker processes of a real ipykernel run the latest version of a cell module (issue 16).

One kernel, driven through jupyter_client as a notebook drives it.  Its pools live as long
as it does, as a user's would: made once, used across redefinitions.  Each pool of the
kernel has a single worker, so the task after a redefinition runs in the very process that
ran the old version (a second worker, started later, would import the new one anyway).

The tests run in file order: the first one needs joblib's workers as the kernel fixture
started them, before any definition, and joblib replaces its workers when a task fails.
"""

from __future__ import annotations

import ast
import textwrap

import pytest

pytest.importorskip("jupyter_client")
pytest.importorskip("joblib")

from helpers import HANG_GUARD
from kernels import execute, kernel_running, shown

SA = """\
def f():
    return "f{n}"


class Scale:
    def __init__(self, k):
        self.k = k

    def apply(self):
        return f"apply{n} x{{self.k}}"
"""

SB = """\
import os
from {sa} import f


def probe(scale):
    return os.getpid(), (f(), scale.apply())
"""

#: In the kernel, from the start: joblib's workers, started before any definition.
SETUP = f"""\
import concurrent.futures, multiprocessing, os
from joblib import Parallel, delayed

HANG = {HANG_GUARD}


def parallel():
    # The same arguments every time, so that loky keeps its workers between calls.
    return Parallel(n_jobs=2, idle_worker_timeout=HANG, timeout=HANG)


parallel()(delayed(abs)(-1) for _ in range(2))
early = {{p.pid for p in multiprocessing.active_children()}}
print(len(early))
"""

#: Pools with one worker, for each start method, their workers started now (an executor
#: starts them at its first task); ``ask`` gives each pool's answer to a task.
POOLS = """\
def make_pools(methods, label=""):
    made = {}
    for method in methods:
        context = multiprocessing.get_context(method)
        executor = concurrent.futures.ProcessPoolExecutor(1, mp_context=context)
        made[f"{label}executor {method}"] = executor
        made[f"{label}pool {method}"] = context.Pool(1)
    ask(os.getpid, among=made)
    return made


def ask(fn, *args, among=None):
    answers = {}
    for name, pool in (pools if among is None else among).items():
        try:
            if isinstance(pool, concurrent.futures.Executor):
                answers[name] = pool.submit(fn, *args).result(HANG)
            else:
                answers[name] = pool.apply_async(fn, args).get(HANG)
        except Exception as exc:
            answers[name] = (type(exc).__name__, str(exc))
    return answers


def close(made):
    for pool in made.values():
        pool.shutdown() if isinstance(pool, concurrent.futures.Executor) else pool.terminate()


pools = make_pools(("fork", "spawn", "forkserver"))
"""


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    with kernel_running(tmp_path_factory.mktemp("ipython")) as (_, client):
        run(client, "%load_ext ipyexecmod")
        assert run(client, SETUP) == "2\n"
        yield client


@pytest.fixture(scope="module")
def pools(kernel):
    run(kernel, POOLS)
    yield
    run(kernel, "close(pools)")


def run(client, code: str) -> str:
    """What ``code`` showed in the kernel; it must succeed."""
    reply, messages = execute(client, textwrap.dedent(code))
    assert reply["status"] == "ok", shown(messages)
    return shown(messages)


def fails(client, code: str) -> tuple[str, str]:
    """The error class and message of ``code``, which must fail."""
    reply, messages = execute(client, textwrap.dedent(code))
    assert reply["status"] == "error", shown(messages)
    return reply["ename"], reply["evalue"]


def define(client, name: str, body: str, options: str = "") -> str:
    return run(client, f"%%as_module {options} {name}\n{body}")


def answer(client, code: str) -> object:
    """The value of the expression ``code`` in the kernel, printed and read back."""
    return ast.literal_eval(run(client, f"print(repr(({code})))"))


def test_joblib_workers_started_before_the_first_definition_run_each_new_version(kernel):
    define(kernel, "kjsa", SA.format(n=1))
    define(kernel, "kjsb", SB.format(sa="kjsa"))
    # Each of the early workers runs the first version, and so holds it.
    code = """\
    seen = {}
    for _ in range(100):
        seen.update(parallel()(delayed(kjsb.probe)(kjsa.Scale(2)) for _ in range(8)))
        if set(seen) == early:
            break
    print(repr((sorted(set(seen.values())), set(seen) == early)))
    """
    assert ast.literal_eval(run(kernel, code)) == ([("f1", "apply1 x2")], True)
    assert define(kernel, "kjsa", SA.format(n=2)) == "re-ran kjsb (it imports kjsa)\n"
    after = "dict(parallel()(delayed(kjsb.probe)(kjsa.Scale(2)) for _ in range(8)))"
    run(kernel, f"after = {after}")
    assert answer(kernel, "sorted(set(after.values())), set(after) <= early") == (
        [("f2", "apply2 x2")],
        True,
    )
    results = "parallel()(delayed(kjsa.Scale)(k) for k in range(4))"
    assert answer(kernel, f"[type(s) is kjsa.Scale for s in {results}]") == [True] * 4


def test_pools_made_before_a_redefinition_run_it_with_their_dependents(kernel, pools):
    define(kernel, "kpsa", SA.format(n=1))
    define(kernel, "kpsb", SB.format(sa="kpsa"))
    # Fork pools made now: their workers hold the kernel's own kpsa and kpsb objects.  The
    # workers of the pools made before import them for the first task.
    run(kernel, "forked = make_pools(['fork'], 'late ')")
    probe = "ask(kpsb.probe, kpsa.Scale(3)) | ask(kpsb.probe, kpsa.Scale(3), among=forked)"
    first = answer(kernel, probe)
    assert define(kernel, "kpsa", SA.format(n=2)) == "re-ran kpsb (it imports kpsa)\n"
    second = answer(kernel, probe)
    run(kernel, "close(forked)")
    assert isinstance(first, dict) and isinstance(second, dict)
    assert len(first) == 8 and first.keys() == second.keys()
    for name, (pid, versions) in first.items():
        assert versions == ("f1", "apply1 x3"), name
        assert second[name] == (pid, ("f2", "apply2 x3")), name  # the same worker


def test_a_memory_only_module_gives_an_import_error_and_the_pools_live_on(kernel, pools):
    define(kernel, "kmem", "def f():\n    return 'here only'\n", "--no-persist")
    define(kernel, "kmemok", "def f():\n    return 'ok'\n")
    answers = answer(kernel, "ask(kmem.f)")
    assert isinstance(answers, dict) and len(answers) == 6
    for name, (ename, message) in answers.items():
        assert ename == "ImportError", name
        assert "cell module 'kmem' is kept in the memory of the kernel" in message, name
        assert "define it again without --no-persist" in message, name
    assert answer(kernel, "set(ask(kmemok.f).values())") == {"ok"}
    ename, evalue = fails(kernel, "parallel()(delayed(kmem.f)() for _ in range(2))")
    assert ename == "ImportError" and "kept in the memory of the kernel" in evalue
    assert answer(kernel, "parallel()(delayed(kmemok.f)() for _ in range(2))") == ["ok", "ok"]


OWN_POOL = """\
import concurrent.futures, multiprocessing
from joblib import Parallel, delayed


def cube(x):
    return x**{power}


{pool}
"""

POOLS_OVER_OWN_FUNCTIONS = {
    "Pool.map": (
        "with multiprocessing.get_context('{method}').Pool(1) as pool:\n"
        "    CUBES = pool.map_async(cube, range(4)).get({hang})"
    ),
    "ProcessPoolExecutor.map": (
        "context = multiprocessing.get_context('{method}')\n"
        "with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:\n"
        "    CUBES = list(pool.map(cube, range(4), timeout={hang}))"
    ),
    "joblib": "CUBES = Parallel(n_jobs=2, timeout={hang})(delayed(cube)(x) for x in range(4))",
}


def own_pool(kind: str, method: str, power: int) -> str:
    pool = POOLS_OVER_OWN_FUNCTIONS[kind].format(method=method, hang=HANG_GUARD)
    return OWN_POOL.format(power=power, pool=pool)


def test_a_fork_pool_in_a_cell_modules_own_code_runs_the_version_being_defined(kernel):
    for kind in ("Pool.map", "ProcessPoolExecutor.map"):
        define(kernel, "kforked", own_pool(kind, "fork", 3))
        assert answer(kernel, "kforked.CUBES") == [0, 1, 8, 27], kind
        define(kernel, "kforked", own_pool(kind, "fork", 2))
        assert answer(kernel, "kforked.CUBES") == [0, 1, 4, 9], kind


@pytest.mark.parametrize("kind", list(POOLS_OVER_OWN_FUNCTIONS))
def test_a_spawn_pool_in_a_cell_modules_own_code_fails_fast(kernel, kind):
    name = "kspawned_" + kind.partition(".")[0].lower()
    ename, evalue = fails(kernel, f"%%as_module {name}\n{own_pool(kind, 'spawn', 3)}")
    assert ename == "ImportError", evalue
    assert f"cell module {name!r} is being defined in the kernel" in evalue
    assert "use the pool in a later cell" in evalue
    assert fails(kernel, f"import {name}")[0] == "ModuleNotFoundError"
    # A redefinition fails the same way, and the version before it stays.
    define(kernel, name, "CUBES = None\n")
    ename, evalue = fails(kernel, f"%%as_module {name}\n{own_pool(kind, 'spawn', 3)}")
    assert ename == "ImportError" and "is being defined in the kernel" in evalue
    assert answer(kernel, f"{name}.CUBES") is None
