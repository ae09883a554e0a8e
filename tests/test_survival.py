"""A real kernel takes the whole catalogue of bad input, and Ctrl-C, and keeps working."""

from __future__ import annotations

import random
import re

import pytest

pytest.importorskip("jupyter_client")

from catalogue import CASES, GOOD
from kernels import execute, kernel_running, outputs, run_and_interrupt, stream

GOOD_STILL_GOOD = """\
from ipyexecmod import cells
print({good}.VALUE, {good}.f(), sys.modules['{pkg}.sub'].SUB,
      all(cells.finder.owns(sys.modules[n]) for n in ('{good}', '{pkg}', '{pkg}.sub')))
"""


def test_a_kernel_runs_the_whole_catalogue_and_keeps_its_good_modules(tmp_path):
    names = {"good": "good", "pkg": "goodpkg"}
    with kernel_running(tmp_path / "ipython") as (_, client):
        for cell in ("%load_ext ipyexecmod", "import sys"):
            assert execute(client, cell)[0]["status"] == "ok"
        for name, source in GOOD.items():
            reply, _ = execute(client, f"%%as_module {name.format(**names)}\n{source}")
            assert reply["status"] == "ok", reply
        tried = 0
        for number, case in enumerate(CASES):
            names["name"] = f"bad{number}"
            setup, source, check = case.cells(**names)
            for cell in setup:
                assert execute(client, cell)[0]["status"] == "ok", (case.id, cell)
            reply, messages = execute(client, source)
            tried += 1
            if case.error is None:
                assert reply["status"] == "ok", (case.id, reply)
                reply, checked = execute(client, f"print(bool({check}))")
                assert stream(checked) == "True\n", (case.id, reply)
                if case.warns is not None:
                    assert re.search(case.warns.format(**names), stream(messages, "stderr"))
            else:
                assert reply["status"] == "error", case.id
                assert reply["ename"] == case.error, (case.id, reply["ename"], reply["evalue"])
                assert re.search(case.match.format(**names), reply["evalue"]), case.id
                # The notebook shows it: a traceback, or (a UsageError) one line on stderr.
                shown = [f"{c['ename']}: {c['evalue']}" for c in outputs(messages, "error")]
                shown += stream(messages, "stderr").splitlines()
                assert f"{case.error}: {reply['evalue']}" in shown, (case.id, shown)
            reply, messages = execute(client, GOOD_STILL_GOOD.format(**names))
            assert stream(messages) == "good good good True\n", (case.id, reply)
        assert tried == len(CASES)
        # Still answering, and the good modules import as ever, in a spawned process too.
        reply, messages = execute(
            client,
            "import multiprocessing\n"
            "with multiprocessing.get_context('spawn').Pool(1) as pool:\n"
            "    print(pool.apply(good.f))",
        )
        assert stream(messages) == "good\n", reply


SLOW_REDEFINITION = """\
%%as_module {name}
import sys
VALUE = {version}
def f():
    return {version}
print("running", flush=True)
for i in range(10**9):  # long enough to be interrupted anywhere
    STEP = i
"""


def test_ctrl_c_in_a_real_kernel_puts_the_previous_version_back(tmp_path):
    interrupts = 12
    random.seed(7)
    with kernel_running(tmp_path / "ipython") as (manager, client):
        execute(client, "%load_ext ipyexecmod")
        reply, _ = execute(client, "%%as_module kint\nVALUE = 1\ndef f():\n    return 1\n")
        assert reply["status"] == "ok"
        for attempt in range(interrupts):
            code = SLOW_REDEFINITION.format(name="kint", version=100 + attempt)
            reply = run_and_interrupt(manager, client, code, random.uniform(0, 0.2))
            assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt", reply
            reply, messages = execute(
                client,
                "import kint\nprint(kint.VALUE, kint.f(), hasattr(kint, 'STEP'), "
                "kint.__spec__.loader.get_source('kint').startswith('VALUE = 1'))",
            )
            assert stream(messages) == "1 1 False True\n", (attempt, reply)
        # A first definition interrupted leaves nothing behind.
        code = SLOW_REDEFINITION.format(name="knew", version=1)
        reply = run_and_interrupt(manager, client, code, 0.05)
        assert reply["ename"] == "KeyboardInterrupt"
        reply, messages = execute(client, "import sys\nprint('knew' in sys.modules)")
        assert stream(messages) == "False\n"
        # And the kernel goes on: the next redefinition works.
        reply, _ = execute(client, "%%as_module kint\nVALUE = 2\n")
        reply, messages = execute(client, "print(kint.VALUE)")
        assert stream(messages) == "2\n"
