# SPDX-License-Identifier: MIT
"""The on-disk files of a cell module, for engines that take files (:func:`files`).

PySpark's ``SparkContext.addPyFile`` takes a ``.py`` or a zip, Modal's
``add_local_python_source`` reads ``importlib.util.find_spec(name).origin``, and
ipyparallel has no shipping at all (one writes the files on the engines).  Each needs the
copies of the module's current version, laid out as on :data:`sys.path`: that is what a
:class:`ModuleFiles` lists, with :meth:`ModuleFiles.archive` for engines that want one file.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import sys
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import overload

from . import cells
from ._files import make_directory, unchanged, write_new
from .cells.copies import origin
from .cells.family import is_cell_module, members
from .cells.version import CellModule
from .store import CellStore, kernel_store

__all__ = ["ModuleFiles", "files"]

#: The folder of the kernel's private directory that default archives go to (a name that
#: cannot be imported: the directory is on sys.path).
ARCHIVES = ".archives"
#: What a module's copy is known by: its record (defined here), the module (restored), or
#: the directory and path of a copy not imported (below a restored package).
_Found = tuple[str, str] | CellModule | ModuleType
#: A zip entry's date: the earliest a zip can hold, so that the same sources give the same bytes.
_EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class ModuleFiles(Sequence[Path]):
    """The source files of cell module :attr:`name`'s current version: the ``__init__.py``
    of each parent package first, then the module's own (a package's ``__init__.py`` and
    every cell module below it), sorted by module name; each is under :attr:`root`."""

    #: The module they are the files of.
    name: str
    #: The directory to put on ``sys.path``, where the files are laid out as packages.
    root: Path
    paths: tuple[Path, ...]

    @overload
    def __getitem__(self, index: int) -> Path: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[Path, ...]: ...
    def __getitem__(self, index: int | slice) -> Path | tuple[Path, ...]:
        return self.paths[index]

    def __len__(self) -> int:
        return len(self.paths)

    def __iter__(self) -> Iterator[Path]:
        return iter(self.paths)

    def archive(self, directory: str | os.PathLike[str] | None = None) -> Path:
        """A zip of the files as they are now, laid out as under :attr:`root` (what
        ``addPyFile`` takes for a package), in ``directory`` (created if missing) or by
        default in a folder of the kernel's private directory, removed when the kernel
        exits; its path.

        It is named ``NAME-HASH.zip`` (``HASH``: 12 hex digits of the zip's sha256), and is
        byte for byte the same for the same sources, so each version has a name of its own.
        A file of that name with those bytes is reused.

        Raises
        ------
        FileExistsError
            A file of that name with other bytes is there (ipyexecmod did not write it);
            it is left as it is.
        OSError
            A file could not be read, or the archive written.
        """
        data = _zip(self.root, self.paths)
        where = _archives() if directory is None else Path(directory)
        if directory is not None:
            where.mkdir(parents=True, exist_ok=True)
        path = where / f"{self.name}-{hashlib.sha256(data).hexdigest()[:12]}.zip"
        if not write_new(str(path), data) and not unchanged(str(path), data):
            msg = (
                f"{path} exists and is not the archive of {self.name!r} that ipyexecmod "
                f"would write there (other bytes): it was left as it is; move it, or give "
                f"another directory"
            )
            raise FileExistsError(msg)
        return path


def files(name: str) -> ModuleFiles:
    """The on-disk files of cell module ``name`` (see :class:`ModuleFiles`).

    Raises
    ------
    TypeError
        ``name`` is not a str.
    ValueError
        ``name`` is not a cell module, or it (or a module below it) is kept in memory only,
        or its copy could not be written.
    """
    if not isinstance(name, str):
        msg = f"files() takes a module name as a str, not {type(name).__name__}"
        raise TypeError(msg)
    finder = cells.finder
    if not is_cell_module(finder, name):
        raise ValueError(_not_a_cell_module(finder, name))
    parts = name.split(".")
    parents = [".".join(parts[:depth]) for depth in range(1, len(parts))]
    found: list[tuple[str, _Found]] = [(p, _parent(finder, name, p)) for p in parents]
    found += sorted(_below(finder, name).items(), key=lambda item: item[0].split("."))
    located = [_located(name, each, record) for each, record in found]
    roots = {root for root, _ in located}
    if len(roots) != 1:
        msg = (
            f"the files of {name!r} are in several directories ({', '.join(sorted(roots))}), "
            f"and an engine imports a package's modules from one: define them all with the "
            f"same persist_dir (or none)"
        )
        raise ValueError(msg)
    return ModuleFiles(name, Path(roots.pop()), tuple(Path(path) for _, path in located))


def _not_a_cell_module(finder: cells.CellModuleFinder, name: str) -> str:
    """Why ``name`` has no files to give: not defined, or a copy not imported yet."""
    dotted = all(part.isidentifier() for part in name.split("."))
    for store in finder.stores if dotted else ():  # only a dotted name makes a path
        if store.lasting and store.wrote(store.copy_of(name)[0]):
            return (
                f"{name!r} has a copy in {store.directory} that this kernel has not "
                f"imported: `import {name}` first (its files are then the version imported)"
            )
    if not dotted:
        return f"{name!r} is not a module name: name a cell module, e.g. files('geo')"
    if name in sys.modules or importlib.util.find_spec(name.partition(".")[0]) is not None:
        hint = "an engine finds an ordinary module's files itself (its __file__)"
        return f"{name!r} is not a cell module: {hint}"
    return f"{name!r} is not a cell module: define it first with %%as_module {name}"


def _parent(finder: cells.CellModuleFinder, name: str, parent: str) -> CellModule | ModuleType:
    """Package ``parent`` of cell module ``name``, a cell module too (it has a copy)."""
    found = members(finder, parent).get(parent)
    if found is None:
        msg = (
            f"cell module {name!r} is in package {parent!r}, which is not a cell module: "
            f"an engine would import {parent!r} from elsewhere; give {name!r} a name of its own"
        )
        raise ValueError(msg)
    return found


def _below(finder: cells.CellModuleFinder, name: str) -> dict[str, _Found]:
    """Module ``name`` and the cell modules below it; for a package restored from a copy,
    the copies of its modules beside it too (``(root, path)``), which a kernel imports
    when asked, as an engine does."""
    found: dict[str, _Found] = {}
    found.update(members(finder, name))
    for each in list(found.values()):
        if isinstance(each, ModuleType) and hasattr(each, "__path__"):
            store = _store_of(each)
            for other in store.module_names():
                if other.startswith(each.__name__ + ".") and other not in found:
                    found[other] = (store.directory, store.copy_of(other)[0])
    return found


def _located(name: str, each: str, found: _Found) -> tuple[str, str]:
    """The directory on sys.path of the copy of module ``each`` (``name`` or a parent or
    a module below it), and the copy's path; ValueError if it has none to give."""
    if isinstance(found, tuple):
        return found
    if isinstance(found, ModuleType):  # restored: its file is the copy
        return _store_of(found).directory, str(found.__file__)
    version = found.version
    if version.store is None:
        which = "it" if each == name else repr(each)
        msg = (
            f"cell module {name!r} has no on-disk copy to give: {which} is kept in memory "
            f"only (defined with --no-persist, or with no store); define {which} again "
            f"without --no-persist to get one"
        )
        raise ValueError(msg)
    path = origin(version)
    if path is None:
        msg = (
            f"cell module {name!r} has no on-disk copy of its current version to give: that "
            f"of {each!r} is missing or holds another version (a warning said why when it "
            f"was written); define {each!r} again to write it"
        )
        raise ValueError(msg)
    return version.store.directory, path


def _store_of(module: ModuleType) -> CellStore:
    """The store that wrote the copy restored ``module`` was imported from."""
    for store in cells.finder.stores:
        if store.wrote(module.__file__):
            return store
    msg = (
        f"the copy of {module.__name__!r} at {module.__file__} was replaced since it was "
        f"imported; `%reload_module {module.__name__}` imports the new one"
    )
    raise ValueError(msg)


def _zip(root: Path, paths: Sequence[Path]) -> bytes:
    """``paths`` in a zip, named relative to ``root``, byte for byte the same for the same
    sources (fixed dates and modes, entries in order)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in paths:
            info = zipfile.ZipInfo(path.relative_to(root).as_posix(), date_time=_EPOCH)
            # Stored, not deflated: the bytes would depend on the zlib of the Python too.
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def _archives() -> Path:
    """The folder of the kernel's private directory for archives, made on first use."""
    directory = os.path.join(kernel_store().directory, ARCHIVES)
    make_directory(directory)
    return Path(directory)
