# SPDX-License-Identifier: MIT
"""CPython's module-exec C API, in pure Python.

Each public function here follows the C function it is named after, step by
step, as ``Python/import.c`` runs it on the interpreter in use (3.11 to 3.13):

=====================================  ===========================================
ipyexecmod                             C API
=====================================  ===========================================
``exec_code_module``                   ``PyImport_ExecCodeModule``
``exec_code_module_ex``                ``PyImport_ExecCodeModuleEx``
``exec_code_module_object``            ``PyImport_ExecCodeModuleObject``
``exec_code_module_with_pathnames``    ``PyImport_ExecCodeModuleWithPathnames``
``add_module``                         ``PyImport_AddModule``
``add_module_object``                  ``PyImport_AddModuleObject``
``add_module_ref``                     ``PyImport_AddModuleRef`` (C: 3.13+)
``get_magic_number``                   ``PyImport_GetMagicNumber``
``get_magic_tag``                      ``PyImport_GetMagicTag``
``get_module_dict``                    ``PyImport_GetModuleDict``
=====================================  ===========================================

Conventions: ``None`` stands for a NULL argument.  The functions that C
declares with ``const char *`` also take ``bytes``, decoded as C decodes them
(strict UTF-8 for names, the filesystem encoding for paths).  Arguments of the
wrong type raise :class:`TypeError` before anything is touched, where C would
crash or fail half-way; the README lists each such deliberate difference.
"""

from __future__ import annotations

import builtins
import importlib.util
import os
import stat
import sys
from importlib.machinery import SourceFileLoader, SourcelessFileLoader
from types import CodeType, FrameType, ModuleType

from ._arguments import code_object, name_object, name_string, path_object, path_string

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "add_module",
    "add_module_object",
    "add_module_ref",
    "exec_code_module",
    "exec_code_module_ex",
    "exec_code_module_object",
    "exec_code_module_with_pathnames",
    "get_magic_number",
    "get_magic_tag",
    "get_module_dict",
]

# The C API works on the interpreter's own modules dict, not on whatever the
# name ``sys.modules`` is bound to later (gh-126038), so keep the one we start with.
_MODULES: dict[Any, Any] = sys.modules

# PyImport_GetMagicTag() returns a string fixed when CPython was built; later
# changes to sys.implementation.cache_tag do not reach it.
_MAGIC_TAG: str = sys.implementation.cache_tag

# 3.12 changed importlib's _fix_up_module: spec.cached comes from cpathname.
_SPEC_CACHED_FROM_CPATHNAME = sys.version_info >= (3, 12)

_SEPARATORS = os.sep + (os.altsep or "")

# PyModule_GetDict(): the module's own dict, whatever a subclass says its __dict__ is.
_module_dict = vars(ModuleType)["__dict__"].__get__
_OWN_GLOBALS = globals()
_MISSING = object()

#: The message of the ImportError raised when the code removed its own module (C's text).
NOT_FOUND = "Loaded module {!r} not found in sys.modules"


# -- the caller --------------------------------------------------------------


def _caller_builtins() -> dict[str, Any]:
    """The builtins of the innermost frame outside this module (``PyEval_GetBuiltins``)."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and frame.f_globals is _OWN_GLOBALS:
        frame = frame.f_back
    return frame.f_builtins if frame is not None else builtins.__dict__


# -- importlib helpers the C code calls, rebuilt on public API ----------------


def _path_abspath(path: str) -> str:
    """importlib's ``_path_abspath``: unlike os.path.abspath, it does not normalise."""
    if path.startswith(tuple(_SEPARATORS)):
        return path
    for sep in _SEPARATORS:
        path = path.removeprefix(f".{sep}")
    return os.sep.join([part.rstrip(_SEPARATORS) for part in (os.getcwd(), path) if part])


def _is_regular_file(path: str) -> bool:
    # Only OSError means "no": a ValueError (say, a NUL) propagates as in importlib.
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def _source_from_bytecode_path(bytecode_path: str) -> str | None:
    """importlib's ``_get_sourcefile``, used by ``PyImport_ExecCodeModuleWithPathnames``.

    Returns the source path when it names an existing file, else the bytecode
    path itself; ``None`` for an empty path, which the caller passes on as is.
    """
    if not bytecode_path:
        return None
    rest, _, extension = bytecode_path.rpartition(".")
    if not rest or extension.lower()[-3:-1] != "py":
        return bytecode_path
    try:
        source_path = importlib.util.source_from_cache(bytecode_path)
    except (NotImplementedError, ValueError):
        source_path = bytecode_path[:-1]
    return source_path if _is_regular_file(source_path) else bytecode_path


def _fix_up_module(
    namespace: dict[str, Any], name: str, pathname: str | None, cpathname: str | None
) -> None:
    """importlib's ``_fix_up_module``: spec, loader, ``__file__`` and ``__cached__``.

    A loader or spec already on the module is kept when it is truthy (this is
    how a custom loader reaches the spec); ``__file__`` and ``__cached__`` are
    always overwritten.
    """
    loader = namespace.get("__loader__")
    spec = namespace.get("__spec__")
    if not loader:
        if spec:
            loader = spec.loader
        elif pathname == cpathname:
            loader = SourcelessFileLoader(name, pathname)  # type: ignore[arg-type]
        else:
            loader = SourceFileLoader(name, pathname)  # type: ignore[arg-type]
    if not spec:
        spec = importlib.util.spec_from_file_location(name, pathname, loader=loader)
        if cpathname and _SPEC_CACHED_FROM_CPATHNAME:
            spec.cached = _path_abspath(cpathname)  # type: ignore[union-attr]
    namespace["__spec__"] = spec
    namespace["__loader__"] = loader
    namespace["__file__"] = pathname
    namespace["__cached__"] = cpathname


# -- the C functions -----------------------------------------------------------


def _add_module(name: str) -> ModuleType:
    """``import_add_module``: the module at ``name``, created if absent or not a module."""
    module = _MODULES.get(name)
    # PyModule_Check() looks at the real type; isinstance() would trust a spoofed __class__.
    if issubclass(type(module), ModuleType):
        return module  # type: ignore[return-value]
    module = _MODULES[name] = ModuleType(name)
    return module


def _exec_code_module(
    name: str,
    code: CodeType,
    pathname: str | None,
    cpathname: str | None,
    builtins_dict: dict[str, Any],
) -> Any:
    """``PyImport_ExecCodeModuleObject`` once its arguments are checked and defaulted."""
    __tracebackhide__ = True  # read by IPython and pytest: hide this frame
    namespace = _module_dict(_add_module(name))
    if "__builtins__" not in namespace:
        namespace["__builtins__"] = builtins_dict
    # C does not call remove_module() when the fix-up fails: the module stays.
    _fix_up_module(namespace, name, pathname, cpathname)
    try:
        exec(code, namespace)
    except BaseException:
        _MODULES.pop(name, None)
        raise
    module = _MODULES.get(name, _MISSING)
    if module is _MISSING:
        msg = NOT_FOUND.format(name)
        raise ImportError(msg)
    return module


def exec_code_module_object(
    name: str, code: CodeType, pathname: str | None = None, cpathname: str | None = None
) -> Any:
    """Execute ``code`` as the body of module ``name`` (``PyImport_ExecCodeModuleObject``).

    Parameters
    ----------
    name
        Key in :func:`get_module_dict`.  An existing module there is reused as
        it is (its dict is not cleared: this is reload behaviour); any other
        value, ``None`` included, is replaced by a new empty module.  No parent
        package is created or bound for a dotted name.
    code
        A module-level code object, run with the module's dict as globals and
        locals.
    pathname
        The module's ``__file__``; ``None`` means ``code.co_filename``.
    cpathname
        The module's ``__cached__``; ``None`` gives ``__cached__ = None``.

    Returns
    -------
    object
        ``sys.modules[name]`` after execution: normally the module, but it is
        whatever the code left there.

    Before running the code, ``__builtins__`` is added if absent (the caller's
    builtins), and ``__spec__``/``__loader__`` are set unless already truthy: a
    loader already on the module is kept and becomes the spec's loader.

    Raises
    ------
    TypeError
        An argument of the wrong type, before anything changes.
    ImportError
        The code removed its own entry from ``sys.modules``.
    BaseException
        Whatever the code raised; the entry ``sys.modules[name]`` is then
        removed, even when the module existed before the call.
    """
    __tracebackhide__ = True
    name = name_object(name)
    code = code_object(code)
    pathname = path_object(pathname, "pathname")
    cpathname = path_object(cpathname, "cpathname")
    if pathname is None:
        pathname = code.co_filename
    return _exec_code_module(name, code, pathname, cpathname, _caller_builtins())


def exec_code_module_with_pathnames(
    name: str | bytes,
    code: CodeType,
    pathname: str | bytes | None = None,
    cpathname: str | bytes | None = None,
) -> Any:
    """Like :func:`exec_code_module_object` (``PyImport_ExecCodeModuleWithPathnames``).

    Names and paths may also be ``bytes``.  When ``pathname`` is ``None`` and a
    ``cpathname`` is given, the source path is derived from it as importlib
    does for a PEP 3147 (``__pycache__/NAME.TAG.pyc``) or legacy (``NAME.pyc``)
    path, and used only if that source file exists; otherwise ``__file__`` is
    the bytecode path and the loader a ``SourcelessFileLoader``.
    """
    __tracebackhide__ = True
    name = name_string(name)
    code = code_object(code)
    path = path_string(pathname, "pathname")
    cpath = path_string(cpathname, "cpathname")
    if path is None and cpath is not None:
        try:
            # None for an empty cpathname: passed on as is, not as NULL, so the fix-up fails.
            path = _source_from_bytecode_path(cpath)
        except Exception:
            path = None  # C clears any error of this lookup and falls back to co_filename
        else:
            return _exec_code_module(name, code, path, cpath, _caller_builtins())
    if path is None:
        path = code.co_filename
    return _exec_code_module(name, code, path, cpath, _caller_builtins())


def exec_code_module_ex(
    name: str | bytes, code: CodeType, pathname: str | bytes | None = None
) -> Any:
    """``PyImport_ExecCodeModuleEx``: :func:`exec_code_module_with_pathnames` without cpathname.

    ``__file__`` is ``pathname`` (``code.co_filename`` if None) and ``__cached__`` is None.
    """
    return exec_code_module_with_pathnames(name, code, pathname)


def exec_code_module(name: str | bytes, code: CodeType) -> Any:
    """``PyImport_ExecCodeModule``: ``__file__`` is ``code.co_filename``, ``__cached__`` None."""
    return exec_code_module_with_pathnames(name, code)


def add_module_object(name: str) -> ModuleType:
    """The module ``name`` in :func:`get_module_dict`, created empty if needed.

    ``PyImport_AddModuleObject``: an existing module is returned untouched; an
    absent entry or any non-module value (``None`` included) is replaced by a
    new module holding only ``__name__``, ``__doc__``, ``__package__``,
    ``__loader__`` and ``__spec__``.  Nothing is imported, and no parent
    package is created for a dotted name.
    """
    return _add_module(name_object(name))


def add_module(name: str | bytes) -> ModuleType:
    """``PyImport_AddModule``: :func:`add_module_object` for a str or UTF-8 bytes name."""
    return _add_module(name_string(name))


def add_module_ref(name: str | bytes) -> ModuleType:
    """``PyImport_AddModuleRef`` (C: 3.13+): :func:`add_module` returning a strong reference.

    Python has no borrowed references, so this is :func:`add_module`; it exists
    on every supported version.
    """
    return _add_module(name_string(name))


def get_magic_number() -> int:
    """``PyImport_GetMagicNumber``: the ``.pyc`` magic number as a little-endian int."""
    return int.from_bytes(importlib.util.MAGIC_NUMBER, "little")


def get_magic_tag() -> str:
    """``PyImport_GetMagicTag``: the cache tag, e.g. ``'cpython-312'``, as at startup."""
    return _MAGIC_TAG


def get_module_dict() -> dict[Any, Any]:
    """``PyImport_GetModuleDict``: the interpreter's modules dict (see the README on rebinding)."""
    return _MODULES
