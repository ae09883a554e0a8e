# SPDX-License-Identifier: MIT
"""What older versions of a cell module left alive: remembered weakly, found when asked.

When a cell module is redefined, the module-level classes and functions that its
previous version defined and the new one does not (by identity) are remembered in
its record's :class:`Replaced`, by weak reference only: an old version's objects
live exactly as long as something else holds them.  :func:`find_stale` (what
``%modinfo``'s ``stale`` row shows) then looks, when asked, for what still holds
them: instances of the replaced classes, and the replaced functions and classes
themselves, with where each is held (a name in the notebook, a module, or the
type of the container).  It walks every object the garbage collector tracks
(:func:`gc.get_objects`, then one :func:`gc.get_referrers` for all that it
found), which costs tens of milliseconds per million live objects: never on a
definition, only on request.
"""

from __future__ import annotations

import functools
import gc
import re
import sys
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import compress
from types import CellType, FrameType, FunctionType, GetSetDescriptorType, MemberDescriptorType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .registry import CellModuleFinder

__all__ = [
    "Replaced",
    "Stale",
    "StaleGroup",
    "earlier",
    "find_stale",
    "outliving",
    "remember_replaced",
    "shared",
]

#: At most this many places are named for one group of stale objects.
_PLACES = 3


class Replaced:
    """Weak references to the classes and functions that a module's older versions defined,
    and why ``--update-instances`` last left instances of a class where they were."""

    def __init__(self) -> None:
        self._refs: dict[int, weakref.ref[Any]] = {}
        self._reasons: dict[int, tuple[weakref.ref[Any], str]] = {}

    def add(self, value: type | FunctionType) -> None:
        """Remember ``value`` until it dies."""
        key = id(value)

        def forget(ref: weakref.ref[Any], refs: dict[int, Any] = self._refs) -> None:
            if refs.get(key) is ref:  # not a later object that took the same id
                del refs[key]

        self._refs[key] = weakref.ref(value, forget)

    def __bool__(self) -> bool:
        return bool(self._refs)

    def alive(self) -> list[Any]:
        """The remembered objects still alive, oldest first."""
        return [value for value in (ref() for ref in list(self._refs.values())) if value]

    def classes(self) -> list[type]:
        return [value for value in self.alive() if isinstance(value, type)]

    def functions(self) -> list[FunctionType]:
        return [value for value in self.alive() if isinstance(value, FunctionType)]

    def set_reason(self, cls: type, reason: str | None) -> None:
        """Remember why instances of ``cls`` were not moved (``None``: they were)."""
        if reason is None:
            self._reasons.pop(id(cls), None)
        else:
            self._reasons[id(cls)] = (weakref.ref(cls), reason)

    def reason(self, cls: type) -> str | None:
        ref, reason = self._reasons.get(id(cls), (None, None))
        return reason if ref is not None and ref() is cls else None


def outliving(namespace: dict[str, Any]) -> dict[str, Any]:
    """The items of ``namespace`` whose value something else holds too (a notebook name,
    a list, another module, a subclass), but for its dunder names (``__file__``) and the
    values Python shares between unrelated code (:func:`shared`).

    A value that only ``namespace`` holds dies with it: nothing can hold it stale, and
    nothing needs to look for it.  Reference counts tell, against that of an object that
    a dict of its own holds, counted the same way.
    """
    held = map(_alone().__lt__, _counts(namespace))
    return {
        key: value
        for key, value in compress(namespace.items(), held)
        if key[:2] != "__" and not shared(value)
    }


@functools.cache
def _alone() -> int:
    """The reference count :func:`_counts` gives a value that only its dict holds (it
    differs between versions of Python)."""
    return _counts({"": object()})[0]


def _counts(namespace: dict[str, Any]) -> list[int]:
    return list(map(sys.getrefcount, namespace.values()))


def shared(value: object) -> bool:
    """Whether ``value`` may be the very object of unrelated code (cached or interned):
    ``None``, booleans, small integers, short and identifier-like strings, empty tuples."""
    if value is None or value is Ellipsis or value is NotImplemented or type(value) is bool:
        return True
    if type(value) is int:
        return -5 <= value <= 256
    if type(value) is bytes:
        return len(value) <= 1
    if type(value) is str:
        return len(value) <= 1 or _IDENTIFIER_CHARS.fullmatch(value) is not None
    return type(value) in (tuple, frozenset) and not value


_IDENTIFIER_CHARS = re.compile(r"\w*", re.ASCII)


def earlier(finder: CellModuleFinder, name: str) -> tuple[tuple[str, Any], ...]:
    """The module-level classes and functions of module ``name``'s earlier versions that
    are still alive, each with its name."""
    record = finder.get(name)
    if record is None or not record.replaced:
        return ()
    alive = record.replaced.alive()
    return tuple((value.__qualname__, value) for value in alive if "." not in value.__qualname__)


def remember_replaced(finder: CellModuleFinder, name: str, old: dict[str, Any]) -> None:
    """Remember the classes and functions of namespace ``old`` (module ``name``'s, before
    it was executed again) that its new namespace no longer holds: a step after the commit."""
    record, module = finder.get(name), sys.modules.get(name)
    if record is None or module is None:
        return
    for value in _replaced(old, vars(module), name):
        for each in _nested(value, name) if isinstance(value, type) else [value]:
            record.replaced.add(each)


def _replaced(old: dict[str, Any], new: dict[str, Any], name: str) -> list[Any]:
    """The classes and functions that module ``name`` defined in namespace ``old`` and that
    ``new`` no longer holds under the same name."""
    return [
        value
        for key, value in old.items()
        if isinstance(value, type | FunctionType)
        and new.get(key) is not value
        and value.__module__ == name
    ]


def _nested(cls: type, name: str) -> Iterable[type]:
    """``cls`` and the classes defined in its body, at any depth (``C.Inner``)."""
    yield cls
    for value in list(vars(cls).values()):
        if (
            isinstance(value, type)
            and value.__module__ == name
            and value.__qualname__.startswith(cls.__qualname__ + ".")
        ):
            yield from _nested(value, name)


@dataclass(frozen=True)
class StaleGroup:
    """Live objects of one kind and name from older versions of a module."""

    #: "instance", "function" or "class".
    kind: str
    qualname: str
    count: int
    #: Where they are held: notebook names, ``module X``, or container types.
    where: tuple[str, ...]
    #: Why ``--update-instances`` left them, if it did.
    why: str | None = None

    def __str__(self) -> str:
        plural = "es" if self.kind == "class" else "s"
        noun = self.kind if self.count == 1 else self.kind + plural
        of = " of" if self.kind == "instance" else ""
        text = f"{self.count} {noun}{of} {self.qualname}"
        if self.where:
            text += f" ({', '.join(self.where)})"
        return text if self.why is None else f"{text} not moved: {self.why}"


class Stale(tuple[StaleGroup, ...]):
    """What :func:`find_stale` found: groups of live objects, shown as ``%modinfo``'s row."""

    __slots__ = ()

    def __str__(self) -> str:
        return "; ".join(map(str, self)) or "none"


def find_stale(
    finder: CellModuleFinder, name: str, namespace: dict[str, Any] | None = None
) -> Stale:
    """The live objects that older versions of cell module ``name`` defined: instances of
    its replaced classes, and replaced functions and classes still held from outside the
    old versions themselves, with where (names in ``namespace``, e.g. the notebook's).

    Runs a full garbage collection first (if any object of an older version is alive), so
    that only what is really held is counted.
    Raises KeyError if ``name`` is not a cell module.
    """
    replaced = finder.modules[name].replaced
    if not replaced.alive():
        return Stale()  # nothing to collect or walk for
    gc.collect()
    classes, functions = replaced.classes(), replaced.functions()
    if not classes and not functions:
        return Stale()
    ids = {id(cls) for cls in classes}
    instances = [obj for obj in gc.get_objects() if id(type(obj)) in ids]
    internal = _internals(classes, functions) | {id(instances), id(classes), id(functions)}
    places = _Places(namespace, [*instances, *functions, *classes], internal)
    groups: list[StaleGroup] = []
    for cls in classes:
        held = [where for obj in instances if type(obj) is cls and (where := places.of(obj))]
        if held:
            first = _first(place for where in held for place in where)
            groups.append(
                StaleGroup("instance", cls.__qualname__, len(held), first, replaced.reason(cls))
            )
    old: list[type | FunctionType] = [*functions, *classes]
    for value in old:
        where_held = places.of(value)
        if where_held:
            kind = "class" if isinstance(value, type) else "function"
            groups.append(StaleGroup(kind, value.__qualname__, 1, _first(where_held)))
    return Stale(groups)


def _first(places: Iterable[tuple[int, str]]) -> tuple[str, ...]:
    """The first few distinct places, in a stable order, and how many more there are."""
    distinct = [text for _, text in sorted(set(places))]
    if len(distinct) <= _PLACES:
        return tuple(distinct)
    return (*distinct[:_PLACES], f"+{len(distinct) - _PLACES} more")


def _internals(classes: list[type], functions: list[FunctionType]) -> set[int]:
    """The ids of the containers that are parts of the old versions themselves (a class's
    namespace and MRO, an enum's member maps, a method's closure cells): an old object
    held only by those is held by nothing outside."""
    parts: list[object] = []
    for cls in classes:
        parts += [cls.__mro__, cls.__bases__, *gc.get_referents(cls.__dict__)]
        for sub in _subclasses(cls):  # named as "subclass X" instead
            parts += [sub.__mro__, sub.__bases__]
        for value in list(vars(cls).values()):
            parts.append(value)
            parts += _function_parts(getattr(value, "__func__", value))
    for function in functions:
        parts += _function_parts(function)
    return {id(part) for part in parts if isinstance(part, dict | list | tuple | set | CellType)}


def _subclasses(cls: type) -> list[type]:
    subclasses: list[type] = type.__subclasses__(cls)
    return subclasses


def _function_parts(value: object) -> list[object]:
    if not isinstance(value, FunctionType):
        return []
    closure = value.__closure__ or ()
    return [closure, *closure, value.__defaults__, value.__kwdefaults__]


class _Places:
    """Where each of some objects is held, from one :func:`gc.get_referrers` walk."""

    def __init__(
        self, namespace: dict[str, Any] | None, targets: list[object], internal: set[int]
    ) -> None:
        # (rank, text): notebook names first, then modules, containers, subclasses.
        self._found: dict[int, list[tuple[int, str]]] = {id(target): [] for target in targets}
        names = _names(namespace or {})
        modules = {id(vars(m)): n for n, m in list(sys.modules.items()) if hasattr(m, "__dict__")}
        args = tuple(targets)  # passed on as get_referrers' own arguments, not copied
        skip = {id(args), id(targets), id(namespace), *internal}
        for ref in gc.get_referrers(*args):
            if id(ref) in skip or isinstance(ref, _NOT_PLACES):
                continue
            place = (2, type(ref).__name__)
            if id(ref) in modules:
                place = (1, f"module {modules[id(ref)]}")
            elif id(ref) in names:  # a container the notebook names
                place = (2, f"{place[1]} {names[id(ref)]}")
            for child in gc.get_referents(ref):
                held = self._found.get(id(child))
                if held is not None and not _holds_as_class(ref, child):
                    held.append(place)
        for target in targets:
            held = self._found[id(target)]
            held += [(0, name) for name in names.get(id(target), "").split(", ") if name]
            if isinstance(target, type):
                held += [
                    (3, f"subclass {s.__module__}.{s.__qualname__}") for s in _subclasses(target)
                ]

    def of(self, target: object) -> list[tuple[int, str]]:
        """The places that hold ``target``: none if nothing outside the old versions does."""
        return self._found.get(id(target), [])


# Referrers that are not places: the frames of running code (this one's included), and the
# descriptors of a class's own __dict__, __weakref__ and __slots__.
_NOT_PLACES = (FrameType, GetSetDescriptorType, MemberDescriptorType)


def _holds_as_class(ref: object, child: object) -> bool:
    """Whether ``ref`` holds ``child`` as its class or a base class (named otherwise)."""
    return child is type(ref) or (isinstance(ref, type) and child in ref.__mro__)


def _names(namespace: dict[str, Any]) -> dict[int, str]:
    """The names each object of ``namespace`` is bound to (``_``-names only if it has no
    other: IPython's ``_``, ``_3`` and ``Out`` hold every result shown)."""
    bound: dict[int, list[str]] = {}
    for key, value in list(namespace.items()):
        bound.setdefault(id(value), []).append(key)
    return {
        key: ", ".join([n for n in names if not n.startswith("_")] or names[:1])
        for key, names in bound.items()
    }
