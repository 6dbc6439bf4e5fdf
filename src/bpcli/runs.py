"""Run folders: saving a trained network with its history as one checkpoint, and loading it back."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from bpcli import __version__
from bpcli.config import load_config
from bpcli.data import Prepared, Scaling, prepare
from bpcli.errors import BpcliError, RunFolderError, SaveError
from bpcli.files import atomic_write_files, npz_bytes, read_npz, sha256
from bpcli.model import Network, build
from bpcli.schema import FORMAT_VERSION, NetConfig
from bpcli.train import EpochRecord, TrainState

WEIGHTS = "weights.npz"
STATE = "state.npz"
CONFIG = "config.yaml"


# --- run folders -------------------------------------------------------------------------


def new_run_dir(base: Path, name: str) -> Path:
    """runs/<name>, or runs/<name>-2, -3, ... : never an existing folder, always directly inside `base`.

    The name comes from a config, so it is reduced to letters, digits, '-', '_' and '.', with no
    leading dot (no '..', no hidden folders) and at most 80 characters.
    """
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SaveError(f"{base}: cannot create the runs folder ({err.strerror}); choose one with --out") from None
    safe = "".join(c if (c.isascii() and c.isalnum()) or c in "-_." else "_" for c in name)
    safe = safe.lstrip(".")[:80] or "run"
    candidate = base / safe
    n = 2
    while True:
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            candidate = base / f"{safe}-{n}"
            n += 1
        except OSError as err:
            raise SaveError(f"{candidate}: cannot create the run folder ({err.strerror}); choose one with --out") from None


def history_csv(history: list[EpochRecord], layer_letters: list[str]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["epoch", "loss", "val_loss", "metric", "val_metric", "seconds"]
               + [f"grad_norm_{c}" for c in layer_letters] + [f"update_ratio_{c}" for c in layer_letters]
               + [f"saturation_{c}" for c in layer_letters] + ["penalty", "best"])
    for r in history:
        w.writerow([r.epoch, repr(r.loss), _opt(r.val_loss), _opt(r.metric), _opt(r.val_metric), f"{r.seconds:.6f}"]
                   + [repr(g) for g in r.grad_norm] + [repr(u) for u in r.update_ratio]
                   + [_opt(s) for s in r.saturation] + [_opt(r.penalty), int(r.best)])
    return buf.getvalue()


def _opt(v: float | None) -> str:
    return "" if v is None else repr(v)


STATUSES = ("running", "completed", "early_stopped", "diverged", "interrupted")
CHECKED = ("history.json", WEIGHTS, STATE)  # their SHA-256 is recorded in train_state.json


def save_run(run_dir: Path, cfg: NetConfig, net: Network, prepared: Prepared, history: list[EpochRecord],
             state: TrainState, summary: dict) -> None:
    """Write every file of the run folder as one checkpoint: all or nothing (see atomic_write_files).

    train_state.json goes last and records the SHA-256 of the history, weights and optimiser state,
    so a file changed afterwards (or a save cut short between renames) is detected when loading.
    SaveError if the folder cannot be written; the previous checkpoint is then left as it was.
    """
    files: dict[str, bytes] = {CONFIG: yaml.safe_dump(cfg.to_dict(), sort_keys=False).encode()}
    if prepared.scaling is not None:
        files["scaling.json"] = json.dumps(prepared.scaling.to_dict(), indent=2).encode()
    letters = [layer.letter for layer in net.layers]
    files["history.csv"] = history_csv(history, letters).encode()
    files["history.json"] = json.dumps([r.to_dict() for r in history]).encode()
    weights = {k: np.asarray(v, dtype=np.float64) for k, v in net.named_arrays().items()}
    files[WEIGHTS] = npz_bytes(weights)
    files[STATE] = npz_bytes({k: np.asarray(v) for k, v in state.buffers.items()})
    files["metrics.json"] = json.dumps(summary, indent=2).encode()
    meta = {
        "format_version": FORMAT_VERSION, "bpcli_version": __version__, "epoch": state.epoch, "step": state.step,
        "status": state.status, "message": state.message, "rng_state": state.rng_state,
        "best_val": state.best_val if np.isfinite(state.best_val) else None, "bad_epochs": state.bad_epochs,
        "best_epoch": state.best_epoch, "weights_epoch": state.weights_epoch,
        "files": {name: sha256(files[name]) for name in CHECKED},
    }
    files["train_state.json"] = json.dumps(meta, indent=2).encode()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_files(run_dir, files)
    except OSError as err:
        raise SaveError(f"{run_dir}: cannot save the run ({err.strerror or err}); "
                        "the files saved before are unchanged") from None


@dataclass
class LoadedRun:
    run_dir: Path
    cfg: NetConfig
    net: Network
    prepared: Prepared
    history: list[dict]
    state: TrainState
    metrics: dict


def _max_bytes(net: Network) -> int:
    return max(a.size for a in net.named_arrays().values()) * 8 + 4096


def load_weights(path: Path, net: Network) -> Network:
    """Put the arrays of a weights.npz into a copy of `net`; RunFolderError names the file on any mismatch."""
    arrays = read_npz(path, _max_bytes(net))
    out = net.copy()
    expected = net.named_arrays()
    missing = [k for k in expected if k not in arrays]
    extra = [k for k in arrays if k not in expected]
    if missing or extra:
        raise RunFolderError(f"{path}: arrays do not match the config: missing {missing or 'none'}, "
                             f"unexpected {extra or 'none'}")
    for l, layer in enumerate(out.layers):
        for kind in ("W", "b"):
            key = f"{layer.letter}.{kind}"
            if key not in arrays:
                continue
            a = arrays[key]
            target = out.W[l] if kind == "W" else out.b[l]
            if a.shape != target.shape:
                raise RunFolderError(f"{path}: {key} has shape {a.shape}, the config needs {target.shape}")
            if a.dtype.kind not in "fi":
                raise RunFolderError(f"{path}: {key} is not numeric ({a.dtype})")
            if not np.all(np.isfinite(a)):
                raise RunFolderError(f"{path}: {key} holds NaN or infinite values")
            target[...] = a.astype(target.dtype)
    return out


def _read_json(path: Path, default=None):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if default is not None:
            return default
        raise RunFolderError(f"{path}: missing from the run folder") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RunFolderError(f"{path}: damaged ({err})") from None


def load_run(run_dir: str | Path) -> LoadedRun:
    """Load a run folder: its resolved config, trained weights, data split and scaling, history.

    Every file is checked (format version, SHA-256 recorded at save time, shapes, finite values);
    RunFolderError names the file at fault.
    """
    d = Path(run_dir)
    if d.is_file():
        how = f"; make one with `bpcli train {d}`" if d.suffix.lower() in (".yaml", ".yml") else ""
        raise RunFolderError(f"{d}: is a file, not a run folder{how}")
    if not d.is_dir():
        raise RunFolderError(f"{d}: run folder not found")
    if not (d / CONFIG).exists():
        raise RunFolderError(f"{d}: not a run folder (no {CONFIG}); give a folder made by `bpcli train`")
    meta_path = d / "train_state.json"
    meta = _read_json(meta_path, default={})
    if not isinstance(meta, dict):
        raise RunFolderError(f"{meta_path}: damaged (expected a JSON object)")
    version = meta.get("format_version", 1)
    if isinstance(version, bool) or not isinstance(version, int):
        raise RunFolderError(f"{meta_path}: damaged (format_version is {version!r})")
    if version > FORMAT_VERSION:
        raise RunFolderError(f"{meta_path}: run format version {version} is newer "
                             f"than this bpcli understands ({FORMAT_VERSION}); upgrade bpcli")
    recorded = meta.get("files") or {}
    if not isinstance(recorded, dict):
        raise RunFolderError(f"{meta_path}: damaged (files is not a mapping)")
    for name, digest in recorded.items():
        if name not in CHECKED:
            continue
        try:
            actual = sha256((d / name).read_bytes())
        except FileNotFoundError:
            raise RunFolderError(f"{d / name}: missing from the run folder") from None
        except OSError as err:
            raise RunFolderError(f"{d / name}: cannot read ({err.strerror})") from None
        if actual != digest:
            raise RunFolderError(f"{d / name}: does not match the checksum recorded in train_state.json "
                                 "(the file was changed after the run was saved)")
    try:
        cfg, data = load_config(d / CONFIG)
    except BpcliError as err:
        raise RunFolderError(f"{d / CONFIG}: {str(err).splitlines()[0]}") from None
    scaling = None
    if (d / "scaling.json").exists():
        sd = _read_json(d / "scaling.json")
        try:
            scaling = Scaling.from_dict(sd)
        except (KeyError, TypeError, ValueError):
            raise RunFolderError(f"{d / 'scaling.json'}: damaged (expected mean and std lists)") from None
        if scaling.mean.shape != (len(cfg.inputs),) or scaling.std.shape != (len(cfg.inputs),):
            raise RunFolderError(f"{d / 'scaling.json'}: has {scaling.mean.shape} statistics for {len(cfg.inputs)} inputs")
        if not (np.all(np.isfinite(scaling.mean)) and np.all(np.isfinite(scaling.std)) and np.all(scaling.std > 0)):
            raise RunFolderError(f"{d / 'scaling.json'}: damaged (statistics must be finite, std above 0)")
    net = load_weights(d / WEIGHTS, build(cfg))
    prepared = prepare(cfg, data, scaling)
    history = _read_json(d / "history.json", default=[])
    try:
        if not isinstance(history, list):
            raise TypeError("not a list")
        for h in history:
            record_from_dict(h)
    except (KeyError, TypeError, ValueError) as err:
        raise RunFolderError(f"{d / 'history.json'}: damaged ({err})") from None
    state = _state_from_meta(meta, meta_path, len(history))
    if (d / STATE).exists():
        arrays = read_npz(d / STATE, _max_bytes(net), "optimiser state file")
        expected = net.named_arrays()
        for k, v in arrays.items():
            kind, _, key = k.partition(":")
            if kind not in ("m", "v", "best") or key not in expected or v.shape != expected[key].shape \
                    or v.dtype.kind != "f" or not np.all(np.isfinite(v)):
                raise RunFolderError(f"{d / STATE}: array '{k}' does not fit the network in {CONFIG}")
        state.buffers = {k: v.astype(net.dtype) for k, v in arrays.items()}
    metrics = _read_json(d / "metrics.json", default={})
    return LoadedRun(d, cfg, net, prepared, history, state, metrics)


def _state_from_meta(meta: dict, path: Path, n_history: int) -> TrainState:
    """TrainState from train_state.json, each field checked; RunFolderError naming the file if not."""
    def whole(key: str, default: int) -> int:
        v = meta.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise RunFolderError(f"{path}: damaged ({key} is {v!r})")
        return v

    epoch, step, bad = whole("epoch", n_history), whole("step", 0), whole("bad_epochs", 0)
    best_epoch = whole("best_epoch", 0)
    weights_epoch = meta.get("weights_epoch")
    if weights_epoch is not None:
        weights_epoch = whole("weights_epoch", 0)
    if best_epoch > epoch or (weights_epoch is not None and weights_epoch > epoch):
        raise RunFolderError(f"{path}: damaged (best_epoch or weights_epoch after epoch {epoch})")
    if epoch != n_history:
        raise RunFolderError(f"{path}: says epoch {epoch} but history.json holds {n_history} epochs")
    status = meta.get("status", "completed")
    if status not in STATUSES:
        raise RunFolderError(f"{path}: damaged (unknown status {status!r})")
    best = meta.get("best_val")
    if best is not None and (isinstance(best, bool) or not isinstance(best, (int, float))):
        raise RunFolderError(f"{path}: damaged (best_val is {best!r})")
    rng_state = meta.get("rng_state")
    if rng_state is not None:
        try:
            np.random.default_rng().bit_generator.state = rng_state
        except (TypeError, ValueError, KeyError, OverflowError):
            raise RunFolderError(f"{path}: damaged (rng_state is not a random generator state)") from None
    message = meta.get("message", "")
    return TrainState(epoch=epoch, step=step, rng_state=rng_state,
                      best_val=float("inf") if best is None else float(best), bad_epochs=bad,
                      status=status, message=message if isinstance(message, str) else "",
                      best_epoch=best_epoch, weights_epoch=weights_epoch)


def record_from_dict(d: dict) -> EpochRecord:
    """An EpochRecord from its history.json form; KeyError, TypeError or ValueError if it is damaged."""
    return EpochRecord(
        int(d["epoch"]), float(d["loss"]), d.get("val_loss"), d.get("metric"), d.get("val_metric"),
        tuple(d.get("grad_norm", ())), tuple(d.get("weight_norm", ())), tuple(d.get("update_ratio", ())),
        tuple(d.get("saturation", ())), float(d.get("seconds", 0.0)),
        None if d.get("penalty") is None else float(d["penalty"]), bool(d.get("best", False)),
    )
