# SPDX-License-Identifier: MIT
"""Waiting for a definition under way: the counterpart of importlib's module locks.

While a definition runs, ``import NAME`` or ``from NAME import f`` in another
thread waits for it, as CPython's import waits for a module another thread is
importing: CPython reads ``module.__spec__._initializing`` for a module it
finds in :data:`sys.modules`, and a cell module's spec (:class:`CellSpec`)
answers that flag by waiting.  No private ``importlib._bootstrap`` name is used.
"""

from __future__ import annotations

import os
import sys
import threading
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

from ..store import kernel_board
from ..workers.catchup import check

__all__ = ["CellSpec", "DefinitionLock", "Discarded", "claim", "in_progress", "release"]


class DefinitionLock:
    """A definition in progress, shared by the definitions nested in it."""

    def __init__(self) -> None:
        self.thread = threading.get_ident()
        self._running = threading.Lock()  # held until the definition has ended
        self._running.acquire()
        self.failed = False
        #: The names given a new module object: if the definition fails, an import
        #: that waited for it holds a module thrown away.
        self.fresh: set[str] = set()

    def wait(self) -> None:
        """Return once the definition has ended."""
        with self._running:
            pass

    def end(self, *, failed: bool) -> None:
        self.failed = failed
        self._running.release()


#: The definition now changing each module name; imports of the name in other threads
#: wait for it (see :class:`CellSpec`).
in_progress: dict[str, DefinitionLock] = {}
# A child forked during a definition runs none: it has the module as it was at the fork.
os.register_at_fork(after_in_child=in_progress.clear)


def claim(name: str, lock: DefinitionLock, *, fresh: bool = False) -> None:
    """Make imports of ``name`` in other threads wait until ``lock``'s definition has ended.

    ``fresh``: the definition gives ``name`` a new module object.
    """
    in_progress[name] = lock
    if fresh:
        lock.fresh.add(name)


def release(lock: DefinitionLock, *, failed: bool) -> None:
    """End ``lock``'s definition: the imports waiting for its names go on."""
    for name in [name for name, held in in_progress.items() if held is lock]:
        del in_progress[name]
    lock.end(failed=failed)


class CellSpec(ModuleSpec):
    """The spec of a cell module, whose ``_initializing`` flag makes imports wait.

    CPython's import statement, finding a module in :data:`sys.modules`, reads
    ``module.__spec__._initializing``; if it is true, the module is still being
    imported, and the import waits on the module's lock.  Here the flag is true
    for the thread that is defining the module (so a circular import in its code
    gets CPython's "partially initialized module" message), and an import in any
    other thread waits until the definition has ended, except a pickler's: ``pickle``
    reads it (through ``__import__``) to check a reference to the module's function,
    which a pool that the module's own code starts does from its feeder thread while
    the definition waits for the pool.  Such a task, for a worker process, is put on
    the board: the worker fails it fast (see :meth:`ipyexecmod.workers.board.Board.referenced`).

    In a child forked from the kernel, reading it first catches up with the kernel
    (:func:`ipyexecmod.workers.catchup.check`).
    """

    _importing = False  # the flag as importlib sets it when it imports this spec itself

    def __repr__(self) -> str:  # a ModuleSpec to its readers
        text = super().__repr__()
        return "ModuleSpec" + text[text.index("(") :]

    @property
    def _initializing(self) -> bool:
        check()
        if self._importing:
            return True
        name = self.name
        # ``in`` and the return that follows give no other thread a chance to start a
        # definition in between: the import binds what it sees before one can.
        while name in in_progress:
            lock = in_progress.get(name)
            if lock is None:
                continue
            pickling = _is_pickling(sys._getframe().f_back)
            if pickling:
                # A task for another process refers to the module being defined.
                board = kernel_board()
                if board is not None:
                    board.referenced(name)
            if lock.thread == threading.get_ident():
                return True
            if pickling:
                return False  # pickle checking a reference: the module is in sys.modules
            lock.wait()
            if lock.failed and name in lock.fresh:
                # Python 3.13 raises this from the import; 3.11 and 3.12 ignore it and
                # return the module, which is a Discarded one: using it raises the same.
                raise ImportError(discarded_message(name), name=name)
        return False

    @_initializing.setter
    def _initializing(self, value: bool) -> None:
        self._importing = value


#: The functions from which picklers resolve a reference to check it: the pickle
#: module's own (pure Python), and the ``dump``/``dumps`` that call a C pickler in
#: multiprocessing (concurrent.futures too), loky (joblib) and cloudpickle.
_PICKLING = frozenset({"save_global", "dump", "dumps"})


def _is_pickling(frame: Any) -> bool:
    return frame is not None and frame.f_code.co_name in _PICKLING


class Discarded(ModuleType):
    """The class given to a module whose first definition failed.

    Another thread may have got hold of it while it was being defined; using it
    raises an ImportError that says what happened.  Its namespace stays as it
    was, for any function of it that is still referenced.
    """

    def __getattribute__(self, attribute: str) -> Any:
        if attribute.startswith("__") and attribute.endswith("__"):
            return super().__getattribute__(attribute)
        name = super().__getattribute__("__name__")
        raise ImportError(discarded_message(name), name=name)


def discarded_message(name: str) -> str:
    return (
        f"cannot import {name!r}: its definition failed in another thread while this "
        f"import waited for it, so the module it found is gone; import it again"
    )
