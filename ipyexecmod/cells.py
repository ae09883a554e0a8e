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
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import itertools
import keyword
import linecache
import os
import signal
import sys
import threading
import unicodedata
import warnings
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec
from importlib.util import module_from_spec
from types import CodeType, ModuleType
from typing import Any, cast

from .execmodule import exec_code_module_object
from .loader import SourceTextLoader
from .store import CellStore, StoreError

__all__ = [
    "CellModule",
    "CellModuleFinder",
    "DefinitionError",
    "check_module_name",
    "define",
    "finder",
]

_MISSING = object()
_NOT_FOUND = "Loaded module {!r} not found in sys.modules"  # the exec-code core's message


class DefinitionError(ValueError):
    """A definition refused before any code ran; nothing was changed.

    ``forceable`` is true when ``force=True`` (``--force``) would define it anyway.
    """

    def __init__(self, message: str, *, forceable: bool = False) -> None:
        super().__init__(message)
        self.forceable = forceable


def check_module_name(name: str) -> None:
    """Raise :class:`DefinitionError` naming the bad part unless ``name`` is a dotted module name.

    Each part must be an identifier, not a keyword, and in NFKC form (Python
    normalizes identifiers, so ``import ﬁle`` imports ``file``).
    """
    if not isinstance(name, str):
        msg = f"a module name must be a str, not {type(name).__name__}"
        raise TypeError(msg)
    if not name:
        msg = "a module name is required"
        raise DefinitionError(msg)
    for part in name.split("."):
        if not part:
            problem = "has an empty part (a leading, trailing or doubled dot)"
        elif not part.isidentifier():
            problem = f"has a part {part!r} that is not a Python identifier"
        elif keyword.iskeyword(part):
            problem = f"has a part {part!r} that is a Python keyword"
        elif (normal := unicodedata.normalize("NFKC", part)) != part:
            problem = f"has a part {part!r} that Python would import as {normal!r}"
        else:
            continue
        msg = f"{name!r} is not a valid module name: it {problem}"
        raise DefinitionError(msg)


class _Definition:
    """A definition in progress, shared by the definitions nested in it."""

    def __init__(self) -> None:
        self.thread = threading.get_ident()
        self._running = threading.Lock()  # held until the definition has ended
        self._running.acquire()
        self.failed = False
        #: The names given a new module object: if the definition fails, an import
        #: that waited for it holds a module thrown away.
        self.fresh: set[str] = set()

    def wait(self) -> None:
        """Return once the definition has ended."""
        with self._running:
            pass

    def end(self, *, failed: bool) -> None:
        self.failed = failed
        self._running.release()


#: The definition now changing each module name; imports of the name in other threads
#: wait for it (see :class:`_CellSpec`).
_in_progress: dict[str, _Definition] = {}


class _CellSpec(ModuleSpec):
    """The spec of a cell module, whose ``_initializing`` flag makes imports wait.

    CPython's import statement, finding a module in :data:`sys.modules`, reads
    ``module.__spec__._initializing``; if it is true, the module is still being
    imported, and the import waits on the module's lock.  Here the flag is true
    for the thread that is defining the module (so a circular import in its code
    gets CPython's "partially initialized module" message), and reading it from
    any other thread waits until the definition has ended.
    """

    _importing = False  # the flag as importlib sets it when it imports this spec itself

    def __repr__(self) -> str:  # a ModuleSpec to its readers
        text = super().__repr__()
        return "ModuleSpec" + text[text.index("(") :]

    @property
    def _initializing(self) -> bool:
        if self._importing:
            return True
        name = self.name
        # ``in`` and the return that follows give no other thread a chance to start a
        # definition in between: the import binds what it sees before one can.
        while name in _in_progress:
            definition = _in_progress.get(name)
            if definition is None:
                continue
            if definition.thread == threading.get_ident():
                return True
            definition.wait()
            if definition.failed and name in definition.fresh:
                # Python 3.13 raises this from the import; 3.11 and 3.12 ignore it and
                # return the module, which is a _Discarded one: using it raises the same.
                raise ImportError(_discarded_message(name), name=name)
        return False

    @_initializing.setter
    def _initializing(self, value: bool) -> None:
        self._importing = value


class _Discarded(ModuleType):
    """The class given to a module whose first definition failed.

    Another thread may have got hold of it while it was being defined; using it
    raises an ImportError that says what happened.  Its namespace stays as it
    was, for any function of it that is still referenced.
    """

    def __getattribute__(self, attribute: str) -> Any:
        if attribute.startswith("__") and attribute.endswith("__"):
            return super().__getattribute__(attribute)
        name = super().__getattribute__("__name__")
        raise ImportError(_discarded_message(name), name=name)


def _discarded_message(name: str) -> str:
    return (
        f"cannot import {name!r}: its definition failed in another thread while this "
        f"import waited for it, so the module it found is gone; import it again"
    )


class _Transaction:
    """The steps that undo a definition, and the ones to take once it has committed."""

    def __init__(self, definition: _Definition) -> None:
        self.definition = definition
        self.undo: list[Callable[[], object]] = []
        self.after: list[Callable[[], object]] = []

    def claim(self, name: str, *, fresh: bool = False) -> None:
        """Make imports of ``name`` in other threads wait until the definition has ended."""
        _in_progress[name] = self.definition
        if fresh:
            self.definition.fresh.add(name)


@contextlib.contextmanager
def _interrupts_held() -> Iterator[None]:
    """Hold back Ctrl-C (SIGINT) while the block runs, and deliver it after.

    So that an interrupt cannot stop an undo half way.  Only the main thread
    receives signals, and only it can change their handlers.
    """
    handler = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or not callable(handler):
        yield
        return
    held: list[Any] = []
    signal.signal(signal.SIGINT, lambda signum, frame: held.append(frame))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, handler)
        if held:
            handler(signal.SIGINT, held[0])


@dataclass(eq=False)
class CellModule:
    """What the finder knows of one cell module."""

    name: str
    loader: SourceTextLoader
    #: The execution count (``In[N]``) of the cell that defined the current version.
    defined_in: int | None = None
    #: Successful definitions after the first one.
    redefinitions: int = 0
    #: A parent package created for a dotted name, with no cell of its own.
    implicit: bool = False
    #: Where its on-disk copy is, if it has one.
    store: CellStore | None = None

    @property
    def is_package(self) -> bool:
        return self.loader.is_package(self.name)

    def spec(self) -> ModuleSpec:
        return _spec(self.name, self.loader, self.store)


class CellModuleFinder(MetaPathFinder):
    """The registry of cell modules, and the :data:`sys.meta_path` finder that serves them."""

    def __init__(self) -> None:
        self._modules: dict[str, CellModule] = {}
        self._serial = itertools.count(1)
        #: The directories of on-disk copies; modules imported from them count as ours.
        self.stores: list[CellStore] = []
        #: Called with the name of each module just defined or redefined, once its code
        #: has run (before :meth:`define` returns); what one raises becomes a warning.
        self.listeners: list[Callable[[str], object]] = []
        # Definitions run one at a time; a cell module's code may define another.
        self._lock = threading.RLock()
        self._open: list[_Transaction] = []  # the definitions under way, outermost first

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {len(self._modules)} cell modules>"

    # -- the finder protocol --

    def find_spec(
        self, fullname: str, path: Any = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        record = self._modules.get(fullname)
        return None if record is None else record.spec()

    def invalidate_caches(self) -> None:
        """Nothing to invalidate: the finder holds no view of the file system."""

    def install(self) -> None:
        """Put this finder first on :data:`sys.meta_path`, exactly once."""
        sys.meta_path[:] = [self] + [f for f in sys.meta_path if not _is_cell_finder(f)]

    def uninstall(self) -> None:
        """Take this finder off :data:`sys.meta_path`; cell modules already imported stay."""
        sys.meta_path[:] = [f for f in sys.meta_path if not _is_cell_finder(f)]

    # -- the registry --

    def __contains__(self, name: object) -> bool:
        return name in self._modules

    def get(self, name: str) -> CellModule | None:
        return self._modules.get(name)

    def records(self) -> list[CellModule]:
        """Every cell module this finder knows, in the order they were first defined
        (so a module comes after the cell modules its first version imported)."""
        return list(self._modules.values())

    def owns(self, module: object) -> bool:
        """Whether ``module`` is the current incarnation of a cell module."""
        record = self._modules.get(getattr(module, "__name__", None))  # type: ignore[arg-type]
        spec = getattr(module, "__spec__", None)
        return record is not None and getattr(spec, "loader", None) is record.loader

    def is_restored(self, module: object) -> bool:
        """Whether ``module`` was imported from an on-disk copy, by another finder."""
        path = getattr(module, "__file__", None)
        return not self.owns(module) and any(store.owns_path(path) for store in self.stores)

    def add_store(self, store: CellStore) -> None:
        """Count the modules in ``store`` as ours, put it on :data:`sys.path`, and rewrite
        any of its ``.pyc`` files that Python would not load as it should."""
        if store not in self.stores:
            self.stores.append(store)
            store.repair()
        store.install()

    def _ours(self, module: object) -> bool:
        return self.owns(module) or self.is_restored(module)

    # -- definitions --

    def define(
        self,
        name: str,
        source: str,
        *,
        force: bool = False,
        defined_in: int | None = None,
        store: CellStore | None = None,
        restore_lines: Callable[[Callable[[], None]], object] | None = None,
        on_commit: Callable[[], object] | None = None,
    ) -> ModuleType:
        """Make ``source`` the code of module ``name`` and execute it; return the module.

        A new module is created, with any missing parent packages; an existing
        cell module is updated in place (the same object, as a reload does), so
        every importer sees the new code.  With a ``store``, the module's code,
        ``__file__`` and ``__cached__`` name its on-disk copy, which is written
        once the code has run.

        ``restore_lines`` is given a callable that puts the previous version's
        lines back in linecache after a failed redefinition (by default it is
        called at once); IPython calls it after it has shown the traceback,
        whose lines are the failed version's.  ``on_commit`` is called once the
        definition has succeeded, and so has any definition it is part of (a
        cell module's code may define another).

        Raises
        ------
        DefinitionError
            A bad name, a name used or importable by something else (unless
            ``force``), or a parent that is not a package.  Nothing changed.
        SyntaxError
            The source does not compile.  Nothing changed.
        BaseException
            Whatever the code raised.  The previous version (same object, same
            namespace) is back in ``sys.modules``; a first definition leaves no
            module, and no parent created for it, behind.

        Warns
        -----
        RuntimeWarning
            The on-disk copy could not be written; the module works in this process.
        """
        __tracebackhide__ = True
        check_module_name(name)
        if not isinstance(source, str):
            msg = f"source must be a str, not {type(source).__name__}"
            raise TypeError(msg)
        with self._lock:
            if store is not None:
                self.add_store(store)
            if not force:
                self._check_available(name)
            record = self._modules.get(name)
            old_loader = None if record is None else record.loader
            is_package = old_loader is not None and old_loader.is_package(name)
            loader = SourceTextLoader(
                name, source, self._filename(name, is_package, store), is_package=is_package
            )
            with self._transaction() as transaction:
                if old_loader is not None and old_loader.filename == loader.filename:
                    transaction.undo.append(
                        lambda: (restore_lines or _call)(old_loader.register_lines)
                    )
                else:
                    transaction.undo.append(lambda: _forget_lines_when_unused(loader))
                self._ensure_parents(name, transaction, store)
                module = self._execute(name, loader, transaction, store)
                record = self._commit(name, loader, defined_in, store, transaction)
                if old_loader is not None and old_loader.filename != loader.filename:
                    transaction.after.append(lambda: _forget_lines_when_unused(old_loader))
                transaction.after.append(lambda: self._write(record))
                transaction.after.append(lambda: self._notify(name))
                if on_commit is not None:
                    transaction.after.append(on_commit)
        return module

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[_Transaction]:
        """Run a definition: undo it if it raises, else take its steps for after the commit.

        Imports of the names it claims wait until it has ended.  One nested in a
        definition under way (a cell module's code defining another) joins it: its
        undo steps and later steps are the outer one's, and it ends with it.
        """
        __tracebackhide__ = True
        outer = self._open[-1] if self._open else None
        transaction = _Transaction(_Definition() if outer is None else outer.definition)
        installed = outer is None and self in sys.meta_path
        if outer is None:  # a failed cell changes neither, whatever its code did to them
            paths = sys.path, list(sys.path), sys.meta_path, list(sys.meta_path)
            transaction.undo.append(lambda: _put_back_paths(*paths))
        self._open.append(transaction)
        try:
            yield transaction
        except BaseException:
            with _interrupts_held():
                self._open.pop()
                for step in reversed(transaction.undo):
                    step()
                if outer is None:
                    self._end(transaction.definition, failed=True)
            raise
        self._open.pop()
        if outer is not None:
            outer.undo.extend(transaction.undo)
            outer.after.extend(transaction.after)
            return
        self._end(transaction.definition, failed=False)
        if installed and self not in sys.meta_path:  # the code took this finder away
            self.install()
        for step in transaction.after:
            step()

    def _end(self, definition: _Definition, *, failed: bool) -> None:
        for name in [name for name, d in _in_progress.items() if d is definition]:
            del _in_progress[name]
        definition.end(failed=failed)

    def _commit(
        self,
        name: str,
        loader: SourceTextLoader,
        defined_in: int | None,
        store: CellStore | None,
        transaction: _Transaction,
    ) -> CellModule:
        """Record the new version of ``name`` in the registry (undoably)."""
        record = self._modules.get(name)
        if record is None or record.implicit:
            transaction.undo.append(lambda: _put_back_item(self._modules, name, record))
            new = self._modules[name] = CellModule(name, loader, defined_in, store=store)
            return new
        fields = record.loader, record.defined_in, record.store, record.redefinitions
        transaction.undo.append(lambda: _set_fields(record, fields))
        _set_fields(record, (loader, defined_in, store, record.redefinitions + 1))
        return record

    def _notify(self, name: str) -> None:
        for listener in list(self.listeners):
            try:
                listener(name)
            except Exception as exc:
                msg = f"module {name!r} is defined, but {listener!r} failed: {exc}"
                warnings.warn(msg, RuntimeWarning, stacklevel=5)

    def _filename(self, name: str, is_package: bool, store: CellStore | None) -> str:
        """The code's filename: the on-disk copy's path, or a name unique to this version."""
        if store is not None:
            return store.source_path(name, is_package)
        return f"ipyexecmod:{name}@{next(self._serial)}"

    def _write(self, record: CellModule) -> None:
        """Write the on-disk copy of ``record``'s module, and of parents that have none yet
        (a module that has just become a package moves to ``NAME/__init__.py``)."""
        if record.store is None:
            return
        parts = record.name.split(".")
        try:
            for depth in range(1, len(parts) + 1):
                parent = self._modules.get(".".join(parts[:depth]))
                if parent is None or parent.store is not record.store:
                    continue
                if parent is record or not os.path.exists(parent.loader.filename):
                    loader = parent.loader
                    record.store.write(
                        parent.name,
                        loader.source,
                        loader.get_code(parent.name),
                        is_package=parent.is_package,
                    )
        except StoreError as exc:
            msg = f"{exc}; module {record.name!r} works in this process only"
            warnings.warn(msg, RuntimeWarning, stacklevel=3)

    def reload(self, name: str) -> ModuleType:
        """Re-execute cell module ``name``'s latest source in the same object, as a transaction."""
        __tracebackhide__ = True
        with self._lock:
            record = self._modules[name]
            with self._transaction() as transaction:
                return self._execute(name, record.loader, transaction, record.store)

    def _check_available(self, name: str) -> None:
        """Refuse a name, or a missing parent, that belongs to something else."""
        module = sys.modules.get(name)
        if module is not None:
            if self._ours(module):
                return
            origin = module_origin(module)
            where = f"from {origin!r}" if origin else "with no file"
            msg = (
                f"{name!r} is already imported, {where}, and ipyexecmod "
                f"did not create it: defining it would replace it for all code in this "
                f"process; choose another name"
            )
            raise DefinitionError(msg, forceable=True)
        parts = name.split(".")
        path = None
        for depth in range(1, len(parts) + 1):
            prefix = ".".join(parts[:depth])
            module = sys.modules.get(prefix)
            if prefix in self._modules or (module is not None and self._ours(module)):
                return  # ours: below it, nothing else can import anything
            if module is not None:
                path = getattr(module, "__path__", None)
                if path is None:
                    return  # not a package: _ensure_parents says so
                continue
            spec = self._foreign_spec(prefix, path)
            if spec is not None and not any(s.owns_path(spec.origin) for s in self.stores):
                origin = spec.origin or "elsewhere"
                if spec.origin is None and spec.submodule_search_locations:
                    directories = ", ".join(spec.submodule_search_locations)
                    origin = f"{directories} (a namespace package: a directory without __init__.py)"
                if prefix == name:
                    problem = f"it can be imported from {origin} and a cell module would hide it"
                    hint = "choose another name"
                elif spec.submodule_search_locations is None:
                    problem = f"its parent {prefix!r} (from {origin}) is a module, not a package"
                    hint = "choose another name"
                else:
                    problem = (
                        f"its parent {prefix!r} can be imported from {origin} and a cell "
                        f"module would hide it"
                    )
                    hint = f"import {prefix!r} first"
                msg = f"cannot define {name!r}: {problem}; {hint}"
                raise DefinitionError(msg, forceable=True)
            return  # made in memory: below it, nothing else can import anything

    def hides(self, top: str) -> str | None:
        """Where the module that top-level name ``top`` would be without ipyexecmod comes
        from (a cell module defined with ``force``), or ``None`` if nothing else has it."""
        ours = {store.directory for store in self.stores}
        path = [entry for entry in sys.path if os.path.abspath(entry or ".") not in ours]
        spec = self._foreign_spec(top, path)
        return None if spec is None else spec.origin or "elsewhere"

    def _foreign_spec(self, name: str, path: Any) -> ModuleSpec | None:
        """The spec another meta-path finder has for ``name``, found without importing."""
        for other in sys.meta_path:
            find_spec = getattr(other, "find_spec", None)
            if other is self or find_spec is None:
                continue
            spec: ModuleSpec | None = find_spec(name, path)
            if spec is not None:
                return spec
        return None

    def _ensure_parents(
        self, name: str, transaction: _Transaction, store: CellStore | None
    ) -> None:
        """Create the missing parent packages of ``name``; make a cell-module parent a package."""
        parts = name.split(".")
        for depth in range(1, len(parts)):
            prefix = ".".join(parts[:depth])
            record = self._modules.get(prefix)
            module = sys.modules.get(prefix)
            if module is None and record is not None:
                # Ours, dropped from sys.modules (%reset --aggressive): import re-creates it.
                module = importlib.import_module(prefix)
            if module is None:
                self._create_package(prefix, transaction, store)
            elif record is not None and self.owns(module):
                if not record.is_package:
                    self._make_package(record, module, transaction)
            elif not hasattr(module, "__path__"):
                msg = (
                    f"cannot define {name!r}: {prefix!r} is a module, not a package, "
                    f"so it cannot have submodules; choose another name"
                )
                raise DefinitionError(msg)

    def _create_package(
        self, name: str, transaction: _Transaction, store: CellStore | None
    ) -> None:
        loader = SourceTextLoader(name, "", self._filename(name, True, store), is_package=True)
        transaction.undo.append(lambda: self._modules.pop(name, None))
        transaction.undo.append(lambda: _forget_lines_when_unused(loader))
        self._modules[name] = CellModule(name, loader, implicit=True, store=store)
        self._execute(name, loader, transaction, store)

    def _make_package(
        self, record: CellModule, module: ModuleType, transaction: _Transaction
    ) -> None:
        """Turn a cell module into a package, as a ``.py`` file becomes ``__init__.py``."""
        transaction.claim(record.name)
        old_loader, namespace = record.loader, vars(module)
        saved = dict(namespace)
        filename = old_loader.filename
        if record.store is not None:  # spam.py becomes spam/__init__.py
            filename = record.store.source_path(record.name, is_package=True)
        transaction.undo.append(lambda: _restore(namespace, saved))
        transaction.undo.append(lambda: setattr(record, "loader", old_loader))
        record.loader = SourceTextLoader(
            record.name,
            old_loader.source,
            filename,
            is_package=True,
            code=old_loader.get_code(record.name) if filename == old_loader.filename else None,
        )
        module.__spec__ = record.spec()
        module.__loader__ = record.loader
        module.__path__ = []
        module.__package__ = record.name
        namespace["__file__"], namespace["__cached__"] = filename, module.__spec__.cached

    def _execute(
        self,
        name: str,
        loader: SourceTextLoader,
        transaction: _Transaction,
        store: CellStore | None,
    ) -> ModuleType:
        """Run ``loader``'s code as module ``name`` through the exec-code core.

        A cell module's existing object is reused; anything else in its place
        (a forced name) is replaced by a new module.  ``transaction`` gets the
        steps that put everything back as it was.
        """
        __tracebackhide__ = True
        spec = _spec(name, loader, store)
        previous = sys.modules.get(name)
        parent_name, _, child = name.rpartition(".")
        parent = sys.modules.get(parent_name) if parent_name else None
        previous_attribute = getattr(parent, child, _MISSING)
        undo = transaction.undo
        undo.append(lambda: _put_back(name, previous, parent, child, previous_attribute))
        record = self._modules.get(name)
        if previous is not None and self._ours(previous):
            transaction.claim(name)
            namespace = vars(previous)
            saved = dict(namespace)
            undo.append(lambda: _restore(namespace, saved))
            if record is not None:
                old_loader = record.loader
                undo.append(lambda: setattr(record, "loader", old_loader))
                record.loader = loader
            # The loader goes on the module first: the core's fix-up keeps it, and the spec.
            previous.__spec__, previous.__loader__ = spec, loader
        else:
            transaction.claim(name, fresh=True)
            created = sys.modules[name] = module_from_spec(spec)
            undo.append(lambda: setattr(created, "__class__", _Discarded))
        target = sys.modules[name]
        try:
            module: ModuleType = exec_code_module_object(
                name, loader.get_code(name), loader.filename, spec.cached
            )
        except ImportError as exc:
            if name in sys.modules or str(exc) != _NOT_FOUND.format(name):
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


def _spec(name: str, loader: SourceTextLoader, store: CellStore | None) -> ModuleSpec:
    """A spec like a file's: ``origin`` (and so ``__file__``) is the code's filename.

    With an on-disk copy, ``cached`` (``__cached__``) is its ``.pyc``.
    """
    spec = _CellSpec(name, loader, origin=loader.filename, is_package=loader.is_package(name))
    spec.has_location = True
    if store is not None:
        spec.cached = importlib.util.cache_from_source(loader.filename)
    return spec


def _call(function: Callable[[], None]) -> None:
    function()


def _is_cell_finder(finder: object) -> bool:
    # By class name and module, so that a finder left by a reloaded ipyexecmod.cells counts too.
    cls = type(finder)
    return cls.__name__ == CellModuleFinder.__name__ and cls.__module__ == __name__


def module_origin(module: object) -> str:
    """Where ``module`` comes from: its file, else its spec's origin (``built-in``), else ``""``.

    A frozen standard module (``os`` since 3.11) has a ``__file__`` but the origin ``frozen``.
    """
    spec = getattr(module, "__spec__", None)
    origin = getattr(spec, "origin", None)
    if not getattr(spec, "has_location", False):
        origin = getattr(module, "__file__", None) or origin
    return str(origin) if origin else ""


def _restore(namespace: dict[str, Any], saved: dict[str, Any]) -> None:
    namespace.clear()
    namespace.update(saved)


def _put_back_item(mapping: dict[str, Any], key: str, value: object) -> None:
    if value is None:
        mapping.pop(key, None)
    else:
        mapping[key] = value


def _set_fields(record: CellModule, fields: tuple[Any, ...]) -> None:
    record.loader, record.defined_in, record.store, record.redefinitions = fields


def _put_back_paths(
    path: list[str], path_items: list[str], meta_path: list[Any], meta_path_items: list[Any]
) -> None:
    """Make :data:`sys.path` and :data:`sys.meta_path` the lists they were, as they were."""
    sys.path, sys.meta_path = path, meta_path
    if path != path_items:
        path[:] = path_items
    if meta_path != meta_path_items:
        meta_path[:] = meta_path_items


def _put_back(
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


# -- source lines of replaced versions ---------------------------------------------

# The weak references that keep each replaced version's lines in linecache.
_line_keepers: dict[str, set[weakref.ref[CodeType]]] = {}


def _code_tree(code: CodeType) -> list[CodeType]:
    """``code`` and the code objects nested in it (functions, classes, comprehensions)."""
    tree, pending = [], [code]
    while pending:
        code = pending.pop()
        tree.append(code)
        pending.extend(const for const in code.co_consts if type(const) is CodeType)
    return tree


def _forget_lines_when_unused(loader: SourceTextLoader) -> None:
    """Drop ``loader``'s lines from linecache once no code compiled from them is alive.

    Functions of a replaced version may live on (in a list, in a traceback)
    and still need their lines; when the last of them is gone, so are the lines,
    and redefining a module many times does not pile them up.
    """
    filename = loader.filename
    keepers: set[weakref.ref[CodeType]] = set()

    def release(ref: weakref.ref[CodeType]) -> None:
        keepers.discard(ref)
        if not keepers and _line_keepers.get(filename) is keepers:
            del _line_keepers[filename]
            linecache.cache.pop(filename, None)

    keepers.update(
        [weakref.ref(code, release) for code in _code_tree(loader.get_code(loader.name))]
    )
    _line_keepers[filename] = keepers


#: The process's cell modules; :func:`define` installs it on :data:`sys.meta_path`.  If this
#: module is imported anew (``%reset --aggressive`` drops it from sys.modules), the finder
#: already installed is kept, with every cell module it knows.
finder: CellModuleFinder = next(
    (cast(CellModuleFinder, f) for f in sys.meta_path if _is_cell_finder(f)), CellModuleFinder()
)


def define(name: str, source: str, **options: Any) -> ModuleType:
    """Define (or redefine) cell module ``name`` from ``source``: :meth:`CellModuleFinder.define`
    on the process's :data:`finder`, which is put on :data:`sys.meta_path` if it is not there."""
    __tracebackhide__ = True
    if finder not in sys.meta_path:
        finder.install()
    return finder.define(name, source, **options)
