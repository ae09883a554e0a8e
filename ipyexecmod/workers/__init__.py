# SPDX-License-Identifier: MIT
"""Cell modules in worker processes: the latest version at every task, never a hang.

A kernel writes, beside the on-disk copies of its cell modules, a *board*
(:mod:`.board`): which version of each module is the latest, where its copy is, and
which definitions are under way.  Its :data:`sys.path` starts with the board's
``.boot`` directory, from ``%load_ext`` on, and every process it spawns inherits that
entry; a child it forks inherits the kernel's modules and its view of the board.

In a worker, :mod:`.catchup` imports cell modules from the copies the board names,
and catches up with the kernel whenever a task resolves one of their functions,
classes or instances after a redefinition (8 bytes of shared memory read when nothing
changed).  A module the worker cannot run, kept in memory only, being defined, or
failing to import, resolves to stand-ins that raise :class:`ImportError` when the task
uses them (:mod:`.placeholders`), so the caller gets the error, and the pool lives on.
"""

from __future__ import annotations

from .catchup import load

__all__ = ["load"]
