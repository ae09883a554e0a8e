"""Helpers that several test modules share: define a cell module, run a fresh Python."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import types
from typing import Any

import ipyexecmod

#: Seconds to wait for something that must happen (a kernel to start, a process to exit,
#: a reply to come).  Only a hang reaches it: a machine busy with other test runs can
#: make the wait many times longer than usual, and must not fail the test.
HANG_GUARD = 600


def define(ip: Any, name: str, body: str = "x = 1\n", options: str = "") -> types.ModuleType:
    """Run ``%%as_module [options] name`` with ``body`` as the cell; the module it defined.

    Raises what the magic raises (UsageError for bad input, the cell's own exception).
    """
    ip.run_cell_magic("as_module", f"{options} {name}".strip(), body)
    return sys.modules[name]


def run_python(code: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """``code`` (dedented) run by this interpreter in a new process, its output as text.

    ``kwargs`` go to :func:`subprocess.run` (``cwd``, ``env``, ``check``).  Raises
    subprocess.TimeoutExpired only if the process hangs (see :data:`HANG_GUARD`).
    """
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        **kwargs,
    )


#: Where ipyexecmod's code is: an import that waits for a definition runs some of it.
PACKAGE = os.path.dirname(ipyexecmod.__file__) + os.sep


def import_noting_the_wait(name: str, waiting: threading.Event) -> object:
    """``__import__(name)``, setting ``waiting`` once ipyexecmod's code runs in the import.

    An import of a module that is being defined finds it in sys.modules and asks its spec
    whether it is initializing; ipyexecmod's answer waits for the definition.  Once the
    event is set, the import holds the module and is in that wait (or past it).
    """

    def note(frame: types.FrameType, event: str, _arg: object) -> None:
        if event == "call" and frame.f_code.co_filename.startswith(PACKAGE):
            waiting.set()

    sys.setprofile(note)  # this thread's only
    try:
        return __import__(name)
    finally:
        sys.setprofile(None)


def restored(name: str, source: str, directory: object) -> types.ModuleType:
    """Cell module ``name`` (``source``) as a later kernel has it: an earlier one (a process
    that has exited) wrote its copy in lasting directory ``directory``; this process's
    finder takes the directory and imports the module from the copy."""
    import importlib

    from ipyexecmod import cells
    from ipyexecmod.lasting import lasting_store

    out = run_python(f"""
        from ipyexecmod import cells
        from ipyexecmod.lasting import lasting_store
        cells.define({name!r}, {source!r}, store=lasting_store({str(directory)!r}))
        """)
    assert out.returncode == 0, out.stderr
    cells.finder.add_store(lasting_store(directory))  # a new kernel on the same directory
    module = importlib.import_module(name)
    assert cells.finder.is_restored(module)
    return module
