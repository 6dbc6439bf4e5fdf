"""What every command of bpcli.cli shares: the Typer app, the options declared once, error handling, loading targets."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from bpcli import __version__
from bpcli.cli.group import BpcliGroup, print_error_json
from bpcli.errors import EXIT_BAD_INPUT, EXIT_BROKEN_PIPE, EXIT_INTERRUPTED, ArgumentError, BpcliError, Interrupted

app = typer.Typer(
    name="bpcli",
    help="Train small feed-forward networks and see the chain rule behind every gradient.\n\n"
    "Start with `bpcli train` (the built-in 2-2-1 seed network), then `bpcli show` for the "
    "parameter names and `bpcli explain --weight v1` for one weight's chain rule.",
    cls=BpcliGroup,
    invoke_without_command=True,  # bare `bpcli` prints the help and exits 0 (Click's no_args_is_help exits 2)
    add_completion=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,  # plain Click help: Rich's help formatter costs ~0.2 s of imports at every start
    context_settings={"help_option_names": ["-h", "--help"]},
)

# --- options defined once -------------------------------------------------------------------

TargetArg = Annotated[
    Optional[str],
    typer.Argument(help="A config file (.yaml) or a run folder. Default: the built-in seed network.",
                   show_default=False, metavar="CONFIG|RUN"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout instead of tables; an error "
                                     'is {"error": {"message": ..., "exit_code": N}}.')]
ForceOpt = Annotated[bool, typer.Option("--force", help="Replace an existing output file.")]
RunOpt = Annotated[Optional[Path], typer.Option("--run", help="A run folder made by `bpcli train`.",
                                                show_default=False)]
ConfigOpt = Annotated[Optional[Path], typer.Option("--config", help="A config file (same as the positional).",
                                                   show_default=False)]
RunArg = Annotated[Path, typer.Argument(help="A run folder made by `bpcli train`. Default: latest, the newest "
                                        "run folder in runs/.", show_default=False, metavar="RUN")]
LATEST = Path("latest")
EpochOpt = Annotated[Optional[int], typer.Option(
    "--epoch", metavar="N", show_default=False,
    help="The run as it was after epoch N (0 = initial weights); `bpcli show RUN` lists the epochs kept.")]
WeightOpt = Annotated[Optional[list[str]], typer.Option(
    "--weight", "-w", metavar="NAME", show_default=False,
    help="A parameter by name: v1, w11, w[1,2], b_A1 ... (see `bpcli show`). Repeat it or separate with commas. "
         "explain needs one; gradcheck and step show only these (default: all).")]


_TRAILING = re.compile(r"[ \t]+((?:\x1b\[[0-9;]*m)*)$", re.M)  # a line's trailing spaces, before any style's end


@functools.cache
def _safe_console_class():
    """A Rich Console that escapes control characters in every piece of text it is given to show.

    The one boundary every view passes (tables, panels, progress, errors): Rich's own styles and cursor
    moves are not text segments and pass unchanged; a closed pipe is left to handles_errors.
    """
    from rich.console import Console
    from rich.segment import Segment

    from bpcli.errors import terminal_safe

    class SafeConsole(Console):
        def _render_buffer(self, buffer):
            text = super()._render_buffer(
                seg if seg.control or seg.text.isprintable() else Segment(terminal_safe(seg.text), seg.style)
                for seg in buffer)
            # Rich pads every cell and panel line to the table's width; in a pipe or a file that is trailing space
            return text if self.is_terminal else _TRAILING.sub(r"\1", text)

        def on_broken_pipe(self) -> None:
            raise BrokenPipeError

    return SafeConsole


def out_console():
    return _safe_console_class()(highlight=False)


def err_console():
    return _safe_console_class()(stderr=True, highlight=False)


def emit_text(text: str) -> None:
    """Plain text (DOT, Markdown, LaTeX) on stdout, with control characters from user text escaped."""
    from bpcli.errors import terminal_safe
    sys.stdout.write(terminal_safe(text))


class _Emitted:
    json = False  # this command has printed its JSON document (an error after it adds no second one)


def emit_json(obj: dict) -> None:
    """JSON on stdout, never through Rich (which wraps lines and eats [markup])."""
    from bpcli.training.results import finite_or_none
    print(json.dumps(finite_or_none(obj), indent=2, allow_nan=False))
    _Emitted.json = True


def fail(message: str, code: int = EXIT_BAD_INPUT) -> None:
    """Print each line of `message` as an error on stderr and exit."""
    from rich.markup import escape

    from bpcli.errors import printable
    err = err_console()
    for line in str(message).split("\n"):  # one problem per line; other line breaks are shown escaped
        err.print(f"[bold red]error:[/] {escape(printable(_once(line)))}", soft_wrap=True)
    raise typer.Exit(code)


BpcliGroup.fail = staticmethod(fail)  # Click's usage errors, found before any command runs, print as ours do


def _once(line: str) -> str:
    """'run/config.yaml: run/config.yaml:3: ...' -> 'run/config.yaml:3: ...': a path said once, where two layers
    of the code each put the file they were reading in front of the message."""
    import re
    return re.sub(r"^(\S+): \1(?=[:\s])", r"\1", line)


def handles_errors(fn):
    """The CLI boundary: one clear line per problem and its exit code; tracebacks stay for bugs.

    BpcliError -> its message and exit code; an OSError (a full disk, a folder that cannot be written,
    a file that cannot be read, stdout on /dev/full) -> one line, exit 2; a closed stdout pipe
    (`bpcli train --json | head -1`) -> a quiet exit 141, like other command-line tools; numpy's
    RuntimeWarnings are held back and reported once as what they mean.
    A command called with json_out=True also gets each error as {"error": {"message", "exit_code"}} on stdout.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        import warnings
        caught: list = []
        _Emitted.json = False
        as_json = bool(kwargs.get("json_out"))

        def error(message: str, code: int) -> None:
            """Under --json, the error object on stdout too (unless the command's document is out already)."""
            if as_json and not _Emitted.json:
                print_error_json("\n".join(_once(line) for line in message.split("\n")), code)

        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("default", RuntimeWarning)
                try:
                    result = fn(*args, **kwargs)
                    sys.stdout.flush()
                    return result
                except BpcliError as err:
                    error(as_flags(err), err.exit_code)
                    fail(as_flags(err), err.exit_code)
                except Interrupted as err:
                    error(str(err), err.exit_code)
                    err_console().print(str(err), markup=False, soft_wrap=True)
                    raise typer.Exit(err.exit_code) from None
                except KeyboardInterrupt:
                    error("interrupted", EXIT_INTERRUPTED)
                    err_console().print("interrupted")
                    raise typer.Exit(EXIT_INTERRUPTED) from None
                except BrokenPipeError:
                    _quiet_stdout()
                    raise typer.Exit(EXIT_BROKEN_PIPE) from None
                except OSError as err:
                    error(_os_problem(err), EXIT_BAD_INPUT)  # tried first: the failed write may be stdout itself
                    _quiet_stdout()
                    fail(_os_problem(err))
                except MemoryError:
                    error(OUT_OF_MEMORY, EXIT_BAD_INPUT)
                    fail(OUT_OF_MEMORY)
        finally:
            _report_warnings(caught)

    return wrapper


# the arguments the core names whose flag is spelt otherwise (a count of samples is --n-samples, never --samples)
FLAG_OF = {"samples": "--n-samples"}


def as_flags(err: BpcliError) -> str:
    """The error's message as the user typed the command: an argument the core names (`sample`) is its flag."""
    if isinstance(err, ArgumentError):
        return f"{FLAG_OF.get(err.argument, '--' + err.argument.replace('_', '-'))}: {err.problem}"
    return str(err)


OUT_OF_MEMORY = "out of memory: the network or the data is too large for this machine"


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so Python's final flush of what is left cannot fail again (Python's docs' advice)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no real stdout (a test runner's buffer)
        pass


def _os_problem(err: OSError) -> str:
    """One line for an operating-system error: the file at fault and what went wrong."""
    what = err.strerror or type(err).__name__
    if err.filename is None:
        return f"cannot write the output ({what})"
    return f"{err.filename}: {what}"


def _report_warnings(caught: list) -> None:
    """Show warnings other than RuntimeWarning as usual; sum up numpy's RuntimeWarnings in one note."""
    import warnings
    runtime = sorted({str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)})
    for w in caught:
        if not issubclass(w.category, RuntimeWarning):
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    if runtime:
        try:
            err_console().print(f"note: the network's values overflow float64 at these weights (numpy: "
                                f"{'; '.join(runtime)}); the inf and nan shown come from that", markup=False,
                                soft_wrap=True)
        except OSError:
            pass


def _version(value: bool) -> None:
    if value:
        print(f"bpcli {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option("--version", help="Show the version and exit.", callback=_version,
                                          is_eager=True)] = False,
) -> None:
    """bpcli: backprop you can read."""
    if ctx.invoked_subcommand is None:  # bare `bpcli`: the help, and success
        print(ctx.get_help())
        raise typer.Exit(0)


def split_names(values: list[str]) -> list[str]:
    """'v1,w11' and repeated options -> ['v1', 'w11']; a comma inside brackets (w[1,2]) stays."""
    import re
    names: list[str] = []
    for v in values:
        for part in re.split(r",(?![^\[]*\])", v):
            part = part.strip()
            if part and part not in names:
                names.append(part)
    return names


def weight_names(weight: list[str] | None) -> list[str]:
    """The names --weight gives (split_names), or none when it is not given; an error when it is given empty."""
    names = split_names(weight or [])
    if weight and not names:
        raise BpcliError("--weight: give at least one parameter name (see `bpcli show`)")
    return names


def resolve_weights(net, names) -> None:
    """Check every --weight name against the network; NameError_ saying it was the --weight option."""
    from bpcli.errors import NameError_
    for name in names:
        try:
            net.resolve(name)
        except NameError_ as err:
            raise NameError_(f"--weight: {err}") from None


def source_of(run_dir, epoch: Optional[int], config_path: str) -> str:
    """What a result says it was computed from: the run folder (`after epoch N` with --epoch N) or the config."""
    if run_dir is None:
        return config_path
    return str(run_dir) + (f" after epoch {epoch}" if epoch is not None else "")


@contextlib.contextmanager
def progress_bar(what: str, unit: str = "", total: Optional[int] = None, console=None):
    """A progress bar on stderr while the core works (Rich drops it when stderr is not a terminal): `what`, the
    bar, done of total, `unit`, the time left; yields progress(done, total)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn(what), BarColumn(), MofNCompleteColumn(), *((TextColumn(unit),) if unit else ()),
               TimeRemainingColumn())
    with Progress(*columns, console=console if console is not None else err_console(), transient=True) as bar:
        task = bar.add_task(what, total=total)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def check_range(option: str, value: int, lo: int, hi: int) -> None:
    """A whole-number option between lo and hi, with one message whichever command asks."""
    if not lo <= value <= hi:
        raise BpcliError(f"{option}: must be between {lo} and {hi}, found {value}")


def check_dpi(dpi: int) -> None:
    """--dpi of a saved picture (plot, compare): 10 to 600."""
    check_range("--dpi", dpi, 10, 600)


def check_rows(rows: int) -> None:
    """--rows, the entries a table lists (gradcheck, step): 0 or more."""
    if rows < 0:
        raise BpcliError(f"--rows: must be 0 or more, found {rows}")


# --- loading what a command works on ---------------------------------------------------------


def load_target(target: Optional[str], config: Optional[Path] = None, run: Optional[Path] = None,
                epoch: Optional[int] = None):
    """(cfg, net, prepared, run_dir) from a positional config-or-run, --config, --run, or the built-in seed.

    epoch N (--epoch): a run's network as it was after epoch N, from its snapshot; BpcliError without a run.
    """
    return load_target_state(target, config, run, epoch)[:4]


def load_target_state(target: Optional[str], config: Optional[Path] = None, run: Optional[Path] = None,
                      epoch: Optional[int] = None):
    """(cfg, net, prepared, run_dir, state) as load_target, with the run's TrainState at that epoch (optimiser
    buffers, step count, RNG), or None for a config (training starts from zeros at step 0)."""
    from bpcli.config.loader import load_config
    from bpcli.nn.model import build
    from bpcli.data.dataset import prepare
    from bpcli.runs.store import load_run

    if sum(x is not None for x in (target, config, run)) > 1:
        raise BpcliError("give one of a positional CONFIG|RUN, --config or --run, not several")
    from bpcli.runs.latest import resolve_run
    target, run = (None if target is None else str(resolve_run(target))), resolve_run(run)  # `latest`
    if target is not None:
        p = Path(target)
        if p.is_dir():
            run = p
        else:
            config = p
    if run is not None:
        loaded = load_run(run, epoch)
        return loaded.cfg, loaded.net, loaded.prepared, loaded.run_dir, loaded.state
    if epoch is not None:
        where = f"{config} is a config" if config is not None else "no run was given"
        raise BpcliError(f"--epoch: {where}; --epoch picks an epoch of a run folder made by `bpcli train` "
                         "(a config is always at its initial weights)")
    if config is not None and Path(config).name == "config.yaml" and (Path(config).parent / "weights.npz").exists():
        run_dir = Path(config).parent.parent if (Path(config).parent.parent / "run.json").exists() else Path(config).parent
        err_console().print(f"note: {config} is a run's config, read at its initial weights; give the folder "
                        f"{run_dir} for the trained ones", markup=False, soft_wrap=True)
    cfg, data = load_config(config)
    return cfg, build(cfg), prepare(cfg, data), None, None


def emit_gradcheck(report, json_out: bool, rows: int) -> None:
    """A gradcheck report (against central differences or PyTorch) as JSON or its table, then its exit code."""
    if json_out:
        emit_json(report.to_dict())
    else:
        from bpcli.render.gradcheck import gradcheck_view
        out_console().print(gradcheck_view(report, max_rows=rows))
    if report.exit_code:
        raise typer.Exit(report.exit_code)
