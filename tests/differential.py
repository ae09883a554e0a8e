"""Run a scenario against the real C functions and against the core; describe what it left.

A scenario is a function ``(api, name, tmp) -> dict``: ``api`` is
:mod:`ipyexecmod` or :mod:`ipyexecmod.capi`, ``name`` a module name owned by
the scenario (every ``sys.modules`` key starting with it is observed and
cleaned up), ``tmp`` a fresh directory that is also the working directory.
"""

from __future__ import annotations

import builtins
import contextlib
import importlib.machinery
import os
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

Scenario = Callable[[Any, str, Path], dict[str, Any]]

#: Scenario-owned module names start with this; other modules are described by name only.
PREFIX = "_diff_"


def compile_module(source: str, filename: str = "<test>") -> types.CodeType:
    return compile(source, filename, "exec", dont_inherit=True)


def describe(value: Any, depth: int = 0) -> Any:
    """A comparable, repr-free description of ``value`` (modules, specs, loaders...)."""
    if isinstance(value, types.ModuleType):
        module_name = value.__dict__.get("__name__")
        if depth > 2 or not (isinstance(module_name, str) and module_name.startswith(PREFIX)):
            return ("module", type(value).__name__, module_name)
        return ("module", type(value).__name__, describe_namespace(value.__dict__, depth + 1))
    if isinstance(value, importlib.machinery.ModuleSpec):
        return (
            "spec",
            type(value).__name__,
            value.name,
            describe(value.loader, depth + 1),
            value.origin,
            value.cached,
            value.parent,
            value.has_location,
            value.submodule_search_locations,
        )
    if isinstance(value, types.FunctionType):
        return ("function", value.__qualname__, value.__code__.co_filename, value.__module__)
    if isinstance(value, type):
        return ("class", value.__qualname__, value.__dict__.get("__module__"))
    if isinstance(value, types.SimpleNamespace):
        return ("namespace", describe(vars(value), depth + 1))
    if isinstance(value, dict):
        return {repr(k): describe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [describe(v, depth + 1) for v in value]
    if isinstance(value, tuple):
        return tuple(describe(v, depth + 1) for v in value)
    if value is None or isinstance(value, str | bytes | int | float | bool):
        return value
    if hasattr(value, "get_filename") or hasattr(value, "exec_module"):  # a loader
        return (
            "loader",
            type(value).__name__,
            getattr(value, "name", None),
            getattr(value, "path", None),
        )
    return ("object", type(value).__name__)


def describe_namespace(namespace: dict[str, Any], depth: int) -> list[Any]:
    """Keys in order (order is observable), values described; builtins by identity."""
    items = []
    for key, value in namespace.items():
        if key == "__builtins__":
            if value is builtins.__dict__:
                value = "<builtins.__dict__>"
            elif value is builtins:
                value = "<builtins module>"
            else:
                value = ("custom builtins", sorted(value))
            items.append((key, value))
        else:
            items.append((key, describe(value, depth)))
    return items


def describe_exception(exc: BaseException) -> tuple[str, str]:
    return (type(exc).__name__, str(exc))


def owned_keys(name: str) -> list[Any]:
    return [k for k in list(sys.modules) if isinstance(k, str) and k.startswith(name)]


def purge(name: str) -> None:
    for key in owned_keys(name):
        del sys.modules[key]


def normalise(value: Any, tmp: Path) -> Any:
    """Replace the run's own directory by ``<TMP>`` everywhere."""
    prefix = str(tmp)
    if isinstance(value, str):
        return value.replace(prefix, "<TMP>")
    if isinstance(value, bytes):
        return value.replace(os.fsencode(prefix), b"<TMP>")
    if isinstance(value, dict):
        return {normalise(k, tmp): normalise(v, tmp) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v, tmp) for v in value]
    if isinstance(value, tuple):
        return tuple(normalise(v, tmp) for v in value)
    return value


@contextlib.contextmanager
def working_directory(path: Path) -> Iterator[None]:
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def run(scenario: Scenario, api: Any, tmp: Path, name: str) -> dict[str, Any]:
    """The scenario's own observations, plus any exception and every module it left."""
    tmp.mkdir(parents=True)
    purge(name)
    try:
        with working_directory(tmp):
            try:
                outcome = scenario(api, name, tmp)
            except Exception as exc:
                outcome = {"raised": describe_exception(exc)}
            outcome["left in sys.modules"] = {k: describe(sys.modules[k]) for k in owned_keys(name)}
        return normalise(outcome, tmp)
    finally:
        purge(name)
