"""Issue 16's speed goals: a cell module in worker processes, against the same functions
in an ordinary module file, side by side.

Both rows define, in this process (the kernel's part: the board, the private store),
a cell module of :data:`REFERENCES` small functions, and write the same source as an
ordinary ``.py`` file in a directory put on :data:`sys.path`.  Spawned processes
inherit :data:`sys.path`, so they import the cell module through its stand-in in the
board's ``.boot`` directory, and the ordinary one from its file.
"""

from __future__ import annotations

import importlib
import itertools
import multiprocessing
import pickle
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import ModuleType
from typing import Any

from harness import Goal, Paired, Row, Settings, iqr, paired, quantity, wall
from workloads import fresh_name, functions

from ipyexecmod import cells
from ipyexecmod.store import kernel_store

#: Functions in each module, and references in the payload of the freshness row.
REFERENCES = 100
#: Round trips of each side before timing: the worker has imported both modules.
WARM_UP = 20
SPAWN = multiprocessing.get_context("spawn")
_edits = itertools.count(2)


def pool_rows(settings: Settings) -> list[Row]:
    """``submit(f, x).result()`` on a warm spawned pool of one worker: ``f`` a cell
    module's function, against the same function from an ordinary module file."""
    cell, plain = _modules()
    with ProcessPoolExecutor(1, mp_context=SPAWN) as pool:

        def round_trip(module: ModuleType) -> Callable[[], object]:
            return lambda: pool.submit(module.f1, 2).result()

        for _ in range(WARM_UP):
            if {round_trip(cell)(), round_trip(plain)()} != {3}:  # f1(2)
                msg = "the cell module's function and the ordinary one disagree in the worker"
                raise RuntimeError(msg)
        _expect(pool.submit(spec_kind, cell.__name__).result(), "WatchedSpec", cell)
        timing = paired(round_trip(cell), round_trip(plain), settings.pairs, settings.inner)
    return [
        Row(
            what="a task on a warm pool (`ProcessPoolExecutor`, spawn, 1 worker) calling a "
            "cell module's function: `submit(f, 2).result()`, against the same function "
            "imported from an ordinary module file",
            candidate="cell module",
            baseline="ordinary .py",
            timing=timing,
            goal=Goal(1.05),
            release=True,
        )
    ]


def freshness_rows(settings: Settings) -> list[Row]:
    """In a spawned child that imported the cell module through the board: ``pickle.loads``
    of :data:`REFERENCES` references to its functions, against the same to the ordinary
    module's, per reference; then, for information, the same loads right after this
    process redefined the cell module (one catch-up) against the next one."""
    cell, plain = _modules()
    ours, theirs = SPAWN.Pipe()
    child = SPAWN.Process(
        target=watcher, args=(theirs, cell.__name__, plain.__name__, settings), daemon=True
    )
    child.start()
    theirs.close()
    try:
        _expect(_receive(ours, child), "WatchedSpec", cell)
        unchanged: Paired = _receive(ours, child)
        catch_ups = list(_catch_ups(ours, child, cell, settings.pairs))
        ours.send(None)
    finally:
        child.join(timeout=60)
        if child.is_alive():
            child.kill()
    changed = Paired([c for c, _ in catch_ups], [s for _, s in catch_ups])
    return [_freshness_row(unchanged, changed)]


def _freshness_row(unchanged: Paired, catch_ups: Paired) -> Row:
    costs = catch_ups.differences
    spread = iqr(costs)
    around = (
        f", IQR {quantity(spread[0], 's')} \N{EN DASH} {quantity(spread[1], 's')}" if spread else ""
    )
    return Row(
        what=f"the freshness check in a worker when nothing changed, per reference: "
        f"`pickle.loads` of {REFERENCES} references to a cell module's functions, against "
        f"the same to an ordinary module's, in a spawned child that imported the cell "
        f"module through the board",
        candidate="cell module",
        baseline="ordinary .py",
        timing=unchanged,
        note=f"for information, one catch-up (the first loads after the kernel redefined "
        f"the cell module, which imports it again from its copy, minus the next loads): "
        f"{quantity(statistics.median(costs), 's')}{around}, over {len(costs)} redefinitions",
        goal=Goal(2e-6, "s", "overhead"),
        release=True,
    )


def _catch_ups(
    connection: Connection, child: BaseProcess, cell: ModuleType, count: int
) -> Iterator[tuple[float, float]]:
    """Redefine ``cell`` ``count`` times, each time letting the child time its first
    loads after the change and the next one."""
    for _ in range(count):
        edit = next(_edits)
        cells.define(cell.__name__, functions(REFERENCES, edit), store=kernel_store())
        connection.send(edit)
        changed, same, seen = _receive(connection, child)
        if seen != edit:
            msg = f"the child ran version {seen} of {cell.__name__} after the kernel's {edit}"
            raise RuntimeError(msg)
        yield changed, same


def watcher(connection: Connection, cell: str, plain: str, settings: Settings) -> None:
    """The child of :func:`freshness_rows`: times the loads, sends the times back."""
    modules = [importlib.import_module(name) for name in (cell, plain)]
    connection.send(spec_kind(cell))
    cell_payload, plain_payload = (
        pickle.dumps([getattr(module, f"f{i}") for i in range(REFERENCES)]) for module in modules
    )

    def per_reference(function: Callable[[], object]) -> float:
        return wall(function) / REFERENCES

    connection.send(
        paired(
            lambda: pickle.loads(cell_payload),
            lambda: pickle.loads(plain_payload),
            settings.pairs,
            settings.inner,
            timer=per_reference,
        )
    )
    while connection.recv() is not None:  # the kernel has redefined the cell module
        changed = wall(lambda: pickle.loads(cell_payload))
        same = wall(lambda: pickle.loads(cell_payload))
        connection.send((changed, same, pickle.loads(cell_payload)[1](0)))  # its edit


def spec_kind(name: str) -> str:
    """The class of module ``name``'s spec in this process (a task, or the child)."""
    return type(sys.modules[name].__spec__).__name__


def _modules() -> tuple[ModuleType, ModuleType]:
    """A cell module and an ordinary module with the same :data:`REFERENCES` functions."""
    source = functions(REFERENCES)
    cell = cells.define(fresh_name("worker_cell"), source, store=kernel_store())
    directory = _plain_directory()
    plain = fresh_name("worker_plain")
    Path(directory, f"{plain}.py").write_text(source)
    importlib.invalidate_caches()
    return cell, importlib.import_module(plain)


_directory: list[str] = []


def _plain_directory() -> str:
    """A directory on :data:`sys.path` (after the board's) for the ordinary modules."""
    if not _directory:
        _directory.append(tempfile.mkdtemp(prefix="ipyexecmod-bench-"))
        sys.path.append(_directory[0])
    return _directory[0]


def _receive(connection: Connection, child: BaseProcess) -> Any:
    """What the child sends next; raise if it has died instead (no time limit: a
    loaded machine can be slow)."""
    while not connection.poll(1.0):
        if not child.is_alive():
            msg = f"the benchmark's child process ended with exit code {child.exitcode}"
            raise RuntimeError(msg)
    return connection.recv()


def _expect(kind: str, expected: str, module: ModuleType) -> None:
    if kind != expected:
        msg = f"{module.__name__} has a {kind} in the worker, not a {expected}: not the board's"
        raise RuntimeError(msg)
