"""Faults: signals to a real training process, failed writes, overflow, divergence, bit-for-bit resume."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bpcli import files
from bpcli.runs import store as runs
from bpcli.nn.activations import ACTIVATIONS, get_activation
from bpcli.cli.app import app
from bpcli.config.loader import load_config
from bpcli.errors import SaveError
from bpcli.nn.losses import LOSSES, get_loss
from bpcli.runs.history import HistoryLog, record_from_dict
from bpcli.runs.store import checkpoint_dir, load_run, save_run
from bpcli.runs.session import run_training
from bpcli.runs.snapshots import trajectory

runner = CliRunner()
SRC = Path(__file__).resolve().parents[2] / "src"
FAULTS = {"injected": 0}

LONG = """name: long
inputs: 2
layers: [{size: 16, activation: tanh}, {size: 3, activation: softmax}]
loss: cross_entropy
data: {generator: blobs, samples: 300, classes: 3, validation: 0.2}
train: {optimizer: adam, lr: 0.01, epochs: 1000000, batch_size: 16, seed: 5}
"""


def _cli(*args, cwd: Path):
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return runner.invoke(app, [*map(str, args)], catch_exceptions=False)
    finally:
        os.chdir(old)


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _rows(run: Path) -> list[list[str]]:
    """history.csv's rows up to what run.json says is valid: epoch, loss and val_loss."""
    h = json.loads((run / "run.json").read_text())["history"]
    text = (run / "history.csv").read_bytes()[: h["bytes"]].decode()
    return [r.split(",")[:3] for r in text.splitlines()[1:]]


def _assert_same_run(a: Path, b: Path) -> None:
    """Weights, optimiser state and per-epoch losses equal bit for bit."""
    for name in ("weights.npz", "state.npz"):
        x, y = _arrays(checkpoint_dir(a) / name), _arrays(checkpoint_dir(b) / name)
        assert x.keys() == y.keys()
        for k in x:
            np.testing.assert_array_equal(x[k], y[k], err_msg=f"{name} {k}")
    assert _rows(a) == _rows(b)
    ta, tb = trajectory(a), trajectory(b)  # the snapshots both kept (an interruption keeps its epoch too)
    both = np.intersect1d(ta.epochs, tb.epochs)
    assert both[0] == 0 and both[-1] == load_run(a).state.epoch
    for k in ta.params:
        assert np.array_equal(ta.params[k][np.isin(ta.epochs, both)], tb.params[k][np.isin(tb.epochs, both)]), k
    assert load_run(a).history == [dict(h, seconds=x["seconds"]) for h, x in zip(load_run(b).history, load_run(a).history)]


def _assert_consistent_checkpoint(run: Path, status: str) -> int:
    """The files of one epoch: run.json, history.csv and the sample agree; everything loads."""
    meta = json.loads((run / "run.json").read_text())
    assert meta["status"] == status
    assert [int(r[0]) for r in _rows(run)] == list(range(1, meta["epoch"] + 1))
    loaded = load_run(run)  # checksums, shapes, finite values
    assert loaded.state.epoch == meta["epoch"] == loaded.history_file["rows"]
    assert [h["epoch"] for h in loaded.history] == list(range(1, meta["epoch"] + 1))  # short runs: every epoch
    chunks = meta["snapshots"]["chunks"]
    assert sorted(p.name for p in run.iterdir()) == sorted([loaded.checkpoint, "history.csv", "run.json"]
                                                           + (["snapshots"] if chunks else []))
    if chunks:  # every chunk run.json lists is on disk and whole; a kill may leave one it does not list yet
        assert {c["file"] for c in chunks} <= {f"snapshots/{p.name}" for p in (run / "snapshots").iterdir()}
        kept, every = trajectory(run).epochs.tolist(), meta["snapshots"]["every"]
        assert set(range(0, meta["epoch"] + 1, every)) <= set(kept) and kept[-1] == meta["epoch"]  # and the last
    return meta["epoch"]


# --- signals to a real process ----------------------------------------------------------------------


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_signal_saves_a_consistent_checkpoint_and_resume_matches(sig, code, tmp_path):
    (tmp_path / "cfg.yaml").write_text(LONG)
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.Popen([sys.executable, "-m", "bpcli", "train", "cfg.yaml", "-q", "--out", "run"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "run").exists():  # made just before training starts
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        time.sleep(0.5)  # some epochs, then the signal lands mid-epoch
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    FAULTS["injected"] += 1
    assert proc.returncode == code, err
    assert "Traceback" not in err
    epoch = _assert_consistent_checkpoint(tmp_path / "run", "interrupted")
    assert f"interrupted: state after epoch {epoch} saved in run; continue with `bpcli train --resume run`" in \
        err.replace("\n", " ")
    # continue it, and compare with one uninterrupted run of the same length
    total = epoch + 3
    r = _cli("train", "--resume", "run", "--epochs", total, "-q", cwd=tmp_path)
    assert r.exit_code == 0, r.output
    r = _cli("train", "cfg.yaml", "--epochs", total, "--out", "ref", "-q", cwd=tmp_path)
    assert r.exit_code == 0, r.output
    assert _assert_consistent_checkpoint(tmp_path / "run", "completed") == total
    _assert_same_run(tmp_path / "run", tmp_path / "ref")


# --- bit-for-bit resume over optimisers and settings -------------------------------------------------

RESUME_CASES = {
    "gd full batch": "optimizer: gd, lr: 0.5",
    "sgd minibatch": "optimizer: sgd, lr: 0.1, batch_size: 7",
    "momentum": "optimizer: momentum, lr: 0.05, batch_size: 10, momentum: 0.9, weight_decay: 0.001",
    "adam float32": "optimizer: adam, lr: 0.01, batch_size: 8, dtype: float32",
    "adam early stopping": "optimizer: adam, lr: 0.05, batch_size: 5, early_stopping: {patience: 50}",
}


@pytest.mark.parametrize("train", RESUME_CASES.values(), ids=RESUME_CASES.keys())
@pytest.mark.parametrize("stop_after", [1, 23])
def test_resume_is_bit_for_bit(train, stop_after, tmp_path):
    (tmp_path / "cfg.yaml").write_text(
        "inputs: 2\nlayers: [{size: 5, activation: tanh}, {size: 1, activation: sigmoid}]\n"
        "loss: binary_cross_entropy\n"
        "data: {generator: moons, samples: 60, validation: 0.25, standardize: true}\n"
        f"train: {{epochs: 30, seed: 4, {train}}}\n")
    r = _cli("train", "cfg.yaml", "--out", "ref", "-q", cwd=tmp_path)
    assert r.exit_code == 0, r.output
    cfg, data = load_config(tmp_path / "cfg.yaml")
    (tmp_path / "run").mkdir()  # an empty folder may be given as --out
    res = run_training(cfg, data, tmp_path / "run", should_stop=_after_batches(stop_after - 1))
    assert res.status == "interrupted"
    _assert_consistent_checkpoint(tmp_path / "run", "interrupted")
    r = _cli("train", "--resume", "run", "-q", cwd=tmp_path)
    assert r.exit_code == 0, r.output
    _assert_same_run(tmp_path / "run", tmp_path / "ref")


def test_resume_with_fewer_epochs_than_done_is_refused(tmp_path):
    (tmp_path / "cfg.yaml").write_text("layers: [1]\ndata: {generator: xor}\ntrain: {epochs: 20}\n")
    (tmp_path / "run").mkdir()
    cfg, data = load_config(tmp_path / "cfg.yaml")
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] > 5

    assert run_training(cfg, data, tmp_path / "run", should_stop=stop).status == "interrupted"
    r = _cli("train", "--resume", "run", "--epochs", 5, "-q", cwd=tmp_path)
    assert r.exit_code == 2
    assert r.stderr == ("error: --epochs: the run has already trained 5 epochs; give more than that to continue "
                        "it, found 5\n")
    r = _cli("train", "--resume", "run", "--json", cwd=tmp_path)
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert (out["status"], out["message"], out["epochs"]) == ("completed", "", 20)


def test_resuming_a_completed_run_is_refused(tmp_path):
    (tmp_path / "cfg.yaml").write_text("layers: [1]\ndata: {generator: xor}\ntrain: {epochs: 2}\n")
    assert _cli("train", "cfg.yaml", "--out", "run", "-q", cwd=tmp_path).exit_code == 0
    r = _cli("train", "--resume", "run", "-q", cwd=tmp_path)
    assert r.exit_code == 2
    assert r.stderr == "error: run: the run is already completed; nothing to resume\n"


# --- failed writes ---------------------------------------------------------------------------------


@pytest.fixture
def saved_run(tmp_path):
    """A 3-epoch interrupted run, its files' bytes, and what its next checkpoint would save."""
    (tmp_path / "cfg.yaml").write_text(
        "layers: [3, 1]\ninputs: 2\ndata: {generator: xor, validation: 0.25, standardize: true}\n"
        "train: {epochs: 5, optimizer: adam, lr: 0.1}\n")
    cfg, data = load_config(tmp_path / "cfg.yaml")
    assert run_training(cfg, data, tmp_path / "run", should_stop=_after_batches(3)).status == "interrupted"
    run = tmp_path / "run"
    before = _files(run)
    loaded = load_run(run)
    net = loaded.net.copy()
    net.W[0] += 1.0  # the next checkpoint differs in every weight
    log = HistoryLog.reopen(run / "history.csv", loaded.history_file,
                            [record_from_dict(h, 2, loaded.state.epoch) for h in loaded.history])
    args = (run, loaded.cfg, net, loaded.prepared, log, loaded.state, {"status": "running"}, loaded.checkpoint)
    yield run, before, args
    log.close()


def _after_batches(n: int):
    calls = {"n": 0}

    def stop() -> bool:
        calls["n"] += 1
        return calls["n"] > n

    return stop


def _files(run: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


class _HalfWriter:
    """A file whose write() puts half the bytes on disk and then fails like a full disk (or a Ctrl-C)."""

    def __init__(self, fh, exc: BaseException):
        self.fh, self.exc = fh, exc

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.fh.close()

    def write(self, data):
        self.fh.write(data[: len(data) // 2])
        self.fh.flush()
        raise self.exc

    def __getattr__(self, name):
        return getattr(self.fh, name)


N_FILES = 7  # config, weights, state, metrics, history sample, scaling, then run.json


@pytest.mark.parametrize("exc", [OSError(errno.ENOSPC, "No space left on device"), KeyboardInterrupt()],
                         ids=["disk full", "Ctrl-C"])
@pytest.mark.parametrize("k", range(N_FILES))
def test_a_write_failing_midway_keeps_every_previous_file(saved_run, monkeypatch, k, exc):
    run, before, args = saved_run
    real_fdopen = os.fdopen
    calls = {"n": 0}

    def fdopen(fd, *a, **kw):
        fh = real_fdopen(fd, *a, **kw)
        calls["n"] += 1
        return _HalfWriter(fh, exc) if calls["n"] == k + 1 else fh

    monkeypatch.setattr(files.os, "fdopen", fdopen)
    with pytest.raises(SaveError if isinstance(exc, OSError) else KeyboardInterrupt) as err:
        save_run(*args)
    FAULTS["injected"] += 1
    monkeypatch.undo()
    assert calls["n"] == k + 1
    if isinstance(exc, OSError):
        assert str(err.value) == (f"{run}: cannot save the run (No space left on device); "
                                  "the files saved before are unchanged")
    assert _files(run) == before  # byte for byte, and nothing half-written left behind
    _assert_consistent_checkpoint(run, "interrupted")


@pytest.mark.parametrize("k", range(N_FILES + 2))  # the six files, their folder, history.csv, run.json
def test_fsync_failing_keeps_every_previous_file(saved_run, monkeypatch, k):
    run, before, args = saved_run
    real = os.fsync
    calls = {"n": 0}

    def fsync(fd):
        calls["n"] += 1
        if calls["n"] == k + 1:
            raise OSError(errno.EIO, "Input/output error")
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(SaveError):
        save_run(*args)
    FAULTS["injected"] += 1
    monkeypatch.undo()
    assert _files(run) == before
    _assert_consistent_checkpoint(run, "interrupted")


FS_CALLS = ("open", "mkdir", "fsync", "replace", "rename", "unlink", "rmdir")


def _killed_at(k: int, run: Path, counter: Path) -> None:
    """In a forked child: continue the run, checkpointing every epoch; SIGKILL at the k-th file-system call."""
    import bpcli.runs.session
    loaded = load_run(run)
    calls = {"n": 0}
    for name in FS_CALLS:
        # fsync is a kill point, but skipped: a killed process loses nothing the kernel holds (only a power cut
        # would, which the fsync tests above cover), and a shared disk makes each real fsync slow
        real = getattr(os, name) if name != "fsync" else (lambda fd: None)

        def counted(*a, _real=real, **kw):
            calls["n"] += 1
            counter.write_text(str(calls["n"])) if k == 0 else None
            if calls["n"] == k:
                os.kill(os.getpid(), signal.SIGKILL)
            return _real(*a, **kw)

        setattr(os, name, counted)
    bpcli.runs.session.run_training(_four(loaded.cfg), None, None, resume=loaded, checkpoint_seconds=0.0)


def _four(cfg):
    """The saved run's config, trained to epoch 4: one more epoch, two checkpoint switches (epoch-4, epoch-4.2)."""
    from bpcli.config.loader import with_overrides
    return with_overrides(cfg, epochs=4, samples=3)


@pytest.mark.slow  # run apart: `pytest -m slow` (.ci/run runs the group beside the suite)
def test_sigkill_at_every_step_of_a_checkpoint_leaves_the_old_or_the_new_epoch(saved_run, tmp_path):
    """A real process killed at each file-system call of its checkpoints (one more epoch, two switches):
    the run always loads at an epoch it saved, and resumes to the same weights as a run never killed."""
    run, before, args = saved_run
    loaded = load_run(run)
    ref = tmp_path / "ref"
    assert run_training(_four(loaded.cfg), load_config(tmp_path / "cfg.yaml")[1], ref).status == "completed"
    pristine = tmp_path / "pristine"
    shutil.copytree(run, pristine)
    counter = tmp_path / "calls"
    k, total, seen = 0, None, set()
    while total is None or k <= total:
        shutil.rmtree(run)
        shutil.copytree(pristine, run)
        pid = os.fork()
        if pid == 0:  # the child: never returns into pytest
            try:
                _killed_at(k, run, counter)
                os._exit(0)
            except BaseException:
                os._exit(3)
        _, status = os.waitpid(pid, 0)
        if k == 0:
            assert os.waitstatus_to_exitcode(status) == 0
            total = int(counter.read_text())
        else:
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, status
            FAULTS["injected"] += 1
        epoch = load_run(run).state.epoch  # whole, never a checksum mismatch
        assert epoch in (3, 4)
        assert trajectory(run).epochs[-1] == epoch  # every snapshot chunk run.json lists is whole
        seen.add(epoch)
        if k % 3 == 0 or k == total:  # resuming is the same whichever point it was killed at; a sample keeps it quick
            if load_run(run).state.status != "completed":
                run_training(_four(loaded.cfg), None, None, resume=load_run(run))
            _assert_same_run(run, ref)
        k += 1
    assert total > 20 and seen == {3, 4}, (total, seen)
    print(f"{total} kill points")
    shutil.rmtree(pristine)


def test_a_full_disk_during_training_is_exit_1_with_a_clear_message(tmp_path, monkeypatch):
    (tmp_path / "cfg.yaml").write_text("layers: [1]\ndata: {generator: xor}\ntrain: {epochs: 2}\n")

    def full(folder, files):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(runs, "write_new_files", full)
    r = _cli("train", "cfg.yaml", "--out", "run", "-q", cwd=tmp_path)
    FAULTS["injected"] += 1
    assert r.exit_code == 1
    assert r.stderr == "error: run: cannot save the run (No space left on device); nothing was written\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cfg.yaml"]  # nothing half-made is left behind


def test_successful_save_switches_to_the_new_checkpoint_and_removes_the_old(saved_run):
    run, before, args = saved_run
    name = save_run(*args)
    assert name == "epoch-3.2" and not (run / "epoch-3").exists()  # the same epoch saved again: a new folder
    np.testing.assert_array_equal(load_run(run).net.W[0], args[2].W[0])


# --- overflow and divergence -------------------------------------------------------------------------

HUGE = np.array([[-1e308, -1e200, -745.2, -50.0, -1e-300, 0.0, 1e-300, 50.0, 745.2, 1e200, 1e308]])


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activations_on_huge_inputs_raise_no_numpy_warning(name):
    act = get_activation(name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            a = act.fn(HUGE)
            dz = act.vjp(HUGE, a, np.ones_like(HUGE))
            if act.grad is not None:
                d = act.grad(HUGE, a)
                assert np.all(np.isfinite(d))
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(dz))
    if name in ("sigmoid", "softplus", "silu", "gelu", "relu", "elu"):
        assert a[0, 0] in (0.0, -1.0) and a[0, -1] in (1.0, 1e308)
    if name == "softmax":
        np.testing.assert_allclose(a.sum(axis=1), 1.0)


@pytest.mark.parametrize("name", list(LOSSES))
def test_losses_at_the_edges_raise_no_numpy_warning(name):
    loss = get_loss(name)
    y_hat = np.array([[0.0], [1.0], [1e-320], [1 - 1e-16], [0.5]])
    y = np.array([[1.0], [0.0], [1.0], [0.0], [1.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            v = loss.value(y_hat, y)
            g = loss.grad(y_hat, y)
    assert np.all(np.isfinite(v)) and np.all(np.isfinite(g))


def test_a_diverging_run_names_the_epoch_and_keeps_the_last_finite_weights(tmp_path):
    (tmp_path / "cfg.yaml").write_text(
        "inputs: 1\nlayers: [{size: 4, activation: relu}, {size: 1, activation: identity}]\n"
        "data: {generator: sine, samples: 50}\ntrain: {lr: 100000, epochs: 50}\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow RuntimeWarning would become an exception here
        r = _cli("train", "cfg.yaml", "--out", "run", "-q", cwd=tmp_path)
    assert r.exit_code == 1
    assert r.stderr == ("error: loss became infinite at epoch 5; kept the weights of epoch 4; try a smaller "
                        "learning rate (now 100000); last finite weights saved in run\n")
    assert _assert_consistent_checkpoint(tmp_path / "run", "diverged") == 4
    # the kept weights are exactly those of a run stopped after epoch 4
    assert _cli("train", "cfg.yaml", "--epochs", 4, "--out", "ref", "-q", cwd=tmp_path).exit_code == 0
    w, ref = _arrays(checkpoint_dir(tmp_path / "run") / "weights.npz"), _arrays(checkpoint_dir(tmp_path / "ref") / "weights.npz")
    for k in ref:
        np.testing.assert_array_equal(w[k], ref[k])
        assert np.all(np.isfinite(w[k]))
