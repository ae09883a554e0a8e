"""What the rows run: generated cells, fresh module names, a shell with ipyexecmod loaded,
the compile+exec limit, fresh interpreters."""

from __future__ import annotations

import functools
import itertools
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

ROOT = Path(__file__).resolve().parent.parent
ONE_LINE = "x = 1\n"
_serial = itertools.count(1)
_INPUT = re.compile(r"_i\d+")


def fresh_name(stem: str) -> str:
    """A module name not used before in this process."""
    return f"_bench_{stem}_{next(_serial)}"


def functions(count: int, edit: int = 1) -> str:
    """A cell of ``count`` small functions; ``edit`` changes a constant in each."""
    return "".join(f"def f{i}(x):\n    return x * {i} + {edit}\n\n\n" for i in range(count))


def notebook_values(count: int) -> dict[str, object]:
    """``count`` names as a long notebook holds them, each its own object: numbers,
    strings, lists, dicts and functions."""

    def function(i: int) -> Callable[[], int]:
        return lambda: i

    kinds: list[Callable[[int], object]] = [
        lambda i: 10_000 + i,
        float,
        lambda i: f"row {i}",
        lambda i: [i, i + 1],
        lambda i: {"i": i},
        function,
    ]
    return {f"v{i}": kinds[i % len(kinds)](i) for i in range(count)}


@functools.cache
def shell() -> InteractiveShell:
    """The process's InteractiveShell (no history database), with ipyexecmod loaded."""
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryAccessor.enabled = False
    ip = InteractiveShell.instance(config=config)
    ip.run_line_magic("load_ext", "ipyexecmod")
    return ip


def run_cell(ip: InteractiveShell, cell: str) -> None:
    """Run ``cell`` as a notebook's kernel does (history, events, displayhook); raise
    what it raised, so that a failing row cannot pass for a fast one."""
    ip.run_cell(cell, store_history=True).raise_error()


def forget_inputs(ip: InteractiveShell) -> None:
    """Drop the ``_iN`` copies of past inputs from the user namespace (untimed, between
    groups of cells): IPython copies that namespace to expand each magic line, so a run
    of thousands of cells would charge a magic for a notebook far longer than most."""
    for key in [key for key in ip.user_ns if _INPUT.fullmatch(key)]:
        del ip.user_ns[key]


def compile_exec(name: str, source: str) -> Callable[[], None]:
    """The limit: compile the source and execute it into a fresh module."""

    def run() -> None:
        module = ModuleType(name)
        exec(compile(source, f"<{name}>", "exec", dont_inherit=True), module.__dict__)

    return run


def run_python(
    code: str,
    *argv: str,
    python: str = sys.executable,
    flags: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> str:
    """Run ``code`` in a fresh interpreter (by default this one, with this environment
    and no bytecode written); return what it printed."""
    done = subprocess.run(
        [python, *flags, "-c", code, *argv],
        cwd=ROOT,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"} if env is None else env,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        msg = f"{python} -c {code!r} failed:\n{done.stderr}"
        raise RuntimeError(msg)
    return done.stdout
