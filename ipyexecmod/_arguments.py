# SPDX-License-Identifier: MIT
"""Argument checks shared by the core and ``capi``: wrong values fail before any side effect."""

from __future__ import annotations

import os
from types import CodeType


def type_error(argname: str, expected: str, value: object) -> TypeError:
    return TypeError(f"{argname} must be {expected}, not {type(value).__name__}")


def reject_nul(value: str | bytes, argname: str) -> None:
    """Refuse what a ``const char *`` cannot carry: C would silently cut it at the NUL."""
    if ("\0" if isinstance(value, str) else b"\0") in value:  # type: ignore[operator]
        msg = f"{argname} must not contain a NUL character: C would truncate {value!r} there"
        raise ValueError(msg)


def name_object(name: object) -> str:
    """A name for the ``PyObject *`` variants."""
    if not isinstance(name, str):
        raise type_error("name", "a str", name)
    return name


def name_string(name: object) -> str:
    """A name for the ``const char *`` variants, as C receives it: a plain str, valid UTF-8."""
    if not isinstance(name, str | bytes):
        raise type_error("name", "a str or bytes", name)
    reject_nul(name, "name")
    if isinstance(name, bytes):
        return name.decode("utf-8")  # strict, like PyUnicode_FromString
    if not name.isascii():
        name.encode("utf-8")  # a lone surrogate cannot reach C: UnicodeEncodeError, as capi
    return str.__str__(name)


def path_object(path: object, argname: str) -> str | None:
    """A pathname or cpathname for ``PyImport_ExecCodeModuleObject``."""
    if path is None or isinstance(path, str):
        return path
    raise type_error(argname, "a str or None", path)


def path_string(path: object, argname: str) -> str | None:
    """A path for the ``const char *`` variants, decoded like ``PyUnicode_DecodeFSDefault``."""
    if path is None:
        return None
    if not isinstance(path, str | bytes):
        raise type_error(argname, "a str, bytes or None", path)
    reject_nul(path, argname)
    if isinstance(path, str) and not path.isascii():
        os.fsencode(path)  # what cannot be encoded cannot reach C: UnicodeEncodeError, as capi
    return str.__str__(os.fsdecode(path))


def code_object(code: object) -> CodeType:
    """A module-level code object, which C can run without a closure."""
    # PyCode_Check() is an exact type check; isinstance() would trust a spoofed __class__.
    if type(code) is not CodeType:
        raise type_error("code", "a code object", code)
    if code.co_freevars:
        msg = (
            f"code must not have free variables (it has {code.co_freevars!r}); "
            "compile the module's whole source instead of a nested function's code"
        )
        raise TypeError(msg)
    return code
