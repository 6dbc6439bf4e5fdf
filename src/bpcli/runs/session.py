"""The training session: a run folder with checkpoints, a clean stop on SIGINT/SIGTERM, and per-epoch callbacks."""

from __future__ import annotations

import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bpcli.runs.claim import Lock, check_target, commit, commit_new, lock_run, safe_name, stage
from bpcli.config.loader import load_config, load_config_text, with_overrides
from bpcli.data.dataset import Dataset, prepare
from bpcli.errors import BpcliError, SaveError, received_signal
from bpcli.runs.history import HISTORY, HistoryLog, record_from_dict
from bpcli.nn.model import build
from bpcli.training.results import TrainResult, finite_or_none, settings_of
from bpcli.runs.store import LoadedRun, checkpoint_dir, load_run, save_run
from bpcli.schema import NetConfig
from bpcli.training.optim import Optimizer, l2_coefficient, l2_penalty
from bpcli.runs.snapshots import history_prefix, start_snapshots
from bpcli.training.fit import EpochRecord, TrainState, evaluate, fit, metric_name, stops_after

OnEpoch = Callable[[EpochRecord], None]


@dataclass
class Session:
    """A run about to start or continue: its config, its data and where it is saved."""

    cfg: NetConfig
    data: Dataset | None  # None when resuming: the run folder holds the prepared data
    resumed: LoadedRun | None
    out: Path | None  # --out, or the run being resumed; None: a new runs_base/<name>
    runs_base: Path = Path("runs")
    overwrite: bool = False
    lock: Lock | None = None  # held while the run is written
    signal: int | None = None  # SIGINT or SIGTERM, when one stopped the training

    @property
    def start_epoch(self) -> int:
        return self.resumed.state.epoch if self.resumed is not None else 0


def open_session(config: str | None = None, *, epochs: int | None = None, lr: float | None = None,
                 batch_size: int | None = None, seed: int | None = None, out: Path | None = None,
                 overwrite: bool = False, resume: Path | None = None, runs_base: Path = Path("runs"),
                 from_epoch: int | None = None, config_text: str | None = None) -> Session:
    """Load the config (or the run to resume) and apply the command-line overrides; nothing is written yet.

    --out is refused here if it holds anything without --force, or anything but a bpcli run folder with it.
    from_epoch (with resume and out): a new run branched from the run's snapshot of that epoch.
    config_text: the config as YAML text (`bpcli train data.csv --target y`); `config` then names where it came from.
    BpcliError for every problem.
    """
    if from_epoch is not None:
        return _branch(resume, from_epoch, out, overwrite, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                       config=config)
    if resume is not None:
        if config is not None:
            raise BpcliError("--resume continues a run folder; give no CONFIG with it")
        if out is not None:
            raise BpcliError(f"--out: a resumed run continues in its own folder ({resume}); give no --out with "
                             "--resume, or branch a new run with --from-epoch N --out NEW")
        if overwrite:
            raise BpcliError("--force: a resumed run continues in its own folder; give no --force with --resume")
        lock = lock_run(resume) if Path(resume).is_dir() else None
        try:
            loaded = load_run(resume)
            if loaded.state.status in ("completed", "early_stopped", "diverged"):
                raise BpcliError(f"{resume}: the run is already {loaded.state.status.replace('_', ' ')}; "
                                 "nothing to resume")
            cfg = with_overrides(loaded.cfg, epochs=epochs, lr=lr, batch_size=batch_size,
                                 samples=_all_rows(loaded))
            if epochs is not None and epochs <= loaded.state.epoch:
                raise BpcliError(f"--epochs: the run has already trained {loaded.state.epoch} epochs; "
                                 f"give more than that to continue it, found {epochs}")
            if seed is not None:
                raise BpcliError("--seed cannot change a run being resumed")
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        return Session(cfg, None, loaded, loaded.run_dir, lock=lock)
    if config_text is not None:
        if resume is not None:
            raise BpcliError("--target makes a new config from a CSV file; give no --resume with it")
        cfg, data = load_config_text(config_text, config or "<config text>", Path.cwd())
        cfg = with_overrides(cfg, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, samples=data.m)
        if out is not None:
            check_target(out, overwrite)
        return Session(cfg, data, None, out, runs_base, overwrite)
    if config is not None and ((Path(config) / "run.json").is_file() or (Path(config) / "config.yaml").is_file()):
        try:
            own = checkpoint_dir(config) / "config.yaml"
        except BpcliError:
            own = Path(config) / "config.yaml"
        raise BpcliError(f"{config}: is a run folder, not a config; continue it with `bpcli train --resume "
                         f"{config}` or train its config afresh with `bpcli train {own}`")
    cfg, data = load_config(config)
    cfg = with_overrides(cfg, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, samples=data.m)
    if out is not None:
        check_target(out, overwrite)
    return Session(cfg, data, None, out, runs_base, overwrite)


def _branch(resume: Path | None, epoch: int, out: Path | None, overwrite: bool, *, config, seed, **overrides) -> Session:
    """A session for a new run in `out`, continuing `resume` from its snapshot of `epoch` (the original unchanged)."""
    if resume is None:
        raise BpcliError("--from-epoch: give the run to branch from with --resume RUN (and the new folder with --out)")
    if config is not None:
        raise BpcliError("--from-epoch continues a run folder; give no CONFIG with it")
    if out is None:
        raise BpcliError(f"--from-epoch: give --out NEW: the branch is a new run; {resume} is never rewritten "
                         "(continuing it in place from an earlier epoch would lose the epochs after it)")
    if seed is not None:
        raise BpcliError("--seed cannot change a run being resumed")
    if Path(out).resolve() == Path(resume).resolve():
        raise BpcliError(f"--out: {out} is the run being branched; choose a new folder")
    try:
        loaded = load_run(resume, epoch)
    except BpcliError as err:
        if not str(err).startswith("--epoch"):
            raise
        raise BpcliError("--from-epoch" + str(err)[len("--epoch"):]) from None
    cfg = with_overrides(loaded.cfg, samples=_all_rows(loaded), **overrides)
    if cfg.train.epochs <= epoch:
        raise BpcliError(f"--epochs: the branch starts after epoch {epoch}; give more epochs than that "
                         f"(the config says {cfg.train.epochs})")
    check_target(out, overwrite)
    return Session(cfg, None, loaded, out, overwrite=overwrite)


def _all_rows(loaded: LoadedRun) -> int:
    """The samples of a saved run's data, its training, validation and test parts together."""
    p = loaded.prepared
    return sum(part.m for part in (p.train, p.val, p.test) if part is not None)


def train(session: Session, on_epoch: OnEpoch | None = None, every: float = 0.05) -> TrainResult:
    """Run the session to its epoch count; SIGINT or SIGTERM stops it after the current epoch, saved.

    on_epoch gets an epoch's record at most every `every` seconds, and always the last one.
    A signal before the first checkpoint still leaves the run saved at epoch 0, resumable.
    """
    def on_signal(signum, frame):
        session.signal = signum

    report = _throttled(on_epoch, every) if on_epoch is not None else None
    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    if received_signal:  # a signal at start-up whose Interrupted was lost: stop at once, saved at epoch 0
        session.signal = received_signal[0]
    try:
        result = run_training(session.cfg, session.data, session.out, report, lambda: session.signal is not None,
                              session.resumed, runs_base=session.runs_base, overwrite=session.overwrite)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        if session.lock is not None:
            session.lock.release()
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


def run_training(cfg: NetConfig, data: Dataset | None, run_dir: Path | None, on_epoch: OnEpoch | None = None,
                 should_stop: Callable[[], bool] = lambda: False, resume: LoadedRun | None = None,
                 checkpoint_seconds: float = 30.0, *, runs_base: Path = Path("runs"), overwrite: bool = False,
                 stepped: int | None = None) -> TrainResult:
    """Train, checkpointing into the run folder at epoch 0, now and then, and at the end; returns a TrainResult.

    A new run is built whole (its epoch 0) in a hidden folder beside `run_dir` (or in runs_base) and appears under
    its name with one rename, so every run folder that exists is loadable and resumable; a stop asked for before
    then still saves epoch 0 (status interrupted). `stepped`: the K steps of `bpcli step --out` whose stop this is,
    recorded in run.json when should_stop ends the run.
    """
    branch = resume is not None and resume.epoch is not None  # a new run, from a snapshot of another
    if resume is not None:
        net, prepared, state = resume.net, resume.prepared, resume.state
        state.status, state.message, state.stepped = "running", "", None
    else:
        net, prepared, state = build(cfg), prepare(cfg, data), TrainState()
    state.buffers = Optimizer(net, cfg.train, state.buffers).buffers  # the optimiser's state exists from epoch 0
    snaps = start_snapshots(net, state, cfg.train, resume)
    if resume is not None and not branch:
        run_dir = resume.run_dir
        log = HistoryLog.reopen(run_dir / HISTORY, resume.history_file,
                                [record_from_dict(h, len(net.layers), state.epoch) for h in resume.history])
        ckpt = resume.checkpoint
    t0 = time.perf_counter()

    def summary() -> dict:
        loss, metric = evaluate(net, prepared.train)
        val_loss = val_metric = None
        if prepared.val is not None:
            val_loss, val_metric = evaluate(net, prepared.val)
        wd = l2_coefficient(cfg.train)  # adamw: decoupled decay, no penalty in the loss
        penalty = l2_penalty(net.W, wd) if wd else None
        l1 = cfg.train.l1
        l1_penalty = l1 * sum(float(np.sum(np.abs(W))) for W in net.W) if l1 else None
        return finite_or_none({"status": state.status, "message": state.message, "epochs": state.epoch,
                               "metric": metric_name(prepared.train), "loss": loss, "train_metric": metric,
                               "val_loss": val_loss, "val_metric": val_metric, "penalty": penalty,
                               "l1_penalty": l1_penalty,
                               "weights_epoch": state.weights_epoch if state.weights_epoch is not None
                               else state.epoch, "best_epoch": state.best_epoch or None,
                               "seconds": time.perf_counter() - t0})

    if resume is None or branch:
        run_dir, log, ckpt, lock = _new_run(cfg, net, prepared, state, snaps, summary(), run_dir, runs_base,
                                            overwrite, resume if branch else None)
    else:
        lock = None
    last_save = time.perf_counter()
    try:
        # A diverging run overflows on purpose; fit() detects it from the loss, so numpy stays quiet.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            for rec in fit(net, prepared.train, prepared.val, cfg.train, state, should_stop):
                log.append(rec)
                if snaps.due(state.epoch) or (snaps.every and stops_after(state, cfg.train)):
                    snaps.take(net, state)  # epoch N's weights, before early stopping puts back the best
                if on_epoch is not None:
                    on_epoch(rec)
                if time.perf_counter() - last_save > checkpoint_seconds:
                    ckpt = save_run(run_dir, cfg, net, prepared, log, state, summary(), ckpt, snaps)
                    last_save = time.perf_counter()
        if snaps.every and snaps.pending_last() != state.epoch:
            snaps.take(net, state)  # interrupted or diverged: the last whole epoch, rolled back to
        if stepped is not None and state.status == "interrupted":
            state.stepped = stepped
        s = summary()
        save_run(run_dir, cfg, net, prepared, log, state, s, ckpt, snaps)
    finally:
        log.close()
        if lock is not None:
            lock.release()  # the process ending releases it too; in-process callers may resume the run next
    return TrainResult(
        cfg.name, cfg.path, str(run_dir), state.status, state.message, state.epoch, s["metric"], s["loss"],
        s["train_metric"], s["val_loss"], s["val_metric"], s["seconds"], prepared.train.m,
        prepared.val.m if prepared.val is not None else 0, tuple(log.sample), prepared.train.class_names,
        s["weights_epoch"], s["penalty"], s["best_epoch"], settings_of(cfg), l1_penalty=s.get("l1_penalty"),
        n_test=prepared.test.m if prepared.test is not None else 0,
    )


def _new_run(cfg: NetConfig, net, prepared, state: TrainState, snaps, first: dict, run_dir: Path | None,
             runs_base: Path, overwrite: bool, branched_from: LoadedRun | None):
    """Build a new run's epoch 0 whole in a hidden folder and put it in place with one rename (run_dir, or a new
    folder in runs_base): (run_dir, its history log, the checkpoint, the lock held); nothing is left on failure."""
    staged, lock = stage(run_dir.parent if run_dir is not None else runs_base, run_dir)
    log = None
    try:
        letters = [layer.letter for layer in net.layers]
        log = HistoryLog.create(staged / HISTORY, letters,
                                *history_prefix(branched_from) if branched_from is not None else ())
        try:
            ckpt = save_run(staged, cfg, net, prepared, log, state, first, None, snaps)
        except SaveError as err:
            where = run_dir if run_dir is not None else runs_base / safe_name(cfg.name)
            raise SaveError(f"{where}: cannot save the run ({err.reason}); nothing was written") from None
        if run_dir is None:
            run_dir = commit_new(staged, runs_base, cfg.name)
        else:
            commit(staged, run_dir, overwrite)
    except BaseException:
        if log is not None:
            log.close()
        shutil.rmtree(staged, ignore_errors=True)
        lock.release()
        raise
    log.path = run_dir / HISTORY
    return run_dir, log, ckpt, lock
