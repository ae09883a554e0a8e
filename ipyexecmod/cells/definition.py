# SPDX-License-Identifier: MIT
"""The steps of a definition: parents, execution, commit, on-disk copy.

Each step that changes something registers, on the definition's
:class:`~.transaction.Transaction`, the named step that undoes it.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from importlib.util import module_from_spec
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypedDict

from .._warnings import warn
from ..execmodule import NOT_FOUND, exec_code_module_object
from ..loader import forget_lines_when_unused
from ..ownership import Writer
from ..store import CellStore, MemoryOnly, StoreError, kernel_board, kernel_store
from ..workers.catchup import from_kernel
from .dependents import Rerun, dependents
from .locks import Discarded
from .names import DefinitionError, check_available, check_module_name
from .transaction import Transaction
from .version import CellModule, Replacement, Version

if TYPE_CHECKING:
    from .registry import CellModuleFinder

__all__ = ["Options", "define", "rehome", "reload"]

_MISSING = object()


class Options(TypedDict, total=False):
    """The options of a definition (see :meth:`CellModuleFinder.define`)."""

    force: bool
    defined_in: int | None
    store: CellStore | MemoryOnly | None
    rerun_dependents: bool


def define(
    finder: CellModuleFinder,
    name: str,
    source: str,
    *,
    force: bool = False,
    defined_in: int | None = None,
    store: CellStore | MemoryOnly | None = None,
    rerun_dependents: bool = True,
) -> ModuleType:
    """:meth:`CellModuleFinder.define <ipyexecmod.cells.CellModuleFinder.define>`."""
    __tracebackhide__ = True
    if not (type(name) is str and name in finder.modules):  # a known name was checked then
        check_module_name(name)
    if not isinstance(source, str):
        msg = f"source must be a str, not {type(source).__name__}"
        raise TypeError(msg)
    if not (store is None or isinstance(store, CellStore | MemoryOnly)):
        msg = f"store must be a CellStore, a MemoryOnly or None, not {type(store).__name__}"
        raise TypeError(msg)
    copy = store if isinstance(store, CellStore) else None
    kernels = from_kernel(name)
    if kernels is not None:  # in a worker: a cell module's code, run again there
        return kernels
    with finder.lock:
        if copy is not None:
            finder.add_store(copy)
        record = finder.get(name)
        old = None if record is None else record.version
        is_package = _is_package(finder, name, old, copy)
        _refuse_leaving(finder, name, store)
        if not force:
            problem = None if copy is None else copy.refusal(name, is_package)
            if problem is not None:
                raise DefinitionError(problem.problem, forceable=True, hint=problem.force)
            check_available(finder, name)
        version = _next_version(old, name, source, copy, defined_in, is_package)
        # Each compiled version has lines of its own in linecache (see .version): only
        # the same version run again shares them, and keeps them whatever happens.
        fresh = old is None or old.filename != version.filename
        with _transaction(finder) as steps:
            if fresh:
                steps.undo(forget_lines_when_unused, version.loader)
            _ensure_parents(finder, steps, name, copy)
            reruns = _plan_reruns(finder, steps, version) if rerun_dependents else []
            module = _execute(finder, steps, version)
            record = _commit(finder, steps, version)
            _rerun(finder, steps, record, reruns)
            if old is not None and fresh:
                steps.after(forget_lines_when_unused, old.loader)
            steps.commit(_save, finder, record, force)
            steps.commit(_publish, finder, [name, *(rerun.name for rerun in reruns)])
            steps.after(finder.notify, name)
            for rerun in reruns:  # after it: a listener may run them again elsewhere
                steps.after(finder.notify, rerun.name)
    return module


def _is_package(
    finder: CellModuleFinder, name: str, old: Version | None, store: CellStore | None
) -> bool:
    """Whether module ``name``'s next version is a package: if its last one was, or
    (defined for the first time here) the one restored from an on-disk copy, or the copy
    in ``store``, is.  A package stays one, on disk and in the kernel."""
    if old is not None:
        return old.is_package
    restored = sys.modules.get(name)
    if finder.is_restored(restored):
        return hasattr(restored, "__path__")
    stores = finder.stores if store is None else [store, *finder.stores]
    return any(each.has_package(name) for each in stores)


def _next_version(
    old: Version | None,
    name: str,
    source: str,
    store: CellStore | None,
    defined_in: int | None,
    is_package: bool,
) -> Version:
    """The version ``source`` makes of module ``name``; the same source in the same place
    runs the code compiled before (a cell run again unchanged compiles nothing)."""
    if old is not None and old.source == source and old.store is store:
        return old.again(defined_in)
    return Version.compile(name, source, is_package=is_package, store=store, defined_in=defined_in)


def reload(finder: CellModuleFinder, name: str, *, rerun_dependents: bool = True) -> ModuleType:
    """Re-execute cell module ``name``'s latest version in the same object, and its
    dependents after it, as one transaction."""
    __tracebackhide__ = True
    with finder.lock:
        record = finder.modules[name]
        with _transaction(finder) as steps:
            reruns = _plan_reruns(finder, steps, record.version) if rerun_dependents else []
            module = _execute(finder, steps, record.version)
            _rerun(finder, steps, record, reruns)
            steps.commit(_publish, finder, [name, *(rerun.name for rerun in reruns)])
            for rerun in reruns:
                steps.after(finder.notify, rerun.name)
            return module


def _plan_reruns(finder: CellModuleFinder, steps: Transaction, version: Version) -> list[Rerun]:
    """The dependents of ``version``'s module to run again after it (none already
    running again in this transaction), their names claimed from now on: a thread
    importing any of them waits for the whole set."""
    reruns = [
        rerun
        for rerun in dependents(finder.modules, version.name)
        if rerun.name not in steps.rerun and finder.owns(sys.modules.get(rerun.name))
    ]
    for rerun in reruns:
        steps.rerun.add(rerun.name)
        steps.claim(rerun.name)
    return reruns


def _rerun(
    finder: CellModuleFinder, steps: Transaction, record: CellModule, reruns: list[Rerun]
) -> None:
    """Run the dependents in ``reruns`` again, in order, from their latest versions; what
    one raises gets a note that says which module failed and why it ran again."""
    __tracebackhide__ = True
    steps.undo(setattr, record, "reran", record.reran)
    record.reran = tuple(reruns)
    for rerun in reruns:
        try:
            _execute(finder, steps, finder.modules[rerun.name].version)
        except BaseException as exc:
            exc.add_note(
                f"ipyexecmod: this was raised by cell module {rerun.name!r}, run again because "
                f"it imports {', '.join(rerun.because)}; {record.name!r} and every module run "
                f"again for it are back as they were"
            )
            raise


def _transaction(finder: CellModuleFinder) -> Transaction:
    """A transaction of the finder's; the outermost one's first later steps put the finder
    back on :data:`sys.meta_path` if the code took it away, and tell it of every module
    whose code ran again (:meth:`CellModuleFinder.replaced`)."""
    steps = Transaction(finder.transactions, kernel_board())
    if steps.outermost:
        if finder in sys.meta_path:
            steps.after(_reinstall, finder)
        steps.after(finder.replaced, steps.replacements)  # all of them, once
    return steps


def _ensure_parents(
    finder: CellModuleFinder, steps: Transaction, name: str, store: CellStore | None
) -> None:
    """Create the missing parent packages of ``name``; make a cell-module parent a package."""
    parts = name.split(".")
    foreign = None  # the first parent package that is not ipyexecmod's
    for depth in range(1, len(parts)):
        prefix = ".".join(parts[:depth])
        record = finder.get(prefix)
        module = sys.modules.get(prefix)
        if module is None and (record is not None or _copy_of(finder, prefix) is not None):
            # Ours, dropped from sys.modules (%reset --aggressive), or a copy of an earlier
            # kernel's: import re-creates it.
            module = importlib.import_module(prefix)
        if record is None and module is not None and finder.is_restored(module):
            record = _adopt(finder, steps, module)
        if record is not None and store is not None:
            _refuse_split(name, record, store)
        if module is None:
            _create_package(finder, steps, prefix, store)
        elif record is not None and finder.owns(module):
            if not record.version.is_package:
                _make_package(steps, record, module)
        elif not hasattr(module, "__path__"):
            msg = (
                f"cannot define {name!r}: {prefix!r} is a module, not a package, "
                f"so it cannot have submodules; choose another name"
            )
            raise DefinitionError(msg)
        elif foreign is None and not finder.ours(module):
            foreign = module
    if foreign is not None and store is not None:
        _refuse_copy_in(foreign, name)


def _copy_of(finder: CellModuleFinder, name: str) -> CellStore | None:
    """The lasting store that holds a copy of module ``name`` that it wrote, if any."""
    for store in finder.stores:
        if store.lasting and store.wrote(store.copy_of(name)[0]):
            return store
    return None


def _adopt(finder: CellModuleFinder, steps: Transaction, module: ModuleType) -> CellModule:
    """Make ``module``, restored from a copy (its code ran from that file), a cell module
    of that source, with no code run: so that it can become a package."""
    name, path = module.__name__, module.__file__
    store = next(store for store in finder.stores if store.wrote(path))
    with open(path, encoding="utf-8") as file:  # type: ignore[arg-type]  # restored: a file
        source = file.read()
    version = Version.compile(name, source, is_package=hasattr(module, "__path__"), store=store)
    steps.undo(forget_lines_when_unused, version.loader)
    steps.undo(_put_back_item, finder.modules, name, None)
    steps.undo(_restore_namespace, vars(module), dict(vars(module)))
    record = finder.modules[name] = CellModule(version)
    _place(record, module, version)
    assert version.path is not None and version.cached is not None  # in a store
    store.take(version.path, version.cached, version.encoded)
    return record


def _refuse_split(name: str, parent: CellModule, store: CellStore) -> None:
    """A module of a lasting store goes where its package is: a new kernel imports a
    package's modules from one directory."""
    other = parent.version.store
    if other is store or not store.lasting:
        return
    where = (
        "in memory only"
        if other is None
        else f"in {other.directory}"
        if other.lasting
        else "in the kernel's private directory"
    )
    cell = "made for its modules, with no cell of its own, " if parent.implicit else ""
    msg = (
        f"cannot keep {name!r} in {store.directory}: its package {parent.name!r} ({cell}is "
        f"kept {where}), and a package's modules are kept in one directory, so that a new "
        f"kernel imports them together; keep {name!r} {where}, or define {parent.name!r} "
        f"there first"
    )
    raise DefinitionError(msg)


def _refuse_leaving(
    finder: CellModuleFinder, name: str, store: CellStore | MemoryOnly | None
) -> None:
    """A package whose modules this kernel (or an earlier one of its notebook) keeps in
    a lasting store stays there with them."""
    for other in finder.stores:
        inside = [] if other is store else other.kept_under(name)
        if inside:
            msg = (
                f"cannot move {name!r} out of {other.directory}: its modules "
                f"{', '.join(map(repr, inside))} are kept there, and a package's modules are "
                f"kept in one directory, so that a new kernel imports them together; define "
                f"{name!r} with that persist_dir"
            )
            raise DefinitionError(msg)


def _refuse_copy_in(package: ModuleType, name: str) -> None:
    """A copy of ``name`` on disk could not be imported by other processes: they import
    ``package``, which ipyexecmod did not create, from its own place.  A package of the
    private directory in its place would hide the real one from them."""
    prefix = package.__name__
    where = getattr(package, "__file__", None) or list(getattr(package, "__path__", []))
    msg = (
        f"cannot keep an on-disk copy of {name!r}: {prefix!r} is a package that ipyexecmod "
        f"did not create ({where}), so other processes import it from there, where there "
        f"is no {name[len(prefix) + 1 :]!r}; define it with --no-persist to use it in this "
        f"kernel only, or give it a name outside {prefix!r}"
    )
    raise DefinitionError(msg)


def _create_package(
    finder: CellModuleFinder, steps: Transaction, name: str, store: CellStore | None
) -> None:
    version = Version.compile(name, "", is_package=True, store=store)
    steps.undo(_put_back_item, finder.modules, name, None)
    steps.undo(forget_lines_when_unused, version.loader)
    finder.modules[name] = CellModule(version, implicit=True)
    _execute(finder, steps, version)


def _make_package(steps: Transaction, record: CellModule, module: ModuleType) -> None:
    """Turn a cell module into a package, as a ``.py`` file becomes ``__init__.py``."""
    steps.claim(record.name)
    namespace = vars(module)
    steps.undo(_restore_namespace, namespace, dict(namespace))
    steps.undo(_set_version, record, record.version)
    _place(record, module, record.version.as_package())


def _place(record: CellModule, module: ModuleType, version: Version) -> None:
    """Make ``version``, the same code as ``record``'s in another place, its version, with
    the module's spec and file attributes to match."""
    record.version = version
    spec = module.__spec__ = record.spec()
    module.__loader__ = record.loader
    if version.is_package:
        module.__path__ = list(spec.submodule_search_locations or ())
        module.__package__ = record.name
    vars(module)["__file__"], vars(module)["__cached__"] = spec.origin, spec.cached


def rehome(finder: CellModuleFinder) -> list[tuple[str, str, Writer]]:
    """Move each cell module whose lasting copy another kernel has replaced since this
    process wrote it to the private directory (the same version: no code runs), and tell
    worker processes; return their names, each with the lasting directory and the kernel
    that replaced it."""
    moved = []
    with finder.lock:
        for store in finder.stores:
            for lost in store.replaced():
                record, module = finder.get(lost.name), sys.modules.get(lost.name)
                if record is None or record.version.store is not store or not finder.owns(module):
                    continue
                assert module is not None  # owned
                version = record.version.placed(
                    kernel_store(), is_package=record.version.is_package
                )
                _place(record, module, version)
                with contextlib.suppress(StoreError):  # then workers are told it is memory-only
                    version.save()
                _publish(finder, [lost.name])
                moved.append((lost.name, store.directory, lost.writer))
    return moved


def _execute(finder: CellModuleFinder, steps: Transaction, version: Version) -> ModuleType:
    """Run ``version``'s code as its module through the exec-code core.

    A cell module's existing object is reused; anything else in its place
    (a forced name) is replaced by a new module.
    """
    __tracebackhide__ = True
    name, spec = version.name, version.spec()
    previous = sys.modules.get(name)
    parent_name, _, child = name.rpartition(".")
    parent = sys.modules.get(parent_name) if parent_name else None
    steps.undo(_put_back_module, name, previous, parent, child, getattr(parent, child, _MISSING))
    record = finder.get(name)
    if previous is not None and finder.ours(previous):
        steps.claim(name)
        namespace = dict(vars(previous))
        steps.undo(_restore_namespace, vars(previous), namespace)
        before = version if record is None else record.version  # restored: no version of it
        steps.replacements.append(Replacement(name, namespace, previous, before, version))
        if record is not None:
            steps.undo(_set_version, record, record.version)
            record.version = version
        # The loader goes on the module first: the core's fix-up keeps it, and the spec.
        previous.__spec__, previous.__loader__ = spec, version.loader
    else:
        steps.claim(name, fresh=True)
        created = sys.modules[name] = module_from_spec(spec)
        steps.undo(setattr, created, "__class__", Discarded)
    target = sys.modules[name]
    try:
        module: ModuleType = exec_code_module_object(name, version.code, spec.origin, spec.cached)
    except ImportError as exc:
        if name in sys.modules or str(exc) != NOT_FOUND.format(name):
            raise
        msg = (
            f"module {name!r} deleted its own entry in sys.modules as it ran, so it "
            f"is not defined: a cell module must stay in sys.modules; remove the "
            f"`del sys.modules[...]` from the cell"
        )
        raise ImportError(msg, name=name) from None
    if module is not target:
        msg = (
            f"module {name!r} put an object of type {type(module).__name__!r} in its "
            f"place in sys.modules as it ran, so it is not defined: a cell module must stay "
            f"itself; give it a module-level __getattr__ or assign its __class__ instead"
        )
        raise ImportError(msg, name=name)
    if parent is not None:
        setattr(parent, child, module)
    return module


def _commit(finder: CellModuleFinder, steps: Transaction, version: Version) -> CellModule:
    """Record ``version`` as its module's current one in the registry."""
    name = version.name
    record = finder.get(name)
    if record is None or record.implicit:
        steps.undo(_put_back_item, finder.modules, name, record)
        new = finder.modules[name] = CellModule(version)
        return new
    steps.undo(_set_history, record, record.version, record.redefinitions)
    _set_history(record, version, record.redefinitions + 1)
    return record


# -- after the commit --


def _reinstall(finder: CellModuleFinder) -> None:
    if finder not in sys.meta_path:  # the code took this finder away
        finder.install()


def _save(finder: CellModuleFinder, record: CellModule, force: bool) -> None:
    """Write the on-disk copy of ``record``'s module, and of parents that have none yet
    (a module that has just become a package moves to ``NAME/__init__.py``); note what
    was moved aside for it (``force``), and warn of another notebook's copy replaced."""
    record.moved_aside = ()
    for store in finder.stores:  # a copy left in another place is one a new kernel imports
        if store is not record.version.store:
            store.forget(record.name)
    if record.version.store is None:
        return
    parts = record.name.split(".")
    moved: list[tuple[str, str]] = []
    try:
        for depth in range(1, len(parts) + 1):
            parent = finder.get(".".join(parts[:depth]))
            if parent is None or parent.version.store is not record.version.store:
                continue
            path = parent.version.path  # a path: the same store as record's
            if parent is record or (path is not None and not os.path.exists(path)):
                saved = parent.version.save(force=force)
                moved += saved.moved
                if saved.replaced is not None:
                    _warn_replaced(parent.name, record.version.store, saved.replaced)
    except StoreError as exc:
        msg = f"{exc}; module {record.name!r} works in this process only"
        warn(msg, RuntimeWarning)  # at the user's cell, each time
    record.moved_aside = tuple(moved)


def _warn_replaced(name: str, store: CellStore, writer: Writer) -> None:
    running = "still running" if writer.is_running() else "gone"
    msg = (
        f"the copy of {name!r} in {store.directory} that {writer.describe()} wrote (that "
        f"kernel is {running}) is replaced by this one"
    )
    warn(msg, RuntimeWarning)


def _publish(finder: CellModuleFinder, names: list[str]) -> None:
    """Tell worker processes (:mod:`ipyexecmod.workers`) that modules ``names`` have new
    versions, and of their parent packages that they do not know yet or know elsewhere
    (one restored from a lasting directory, given a copy in the private one)."""
    board = kernel_board()
    if board is None:
        return
    entries: dict[str, tuple[str | None, bool]] = {}
    for name in names:
        parts = name.split(".")
        for depth in range(1, len(parts) + 1):
            prefix = ".".join(parts[:depth])
            record = finder.get(prefix)
            if record is None:
                continue
            entry = (_origin(record.version), record.version.is_package)
            known = board.entries.get(prefix)
            if prefix == name or known is None or known[1:] != entry:  # new, or moved
                entries[prefix] = entry
    board.publish(entries)


def _origin(version: Version) -> str | None:
    """The on-disk copy of ``version``, if it has one that holds it."""
    if version.store is None or version.path is None:
        return None  # memory only
    if not version.store.holds(version.path, version.encoded):
        return None  # the copy could not be written: other processes cannot have it
    return version.path


# -- undo steps --


def _restore_namespace(namespace: dict[str, Any], saved: dict[str, Any]) -> None:
    namespace.clear()
    namespace.update(saved)


def _put_back_item(mapping: dict[str, Any], key: str, value: object) -> None:
    if value is None:
        mapping.pop(key, None)
    else:
        mapping[key] = value


def _set_version(record: CellModule, version: Version) -> None:
    record.version = version


def _set_history(record: CellModule, version: Version, redefinitions: int) -> None:
    record.version, record.redefinitions = version, redefinitions


def _put_back_module(
    name: str,
    previous: ModuleType | None,
    parent: ModuleType | None,
    child: str,
    previous_attribute: object,
) -> None:
    if previous is None:
        sys.modules.pop(name, None)
    else:
        sys.modules[name] = previous
    if parent is not None:
        if previous_attribute is _MISSING:
            vars(parent).pop(child, None)
        else:
            setattr(parent, child, previous_attribute)
