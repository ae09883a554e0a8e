# SPDX-License-Identifier: MIT
"""A worker runs a cell module's copy only if it is the kernel's version.

The board names, for each module, the hash of the source the kernel has
(:func:`.board.source_hash`).  A copy in a lasting directory can be rewritten by
another kernel that shares the directory (``%%as_module NAME --force`` there, or a
kernel redefining a module that this one restored): a worker that imported it then
would run the other notebook's code, while the kernel runs its own.  So a worker
imports a copy only if its bytes have the board's hash (:func:`verified`).

Never a spurious failure: the kernel writes a module's copy while its definition is
under way (the module is busy on the board), and then publishes the new hash, so a
worker can read the new file before the board says so.  A copy whose hash is not the
board's is refused only if the board did not move while it was read, with the module
not busy; otherwise the board and the copy are read again (a copy the kernel publishes
meanwhile is simply the latest version), for at most :data:`PATIENCE` seconds.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable

from .board import NO_HASH, BoardView, Entry, source_hash

__all__ = ["PATIENCE", "NotTheKernels", "verified"]

#: How long a worker waits for the kernel to publish a copy it has written.
PATIENCE = 30.0
_SPINS = 1000  # re-reads that only yield the processor before each one sleeps


class NotTheKernels(ImportError):
    """The copy of a cell module is not the version its kernel has."""


def verified(
    view: BoardView, name: str, path: str, read: Callable[[], bytes]
) -> tuple[bytes, Entry]:
    """The source of module ``name``'s copy at ``path`` (``read`` reads it), and the
    board's entry of the version it is: the kernel's latest version of ``name``, or
    the one before it while a definition is under way.

    Raises :class:`NotTheKernels` if the copy is another version (another kernel wrote
    it), and :class:`OSError` if it cannot be read.
    """
    deadline = None
    for tries in itertools.count(1):
        view.read()
        at, entry, busy = view.read_at, view.entries.get(name), view.is_busy(name)
        data = read()
        if entry is not None and entry.source_hash in (source_hash(data), NO_HASH):
            return data, entry
        if not busy and view.counter() == at:  # the kernel did not write it meanwhile
            break
        now = time.monotonic()
        deadline = deadline or now + PATIENCE
        if now > deadline:
            break
        if tries < _SPINS:
            os.sched_yield()
        else:
            time.sleep(0.001)
    raise NotTheKernels(_reason(name, path, view.kernel), name=name, path=path)


def _reason(name: str, path: str, kernel: int) -> str:
    return (
        f"cell module {name!r}: the copy at {path} is not the version the kernel (pid "
        f"{kernel}) has: another kernel has replaced or rewritten it; the kernel moves "
        f"its own version to its private directory before or after its next cell (run "
        f"the task again then), or, for a module it imported from that directory, "
        f"`%reload_module {name}` in the kernel takes the new one"
    )
