# SPDX-License-Identifier: MIT
"""What runs on Dask workers (and a remote scheduler) for :mod:`ipyexecmod.dask`.

The functions here are sent by value (cloudpickle), so the workers need no
ipyexecmod installed: they may use the standard library only.
"""

from __future__ import annotations

import importlib
import sys


def reload_loaded(names: list[str]) -> list[str]:
    """Reload, parents first, those of ``names`` this process has imported; return them.

    Dask's ``UploadFile`` plugin reloads the top-level package of a shipped archive,
    and nothing below it; a submodule already imported would keep its old code.
    """
    importlib.invalidate_caches()
    reloaded = []
    for name in sorted(names, key=lambda name: name.count(".")):
        module = sys.modules.get(name)
        if module is not None:
            importlib.reload(module)
            reloaded.append(name)
    return reloaded


def forget(names: list[str]) -> list[str]:
    """Drop ``names`` from this process's modules, so that their next import reads the
    files shipped now; return those that were imported."""
    return [name for name in names if sys.modules.pop(name, None) is not None]
