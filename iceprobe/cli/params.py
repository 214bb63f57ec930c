"""Parameter types and the command class every command uses: floats that must be finite,
and options whose value is only given after '='."""

from __future__ import annotations

import math
import os
from typing import Any

import click


class FiniteFloatRange(click.FloatRange):
    """A float in a range that also refuses NaN and the infinities: `nan` passes every
    comparison a range makes, and `inf` would pass an open-ended one, and either then
    reaches the probe as a time or a threshold that means nothing."""

    name = "finite float range"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return super().convert(number, param, ctx)


class EqualsValueOption(click.Option):
    """An option with an optional value that is only ever given after '=': `--redact`
    alone means `--redact=<bare_value>`, and the next word is never taken as its value
    (so `analyze --redact dump.json` reads dump.json). `CheckedCommand` rewrites the bare
    form before click parses the command line."""

    def __init__(self, *args: Any, bare_value: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bare_value = bare_value

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        record = super().get_help_record(ctx)
        if record is None:
            return None
        names, help_text = record
        metavar = self.make_metavar(ctx)
        return names.replace(f" {metavar}", f"[={metavar.strip('[]')}]"), help_text


class CheckedCommand(click.Command):
    """A command whose `EqualsValueOption`s take their value only after '='."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, self._bare_values(ctx, args))

    def _bare_values(self, ctx: click.Context, args: list[str]) -> list[str]:
        options = {name: param for param in self.params if isinstance(param, EqualsValueOption)
                   for name in param.opts}
        rewritten: list[str] = []
        for index, arg in enumerate(args):
            if arg == "--":
                rewritten.extend(args[index:])
                break
            param = options.get(arg)
            if param is None:
                rewritten.append(arg)
                continue
            following = args[index + 1] if index + 1 < len(args) else None
            choices = getattr(param.type, "choices", ())
            if (following is not None and following in choices and not os.path.exists(following)
                    and not ctx.resilient_parsing):
                raise click.UsageError(f"{arg} takes its value after '=': write "
                                       f"{arg}={following}", ctx=ctx)
            rewritten.append(f"{arg}={param.bare_value}")
        return rewritten
