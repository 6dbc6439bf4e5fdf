"""The command group behind `bpcli`: usage errors in one line (and as JSON under --json), whole one-line summaries,
plain metavars.

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


def _flag(param) -> str:
    """How the user names a parameter: an option by its long flag (--epochs), an argument by its metavar (RUN)."""
    if getattr(param, "param_type_name", "") == "option":
        return max(param.opts, key=lambda o: (o.startswith("--"), len(o)))
    return param.human_readable_name.strip("{}") if param is not None else "a value"


def _command(ctx) -> str:
    """The command a context runs, as bpcli's messages spell commands: `bpcli train` (also under python -m bpcli)."""
    names = []
    while ctx.parent is not None:
        names.append(ctx.info_name)
        ctx = ctx.parent
    return " ".join(["bpcli", *reversed(names)])


# Click's words for a value of the wrong type, in bpcli's
_TYPE_WORDS = {"int": "an integer", "integer": "an integer", "float": "a number", "boolean": "true or false"}


def usage_line(err) -> str:
    """A usage error Click found (an unknown option, a bad or missing value, an extra argument) as bpcli's one line:
    what is wrong, a 'did you mean' when Click has one, and where the help is: `--epochs: 'abc' is not an integer
    (bpcli train --help)`."""
    import re

    import typer

    kind = type(err).__name__
    help_ = f" ({_command(err.ctx)} --help)" if err.ctx is not None else ""
    message = err.message.strip()
    if kind == "NoSuchOption":
        guesses = sorted(err.possibilities or ())
        did = f" (did you mean {' or '.join(guesses)}?)" if guesses else ""
        return f"{err.option_name}: no such option{did}{help_}"
    if kind == "MissingParameter":
        what = err.param_type or getattr(err.param, "param_type_name", "parameter")
        hint = ": a run folder, or latest for the newest in runs/" if _flag(err.param) == "RUN" else ""
        return f"missing {what} {_flag(err.param)}{hint}{help_}"
    if isinstance(err, typer.BadParameter):
        m = re.fullmatch(r"(.*) is not a valid (\w+)\.?(.*)", message, re.S)
        if m and m.group(2) in _TYPE_WORDS:
            message = f"{m.group(1)} is not {_TYPE_WORDS[m.group(2)]}{m.group(3).rstrip('.')}"
        where = _flag(err.param) if err.param is not None else ""
        return f"{where + ': ' if where else ''}{message.rstrip('.')}{help_}"
    m = re.fullmatch(r"Option '(.+)' requires an argument\.?", message)
    if m:
        return f"{m.group(1)}: expects a value after it{help_}"
    m = re.fullmatch(r"Got unexpected extra argument(?:s|\(s\))? \((.*)\)\.?", message, re.S)
    if m:
        return f"unexpected extra argument: {m.group(1)}{help_}"
    m = re.fullmatch(r"(.*?)\.? Did you mean (.*?)\??", message, re.S)  # No such command 'trian'. Did you mean 'train'?
    if m:
        message = f"{m.group(1)} (did you mean {m.group(2)}?)"
    return f"{message[:1].lower()}{message[1:].rstrip('.')}{help_}"


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
    command runs: it is one line on stderr like bpcli's own errors (usage_line), and with --json on the command
    line also the JSON error object on stdout."""

    @staticmethod
    def fail(message: str, code: int) -> None:
        """Print `message` as bpcli's error line and exit with `code`: cli.common puts its fail() here (the one
        printer of error lines, which imports this module); this plain one serves a group used on its own."""
        from bpcli.errors import printable
        sys.stderr.write(f"error: {printable(message)}\n")
        raise SystemExit(code)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for cmd in self.commands.values():
            if type(cmd) is TyperCommand:
                cmd.__class__ = PlainUsageCommand  # a subclass that only changes the usage line
        self._json = False

    def main(self, args=None, *rest, **kwargs):
        self._json = wants_json(sys.argv[1:] if args is None else args)
        return super().main(args, *rest, **kwargs)

    def parse_args(self, ctx, args):
        """`bpcli help [COMMAND]`, as git and pip take it, is `bpcli [COMMAND] --help`: the main help, a command's
        help, or for an unknown command the same usage error as `bpcli COMMAND` (`bpcli help help`: the main one)."""
        if args[:1] == ["help"]:
            rest = list(args[1:])
            while rest[:1] == ["help"]:
                rest.pop(0)
            args = [*rest, "--help"]
        return super().parse_args(ctx, args)

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
                import typer
                usage = isinstance(err, next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError"))
                if not usage or type(err).__name__ == "NoArgsIsHelpError":  # `bpcli` alone prints the help
                    if self._json:
                        print_error_json(err.format_message(), err.exit_code)
                    raise
                line = usage_line(err)
                if self._json:
                    print_error_json(line, err.exit_code)
                self.fail(line, err.exit_code)
        return guard()

    def format_commands(self, ctx, formatter) -> None:
        """The command list with each summary whole (Click cuts them to fit with '...')."""
        rows = [(name, summary(cmd)) for name in self.list_commands(ctx)
                if (cmd := self.get_command(ctx, name)) is not None and not cmd.hidden]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)
