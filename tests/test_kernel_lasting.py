"""Two real ipykernels on one lasting directory, and a restart (issue 14).

Each kernel runs a notebook of its own (``JPY_SESSION_NAME``, as Jupyter sets it) and
has ``ExecModMagics.persist_dir`` in its profile, as the README suggests.  Three kernels
in all (each costs seconds): A and B side by side, then A again after both exited.
"""

from __future__ import annotations

import ast
import contextlib
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("jupyter_client")

from kernels import execute, kernel_running, shown

#: In a kernel: a pool of one spawned worker, started now, and a way to ask it.
POOL = """\
import concurrent.futures, multiprocessing, os
HANG = 600


def new_pool():
    context = multiprocessing.get_context("spawn")
    pool = concurrent.futures.ProcessPoolExecutor(1, mp_context=context)
    pool.submit(os.getpid).result(HANG)
    return pool


pool = new_pool()
"""


def body(who: str) -> str:
    return f"def f():\n    return {who!r}\n"


@contextlib.contextmanager
def notebook_kernel(root: Path, notebook: str, lasting: Path) -> Iterator[Any]:
    """A kernel of ``notebook`` with ``persist_dir = lasting`` in its profile; its client."""
    ipython = root / f"ipython-{notebook}"
    profile = ipython / "profile_default"
    profile.mkdir(parents=True, exist_ok=True)
    (profile / "ipython_config.py").write_text(f"c.ExecModMagics.persist_dir = {str(lasting)!r}\n")
    with kernel_running(ipython, env={"JPY_SESSION_NAME": notebook}) as (_, client):
        yield client


def run(client: Any, code: str) -> str:
    """What ``code`` showed in the kernel (streams, stderr too); it must succeed."""
    reply, messages = execute(client, textwrap.dedent(code))
    assert reply["status"] == "ok", shown(messages)
    return shown(messages)


def fails(client: Any, code: str) -> tuple[str, str]:
    reply, messages = execute(client, textwrap.dedent(code))
    assert reply["status"] == "error", shown(messages)
    return reply["ename"], reply["evalue"]


def answer(client: Any, code: str) -> object:
    """The value of the expression ``code`` in the kernel, printed and read back."""
    out = run(client, f"print(repr(({code})))")
    return ast.literal_eval(out.splitlines()[-1])


def test_two_kernels_share_a_directory_without_running_each_others_code(tmp_path):
    lasting = tmp_path / "shared"
    a_notebook, b_notebook = str(tmp_path / "a.ipynb"), str(tmp_path / "b.ipynb")
    with (
        notebook_kernel(tmp_path, a_notebook, lasting) as a,
        notebook_kernel(tmp_path, b_notebook, lasting) as b,
    ):
        for client in (a, b):
            run(client, "%load_ext ipyexecmod")
            run(client, POOL)
        run(a, f"%%as_module utils\n{body('A')}")
        run(a, f"%%as_module a_only\n{body('A')}")
        assert answer(a, "pool.submit(utils.f).result(HANG)") == "A"  # the worker has A's
        pid = answer(a, "os.getpid()")

        ename, evalue = fails(b, f"%%as_module utils\n{body('B')}")
        assert ename == "UsageError"
        assert a_notebook in evalue and f"pid {pid}" in evalue and "--force" in evalue, evalue
        run(b, f"%%as_module b_only\n{body('B')}")  # another name: no clash, no warning
        shown_b = run(b, f"%%as_module --force utils\n{body('B')}")
        assert "RuntimeWarning" in shown_b and a_notebook in shown_b, shown_b
        assert answer(b, "pool.submit(utils.f).result(HANG)") == "B"
        assert (lasting / "utils.py").read_text() == body("B")

        told = run(a, "x = 1")  # the end of A's next cell
        assert "RuntimeWarning" in told and "'utils'" in told and b_notebook in told, told
        assert answer(a, "utils.f()") == "A"
        assert answer(a, "pool.submit(utils.f).result(HANG)") == "A"  # the warm worker
        assert answer(a, "new_pool().submit(utils.f).result(HANG)") == "A"  # a new one
        assert "utils" not in run(a, "x = 2")  # told once
        assert "RuntimeWarning" not in run(b, "x = 1")  # B replaced nothing of its own
        for client in (a, b):
            run(client, "pool.shutdown()")

    with notebook_kernel(tmp_path, a_notebook, lasting) as again:  # A restarted
        loaded = run(again, "%load_ext ipyexecmod")
        assert "RuntimeWarning" in loaded and "'utils'" in loaded, loaded
        assert b_notebook in loaded, loaded
        assert answer(again, "__import__('a_only').f()") == "A"  # restored
        assert answer(again, "__import__('b_only').f()") == "B"  # shared on purpose
        assert answer(again, "__import__('utils').f()") == "B"  # as it was told
        assert "Warning" not in run(again, f"%%as_module a_only\n{body('A2')}")
        assert answer(again, "a_only.f()") == "A2"
        assert (lasting / "a_only.py").read_text() == body("A2")
