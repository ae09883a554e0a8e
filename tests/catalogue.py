"""A catalogue of bad input: what a notebook user types by mistake, and what they must get.

Each case is one notebook cell, run after the good modules of :data:`GOOD` exist:
the exact error it raises and a pattern its message must match (``error=None``:
it must work, and ``check`` must be true after it), or a warning it gives.
``tests/test_catalogue.py`` runs every case in a real InteractiveShell, checking
that a failing cell changed nothing; ``tests/test_survival.py`` runs them all in one
real kernel.  In a cell, ``{name}`` is a name no other case uses and ``{good}``
and ``{pkg}`` are the good modules.  A message's line numbers are the cell's, whose first
line is ``%%as_module ...`` (issue 18), but those of a cell that runs the magic by code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: The good modules, defined before any case runs; no case may change them.
GOOD = {
    "{good}": "'''A good module.'''\nVALUE = 'good'\n\n\ndef f():\n    return VALUE\n",
    "{pkg}.sub": "SUB = 'good'\n",
}

HUGE_LINES = 5 * 1024 * 1024 // 50  # about 5 MB of 50-character lines


def huge(last_line: str) -> str:
    body = "".join(f"VALUE_{i:08d} = {i:<8d}  # a five-megabyte cell\n" for i in range(HUGE_LINES))
    return body + last_line


@dataclass(frozen=True)
class Case:
    id: str
    #: The cell, with its first line (``%%as_module ...``, a line magic, or plain code).
    source: str
    #: What it must raise, or ``None`` if it must work.
    error: str | None
    #: A regular expression its message (``str(exception)``) must match.
    match: str = ""
    #: For a cell that works: an expression that must be true after it.
    check: str = "True"
    #: A regular expression a warning it gives must match.
    warns: str | None = None
    #: Cells to run first (they must work).
    setup: tuple[str, ...] = field(default=())

    def cells(self, **names: str) -> tuple[list[str], str, str]:
        """The setup cells, the cell and the check, with the names filled in."""
        return (
            [cell.format(**names) for cell in self.setup],
            self.source.format(**names),
            self.check.format(**names),
        )


def _as_module(line: str, body: str) -> str:
    return f"%%as_module {line}\n{body}"


def _escaped(line: str, body: str) -> str:
    """A cell that runs %%as_module on text a notebook file cannot hold as it is."""
    return f"get_ipython().run_cell_magic('as_module', {line!r}, {body!r})"


USAGE = "UsageError"
NAME_INVALID = r"is not a valid module name: it has "

CASES = [
    # -- names ------------------------------------------------------------------------------
    Case("no-name", _as_module("", "X = 1\n"), USAGE, "the following arguments are required: name"),
    Case("keyword", _as_module("class", "X = 1\n"), USAGE, "part 'class' that is a Python keyword"),
    Case(
        "keyword-part",
        _as_module("{name}.for", "X = 1\n"),
        USAGE,
        "part 'for' that is a Python keyword",
    ),
    Case(
        "hyphen",
        _as_module("geo-metry", "X = 1\n"),
        USAGE,
        "part 'geo-metry' that is not a Python identifier",
    ),
    Case(
        "digit-first",
        _as_module("1geo", "X = 1\n"),
        USAGE,
        "part '1geo' that is not a Python identifier",
    ),
    Case(
        "space",
        _as_module("'a b'", "X = 1\n"),
        USAGE,
        "part \"'a b'\" that is not a Python identifier",
    ),
    Case(
        "leading-dot",
        _as_module(".{name}", "X = 1\n"),
        USAGE,
        NAME_INVALID + r"an empty part \(a leading",
    ),
    Case("trailing-dot", _as_module("{name}.", "X = 1\n"), USAGE, NAME_INVALID + "an empty part"),
    Case("double-dot", _as_module("{name}..x", "X = 1\n"), USAGE, NAME_INVALID + "an empty part"),
    Case(
        "not-nfkc",
        _as_module("ﬁle", "X = 1\n"),
        USAGE,
        "part 'ﬁle' that Python would import as 'file'",
    ),
    Case(
        "surrogate-name", _escaped("geo\ud800", "X = 1\n"), USAGE, "that is not a Python identifier"
    ),
    Case(
        "stdlib-imported",
        _as_module("os", "X = 1\n"),
        USAGE,
        r"'os' is already imported, from '.*os\.py', and ipyexecmod did not create it: .*"
        r"choose another name, or use --force to define it anyway",
    ),
    Case(
        "stdlib-importable",
        _as_module("tabnanny", "X = 1\n"),
        USAGE,
        r"cannot define 'tabnanny': it can be imported from .*tabnanny\.py and a cell module "
        r"would hide it; choose another name, or use --force",
    ),
    Case(
        "builtin-module",
        _as_module("sys", "X = 1\n"),
        USAGE,
        r"'sys' is already imported, from 'built-in'",
    ),
    Case("main", _as_module("__main__", "X = 1\n"), USAGE, "'__main__' is already imported"),
    Case("third-party", _as_module("IPython", "X = 1\n"), USAGE, "'IPython' is already imported"),
    Case(
        "ipyexecmod", _as_module("ipyexecmod", "X = 1\n"), USAGE, "'ipyexecmod' is already imported"
    ),
    Case(
        "ipyexecmod-module",
        _as_module("ipyexecmod.cells", "X = 1\n"),
        USAGE,
        "'ipyexecmod.cells' is already imported",
    ),
    Case(
        "child-of-a-module",
        _as_module("os.path.{name}", "X = 1\n"),
        USAGE,
        r"'os' is a module, not a package, so it cannot have submodules; choose another name",
    ),
    Case(
        "child-of-an-importable-module",
        _as_module("tabnanny.{name}", "X = 1\n"),
        USAGE,
        r"its parent 'tabnanny' \(from .*tabnanny\.py\) is a module, not a package; choose",
    ),
    # -- options ----------------------------------------------------------------------------
    Case(
        "unknown-option",
        _as_module("{name} --bogus", "X = 1\n"),
        USAGE,
        "unrecognized arguments: --bogus",
    ),
    Case(
        "unknown-option-without-a-name",
        _as_module("-x", "X = 1\n"),
        USAGE,
        "^unrecognized arguments: -x$",
    ),
    Case(
        "unclosed-quotation",
        _as_module('"{name}', "X = 1\n"),
        USAGE,
        "No closing quotation; close the quotation",
    ),
    Case(
        "comment-on-the-magic-line",
        _as_module("{name}  # helpers, --force", "X = 1\n"),
        None,
        check="{name}.X == 1",
    ),
    Case(
        "two-names", _as_module("{name} other", "X = 1\n"), USAGE, "unrecognized arguments: other"
    ),
    Case(
        "option-without-value",
        _as_module("{name} --persist-dir", "X = 1\n"),
        USAGE,
        "argument --persist-dir: expected one argument",
    ),
    Case(
        "flag-with-value",
        _as_module("{name} --force=yes", "X = 1\n"),
        USAGE,
        "argument --force: ignored explicit argument 'yes'",
    ),
    Case(
        "contradicting-options",
        _as_module("{name} --no-persist --persist-dir /tmp", "X = 1\n"),
        USAGE,
        r"use --no-persist \(memory only\) or --persist-dir DIR, not both",
    ),
    Case(
        "bad-option-on-a-good-module",
        _as_module("{good} --bogus", "VALUE = 'bad'\n"),
        USAGE,
        "unrecognized arguments: --bogus",
    ),
    Case(
        "persist-dir-not-a-directory",
        _as_module("{name} --persist-dir /dev/null/x", "X = 1\n"),
        None,
        check="{name}.X == 1",
        warns=r"could not write '{name}' to /dev/null/x: .*; module '{name}' works in this "
        r"process only",
    ),
    Case(
        "name-too-long-for-a-file",
        _as_module("{name}_" + "x" * 300, "X = 1\n"),
        None,
        check="sys.modules['{name}_" + "x" * 300 + "'].X == 1",
        warns=r"could not write '{name}_x+' to .*File name too long; .*works in this process only",
    ),
    Case("line-magic-unknown-option", "%lsmod --bogus", USAGE, "unrecognized arguments: --bogus"),
    Case("line-magic-extra-argument", "%magic_number 3", USAGE, "unrecognized arguments: 3"),
    Case("modinfo-no-name", "%modinfo", USAGE, "the following arguments are required: name"),
    Case("modinfo-unknown-option", "%modinfo -x", USAGE, "^unrecognized arguments: -x$"),
    Case(
        "modinfo-unknown",
        "%modinfo {name}",
        USAGE,
        "no module named '{name}' is imported; check the name with %lsmod",
    ),
    Case("reload-unknown", "%reload_module {name}", USAGE, "no module named '{name}' is imported"),
    Case(
        "pycinfo-nothing",
        "%pycinfo /nowhere/{name}.pyc",
        USAGE,
        "'/nowhere/{name}.pyc' is neither a file nor an imported module",
    ),
    Case(
        "pycinfo-builtin",
        "%pycinfo sys",
        USAGE,
        r"module 'sys' has no \.pyc file \(it is built in, frozen, from a cell, .*give a path",
    ),
    Case(
        "pycinfo-not-a-pyc",
        "%pycinfo /etc/passwd",
        USAGE,
        "/etc/passwd is not a (Python 3 )?.pyc file",
    ),
    Case("ship-nothing", "%ship", USAGE, r"name the cell modules to ship \(%ship NAME ...\)"),
    Case("export-no-name", "%export_module", USAGE, "the following arguments are required: name"),
    Case(
        "export-unknown-option",
        "%export_module {good} --overwrite",
        USAGE,
        "^unrecognized arguments: --overwrite$",
    ),
    Case(
        "export-unknown",
        "%export_module {name}",
        USAGE,
        "^there is no cell module '{name}': define it first with %%as_module {name}$",
    ),
    Case("export-not-a-name", "%export_module 1x", USAGE, "^'1x' is not a module name: name a"),
    Case(
        "export-ordinary-module",
        "%export_module json",
        USAGE,
        r"^'json' is not a cell module: only modules made with %%as_module export \(its file is",
    ),
    Case(
        "export-to-a-file",
        "%export_module {good} --to /dev/null",
        USAGE,
        r"^cannot export '{good}' to /dev/null: it is not a directory; give a directory$",
    ),
    Case(
        "bad-trait-value",
        "%config ExecModMagics.persist = 'yes'",
        None,  # IPython logs it
        check="get_ipython().find_cell_magic('as_module').__self__.persist is True",
    ),
    # -- what the cell holds ---------------------------------------------------------------
    Case(
        "empty-cell",
        _as_module("{name}", ""),
        USAGE,
        "%%as_module is a cell magic, but the cell body is empty",
    ),
    Case(
        "blank-cell",
        _as_module("{name}", "\n   \n\t\n"),
        USAGE,
        "the cell is empty: write the code of module '{name}'",
    ),
    Case(
        "comments-only",
        _as_module("{name}", "# X = 1\n\n   # Y = 2\n"),
        USAGE,
        "the cell has only comments, so module '{name}' would have no code: uncomment its code",
    ),
    Case(
        "comments-only-redefinition",
        _as_module("{good}", "# VALUE = 'bad'\n"),
        USAGE,
        "the cell has only comments",
    ),
    Case(
        "syntax-error-first-line",
        _as_module("{name}", "X = = 1\nY = 2\n"),
        "SyntaxError",
        r"invalid syntax \(.*, line 2\)",
    ),
    Case(
        "syntax-error-last-line",
        _as_module("{good}", "VALUE = 'bad'\nY = 2\nZ = (\n"),
        "SyntaxError",
        r"'\(' was never closed \(.*, line 4\)",
    ),
    Case(
        "unexpected-indent",
        _as_module("{good}", "  VALUE = 'bad'\n"),
        "IndentationError",
        r"unexpected indent \(.*, line 2\)",
    ),
    Case(
        "null-byte",
        _escaped("{good}", "VALUE = 'bad'\nY = '\0'\n"),
        USAGE,
        r"'{good}' not defined: line 2 contains a null byte \(\\x00\), which Python source cannot",
    ),
    Case(
        "lone-surrogate",
        _escaped("{name}", "X = 1\nY = '\ud800'\n"),
        USAGE,
        r"'{name}' not defined: line 2 contains '\\ud800', a lone surrogate, which is not text",
    ),
    Case(
        "five-megabytes",
        _as_module("{name}", huge("LAST = 'end'\n")),
        None,
        check=f"{{name}}.LAST == 'end' and {{name}}.VALUE_{HUGE_LINES - 1:08d} == {HUGE_LINES - 1}",
    ),
    Case(
        "five-megabytes-syntax-error-at-the-end",
        _as_module("{good}", huge("LAST = (\n")),
        "SyntaxError",
        rf"'\(' was never closed \(.*, line {HUGE_LINES + 2}\)",
    ),
    Case(
        "line-magic-inside",
        _as_module("{good}", "VALUE = 'bad'\n%time Y = 2\n"),
        USAGE,
        r"line 3 is IPython syntax \(a magic, a shell command or a help request\), not Python: "
        r"'%time Y = 2'; a module's code must be plain Python",
    ),
    Case("shell-command-inside", _as_module("{name}", "!ls\n"), USAGE, "line 2 is IPython syntax"),
    Case(
        "help-request-inside",
        _as_module("{name}", "X = 1\nlen?\n"),
        USAGE,
        "line 3 is IPython syntax",
    ),
    Case(
        "top-level-await",
        _as_module("{good}", "import asyncio\nawait asyncio.sleep(0)\n"),
        USAGE,
        r"line 3 uses 'await' \(or 'async for'/'async with'\) outside a function, which a "
        r"module cannot do: 'await asyncio.sleep\(0\)'; put it in an async function",
    ),
    Case(
        "top-level-async-for",
        _as_module("{name}", "async for x in y:\n    pass\n"),
        USAGE,
        "line 2 uses 'await'",
    ),
    Case(
        "return-at-module-level",
        _as_module("{good}", "VALUE = 'bad'\nreturn 1\n"),
        "SyntaxError",
        r"'return' outside function \(.*, line 3\)",
    ),
    Case(
        "yield-at-module-level",
        _as_module("{name}", "yield 1\n"),
        "SyntaxError",
        r"'yield' outside function \(.*, line 2\)",
    ),
]

# -- what the code does when it runs: in a first definition, and in a redefinition ------------
for target, when in (("{name}", "first"), ("{good}", "redefinition")):
    CASES += [
        Case(
            f"systemexit-{when}",
            _as_module(target, "VALUE = 'bad'\nraise SystemExit(3)\n"),
            "SystemExit",
            "^3$",
        ),
        Case(
            f"keyboardinterrupt-{when}",
            _as_module(target, "VALUE = 'bad'\nraise KeyboardInterrupt('typed ctrl-c')\n"),
            "KeyboardInterrupt",
            "typed ctrl-c",
        ),
        Case(
            f"generatorexit-{when}",
            _as_module(target, "VALUE = 'bad'\nraise GeneratorExit('closing')\n"),
            "GeneratorExit",
            "closing",
        ),
        Case(
            f"exception-{when}",
            _as_module(target, "VALUE = 'bad'\nX = 1 / 0\n"),
            "ZeroDivisionError",
            "division by zero",
        ),
        Case(
            f"deletes-its-entry-{when}",
            _as_module(target, "import sys\nVALUE = 'bad'\ndel sys.modules[__name__]\n"),
            "ImportError",
            r"module '.*' deleted its own entry in sys.modules as it ran, so it is not defined: "
            r"a cell module must stay in sys.modules",
        ),
        Case(
            f"replaces-its-entry-{when}",
            _as_module(target, "import sys\nVALUE = 'bad'\nsys.modules[__name__] = 42\n"),
            "ImportError",
            r"module '.*' put an object of type 'int' in its place in sys.modules as it ran, so "
            r"it is not defined: a cell module must stay itself; give it a module-level "
            r"__getattr__",
        ),
        Case(
            f"clears-meta-path-then-fails-{when}",
            _as_module(
                target, "import sys\nsys.meta_path.clear()\nraise RuntimeError('after clearing')\n"
            ),
            "RuntimeError",
            "after clearing",
        ),
        Case(
            f"replaces-sys-path-then-fails-{when}",
            _as_module(
                target,
                "import sys\nsys.path.insert(0, '/nowhere')\nsys.path = ['/elsewhere']\n"
                "raise RuntimeError('after sys.path')\n",
            ),
            "RuntimeError",
            "after sys.path",
        ),
        Case(
            f"defines-a-module-then-fails-{when}",
            _as_module(
                target,
                "get_ipython().run_cell_magic('as_module', '{name}_inner', 'X = 1')\n"
                "import {name}_inner\nraise RuntimeError('outer fails')\n",
            ),
            "RuntimeError",
            "outer fails",
        ),
        Case(
            f"circular-from-import-{when}",
            _as_module(
                target,
                "VALUE = 'bad'\nfrom {target} import LATER\nLATER = 1\n".replace(
                    "{target}", target
                ),
            ),
            "ImportError",
            r"cannot import name 'LATER' from partially initialized module '.*' \(most likely "
            r"due to a circular import\)",
        ),
        Case(
            f"imports-an-undefined-module-{when}",
            _as_module(target, "VALUE = 'bad'\nimport {name}_missing\n"),
            "ModuleNotFoundError",
            "No module named '{name}_missing'",
        ),
    ]

CASES += [
    Case(
        "child-of-a-good-module-fails",
        _as_module("{good}.{name}", "raise RuntimeError('child fails')\n"),
        "RuntimeError",
        "child fails",
    ),
    Case(
        "forced-stdlib-name-fails",
        _as_module("--force --no-persist tabnanny", "raise RuntimeError('forced')\n"),
        "RuntimeError",
        "forced",
    ),
    Case(
        "failed-redefinition-of-a-package",
        _as_module("{pkg}", "VALUE = 'bad'\nraise RuntimeError('package')\n"),
        "RuntimeError",
        "package",
    ),
    Case(
        "failed-redefinition-of-a-submodule",
        _as_module("{pkg}.sub", "SUB = 'bad'\n1 / 0\n"),
        "ZeroDivisionError",
        "division by zero",
    ),
    # Cells that work, however odd: the good modules stay as they were.
    Case(
        "imports-itself",
        _as_module("{name}", "import {name} as me\nSELF = me\n"),
        None,
        check="{name}.SELF is {name}",
    ),
    Case(
        "two-modules-import-each-other",
        _as_module("{name}_a", "import {name}_b\nA = 1\nB = {name}_b.B\n"),
        None,
        check="{name}_a.B == 2 and sys.modules['{name}_b'].A() == 1",
        setup=(
            _as_module("{name}_a", "A = 1\n"),
            _as_module("{name}_b", "import {name}_a\nB = 2\n\n\ndef A():\n    return {name}_a.A\n"),
        ),
    ),
    Case(
        "takes-the-finder-off-meta-path",
        _as_module(
            "{name}",
            "import sys\n"
            "sys.meta_path[:] = [f for f in sys.meta_path if 'CellModuleFinder' not in repr(f)]\n",
        ),
        None,
        check="any('CellModuleFinder' in repr(f) for f in sys.meta_path)",
    ),
    Case(
        "unicode-name-and-text",
        _as_module("café_{name}", "GREETING = 'héllo, 世界'\n"),
        None,
        check="sys.modules['café_{name}'].GREETING == 'héllo, 世界'",
    ),
]

assert len({case.id for case in CASES}) == len(CASES)
