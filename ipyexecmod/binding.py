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
import sys
from collections.abc import Callable, Container, Iterable, Mapping, MutableMapping
from itertools import chain, compress
from types import FunctionType, ModuleType
from typing import TYPE_CHECKING, Any, NamedTuple

from .cells.stale import shared

if TYPE_CHECKING:
    from .cells.version import Replacement, Version

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
    """What :func:`rebind` did: the names it rebound, and those it left, each with the
    module whose earlier version defined what it holds."""

    rebound: list[str]
    left: list[tuple[str, str]]


class _Old(NamedTuple):
    """An object of an earlier version ``before``: under ``key`` in module ``module``,
    whose namespace is now ``now``."""

    value: object
    now: Mapping[str, Any]
    key: str
    module: str
    before: Version


def rebind(namespace: MutableMapping[str, Any], replacements: Iterable[Replacement]) -> Rebinding:
    """Rebind the names of ``namespace`` that hold an object of a replaced module
    namespace (found by identity: ``from m import f``, ``C = m.C``, ``from m import *``)
    to the object of the same name in the module now.

    Only objects that the old version defined count: a function or class of its own
    (``__module__``), or any other value but a module and what its ``from ... import``
    statements took from other modules (the notebook's own ``from math import pi`` is
    left alone).  A name whose object has no counterpart in the new version is left as it
    is: its name is gone from the module, or the new code does not define it any more
    (code run again in a module's namespace leaves the names it no longer defines).  A
    value that Python shares between unrelated code (``None``, booleans, small integers, short and
    identifier-like strings, empty tuples) is left too: a notebook's own ``n = 5`` holds
    the very object that ``LIMIT = 5`` does, so identity cannot tell where it came from.
    Other numbers and strings are followed under their own name only (``from m import
    RATE``, ``from m import *``); ``rate = m.RATE`` keeps the value it took.

    The namespace is walked once, for all the replacements.  The replaced namespaces may
    hold only what outlived them (:func:`~ipyexecmod.cells.stale.outliving`): what nothing
    else holds, the notebook does not hold either.
    """
    counterparts: dict[int, _Old] = {}
    values_by_name: dict[tuple[str, int], _Old] = {}
    for replacement in replacements:
        new, defined = vars(replacement.module), _defined_by(replacement)
        for key, value in chain(replacement.old.items(), replacement.earlier):
            if defined(key, value):
                old = _Old(value, new, key, replacement.name, replacement.before)
                if type(value) in _VALUES:
                    values_by_name[key, id(value)] = old
                else:
                    counterparts[id(value)] = old
    held = [key for (key, _), old in values_by_name.items() if namespace.get(key) is old.value]
    if counterparts:
        # In C: the names whose value is of a replaced object's type, then of those the
        # ones whose value is one (10,000 names in about two plain loops over them).
        kinds = {type(old.value) for old in counterparts.values()}
        keys, values = namespace.keys(), namespace.values()
        typed = list(compress(keys, map(kinds.__contains__, map(type, values))))
        ids = map(id, map(namespace.__getitem__, typed))
        held += compress(typed, map(counterparts.__contains__, ids))
    rebound: list[str] = []
    left: list[tuple[str, str]] = []
    imported: dict[int, set[int]] = {}  # per version: worked out only for what is held
    for name in held:
        value = namespace[name]
        if type(value) in _VALUES:
            found = values_by_name.get((name, id(value)))
        else:
            found = counterparts.get(id(value))
        if found is None or found.value is not value:
            continue
        if not isinstance(value, type | FunctionType):
            before = found.before
            if id(before) not in imported:
                imported[id(before)] = _imported_values(before)
            if id(value) in imported[id(before)]:
                continue  # what the version imported (its from math import pi)
        if found.key in found.now and found.now[found.key] is not value:
            namespace[name] = found.now[found.key]
            rebound.append(name)
        else:
            left.append((name, found.module))
    return Rebinding(rebound, left)


#: Numbers, strings and the like: the notebook's copies of them are looked for under the
#: module's own names only (``from m import LIMIT``, ``from m import *``), not by a walk of
#: the whole notebook (``limit = m.LIMIT`` keeps the value it took).
_VALUES = frozenset({int, float, complex, str, bytes, tuple, frozenset, range})


def _defined_by(replacement: Replacement) -> Callable[[str, object], bool]:
    """Whether the value under a name of ``replacement.old`` may be one that its version
    defined and the new version replaced, or no longer defines: not a module, not a
    function or class of another module's.  (What its ``from ... import`` statements
    took from elsewhere is told apart later, for the values the notebook holds.)"""
    name, new = replacement.name, vars(replacement.module)
    assigned = replacement.after.code.co_names  # the names its new code may bind

    def defined(key: str, value: object) -> bool:
        if new.get(key, _GONE) is value and key in assigned:
            return False  # the new version has it too (its code ran again and bound it)
        if shared(value) or isinstance(value, ModuleType):
            return False
        if isinstance(value, type | FunctionType):
            return getattr(value, "__module__", None) == name  # not another module's
        return True  # unless it was imported: looked at only if the notebook holds it

    return defined


def _imported_values(version: Version) -> set[int]:
    """The ids of the values that ``version``'s ``from ... import`` statements took from
    other modules (as those modules are now)."""
    found: set[int] = set()
    for module, fromlist in version.from_imports:
        namespace = vars(sys.modules[module]) if module in sys.modules else {}
        for each in fromlist:
            if each == "*":
                found.update(id(value) for key, value in namespace.items() if key[:1] != "_")
            elif each in namespace:
                found.add(id(namespace[each]))
    return found


_GONE = object()
