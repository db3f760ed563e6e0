"""How `rq --help` and each command's help read: usage lines and option tables without typer's
type decorations that mean nothing to a reader.

typer (0.29) shows every flag as taking a ``<bool>`` and writes a required argument as
``{query}`` in the usage line. A flag takes no value, and the usage line should read like a
manual's: ``rq search [OPTIONS] QUERY``. Both are fixed here, through click's own hooks,
so the rest of the command line declares its options plainly.
"""

from __future__ import annotations

from typer.core import TyperCommand, TyperGroup


def _flags_without_type(params: list) -> list:
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""  # shown as nothing in the type column
    return params


class RqCommand(TyperCommand):
    def get_params(self, ctx):
        return _flags_without_type(super().get_params(ctx))

    def collect_usage_pieces(self, ctx) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name != "argument":
                continue
            name = (param.metavar or param.name or "").upper()
            if param.nargs != 1:
                name += "..."
            pieces.append(name if param.required else f"[{name}]")
        return pieces


class RqGroup(TyperGroup):
    def get_params(self, ctx):
        return _flags_without_type(super().get_params(ctx))
