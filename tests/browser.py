"""A real JupyterLab 4 server and a real headless Chromium for tests/test_browser.py.

Nothing is shared with the developer's own Jupyter: the server's configuration, data,
runtime files, user settings, workspaces and IPython profile are in a private directory,
and it serves only a directory of the test's.  Chromium is Debian's (``bash .ci/test``
installs it where it is missing and apt-get can run); Playwright drives it through
``executable_path``, since Playwright's own browser download cannot reach every machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helpers import HANG_GUARD

#: Where ``bash .ci/test`` and a developer look for the screenshots, if set; otherwise
#: pytest's temporary directory of the run (printed at the end of the browser tests).
ARTEFACTS_VARIABLE = "IPYEXECMOD_ARTEFACTS"


def chromium() -> str | None:
    """The path of the Chromium on ``PATH`` (Debian names it ``chromium``, Ubuntu
    ``chromium-browser``), or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


#: Set by ``bash .ci/test`` to the one Python that runs the browser tests (the newest found).
ONCE_VARIABLE = "IPYEXECMOD_BROWSER_TESTS_ON"


def skip_reason() -> str | None:
    """Why the browser tests cannot or need not run here, or None."""
    if chromium() is None:
        return (
            "no Chromium on PATH (chromium or chromium-browser): `bash .ci/test` installs "
            "Debian's package where apt-get can run as root; elsewhere install it yourself"
        )
    once = os.environ.get(ONCE_VARIABLE)
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if once and once != here:
        return (
            f"`bash .ci/test` runs the browser tests once, with Python {once}: they check "
            f"JupyterLab's page (the kernel's side is tested on every Python)"
        )
    return None


@dataclass(frozen=True)
class Lab:
    """A running JupyterLab server: where it serves, with its token, and its root directory."""

    url: str
    token: str
    root: Path

    def open_url(self, path: str) -> str:
        """The URL that opens ``path`` (relative to :attr:`root`) in JupyterLab, logged in."""
        return f"{self.url}lab/tree/{path}?token={self.token}"


def write_settings(config_dir: Path, plugin: str, settings: dict[str, object]) -> None:
    """Write the user settings of JupyterLab plugin ``plugin`` (``package:name``) as a user
    who changed them in the Settings Editor would have them."""
    package, name = plugin.split(":")
    path = config_dir / "lab" / "user-settings" / package / f"{name}.jupyterlab-settings"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings))


def _environment(private: Path) -> dict[str, str]:
    env = dict(os.environ)
    for variable, name in [
        ("JUPYTER_CONFIG_DIR", "config"),
        ("JUPYTER_DATA_DIR", "data"),
        ("JUPYTER_RUNTIME_DIR", "run"),  # the kernels' sockets too: keep the path short
        ("IPYTHONDIR", "ipython"),
        ("XDG_CACHE_HOME", "cache"),  # jedi's cache, written in place (tests/kernels.py)
    ]:
        env[variable] = str(private / name)
    env.pop("JUPYTER_PATH", None)
    env.pop("JUPYTER_CONFIG_PATH", None)
    return env


def _server_info(process: subprocess.Popen[bytes], runtime: Path, log: Path) -> dict[str, object]:
    """The information file the server writes once it listens; raises RuntimeError if it
    exits first, TimeoutError only if it hangs."""
    info = runtime / f"jpserver-{process.pid}.json"
    deadline = time.monotonic() + HANG_GUARD
    while True:
        with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):  # not yet whole
            return dict(json.loads(info.read_text()))
        if process.poll() is not None:
            msg = f"JupyterLab exited with {process.returncode}:\n{log.read_text()[-3000:]}"
            raise RuntimeError(msg)
        if time.monotonic() > deadline:
            msg = f"JupyterLab did not start in {HANG_GUARD} s:\n{log.read_text()[-3000:]}"
            raise TimeoutError(msg)
        time.sleep(0.1)  # a poll of a file, not a wait for time to pass


@contextlib.contextmanager
def lab_server(root: Path, private: Path) -> Iterator[Lab]:
    """A JupyterLab server on 127.0.0.1 serving ``root``, its files under ``private``.

    The operating system picks its port (``--port=0``); its kernels talk over Unix
    sockets in its runtime directory, not TCP ports that another process could take
    between their choice and their use.  Stopped (and its kernels with it) on exit.
    Raises RuntimeError if it cannot start.
    """
    token = secrets.token_hex(16)
    env = _environment(private)
    for name in ("config", "data", "run", "ipython", "cache"):
        (private / name).mkdir(parents=True, exist_ok=True)
    command = [
        *(sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root"),
        *("--ServerApp.ip=127.0.0.1", "--ServerApp.port=0", "--ServerApp.port_retries=0"),
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--KernelManager.transport=ipc",
        "--LabApp.news_url=",  # no request to the internet
    ]
    process, info = _start(command, env, private)
    try:
        yield Lab(url=f"http://127.0.0.1:{info['port']}/", token=token, root=root)
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()  # SIGTERM: the server shuts its kernels down and exits
    try:
        process.wait(timeout=HANG_GUARD)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _start(
    command: list[str], env: dict[str, str], private: Path
) -> tuple[subprocess.Popen[bytes], dict[str, object]]:
    """Start the server; again if the port the system gave was taken before the server
    listened on it (jupyter_server asks for a free port, closes it, then binds it)."""
    for attempt in range(3):
        log = private / f"server-{attempt}.log"
        with open(log, "wb") as output:
            process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
        try:
            return process, _server_info(process, private / "run", log)
        except RuntimeError:  # it exited
            if "already in use" not in log.read_text():
                raise
        except BaseException:  # it hangs, or the test run is interrupted
            _stop(process)
            raise
    raise RuntimeError(f"JupyterLab found no free port in 3 attempts:\n{log.read_text()}")


@contextlib.contextmanager
def short_directory() -> Iterator[Path]:
    """A new directory with a short path (a Unix socket's path must stay under ~100 bytes)."""
    with tempfile.TemporaryDirectory(prefix="lab-") as directory:
        yield Path(directory)


@contextlib.contextmanager
def notebook_page(
    cells: list[Any], name: str, before_open: Callable[[Any], None] | None = None
) -> Iterator[Any]:
    """A page of a real headless Chromium with notebook ``name``, made of ``cells``
    (nbformat cells), open in a private JupyterLab; yielded once its kernel is idle.
    ``before_open`` is called with the page before it opens anything (to listen to it).

    Every cell is in the page (JupyterLab otherwise renders only those near the view), and
    no question about news covers the notebook.  Raises RuntimeError if the server cannot
    start; needs JupyterLab and Playwright (the test extra).
    """
    import nbformat  # here: a test module skips, saying why, where these are missing
    from playwright import sync_api

    with short_directory() as directory:
        root, private = directory / "root", directory / "private"
        root.mkdir()
        notebook = nbformat.v4.new_notebook(cells=cells)
        notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
        nbformat.write(notebook, root / name)
        config = private / "config"
        write_settings(config, "@jupyterlab/notebook-extension:tracker", {"windowingMode": "none"})
        write_settings(
            config,
            "@jupyterlab/apputils-extension:notification",
            {"fetchNews": "false", "checkForUpdates": False},
        )
        with lab_server(root, private) as lab, sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium(),
                args=["--no-sandbox"] if os.geteuid() == 0 else [],  # root: no sandbox allowed
                timeout=HANG_GUARD * 1000,
            )
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.set_default_timeout(HANG_GUARD * 1000)
                if before_open is not None:
                    before_open(page)
                open_notebook(page, lab, name)
                yield page
            finally:
                browser.close()


def artefacts_directory(tmp_path_factory: Any, config: Any) -> Path:
    """Where the browser tests keep their screenshots: ``$IPYEXECMOD_ARTEFACTS/browser`` if
    that is set, otherwise a new directory of pytest's temporary directory of the run.
    The path is printed after pytest's summary (where pytest no longer captures output)."""
    configured = os.environ.get(ARTEFACTS_VARIABLE)
    if configured:
        directory = Path(configured) / "browser"
        directory.mkdir(parents=True, exist_ok=True)
    else:
        directory = tmp_path_factory.mktemp("browser-screenshots")
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        config.add_cleanup(
            lambda: reporter.write_line(f"browser tests: screenshots in {directory}")
        )
    return Path(directory)


def screenshot(element: Any, artefacts: Path, theme: str, what: str) -> Path:
    """A screenshot of locator (or page) ``element`` in ``artefacts``, named after ``theme``
    and ``what``."""
    slug = re.sub(r"[^a-z0-9]+", "-", f"{theme} {what}".lower()).strip("-")
    path = artefacts / f"{slug}.png"
    element.screenshot(path=path)
    return path


# -- the page ---------------------------------------------------------------------------------

#: The status bar's kernel item once the notebook's kernel has started and is idle.
_IDLE = re.compile(r"^(?!No Kernel).+ \| Idle$")

#: True once every code cell's prompt shows its execution count: the whole notebook ran.
_ALL_RAN = r"""() => {
    const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')];
    return prompts.length > 0 && prompts.every(p => /\[\d+\]/.test(p.textContent));
}"""


def wait_idle(page: Any) -> None:
    """Wait until the status bar says the notebook's kernel is idle."""
    page.locator(".jp-StatusBar-TextItem", has_text=_IDLE).wait_for()


def open_notebook(page: Any, lab: Lab, path: str) -> None:
    """Open notebook ``path`` of ``lab`` in ``page``; return once its kernel is idle."""
    page.goto(lab.open_url(path))
    page.locator(".jp-Notebook .jp-Cell").first.wait_for()
    wait_idle(page)


def menu(page: Any, *labels: str) -> None:
    """Choose an item of the menu bar as a user does: ``menu(page, "Run", "Run All Cells")``."""
    top, *items = labels
    page.locator(".lm-MenuBar-itemLabel", has_text=_exactly(top)).click()
    for label in items:  # each in the menu that the one before opened: the last one open
        page.locator(".lm-Menu").last.locator(
            ".lm-Menu-itemLabel", has_text=_exactly(label)
        ).click()


def _exactly(text: str) -> re.Pattern[str]:
    return re.compile(f"^{re.escape(text)}$")


def run_all(page: Any) -> None:
    """Run every cell (Run > Run All Cells); return once all ran and the kernel is idle.

    A cell that is expected to fail carries the tag ``raises-exception``, or JupyterLab
    stops there.
    """
    menu(page, "Run", "Run All Cells")
    page.wait_for_function(_ALL_RAN)
    wait_idle(page)


def cell(page: Any, index: int) -> Any:
    """The ``index``-th cell of the open notebook (a Playwright locator)."""
    return page.locator(".jp-Notebook .jp-Cell").nth(index)


_THEME_COLOUR = "() => getComputedStyle(document.body).getPropertyValue('--jp-layout-color0')"


def switch_theme(page: Any, name: str) -> None:
    """Switch JupyterLab to theme ``name`` (Settings > Theme > ``name``); return once its
    stylesheet applies: the body says so and a colour variable of the theme changed."""
    if page.evaluate("() => document.body.dataset.jpThemeName") == name:
        return
    before = page.evaluate(_THEME_COLOUR)
    menu(page, "Settings", "Theme", name)
    page.wait_for_function(
        f"([name, before]) => document.body.dataset.jpThemeName === name && ({_THEME_COLOUR})()"
        " !== before",
        arg=[name, before],
    )


# -- what a user sees: colours, contrast, alignment -------------------------------------------

#: For each element: its text, its computed colour and text-align, the colour behind it
#: (its own background and its ancestors', composited until an opaque one), and the WCAG
#: contrast ratio of the two.  A colour it cannot read is an error, never a pass.
_LOOKS = r"""elements => {
    const parse = value => {  // rgb(r, g, b), rgba(r, g, b, a), color(srgb r g b / a)
        const m = /^(rgba?|color)\((?:srgb )?(.*)\)$/.exec(value.trim());
        if (!m) throw new Error(`cannot read the colour ${value}`);
        const p = m[2].split(/[\s,\/]+/).filter(Boolean).map(Number);
        const scale = m[1] === 'color' ? 255 : 1;  // color()'s components go from 0 to 1
        return {r: p[0] * scale, g: p[1] * scale, b: p[2] * scale, a: p.length > 3 ? p[3] : 1};
    };
    const over = (top, bottom) => ({
        r: top.r * top.a + bottom.r * (1 - top.a), g: top.g * top.a + bottom.g * (1 - top.a),
        b: top.b * top.a + bottom.b * (1 - top.a), a: 1});
    const behind = element => {
        const layers = [];
        for (let e = element; e; e = e.parentElement) {
            const colour = parse(getComputedStyle(e).backgroundColor);
            if (colour.a > 0) layers.push(colour);
            if (colour.a >= 1) break;
        }
        // Under the page, if nothing is opaque: the canvas, white.
        return layers.reverse().reduce((below, layer) => over(layer, below),
                                       {r: 255, g: 255, b: 255, a: 1});
    };
    const luminance = ({r, g, b}) => {
        const linear = v => (v /= 255) <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
        return 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
    };
    const css = ({r, g, b}) => `rgb(${Math.round(r)}, ${Math.round(g)}, ${Math.round(b)})`;
    return elements.map(element => {
        const style = getComputedStyle(element);
        const background = behind(element);
        const text = over(parse(style.color), background);
        const [light, dark] = [luminance(text), luminance(background)].sort((a, b) => b - a);
        return {text: element.innerText.slice(0, 60), align: style.textAlign,
                color: css(text), background: css(background),
                ratio: (light + 0.05) / (dark + 0.05)};
    });
}"""

#: WCAG 2's minimum contrast for normal text (success criterion 1.4.3, level AA).
READABLE = 4.5


def looks(elements: Any) -> list[dict[str, Any]]:
    """How each element of locator ``elements`` looks (see :data:`_LOOKS`)."""
    return list(elements.evaluate_all(_LOOKS))


def unreadable(seen: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The elements of ``seen`` (:func:`looks`) whose text contrast is below :data:`READABLE`."""
    return [element for element in seen if element["ratio"] < READABLE]


#: How many lines an element takes on the screen, wrapped lines counted.
_SCREEN_LINES = """element => {
    const pre = element.querySelector('pre') || element;
    const line = parseFloat(getComputedStyle(pre).lineHeight);
    return Math.round(pre.getBoundingClientRect().height / line);
}"""


def screen_lines(element: Any) -> int:
    """How many lines locator ``element`` takes on the screen, wrapped lines counted."""
    return int(element.evaluate(_SCREEN_LINES))
