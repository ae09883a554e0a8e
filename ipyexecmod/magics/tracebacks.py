# SPDX-License-Identifier: MIT
"""Name a cell module's frames in IPython's tracebacks without the private directory.

A cell module's code is compiled under its copy's path in the kernel's private
directory, whose name is random: shown as it is, every saved traceback would change
from run to run.  IPython's tracebacks ask the shell's compiler how to name a frame's
file: ``shell.compile.format_code_name(filename)`` returns a ``(label, name)`` pair,
shown as ``label name, line N`` (what gives ``Cell In[3], line 2``), or ``None`` for the
default ``File PATH:N`` (``IPython.core.tbtools._tokens_filename`` in IPython 9,
``ultratb._format_filename`` in 8).  :func:`name_cell_frames` wraps that method on the
shell's own compiler (an instance attribute: the class, and any other shell, keep
theirs) so that it names the frames that :func:`~ipyexecmod.inspection.frame_name`
knows, ``Cell module geometry (version 1), line 2``, and leaves every other file to
IPython.  :func:`show_paths_again` undoes it (``%unload_ext``).
``tests/test_stable_outputs.py`` pins what this relies on in the installed IPython.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

from IPython.core.interactiveshell import InteractiveShell

from ..inspection import frame_name

__all__ = ["CellFrameNames", "name_cell_frames", "show_paths_again"]

_METHOD = "format_code_name"


class CellFrameNames:
    """``compiler.format_code_name``: a cell module's frames named after the module,
    every other name as the compiler's own method (:attr:`original`) names it."""

    def __init__(self, compiler: object) -> None:
        self.original: Callable[[str], tuple[str, str] | None] = getattr(compiler, _METHOD)
        #: What the compiler's own attribute was (``None``: none, the class's method).
        self.replaced: object = vars(compiler).get(_METHOD)
        self.active = True

    def __call__(self, name: str) -> tuple[str, str] | None:
        named = self.original(name)
        if named is not None or not self.active or not isinstance(name, str):
            return named
        return frame_name(name)


# Per compiler, the wrapper put on it: found again even under another one's wrapper.
# (The wrapper refers to its compiler, which stays alive while wrapped: a shell keeps its
# one compiler for its whole life anyway.)
_wrappers: weakref.WeakKeyDictionary[object, CellFrameNames] = weakref.WeakKeyDictionary()


def name_cell_frames(shell: InteractiveShell) -> None:
    """Make ``shell``'s tracebacks name cell modules' frames (a no-op if they do)."""
    compiler = shell.compile
    wrapper: CellFrameNames | None = _wrappers.get(compiler)
    if wrapper is not None:
        wrapper.active = True
        return
    wrapper = _wrappers[compiler] = CellFrameNames(compiler)
    setattr(compiler, _METHOD, wrapper)


def show_paths_again(shell: InteractiveShell) -> None:
    """Undo :func:`name_cell_frames`: IPython's own naming again.

    If something wrapped the method again after us, ours stays in its chain, passing
    every name through (and is taken up again by the next :func:`name_cell_frames`).
    """
    compiler = shell.compile
    wrapper: CellFrameNames | None = _wrappers.get(compiler)
    if wrapper is None:
        return
    on_top = vars(compiler).get(_METHOD) is wrapper
    if not on_top:
        wrapper.active = False
        return
    del _wrappers[compiler]
    if wrapper.replaced is None:
        delattr(compiler, _METHOD)
    else:
        setattr(compiler, _METHOD, wrapper.replaced)
