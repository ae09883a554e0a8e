"""The magics in a real ipykernel, driven through jupyter_client as a notebook drives it."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("jupyter_client")

from helpers import HANG_GUARD
from kernels import execute, kernel_running, outputs, stream

ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    with kernel_running(tmp_path_factory.mktemp("ipython")) as (_, client):
        run(client, "%load_ext ipyexecmod")
        yield client


def run(client, code: str) -> tuple[dict, list[dict]]:
    return execute(client, code)


def stdout(messages: list[dict]) -> str:
    return stream(messages)


def complete(client, code: str) -> dict:
    """The reply to a completion request at the end of ``code`` (matched by its id)."""
    return client.complete(code, len(code), reply=True, timeout=HANG_GUARD)


def test_cell_module_is_importable_from_later_cells(kernel):
    reply, _ = run(kernel, "%%as_module kgeo\ndef area(r):\n    return 3 * r * r\n")
    assert reply["status"] == "ok"
    _, messages = run(kernel, "%modinfo kgeo")
    (info,) = outputs(messages, "execute_result")
    assert f"In[{reply['execution_count']}]" in info["data"]["text/plain"]
    reply, messages = run(
        kernel, "import inspect, kgeo\nprint(kgeo.area(2))\nprint(inspect.getsource(kgeo.area))"
    )
    assert reply["status"] == "ok"
    assert stdout(messages) == "12\ndef area(r):\n    return 3 * r * r\n\n"


def test_lsmod_sends_text_and_html(kernel):
    run(kernel, "%%as_module kshow\nx = 1\n")
    reply, messages = run(kernel, "%lsmod ksh* --cells")
    assert reply["status"] == "ok"
    (result,) = outputs(messages, "execute_result")
    data = result["data"]
    assert data["text/plain"].splitlines()[1].split()[:2] == ["kshow", "cell"]
    assert re.search(r"<td[^>]*>kshow</td><td[^>]*>cell</td>", data["text/html"])


def test_usage_error_reply(kernel):
    reply, _ = run(kernel, "%%as_module json\nx = 1\n")
    assert reply["status"] == "error"
    assert reply["ename"] == "UsageError"
    assert "'json' is already imported" in reply["evalue"]
    assert "--force" in reply["evalue"]
    reply, _ = run(kernel, "import json; assert not hasattr(json, 'x')")
    assert reply["status"] == "ok"


def test_failed_rerun_shows_the_cells_line_and_keeps_the_old_version(kernel):
    run(kernel, "%%as_module kfail\nVALUE = 1\n")
    reply, messages = run(kernel, "%%as_module kfail\nVALUE = 2\nraise ValueError('bad edit')\n")
    assert reply["status"] == "error" and reply["ename"] == "ValueError"
    (error,) = outputs(messages, "error")
    shown = ANSI.sub("", "\n".join(error["traceback"]))
    assert "raise ValueError('bad edit')" in shown
    reply, messages = run(
        kernel, "import kfail, sys\nprint(kfail.VALUE, sys.modules['kfail'] is kfail)"
    )
    assert stdout(messages) == "1 True\n"


@pytest.mark.parametrize("blank_lines", [0, 2])
def test_a_module_level_error_points_at_the_cells_own_line(kernel, blank_lines):
    # IPython counts a module frame's excerpt from its code's co_firstlineno: it must be 1,
    # as for every module, or each line shown is the one before it.
    cell = (
        "\n" * blank_lines
        + "%%as_module kexcerpt\nimport os\n\n\ndef f():\n    return 1\n\nX = undefined_name\n"
    )
    reply, messages = run(kernel, cell)
    assert reply["status"] == "error" and reply["ename"] == "NameError"
    (error,) = outputs(messages, "error")
    lines = ANSI.sub("", "\n".join(error["traceback"])).splitlines()
    line = 8 + blank_lines
    shown = "\n".join(lines)
    assert re.search(rf"^-+> {line} X = undefined_name$", shown, re.MULTILINE), shown
    assert re.search(rf"^ +{line - 3} def f\(\):$", shown, re.MULTILINE), shown


def test_debug_after_a_failed_redefinition_shows_the_failed_versions_lines(kernel):
    run(kernel, "%%as_module kdebug\ndef f():\n    return 'old'\n")
    reply, _ = run(kernel, "%%as_module kdebug\nX = 1\nY = 2\nraise ValueError('bad edit')\n")
    assert reply["status"] == "error"
    answers = iter(["where", "list"])
    messages: list[dict] = []
    reply = kernel.execute_interactive(
        "%debug",
        allow_stdin=True,
        stdin_hook=lambda request: kernel.input(next(answers, "quit")),  # typed at ipdb>
        output_hook=messages.append,
        timeout=HANG_GUARD,
        stop_on_error=False,
    )
    assert reply["content"]["status"] == "ok"
    shown = ANSI.sub("", stdout(messages))
    # The failed version's code is its cell's (issue 18): the cell's file and line numbers.
    assert re.search(r"ipykernel_\d+/\d+\.py\(4\)<module>", shown), shown
    assert "----> 4 raise ValueError('bad edit')" in shown, shown
    assert "return 'old'" not in shown


def test_completion_of_module_names(kernel):
    run(kernel, "%%as_module kcomplete_me\nx = 1\n")
    for code in ("%reload_module kcomplete_", "%modinfo kcomplete_", "%lsmod kcomplete_"):
        reply = complete(kernel, code)
        assert reply["content"]["matches"] == ["kcomplete_me"]
    code = "%modinfo json.de"
    assert "json.decoder" in complete(kernel, code)["content"]["matches"]


def test_alongside_autoreload_and_reset(kernel):
    reply, _ = run(kernel, "%load_ext autoreload\n%autoreload 2")
    assert reply["status"] == "ok"
    run(kernel, "%%as_module kauto\ndef f():\n    return 1\n")
    run(kernel, "%%as_module kauto\ndef f():\n    return 2\n")
    reply, messages = run(kernel, "print(kauto.f())")
    assert stdout(messages) == "2\n"
    reply, _ = run(kernel, "%reset -f")
    assert reply["status"] == "ok"
    reply, messages = run(kernel, "import kauto\nprint(kauto.f())")
    assert reply["status"] == "ok" and stdout(messages) == "2\n"
    reply, messages = run(kernel, "%%as_module kauto\ndef f():\n    return 3\n")
    reply, messages = run(kernel, "print(kauto.f())")
    assert stdout(messages) == "3\n"
    assert outputs(messages, "error") == []
    run(kernel, "%autoreload off")


def test_autoreload_runs_a_redefinition_once(kernel):
    run(kernel, "%load_ext autoreload\n%autoreload 2")
    run(kernel, "%%as_module konce\nprint('ran 1')\n")
    _, messages = run(kernel, "%%as_module konce\nprint('ran 2')\n")
    assert stdout(messages) == "ran 2\n"
    # A newer mtime, what autoreload sees of a rewrite on any clock: without it, whether
    # the rewrite's own mtime is newer depends on the file system's clock granularity.
    newer = "t = os.stat(konce.__file__).st_mtime_ns + 10**9\nos.utime(konce.__file__, ns=(t, t))"
    _, first = run(kernel, f"import os\n{newer}")
    _, second = run(kernel, "print('next')")
    assert stdout(first) + stdout(second) == "next\n"
    run(kernel, "%autoreload off")


def test_magic_number_result(kernel):
    _, messages = run(kernel, "%magic_number")
    (result,) = outputs(messages, "execute_result")
    assert "magic number" in result["data"]["text/plain"]
    assert "<table>" in result["data"]["text/html"]
    _, messages = run(
        kernel,
        "import importlib.util\nn = %magic_number\n"
        "print(n == int.from_bytes(importlib.util.MAGIC_NUMBER, 'little'))",
    )
    assert stdout(messages) == "True\n"


def test_spawned_workers_in_a_kernel_run_the_current_definition(kernel):
    run(kernel, "%%as_module kwork\ndef square(x):\n    return x * x\n")
    code = (
        "import concurrent.futures, multiprocessing, kwork\n"
        "spawn = multiprocessing.get_context('spawn')\n"
        "with concurrent.futures.ProcessPoolExecutor(2, mp_context=spawn) as pool:\n"
        "    print(list(pool.map(kwork.square, [1, 2, 3])))\n"
    )
    reply, messages = run(kernel, code)
    assert reply["status"] == "ok", reply
    assert stdout(messages) == "[1, 4, 9]\n"
    run(kernel, "%%as_module kwork\ndef square(x):\n    return -x * x\n")
    reply, messages = run(kernel, code)
    assert stdout(messages) == "[-1, -4, -9]\n"


def shown_lines(error: dict) -> list[str]:
    text = ANSI.sub("", "\n".join(error["traceback"]))
    return [line for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("body", "ename", "evalue", "line"),
    [
        ("x = 1\ny = (\nz = 3 +* 4\n", "SyntaxError", "'(' was never closed", "y = ("),
        ("def f():\n        x = 1\n    return x\n", "IndentationError", "unindent", "return x"),
    ],
)
def test_a_typo_in_a_redefinition_shows_the_short_form_with_the_new_line(
    kernel, body, ename, evalue, line
):
    run(kernel, "%%as_module ktypo\nx = 1\ny = 2\nz = 3\n")
    reply, messages = execute(kernel, f"%%as_module ktypo\n{body}")
    assert reply["status"] == "error" and reply["ename"] == ename
    # the cell's file and line (issue 18), its first line being the magic's
    assert evalue in reply["evalue"] and re.search(r"\(\d+\.py, line \d+\)", reply["evalue"])
    (error,) = outputs(messages, "error")
    assert (error["ename"], error["evalue"]) == (ename, reply["evalue"])
    lines = shown_lines(error)
    assert len(lines) == 4 and lines[1].strip() == line, lines
    # the cell, as IPython names a plain cell (issue 14: no private directory's name)
    assert re.fullmatch(rf"Cell In\[{reply['execution_count']}\], line \d+", lines[0].strip())
    assert lines[-1].startswith(f"{ename}: ")
    assert "y = 2" not in "\n".join(lines) and "run_cell_magic" not in "\n".join(lines)
    reply, messages = run(kernel, "import ktypo\nprint(ktypo.y)")
    assert stdout(messages) == "2\n"


def test_binding_leaves_ipythons_names_and_the_notebooks_values(kernel):
    reply, messages = execute(kernel, "%%as_module get_ipython\nX = 1\n")
    assert reply["status"] == "ok"
    assert "not bound to 'get_ipython'" in stream(messages, "stderr")
    run(kernel, "kdata = [1, 2]")
    reply, messages = run(kernel, "%%as_module kdata\nX = 2\n")
    assert "'kdata' holds a list of the notebook" in stream(messages, "stderr")
    reply, messages = run(kernel, "%lsmod kdat*\nimport get_ipython as g\ndisplay(kdata, g.X)")
    assert reply["status"] == "ok"
    assert [r["data"]["text/plain"] for r in outputs(messages, "display_data")] == ["[1, 2]", "1"]


def test_cell_modules_complete_first_in_a_notebook(kernel):
    run(kernel, "%%as_module kfirst_to_complete\nx = 1\n")
    for code in ("%pycinfo kfirst_", "%%as_module kfirst_"):
        assert complete(kernel, code)["content"]["matches"] == ["kfirst_to_complete"]
    matches = complete(kernel, "%modinfo ")["content"]["matches"]
    assert matches.index("kfirst_to_complete") < matches.index("IPython")
