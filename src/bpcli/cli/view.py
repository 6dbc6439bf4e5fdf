"""The command that writes the learning page: view (a run or a config as one self-contained HTML file)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from bpcli.cli.common import ForceOpt, JsonOpt, emit_json, handles_errors, load_target, out_console, progress_bar


@handles_errors
def view(
    target: Annotated[str, typer.Argument(
        help="A run folder made by `bpcli train` (default: latest, the newest in runs/) or a config file (.yaml), "
             "shown as initialised.", metavar="RUN|CONFIG", show_default=False)] = "latest",
    out: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="The HTML file to write. Default: view.html in the run folder (for a config: in this folder).",
        show_default=False, metavar="FILE")] = None,
    force: ForceOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Write one self-contained HTML page to open in a browser: the network drawn by its weights at every kept epoch (a slider, play/pause), the loss curve, a sample selector, and for two inputs the output over the input plane.

    Click a weight or bias (or pick it from the list) for its chain rule at that epoch, with the numbers `bpcli explain --run RUN --epoch N --weight NAME --json` prints. The page makes no network request and works offline; at most 3 MB, so a long run shows an even spread of its epochs.
    """
    from bpcli.files import check_output, write_output
    from bpcli.runs.latest import resolve_run
    from bpcli.render.view_page import view_html
    from bpcli.render.view import view_config, view_run

    if out is not None:
        check_output(out, force, example="view.html")  # before the page is computed; written under the same rules
    path = resolve_run(target)
    if path.is_dir():
        with progress_bar("view", "epochs") as tick:
            page = view_run(path, tick)
        where = Path(page.source)
    else:
        cfg, net, prepared, _ = load_target(str(path))
        page = view_config(cfg, net, prepared)
        where = Path(".")
    out = out if out is not None else where / "view.html"
    html = view_html(page.to_dict())
    write_output(out, html, replace=force, reads=() if path.is_dir() else (path,), example="view.html")
    size = len(html.encode("utf-8"))
    summary = {"command": "view", "written": str(out), "bytes": size, "epochs_kept": page.kept,
               "epochs_shown": len(page.epochs), "note": page.note}
    if json_out:
        emit_json(summary)
    else:
        # how many epochs the page shows: here when it shows them all, else in the note (which says why not)
        epochs = "" if len(page.epochs) < page.kept else \
            ", 1 epoch" if page.kept == 1 else f", all {page.kept} kept epochs"
        out_console().print(f"wrote {out} ({size / 1e6:.2f} MB{epochs}); open it in a browser", markup=False,
                            soft_wrap=True)
        if page.note:
            out_console().print(f"note: {page.note}", markup=False, soft_wrap=True)
