"""Threads importing a cell module while it is redefined wait, then see one whole version."""

from __future__ import annotations

import sys
import threading
import time

import pytest
from helpers import HANG_GUARD, import_noting_the_wait

from ipyexecmod import cells
from ipyexecmod.cells import locks

THREADS = 8
REDEFINITIONS = 300
FAIL_EVERY = 4  # every fourth redefinition raises half way and is rolled back


def version(number: int, *, fail: bool = False) -> str:
    """A module whose names are all set from ``number``, with a pause between them.

    Before it changes any name it counts itself in the ``begun`` fixture's list.
    """
    return (
        "import sys, time\n"
        "sys.modules['_threads_begun'][0] += 1\n"
        f"VERSION = {number}\n"
        "time.sleep(0.001)  # half done: an import that did not wait would see a mix\n"
        f"def f():\n    return {number}\n"
        + (f"raise RuntimeError('version {number} fails')\n" if fail else "")
        + f"DONE = {number}\n"
    )


@pytest.fixture
def begun():
    """How many definitions of a :func:`version` module have begun to change it.

    A thread that reads a module's names after importing it reads one version only if
    no definition began in the meantime: a redefinition changes the same module object,
    and a busy machine can pause the reader between two of its names for that long.
    """
    count = [0]
    sys.modules["_threads_begun"] = count  # type: ignore[assignment]
    yield count
    del sys.modules["_threads_begun"]


@pytest.fixture
def name():
    name = f"_threaded_{time.monotonic_ns()}"
    yield name
    sys.modules.pop(name, None)


def test_imports_wait_for_a_redefinition_and_see_one_whole_version(name, begun):
    cells.define(name, version(0))
    good, failed = {0}, set()
    seen: list[tuple[object, ...]] = []
    waited = [0] * THREADS
    stop = threading.Event()
    errors: list[BaseException] = []

    def importer(index: int) -> None:
        try:
            while not stop.is_set():
                busy = name in locks.in_progress
                if index % 2:
                    before = begun[0]
                    module = __import__(name)
                    triple = (module.VERSION, module.f(), module.DONE)
                else:
                    before = begun[0]
                    namespace: dict[str, object] = {}
                    exec(f"from {name} import VERSION, f, DONE", namespace)
                    f = namespace["f"]
                    triple = (namespace["VERSION"], f(), namespace["DONE"])  # type: ignore[operator]
                if begun[0] == before:  # no later definition changed what this thread read
                    seen.append(triple)
                    waited[index] += busy
                time.sleep(0)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=importer, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    try:
        for number in range(1, REDEFINITIONS + 1):
            fail = number % FAIL_EVERY == 0
            if fail:
                with pytest.raises(RuntimeError, match=f"version {number} fails"):
                    cells.define(name, version(number, fail=True))
                failed.add(number)
            else:
                cells.define(name, version(number))
                good.add(number)
            time.sleep(0.001)  # a pause, as between cells, in which importers get through
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert not errors, errors
    print(f"{len(seen)} imports, {sum(waited)} during a redefinition")
    module = sys.modules[name]
    assert (module.VERSION, module.f(), module.DONE) == (max(good),) * 3
    mixed = [triple for triple in seen if len(set(triple)) != 1]
    assert mixed == []
    assert {triple[0] for triple in seen} <= good  # never a version rolled back
    assert sum(waited) > REDEFINITIONS // 10  # imports did arrive during redefinitions
    assert len(failed) == REDEFINITIONS // FAIL_EVERY


def test_an_import_waiting_for_a_first_definition_that_fails_gets_an_import_error(name):
    ready, waiting = threading.Event(), threading.Event()
    outcome: list[BaseException | object] = []

    def importer() -> None:
        ready.wait()
        try:  # 3.13 raises at the import; 3.11 and 3.12 return the module, dead
            module = import_noting_the_wait(name, waiting)
            outcome.append(module)
            module.X
        except ImportError as exc:
            outcome.append(exc)
        finally:
            waiting.set()  # whatever happened, the definition goes on

    thread = threading.Thread(target=importer)
    thread.start()
    sys.modules["_threads_ready"] = ready  # type: ignore[assignment]
    sys.modules["_threads_waiting"] = waiting  # type: ignore[assignment]
    try:
        with pytest.raises(ZeroDivisionError):
            cells.define(
                name,
                "import sys\nsys.modules['_threads_ready'].set()\n"
                f"sys.modules['_threads_waiting'].wait({HANG_GUARD})\nX = 1 / 0\n",
            )
    finally:
        del sys.modules["_threads_ready"], sys.modules["_threads_waiting"]
        thread.join()
    assert name not in sys.modules
    error = outcome[-1]
    assert isinstance(error, ImportError)
    if len(outcome) == 2:  # it got hold of the module: every name of it raises
        with pytest.raises(ImportError, match="its definition failed in another thread"):
            outcome[0].anything
    assert error.name == name
    assert str(error) == (
        f"cannot import {name!r}: its definition failed in another thread while this "
        f"import waited for it, so the module it found is gone; import it again"
    )


def test_an_import_waiting_for_a_first_definition_gets_the_whole_module(name):
    ready, waiting = threading.Event(), threading.Event()
    outcome: list[object] = []

    def importer() -> None:
        ready.wait()
        try:
            module = import_noting_the_wait(name, waiting)
            outcome.append((module, getattr(module, "LAST", None)))
        finally:
            waiting.set()  # whatever happened, the definition goes on

    thread = threading.Thread(target=importer)
    thread.start()
    sys.modules["_threads_ready"] = ready  # type: ignore[assignment]
    sys.modules["_threads_waiting"] = waiting  # type: ignore[assignment]
    try:
        module = cells.define(
            name,
            "import sys\nsys.modules['_threads_ready'].set()\n"
            f"sys.modules['_threads_waiting'].wait({HANG_GUARD})\nLAST = 1\n",
        )
    finally:
        del sys.modules["_threads_ready"], sys.modules["_threads_waiting"]
        thread.join()
    assert outcome == [(module, 1)]


def test_the_defining_thread_imports_its_module_as_partially_initialized(name):
    source = f"import {name} as me\nSELF = me\nfrom {name} import LATER\nLATER = 1\n"
    with pytest.raises(ImportError, match=rf"partially initialized module '{name}'"):
        cells.define(name, source)
    assert name not in sys.modules
    module = cells.define(name, f"import {name} as me\nSELF = me\n")
    assert module.SELF is module


def test_definitions_from_two_threads_run_one_at_a_time(name):
    log: list[str] = []
    sys.modules["_threads_log"] = log  # type: ignore[assignment]
    body = (
        "import sys, time\nlog = sys.modules['_threads_log']\n"
        "log.append('start ' + {tag!r})\ntime.sleep(0.05)\nlog.append('end ' + {tag!r})\n"
    )
    try:
        threads = [
            threading.Thread(target=cells.define, args=(f"{name}_{tag}", body.format(tag=tag)))
            for tag in "ab"
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        del sys.modules["_threads_log"]
        for tag in "ab":
            sys.modules.pop(f"{name}_{tag}", None)
    assert sorted(log) == ["end a", "end b", "start a", "start b"]
    assert [entry.split()[1] for entry in log] in (list("aabb"), list("bbaa"))
