# SPDX-License-Identifier: MIT
"""How a traceback names a frame whose file is in the private directory.

A cell module's code is compiled under a filename of its version's own,
``PATH@N`` beside its copy at ``PATH`` (:mod:`ipyexecmod.cells.version`).  In the
private directory ``PATH`` has a random part, which would make every saved traceback
change from run to run; such a frame is named after its module instead:
``Cell module geometry (version 1)``, as IPython names a cell's frame ``Cell In[3]``.
"""

from __future__ import annotations

import os

from ..store import STORE_SHOWN, display_path

__all__ = ["frame_name"]

_PREFIX = STORE_SHOWN + os.sep


def frame_name(filename: str) -> tuple[str, str] | None:
    """A (label, name) for a frame of ``filename``, or ``None`` for a file outside the
    private directory (shown as it is).

    A version of a cell module is ``("Cell module", "NAME (version N)")``; another file
    of the private directory ``("File", "<store>/...")``.
    """
    shown = display_path(filename)
    if not shown.startswith(_PREFIX):
        return None
    path, at, number = shown.rpartition("@")
    name = _module_name(path[len(_PREFIX) :]) if at and number.isdigit() else None
    if name is None:
        return "File", shown
    return "Cell module", f"{name} (version {number})"


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
