# SPDX-License-Identifier: MIT
"""Definitions as transactions: every change comes with the step that undoes it.

A :class:`Transaction` collects named undo steps (a function and its arguments,
so a failing one shows its name and each can be tested alone) and steps to
take once it has committed.  One nested in a transaction under way (a cell
module's code defining another module) joins it: its steps become the outer
one's, and it commits or fails with it.  The undo steps run with Ctrl-C held
back, so an interrupt cannot stop a rollback half way; every step runs even if
one fails, and the names the definition claimed are released whatever happens.
"""

from __future__ import annotations

import contextlib
import functools
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from .locks import DefinitionLock, claim, release

__all__ = ["Transaction", "interrupts_held", "put_back_paths"]

Step = Callable[[], object]


class Board(Protocol):
    """What other processes are told of the names a definition claims
    (:class:`ipyexecmod.workers.board.Board`)."""

    def claim(self, name: str) -> None: ...

    def release(self) -> None: ...


class Transaction:
    """The steps that undo a definition, and those to take once it has committed.

    A context manager: entering it begins the definition (or joins the one under
    way in ``stack``, the transactions under way, outermost first); leaving it by an
    exception undoes every step and re-raises; leaving it normally commits, and the
    outermost one then takes its later steps.  The outermost one also puts back
    :data:`sys.path` and :data:`sys.meta_path` (the same list objects, with the same
    contents) if it fails, whatever the code did to them.
    """

    def __init__(self, stack: list[Transaction], board: Board | None = None) -> None:
        self._stack = stack
        self._outer = stack[-1] if stack else None
        self.outermost = self._outer is None
        #: Told of each name claimed, and of the end of the outermost definition.
        self.board: Board | None = board if self._outer is None else self._outer.board
        self.undo_steps: list[Step] = []
        self.commit_steps: list[Step] = []
        self.after_steps: list[Step] = []
        #: The dependents run again in this definition, and the modules whose code ran
        #: again in their existing object (shared with the definitions nested in it).
        self.rerun: set[str] = set() if self._outer is None else self._outer.rerun
        self.replacements: list[Any] = [] if self._outer is None else self._outer.replacements

    def __enter__(self) -> Transaction:
        outer = self._outer
        if outer is None:
            self.lock = DefinitionLock()
            self.undo(put_back_paths, sys.path, list(sys.path), sys.meta_path, list(sys.meta_path))
        else:
            self.lock = outer.lock
        self._stack.append(self)
        return self

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        outer = self._outer
        if kind is not None:
            with interrupts_held():  # no Ctrl-C can stop the undo half way, or the release
                self._stack.pop()
                try:
                    _call_all(reversed(self.undo_steps))
                finally:
                    if outer is None:
                        self._release(failed=True)
            return
        self._stack.pop()
        if outer is not None:
            outer.undo_steps.extend(self.undo_steps)
            outer.commit_steps.extend(self.commit_steps)
            outer.after_steps.extend(self.after_steps)
            return
        try:
            try:
                _call_all(self.commit_steps)
            finally:
                self._release(failed=False)
        finally:
            _call_all(self.after_steps)  # a copy on disk failing must not stop the listeners

    def _release(self, *, failed: bool) -> None:
        """Let the threads and processes waiting for the definition go on."""
        if self.board is not None:
            self.board.release()
        release(self.lock, failed=failed)

    def undo(self, function: Callable[..., object], /, *args: Any) -> None:
        """If the definition fails, call ``function(*args)`` (last added, first called)."""
        self.undo_steps.append(functools.partial(function, *args))

    def commit(self, function: Callable[..., object], /, *args: Any) -> None:
        """Once the outermost definition has committed, call ``function(*args)`` before
        any thread or process waiting for it goes on (the copy on disk, the board)."""
        self.commit_steps.append(functools.partial(function, *args))

    def after(self, function: Callable[..., object], /, *args: Any) -> None:
        """Once the outermost definition has committed, call ``function(*args)``."""
        self.after_steps.append(functools.partial(function, *args))

    def claim(self, name: str, *, fresh: bool = False) -> None:
        """Make imports of ``name`` in other threads wait until the definition has ended,
        and tell worker processes that it is under way (see :mod:`ipyexecmod.workers`)."""
        claim(name, self.lock, fresh=fresh)
        if self.board is not None:
            self.board.claim(name)


def _call_all(steps: Iterable[Step]) -> None:
    """Call every step, even after one fails; then raise the first failure."""
    failure: BaseException | None = None
    for step in steps:
        try:
            step()
        except BaseException as exc:  # the others still do their part
            failure = failure or exc
    if failure is not None:
        raise failure


@contextlib.contextmanager
def interrupts_held() -> Iterator[None]:
    """Hold back Ctrl-C (SIGINT) while the block runs, and deliver it after.

    Only the main thread receives signals, and only it can change their handlers.
    Nested, the innermost one delivers what it held to the handler of the one around
    it, which holds it in turn.
    """
    handler = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or not callable(handler):
        yield
        return
    held: list[Any] = []
    signal.signal(signal.SIGINT, lambda signum, frame: held.append(frame))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, handler)
        if held:
            handler(signal.SIGINT, held[0])


def put_back_paths(
    path: list[str], path_items: list[str], meta_path: list[Any], meta_path_items: list[Any]
) -> None:
    """Make :data:`sys.path` and :data:`sys.meta_path` the lists they were, as they were."""
    sys.path, sys.meta_path = path, meta_path
    if path != path_items:
        path[:] = path_items
    if meta_path != meta_path_items:
        meta_path[:] = meta_path_items
