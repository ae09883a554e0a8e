# SPDX-License-Identifier: MIT
"""Task keys that change with the notebook's code.

Dask names a task by a token of its function and arguments, and hands back the
finished task of an earlier call with the same token.  A function of a cell
module pickles by reference (module and name), so its token would survive a
redefinition: the next call would get the old code's result.  :class:`Tokens`
folds a count of definitions and shipments, and the kernel's id, into the token of
anything from a cell module or ``__main__``, by wrapping the handlers of Dask's
``normalize_token`` dispatcher that such objects reach (functions, classes and
instances all fall through to the one for ``object`` in current Dask).

The wrapping is done with ``normalize_token.register`` and undone by
:meth:`Tokens.uninstall`.  Dask's ``Dispatch`` caches the handler it finds for a
subclass in the same table as the registrations, so entries cached with the
handler we wrap are pointed at the wrapper too, and back; that reliance is
pinned by ``tests/test_dask_tokens.py``.
"""

from __future__ import annotations

import types
import uuid
from collections.abc import Callable
from typing import Any

from dask.base import normalize_token

from .. import cells

__all__ = ["KERNEL", "Tokens"]

#: This kernel, in the tokens of its objects: another kernel's count of definitions may be
#: the same, and its module of the same name another (their tasks must not share keys).
KERNEL = uuid.uuid4().hex[:12]

Handler = Callable[[Any], Any]

#: What a notebook's functions, classes and instances dispatch on.
KINDS: tuple[type, ...] = (types.FunctionType, type, object)


class Tokens:
    """The count of definitions and shipments (``generation``), and the handlers that
    put it into Dask's tokens while installed."""

    def __init__(self) -> None:
        #: Bumped by each cell definition and each shipment of new code.
        self.generation = 0
        self.installed = False

    def bump(self) -> None:
        """Make every later token of a notebook object differ from all earlier ones."""
        self.generation += 1

    def install(self) -> None:
        """Wrap the handlers of :data:`KINDS`, and every class dispatched to them so far.

        A wrapper left by an earlier instance (its module imported anew) is replaced.
        """
        if self.installed:
            return
        originals = {_original(normalize_token.dispatch(kind)) for kind in KINDS}
        wrappers = {handler: _Versioned(handler, self) for handler in originals}
        entries = {kind: normalize_token.dispatch(kind) for kind in KINDS} | _entries()
        for cls, handler in entries.items():
            original = _original(handler)
            if original in wrappers:
                normalize_token.register(cls, wrappers[original])
        self.installed = True

    def uninstall(self) -> None:
        """Point every class dispatched to a wrapper back at the handler it wraps."""
        for cls, handler in _entries().items():
            if _is_wrapper(handler):
                normalize_token.register(cls, _original(handler))
        self.installed = False


class _Versioned:
    """A handler of Dask's, plus the generation for objects from the notebook."""

    #: How an installed wrapper is recognised, even one of an earlier module object.
    ipyexecmod = True

    def __init__(self, wrapped: Handler, tokens: Tokens) -> None:
        self.__wrapped__ = wrapped
        self._tokens = tokens

    def __call__(self, obj: Any) -> Any:
        token = self.__wrapped__(obj)
        generation = self._tokens.generation
        return (token, KERNEL, generation) if generation and _from_notebook(obj) else token

    def __repr__(self) -> str:
        return f"<ipyexecmod's versioned {self.__wrapped__!r}>"


def _is_wrapper(handler: object) -> bool:
    return getattr(handler, "ipyexecmod", False) is True


def _original(handler: Handler) -> Handler:
    while _is_wrapper(handler):
        handler = handler.__wrapped__  # type: ignore[attr-defined]
    return handler


def _entries() -> dict[type, Handler]:
    """Every class ``normalize_token`` has a handler for: registered or cached.

    Dispatch has no public view of its table; a copy is taken so that threads
    tokenizing meanwhile (which add cache entries) do not disturb the loop.
    """
    return dict(normalize_token._lookup)


def _from_notebook(obj: Any) -> bool:
    """Whether ``obj``, or its class, comes from a cell module or from ``__main__``."""
    for owner in (obj, type(obj)):
        try:
            module = getattr(owner, "__module__", None)
        except Exception:  # an object whose attribute lookup fails keeps Dask's token
            continue
        if isinstance(module, str) and (module == "__main__" or module in cells.finder):
            return True
    return False
