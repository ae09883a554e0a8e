"""JupyterLab's debugger stops at a breakpoint set in the gutter of an ``%%as_module`` cell
(issue 18), in a real JupyterLab 4 page in a real headless Chromium.

As a user does it: turn the debugger on (the bug icon of the notebook's toolbar), click
the gutter of a line in a function's body in the ``%%as_module`` cell (a red dot), run
the cell, then a cell that calls the function.  The kernel stops there: the Callstack
panel shows the function in that cell at that line, and the cell's editor highlights the
line.  Continue (the Callstack panel's button) and the calling cell ends with its result.
Once with the breakpoint set before the cell ever ran (JupyterLab sends it at once), once
set after the cell, edited, ran again.  tests/test_debugger.py checks the same through the
Debug Adapter Protocol alone.

The Debug Adapter Protocol traffic of the page is recorded (from its websocket frames)
and added to every failure: which file the breakpoint went to and where the kernel
stopped is what tells a frontend problem from a kernel one.  Screenshots of each stop are
kept with those of tests/test_browser.py.

Skipped, saying why, where Chromium, JupyterLab, Playwright or debugpy is missing.
"""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("jupyterlab", reason="JupyterLab is not installed: pip install -e '.[test]'")
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="Playwright is not installed: pip install -e '.[test]'"
)
PlaywrightError = sync_api.Error
pytest.importorskip("debugpy", reason="debugpy (ipykernel's debugger) is not installed")

import nbformat  # noqa: E402 (after the skips: a dependency of JupyterLab's)
from browser import (  # noqa: E402
    artefacts_directory,
    cell,
    notebook_page,
    screenshot,
    skip_reason,
    switch_theme,
    wait_idle,
)

if skip_reason() is not None:
    pytestmark = pytest.mark.skip(reason=skip_reason())

#: The notebook: the extension, the cell module, a cell that calls it.
LOAD, MODULE, CALL = 0, 1, 2
GEOMETRY = "%%as_module geometry\ndef area(r):\n    doubled = 2 * r\n    return doubled * r\n"
GEOMETRY_LINE = 3  # "    doubled = 2 * r": the cell's own line, the magic's is 1
EDITED = (
    "%%as_module geometry\nSCALE = 10\n\n\ndef area(r):\n    scaled = SCALE * r\n"
    "    return scaled * r\n"
)
EDITED_LINE = 7  # "    return scaled * r"
CELLS = ["%load_ext ipyexecmod", GEOMETRY, "import geometry\ngeometry.area(3)"]


# -- the Debug Adapter Protocol, as the page's websockets carry it ----------------------------


def kernel_message(payload: bytes | str) -> tuple[str, dict[str, Any]]:
    """The type and content of a Jupyter message in a kernel websocket's frame: jupyter_server's
    binary ``v1.kernel.websocket.jupyter.org`` protocol, or the JSON one (a string)."""
    if isinstance(payload, str):
        message = json.loads(payload)
        return message["header"]["msg_type"], message["content"]
    # A count of offsets, the offsets (8-byte little-endian integers each), then the
    # parts they bound: channel, header, parent header, metadata, content, buffers.
    count = int.from_bytes(payload[:8], "little")
    offsets = [int.from_bytes(payload[8 * i : 8 * i + 8], "little") for i in range(1, count + 1)]
    _, header, _, _, content, *_ = (payload[a:b] for a, b in itertools.pairwise(offsets))
    return json.loads(header)["msg_type"], json.loads(content)


class DebugTraffic:
    """The Debug Adapter Protocol messages between a page and its kernels, in order."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, dict[str, Any]]] = []  # (">" sent or "<" received, DAP)
        self.sockets: list[Any] = []

    def listen(self, page: Any) -> None:
        page.on("websocket", self._socket)

    def _socket(self, socket: Any) -> None:
        if "/api/kernels/" not in socket.url:
            return
        self.sockets.append(socket)
        socket.on("framesent", lambda payload: self._frame(">", payload))
        socket.on("framereceived", lambda payload: self._frame("<", payload))

    def _frame(self, direction: str, payload: bytes | str) -> None:
        kind, content = kernel_message(payload)
        if kind.startswith("debug_"):
            self.messages.append((direction, content))

    def summary(self) -> str:
        """One line per request, response and event but the noisy ones, for a failure."""
        noise = {"inspectVariables", "modules", "variables", "scopes", "source", "debugInfo"}
        lines = []
        for direction, message in self.messages:
            what = message.get("command") or message.get("event")
            if what in noise or what in {"thread", "module", "output"} or what is None:
                continue
            detail = message.get("arguments") or message.get("body") or {}
            lines.append(f"{direction} {message.get('type')} {what} {json.dumps(detail)[:300]}")
        return "the Debug Adapter Protocol traffic:\n" + "\n".join(lines)

    def expect_response(self, command: str) -> Any:
        """A context manager: on exit, waits for a response of the kernel to a ``command``
        request, received after its entry (Playwright's ``expect_event``)."""

        def is_response(payload: bytes | str) -> bool:
            kind, content = kernel_message(payload)
            return kind == "debug_reply" and content.get("command") == command

        socket = self.sockets[-1]  # the notebook kernel's (its newest, had it reconnected)
        return socket.expect_event("framereceived", predicate=is_response)


# -- what a user does in the page -------------------------------------------------------------


def prompt(page: Any, index: int) -> str:
    return str(cell(page, index).locator(".jp-InputPrompt").inner_text())


def start_running(page: Any, index: int) -> str:
    """Run cell ``index`` (select it, Ctrl+Enter); its prompt before it ran."""
    before = prompt(page, index)
    cell(page, index).locator(".jp-InputArea-prompt").click()  # select it, command mode
    page.keyboard.press("Control+Enter")
    return before


_RAN = r"""([index, before]) => {
    const text = document.querySelectorAll('.jp-Notebook .jp-Cell')[index]
        .querySelector('.jp-InputPrompt').textContent;
    return /\[\d+\]/.test(text) && text !== before;
}"""


def wait_ran(page: Any, index: int, before: str) -> int:
    """Wait until cell ``index``, whose prompt was ``before``, ran; its execution count."""
    page.wait_for_function(_RAN, arg=[index, before])
    return int(prompt(page, index).strip("[]: "))


def run(page: Any, index: int) -> int:
    """Run cell ``index`` to its end; its execution count."""
    return wait_ran(page, index, start_running(page, index))


def enable_debugger(page: Any) -> None:
    """Press the notebook toolbar's bug icon; return once the debugger runs (JupyterLab
    presses the button only after the kernel's debugger started and the editors' breakpoint
    gutters are set up)."""
    page.locator(".jp-DebuggerBugButton").click()
    page.locator(".jp-DebuggerBugButton[aria-pressed='true']").wait_for()
    cell(page, MODULE).locator(".cm-gutter.cm-breakpoint-gutter").wait_for()


_BREAKPOINT_LINES = """cell => [...cell.querySelectorAll('.cm-breakpoint-gutter .cm-gutterElement')]
    .filter(element => getComputedStyle(element).visibility !== 'hidden')  // the spacer
    .flatMap((element, index) => element.querySelector('.cm-breakpoint-icon') ? [index + 1] : [])
"""


def breakpoint_lines(page: Any, index: int) -> list[int]:
    """The lines of cell ``index`` with a red dot in the gutter."""
    return list(cell(page, index).evaluate(_BREAKPOINT_LINES))


def toggle_breakpoint(page: Any, index: int, line: int) -> None:
    """Click the gutter of cell ``index`` at ``line``; return once the red dot shows or goes
    (JupyterLab draws it from the kernel's answer to ``setBreakpoints``)."""
    had = line in breakpoint_lines(page, index)
    gutter = cell(page, index).locator(".cm-breakpoint-gutter .cm-gutterElement:visible")
    gutter.nth(line - 1).click()
    page.wait_for_function(
        f"([cell, had]) => ({_BREAKPOINT_LINES})(cell).includes({line}) !== had",
        arg=[cell(page, index).element_handle(), had],
    )


def replace_text(page: Any, index: int, text: str) -> None:
    """Select all the text of cell ``index``'s editor and type ``text`` over it."""
    cell(page, index).locator(".cm-content").click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(text)  # as one input, not key by key: no auto-indent


def editor_text(page: Any, index: int) -> str:
    """The text in cell ``index``'s editor, as the editor shows it."""
    return "\n".join(cell(page, index).locator(".cm-line").all_text_contents())


_STOP_OR_END = r"""([index, before]) => {
    if (document.querySelector('.jp-DebuggerCallstackFrame')) return 'stopped';
    const text = document.querySelectorAll('.jp-Notebook .jp-Cell')[index]
        .querySelector('.jp-InputPrompt').textContent;
    return /\[\d+\]/.test(text) && text !== before ? 'ended' : false;
}"""

_HIGHLIGHTED = """() => [...document.querySelectorAll('.jp-DebuggerEditor-highlight')].map(line => {
    const cell = line.closest('.jp-Cell');
    return {cell: [...document.querySelectorAll('.jp-Notebook .jp-Cell')].indexOf(cell),
            line: [...cell.querySelectorAll('.cm-line')].indexOf(line) + 1,
            text: line.textContent};
})"""


def stop(page: Any, call: int, shot: Callable[[], Path]) -> dict[str, Any]:
    """Run cell ``call``; it must stop in the debugger.  What the page shows then (the top
    frame of the Callstack panel, the highlighted lines, a screenshot ``shot()`` takes), once
    continued and ``call`` ended (a failed check leaves no kernel stopped), with its output."""
    before = start_running(page, call)
    how = page.wait_for_function(_STOP_OR_END, arg=[call, before]).json_value()
    assert how == "stopped", "the calling cell ran to its end: the breakpoint did not stop it"
    # JupyterLab highlights the line when the current frame changes, before it draws the
    # Callstack panel's frames: both show now.
    frame = page.locator(".jp-DebuggerCallstackFrame").first
    seen = {
        "frame": frame.locator(".jp-DebuggerCallstackFrame-name").inner_text(),
        "location": frame.locator(".jp-DebuggerCallstackFrame-location").inner_text(),
        "highlighted": page.evaluate(_HIGHLIGHTED),
        "screenshot": shot(),
    }
    callstack = page.get_by_role("toolbar", name="Callstack panel toolbar")
    callstack.locator("[data-command='debugger:continue']").click()
    wait_ran(page, call, before)
    wait_idle(page)
    seen["output"] = cell(page, call).locator(".jp-OutputArea-output").inner_text()
    return seen


@contextlib.contextmanager
def explained(traffic: DebugTraffic, seen: dict[str, Any]) -> Iterator[None]:
    """A failure inside gets notes: what the page showed (``seen``, filled in by the test)
    and the Debug Adapter Protocol traffic."""
    try:
        yield
    except (AssertionError, PlaywrightError) as error:
        error.add_note(f"seen: {seen}")
        error.add_note(traffic.summary())
        raise


# -- one server, one browser, one page --------------------------------------------------------


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory: pytest.TempPathFactory, request: Any) -> Path:
    return artefacts_directory(tmp_path_factory, request.config)


@pytest.fixture(scope="module")
def traffic() -> DebugTraffic:
    return DebugTraffic()


@pytest.fixture(scope="module")
def page(traffic: DebugTraffic) -> Iterator[Any]:
    """The notebook open in JupyterLab, the extension loaded, the debugger on."""
    cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    with notebook_page(cells, "debugging.ipynb", before_open=traffic.listen) as page:
        run(page, LOAD)
        enable_debugger(page)
        yield page


# -- the checks -------------------------------------------------------------------------------


def test_a_gutter_breakpoint_set_before_the_cell_ran_stops_at_its_line(page, artefacts, traffic):
    theme, seen = "JupyterLab Light", {}
    switch_theme(page, theme)
    with explained(traffic, seen):
        toggle_breakpoint(page, MODULE, GEOMETRY_LINE)  # the cell never ran
        assert breakpoint_lines(page, MODULE) == [GEOMETRY_LINE]
        seen["defined"] = run(page, MODULE)
        seen |= stop(page, CALL, lambda: screenshot(page, artefacts, theme, "debugger stopped"))
        assert seen["frame"] == "area"
        assert seen["location"] == f"Cell [{seen['defined']}]:{GEOMETRY_LINE}"  # cell, line
        text = GEOMETRY.splitlines()[GEOMETRY_LINE - 1]
        assert seen["highlighted"] == [{"cell": MODULE, "line": GEOMETRY_LINE, "text": text}]
        assert seen["output"] == "18"
        toggle_breakpoint(page, MODULE, GEOMETRY_LINE)  # off again: the red dot goes
        assert breakpoint_lines(page, MODULE) == []


def test_a_gutter_breakpoint_in_the_edited_cell_stops_at_its_new_line(page, artefacts, traffic):
    theme, seen = "JupyterLab Dark", {}
    switch_theme(page, theme)
    with explained(traffic, seen):
        assert breakpoint_lines(page, MODULE) == []  # as the test before left it
        # JupyterLab sends an edited cell's breakpoints again (to the new text's file) once
        # its text stopped changing for a second; a click before that could be undone.
        with traffic.expect_response("setBreakpoints"):
            replace_text(page, MODULE, EDITED)
        assert editor_text(page, MODULE) == EDITED
        seen["defined"] = run(page, MODULE)
        toggle_breakpoint(page, MODULE, EDITED_LINE)  # after the cell ran
        assert breakpoint_lines(page, MODULE) == [EDITED_LINE]
        seen |= stop(page, CALL, lambda: screenshot(page, artefacts, theme, "debugger edited"))
        assert seen["frame"] == "area"
        assert seen["location"] == f"Cell [{seen['defined']}]:{EDITED_LINE}"
        text = EDITED.splitlines()[EDITED_LINE - 1]
        assert seen["highlighted"] == [{"cell": MODULE, "line": EDITED_LINE, "text": text}]
        assert seen["output"] == "90"
