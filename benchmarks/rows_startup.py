"""Start-up: what ``import ipyexecmod`` and ``%load_ext ipyexecmod`` add, in fresh interpreters."""

from __future__ import annotations

import functools
import os
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

from harness import Goal, Row, Settings, paired, quantity, skipped
from workloads import ROOT, run_python


def pyenv_pythons() -> dict[str, Path | None]:
    """The newest CPython 3.11, 3.12 and 3.13 under pyenv, or None where there is none."""
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    found: dict[str, Path | None] = {}
    for minor in ("3.11", "3.12", "3.13"):
        paths = root.glob(f"versions/{minor}.*/bin/python{minor}")
        found[minor] = max(paths, key=lambda path: _version(path.parent.parent.name), default=None)
    return found


def _version(text: str) -> list[int]:
    return [int(part) for part in text.split(".") if part.isdigit()]


def import_rows(settings: Settings) -> list[Row]:
    """``import ipyexecmod`` in a bare interpreter: only this checkout on its path, its
    bytecode cached as an installed package's is (see :func:`_bare`)."""
    what = "`import ipyexecmod` added to a bare interpreter (`-S -s -P`, no environment), CPython"
    goal = Goal(10e-3, "s", "overhead")
    rows = []
    for minor, python in pyenv_pythons().items():
        if python is None:
            rows.append(skipped(f"{what} {minor}", f"no {minor} under pyenv", goal, release=True))
            continue
        bare = _bare(str(python))
        check = "import sys, ipyexecmod; print(ipyexecmod.__file__, 'IPython' in sys.modules)"
        origin, ipython = bare(check).split()  # and the .pyc files are written
        if not origin.startswith(str(ROOT)) or ipython != "False":
            msg = f"{python}: ipyexecmod from {origin}, IPython imported: {ipython}"
            raise RuntimeError(msg)
        inside: list[float] = []
        timing = paired(
            functools.partial(_timed, bare, "", "import ipyexecmod", inside),
            functools.partial(_timed, bare, "", "pass", []),
            settings.processes,
            settings.process_inner,
        )
        rows.append(
            Row(
                what=f"{what} {python.parent.parent.name}",
                candidate="import ipyexecmod",
                baseline="empty interpreter",
                timing=timing,
                note=_inside(inside, "the import"),
                goal=goal,
                release=True,
            )
        )
    return rows


def _timed(run: Callable[[str], str], setup: str, code: str, inside: list[float]) -> None:
    """Run ``setup`` then ``code`` in a fresh interpreter; add to ``inside`` the time
    ``code`` took, as the child measured it."""
    clock = "from time import perf_counter as clock\n"
    timed = f"{setup}\nstart = clock()\n{code}\nprint(clock() - start)"
    inside.append(float(run(clock + timed)))


def _inside(times: list[float], what: str) -> str:
    """A note: the median time of ``what`` as the children measured it, which leaves
    out the start and exit of the interpreter (much of the noise on a busy machine)."""
    return f"{what} itself, timed in the child: {quantity(statistics.median(times), 's')}"


def _bare(python: str) -> Callable[[str], str]:
    """Run code in ``python`` isolated as ``-I`` would (no other environment, no current
    directory on the path), but with this checkout on PYTHONPATH; and with ``-S``: a
    site-packages ``.pth`` file may import anything at start-up (on this machine one
    imports certifi, and with it ``re`` and ``pathlib``), which would hide their cost."""
    env = {"PYTHONPATH": str(ROOT), "PYTHONPYCACHEPREFIX": tempfile.mkdtemp()}
    return lambda code: run_python(code, python=python, flags=("-S", "-s", "-P"), env=env)


def load_ext_rows(settings: Settings) -> list[Row]:
    shell = (
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "ip = InteractiveShell.instance()"
    )
    # With bytecode, as an installed package has it (this machine's environment sets
    # PYTHONDONTWRITEBYTECODE, which would charge the extension for compiling itself).
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp()
    run = functools.partial(run_python, env=env)
    load = "ip.run_line_magic('load_ext', 'ipyexecmod')"
    run(f"{shell}\n{load}")  # writes the .pyc files
    inside: list[float] = []
    timing = paired(
        functools.partial(_timed, run, shell, load, inside),
        functools.partial(_timed, run, shell, "pass", []),
        settings.processes,
        settings.process_inner,
    )
    return [
        Row(
            what="`%load_ext ipyexecmod` added to a new shell",
            candidate="shell + %load_ext",
            baseline="shell",
            timing=timing,
            note=_inside(inside, "the `%load_ext` call"),
            goal=Goal(30e-3, "s", "overhead"),
            release=True,
        )
    ]
