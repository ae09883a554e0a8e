"""ipyexecmod against the physical limit and against its peers, in one run.

    python benchmarks/run.py            # the full run: a Markdown table, also written to RESULTS.md
    python benchmarks/run.py --quick    # a few repetitions, to check that every row still runs
    python benchmarks/run.py --only rows_dependents   # some groups: printed, RESULTS.md kept

Every row is timed side by side in this run, on this machine (see harness.py);
absolute times are shown for scale only.  The rows live in rows_*.py, by subject.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import rows_core
import rows_dask
import rows_dependents
import rows_history
import rows_magic
import rows_peers
import rows_processes
import rows_ray
import rows_startup
import rows_workers
from harness import FULL, QUICK, Row, Settings, table

# In this order: the rows that fill the process with modules come last.
GROUPS = [
    rows_dependents.unimported_rows,  # first: the registry it walks is its own modules only
    rows_magic.edited_cell_rows,
    rows_magic.as_module_rows,
    rows_startup.import_rows,
    rows_startup.load_ext_rows,
    rows_core.core_vs_c,
    rows_magic.magic_vs_plain_rows,
    rows_core.redefine_vs_reload,
    rows_dependents.scan_rows,
    rows_dependents.rebind_rows,
    rows_dependents.dependents_rows,
    rows_peers.peer_rows,
    rows_processes.finder_rows,
    rows_processes.spawn_rows,
    rows_processes.lasting_rows,
    rows_workers.pool_rows,
    rows_workers.freshness_rows,
    rows_core.memory_rows,
    rows_history.memory_rows,
    rows_history.display_rows,
    rows_core.lsmod_rows,
    rows_dask.dask_rows,
    rows_dask.shipment_rows,
    rows_ray.ray_rows,
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few repetitions only")
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="GROUP",
        help="only the groups whose `module.function` contains one of these "
        f"({', '.join(_name(group) for group in GROUPS)}); the table is not written to "
        "RESULTS.md unless --output says so",
    )
    parser.add_argument("--output", help="where the table goes (RESULTS.md when every group runs)")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    groups = [g for g in GROUPS if not args.only or any(w in _name(g) for w in args.only)]
    if not groups:
        parser.error(f"no group matches {args.only}")
    output = args.output or (None if args.only else Path(__file__).with_name("RESULTS.md"))
    started, load = time.perf_counter(), os.getloadavg()
    rows: list[Row] = []
    for group in groups:
        rows += group(settings)
        print(f"measured: {_name(group)}", file=sys.stderr)
    header = (
        f"Measured {time.strftime('%Y-%m-%d')} on CPython {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, load average "
        f"{load[0]:.2f} at the start and {os.getloadavg()[0]:.2f} at the end; "
        f"{time.perf_counter() - started:.0f} s in all."
    )
    text = table(rows, settings, header)
    print(text)
    if output is not None:
        Path(output).write_text(text)
    return 0


def _name(group: Callable[[Settings], list[Row]]) -> str:
    return f"{group.__module__}.{group.__name__}"


if __name__ == "__main__":
    sys.exit(main())
