"""Rich view of `bpcli runs` (RunsList)."""

from __future__ import annotations

from datetime import datetime

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from bpcli.render.numbers import fmt, fmt_metric
from bpcli.render.wrap import Prose


def stepped_text(steps: int, path: str) -> str:
    """What a run `bpcli step --out` made is, for every command that shows one: its steps, and how it goes on."""
    return (f"stepped (made by `bpcli step --out`, {steps} step{'s' if steps != 1 else ''}); "
            f"`bpcli train --resume {path}` continues it")


def killed_text(epoch: int | None, path: str) -> str:
    """What a killed run is (saved as running, no process holds it), for every command that shows one: why, and
    how it goes on (from its last saved epoch)."""
    return (f"killed (its process ended without saving its stop); `bpcli train --resume {path}` continues "
            + (f"from epoch {epoch}" if epoch is not None else "it"))


def local_time(iso: str, now: datetime | None = None) -> str:
    """When, in the local time zone and 12 characters, as `ls -l` writes it: 'Nov 30 14:03' within the last
    half year, 'Nov 30  2024' before."""
    try:
        t = datetime.fromisoformat(iso).astimezone()
    except ValueError:
        return iso or "-"
    now = now or datetime.now().astimezone()
    recent = -86400 < (now - t).total_seconds() < 182 * 86400
    return f"{t:%b} {t.day:2d} {t:%H:%M}" if recent else f"{t:%b} {t.day:2d}  {t.year}"


def _metric(name: str | None, v: float | None) -> str:
    """99.2% for an accuracy, 0.9929 for an R^2."""
    if v is None or name is None:
        return "-"
    return fmt_metric(name, v) if name == "accuracy" else fmt(v, 4)


def _cells(r) -> list[str]:
    """A run's cells after its name and before the config: created, status, epochs, losses, metrics."""
    if not r.ok:
        return [local_time(r.created), r.status.replace("_", " ")]
    return [local_time(r.created), r.status.replace("_", " "), "-" if r.epochs is None else str(r.epochs),
            fmt(r.loss, 3), fmt(r.val_loss, 3), _metric(r.metric, r.train_metric), _metric(r.metric, r.val_metric)]


HEADS = ("created", "status", "epochs", "loss", "loss", "metric", "metric")  # the widest line of each heading


def _name_width(runs, width: int, wide: bool) -> int:
    """The run column's width: at most 24, and no more than the other columns leave of the terminal (a long
    name folds rather than pushing the numbers off the edge); the config column (wide) takes what is left."""
    others = [len(h) for h in HEADS]
    for r in runs:
        for i, c in enumerate(_cells(r)):
            others[i] = max(others[i], len(c), 13 if i == 1 else 0)  # status: "early stopped" whole
    left = width - sum(others) - 2 * len(others) - (20 if wide else 0)
    return max(6, min(24, left))


def _column_widths(runs) -> list[int]:
    """The widest cell of each column after the name (heading included), so separate tables line up."""
    widths = [len(h) for h in HEADS]
    for r in runs:
        for i, c in enumerate(_cells(r)):
            widths[i] = max(widths[i], len(c), 13 if i == 1 else 0)
    return widths


def short_path(path: str, room: int) -> str:
    """A path in lines of at most `room` characters, never broken inside a name: whole when it fits, else shortened
    from the left with an ellipsis at a folder boundary ('…/configs/iris.yaml'); when even '…/' and the file name
    do not fit, the folders (shortened so) on a line above the file name."""
    if len(path) <= room:
        return path
    head, sep, base = path.rpartition("/")
    if not sep or not head:
        return path  # one name: never cut (the column's ellipsis is the last resort)
    if len(base) + 2 <= room:
        tail = path[len(path) - (room - 1):]
        return "…" + tail[tail.find("/"):]
    return short_path(head + "/", room) + "\n" + base


def _config_room(runs, widths: list[int], width: int, names: bool) -> int:
    """What the config column has left of `width` beside the numbers and (names) the run names, columns 2 apart."""
    name = max([len("run")] + [len(r.name) for r in runs]) + 2 if names else 0
    status = min(max(widths[1], 13), 18)
    return width - name - sum(widths) + widths[1] - status - 2 * len(widths)


def _file_name(path: str | None) -> int:
    return len((path or "-").rpartition("/")[2])


def runs_view(res, width: int = 80) -> Group:
    """The runs, newest first: name, created, status, epochs, final losses and metrics, and (from 110 columns
    on) the config each was trained from."""
    if not res.runs:
        return Group(Text(f"no run folders in {res.folder}; `bpcli train CONFIG` makes one"))
    wide = width >= 110
    # numbers never wrap and names never break (they are copied into the next command): when the longest name
    # does not fit beside the numbers, every name goes on its own line above its numbers
    room = _name_width(res.runs, width, wide)
    own_line = max(len(r.name) for r in res.runs) > room
    widths = _column_widths(res.runs)
    # a config path is shortened from the left, never cut inside a name: no config column when a file name
    # itself does not fit (then the note says how wide a terminal shows it)
    room_config = _config_room(res.runs, widths, width, not own_line)
    need = max(_file_name(r.config) for r in res.runs)
    if wide and need > room_config:
        wide = False
        room = _name_width(res.runs, width, wide)
        own_line = max(len(r.name) for r in res.runs) > room

    def table(header: bool) -> Table:
        t = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, padding=(0, 1, 0, 0),  # columns 2 apart
                  show_header=header)
        if not own_line:
            t.add_column("run", no_wrap=True)
        t.add_column("created", no_wrap=True, min_width=widths[0] if own_line else None)
        t.add_column("status", overflow="fold", min_width=min(widths[1], 18) if own_line else 13,
                     max_width=18)  # "early stopped" on one line
        for i, col in enumerate(("epochs", "loss", "val\nloss", "metric", "val\nmetric")):
            t.add_column(col, justify="right", no_wrap=True, min_width=widths[i + 2] if own_line else None)
        if wide:
            t.add_column("config", no_wrap=True, overflow="ellipsis")
        return t

    def row(r) -> list:
        status = Text(r.status.replace("_", " "), style=None if r.ok else "red")
        name = [] if own_line else [Text(r.name)]
        if not r.ok:
            return [*name, local_time(r.created), status, *[""] * (6 if wide else 5)]
        config = [Text(short_path(r.config or "-", room_config))] if wide else []
        return [*name, *_cells(r)[:1], status, *_cells(r)[2:], *config]

    if own_line:
        parts = [table(True)]
        for r in res.runs:
            t = table(False)
            t.add_row(*row(r))
            parts += [Text(r.name, style="bold"), t]
        t = Group(*parts)
    else:
        t = table(True)
        for r in res.runs:
            t.add_row(*row(r))
    n = len(res.runs)
    notes = [Text(f"{r.name}: {r.problem}", style="dim") for r in res.runs if not r.ok and r.problem != r.status]
    notes += [Prose(f"{r.name}: {killed_text(r.epochs, r.path)}", style="dim") for r in res.runs
              if r.status == "killed"]  # wrapped between words, the command whole
    notes += [Text(f"{r.name}: {stepped_text(r.steps, r.path)}", style="dim") for r in res.runs if r.status == "stepped"]
    notes += [Text("metric: accuracy for a classifier, R^2 for regression", style="dim")]
    if not wide:
        at = max(110, width + need - room_config) if width >= 110 else 110
        notes.append(Text(f"the config of each run: with --json, or on a terminal {at} columns wide", style="dim"))
    return Group(Text.assemble((f"{n} run folder{'s' if n != 1 else ''}", "bold"), f" in {res.folder}, newest first"),
                 t, *notes)
