"""The training session: a run folder with checkpoints, a clean stop on SIGINT/SIGTERM, and per-epoch callbacks."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bpcli.config import load_config, with_overrides
from bpcli.data import Dataset, prepare
from bpcli.errors import BpcliError
from bpcli.model import build
from bpcli.results import TrainResult, finite_or_none
from bpcli.runs import LoadedRun, load_run, new_run_dir, record_from_dict, save_run
from bpcli.schema import NetConfig
from bpcli.train import EpochRecord, TrainState, evaluate, fit, metric_name

OnEpoch = Callable[[EpochRecord], None]


@dataclass
class Session:
    """A run about to start or continue: its config, its data and the folder it is saved in."""

    cfg: NetConfig
    data: Dataset | None  # None when resuming: the run folder holds the prepared data
    resumed: LoadedRun | None
    run_dir: Path
    fresh_dir: bool  # made by this session: removed again if training fails before the first checkpoint
    signal: int | None = None  # SIGINT or SIGTERM, when one stopped the training

    @property
    def start_epoch(self) -> int:
        return self.resumed.state.epoch if self.resumed is not None else 0


def open_session(config: str | None = None, *, epochs: int | None = None, lr: float | None = None,
                 batch_size: int | None = None, seed: int | None = None, out: Path | None = None,
                 overwrite: bool = False, resume: Path | None = None, runs_base: Path = Path("runs")) -> Session:
    """Load the config (or the run to resume), apply the command-line overrides and make the run folder.

    The folder is `out` (refused if it holds anything but a run, or anything at all without `overwrite`),
    else a new runs_base/<name>. BpcliError for every problem, before anything is written.
    """
    if resume is not None:
        if config is not None:
            raise BpcliError("--resume continues a run folder; give no CONFIG with it")
        loaded = load_run(resume)
        if loaded.state.status in ("completed", "early_stopped", "diverged"):
            raise BpcliError(f"{resume}: the run is already {loaded.state.status.replace('_', ' ')}; nothing to resume")
        cfg = with_overrides(loaded.cfg, epochs=epochs, lr=lr, batch_size=batch_size,
                             samples=loaded.prepared.train.m)
        if epochs is not None and epochs <= loaded.state.epoch:
            raise BpcliError(f"--epochs: the run has already trained {loaded.state.epoch} epochs; "
                             f"give more than that to continue it, found {epochs}")
        if seed is not None:
            raise BpcliError("--seed cannot change a run being resumed")
        return Session(cfg, None, loaded, loaded.run_dir, fresh_dir=False)
    if config is not None and (Path(config) / "config.yaml").is_file():
        raise BpcliError(f"{config}: is a run folder, not a config; continue it with `bpcli train --resume "
                         f"{config}` or train its config afresh with `bpcli train {Path(config) / 'config.yaml'}`")
    cfg, data = load_config(config)
    cfg = with_overrides(cfg, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, samples=data.m)
    if out is None:
        return Session(cfg, data, None, new_run_dir(runs_base, cfg.name), fresh_dir=True)
    fresh_dir = not out.exists()
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise BpcliError(f"--out: {out} already exists; choose another folder or add --overwrite")
    if out.exists() and out.is_dir() and overwrite and not (out / "config.yaml").exists() and any(out.iterdir()):
        raise BpcliError(f"--out: {out} is not a run folder; refusing to overwrite it")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BpcliError(f"--out: cannot create {out}: {e.strerror}") from None
    return Session(cfg, data, None, out, fresh_dir)


def train(session: Session, on_epoch: OnEpoch | None = None, every: float = 0.05) -> TrainResult:
    """Run the session to its epoch count; SIGINT or SIGTERM stops it after the current epoch, saved.

    on_epoch gets an epoch's record at most every `every` seconds, and always the last one.
    A failure before the first checkpoint leaves no empty run folder behind.
    """
    def on_signal(signum, frame):
        session.signal = signum

    report = _throttled(on_epoch, every) if on_epoch is not None else None
    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        result = run_training(session.cfg, session.data, session.run_dir, report,
                              lambda: session.signal is not None, session.resumed)
    except BaseException:
        run_dir = session.run_dir
        if session.fresh_dir and run_dir.is_dir() and not any(run_dir.iterdir()):
            run_dir.rmdir()
        raise
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    if report is not None and result.history and report.last is not result.history[-1]:
        on_epoch(result.history[-1])  # the last epoch may have fallen between two reports
    return result


def _throttled(on_epoch: OnEpoch, every: float):
    """on_epoch, called at most every `every` seconds; .last is the record it was last called with."""
    def report(rec: EpochRecord) -> None:
        now = time.perf_counter()
        if now - report.at < every:
            return
        report.at, report.last = now, rec
        on_epoch(rec)

    report.at, report.last = float("-inf"), None
    return report


def run_training(cfg: NetConfig, data: Dataset | None, run_dir: Path, on_epoch: OnEpoch | None = None,
                 should_stop: Callable[[], bool] = lambda: False, resume: LoadedRun | None = None,
                 checkpoint_seconds: float = 30.0) -> TrainResult:
    """Train, checkpointing into `run_dir` now and then and at the end; returns a TrainResult."""
    if resume is not None:
        net, prepared = resume.net, resume.prepared
        state = resume.state
        state.status, state.message = "running", ""
        history = [record_from_dict(h) for h in resume.history]
    else:
        net = build(cfg)
        prepared = prepare(cfg, data)
        state = TrainState()
        history = []
    t0 = time.perf_counter()
    last_save = t0
    save_cost = 0.0

    def summary() -> dict:
        loss, metric = evaluate(net, prepared.train)
        val_loss = val_metric = None
        if prepared.val is not None:
            val_loss, val_metric = evaluate(net, prepared.val)
        wd = cfg.train.weight_decay
        penalty = 0.5 * wd * sum(float(np.sum(W * W)) for W in net.W) if wd else None
        return {"status": state.status, "message": state.message, "epochs": state.epoch,
                "metric": metric_name(prepared.train), "loss": loss, "train_metric": metric,
                "val_loss": val_loss, "val_metric": val_metric, "penalty": penalty,
                "weights_epoch": state.weights_epoch if state.weights_epoch is not None else state.epoch,
                "best_epoch": state.best_epoch or None, "seconds": time.perf_counter() - t0}

    # A diverging run overflows on purpose; fit() detects it from the loss, so numpy stays quiet.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        for rec in fit(net, prepared.train, prepared.val, cfg.train, state, should_stop):
            history.append(rec)
            if on_epoch is not None:
                on_epoch(rec)
            now = time.perf_counter()
            # the whole history is rewritten each time: space checkpoints so they cost at most ~5% of the run
            if now - last_save > max(checkpoint_seconds, 20 * save_cost):
                save_run(run_dir, cfg, net, prepared, history, state, finite_or_none(summary()))
                last_save = time.perf_counter()
                save_cost = last_save - now
        s = finite_or_none(summary())
    save_run(run_dir, cfg, net, prepared, history, state, s)
    return TrainResult(
        cfg.name, cfg.path, str(run_dir), state.status, state.message, state.epoch, s["metric"], s["loss"],
        s["train_metric"], s["val_loss"], s["val_metric"], s["seconds"], prepared.train.m,
        prepared.val.m if prepared.val is not None else 0, tuple(history), prepared.train.class_names,
        s["weights_epoch"], s["penalty"], s["best_epoch"],
    )
