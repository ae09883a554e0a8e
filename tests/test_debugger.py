"""The JupyterLab debugger stops at a breakpoint set in an ``%%as_module`` cell (issue 18).

A real ipykernel, driven through jupyter_client as JupyterLab drives it: Debug Adapter
Protocol requests (``debug_request``) on the control channel, its events
(``debug_event``) on iopub.  JupyterLab finds a cell's file from its text (``debugInfo``'s
hash method, seed and temporary directory, as ``dumpCell`` writes it), sets the gutter's
breakpoints on that file, and shows the cell when the kernel stops in it; the cell
module's code, named after its cell with the cell's lines, is what stops there.

tests/test_browser_debugger.py does the same as a user in a real JupyterLab page: the
bug icon, a click in the cell's gutter, the Callstack panel and the highlighted line.
"""

from __future__ import annotations

import itertools
import re

import pytest

pytest.importorskip("debugpy")

from helpers import HANG_GUARD
from kernels import execute, kernel_running, outputs, stream

ANSI = re.compile(r"\x1b\[[0-9;]*m")

BODY = "def area(r):\n    doubled = 2 * r\n    return doubled * r\n"  # area('x'): line 3 fails
BODY_LINE = 3  # "    doubled = 2 * r" in the cell, whose line 1 is the magic's


class Debugger:
    """The Debug Adapter Protocol of one kernel, as JupyterLab speaks it."""

    def __init__(self, client) -> None:
        self.client = client
        self.sequence = itertools.count(1)

    def request(self, command: str, **arguments) -> dict:
        """Send ``command`` and return the response's body; fails the test on an error."""
        content = {
            "type": "request",
            "seq": next(self.sequence),
            "command": command,
            "arguments": arguments,
        }
        message = self.client.session.msg("debug_request", content)
        self.client.control_channel.send(message)
        while True:
            reply = self.client.get_control_msg(timeout=HANG_GUARD)
            if reply["parent_header"].get("msg_id") == message["header"]["msg_id"]:
                break
        response = reply["content"]
        assert response.get("success", False), response
        return response.get("body", {})

    def start(self) -> dict:
        """Start debugging as JupyterLab does when the debugger is turned on; ``debugInfo``."""
        self.request(
            "initialize",
            clientID="test-client",
            clientName="testClient",
            adapterID="",
            pathFormat="path",
            linesStartAt1=True,
            columnsStartAt1=True,
            supportsVariableType=True,
            supportsVariablePaging=True,
            supportsRunInTerminalRequest=True,
            locale="en",
        )
        self.request("attach")
        self.request("setExceptionBreakpoints", filters=[])  # JupyterLab's default: none
        info = self.request("debugInfo")
        assert info["isStarted"]
        return info

    def set_breakpoint(self, cell: str, line: int) -> str:
        """Set a breakpoint at ``line`` of ``cell`` as a gutter click does; the cell's file."""
        path = self.request("dumpCell", code=cell)["sourcePath"]
        body = self.request(
            "setBreakpoints",
            source={"path": path},
            breakpoints=[{"line": line}],
            sourceModified=False,
        )
        assert [breakpoint["line"] for breakpoint in body["breakpoints"]] == [line]
        self.request("configurationDone")
        return path

    def wait_for_stop(self, msg_id: str) -> dict:
        """The ``stopped`` event of the execution ``msg_id``; fails the test if that
        execution ends first (the kernel goes idle: a breakpoint it did not stop at)."""
        while True:
            message = self.client.get_iopub_msg(timeout=HANG_GUARD)
            content = message["content"]
            if message["msg_type"] == "debug_event" and content.get("event") == "stopped":
                return content
            ended = message["msg_type"] == "status" and content["execution_state"] == "idle"
            if ended and message["parent_header"].get("msg_id") == msg_id:
                pytest.fail("the cell ran to its end: the breakpoint did not stop it")

    def stop(self) -> None:
        self.request("disconnect", restart=False, terminateDebuggee=False)


def wait_for_reply(client, msg_id: str) -> dict:
    while True:
        reply = client.get_shell_msg(timeout=HANG_GUARD)
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply["content"]


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    with kernel_running(tmp_path_factory.mktemp("ipython")) as (_, client):
        reply, _ = execute(client, "%load_ext ipyexecmod")
        assert reply["status"] == "ok"
        debugger = Debugger(client)
        debugger.start()
        yield client, debugger
        debugger.stop()


def stops_at(client, debugger: Debugger, call: str, path: str, line: int) -> None:
    """Run ``call`` (a cell); it must stop at ``line`` of ``path``; then continue."""
    msg_id = client.execute(call)
    stopped = debugger.wait_for_stop(msg_id)
    thread = stopped["body"]["threadId"]
    frames = debugger.request("stackTrace", threadId=thread)["stackFrames"]
    assert (frames[0]["source"]["path"], frames[0]["line"]) == (path, line), frames[:3]
    assert frames[0]["name"] == "area"
    debugger.request("continue", threadId=thread)
    reply = wait_for_reply(client, msg_id)
    assert reply["status"] == "ok", reply


def test_a_breakpoint_set_after_the_cell_ran_stops(kernel):
    client, debugger = kernel
    cell = f"%%as_module dbg_after\n{BODY}"
    reply, _ = execute(client, cell)
    assert reply["status"] == "ok", reply
    defined = reply["execution_count"]
    # A traceback names the cell, and its line.
    reply, messages = execute(client, "dbg_after.area('x')")
    assert reply["status"] == "error"
    (error,) = outputs(messages, "error")
    shown = ANSI.sub("", "\n".join(error["traceback"]))
    assert f"Cell In[{defined}], line {BODY_LINE + 1}, in area(r)" in shown, shown
    path = debugger.set_breakpoint(cell, BODY_LINE)
    # The file JupyterLab has for the cell is the code's.
    _, messages = execute(client, "print(dbg_after.area.__code__.co_filename)")
    assert stream(messages) == f"{path}\n"
    stops_at(client, debugger, "import dbg_after\ndbg_after.area(3)", path, BODY_LINE)


def test_a_breakpoint_set_before_the_cell_ran_stops(kernel):
    """JupyterLab sends a gutter click's breakpoint at once, before the cell is run."""
    client, debugger = kernel
    cell = f"%%as_module dbg_before\n{BODY}"
    path = debugger.set_breakpoint(cell, BODY_LINE)
    reply, _ = execute(client, cell)
    assert reply["status"] == "ok", reply
    stops_at(client, debugger, "import dbg_before\ndbg_before.area(3)", path, BODY_LINE)


def test_a_redefined_cell_stops_at_its_new_line(kernel):
    client, debugger = kernel
    first = f"%%as_module dbg_edit\n{BODY}"
    reply, _ = execute(client, first)
    assert reply["status"] == "ok", reply
    edited = f"%%as_module dbg_edit\nSCALE = 1\n\n{BODY}"
    path = debugger.set_breakpoint(edited, BODY_LINE + 2)
    reply, _ = execute(client, edited)
    assert reply["status"] == "ok", reply
    stops_at(client, debugger, "import dbg_edit\ndbg_edit.area(3)", path, BODY_LINE + 2)
