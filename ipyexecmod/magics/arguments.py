# SPDX-License-Identifier: MIT
"""Reading a magic's line, and completing the module names the magics take."""

from __future__ import annotations

import argparse
import functools
import re
from typing import Any

from IPython.core.completer import CompletionContext, SimpleCompletion, context_matcher
from IPython.core.error import UsageError
from IPython.utils.process import arg_split  # type: ignore[attr-defined]

from ..inspection import module_names

__all__ = ["complete_module_names", "parse"]

# The magics whose argument is a module name, for completion.
_MODULE_ARGUMENT = re.compile(
    r"\s*(?:[\w.]+\s*=\s*)?(?P<magic>%%as_module|"
    r"%?(?:reload_module|modinfo|lsmod|pycinfo|ship|modhistory|moddiff|revert|export_module))"
    r"\s+(?:-\S+\s+)*[\w.]*$"
)
# Of those, the ones that take only a cell module's name, and the one that also takes a path.
_CELL_MODULES_ONLY = ("as_module", "ship", "modhistory", "moddiff", "revert", "export_module")
_PATHS_TOO = "pycinfo"


def parse(magic: Any, line: str) -> Any:
    """The arguments of ``magic`` (a method made with ``magic_arguments``) in ``line``.

    As IPython's ``parse_argstring``, but a word starting with ``#`` ends the line (a
    comment), and an unknown option is named even when a required argument is missing
    too (argparse reports only the missing one).  Raises UsageError.

    A line parsed before is not parsed again (a cell is run again and again with the
    same first line): its arguments are a copy of those it gave then.
    """
    return argparse.Namespace(**vars(_parsed(magic.parser, line)))


@functools.lru_cache(maxsize=256)
def _parsed(parser: Any, line: str) -> argparse.Namespace:
    try:
        words = arg_split(line)
    except ValueError as exc:  # shlex's "No closing quotation"
        msg = f"cannot read the arguments {line.strip()!r}: {exc}; close the quotation"
        raise UsageError(msg) from None
    comment = next((i for i, word in enumerate(words) if word.startswith("#")), len(words))
    words = words[:comment]
    try:
        return parser.parse_args(words)  # type: ignore[no-any-return]
    except UsageError as error:
        unknown = _unknown_options(parser, words)
        if all(option in str(error) for option in unknown):
            raise  # no unknown option, or argparse named them already
    msg = f"unrecognized arguments: {' '.join(unknown)}"
    raise UsageError(msg)


def _unknown_options(parser: Any, words: list[str]) -> list[str]:
    """The options in ``words`` that ``parser`` does not know.

    Found by parsing again with a stand-in after them for a missing argument.
    """
    try:
        _, extra = parser.parse_known_args([*words, "--", "_"])
    except UsageError:  # an error in a known option: the first parse said it
        return []
    return [word for word in extra if word.startswith("-") and word != "--"]


@context_matcher()
def complete_module_names(context: CompletionContext) -> dict[str, Any]:
    """Complete module names after the magics that take one, cell modules first.

    %%as_module and %ship get only cell modules; %pycinfo also gets the paths
    IPython completes.
    """
    match = _MODULE_ARGUMENT.match(context.line_with_cursor)
    if match is None:
        return {"completions": [], "suppress": False}
    magic = match["magic"].lstrip("%")
    names = module_names(context.token, cells_only=magic in _CELL_MODULES_ONLY)
    return {
        "completions": [SimpleCompletion(name, type="module") for name in names],
        "suppress": True,
        "do_not_suppress": {"IPCompleter.file_matcher"} if magic == _PATHS_TOO else set(),
        "ordered": True,  # as module_names orders them, not alphabetically
    }
