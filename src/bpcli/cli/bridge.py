"""The commands of the bridge to PyTorch: export, import, and gradcheck's --against torch."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from bpcli.cli.common import (
    LATEST, JsonOpt, RunArg, emit_gradcheck, emit_json, err_console, handles_errors, load_target, out_console,
    source_of,
)
from bpcli.errors import BpcliError

ForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite what is already there.")]


@handles_errors
def export(
    out: Annotated[Path, typer.Option("--out", "-o", help="The folder to write (created; refused if it holds "
                                      "anything, unless --force).", show_default=False)],
    run: RunArg = LATEST,
    to: Annotated[str, typer.Option("--to", help="pytorch: model.py (an nn.Module), weights.npz, names.json; "
                                    "numpy: predict.py, weights.npz, names.json. onnx is not built yet.")] = "pytorch",
    force: ForceOpt = False,
    epoch: Annotated[Optional[int], typer.Option(
        "--epoch", metavar="N", show_default=False,
        help="The network as it was after epoch N (its snapshot) instead of the run's saved weights.")] = None,
    optimizer_state: Annotated[bool, typer.Option(
        "--optimizer-state", help="Also write the optimiser's state (optimizer.json, optimizer_state.npz) in the "
        "layout of PyTorch's optimizer state_dict, and load_optimizer(model) in model.py: the next torch.optim "
        "step is bpcli's next step.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Write a trained run as a PyTorch module or plain-numpy code, with its weights; needs no torch.

    The module reproduces bpcli's network exactly: sizes, activations with bpcli's constants, bias modes (frozen: a buffer; shared: one parameter for the layer), float64 or float32 as trained, the input standardisation and the class names.
    Its cost(model, x, y) is bpcli's cost, so training can go on in PyTorch. The weights are an .npz read with allow_pickle=False; names.json maps every entry to bpcli's name (A.weight[j-1, k-1] is w_jk).
    Exit 0 written, 2 bad input (a folder that is not a run, an --out that holds files, an unknown format).
    """
    from bpcli.bridge.export import FORMATS, ONNX_LEFT, export as write_export
    from bpcli.bridge.export_spec import spec_from_network
    from bpcli.runs.latest import resolve_run
    from bpcli.runs.store import load_run

    fmt = to.lower()
    if fmt not in FORMATS:
        from bpcli.errors import did_you_mean
        raise BpcliError(f"--to: unknown format '{to}'{did_you_mean(to, FORMATS)}; expected pytorch or numpy")
    if fmt == "onnx":
        raise BpcliError(ONNX_LEFT)
    loaded = load_run(resolve_run(run), epoch)
    source = str(loaded.run_dir) + (f", epoch {epoch}" if epoch is not None else "")
    spec = spec_from_network(loaded.net, loaded.cfg.name, source, loaded.prepared.scaling,
                             loaded.prepared.train.class_names)
    state = None
    if optimizer_state:
        from bpcli.bridge.export_state import optimizer_files
        st = loaded.state
        if st.weights_epoch is not None and st.weights_epoch != st.epoch:
            raise BpcliError(f"--optimizer-state: the saved weights are epoch {st.weights_epoch}'s (the best "
                             f"validation loss) but the optimiser's state is epoch {st.epoch}'s; give --epoch N "
                             "for a snapshot whose weights and state belong together")
        state = optimizer_files(loaded.net, loaded.cfg.train, st.buffers, st.step, spec.dtype)
    result = write_export(spec, fmt, out, force, state)
    if json_out:
        emit_json(result.to_dict())
    else:
        from bpcli.render.bridge import export_view
        out_console().print(export_view(result))


@handles_errors
def import_(
    state_file: Annotated[Path, typer.Argument(help="An .npz of a PyTorch model's state_dict (numpy.savez).",
                                               show_default=False, metavar="STATE_FILE")],
    arch: Annotated[str, typer.Option("--arch", help="Sizes from the inputs to the outputs, e.g. 2-4-3.",
                                      show_default=False)],
    activations: Annotated[str, typer.Option("--activations", help="One per layer, comma-separated, e.g. "
                                             "tanh,softmax; parameters as leaky_relu:slope=0.2.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="The config file to write.", show_default=False)],
    loss: Annotated[str, typer.Option("--loss", help="bpcli's loss, e.g. cross_entropy, "
                                      "squared_error:convention=mean.")] = "squared_error",
    data: Annotated[Optional[str], typer.Option("--data", help="The samples: a CSV file, an .npz with arrays x "
                                                "and y, or a generator (xor, moons, ...).", show_default=False)] = None,
    target: Annotated[Optional[str], typer.Option("--target", help="The CSV's target column (default: the last).",
                                                  show_default=False)] = None,
    columns: Annotated[Optional[str], typer.Option("--columns", help="The CSV's input columns, comma-separated "
                                                   "(default: every column but the target).",
                                                   show_default=False)] = None,
    layers: Annotated[Optional[str], typer.Option("--layers", help="The Linear layers' prefixes from the input to "
                                                  "the output, e.g. encoder,decoder (default: the file's order).",
                                                  show_default=False)] = None,
    force: ForceOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Turn a small PyTorch MLP (Linear layers and activations) into a bpcli config with its weights.

    Save the state with numpy, never torch.save (a pickle, which bpcli refuses): np.savez("state.npz", **{k: v.numpy() for k, v in model.state_dict().items()}).
    The Linear layers are taken in the file's order, which np.savez keeps from the state_dict: the order the module registered them in (0, 2, 4, ... for an nn.Sequential); --layers encoder,decoder names another order. Each must have the shape --arch gives, and each layer's outputs must be the next one's inputs.
    Then `bpcli explain CONFIG -w w11`, `bpcli gradcheck CONFIG` and `bpcli show CONFIG --dot` work on it.
    Exit 0 written, 2 bad input (shapes that do not fit --arch, an unknown activation or loss, a pickle).
    """
    from bpcli.bridge.import_torch import import_state

    result = import_state(state_file, arch, activations, loss, data, out, target, force, layers, columns)
    if json_out:
        emit_json(result.to_dict())
    else:
        from bpcli.render.bridge import import_view
        out_console().print(import_view(result))


def gradcheck_against(against: str, target, config, run, *, samples: Optional[int], tol: Optional[float],
                      weights: tuple[str, ...], seed: int, rows: int, json_out: bool, refused: list[str],
                      epoch: Optional[int] = None) -> None:
    """gradcheck --against torch: backprop against PyTorch autograd, in gradcheck's table and JSON."""
    from bpcli.gradcheck.report import GradcheckOptions
    from bpcli.bridge.torch_check import TORCH_TOL, check_against_torch, require_torch

    if against.lower() not in ("torch", "pytorch"):
        raise BpcliError(f"--against: unknown oracle '{against}'; the one there is: torch")
    if refused:
        raise BpcliError(f"--against torch compares with autograd, not central differences: "
                         f"{', '.join(refused)} do not apply")
    opts = GradcheckOptions(tol=TORCH_TOL if tol is None else tol, samples=samples, weights=weights, seed=seed)
    opts.validate()
    require_torch("gradcheck --against torch")
    cfg, net, prepared, run_dir = load_target(target, config, run, epoch)
    data = prepared.train
    where = source_of(run_dir, epoch, cfg.path)
    if not json_out:  # importing torch takes seconds: say what the wait is
        err_console().print("gradcheck: loading PyTorch", markup=False, highlight=False, soft_wrap=True)
    report = check_against_torch(net, data.x, data.y, opts, cfg.name, where)
    emit_gradcheck(report, json_out, rows)
