# SPDX-License-Identifier: MIT
"""The steps of a definition: parents, execution, commit (the on-disk copy: :mod:`.copies`).

Each step that changes something registers, on the definition's
:class:`~.transaction.Transaction`, the named step that undoes it.
"""

from __future__ import annotations

import importlib
import sys
from importlib.util import module_from_spec
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypedDict

from ..execmodule import NOT_FOUND, exec_code_module_object
from ..loader import forget_lines_when_unused
from ..store import CellStore, MemoryOnly, kernel_board
from ..workers.catchup import from_kernel
from . import copies
from .dependents import Rerun, dependents
from .history import History
from .locks import Discarded
from .names import DefinitionError, check_available, check_module_name
from .transaction import Transaction
from .version import CellFile, CellModule, Replacement, Version

if TYPE_CHECKING:
    from .registry import CellModuleFinder

__all__ = ["Options", "define", "reload"]

_MISSING = object()


class Options(TypedDict, total=False):
    """The options of a definition (see :meth:`CellModuleFinder.define`)."""

    force: bool
    defined_in: int | None
    store: CellStore | MemoryOnly | None
    rerun_dependents: bool
    how: str
    cause: str
    cell: CellFile | None


def define(
    finder: CellModuleFinder,
    name: str,
    source: str,
    *,
    force: bool = False,
    defined_in: int | None = None,
    store: CellStore | MemoryOnly | None = None,
    rerun_dependents: bool = True,
    how: str | None = None,
    cause: str = "",
    cell: CellFile | None = None,
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
        copies.refuse_leaving(finder, name, store)
        if not force:
            problem = None if copy is None else copy.refusal(name, is_package)
            if problem is not None:
                raise DefinitionError(problem.problem, forceable=True, hint=problem.force)
            check_available(finder, name)
        version = _next_version(old, name, source, copy, defined_in, is_package, cell)
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
            if how is None:
                how = "define" if defined_in is None else "cell"
            _add_version(steps, record, how, defined_in, cause)
            _rerun(finder, steps, record, reruns, defined_in)
            if old is not None and fresh:
                steps.after(forget_lines_when_unused, old.loader)
            if fresh and version.cell is not None:
                # Put back while its code lives if linecache is cleared: IPython does not
                # put back a cell's lines, and the loader's source lacks the cell's lead.
                steps.after(forget_lines_when_unused, version.loader)
            steps.commit(copies.save, finder, record, force)
            steps.commit(copies.publish, finder, [name, *(rerun.name for rerun in reruns)])
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
    cell: CellFile | None,
) -> Version:
    """The version ``source`` makes of module ``name`` (from ``cell``, if given); the same
    source in the same place runs the code compiled before (a cell run again unchanged
    compiles nothing), unless its code is not named after a cell of the same text: a
    breakpoint set in this cell would miss it."""
    if (
        old is not None
        and old.source == source
        and old.store is store
        and (cell is None or (old.cell is not None and old.cell.lead == cell.lead))
    ):
        return old.again(defined_in)
    return Version.compile(
        name, source, is_package=is_package, store=store, defined_in=defined_in, cell=cell
    )


def reload(
    finder: CellModuleFinder,
    name: str,
    *,
    rerun_dependents: bool = True,
    defined_in: int | None = None,
) -> ModuleType:
    """Re-execute cell module ``name``'s latest version in the same object, and its
    dependents after it, as one transaction."""
    __tracebackhide__ = True
    with finder.lock:
        record = finder.modules[name]
        with _transaction(finder) as steps:
            reruns = _plan_reruns(finder, steps, record.version) if rerun_dependents else []
            module = _execute(finder, steps, record.version)
            _add_version(steps, record, "reload", defined_in)
            _rerun(finder, steps, record, reruns, defined_in)
            steps.commit(copies.publish, finder, [name, *(rerun.name for rerun in reruns)])
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
    finder: CellModuleFinder,
    steps: Transaction,
    record: CellModule,
    reruns: list[Rerun],
    defined_in: int | None,
) -> None:
    """Run the dependents in ``reruns`` again, in order, from their latest versions; what
    one raises gets a note that says which module failed and why it ran again."""
    __tracebackhide__ = True
    steps.undo(setattr, record, "reran", record.reran)
    record.reran = tuple(reruns)
    for rerun in reruns:
        dependent = finder.modules[rerun.name]
        try:
            _execute(finder, steps, dependent.version)
        except BaseException as exc:
            exc.add_note(
                f"ipyexecmod: this was raised by cell module {rerun.name!r}, run again because "
                f"it imports {', '.join(rerun.because)}; {record.name!r} and every module run "
                f"again for it are back as they were"
            )
            raise
        _add_version(steps, dependent, "dependent", defined_in, record.name)


def _add_version(
    steps: Transaction, record: CellModule, how: str, defined_in: int | None, cause: str = ""
) -> None:
    """Add the version that just ran to ``record``'s history, taken back if the
    definition fails."""
    entry = record.history.add(record.version.source, how, defined_in, cause)
    steps.undo(record.history.take_back, entry)


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
        if module is None and (
            record is not None or copies.store_holding(finder, prefix) is not None
        ):
            # Ours, dropped from sys.modules (%reset --aggressive), or a copy of an earlier
            # kernel's: import re-creates it.
            module = importlib.import_module(prefix)
        if record is None and module is not None and finder.is_restored(module):
            record = _adopt(finder, steps, module)
        if record is not None and store is not None:
            copies.refuse_split(name, record, store)
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
        copies.refuse_copy_in(foreign, name)


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
    record = finder.modules[name] = CellModule(version, history=History(finder.history_limit))
    copies.place(record, module, version)
    assert version.path is not None and version.cached is not None  # in a store
    store.take(version.path, version.cached, version.encoded)
    return record


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
    copies.place(record, module, record.version.as_package())


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
        new = finder.modules[name] = CellModule(version, history=History(finder.history_limit))
        return new
    steps.undo(_set_history, record, record.version, record.redefinitions)
    _set_history(record, version, record.redefinitions + 1)
    return record


# -- after the commit --


def _reinstall(finder: CellModuleFinder) -> None:
    if finder not in sys.meta_path:  # the code took this finder away
        finder.install()


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
