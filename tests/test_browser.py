"""What a user sees in JupyterLab 4, in a real headless Chromium, in the light and dark themes.

One JupyterLab server and one browser page for the module: the page opens a notebook
written here, runs all its cells once, and every check looks at what they left on the
screen, once in each theme (switched in the page, as a user does).  Each check keeps a
screenshot of what it looked at: under ``$IPYEXECMOD_ARTEFACTS/browser`` if that variable
is set, otherwise in pytest's temporary directory of the run; the path is printed at the
end of the module's tests and in every failure.

Skipped, saying why, only where Chromium is not installed (``bash .ci/test`` installs it
where apt-get can) or the test extra's JupyterLab and Playwright are missing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("jupyterlab", reason="JupyterLab is not installed: pip install -e '.[test]'")
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="Playwright is not installed: pip install -e '.[test]'"
)

import nbformat  # noqa: E402 (after the skips: a dependency of JupyterLab's)
from browser import (  # noqa: E402
    artefacts_directory,
    cell,
    looks,
    notebook_page,
    run_all,
    screen_lines,
    screenshot,
    skip_reason,
    switch_theme,
    unreadable,
)

if skip_reason() is not None:
    pytestmark = pytest.mark.skip(reason=skip_reason())

THEMES = ["JupyterLab Light", "JupyterLab Dark"]


# -- what the outputs must look like ----------------------------------------------------------


def assert_rendered_table(output: Any) -> None:
    """``output`` (a cell's output area) is an HTML table, not escaped text: left-aligned
    cells whose text is readable on what is behind it."""
    html = output.locator(".jp-OutputArea-output[data-mime-type='text/html']")
    assert html.locator("table").count() == 1, output.inner_text()
    assert "<t" not in output.inner_text()  # tags shown as text: escaped once too often
    seen = looks(html.locator("th, td"))
    assert seen and unreadable(seen) == [], unreadable(seen)
    assert {element["align"] for element in seen} == {"left"}, seen


def assert_rendered_diff(output: Any) -> None:
    """``output`` is an HTML diff, not escaped text: its added and removed lines (text that
    starts with one ``+`` or ``-``) are marked (a background or colour of their own), and
    every line is readable on what is behind it."""
    html = output.locator(".jp-OutputArea-output[data-mime-type='text/html']")
    assert html.count() == 1 and "<span" not in output.inner_text(), output.inner_text()
    plain, *_ = looks(html)
    lines = looks(html.locator("*:not(:has(*))"))  # the innermost elements: the lines
    changed = [line for line in lines if re.match(r"[-+](?![-+]{2})", line["text"])]
    assert {line["text"][0] for line in changed} == {"+", "-"}, lines
    for line in changed:
        assert (line["background"], line["color"]) != (plain["background"], plain["color"]), line
    assert unreadable(lines) == [], unreadable(lines)


def says(expected: str) -> Callable[[Any], None]:
    """A check that an output is the sentence ``expected``, shown as text (not a table)."""

    def check(output: Any) -> None:
        shown = output.locator(".jp-OutputArea-output[data-mime-type='text/html']")
        assert shown.inner_text().strip() == expected
        assert output.locator("table").count() == 0

    return check


#: The magics whose outputs are checked, a line each: the cell that shows the output, and
#: how it must look.  The notebook has a cell module ``geometry`` in two versions and
#: ``shapes``, which imports it.
OUTPUTS: list[tuple[str, Callable[[Any], None]]] = [
    ("%lsmod --cells", assert_rendered_table),
    ("%lsmod _no_such_*", says("no modules match")),
    ("%modinfo geometry", assert_rendered_table),
    ("%pycinfo geometry", assert_rendered_table),
    ("%modhistory geometry", assert_rendered_table),
    ("%moddiff geometry", assert_rendered_diff),
]

GEOMETRY = [
    "%%as_module geometry\ndef area(r):\n    return 3 * r * r\n",
    '%%as_module geometry\nPI = 3.14159\n\n\ndef area(r):\n    """The area of a circle."""\n'
    "    return PI * r * r\n",
]
SHAPES = (
    "%%as_module shapes\nfrom geometry import area\n\n\n"
    "def ring(a, b):\n    return area(a) - area(b)\n"
)
NAME_ERROR = (
    "%%as_module pricing\nTAX_PERCENT = 25\n\n\ndef with_tax(cents):\n"
    "    return round(cents * (100 + TAX_PERCENT) / 100)\n\n\n"
    "EXAMPLE = with_tax(price_list[0])\n"
)
SYNTAX_ERROR = "%%as_module pricing\ndef with_tax(cents)\n    return cents\n"


def notebook_cells() -> list[Any]:
    cells = [nbformat.v4.new_code_cell("%load_ext ipyexecmod")]
    cells += [nbformat.v4.new_code_cell(source) for source in [*GEOMETRY, SHAPES]]
    cells += [nbformat.v4.new_code_cell(source) for source, _ in OUTPUTS]
    cells.append(nbformat.v4.new_code_cell("geometry.area??"))
    for source in (NAME_ERROR, SYNTAX_ERROR):  # Run All goes on past them
        cells.append(nbformat.v4.new_code_cell(source, metadata={"tags": ["raises-exception"]}))
    return cells


# -- one server, one browser, one page --------------------------------------------------------


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory: pytest.TempPathFactory, request: Any) -> Path:
    return artefacts_directory(tmp_path_factory, request.config)


@pytest.fixture(scope="module")
def page() -> Iterator[Any]:
    """A page of a real headless Chromium with the test notebook open in JupyterLab, all its
    cells run."""
    with notebook_page(notebook_cells(), "checks.ipynb") as page:
        run_all(page)
        yield page


@pytest.fixture(scope="module", params=THEMES)
def theme(request: Any, page: Any) -> str:
    switch_theme(page, request.param)
    return str(request.param)


def output_of(page: Any, source: str) -> Any:
    """The output area of the cell whose source is ``source``."""
    index = [c.source for c in notebook_cells()].index(source)
    return cell(page, index).locator(".jp-Cell-outputArea")


# -- the checks -------------------------------------------------------------------------------


@pytest.mark.parametrize(("source", "check"), OUTPUTS, ids=[source for source, _ in OUTPUTS])
def test_magic_output_renders(page, theme, artefacts, source, check):
    output = output_of(page, source)
    shot = screenshot(output, artefacts, theme, source)
    try:
        check(output)
    except AssertionError as error:
        error.add_note(f"screenshot: {shot}")
        raise


def test_tab_after_reload_module_offers_the_cell_modules(page, theme, artefacts):
    page.locator(".jp-Notebook-footer").click()  # a new cell at the end
    cell(page, -1).locator(".cm-content").click()  # its editor
    page.locator(".jp-Notebook.jp-mod-editMode").wait_for()
    page.keyboard.type("%reload_module ")
    page.keyboard.press("Tab")
    completer = page.locator(".jp-Completer")
    completer.locator(".jp-Completer-item").first.wait_for()
    shot = screenshot(completer, artefacts, theme, "completer")
    offered = completer.locator(".jp-Completer-item").evaluate_all(
        "items => items.map(item => item.dataset.value)"
    )
    page.keyboard.press("Escape")
    assert {"geometry", "shapes"} <= set(offered), (offered[:10], shot)
    assert offered[:2] == ["geometry", "shapes"], (offered[:10], shot)  # cell modules first


def test_double_question_mark_shows_the_cell_modules_source(page, theme, artefacts):
    output = output_of(page, "geometry.area??")
    shot = screenshot(output, artefacts, theme, "source")
    text = output.inner_text()
    assert '"""The area of a circle."""' in text and "return PI * r * r" in text, (text, shot)
    assert "3 * r * r" not in text, shot  # the version that runs, not the first


#: (the cell, the line of it that is wrong, how the error shows that line, its last line)
ERRORS = [
    (NAME_ERROR, 9, "----> 9 {wrong}", "NameError: name 'price_list' is not defined"),
    (SYNTAX_ERROR, 2, "    {wrong}", "SyntaxError: expected ':'"),
]

#: At most this many lines on the screen: an error a user reads without scrolling.
SHORT = 20


@pytest.mark.parametrize(("source", "line", "shown", "last"), ERRORS, ids=["Name", "Syntax"])
def test_an_as_module_error_is_short_and_names_the_cells_line(
    page, theme, artefacts, source, line, shown, last
):
    output = output_of(page, source)
    shot = screenshot(output, artefacts, theme, last.split(":")[0])
    text = output.inner_text()
    *_, named = re.findall(r"^ *Cell In\[\d+\], line (\d+)$", text, re.MULTILINE)
    assert int(named) == line, (text, shot)  # the cell's own line, as the editor counts
    wrong = source.splitlines()[line - 1]
    assert shown.format(wrong=wrong) in text.splitlines(), (wrong, text, shot)
    assert text.rstrip().endswith(last), (text, shot)
    assert "ipyexecmod" not in text, (text, shot)  # none of the extension's own frames
    assert screen_lines(output) <= SHORT, (text, shot)
