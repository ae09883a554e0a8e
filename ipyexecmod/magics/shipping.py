# SPDX-License-Identifier: MIT
"""``%ship``: cell modules on Dask clusters (:mod:`ipyexecmod.dask`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from .arguments import parse
from .definitions import ExecModMagics, shipping

if TYPE_CHECKING:
    from ..dask import Shipment

__all__ = ["ShipMagics"]


@magics_class
class ShipMagics(Magics):
    """``%ship``; its option ``ship_auto`` is :class:`ExecModMagics`'s, with the others."""

    @property
    def _options(self) -> ExecModMagics:
        assert self.shell is not None  # set by Magics.__init__
        options: ExecModMagics = self.shell.magics_manager.registry[ExecModMagics.__name__]
        return options

    @magic_arguments()
    @argument("names", nargs="*", metavar="NAME", help="cell modules to ship")
    @argument(
        "--client",
        metavar="VAR",
        help="the variable holding the distributed.Client (default: the default client)",
    )
    @argument(
        "--auto",
        action="store_true",
        help="ship every cell module, new or redefined, to every Dask client of the kernel "
        "(the default: see ExecModMagics.ship_auto)",
    )
    @argument(
        "--no-auto",
        action="store_true",
        help="ship only the modules named to %%ship; the others fail fast on the workers",
    )
    @line_magic
    def ship(self, line: str) -> Shipment | None:
        """%ship NAME [NAME ...] [--client VAR] | --auto | --no-auto: cell modules on Dask workers.

        In auto mode (the default) every Dask client of the kernel gets every cell module,
        with no %ship.  With --no-auto, %ship NAME sends the modules (a dotted name sends
        its whole package) to every current and future worker of a cluster, and a task that
        needs another fails fast with an ImportError that says so.  Each later redefinition
        is sent again before its cell finishes, and the next task runs the new code.
        Returns what was shipped where, or the mode set.  Needs ipyexecmod[dask].
        """
        args = parse(self.ship, line)
        if args.auto and args.no_auto:
            msg = "use --auto or --no-auto, not both"
            raise UsageError(msg)
        if args.client and (args.auto or args.no_auto):
            msg = "--auto and --no-auto are for every client; leave out --client VAR"
            raise UsageError(msg)
        if not (args.names or args.auto or args.no_auto):
            msg = "name the cell modules to ship (%ship NAME ...), or use %ship --auto"
            raise UsageError(msg)
        auto = True if args.auto else False if args.no_auto else None
        dask = shipping()
        try:
            shipment: Shipment | None = dask.ship_command(
                args.names, self._client(args.client), auto=auto
            )
        except dask.ShipError as exc:
            raise UsageError(str(exc)) from None
        if auto is not None:
            self._options.ship_auto = auto  # as %config shows it; set_auto has done it already
        return shipment

    def _client(self, variable: str | None) -> object:
        """The value of the notebook variable ``variable``; ``None`` (the default client)
        without one."""
        if variable is None:
            return None
        assert self.shell is not None  # set by Magics.__init__
        if variable not in self.shell.user_ns:
            msg = f"no variable {variable!r} in the notebook: --client names a variable"
            raise UsageError(msg)
        return self.shell.user_ns[variable]
