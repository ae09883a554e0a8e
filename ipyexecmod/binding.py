# SPDX-License-Identifier: MIT
"""Notebook names and cell modules: which names a cell module may be bound to
(``%%as_module`` binds NAME as ``import NAME`` would), and the names that follow a
module's new version (:func:`rebind`).

No IPython here: the magics pass the shell's namespace and its record of the names it
put there itself (``user_ns_hidden``).
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Container, Mapping, MutableMapping
from types import ModuleType
from typing import Any, NamedTuple

__all__ = ["Rebinding", "binding_clash", "rebind"]

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


class Rebinding(NamedTuple):
    """What :func:`rebind` did: the names it rebound, and those it left (with why)."""

    rebound: list[str]
    left: list[str]


def rebind(
    namespace: MutableMapping[str, Any],
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    module: str,
    assigned: Container[str],
) -> Rebinding:
    """Rebind the names of ``namespace`` that hold an object of module ``module``'s
    ``old`` namespace (found by identity: ``from m import f``, ``C = m.C``,
    ``from m import *``) to the object of the same name in its ``new`` namespace.

    Only objects the new version replaced count (a module it imports is the same object).
    A name whose object has no counterpart in the new version is left as it is: its
    name is gone from ``new``, or the new code (which may bind only the names in
    ``assigned``) does not define it and it is a function or class of ``module``'s
    (code run again in a module's namespace leaves the names it no longer defines).
    A value that Python shares between unrelated code (``None``, booleans, small
    integers, short and identifier-like strings, empty tuples) is left too: a
    notebook's own ``n = 5`` holds the very object that ``LIMIT = 5`` does, so
    identity cannot tell where it came from.
    """
    replaced = {
        id(value): key
        for key, value in old.items()
        if not key.startswith("__")
        and not _shared(value)
        and (
            new.get(key, _GONE) is not value
            or (key not in assigned and getattr(value, "__module__", None) == module)
        )
    }
    rebound: list[str] = []
    left: list[str] = []
    held = replaced.keys() & set(map(id, namespace.values()))  # in C: 10,000 names in 0.3 ms
    if not held:
        return Rebinding(rebound, left)
    for name in [name for name, value in namespace.items() if id(value) in held]:
        key = replaced[id(namespace[name])]
        if new.get(key, _GONE) is not old[key] and key in new:
            namespace[name] = new[key]
            rebound.append(name)
        else:
            left.append(name)
    return Rebinding(rebound, left)


_GONE = object()
_IDENTIFIER_CHARS = re.compile(r"\w*", re.ASCII)


def _shared(value: object) -> bool:
    """Whether ``value`` may be the very object of unrelated code (cached or interned)."""
    if value is None or value is Ellipsis or value is NotImplemented or type(value) is bool:
        return True
    if type(value) is int:
        return -5 <= value <= 256
    if type(value) is bytes:
        return len(value) <= 1
    if type(value) is str:
        return len(value) <= 1 or _IDENTIFIER_CHARS.fullmatch(value) is not None
    return type(value) in (tuple, frozenset) and not value
