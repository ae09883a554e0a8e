# SPDX-License-Identifier: MIT
"""The modules a cell module's code imports as it runs, read from its compiled code.

What :attr:`Version.imports <ipyexecmod.cells.version.Version.imports>` and the dependents
(:mod:`.dependents`) are made of, and what a Dask shipment names as a module's imports.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from types import CodeType

__all__ = ["import_statements", "imports_in", "imports_of"]


def imports_of(name: str, source: str | bytes, is_package: bool) -> frozenset[str]:
    """The modules that module ``name``'s source imports as it runs (see :func:`imports_in`);
    none if it does not compile."""
    try:
        code = compile(source, name, "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return frozenset()
    return imports_in(name, code, is_package)


def imports_in(name: str, code: CodeType, is_package: bool) -> frozenset[str]:
    """The modules that module ``name``'s code imports as it runs, as absolute names.

    Every ``import`` and ``from ... import`` statement at module level, in ``if``,
    ``try`` and ``with`` blocks and in class bodies, in all its forms (relative ones
    resolved against the package): ``import a.b`` gives ``a`` and ``a.b``, and
    ``from a.b import f`` gives ``a.b`` and ``a.b.f`` (``f`` may be a submodule).  An
    import inside a function runs when the function is called, so it is not counted, and
    neither is the module itself (a package's ``from .x import y`` imports it first).

    The compiled code is read rather than the source parsed again: an import statement
    is one ``IMPORT_NAME`` instruction, after the two constants ``level`` and
    ``fromlist``; reading them costs about a twentieth of compiling the source.
    """
    found: set[str] = set()
    for module, fromlist in import_statements(name, code, is_package):
        if fromlist:  # from module import names: module, and names that are submodules
            found.add(module)
            found.update(f"{module}.{each}" for each in fromlist if each != "*")
        else:  # import a.b.c: binds a, and reads a.b and a.b.c through it
            parts = module.split(".")
            found.update(".".join(parts[: depth + 1]) for depth in range(len(parts)))
    found.discard(name)
    return frozenset(found)


def import_statements(
    name: str, code: CodeType, is_package: bool
) -> Iterator[tuple[str, tuple[str, ...] | None]]:
    """``(module, fromlist)`` for each import statement that module ``name``'s code runs
    as it runs (see :func:`imports_in`), ``module`` absolute; ``fromlist`` is ``None`` for
    ``import module``."""
    package = name if is_package else name.rpartition(".")[0]
    pending = [code]
    while pending:
        code = pending.pop()
        for module, level, fromlist in _import_instructions(code):
            if level:
                base = package.rsplit(".", level - 1)[0] if package.count(".") >= level - 1 else ""
                if not base:
                    continue  # beyond the top-level package: the import fails as it runs
                module = f"{base}.{module}" if module else base
            yield module, fromlist
        # Class bodies run with the module; functions (and 3.11's comprehensions) do not.
        pending.extend(
            const
            for const in code.co_consts
            if type(const) is CodeType and not const.co_flags & _CO_OPTIMIZED
        )


_CO_OPTIMIZED = 0x1  # inspect.CO_OPTIMIZED: set on functions, not on class bodies


def _import_instructions(code: CodeType) -> Iterator[tuple[str, int, tuple[str, ...] | None]]:
    """``(module, level, fromlist)`` for each ``IMPORT_NAME`` instruction of ``code``.

    ``bytes.find`` goes from one ``IMPORT_NAME`` to the next (an instruction is two bytes,
    its opcode at an even offset); the two instructions before each load its operands.
    """
    _, _, _, import_name = _opcodes()
    raw, names = code.co_code, code.co_names
    opcode = bytes([import_name])
    offset = raw.find(opcode)
    while offset >= 0:
        if offset % 2 == 0:  # an opcode, not an argument
            name, start = _argument(raw, offset)
            fromlist, start = _constant(code, start - 2)
            level, _ = _constant(code, start - 2)
            yield names[name], level if type(level) is int else 0, fromlist  # type: ignore[misc]
        offset = raw.find(opcode, offset + 1)


def _argument(raw: bytes, offset: int) -> tuple[int, int]:
    """The argument of the instruction at ``offset``, and where it starts (its first
    ``EXTENDED_ARG``)."""
    extended_arg = _opcodes()[0]
    argument, shift = raw[offset + 1], 8
    while offset >= 2 and raw[offset - 2] == extended_arg:
        offset -= 2
        argument |= raw[offset + 1] << shift
        shift += 8
    return argument, offset


def _constant(code: CodeType, offset: int) -> tuple[object, int]:
    """The constant that the instruction at ``offset`` loads (``None`` if it loads none),
    and where that instruction starts."""
    if offset < 0:
        return None, offset
    _, load_const, load_small_int, _ = _opcodes()
    argument, start = _argument(code.co_code, offset)
    op = code.co_code[offset]
    if op == load_const:
        return code.co_consts[argument], start
    return (argument if op == load_small_int else None), start


@functools.cache
def _opcodes() -> tuple[int, int, int, int]:
    import opcode  # when first needed: it takes a millisecond to import

    opmap = opcode.opmap
    return (
        opmap["EXTENDED_ARG"],
        opmap["LOAD_CONST"],
        opmap.get("LOAD_SMALL_INT", -1),  # Python 3.14 loads ``level`` with it
        opmap["IMPORT_NAME"],
    )
