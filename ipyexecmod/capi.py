# SPDX-License-Identifier: MIT
"""The real C functions, called through :mod:`ctypes` (CPython only).

The same names and argument conventions as :mod:`ipyexecmod`, bound to the
interpreter's own ``PyImport_*`` functions.  It serves users who want the
genuine C path, and it is the oracle the tests hold the pure-Python core to.

``None`` is passed as a real NULL pointer.  Arguments that would make C crash
(a NULL name, a non-code object, code with free variables, and on 3.13 a new
module named by a GC-tracked object) are refused with an exception before the
call, and so is a NUL inside a ``const char *``, where C would silently cut
the string.  Everything else reaches C as it is, so errors are the ones C raises.
"""

from __future__ import annotations

import ctypes
import gc
import os
import sys
from types import ModuleType
from typing import Any

from ._arguments import code_object, reject_nul, type_error
from .execmodule import __all__ as _core_names

# The same names as the core's, each bound to the C function it follows.
__all__ = list(_core_names)

if sys.implementation.name != "cpython":  # pragma: no cover
    msg = f"ipyexecmod.capi needs CPython, not {sys.implementation.name}"
    raise ImportError(msg)

# A py_object restype takes over the reference the function returns: right for
# new references.  A borrowed one comes back as an address (_BORROWED) and
# _borrowed() takes a reference of its own.
_P = ctypes.py_object
_BORROWED = ctypes.c_void_p
_CHARS = ctypes.c_char_p
_NULLABLE = ctypes.c_void_p  # a PyObject * that may be NULL: the object's address, or None


def _bind(symbol: str, restype: Any, *argtypes: Any) -> Any:
    # Our own prototypes: setting restype on ctypes.pythonapi.X would change it for everyone.
    return ctypes.PYFUNCTYPE(restype, *argtypes)((symbol, ctypes.pythonapi))


_ExecCodeModule = _bind("PyImport_ExecCodeModule", _P, _CHARS, _P)
_ExecCodeModuleEx = _bind("PyImport_ExecCodeModuleEx", _P, _CHARS, _P, _CHARS)
_ExecCodeModuleWithPathnames = _bind(
    "PyImport_ExecCodeModuleWithPathnames", _P, _CHARS, _P, _CHARS, _CHARS
)
_ExecCodeModuleObject = _bind("PyImport_ExecCodeModuleObject", _P, _P, _P, _NULLABLE, _NULLABLE)
_AddModule = _bind("PyImport_AddModule", _BORROWED, _CHARS)
_AddModuleObject = _bind("PyImport_AddModuleObject", _BORROWED, _P)
_AddModuleRef = (
    _bind("PyImport_AddModuleRef", _P, _CHARS)
    if hasattr(ctypes.pythonapi, "PyImport_AddModuleRef")
    else None
)
_GetMagicNumber = _bind("PyImport_GetMagicNumber", ctypes.c_long)
_GetMagicTag = _bind("PyImport_GetMagicTag", _CHARS)
_GetModuleDict = _bind("PyImport_GetModuleDict", _BORROWED)


def _borrowed(address: int) -> Any:
    return ctypes.cast(address, _P).value


def _c_string(value: object, argname: str, *, path: bool) -> bytes | None:
    """A ``const char *`` argument: None is NULL, str is encoded as C would decode it."""
    if value is None and path:
        return None
    if isinstance(value, str):
        value = os.fsencode(value) if path else value.encode("utf-8")
    elif not isinstance(value, bytes):
        expected = "a str, bytes or None" if path else "a str or bytes"
        raise type_error(argname, expected, value)
    reject_nul(value, argname)
    return value


def _creates_module(name: object) -> bool:
    try:
        entry = sys.modules.get(name)  # type: ignore[call-overload]  # any hashable key
    except TypeError:  # unhashable: C raises TypeError itself
        return False
    return not issubclass(type(entry), ModuleType)


def _object_name(name: object) -> object:
    if name is None:
        msg = "name must not be None: C would dereference NULL"
        raise TypeError(msg)
    # 3.13 aborts the process when it creates a module named by a GC-tracked object
    # (a hashable container, an instance of a str subclass; a plain str never is tracked).
    # Unhashable names and names of existing modules are safe: C raises or returns.
    if sys.version_info >= (3, 13) and gc.is_tracked(name) and _creates_module(name):
        msg = (
            f"name must be a plain str on Python 3.13, not {type(name).__name__}: "
            "C would abort creating a module with it"
        )
        raise TypeError(msg)
    return name


def _nullable(value: object) -> int | None:
    return None if value is None else id(value)


def exec_code_module(name: str | bytes, code: Any) -> Any:
    """``PyImport_ExecCodeModule``."""
    return _ExecCodeModule(_c_string(name, "name", path=False), code_object(code))


def exec_code_module_ex(name: str | bytes, code: Any, pathname: str | bytes | None = None) -> Any:
    """``PyImport_ExecCodeModuleEx``."""
    return _ExecCodeModuleEx(
        _c_string(name, "name", path=False),
        code_object(code),
        _c_string(pathname, "pathname", path=True),
    )


def exec_code_module_with_pathnames(
    name: str | bytes,
    code: Any,
    pathname: str | bytes | None = None,
    cpathname: str | bytes | None = None,
) -> Any:
    """``PyImport_ExecCodeModuleWithPathnames``."""
    return _ExecCodeModuleWithPathnames(
        _c_string(name, "name", path=False),
        code_object(code),
        _c_string(pathname, "pathname", path=True),
        _c_string(cpathname, "cpathname", path=True),
    )


def exec_code_module_object(
    name: object, code: Any, pathname: object = None, cpathname: object = None
) -> Any:
    """``PyImport_ExecCodeModuleObject``: any object reaches C as it is, None as NULL."""
    name = _object_name(name)
    code = code_object(code)
    # The ids stay valid: pathname and cpathname are alive until the call returns.
    return _ExecCodeModuleObject(name, code, _nullable(pathname), _nullable(cpathname))


def add_module(name: str | bytes) -> ModuleType:
    """``PyImport_AddModule``."""
    return _borrowed(_AddModule(_c_string(name, "name", path=False)))  # type: ignore[no-any-return]


def add_module_object(name: object) -> ModuleType:
    """``PyImport_AddModuleObject``."""
    return _borrowed(_AddModuleObject(_object_name(name)))  # type: ignore[no-any-return]


def add_module_ref(name: str | bytes) -> ModuleType:
    """``PyImport_AddModuleRef``; raises NotImplementedError before CPython 3.13."""
    if _AddModuleRef is None:
        msg = "PyImport_AddModuleRef is new in CPython 3.13; use add_module() on this version"
        raise NotImplementedError(msg)
    return _AddModuleRef(_c_string(name, "name", path=False))  # type: ignore[no-any-return]


def get_magic_number() -> int:
    """``PyImport_GetMagicNumber``."""
    return _GetMagicNumber()  # type: ignore[no-any-return]


def get_magic_tag() -> str:
    """``PyImport_GetMagicTag``, decoded."""
    return _GetMagicTag().decode("ascii")  # type: ignore[no-any-return]


def get_module_dict() -> dict[Any, Any]:
    """``PyImport_GetModuleDict``."""
    return _borrowed(_GetModuleDict())  # type: ignore[no-any-return]
