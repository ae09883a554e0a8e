# SPDX-License-Identifier: MIT
"""The resources of a package whose code is held in memory, read from its directory."""

from __future__ import annotations

import pathlib
from importlib.resources.abc import Traversable, TraversableResources

__all__ = ["Directory"]


class Directory(TraversableResources):
    """A package's resources: the files of directory ``path``, as
    :class:`importlib.machinery.SourceFileLoader` gives those of a package it loads."""

    def __init__(self, path: str) -> None:
        self.path = path

    def files(self) -> Traversable:
        return pathlib.Path(self.path)
