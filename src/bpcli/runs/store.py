"""Run folders (format 2): each checkpoint a new folder, switched to by renaming run.json; loading checks every byte.

    RUN/run.json           the manifest: the current checkpoint, the training state, every file's SHA-256,
                           how much of history.csv is valid, and the SHA-256 of its own other fields
    RUN/history.csv        one row per epoch, appended (rows after the manifest's count are ignored)
    RUN/epoch-818/         the checkpoint run.json names: config.yaml, weights.npz, state.npz, metrics.json,
                           history-sample.json (at most ~2,000 epochs) and, with standardize, scaling.json
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bpcli import __version__
from bpcli.runs.claim import MANIFEST, MARKER, held
from bpcli.config.loader import load_config
from bpcli.data.dataset import Prepared, Scaling, prepare
from bpcli.errors import BpcliError, RunFolderError, SaveError
from bpcli.files import atomic_write_bytes, fsync_dir, npz_bytes, read_npz, read_regular, sha256, write_new_files
from bpcli.runs.history import HISTORY, SAMPLE, HistoryLog, sample_from_json
from bpcli.nn.model import Network, build
from bpcli.training.results import finite_or_none
from bpcli.runs.values import STATUSES, check_scaling, metrics_from_json, state_keys
from bpcli.schema import NetConfig
from bpcli.runs.snapshot_read import at_epoch, chunks_of
from bpcli.runs.snapshot_store import Recorder, is_pcg64_state
from bpcli.training.fit import TrainState
from bpcli.yamlsrc import dump_yaml

RUN_FORMAT = 2  # format 1: flat files renamed one by one, train_state.json, history.json
WEIGHTS, STATE, CONFIG, SCALING, METRICS = "weights.npz", "state.npz", "config.yaml", "scaling.json", "metrics.json"
REQUIRED = (CONFIG, WEIGHTS, STATE, METRICS, SAMPLE)
CHECKPOINT_NAME = re.compile(r"epoch-(0|[1-9][0-9]{0,7})(\.[1-9][0-9]{0,3})?")
MAX_JSON = 8_000_000  # no file bpcli writes as JSON comes near this (a sample of 2,050 records of 100 layers)


def _named(run_dir: Path) -> str | None:
    try:
        return parse_json(run_dir / MANIFEST, read_regular(run_dir / MANIFEST, MAX_JSON, "manifest")).get("checkpoint")
    except (BpcliError, OSError, ValueError, RecursionError, AttributeError):
        return None


def _first(run_dir: Path, previous: str | None, new: dict) -> dict:
    """The run.json fields `new` names as the run's first checkpoint wrote them (`new` for that first one; None
    for a field it lacks), from one read of run.json."""
    if previous is None:
        return new
    try:
        doc = parse_json(run_dir / MANIFEST, read_regular(run_dir / MANIFEST, MAX_JSON, "manifest"))
    except (BpcliError, OSError, ValueError, RecursionError):
        doc = None
    doc = doc if isinstance(doc, dict) else {}
    return {key: value if isinstance(value := doc.get(key), str) else None for key in new}


def _now() -> str:
    from datetime import datetime, timezone
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def canonical(fields: dict) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def _json_bytes(obj) -> bytes:
    return json.dumps(obj, indent=1, allow_nan=False).encode()


def _sample_json(docs: list[dict]) -> bytes:
    """The history sample as compact JSON; an overflowing R^2 or gradient norm is null (finite_or_none, only
    walked when some value is not finite: the same bytes, without a pass over thousands of records)."""
    try:
        return json.dumps(docs, separators=(",", ":"), allow_nan=False).encode()
    except ValueError:
        return json.dumps(finite_or_none(docs), separators=(",", ":"), allow_nan=False).encode()


def save_run(run_dir: Path, cfg: NetConfig, net: Network, prepared: Prepared, log: HistoryLog,
             state: TrainState, summary: dict, previous: str | None, snaps: Recorder | None = None) -> str:
    """Write a checkpoint as one switch: a new epoch-N folder, history.csv synced, then run.json renamed over the
    old one; the previous checkpoint folder is deleted only after that. Returns the new folder's name.

    A kill at any instant leaves run.json naming the old checkpoint or the new one, each whole.
    `snaps`: the snapshots taken since the last save are written first, as a new chunk run.json then lists.
    SaveError if the folder cannot be written; the previous checkpoint is then left as it was.
    """
    files: dict[str, bytes] = {CONFIG: dump_yaml(cfg.to_dict(), sort_keys=False).encode()}
    files[WEIGHTS] = npz_bytes({k: np.asarray(v, dtype=np.float64) for k, v in net.named_arrays().items()})
    files[STATE] = npz_bytes({k: np.asarray(v) for k, v in state.buffers.items()})
    files[METRICS] = _json_bytes(finite_or_none(summary))
    files[SAMPLE] = _sample_json([r.to_dict() for r in log.sample])
    if prepared.scaling is not None:
        files[SCALING] = _json_bytes(prepared.scaling.to_dict())
    name, k = f"epoch-{state.epoch}", 2
    while name == previous:  # the same epoch saved again (interrupted, then finished): a new folder all the same
        name, k = f"epoch-{state.epoch}.{k}", k + 1
    if (run_dir / name).exists():
        shutil.rmtree(run_dir / name, ignore_errors=True)  # left by a save that was cut off
    fields = {
        "format": MARKER, "format_version": RUN_FORMAT, "bpcli_version": __version__, "checkpoint": name,
        "epoch": state.epoch, "step": state.step, "status": state.status, "message": state.message,
        "rng_state": state.rng_state, "best_val": state.best_val if np.isfinite(state.best_val) else None,
        "bad_epochs": state.bad_epochs, "best_epoch": state.best_epoch, "weights_epoch": state.weights_epoch,
        **({} if state.plateau is None else {"plateau": dict(zip(PLATEAU_KEYS, state.plateau))}),
        **({} if state.stepped is None else {"stepped": state.stepped}),  # made by step --out, K steps
        "files": {n: sha256(b) for n, b in files.items()},
        # when the run began and from which config, kept from its first checkpoint (read by `bpcli runs`)
        **_first(run_dir, previous, {"created": _now(), "config": cfg.path}),
    }
    entry = None
    try:
        if snaps is not None:
            entry = snaps.write_pending(run_dir)
            fields["snapshots"] = snaps.field(entry)
        write_new_files(run_dir / name, files)
        fields["history"] = log.sync()
        manifest = {**fields, "sha256": sha256(canonical(fields))}
        atomic_write_bytes(run_dir / MANIFEST, json.dumps(manifest, indent=1, allow_nan=False).encode())
        fsync_dir(run_dir)
    except BaseException as err:  # a full disk, or Ctrl-C in the middle of a write: the new folder goes
        if (run_dir / MANIFEST).is_file() and _named(run_dir) == name:
            if snaps is not None:
                snaps.committed(entry)
            raise  # run.json was switched already: the new checkpoint is whole
        shutil.rmtree(run_dir / name, ignore_errors=True)
        if not isinstance(err, OSError):
            raise
        raise SaveError(f"{run_dir}: cannot save the run ({err.strerror or err}); "
                        "the files saved before are unchanged", reason=str(err.strerror or err)) from None
    if snaps is not None:
        snaps.committed(entry)
        snaps.sweep(run_dir)
    for p in run_dir.glob("epoch-*"):  # the previous checkpoint, and any left by a save that was cut off
        if p.name != name and p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
    for p in run_dir.glob(f".{MANIFEST}.*.tmp"):  # left by a save killed before its rename (the run is locked)
        p.unlink(missing_ok=True)
    return name


def checkpoint_dir(run_dir: str | Path) -> Path:
    """The folder of the checkpoint run.json names (its files checked by load_run, not here)."""
    d = Path(run_dir)
    m = read_manifest(d)
    _check_manifest(m, d / MANIFEST)
    return d / m["checkpoint"]


@dataclass
class LoadedRun:
    run_dir: Path
    cfg: NetConfig
    net: Network
    prepared: Prepared
    history: list[dict]  # the thinned sample: epoch 1, the last epoch and every stride-th one
    state: TrainState
    metrics: dict
    checkpoint: str
    history_file: dict  # what run.json says about history.csv: file, rows, bytes, sha256
    snapshots: tuple[int, list[dict]] = (0, [])  # (every, chunks) from run.json; (0, []): none kept
    epoch: int | None = None  # loaded at this snapshot (load_run's epoch), else None: the checkpoint


def _max_bytes(net: Network) -> int:
    return max(a.size for a in net.named_arrays().values()) * 8 + 4096


def _max_total(net: Network, copies: int = 1) -> int:
    """All the members of a weights.npz (copies=1) or a state.npz (3: m, v, best) together, expanded."""
    arrays = net.named_arrays().values()
    return copies * (sum(a.size for a in arrays) * 8 + 4096 * len(arrays))


def load_weights(path: Path, net: Network, data: bytes | None = None) -> Network:
    """Put the arrays of a weights.npz into a copy of `net`; RunFolderError names the file on any mismatch."""
    arrays = read_npz(path, _max_bytes(net), data=data, max_total=_max_total(net))
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


def parse_json(path: Path, data: bytes):
    """A run folder's JSON file, nesting bounded (files.loads_json); RunFolderError naming it."""
    from bpcli.files import TooDeep, loads_json
    try:
        return loads_json(data, path)
    except TooDeep:
        raise RunFolderError(f"{path}: damaged (JSON nested too deeply)") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise RunFolderError(f"{path}: damaged (not JSON: {err})") from None
    except RecursionError:
        raise RunFolderError(f"{path}: damaged (JSON nested too deeply)") from None


def read_manifest(d: Path) -> dict:
    """run.json, its own checksum and every field checked; RunFolderError naming what is wrong."""
    path = d / MANIFEST
    if not path.exists() and not path.is_symlink():
        if (d / "train_state.json").is_file():
            raise RunFolderError(f"{d}: a run folder of format 1 (an older bpcli); this bpcli reads format "
                                 f"{RUN_FORMAT}: train it again with `bpcli train {d / CONFIG}`")
        if (d / HISTORY).exists() or any(d.glob("epoch-*")):
            raise RunFolderError(f"{path}: missing, so nothing in {d} can be checked; the run folder is damaged")
        how = f"; continue a run with `bpcli train --resume`" if not any(d.iterdir()) else ""
        raise RunFolderError(f"{d}: not a run folder (no {MANIFEST}); give a folder made by `bpcli train`{how}")
    m = parse_json(path, read_regular(path, MAX_JSON, "manifest"))
    if not isinstance(m, dict) or m.get("format") != MARKER:
        raise RunFolderError(f"{path}: not a bpcli run manifest")
    version = m.get("format_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > RUN_FORMAT:
        raise RunFolderError(f"{path}: run format version {version} is newer than this bpcli understands "
                             f"({RUN_FORMAT}); upgrade bpcli")
    if version != RUN_FORMAT or isinstance(version, bool):
        raise RunFolderError(f"{path}: run format version {version!r} was not written by bpcli "
                             f"(this bpcli writes and reads {RUN_FORMAT})")
    fields = {k: v for k, v in m.items() if k != "sha256"}
    try:
        own = sha256(canonical(fields))
    except (ValueError, TypeError):
        own = None
    if m.get("sha256") != own:
        raise RunFolderError(f"{path}: does not match its own checksum (it was changed after the run was saved)")
    return m


def _check_manifest(m: dict, path: Path) -> None:
    def bad(what: str):
        raise RunFolderError(f"{path}: damaged ({what})")

    if not isinstance(m.get("checkpoint"), str) or not CHECKPOINT_NAME.fullmatch(m["checkpoint"]):
        bad(f"checkpoint is {m.get('checkpoint')!r}")
    files = m.get("files")
    if not isinstance(files, dict) or any(n not in (*REQUIRED, SCALING) for n in files) \
            or any(n not in files for n in REQUIRED) \
            or not all(isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v) for v in files.values()):
        bad("files is not the list of checkpoint files and their SHA-256")
    h = m.get("history")
    if not isinstance(h, dict) or h.get("file") != HISTORY or not isinstance(h.get("sha256"), str) \
            or any(isinstance(h.get(k), bool) or not isinstance(h.get(k), int) or not 0 <= h[k] < 2**53
                   for k in ("rows", "bytes")):
        bad("history is not the rows, bytes and SHA-256 of history.csv")


def load_run(run_dir: str | Path, epoch: int | None = None) -> LoadedRun:
    """Load a run folder at the checkpoint run.json names: config, weights, optimiser state, scaling, sample.

    Every file is checked against run.json's SHA-256 (run.json against its own), then by type and range;
    RunFolderError names the file at fault and how to start afresh.
    epoch N: the network, training state and history as they were after epoch N, from its snapshot
    (metrics and history_file still describe the run as saved); BpcliError listing the epochs kept if N is not.
    """
    d = Path(run_dir)
    if d.is_file():
        how = f"; make one with `bpcli train {d}`" if d.suffix.lower() in (".yaml", ".yml") else ""
        raise RunFolderError(f"{d}: is a file, not a run folder{how}")
    if not d.is_dir():
        raise RunFolderError(f"{d}: run folder not found (`bpcli runs` lists the runs)")
    m = read_manifest(d)
    meta_path = d / MANIFEST
    _check_manifest(m, meta_path)
    ck = d / m["checkpoint"]
    afresh = f"; start afresh with `bpcli train {ck / CONFIG}`"
    blobs: dict[str, bytes] = {}
    for name, digest in m["files"].items():
        limit = 50_000_000 if name == CONFIG else MAX_JSON if name.endswith(".json") else 2_000_000_000
        blobs[name] = read_regular(ck / name, limit, name)
        if sha256(blobs[name]) != digest:
            raise RunFolderError(f"{ck / name}: does not match the checksum recorded in run.json (the file was "
                                 f"changed after the run was saved){afresh if name != CONFIG else ''}")
    hist = d / HISTORY
    try:
        if hist.stat().st_size < m["history"]["bytes"]:
            raise RunFolderError(f"{hist}: shorter than run.json records (the file was changed){afresh}")
    except FileNotFoundError:
        raise RunFolderError(f"{hist}: missing from the run folder{afresh}") from None
    try:
        cfg, data = load_config(ck / CONFIG)
    except BpcliError as err:
        raise RunFolderError(f"{ck / CONFIG}: {str(err).splitlines()[0]}") from None
    scaling = None
    if SCALING in blobs:
        sd = parse_json(ck / SCALING, blobs[SCALING])
        n = len(cfg.inputs)
        if not (isinstance(sd, dict) and all(isinstance(sd.get(k), list) and len(sd[k]) == n
                                             and all(_finite(v) for v in sd[k]) for k in ("mean", "std"))):
            raise RunFolderError(f"{ck / SCALING}: damaged (expected mean and std lists of {n} numbers){afresh}")
        scaling = Scaling.from_dict(sd)
        if not np.all(scaling.std > 0):
            raise RunFolderError(f"{ck / SCALING}: damaged (std must be above 0){afresh}")
    if cfg.data.standardize != (scaling is not None):
        raise RunFolderError(f"{ck / CONFIG}: standardize does not match the checkpoint's files{afresh}")
    net = load_weights(ck / WEIGHTS, build(cfg), blobs[WEIGHTS])
    if scaling is not None:
        check_scaling(scaling, cfg, data, ck / SCALING, afresh)
    prepared = prepare(cfg, data, scaling)
    state = state_from_meta(m, meta_path)
    if m["history"]["rows"] != state.epoch:
        raise RunFolderError(f"{meta_path}: says epoch {state.epoch} but history.csv holds "
                             f"{m['history']['rows']} epochs")
    try:
        sample = sample_from_json(parse_json(ck / SAMPLE, blobs[SAMPLE]), len(net.layers), state.epoch)
    except ValueError as err:
        raise RunFolderError(f"{ck / SAMPLE}: damaged ({err}){afresh}") from None
    arrays = read_npz(ck / STATE, _max_bytes(net), "optimiser state file", data=blobs[STATE],
                      max_total=_max_total(net, 3))
    expected = net.named_arrays()
    for k, v in arrays.items():
        kind, _, key = k.partition(":")
        if kind not in ("m", "v", "best") or key not in expected or v.shape != expected[key].shape \
                or v.dtype.kind != "f" or not np.all(np.isfinite(v)):
            raise RunFolderError(f"{ck / STATE}: array '{str(k)[:40]}' does not fit the network in {CONFIG}{afresh}")
    missing = [k for k in state_keys(net, cfg, state) if k not in arrays]
    if missing:  # a resume from it would restart the optimiser's moments from zero, silently
        raise RunFolderError(f"{ck / STATE}: damaged (arrays {', '.join(missing[:4])}"
                             f"{' ...' if len(missing) > 4 else ''} of the {cfg.train.optimizer} optimiser's state "
                             f"are missing){afresh}")
    state.buffers = {k: v.astype(net.dtype) for k, v in arrays.items()}
    metrics = metrics_from_json(parse_json(ck / METRICS, blobs[METRICS]), ck / METRICS, afresh)
    loaded = LoadedRun(d, cfg, net, prepared, [r.to_dict() for r in sample], state, metrics, m["checkpoint"],
                       m["history"], chunks_of(m, meta_path))
    if epoch is None:
        return loaded
    return at_epoch(loaded, epoch)


def _finite(v) -> bool:
    from bpcli.errors import is_finite_number
    return is_finite_number(v)


def state_from_meta(meta: dict, path: Path) -> TrainState:
    """TrainState from run.json, each field checked by type and range; RunFolderError naming the file if not."""
    def whole(key: str) -> int:
        v = meta.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 2**53:
            raise RunFolderError(f"{path}: damaged ({key} is {str(v)[:40]})")
        return v

    epoch, step, bad = whole("epoch"), whole("step"), whole("bad_epochs")
    status = meta.get("status")
    best_epoch = whole("best_epoch")
    weights_epoch = meta.get("weights_epoch")
    if weights_epoch is not None:
        weights_epoch = whole("weights_epoch")
    if best_epoch > epoch or (weights_epoch is not None and weights_epoch > epoch):
        raise RunFolderError(f"{path}: damaged (best_epoch or weights_epoch after epoch {epoch})")
    if status not in STATUSES:
        raise RunFolderError(f"{path}: damaged (unknown status {str(status)[:40]!r})")
    best = meta.get("best_val")
    if best is not None and not _finite(best):
        raise RunFolderError(f"{path}: damaged (best_val is {str(best)[:40]})")
    rng_state = meta.get("rng_state")
    if rng_state is not None and not is_pcg64_state(rng_state):
        raise RunFolderError(f"{path}: damaged (rng_state is not a random generator state)")
    message = meta.get("message")
    if not isinstance(message, str) or len(message) > 10_000:
        raise RunFolderError(f"{path}: damaged (message is not text)")
    plateau = meta.get("plateau")
    if plateau is not None:
        if not isinstance(plateau, dict) or tuple(plateau) != PLATEAU_KEYS or not _finite(plateau["lr"]) \
                or not (plateau["best"] is None or _finite(plateau["best"])) \
                or not all(isinstance(plateau[k], int) and not isinstance(plateau[k], bool) and plateau[k] >= 0
                           for k in ("bad_epochs", "cooldown")):
            raise RunFolderError(f"{path}: damaged (plateau is not reduce-on-plateau's {', '.join(PLATEAU_KEYS)})")
        plateau = (float(plateau["lr"]), None if plateau["best"] is None else float(plateau["best"]),
                   plateau["bad_epochs"], plateau["cooldown"])
    stepped = meta.get("stepped")  # the K steps of `bpcli step --out` that made the run, while it is as step left it
    if stepped is not None and whole("stepped") < 1:
        raise RunFolderError(f"{path}: damaged (stepped is {stepped})")
    return TrainState(epoch=epoch, step=step, rng_state=rng_state,
                      best_val=float("inf") if best is None else float(best), bad_epochs=bad,
                      status=status, message=message, best_epoch=best_epoch, weights_epoch=weights_epoch,
                      plateau=plateau, stepped=stepped)


def status_of(state: TrainState, run_dir: Path | None = None) -> str:
    """A run's status as commands show it: 'stepped' for the stop `bpcli step --out` made (saved as interrupted,
    with the steps it took); with the run folder, 'killed' for a run saved as running that no process holds (it
    ended without saving its stop); run.json's status otherwise."""
    if state.status == "interrupted" and state.stepped is not None:
        return "stepped"
    if state.status == "running" and run_dir is not None and not held(run_dir):
        return "killed"
    return state.status


def run_status(run_dir: Path) -> tuple[str, int | None]:
    """(status_of, stepped) of a run folder as run.json has it now, whichever epoch a command looks at."""
    state = state_from_meta(read_manifest(run_dir), run_dir / "run.json")
    return status_of(state, run_dir), state.stepped


PLATEAU_KEYS = ("lr", "best", "bad_epochs", "cooldown")  # run.json's "plateau": schedules.Plateau by name
