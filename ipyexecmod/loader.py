# SPDX-License-Identifier: MIT
"""A loader for modules whose source text lives in memory rather than in a file."""

from __future__ import annotations

import os
import sys
from types import CodeType, ModuleType

TYPE_CHECKING = False
if TYPE_CHECKING:  # a Loader to type checkers; at run time, no import of importlib.abc
    import weakref
    from importlib.abc import InspectLoader as _Protocol
    from importlib.machinery import ModuleSpec
    from importlib.resources.abc import TraversableResources
    from typing import Any
else:
    _Protocol = object

__all__ = ["SourceTextLoader", "forget_lines_when_unused", "put_back_lines"]


class SourceTextLoader(_Protocol):
    """Loader of module ``fullname`` from source text held in memory.

    It implements the :class:`importlib.abc.InspectLoader` protocol
    (``create_module``, ``exec_module``, ``get_code``, ``get_source``,
    ``is_package``, ``source_to_code``) without deriving from it:
    :mod:`importlib.abc` takes longer to import than all of ipyexecmod.
    So once a finder returns it in a spec,
    :func:`importlib.reload` re-executes the current source and
    :func:`inspect.getsource` and tracebacks show its lines.

    The source is compiled once, when it is given, as a module under
    ``filename`` with ``dont_inherit=True``, so the caller's ``__future__``
    flags do not leak in.  A :class:`SyntaxError` leaves the loader as it was.

    Parameters
    ----------
    fullname
        The module's dotted name; the loader answers for no other.
    source
        The module's source text.
    filename
        The code's ``co_filename``, under which its lines are registered in
        :mod:`linecache`; defaults to ``"<fullname>"``.
    is_package
        Whether the module is a package (has ``__path__``).
    code
        The code object already compiled from ``source`` under ``filename``,
        to avoid compiling twice.
    lead
        The text before ``source`` in the file named ``filename``, in whole lines:
        a notebook cell's first line, ``%%as_module NAME``, when the code is
        named after its cell.  The code's line numbers and the lines registered
        under ``filename`` count it (line N of the code is line N of the cell);
        when the code is gone, what IPython had there is put back (it keeps each
        cell's entry for the session: a cell's lines of ours would pile up).
    """

    def __init__(
        self,
        fullname: str,
        source: str,
        filename: str | None = None,
        *,
        is_package: bool = False,
        code: CodeType | None = None,
        lead: str = "",
    ) -> None:
        if lead and not lead.endswith("\n"):
            msg = f"lead must be whole lines, ending with a newline, not {lead!r}"
            raise ValueError(msg)
        self.name = fullname
        self.filename = f"<{fullname}>" if filename is None else filename
        self.lead = lead
        self._is_package = is_package
        self._source = ""
        self._code: CodeType | None = None
        self._lines: list[str] = []  # the file's: shared by its linecache entries, made once
        self.set_source(source, code)

    def __repr__(self) -> str:
        if self.lead:  # a cell's file: its directory may change at each run (a process id)
            cell = os.path.basename(self.filename)
            return f"<{type(self).__name__} {self.name!r} from cell {cell!r}>"
        return f"<{type(self).__name__} {self.name!r} from {self.filename!r}>"

    @property
    def source(self) -> str:
        """The current source text."""
        return self._source

    def set_source(self, source: str, code: CodeType | None = None) -> None:
        """Make ``source`` the module's source: the next execution or reload runs it.

        Raises :class:`SyntaxError` (and changes nothing) if it does not compile,
        :class:`TypeError` if ``source`` is not a str, and :class:`ValueError` if
        ``code`` was compiled under another filename (tracebacks would miss its lines).
        """
        if not isinstance(source, str):
            msg = f"source must be a str, not {type(source).__name__}; decode it first"
            raise TypeError(msg)
        if code is None and self.lead:
            from ._renumber import compile_after  # only then: most loaders have no lead

            code, _ = compile_after(source, self.lead, self.filename)
        elif code is None:
            code = self.source_to_code(source, self.filename)
        elif code.co_filename != self.filename:
            msg = (
                f"code was compiled under {code.co_filename!r}, not this loader's filename "
                f"{self.filename!r}; compile the source under {self.filename!r}"
            )
            raise ValueError(msg)
        self._source, self._code = source, code
        self._lines = (self.lead + source).splitlines(keepends=True)
        self.register_lines()

    def register_lines(self, filename: str | None = None) -> None:
        """Put the source's lines in :mod:`linecache` under ``filename``, again if they
        were there; by default the code's, :attr:`filename`, with the :attr:`lead`'s lines
        first.

        The entry's mtime is ``None``: :func:`linecache.checkcache` keeps it, even
        when a file of that name exists and differs.
        """
        import linecache  # here: on 3.11 and 3.12 it brings tokenize and re along

        if filename is None or filename == self.filename:
            size, lines, filename = len(self.lead) + len(self._source), self._lines, self.filename
            previous = linecache.cache.get(filename)
            if self.lead and previous is not None and filename not in _cells_own_lines:
                if not any(each is lines for each in previous):  # IPython's: to put back
                    _cells_own_lines[filename] = previous
        else:
            size, lines = len(self._source), self._lines[self.lead.count("\n") :]
        linecache.cache[filename] = (size, None, lines, filename)

    def _check_name(self, fullname: str) -> None:
        if fullname != self.name:
            msg = f"loader for {self.name!r} cannot handle {fullname!r}"
            raise ImportError(msg, name=fullname)

    def is_package(self, fullname: str) -> bool:
        self._check_name(fullname)
        return self._is_package

    def get_source(self, fullname: str) -> str:
        self._check_name(fullname)
        return self._source

    def get_code(self, fullname: str) -> CodeType:
        self._check_name(fullname)
        assert self._code is not None  # set by __init__
        return self._code

    def get_resource_reader(self, fullname: str) -> TraversableResources | None:
        """What :func:`importlib.resources.files` reads a package's resources from: the
        directory that the package's spec names (a cell package's on-disk copy, which a
        worker process that imports the copy reads too); ``None`` for a module, or a
        package with no directory (one kept in memory only)."""
        self._check_name(fullname)
        spec = getattr(sys.modules.get(fullname), "__spec__", None)
        if not self._is_package or spec is None or spec.loader is not self:
            return None
        locations = spec.submodule_search_locations
        if not locations:
            return None
        from ._resources import Directory  # importlib.resources.abc, only when asked

        return Directory(locations[0])

    def create_module(self, spec: ModuleSpec) -> None:
        """``None``: the import system creates the module as it does by default."""
        return None

    def exec_module(self, module: ModuleType) -> None:
        """Execute the code in the module's namespace (what ``importlib.reload`` calls)."""
        exec(self.get_code(module.__name__), module.__dict__)

    @staticmethod
    def source_to_code(data: Any, path: Any = "<string>") -> CodeType:
        """Compile ``data`` as a module, as :meth:`importlib.abc.InspectLoader.source_to_code`."""
        return compile(data, path, "exec", dont_inherit=True)


# Per filename of a replaced version: the weak references to its code that keep its lines
# in linecache, and the linecache entry that holds them.
_line_keepers: dict[str, tuple[list[weakref.ref[CodeType]], tuple[Any, ...]]] = {}
# Per cell (a filename a loader with a lead registered lines under): the linecache entry
# IPython had there, put back when the code compiled from the cell is gone.
_cells_own_lines: dict[str, tuple[Any, ...]] = {}


def _code_tree(code: CodeType) -> list[CodeType]:
    """``code`` and the code objects nested in it (functions, classes, comprehensions)."""
    tree, pending = [], [code]
    while pending:
        code = pending.pop()
        tree.append(code)
        if CodeType in map(type, code.co_consts):  # most nest none: skip them fast
            pending += [const for const in code.co_consts if type(const) is CodeType]
    return tree


def forget_lines_when_unused(loader: SourceTextLoader) -> None:
    """Drop ``loader``'s lines from linecache once no code compiled from them is alive.

    Functions of a replaced version may live on (in a list, in a traceback)
    and still need their lines; when the last of them is gone, so are the lines,
    and replacing a module's source many times does not pile them up.  Until then
    :func:`put_back_lines` puts them back if something cleared them.  Under a cell's
    name (a loader with a :attr:`~SourceTextLoader.lead`), what IPython had there is
    put back instead: it keeps an entry for every cell of the session.
    """
    import linecache
    import weakref  # here: `import ipyexecmod` would take a tenth longer

    filename, cells = loader.filename, bool(loader.lead)
    tree = _code_tree(loader.get_code(loader.name))
    alive = [len(tree)]  # counted, not a set of the references: hashing code is slow

    def release(ref: weakref.ref[CodeType]) -> None:
        alive[0] -= 1
        kept = _line_keepers.get(filename)
        if not alive[0] and kept is not None and kept[0] is keepers:
            del _line_keepers[filename]
            if not cells:
                linecache.cache.pop(filename, None)
                return
            ipythons = _cells_own_lines.pop(filename, None)
            if ipythons is not None and linecache.cache.get(filename) is kept[1]:
                linecache.cache[filename] = ipythons

    keepers = [weakref.ref(code, release) for code in tree]
    loader.register_lines()
    _line_keepers[filename] = keepers, linecache.cache[filename]


def put_back_lines() -> None:
    """Put back in linecache the lines of every replaced version whose code is alive, if
    something took them away or changed them.

    ``linecache.clearcache()`` (a debugger may call it) empties the cache, and linecache
    then asks the module's loader for the lines of a function it meets, which gives the
    latest version's: a replaced version's function would show another's lines.
    """
    import linecache

    cache = linecache.cache
    for filename, (_, entry) in list(_line_keepers.items()):
        if cache.get(filename) is not entry:
            cache[filename] = entry
