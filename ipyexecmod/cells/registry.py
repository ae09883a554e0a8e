# SPDX-License-Identifier: MIT
"""The registry of cell modules, and the :data:`sys.meta_path` finder that serves them."""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Callable, Iterable
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any, Unpack

from .._after_import import hooks as after_import
from .._warnings import warn
from ..ownership import Writer
from ..store import CellStore, kernel_board
from . import copies, definition, history, names, stale
from .definition import Options
from .transaction import Transaction
from .version import CellModule, Replacement

__all__ = ["CellModuleFinder", "is_cell_finder"]


class CellModuleFinder:
    """The registry of cell modules, and the :data:`sys.meta_path` finder that serves them.

    A meta-path finder by its methods (``find_spec``, ``invalidate_caches``), without
    deriving from :class:`importlib.abc.MetaPathFinder`: importing :mod:`importlib.abc`
    would cost ``%load_ext`` more than all of this package.
    """

    def __init__(self) -> None:
        self.modules: dict[str, CellModule] = {}
        #: The directories of on-disk copies; modules imported from them count as ours.
        self.stores: list[CellStore] = []
        #: Called with the name of each module just defined or redefined, once its code
        #: has run (before :meth:`define` returns); what one raises becomes a warning.
        self.listeners: list[Callable[[str], object]] = []
        #: Called once a definition has committed, with the cell modules whose code ran
        #: again in their existing object (:class:`Replacement`, in the order they ran),
        #: if any; each one's ``old`` holds what outlived its namespace, and ``earlier``
        #: the classes and functions of its earlier versions still alive.  What one raises
        #: becomes a warning.
        self.replacement_listeners: list[Callable[[list[Replacement]], object]] = []
        #: What the user must be told (:meth:`tell`) and, while ``notices_wait``, is kept
        #: for the next cell.
        self.notices: list[str] = []
        self.notices_wait = False
        # Definitions run one at a time; a cell module's code may define another.
        self.lock = threading.RLock()
        #: The names in sys.modules at the last :meth:`notice_restored`, and its length
        #: and last name then (the same while no module was imported since).
        self._modules_seen: set[str] = set()
        self._modules_mark: tuple[int, str | None] = (0, None)
        self.transactions: list[Transaction] = []  # under way, outermost first
        #: How many versions of each module its history keeps (see :mod:`.history`).
        self._history_limit = history.DEFAULT_LIMIT

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {len(self.modules)} cell modules>"

    # -- the finder protocol --

    def find_spec(
        self, fullname: str, path: Any = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        record = self.modules.get(fullname)
        return None if record is None else record.spec()

    def invalidate_caches(self) -> None:
        """Nothing to invalidate: the finder holds no view of the file system."""

    def install(self) -> None:
        """Put this finder first on :data:`sys.meta_path`, exactly once."""
        sys.meta_path[:] = [self] + [f for f in sys.meta_path if not is_cell_finder(f)]

    def uninstall(self) -> None:
        """Take this finder off :data:`sys.meta_path`; cell modules already imported stay."""
        sys.meta_path[:] = [f for f in sys.meta_path if not is_cell_finder(f)]

    # -- the registry --

    def __contains__(self, name: object) -> bool:
        return name in self.modules

    def get(self, name: str) -> CellModule | None:
        return self.modules.get(name)

    def records(self) -> list[CellModule]:
        """Every cell module this finder knows, in the order they were first defined
        (so a module comes after the cell modules its first version imported)."""
        return list(self.modules.values())

    def owns(self, module: object) -> bool:
        """Whether ``module`` is the current incarnation of a cell module."""
        record = self.modules.get(getattr(module, "__name__", None))  # type: ignore[arg-type]
        spec = getattr(module, "__spec__", None)
        return record is not None and getattr(spec, "loader", None) is record.loader

    def is_restored(self, module: object) -> bool:
        """Whether ``module`` was imported from an on-disk copy, by another finder."""
        path = getattr(module, "__file__", None)
        return not self.owns(module) and any(store.wrote(path) for store in self.stores)

    def writer_of(self, module: object) -> Writer | None:
        """The kernel that wrote ``module``'s copy in a lasting directory, if it has one."""
        path, name = getattr(module, "__file__", None), getattr(module, "__name__", None)
        for store in self.stores:
            if isinstance(name, str) and store.wrote(path):
                return store.writer_of(name)
        return None

    def ours(self, module: object) -> bool:
        """Whether ipyexecmod made ``module``: a cell module, or one restored from a copy."""
        return self.owns(module) or self.is_restored(module)

    def add_store(self, store: CellStore) -> None:
        """Count the modules in ``store`` as ours, put it on :data:`sys.path`, and rewrite
        any of its ``.pyc`` files that Python would not load as it should; warn of those
        of this notebook's that another notebook's kernel has replaced there."""
        if store not in self.stores:
            self.stores.append(store)
            for notice in store.open():
                self.tell(notice)
            board = kernel_board()
            restores = board is not None and store.directory != board.directory
            names = store.module_names() if restores or store.lasting else []
            if board is not None and restores:
                board.restore({name: store.copy_of(name) for name in names})
            for top in dict.fromkeys(name.partition(".")[0] for name in names):
                after_import.call_after(top, functools.partial(self._restored, top))
        store.install()

    def notice_restored(self) -> None:
        """Tell the listeners of each module imported from an on-disk copy by another
        finder (restored) since the last call, as of a definition: Dask ships it, Ray
        pickles it by value.  Called as such a module is imported, and around each cell.

        One ``len()`` while no module was imported since; else a look at the new ones only.
        """
        after_import.keep_waiting()
        modules = sys.modules
        mark = (len(modules), next(reversed(modules), None))  # a module imported is last
        if mark == self._modules_mark:
            return
        new = modules.keys() - self._modules_seen
        self._modules_seen, self._modules_mark = set(modules), mark
        restored = [name for name in new if self.is_restored(modules.get(name))]
        for name in sorted(restored, key=lambda name: name.count(".")):  # parents first
            self.notify(name)

    def _restored(self, top: str) -> None:
        """Top-level module ``top``, of a lasting directory's copies, was just imported."""
        if self.is_restored(sys.modules.get(top)):
            self.notify(top)

    def tell(self, notice: str) -> None:
        """Tell the user ``notice``: as a RuntimeWarning now, or, while
        :attr:`notices_wait` (the magics set it: a kernel that starts has no cell to show
        a warning in), at the next cell (:meth:`take_notices`)."""
        if self.notices_wait:
            self.notices.append(notice)
        else:
            warn(notice, RuntimeWarning)

    def take_notices(self) -> list[str]:
        """The notices kept for the next cell, now given."""
        notices, self.notices = self.notices, []
        return notices

    def rehome(self) -> list[str]:
        """Move each cell module whose copy in a lasting directory another kernel has
        replaced since to this process's private directory, so that its worker processes
        keep running this kernel's version; return what the user must be told of each
        module replaced (:func:`.copies.rehome`)."""
        return copies.rehome(self)

    def hides(self, top: str) -> str | None:
        """Where the module that top-level name ``top`` would be without ipyexecmod comes
        from (a cell module defined with ``force``), or ``None`` if nothing else has it."""
        return names.hides(self, top)

    def hidden(self, tops: Iterable[str]) -> dict[str, str]:
        """Those of top-level names ``tops`` that :meth:`hides`, with where from; faster."""
        return names.hidden(self, tops)

    # -- definitions --

    def define(self, name: str, source: str, **options: Unpack[Options]) -> ModuleType:
        """Make ``source`` the code of module ``name`` and execute it; return the module.

        A new module is created, with any missing parent packages; an existing
        cell module is updated in place (the same object, as a reload does), so
        every importer sees the new code.  With a :class:`~ipyexecmod.store.CellStore`,
        the module's ``__file__`` and ``__cached__`` name its on-disk copy (and its code
        that copy's version, ``PATH@N``: see :mod:`.version`), which is complete once
        the definition commits (before this returns, unless another definition is
        under way in this thread: then when that one does); with
        :class:`~ipyexecmod.store.MemoryOnly`, other processes that import it get
        an ImportError that says why they cannot.  ``defined_in`` is the
        ``In[N]`` of the cell it comes from; with ``cell``
        (:class:`~ipyexecmod.cells.version.CellFile`), the code is named after that cell,
        with its line numbers (a breakpoint set in the cell stops there).  Each module
        whose code ran gets a version in its history (:attr:`CellModule.history`), once
        the definition commits: this one as ``how`` (default ``"cell"`` with
        ``defined_in``, else ``"define"``) and ``cause`` say, its dependents as
        ``"dependent"``.

        Then every cell module that imports it as it runs, directly or through others,
        runs again from its latest version, in the same transaction, each after the
        modules of the set it imports (unless ``rerun_dependents`` is false), so that
        what they took from it is the new version's; the module's record lists them
        (:attr:`CellModule.reran`).  Other threads importing any module of the set wait
        for the whole set.

        Raises
        ------
        DefinitionError
            A bad name, a name used or importable by something else (unless
            ``force``), or a parent that is not a package.  Nothing changed.
        SyntaxError
            The source does not compile.  Nothing changed.
        BaseException
            Whatever the code raised, or the code of a dependent run again (with a
            note that says which and why).  Every module of the set is back as it
            was (same object, same namespace, in ``sys.modules``); a first
            definition leaves no module, and no parent created for it, behind.

        Warns
        -----
        RuntimeWarning
            The on-disk copy could not be written; the module works in this process.
        """
        __tracebackhide__ = True
        return definition.define(self, name, source, **options)

    def reload(
        self, name: str, *, rerun_dependents: bool = True, defined_in: int | None = None
    ) -> ModuleType:
        """Re-execute cell module ``name``'s latest source in the same object, and (unless
        ``rerun_dependents`` is false) its dependents after it, as one transaction; it
        counts as a version in their histories (``defined_in``: the ``In[N]`` asking)."""
        __tracebackhide__ = True
        return definition.reload(
            self, name, rerun_dependents=rerun_dependents, defined_in=defined_in
        )

    @property
    def history_limit(self) -> int:
        """How many versions of each module its history keeps; set, it applies to every
        module at once (the oldest versions over it dropped)."""
        return self._history_limit

    @history_limit.setter
    def history_limit(self, limit: int) -> None:
        self._history_limit = history.checked_limit(limit)
        for record in self.modules.values():
            record.history.limit = limit

    def after_commit(self, function: Callable[..., object], /, *args: Any) -> None:
        """Call ``function(*args)`` once the definition under way in this thread (the
        outermost) has committed, or at once if none is under way; never if it fails."""
        outermost = next(iter(self.transactions), None)  # another thread may pop it
        if outermost is not None and outermost.lock.thread == threading.get_ident():
            self.transactions[-1].after(function, *args)
        else:
            function(*args)

    def notify(self, name: str) -> None:
        """Tell the listeners that ``name`` was (re)defined; a failing one becomes a warning."""
        _tell(self.listeners, name, name)

    def replaced(self, replacements: list[Replacement]) -> None:
        """Remember, weakly, the classes and functions that the modules' code, run again,
        replaced (:mod:`.stale`); tell the replacement listeners, a failing one as a warning."""
        told: list[Replacement] = []
        for each in replacements:
            # Only what outlives the namespace matters, to both: the rest dies with it.
            old = stale.outliving(each.old)
            if old:
                stale.remember_replaced(self, each.name, old)
            earlier = stale.earlier(self, each.name) if self.replacement_listeners else ()
            if old or earlier:  # they hear of the earlier versions' objects too
                told.append(
                    Replacement(each.name, old, each.module, each.before, each.after, earlier)
                )
        if told:
            _tell(self.replacement_listeners, told[0].name, told)


def _tell(listeners: list[Callable[..., object]], name: str, *args: Any) -> None:
    """Call each listener with ``args``; what one raises becomes a warning about ``name``."""
    for listener in list(listeners):
        try:
            listener(*args)
        except Exception as exc:
            msg = f"module {name!r} is defined, but {listener!r} failed: {exc}"
            warn(msg, RuntimeWarning)  # at the user's cell, each time


def is_cell_finder(finder: object) -> bool:
    """Whether ``finder`` is a :class:`CellModuleFinder`, from this module or an earlier
    import of it (``%reset --aggressive`` can make ipyexecmod be imported anew)."""
    cls = type(finder)
    return cls.__name__ == CellModuleFinder.__name__ and cls.__module__ == __name__
