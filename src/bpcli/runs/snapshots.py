"""A run's weight snapshots: which epochs are kept, the run at any of them, the whole trajectory, one batch again.

The API other commands build on:
    available_epochs(run_dir) -> list[int]
    load_run(run_dir, epoch=None) -> LoadedRun        (runs.load_run; load_at(run_dir, epoch) is the same)
    trajectory(run_dir or loaded) -> Trajectory       (.epochs, .params, .buffers: stacked over the kept epochs)
    epoch_batch(loaded, k) -> BatchRows               (the k-th batch of the epoch after the loaded one)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bpcli.errors import ArgumentError
from bpcli.runs.store import LoadedRun, load_run
from bpcli.runs.snapshot_read import kept, none_to, read_chunk
from bpcli.nn.model import Network
from bpcli.schema import TrainConfig
from bpcli.runs.snapshot_store import Recorder, array_keys, describe, snapshot_bytes, stride
from bpcli.training.fit import TrainState, batching, epoch_order, training_rng

__all__ = ["available_epochs", "load_at", "trajectory", "Trajectory", "epoch_batch", "BatchRows",
           "kept_summary", "start_snapshots", "history_prefix"]


def available_epochs(run_dir: str | Path) -> list[int]:
    """The epochs whose weights the run keeps (0 = the initial weights), in order; [] when it keeps none.
    Reads run.json alone (its checksum and its list of chunks checked); load_run(run, epoch) checks the rest."""
    return kept(_manifest_snapshots(run_dir)[1][1])


def _manifest_snapshots(run_dir: str | Path) -> tuple[dict, tuple[int | None, list[dict]]]:
    from bpcli.runs.claim import MANIFEST
    from bpcli.runs.store import read_manifest
    from bpcli.runs.snapshot_read import chunks_of
    d = Path(run_dir)
    if not d.is_dir():
        load_run(d)  # the clear error for a file or a missing folder
    m = read_manifest(d)
    return m, chunks_of(m, d / MANIFEST)


def load_at(run_dir: str | Path, epoch: int) -> LoadedRun:
    """The run as it was after `epoch` (load_run(run_dir, epoch))."""
    return load_run(run_dir, epoch)


def kept_summary(run_dir: str | Path, cfg, net: Network) -> dict:
    """What `show RUN` says about the snapshots (from run.json, checked): every, the epochs kept (as text),
    their count, first, last, bytes on disk, why none are kept when none are, the epochs trained and which
    epoch's weights the run holds (weights_epoch: not the last when early stopping restored the best)."""
    from bpcli.runs.snapshot_read import none_kept
    m, (every, chunks) = _manifest_snapshots(run_dir)
    epochs = kept(chunks)
    return {"every": every, "epochs": describe(epochs), "count": len(epochs),
            "bytes": sum(c["bytes"] for c in chunks), "first": epochs[0] if epochs else None,
            "last": epochs[-1] if epochs else None, "why": None if epochs else none_kept(cfg, net, every),
            "epochs_trained": m["epoch"], "weights_epoch": m["weights_epoch"]}


@dataclass(frozen=True)
class Trajectory:
    """Every kept snapshot stacked: epochs (k,), params['A.W'] (k, n_out, n_in) float64, buffers['m:A.W'] the
    same for the optimiser's state (momentum's and Adam's m, Adam's v; zeros at epoch 0), steps (k,)."""

    run_dir: Path
    epochs: np.ndarray
    steps: np.ndarray
    params: dict[str, np.ndarray]
    buffers: dict[str, np.ndarray]


def trajectory(run: str | Path | LoadedRun) -> Trajectory:
    """All the run's snapshots, each chunk checked against run.json; BpcliError when the run keeps none (so there
    are no epochs to draw). `run`: a run folder, or the run already loaded (runs.load_run's, at its checkpoint:
    not read again)."""
    loaded = run if isinstance(run, LoadedRun) else load_run(run)
    chunks = loaded.snapshots[1]
    if not chunks:
        raise none_to(loaded, "draw")
    keys = array_keys(loaded.net, loaded.cfg.train)
    parts = [read_chunk(loaded.run_dir, c, loaded.net, keys) for c in chunks]
    cat = lambda k: np.concatenate([p[k] for p in parts])
    params = {k: cat(k).astype(np.float64) for k in loaded.net.named_arrays()}
    buffers = {k: cat(k).astype(np.float64) for k in keys if ":" in k and not k.startswith(TrainState.BEST)}
    return Trajectory(loaded.run_dir, cat("epoch"), cat("step"), params, buffers)


@dataclass(frozen=True)
class BatchRows:
    """The training rows of batch `index` (1-based) of epoch `epoch` (the one after the loaded snapshot)."""

    rows: np.ndarray  # indices into prepared.train, in the order the batch holds them
    index: int
    of: int  # batches in the epoch
    epoch: int

    @property
    def label(self) -> str:
        return f"batch {self.index} of {self.of} in epoch {self.epoch}"  # the sample count follows it in the views


def epoch_batch(loaded: LoadedRun, k: int) -> BatchRows:
    """Batch k (1-based) of epoch N+1, N being the epoch `loaded` was loaded at: drawn from the random generator
    state saved with snapshot N exactly as training drew it (train.epoch_order)."""
    return _batch_rows(loaded.cfg.train, loaded.state, loaded.prepared.train.m, loaded.epoch, loaded.run_dir, k)


def _batch_rows(s: TrainConfig, state: TrainState, m: int, epoch: int | None, run_dir: Path, k: int) -> BatchRows:
    """epoch_batch's rows from the pieces of a run loaded at `epoch` (its settings, state and training size)."""
    if epoch is None:
        raise ArgumentError("batch", "give --epoch N too (the batch is one of epoch N+1's, as training drew it)")
    order = epoch_order(training_rng(s, state), m, s.batch_size)
    if order is None:
        raise ArgumentError("batch", f"{run_dir} trained on full batches (all {m} samples each step); "
                                     "leave --batch out")
    _, n = batching(s.batch_size, m)
    if not 1 <= k <= n:
        raise ArgumentError("batch", f"epoch {epoch + 1} has batches 1 to {n} ({m} samples, batch_size "
                                     f"{s.batch_size}), found {k}")
    return BatchRows(order[(k - 1) * s.batch_size: k * s.batch_size], k, n, epoch + 1)


# --- training: where the snapshots of a run start ------------------------------------------------


def start_snapshots(net: Network, state: TrainState, settings: TrainConfig, resume: LoadedRun | None) -> Recorder:
    """The recorder of a training session: for a new run with epoch 0 taken; for a run continued in place
    with its chunks; for a run branched from a snapshot (resume.epoch set) with every snapshot up to it.

    The stride is the config's (train.snapshots) for its epoch count, never below the one the run recorded.
    """
    every = stride(snapshot_bytes(net, settings), settings.epochs, settings)
    if resume is None:
        rec = Recorder(net, settings, every, [], settings.epochs)
        if every:
            rec.take(net, state)
        return rec
    recorded, chunks = resume.snapshots
    every = max(every, recorded or 0) if every else 0
    if resume.epoch is None:
        return Recorder(net, settings, every, chunks, settings.epochs)
    rec = Recorder(net, settings, every, [], settings.epochs)
    keys = array_keys(net, settings)
    for c in chunks:
        if c["first"] <= resume.epoch:
            rec.extend(read_chunk(resume.run_dir, c, resume.net, keys), resume.epoch)
    return rec


def history_prefix(resume: LoadedRun) -> tuple[bytes, list, int]:
    """history.csv's header and first resume.epoch rows (bytes), their thinned sample (records) and the number
    of rows: HistoryLog.create's for a run branched there."""
    from bpcli.runs.history import read_prefix
    letters = [layer.letter for layer in resume.net.layers]
    path = resume.run_dir / resume.history_file["file"]
    return (*read_prefix(path, resume.history_file, letters, resume.epoch), resume.epoch)


def explain_data(run_dir: Path, epoch: int, batch: int | None, prepared, settings: TrainConfig,
                 state: TrainState) -> tuple[np.ndarray, np.ndarray, str]:
    """(x, y, what they are) to explain a run loaded at an epoch over (its prepared data, settings and state):
    its training set (prepared.train), or batch `batch` of epoch `epoch` + 1 as training drew it."""
    tr = prepared.train
    if batch is None:
        return tr.x, tr.y, "training set"  # the sample count follows it in the views, as a batch's does
    b = _batch_rows(settings, state, tr.m, epoch, run_dir, batch)
    return tr.x[b.rows], tr.y[b.rows], b.label
