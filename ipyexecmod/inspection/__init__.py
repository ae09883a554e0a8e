# SPDX-License-Identifier: MIT
"""What the line magics return: plain values that also display well.

Each result is an ordinary Python value (a list of rows, a dict, an int, a
str) with a plain-text ``repr`` for terminals and an escaped HTML table
(``_repr_html_``) for notebooks, in a stable order so that stored notebook
outputs do not churn.  No IPython here: the magics only call these.
"""

from __future__ import annotations

from .bytecode import MagicNumber, MagicTag, PycInfo, PycNotFound, pyc_info, pyc_info_for, pyc_path
from .frames import frame_name
from .history import ModuleDiff, ModuleHistory, VersionRow, module_diff, module_history
from .modules import (
    ModuleInfo,
    ModuleList,
    ModuleRow,
    list_modules,
    module_info,
    module_kind,
    module_names,
)

__all__ = [
    "MagicNumber",
    "MagicTag",
    "ModuleDiff",
    "ModuleHistory",
    "ModuleInfo",
    "ModuleList",
    "ModuleRow",
    "PycInfo",
    "PycNotFound",
    "VersionRow",
    "frame_name",
    "list_modules",
    "module_diff",
    "module_history",
    "module_info",
    "module_kind",
    "module_names",
    "pyc_info",
    "pyc_info_for",
    "pyc_path",
]
