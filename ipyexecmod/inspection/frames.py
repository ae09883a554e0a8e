# SPDX-License-Identifier: MIT
"""How a traceback names a frame of a cell module's code.

A cell module's code is compiled under a filename of its version's own: ``PATH@N``
beside its copy at ``PATH``, or ``ipyexecmod:NAME@N`` without one
(:mod:`ipyexecmod.cells.version`).  No file has that name, and in the private directory
``PATH`` has a random part, which would make every saved traceback change from run to
run; such a frame is named after its module instead, ``Cell module geometry (version
1)``, as IPython names a cell's frame ``Cell In[3]``, wherever its copy is.
"""

from __future__ import annotations

import os

from ..cells import finder
from ..store import STORE_SHOWN, display_path

__all__ = ["frame_name"]

_PREFIX = STORE_SHOWN + os.sep
_MEMORY = "ipyexecmod:"  # the filename's start for a version with no copy


def frame_name(filename: str) -> tuple[str, str] | None:
    """A (label, name) for a frame of ``filename``, or ``None`` for a file that is not a
    cell module's version, nor in the private directory (shown as it is).

    A version of a cell module is ``("Cell module", "NAME (version N)")``; another file
    of the private directory ``("File", "<store>/...")``.
    """
    base, at, number = filename.rpartition("@")
    name = _module_of(base) if at and number.isdigit() else None
    if name is not None:
        return "Cell module", f"{name} (version {number})"
    shown = display_path(filename)
    return ("File", shown) if shown.startswith(_PREFIX) else None


def _module_of(base: str) -> str | None:
    """The cell module whose version's filename is ``base@N``, if it is one."""
    if base.startswith(_MEMORY):
        return base[len(_MEMORY) :] or None
    shown = display_path(base)
    if shown.startswith(_PREFIX):
        return _module_name(shown[len(_PREFIX) :])
    for store in finder.stores:
        if base.startswith(store.directory + os.sep):
            return _module_name(base[len(store.directory) + 1 :])
    return None


def _module_name(relative: str) -> str | None:
    """The module whose copy is at ``relative`` (``shapes/circle.py``, ``shapes/__init__.py``)
    in a store, or ``None`` if no module's copy would be there."""
    stem, extension = os.path.splitext(relative)
    parts = stem.split(os.sep)
    if parts[-1] == "__init__":
        parts.pop()
    if extension != ".py" or not parts or not all(part.isidentifier() for part in parts):
        return None
    return ".".join(parts)
