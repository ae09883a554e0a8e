# SPDX-License-Identifier: MIT
"""A placeholder for a cell module of a notebook kernel that was not shipped here.

ipyexecmod sends this text, with the message below filled in, so that a task
that needs the module fails with that message instead of hanging.  The real
module replaces it once it is shipped.  (Read as text by ipyexecmod, never
imported there; on the workers it may use the standard library only.)
"""

from __future__ import annotations

from typing import NoReturn

_ipyexecmod_message = "<MESSAGE>"
_ipyexecmod_spec = __spec__


class _ipyexecmod_not_shipped:
    def __init__(self, path: str) -> None:
        self._path = path

    def __getattr__(self, attribute: str) -> _ipyexecmod_not_shipped:
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        return _ipyexecmod_not_shipped(self._path + "." + attribute)

    def __call__(self, *args: object, **kwargs: object) -> NoReturn:
        message = _ipyexecmod_message + " (needed for " + self._path + ")"
        raise ImportError(message, name=__name__)

    def __repr__(self) -> str:
        return "<" + self._path + ", not shipped>"


def __getattr__(attribute: str) -> _ipyexecmod_not_shipped:
    if globals().get("__spec__") is not _ipyexecmod_spec:  # the real module was loaded over this
        message = f"module {__name__!r} has no attribute {attribute!r}"
        raise AttributeError(message)
    return _ipyexecmod_not_shipped(__name__ + "." + attribute)
