"""The command group behind `bpcli`: usage errors as JSON under --json, whole one-line summaries, plain metavars.

Every command, whoever registers it and wherever, passes through this class: what it does here it does for all.
"""

from __future__ import annotations

import json
import sys

from typer.core import TyperCommand, TyperGroup


def _click_exception() -> type:
    """Click's ClickException (vendored as typer._click in recent Typer, the click package before): a base of
    typer.BadParameter either way."""
    import typer
    return next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def print_error_json(message: str, code: int) -> None:
    """{"error": {"message": ..., "exit_code": ...}} on stdout, so a script reading --json output always gets a
    document; a stdout that cannot be written (a full disk, a closed pipe) is left to the caller's line on stderr."""
    try:
        sys.stdout.write(json.dumps({"error": {"message": message, "exit_code": code}}, indent=2) + "\n")
        sys.stdout.flush()
    except (OSError, ValueError):
        pass


def wants_json(args) -> bool:
    """--json among the command line's words (before a `--` that ends the options)."""
    args = list(args)
    return "--json" in (args[:args.index("--")] if "--" in args else args)


def summary(cmd) -> str:
    """A command's line in the command list: its short_help, else its help's first sentence, never cut short."""
    if cmd.short_help:
        return " ".join(cmd.short_help.split())
    para = (cmd.help or "").split("\n\n")[0].split()
    for i, word in enumerate(para):
        if word.endswith("."):
            return " ".join(para[:i + 1])
    return " ".join(para)


class PlainUsageCommand(TyperCommand):
    """A command whose usage line names required arguments as they are declared (RUN, not Typer's {RUN})."""

    def collect_usage_pieces(self, ctx) -> list[str]:
        return [p[1:-1] if p.startswith("{") and p.endswith("}") else p for p in super().collect_usage_pieces(ctx)]


class BpcliGroup(TyperGroup):
    """bpcli's top level. A usage error (an unknown option, a missing argument) is found by Click before any
    command runs: with --json on the command line it is also printed as the JSON error object on stdout."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for cmd in self.commands.values():
            if type(cmd) is TyperCommand:
                cmd.__class__ = PlainUsageCommand  # a subclass that only changes the usage line
        self._json = False

    def main(self, args=None, *rest, **kwargs):
        self._json = wants_json(sys.argv[1:] if args is None else args)
        return super().main(args, *rest, **kwargs)

    def make_context(self, *args, **kwargs):
        with self._usage_errors():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx):
        with self._usage_errors():
            return super().invoke(ctx)

    def _usage_errors(self):
        import contextlib

        @contextlib.contextmanager
        def guard():
            try:
                yield
            except _click_exception() as err:
                if self._json:
                    print_error_json(err.format_message(), err.exit_code)
                raise
        return guard()

    def format_commands(self, ctx, formatter) -> None:
        """The command list with each summary whole (Click cuts them to fit with '...')."""
        rows = [(name, summary(cmd)) for name in self.list_commands(ctx)
                if (cmd := self.get_command(ctx, name)) is not None and not cmd.hidden]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)
