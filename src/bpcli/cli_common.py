"""What every command shares: the Typer app, the options declared once, error handling and loading a target.

Only cli-layer modules (cli.py, cli_train.py, cli_inspect.py) import this; they are the only ones that print.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from bpcli import __version__
from bpcli.errors import EXIT_BAD_INPUT, EXIT_INTERRUPTED, BpcliError, Interrupted

app = typer.Typer(
    name="bpcli",
    help="Train small feed-forward networks and see the chain rule behind every gradient.\n\n"
    "Start with `bpcli train` (the built-in 2-2-1 seed network), then `bpcli show` for the "
    "parameter names and `bpcli explain --weight v1` for one weight's chain rule.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,  # plain Click help: Rich's help formatter costs ~0.2 s of imports at every start
)

# --- options defined once -------------------------------------------------------------------

TargetArg = Annotated[
    Optional[str],
    typer.Argument(help="A config file (.yaml) or a run folder. Default: the built-in seed network.",
                   show_default=False, metavar="CONFIG|RUN"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout instead of tables.")]
RunOpt = Annotated[Optional[Path], typer.Option("--run", help="A run folder made by `bpcli train`.",
                                                show_default=False)]
ConfigOpt = Annotated[Optional[Path], typer.Option("--config", help="A config file (same as the positional).",
                                                   show_default=False)]
RunArg = Annotated[Path, typer.Argument(help="A run folder made by `bpcli train`.", show_default=False,
                                        metavar="RUN")]
WeightOpt = Annotated[Optional[list[str]], typer.Option(
    "--weight", "-w", metavar="NAME", show_default=False,
    help="A parameter by name: v1, w11, w[1,2], b_A1 ... (see `bpcli show`). Repeat it or separate with commas. "
         "explain needs one; gradcheck checks only these (default: all).")]


def out_console():
    from rich.console import Console
    return Console(highlight=False)


def err_console():
    from rich.console import Console
    return Console(stderr=True, highlight=False)


def emit_json(obj: dict) -> None:
    """JSON on stdout, never through Rich (which wraps lines and eats [markup])."""
    from bpcli.results import finite_or_none
    print(json.dumps(finite_or_none(obj), indent=2, allow_nan=False))


def fail(message: str, code: int = EXIT_BAD_INPUT) -> None:
    """Print each line of `message` as an error on stderr and exit."""
    from rich.markup import escape

    from bpcli.errors import printable
    err = err_console()
    for line in str(message).split("\n"):  # one problem per line; other line breaks are shown escaped
        err.print(f"[bold red]error:[/] {escape(printable(line))}", soft_wrap=True)
    raise typer.Exit(code)


def handles_errors(fn):
    """Turn BpcliError into one clear line per problem and its exit code; tracebacks stay for bugs."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except BpcliError as err:
            fail(str(err), err.exit_code)
        except Interrupted as err:
            err_console().print(str(err), markup=False, soft_wrap=True)
            raise typer.Exit(err.exit_code) from None
        except KeyboardInterrupt:
            err_console().print("interrupted")
            raise typer.Exit(EXIT_INTERRUPTED) from None

    return wrapper


def _version(value: bool) -> None:
    if value:
        print(f"bpcli {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[bool, typer.Option("--version", help="Show the version and exit.", callback=_version,
                                          is_eager=True)] = False,
) -> None:
    """bpcli: backprop you can read."""


# --- loading what a command works on ---------------------------------------------------------


def load_target(target: Optional[str], config: Optional[Path] = None, run: Optional[Path] = None):
    """(cfg, net, prepared, run_dir) from a positional config-or-run, --config, --run, or the built-in seed."""
    from bpcli.config import load_config
    from bpcli.model import build
    from bpcli.data import prepare
    from bpcli.runs import load_run

    if sum(x is not None for x in (target, config, run)) > 1:
        raise BpcliError("give one of a positional CONFIG|RUN, --config or --run, not several")
    if target is not None:
        p = Path(target)
        if p.is_dir():
            run = p
        else:
            config = p
    if run is not None:
        loaded = load_run(run)
        return loaded.cfg, loaded.net, loaded.prepared, loaded.run_dir
    if config is not None and Path(config).name == "config.yaml" and (Path(config).parent / "weights.npz").exists():
        run_dir = Path(config).parent.parent if (Path(config).parent.parent / "run.json").exists() else Path(config).parent
        err_console().print(f"note: {config} is a run's config, read at its initial weights; give the folder "
                        f"{run_dir} for the trained ones", markup=False, soft_wrap=True)
    cfg, data = load_config(config)
    return cfg, build(cfg), prepare(cfg, data), None
