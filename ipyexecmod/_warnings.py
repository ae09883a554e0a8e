# SPDX-License-Identifier: MIT
"""Warnings attributed to the user's code, shown each time they happen.

``warnings.warn(msg, stacklevel=N)`` names the frame N levels up, which for
ipyexecmod depends on the path a call took (``%%as_module``, ``cells.define``,
a reload, a dependent run again), so a fixed ``stacklevel`` ends up naming an
ipyexecmod line; and the default filter shows a warning once per location, so the
second failed write of a session would go unseen.  :func:`warn` names the first frame
outside ipyexecmod and the machinery that calls it (in a notebook the cell, from the
core API its caller), and passes no registry, so the default filters show it every
time while the user's filters (``simplefilter("ignore")``, ``-W error``) still apply.
"""

from __future__ import annotations

import sys
import warnings
from types import FrameType

__all__ = ["warn"]

# Packages whose frames are not the user's code: a warning names the first frame
# outside them, going out from the caller.
_MACHINERY = ("ipyexecmod", "IPython", "traitlets", "importlib", "contextlib")


def warn(message: str, category: type[Warning] = RuntimeWarning) -> None:
    """Issue ``message`` as a ``category`` warning attributed to the user's code.

    Raises ``category`` instead if the warning filters say ``error``.
    """
    frame = _users_frame(sys._getframe(1))
    if frame is None:  # nothing outside the machinery: the outermost call is the user's
        warnings.warn(message, category, stacklevel=2)
        return
    warnings.warn_explicit(
        message,
        category,
        frame.f_code.co_filename,
        frame.f_lineno,
        module=frame.f_globals.get("__name__", "<unknown>"),
        registry=None,  # a fresh one at each call: "default" shows it each time
    )


def _users_frame(frame: FrameType | None) -> FrameType | None:
    """The first frame from ``frame`` outwards whose module is not in :data:`_MACHINERY`."""
    while frame is not None:
        name = frame.f_globals.get("__name__")
        if not isinstance(name, str) or not _is_machinery(name):
            return frame
        frame = frame.f_back
    return None


def _is_machinery(name: str) -> bool:
    return any(name == package or name.startswith(package + ".") for package in _MACHINERY)
