# SPDX-License-Identifier: MIT
"""Which notebook names a cell module may be bound to (``%%as_module`` binds NAME as
``import NAME`` would).

No IPython here: the magics pass the shell's namespace and its record of the names it
put there itself (``user_ns_hidden``).
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Container, Mapping
from types import ModuleType

__all__ = ["binding_clash"]

# The names IPython assigns as cells run, so it may not have assigned them yet: the output
# and input history (_, __, ___, _N, _i, _ii, _iii, _iN, _ih, _oh, _dh, _sh), In, Out,
# exit, quit, get_ipython; and the dunder names of the namespace (__name__, __builtins__).
_IPYTHON_NAMES = re.compile(r"_{1,3}|_i{1,3}|_i?\d+|_[iods]h|In|Out|exit|quit|get_ipython|__\w*__")


def binding_clash(
    name: str, module: ModuleType, namespace: Mapping[str, object], hidden: Container[str]
) -> str | None:
    """Why binding ``name`` to ``module`` in a notebook's ``namespace`` would do harm, or ``None``.

    Binding is refused for a name the shell keeps for itself (one in ``hidden``, or one of
    the history names it assigns as cells run): every magic calls ``get_ipython``, so
    binding that breaks them all.  Also for a builtin (``print``, and IPython's
    ``display``), which the binding would hide from every later cell; and for a value of
    the notebook's that is not a version of this module, which would be lost.  A module
    of the same name, an earlier version of this one, is replaced: that is what
    ``import NAME`` does too.
    """
    if _IPYTHON_NAMES.fullmatch(name) or name in ("In", "Out", "get_ipython"):
        return "that name is IPython's own"
    if name in hidden:  # what the shell put there itself: its own, or %pylab's, %run -i's
        value = namespace.get(name)
        held = f" (a {type(value).__name__})" if value is not None else ""
        return f"the shell put {name!r}{held} in the notebook itself, kept as it is"
    if name in vars(builtins):
        return f"that would hide the builtin {name}"
    value = namespace.get(name, module)
    if value is module or (
        isinstance(value, ModuleType) and getattr(value, "__name__", None) == name
    ):
        return None
    return f"{name!r} holds a {type(value).__name__} of the notebook, kept as it is"
