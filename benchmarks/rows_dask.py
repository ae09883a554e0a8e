"""What a Dask task carries: a cell-module function by reference, against the same
function by value (cloudpickle), as Dask's own serializer makes them."""

from __future__ import annotations

from harness import Goal, Row, Settings, skipped
from workloads import fresh_name, functions

from ipyexecmod import cells
from ipyexecmod.store import kernel_store

WHAT = "Dask: pickled size of a task calling a cell-module function"


def dask_rows(settings: Settings) -> list[Row]:
    goal = Goal(0.1, kind="value")
    try:
        import cloudpickle
        from distributed.protocol import pickle as dask_pickle
    except ImportError:
        return [skipped(WHAT, "distributed not installed (`.[bench]`)", goal)]
    module = cells.define(fresh_name("dask"), functions(20), store=kernel_store())
    task: tuple[object, ...] = (module.f7, (1,), {})
    by_reference = len(dask_pickle.dumps(task))
    cloudpickle.register_pickle_by_value(module)
    try:
        by_value = len(cloudpickle.dumps(task))
    finally:
        cloudpickle.unregister_pickle_by_value(module)
    return [
        Row(
            what=WHAT,
            candidate="by reference (shipped)",
            baseline="cloudpickle by value",
            value=by_reference / by_value,
            note=f"{by_reference} vs {by_value} bytes",
            goal=goal,
        )
    ]
