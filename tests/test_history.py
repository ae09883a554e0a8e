"""Every version of a cell module that ran: %modhistory, %moddiff, %revert, the limit."""

from __future__ import annotations

import difflib
import importlib
import sys

import pytest
from helpers import restored, run_python
from IPython.core.error import UsageError
from traitlets import TraitError

from ipyexecmod import cells
from ipyexecmod.cells.history import DEFAULT_LIMIT
from ipyexecmod.inspection import ModuleDiff, ModuleHistory
from ipyexecmod.inspection.tables import LEFT


@pytest.fixture(autouse=True)
def default_limit():
    """The finder's history limit as it was, after a test that changed it (the magics set
    it at load; a test without them would keep the change)."""
    yield
    cells.finder.history_limit = DEFAULT_LIMIT


def cell(ip, code: str) -> int:
    """Run ``code`` as a notebook cell (one that gets an ``In[N]``); its N.  Raises what
    the cell raised."""
    result = ip.run_cell(code, store_history=True)
    result.raise_error()
    return result.execution_count


def module_cell(ip, name: str, body: str, options: str = "") -> int:
    """Run ``%%as_module [options] name`` with ``body`` as a notebook cell; its N."""
    return cell(ip, f"%%as_module {f'{options} ' if options else ''}{name}\n{body}")


def rows(ip, name: str) -> list[tuple]:
    """%modhistory NAME's rows without the time: (current, version, cell, how, +, -)."""
    history = ip.run_line_magic("modhistory", name)
    assert isinstance(history, ModuleHistory)
    return [(r.current, r.version, r.cell, r.how, r.added, r.removed) for r in history]


def formats(ip, value) -> dict:
    data, _metadata = ip.display_formatter.format(value)
    return data


# -- versions ---------------------------------------------------------------------------------


def test_each_run_of_a_cell_is_a_version_with_its_cell_and_changes(ip, unique):
    name = unique("geo")
    first = module_cell(ip, name, "PI = 3\ndef area(r):\n    return PI * r * r\n")
    second = module_cell(ip, name, "PI = 3.14\ndef area(r):\n    return PI * r * r\n")
    third = module_cell(ip, name, "PI = 3.14\n")
    again = module_cell(ip, name, "PI = 3.14\n")  # unchanged: its code runs, a version
    assert rows(ip, name) == [
        ("", 1, f"In[{first}]", "cell", 3, 0),
        ("", 2, f"In[{second}]", "cell", 1, 1),
        ("", 3, f"In[{third}]", "cell", 0, 2),
        ("*", 4, f"In[{again}]", "cell", 0, 0),
    ]
    history = ip.run_line_magic("modhistory", name)
    text = repr(history).splitlines()
    assert text[0].split() == ["version", "time", "cell", "how", "added", "removed"]
    assert text[-1].split()[:2] == ["*", "4"]
    assert len(text[1].split()[1]) == len("12:00:00")  # today: the time of day only
    assert "dropped" not in repr(history)


def test_a_failed_definition_is_no_version(ip, unique):
    name = unique()
    ok = module_cell(ip, name, "X = 1\n")
    with pytest.raises(ZeroDivisionError):
        module_cell(ip, name, "X = 2\n1 / 0\n")
    with pytest.raises(SyntaxError):
        module_cell(ip, name, "X = (\n")
    assert rows(ip, name) == [("*", 1, f"In[{ok}]", "cell", 1, 0)]
    assert cells.finder.modules[name].history.count == 1
    later = module_cell(ip, name, "X = 3\n")
    assert rows(ip, name)[-1] == ("*", 2, f"In[{later}]", "cell", 1, 1)  # numbers go on


def test_dependents_run_again_are_versions_of_theirs_and_a_failing_one_adds_none(ip, unique):
    base, user = unique("base"), unique("user")
    module_cell(ip, base, "def f():\n    return 1\n")
    made = module_cell(ip, user, f"from {base} import f\nVALUE = 2 / f()\n")
    changed = module_cell(ip, base, "def f():\n    return 2\n")
    assert sys.modules[user].VALUE == 1
    assert rows(ip, user) == [
        ("", 1, f"In[{made}]", "cell", 2, 0),
        ("*", 2, f"In[{changed}]", f"dependent of {base}", 0, 0),
    ]
    with pytest.raises(ZeroDivisionError):  # the dependent fails: the set goes back
        module_cell(ip, base, "def f():\n    return 0\n")
    assert sys.modules[user].VALUE == 1
    assert [row[1] for row in rows(ip, base)] == [1, 2]
    assert [row[1] for row in rows(ip, user)] == [1, 2]
    no_deps = module_cell(ip, base, "def f():\n    return 4\n", "--no-deps")
    assert rows(ip, base)[-1][1:4] == (3, f"In[{no_deps}]", "cell")
    assert len(rows(ip, user)) == 2


def test_reloads_are_versions_from_the_magic_and_the_api(ip, unique):
    base, user = unique("base"), unique("user")
    module_cell(ip, base, "X = 1\n")
    module_cell(ip, user, f"import {base}\n")
    reloaded = cell(ip, f"%reload_module {base}")
    cells.finder.reload(base)
    importlib.reload(sys.modules[base])  # outside any definition: no version
    assert [row[2:4] for row in rows(ip, base)] == [
        (f"In[{reloaded - 2}]", "cell"),
        (f"In[{reloaded}]", "%reload_module"),
        ("-", "reload()"),
    ]
    assert [row[2:4] for row in rows(ip, user)][1:] == [
        (f"In[{reloaded}]", f"dependent of {base}"),
        ("-", f"dependent of {base}"),
    ]


def test_a_definition_inside_one_that_fails_is_no_version(ip, unique):
    inner, outer = unique("inner"), unique("outer")
    cells.define(inner, "X = 0\n")
    code = f"from ipyexecmod import cells\ncells.define({inner!r}, 'X = 1')\nraise ValueError\n"
    with pytest.raises(ValueError):
        cells.define(outer, code)
    assert sys.modules[inner].X == 0
    assert [entry.number for entry in cells.finder.modules[inner].history] == [1]
    assert outer not in cells.finder


def test_a_module_defined_through_the_api_says_so(ip, unique):
    name = unique()
    cells.define(name, "X = 1\n")
    cells.define(name, "X = 2\n", defined_in=7)
    assert rows(ip, name) == [("", 1, "-", "define()", 1, 0), ("*", 2, "In[7]", "cell", 1, 1)]


# -- the limit --------------------------------------------------------------------------------


def test_the_limit_drops_the_oldest_and_applies_to_existing_modules(ip, unique):
    name, other = unique(), unique()
    for value in range(6):
        module_cell(ip, name, f"X = {value}\n")
    module_cell(ip, other, "Y = 1\n")
    magics = ip.magics_manager.registry["ExecModMagics"]
    assert magics.history_limit == cells.finder.history_limit == 100
    cell(ip, "%config ExecModMagics.history_limit = 3")
    assert cells.finder.history_limit == 3
    assert [row[1] for row in rows(ip, name)] == [4, 5, 6]
    assert rows(ip, name)[0][4:] == ("", "")  # the version before it is gone
    history = ip.run_line_magic("modhistory", name)
    assert history.dropped == (
        "versions 1 to 3 were dropped: the history keeps the last 3 (ExecModMagics.history_limit)"
    )
    assert repr(history).endswith("\n" + history.dropped)
    assert history._repr_html_().endswith(f"<p>{history.dropped}</p>")
    module_cell(ip, name, "X = 7\n")
    assert [row[1] for row in rows(ip, name)] == [5, 6, 7]  # numbers are never reused
    assert [row[1] for row in rows(ip, other)] == [1]
    magics.history_limit = 1
    assert [row[1] for row in rows(ip, name)] == [7]
    assert ip.run_line_magic("modhistory", name).dropped.startswith("versions 1 to 6 were")


@pytest.mark.parametrize("bad", [0, -1, True, 2.5, "3", None])
def test_a_bad_limit_is_refused_and_changes_nothing(ip, unique, bad):
    name = unique()
    for value in range(3):
        cells.define(name, f"X = {value}\n")
    magics = ip.magics_manager.registry["ExecModMagics"]
    with pytest.raises(TraitError, match=r"history_limit|history limit"):
        magics.history_limit = bad
    assert magics.history_limit == cells.finder.history_limit == 100
    assert len(cells.finder.modules[name].history) == 3
    if bad in (0, -1):  # past the trait's own type check: our message
        with pytest.raises(TraitError, match=r"a whole number of versions, 1 or more, not -?\d"):
            magics.history_limit = bad


def test_the_limit_set_in_the_configuration_applies_at_load(shell, unique):
    name = unique()
    for value in range(4):
        cells.define(name, f"X = {value}\n")
    shell.config.ExecModMagics.history_limit = 2
    shell.run_line_magic("load_ext", "ipyexecmod")
    try:
        assert cells.finder.history_limit == 2
        assert [entry.number for entry in cells.finder.modules[name].history] == [3, 4]
    finally:
        shell.run_line_magic("unload_ext", "ipyexecmod")
        shell.config.pop("ExecModMagics", None)


# -- %moddiff ---------------------------------------------------------------------------------


def test_moddiff_compares_any_two_versions(ip, unique):
    name = unique()
    sources = ["A = 1\nB = 2\n", "A = 1\nB = 3\nC = 4\n", "C = 4\n"]
    numbers = [module_cell(ip, name, source) for source in sources]
    last_two = ip.run_line_magic("moddiff", name)
    assert isinstance(last_two, ModuleDiff)
    assert (last_two.old.number, last_two.new.number) == (2, 3)
    expected = difflib.unified_diff(
        sources[0].splitlines(keepends=True),
        sources[2].splitlines(keepends=True),
        f"{name} (version 1, In[{numbers[0]}])",
        f"{name} (version 3, In[{numbers[2]}])",
    )
    assert repr(ip.run_line_magic("moddiff", f"{name} 1")) == "".join(expected).rstrip("\n")
    backwards = ip.run_line_magic("moddiff", f"{name} 3 1")
    assert repr(backwards).splitlines()[3:] == ["-C = 4", "+A = 1", "+B = 2"]
    assert repr(ip.run_line_magic("moddiff", f"{name} -3 -2")).splitlines()[3:] == [
        " A = 1",
        "-B = 2",
        "+B = 3",
        "+C = 4",
    ]
    same = ip.run_line_magic("moddiff", f"{name} 2 2")
    assert repr(same) == f"versions 2 and 2 of {name!r} are the same"
    html = f"<p>versions 2 and 2 of &#x27;{name}&#x27; are the same</p>"
    assert formats(ip, same)["text/html"] == html


def test_the_html_diff_marks_lines_with_theme_colours_and_escapes_everything(ip, unique):
    name = unique()
    module_cell(ip, name, "S = '<b>&</b>'\nKEEP = 1\n")
    cells.define(name, "S = '<script>x</script>'\nKEEP = 1")  # no newline at the end
    diff = ip.run_line_magic("moddiff", name)
    data = formats(ip, diff)
    text, html = data["text/plain"], data["text/html"]
    assert text.splitlines()[-2:] == ["+KEEP = 1", "\\ No newline at end of file"]
    assert "<script>" not in html and "<b>" not in html
    assert "+S = &#x27;&lt;script&gt;x&lt;/script&gt;&#x27;" in html
    assert "-S = &#x27;&lt;b&gt;&amp;&lt;/b&gt;&#x27;" in html
    added = html.split("+S = ")[0].rsplit("<span", 1)[1]
    removed = html.split("-S = ")[0].rsplit("<span", 1)[1]
    # JupyterLab's variables, each with a fallback where they are not defined
    assert "var(--jp-success-color1, #" in added and "var(--jp-error-color1, #" in removed
    assert "rgba(" in added and "rgba(" in removed  # for a browser without color-mix()
    assert "var(--jp-content-font-color1, inherit)" in html
    assert "var(--jp-code-font-family, monospace)" in html
    for style in html.split('style="')[1:]:
        colours = [part for part in style.split(";") if "color" in part]
        assert all("var(" in part or "rgba(" in part or "inherit" in part for part in colours)


def test_a_removed_line_that_looks_like_a_header_is_a_removed_line(ip, unique):
    name = unique()
    module_cell(ip, name, "X = 1\n-- 1\n")  # removed, "--- 1": as a diff's header starts
    module_cell(ip, name, "X = 1\n")
    html = ip.run_line_magic("moddiff", name)._repr_html_()
    assert html.count("font-weight: bold") == 2


# -- %revert ----------------------------------------------------------------------------------


def test_revert_redefines_from_a_version_with_its_dependents_and_names(ip, unique, capsys):
    base, user = unique("base"), unique("user")
    module_cell(ip, base, "def f():\n    return 'v1'\n")
    module_cell(ip, user, f"from {base} import f\ndef g():\n    return f()\n")
    module_cell(ip, base, "def f():\n    return 'v2'\n")
    cell(ip, f"from {base} import f as nb_f")
    capsys.readouterr()
    reverted = cell(ip, f"%revert {base} 1")
    assert sys.modules[user].g() == "v1" and ip.user_ns["nb_f"]() == "v1"
    out = capsys.readouterr().out
    assert out.splitlines() == [
        f"{base!r} is version 1's source again, as version 3",
        f"re-ran {user} (it imports {base})",
        "rebound in the notebook: nb_f",
    ]
    assert rows(ip, base)[-1] == ("*", 3, f"In[{reverted}]", "revert to 1", 1, 1)
    assert rows(ip, user)[-1][1:4] == (3, f"In[{reverted}]", f"dependent of {base}")
    module = sys.modules[base]
    with open(module.__file__, encoding="utf-8") as copy:  # the on-disk copy follows
        assert copy.read() == "def f():\n    return 'v1'\n"
    assert cells.finder.modules[base].version.defined_in == reverted
    assert repr(ip.run_line_magic("moddiff", f"{base} 1 3")).endswith("are the same")
    # To the version in place: its code runs again, a version
    assert ip.run_line_magic("revert", f"{base} -1") is None
    assert rows(ip, base)[-1][1:4] == (4, "-", "revert to 3")


def test_revert_keeps_the_module_where_it_is_kept(ip, unique, tmp_path):
    memory, lasting = unique("memory"), unique("lasting")
    module_cell(ip, memory, "X = 1\n", "--no-persist")
    module_cell(ip, memory, "X = 2\n", "--no-persist")
    module_cell(ip, lasting, "X = 1\n", f"--persist-dir {tmp_path}")
    module_cell(ip, lasting, "X = 2\n", f"--persist-dir {tmp_path}")
    cell(ip, f"%revert {memory} 1\n%revert {lasting} 1")
    assert sys.modules[memory].X == 1
    assert sys.modules[memory].__file__.startswith("ipyexecmod:")  # no copy: no file
    assert sys.modules[lasting].__file__ == str(tmp_path / f"{lasting}.py")
    assert (tmp_path / f"{lasting}.py").read_text() == "X = 1\n"


def test_a_failing_revert_puts_everything_back_and_adds_no_version(ip, unique, capsys):
    base, user = unique("base"), unique("user")
    module_cell(ip, base, "def f():\n    return 0\n")
    module_cell(ip, base, "def f():\n    return 2\n")
    module_cell(ip, user, f"from {base} import f\nVALUE = 10 / f()\n")
    copy = sys.modules[base].__file__
    with open(copy, encoding="utf-8") as file:
        before = file.read()
    base_rows, user_rows = rows(ip, base), rows(ip, user)
    with pytest.raises(ZeroDivisionError):
        cell(ip, f"%revert {base} 1")  # version 1's f gives 0: the dependent fails
    assert "is version 1's source again" not in capsys.readouterr().out
    assert sys.modules[base].f() == 2 and sys.modules[user].VALUE == 5
    assert rows(ip, base) == base_rows and rows(ip, user) == user_rows
    with open(copy, encoding="utf-8") as file:
        assert file.read() == before
    cell(ip, f"%revert {base} 1 --no-deps")  # without its dependents it can
    assert rows(ip, base)[-1][1] == 3 and sys.modules[base].f() == 0
    assert rows(ip, user) == user_rows


# -- bad input --------------------------------------------------------------------------------


def test_bad_input_says_what_is_wrong_and_what_to_do(ip, unique):
    name, package = unique(), unique("pkg")
    module_cell(ip, name, "X = 1\n")
    module_cell(ip, f"{package}.sub", "Y = 1\n")
    cases = {
        "modhistory nothere_at_all": "no cell module named 'nothere_at_all'; %lsmod --cells",
        "modhistory json": "'json' is not a cell module, so it has no versions",
        f"modhistory {package}": f"{package!r} is a package made for its modules, with no cell",
        f"moddiff {name}": f"{name!r} has one version kept, nothing to compare it with",
        f"moddiff {name} 1 2": f"{name!r}: there is no version 2: only version 1 is kept; "
        f"%modhistory {name} lists them",
        f"moddiff {name} x": "argument a: invalid int value: 'x'",
        f"revert {name} 0": f"{name!r}: there is no version 0: only version 1 is kept",
        f"revert {name}": "the following arguments are required: n",
        f"revert {name} 1 --bogus": "unrecognized arguments: --bogus",
        "revert json 1": "'json' is not a cell module",
    }
    for line, message in cases.items():
        magic, _, arguments = line.partition(" ")
        with pytest.raises(UsageError) as raised:
            ip.run_line_magic(magic, arguments)
        assert message in str(raised.value), line
    assert [row[1] for row in rows(ip, name)] == [1]


def test_a_module_restored_from_a_lasting_directory_has_no_versions_until_its_cell_runs(
    ip, unique, restoring
):
    name = unique()
    module = restored(name, "X = 'earlier kernel'\n", restoring)
    with pytest.raises(UsageError) as raised:
        ip.run_line_magic("modhistory", name)
    assert str(raised.value) == (
        f"{name!r} was restored from its copy {module.__file__}, which an earlier kernel "
        f"wrote: the versions of that kernel were kept in its memory, and this kernel keeps "
        f"those that run in it; run its %%as_module cell to define it here"
    )
    with pytest.raises(UsageError, match="was restored from its copy"):
        ip.run_line_magic("revert", f"{name} 1")
    ran = module_cell(ip, name, "X = 'this kernel'\n", f"--persist-dir {restoring}")
    assert rows(ip, name) == [("*", 1, f"In[{ran}]", "cell", 1, 0)]


def test_the_magics_complete_cell_module_names_and_go_with_unload(ip, unique):
    from IPython.core.completer import provisionalcompleter

    name = unique("complete")
    module_cell(ip, name, "X = 1\n")
    for magic in ("modhistory", "moddiff", "revert"):
        with provisionalcompleter():
            line = f"%{magic} {name[:-2]}"
            found = [c.text for c in ip.Completer.completions(line, len(line))]
        assert name in found, magic
    ip.run_line_magic("unload_ext", "ipyexecmod")
    try:
        assert not {"modhistory", "moddiff", "revert"} & set(ip.magics_manager.magics["line"])
    finally:
        ip.run_line_magic("load_ext", "ipyexecmod")


# -- memory -----------------------------------------------------------------------------------


def test_ten_thousand_redefinitions_keep_the_memory_of_the_kept_sources_only():
    """With the default limit, 10,000 redefinitions grow the memory by the 100 sources kept
    and no more than 2 MB besides.  Measured in a fresh process (other tests' objects stay
    out), with tracemalloc after gc.collect(): bytes, not time, so load cannot change it.

    Through the API: the magic's path adds a cell's parsing and an on-disk copy, whose
    memory does not grow with the versions (benchmarks/rows_history.py measures it).  On
    Python 3.12 and later about 65 bytes a version stay for good whatever ipyexecmod does:
    compile() interns each code's filename (``NAME@N``, one per version), immortal."""
    out = run_python("""
        import gc, sys, tracemalloc
        from ipyexecmod import cells

        BODY = "# version {0}\\nSTEP = {0}\\ndef f(x):\\n    return x + STEP\\n"
        cells.define("hist_memory", BODY.format(0))
        gc.collect()
        tracemalloc.start()
        start = tracemalloc.get_traced_memory()[0]
        for i in range(1, 10_001):
            cells.define("hist_memory", BODY.format(i))
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - start
        history = cells.finder.modules["hist_memory"].history
        assert len(history) == 100 and history.count == 10_001, history
        kept = sum(sys.getsizeof(entry.source) for entry in history)
        print(grown, kept)
        """)
    assert out.returncode == 0, out.stderr
    grown, kept = map(int, out.stdout.split())
    assert kept > 100 * 60  # the sources are in the measure
    assert grown - kept <= 2 * 1024 * 1024, (grown, kept)


# -- in a real kernel -------------------------------------------------------------------------


def test_a_kernel_sends_the_history_and_the_diff_as_text_and_html(tmp_path):
    pytest.importorskip("jupyter_client")
    from kernels import execute, kernel_running, outputs

    with kernel_running(tmp_path / "ipython") as (_, client):
        execute(client, "%load_ext ipyexecmod")
        first, _ = execute(client, "%%as_module khist\nSIDE = 2\n")
        second, _ = execute(client, "%%as_module khist\nSIDE = 3\n")
        reply, history = execute(client, "%modhistory khist")
        assert reply["status"] == "ok"
        (result,) = outputs(history, "execute_result")
        text, html = result["data"]["text/plain"], result["data"]["text/html"]
        assert [line.split()[-4:] for line in text.splitlines()[1:]] == [
            [f"In[{first['execution_count']}]", "cell", "1", "0"],
            [f"In[{second['execution_count']}]", "cell", "1", "1"],
        ]
        assert text.splitlines()[2].startswith("*")
        assert f"<td{LEFT}>In[{second['execution_count']}]</td><td{LEFT}>cell</td>" in html
        reply, diff = execute(client, "%moddiff khist")
        (result,) = outputs(diff, "execute_result")
        text, html = result["data"]["text/plain"], result["data"]["text/html"]
        assert text.splitlines()[-2:] == ["-SIDE = 2", "+SIDE = 3"]
        assert html.startswith("<pre") and "var(--jp-success-color1" in html
