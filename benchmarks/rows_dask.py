"""What a Dask task carries: a cell-module function by reference, against the same
function by value (cloudpickle), as Dask's own serializer makes them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

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


SHIPMENT = "Dask: first automatic shipment to a 2-worker cluster"


def shipment_rows(settings: Settings) -> list[Row]:
    """Every cell module to a client made after them, as the client preload sends them
    (one bundled plugin), in a fresh process: the modules are these only.  The old way,
    one ``UploadFile`` plugin per module, is timed beside it for the 100 modules."""
    counts = [1, 100, 1000] if settings.scale == 1.0 else [1, 20]
    try:
        import distributed  # noqa: F401
    except ImportError:
        return [
            skipped(SHIPMENT, "distributed not installed (`.[bench]`)", Goal(0.1, "s", "value"))
        ]
    script = [sys.executable, __file__, str(settings.process_inner + 2), *map(str, counts)]
    measured = json.loads(subprocess.run(script, check=True, capture_output=True).stdout)
    (per_cell, _) = measured.pop()
    rows = [
        Row(
            what="Dask: before and after each cell, with a client that has every module",
            candidate="greet_clients()",
            value=per_cell,
            note="what a notebook that imported distributed pays per cell (twice)",
            goal=Goal(50e-6, "s", "value"),
        )
    ]
    for count, (seconds, old) in zip(counts, measured, strict=True):
        note = f"best of {settings.process_inner + 2}"
        if old is not None:
            old_way = f"{old * 1e3:.0f} ms, {old / seconds:.0f} times as long"
            note += f"; one UploadFile plugin per module: {old_way}"
        rows.append(
            Row(
                what=SHIPMENT,
                candidate=f"{count} cell modules, one bundle",
                value=seconds,
                note=note,
                goal=Goal(max(0.1, count * 1e-3), "s", "value"),
            )
        )
    return rows


def _measure_shipments(tries: int, counts: list[int]) -> list[tuple[float, float | None]]:
    """Run in a fresh process: (bundle seconds, old-way seconds or None) per count."""
    import tempfile

    from distributed import Client, LocalCluster
    from distributed.diagnostics.plugin import UploadFile
    from harness import best_of

    from ipyexecmod.dask.shipping import Shipper

    results: list[tuple[float, float | None]] = []
    defined: list[str] = []
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        for count in counts:
            while len(defined) < count:
                name = fresh_name("shipped")
                cells.define(name, functions(10), store=kernel_store())
                defined.append(name)

            def bundle() -> None:
                shipper = Shipper()  # a cluster it has never sent anything
                shipper.auto = True
                shipper.enable()  # greets the client: the bundle
                shipper.disable()

            def one_plugin_each() -> None:
                with tempfile.TemporaryDirectory() as directory:
                    for name in defined:
                        path = os.path.join(directory, f"{name}.py")
                        with open(path, "w") as file:
                            file.write(cells.finder.modules[name].version.source)
                        client.register_plugin(UploadFile(path, load=False), name=name)

            old = best_of(one_plugin_each, 1) if count == 100 else None
            results.append((best_of(bundle, tries), old))
        shipper = Shipper()
        shipper.enable()
        per_cell = best_of(shipper.greet_clients, 1000) if tries > 3 else 0.0
        shipper.disable()
    return [*results, (per_cell, None)]


if __name__ == "__main__":
    print(json.dumps(_measure_shipments(int(sys.argv[1]), [int(n) for n in sys.argv[2:]])))
