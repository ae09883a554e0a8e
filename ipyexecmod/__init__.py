# SPDX-License-Identifier: MIT
"""Notebook cells as real, importable modules.

The package's core is a faithful pure-Python implementation of CPython's
module-exec C API (``PyImport_ExecCodeModule*``, ``PyImport_AddModule*``,
``PyImport_GetMagicNumber``/``GetMagicTag``/``GetModuleDict``) and an
in-memory :class:`SourceTextLoader`.  Importing it never imports IPython.
The real C functions, bound with ctypes, are in :mod:`ipyexecmod.capi`.

:func:`files` gives the on-disk files of a cell module, for engines that take files
(PySpark, Modal, ipyparallel); :func:`export` writes the version of one that ran as
plain ``.py`` files, to hand on.

``%load_ext ipyexecmod`` loads the magics (:mod:`ipyexecmod.magics`):
``%%as_module NAME`` makes a cell a real module (:mod:`ipyexecmod.cells`).
"""

from __future__ import annotations

# The core's public names, exactly as execmodule lists them (the C API's, in Python).
from .execmodule import *  # noqa: F403
from .execmodule import __all__ as _core_names
from .loader import SourceTextLoader

TYPE_CHECKING = False
if TYPE_CHECKING:
    from os import PathLike
    from typing import Any

    from .inspection.exports import Exported
    from .modulefiles import ModuleFiles

__version__ = "0.1.0"


def files(name: str) -> ModuleFiles:
    """The on-disk files of cell module ``name``'s current version (a package's with every
    cell module below it, and its parents' ``__init__.py``), for engines that take files:
    a sequence of paths with ``.root`` (the directory for ``sys.path``) and ``.archive()``
    (a zip of them, named after its contents); see :mod:`ipyexecmod.modulefiles`.

    Raises TypeError if ``name`` is not a str, and ValueError if it is not a cell module
    or has no on-disk copy (kept in memory only).
    """
    from .modulefiles import files  # the cell modules' machinery, only when asked

    return files(name)


def export(name: str, to: str | PathLike[str] = ".", *, force: bool = False) -> Exported:
    """Write the version that last ran of cell module ``name`` (a package's with every cell
    module below it) as plain ``.py`` files under ``to``, each with a provenance header;
    never over a file ipyexecmod did not write (``force``: moved aside to ``PATH.orig``).
    Returns what was written; see :mod:`ipyexecmod.exports`.

    Raises TypeError if ``name`` is not a str, :class:`~ipyexecmod.exports.NotExportable`
    (a ValueError) if it is not a cell module that ran here, and
    :class:`~ipyexecmod.exports.FilesInTheWay` (a FileExistsError) if files of the user's
    are in the way; nothing is written then.
    """
    from .exports import export  # the cell modules' machinery, only when asked

    return export(name, to, force=force)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext ipyexecmod``: register the magics; only now is IPython imported."""
    from .magics import load_ipython_extension

    load_ipython_extension(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext ipyexecmod``: remove everything loading added."""
    from .magics import unload_ipython_extension

    unload_ipython_extension(ipython)


# The C API and its loader; files() and export() are public too, but not in `import *`.
__all__ = ["SourceTextLoader", *_core_names]
