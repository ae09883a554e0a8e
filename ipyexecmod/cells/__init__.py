# SPDX-License-Identifier: MIT
"""Cell modules: modules whose source is held in memory, defined and redefined safely.

:func:`define` is what ``%%as_module NAME`` runs, usable without IPython::

    import ipyexecmod.cells
    geo = ipyexecmod.cells.define("geo", "def area(r):\\n    return 3.14159 * r * r\\n")

    import geo                      # from any cell or module
    importlib.reload(geo)           # re-executes the latest source, same object

The module is made by the exec-code core (:func:`~ipyexecmod.exec_code_module_object`)
with a :class:`~ipyexecmod.SourceTextLoader` set on it first, so the loader and a real
spec are in place before its code runs.  The :class:`CellModuleFinder` on
:data:`sys.meta_path` answers for the names it defined (a dict lookup; every other
name is a miss), so ``import``, ``importlib.import_module``, ``importlib.util.find_spec``
and ``importlib.reload`` work as for a module from a file.

Definitions are transactions: a name already used by a module that ipyexecmod did
not create is refused (unless forced); a :class:`SyntaxError` changes nothing; if
the code raises (``KeyboardInterrupt`` included), the module as it was before,
namespace and all, is put back in :data:`sys.modules`, with :data:`sys.path` and
:data:`sys.meta_path` as they were, and a first definition that fails leaves no
module behind.  A module defined by the code of another cell module belongs to
that definition, and goes with it if it fails.

Threads: definitions run one at a time, and while one runs, ``import NAME`` or
``from NAME import f`` in another thread waits for it to finish, as CPython's
import waits for a module another thread is importing (through the
``__spec__._initializing`` flag), and then sees the new version complete, or the
old one put back.  A thread that already holds the module and reads it meanwhile
sees the namespace as it is being updated, as during :func:`importlib.reload`.

The parts, each importing only those after it: :mod:`.registry` (the registry and
finder), :mod:`.definition` (the steps of a definition), :mod:`.names` (which names
a cell may take), :mod:`.version` (one version, worked out once), :mod:`.history`
(every version that ran), :mod:`.imports` (what a version's code imports),
:mod:`.transaction` (undo steps, nesting, Ctrl-C held back) and :mod:`.locks`
(imports waiting for a definition).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any, Unpack, cast

from .definition import Options
from .names import DefinitionError, check_module_name, module_origin
from .registry import CellModuleFinder, is_cell_finder
from .version import CellModule, Replacement, Version

__all__ = [
    "CellModule",
    "CellModuleFinder",
    "DefinitionError",
    "Replacement",
    "Version",
    "after_commit",
    "check_module_name",
    "define",
    "finder",
    "module_origin",
    "restore_main_spec",
]

#: The process's cell modules; :func:`define` installs it on :data:`sys.meta_path`.  If this
#: package is imported anew (``%reset --aggressive`` drops it from sys.modules), the finder
#: already installed is kept, with every cell module it knows.
finder: CellModuleFinder = next(
    (cast(CellModuleFinder, f) for f in sys.meta_path if is_cell_finder(f)), CellModuleFinder()
)


def define(name: str, source: str, **options: Unpack[Options]) -> ModuleType:
    """Define (or redefine) cell module ``name`` from ``source``: :meth:`CellModuleFinder.define`
    on the process's :data:`finder`, which is put on :data:`sys.meta_path` if it is not there."""
    __tracebackhide__ = True
    if finder not in sys.meta_path:
        finder.install()
    return finder.define(name, source, **options)


def after_commit(function: Callable[..., object], /, *args: Any) -> None:
    """Call ``function(*args)`` once the definition under way (a cell module's code may
    define another) has committed, at once if none is; never if it fails."""
    finder.after_commit(function, *args)


def restore_main_spec() -> None:
    """Give the interactive ``__main__`` back the ``__spec__`` that ``%reset`` deletes:
    without one, processes started with ``spawn`` cannot start at all."""
    main = sys.modules.get("__main__")
    if main is not None and not hasattr(main, "__spec__"):
        main.__spec__ = None
