"""Weight snapshots: kept at the right epochs, equal to the weights training had, and any one continues the run bit
for bit; damaged or missing chunks and epochs not kept are clear errors."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bpcli.cli.app import app
from bpcli.config.loader import load_config, with_overrides
from bpcli.errors import BpcliError, ConfigError
from bpcli.nn.model import build
from bpcli.runs.store import canonical, checkpoint_dir, load_run
from bpcli.schema import TrainConfig
from bpcli.runs.session import open_session, run_training, train
from bpcli.runs.snapshot_store import stride
from bpcli.runs.snapshots import available_epochs, epoch_batch, trajectory

from tests.conftest import read_history

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "configs").glob("*.yaml"))


@pytest.fixture(autouse=True)
def _no_fsync(monkeypatch):
    """These tests are about values; durability is test_faults.py's (a real fsync costs ~4 ms on a shared disk)."""
    monkeypatch.setattr(os, "fsync", lambda fd: None)


def _with(case: str, extra: str) -> str:
    """BASE and a case's train mapping with more keys in it."""
    return BASE + CASES[case].replace("}\n", f", {extra}}}\n")


def _cli(*args):
    return runner.invoke(app, [*map(str, args)], catch_exceptions=False)


def _train(cfg_text: str | Path, out: Path, **overrides) -> Path:
    """A run of the config (YAML text or a file) trained into `out`."""
    path = Path(cfg_text) if isinstance(cfg_text, Path) else out.parent / f"{out.name}.yaml"
    if not isinstance(cfg_text, Path):
        path.write_text(cfg_text)
    cfg, data = load_config(path)
    run_training(with_overrides(cfg, samples=data.m, **overrides), data, out)
    return out


def _branch(run: Path, epoch: int, out: Path, **overrides) -> Path:
    train(open_session(resume=run, from_epoch=epoch, out=out, **overrides))
    return out


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _assert_same_from(a: Path, b: Path, epoch: int) -> None:
    """Every snapshot after `epoch`, the final weights and optimiser state, and the history rows: equal bit for bit."""
    ta, tb = trajectory(a), trajectory(b)
    assert ta.epochs.tolist() == tb.epochs.tolist()
    later = ta.epochs > epoch
    assert later.any()
    for part in ("params", "buffers"):
        pa, pb = getattr(ta, part), getattr(tb, part)
        assert pa.keys() == pb.keys()
        for k in pa:
            assert np.array_equal(pa[k][later], pb[k][later]), (part, k)
    assert np.array_equal(ta.steps, tb.steps)
    for name in ("weights.npz", "state.npz"):
        x, y = _arrays(checkpoint_dir(a) / name), _arrays(checkpoint_dir(b) / name)
        assert x.keys() == y.keys()
        for k in x:
            assert np.array_equal(x[k], y[k]), (name, k)
    ra, rb = read_history(a), read_history(b)
    assert [dict(r, seconds=0) for r in ra] == [dict(r, seconds=0) for r in rb]
    la, lb = json.loads((a / "run.json").read_text()), json.loads((b / "run.json").read_text())
    for key in ("epoch", "step", "status", "best_epoch", "weights_epoch", "bad_epochs", "best_val", "rng_state"):
        assert la[key] == lb[key], key


# --- every shipped config -------------------------------------------------------------------------


@pytest.mark.parametrize("config", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_configs_snapshot_epoch_0_the_last_epoch_and_resume_bit_for_bit(config, tmp_path):
    run = _train(config, tmp_path / "run", epochs=5)
    cfg, _ = load_config(config)
    t = trajectory(run)
    assert t.epochs.tolist() == list(range(6))  # a small network: every epoch
    initial = build(cfg).named_arrays()
    final = load_run(run)
    assert final.state.weights_epoch in (None, 5)  # no best-epoch restore in 5 epochs
    for k, a in initial.items():
        assert np.array_equal(t.params[k][0], a), k  # epoch 0: the config's initial weights
        assert np.array_equal(t.params[k][-1], final.net.named_arrays()[k]), k  # the last: the final weights
    _assert_same_from(run, _branch(run, 2, tmp_path / "branch"), 2)


# --- optimisers, weight decay, early stopping --------------------------------------------------------

BASE = ("inputs: 2\nlayers: [{size: 4, activation: tanh}, {size: 1, activation: sigmoid}]\nloss: binary_cross_entropy\n"
        "data: {generator: moons, samples: 23, noise: 0.2, validation: 0.3, standardize: true}\n")
CASES = {  # each branched at a different epoch: 0, 1, a middle one, the one before the last
    "gd": "train: {optimizer: gd, lr: 0.5, epochs: 12}\n",
    "sgd-shuffled": "train: {optimizer: sgd, lr: 0.3, epochs: 12, batch_size: 5, seed: 4}\n",
    "momentum": "train: {optimizer: momentum, lr: 0.2, momentum: 0.8, epochs: 12, batch_size: 7}\n",
    "adam": "train: {optimizer: adam, lr: 0.05, epochs: 12, batch_size: 4, seed: 2}\n",
    "weight-decay": "train: {optimizer: adam, lr: 0.05, epochs: 12, weight_decay: 0.1, batch_size: 6}\n",
    # the newer optimisers' state (nesterov's velocity m:, rmsprop's average and adagrad's sum of g^2 in v:,
    # adamw's m: and v:) saved with each snapshot and put back on resume
    "nesterov": "train: {optimizer: nesterov, lr: 0.2, momentum: 0.8, epochs: 12, batch_size: 7, weight_decay: 0.01}\n",
    "rmsprop": "train: {optimizer: rmsprop, lr: 0.01, alpha: 0.9, epochs: 12, batch_size: 5, seed: 1}\n",
    "adagrad": "train: {optimizer: adagrad, lr: 0.1, epochs: 12, batch_size: 6}\n",
    "adamw": "train: {optimizer: adamw, lr: 0.05, epochs: 12, weight_decay: 0.1, batch_size: 4, seed: 5}\n",
    # a schedule's lr continues mid-schedule: reduce-on-plateau's counters (lr, best, bad epochs, cooldown) are in
    # every snapshot; watching the falling loss in max mode makes it cut the lr every few epochs
    "plateau": "train: {optimizer: sgd, lr: 0.5, epochs: 12, batch_size: 5, schedule: {name: plateau, monitor: loss, "
               "mode: max, patience: 1, cooldown: 1, factor: 0.5}}\n",
    "cosine": "train: {optimizer: momentum, lr: 0.3, epochs: 12, batch_size: 7, schedule: {name: cosine, t_max: 8}}\n",
    # best epoch 3, stopped at 6: epochs 0, 4 and 6 kept, the branch from 4 stops at 6 again and restores 3
    "early-stopping": "train: {optimizer: adam, lr: 2.0, epochs: 40, batch_size: 3, early_stopping: {patience: 3}, "
                      "snapshots: {every: 4}}\n",
}


@pytest.mark.parametrize("case", CASES)
def test_a_run_branched_from_any_snapshot_continues_bit_for_bit(case, tmp_path):
    run = _train(BASE + CASES[case], tmp_path / "run")
    kept = available_epochs(run)
    last = load_run(run).state.epoch
    assert kept == (list(range(last + 1)) if case != "early-stopping" else [0, 4, last])
    # each snapshot holds the weights the epoch ended with: their norms are those history.csv recorded then
    t, rows = trajectory(run), read_history(run)
    for i, e in enumerate(t.epochs[1:], start=1):
        norms = [float(np.sqrt(np.sum(t.params[f"{x}.W"][i] ** 2))) for x in "AB"]
        np.testing.assert_allclose(norms, rows[e - 1]["weight_norm"], rtol=1e-13)
    meta = json.loads((run / "run.json").read_text())
    if case == "early-stopping":
        assert (meta["status"], meta["best_epoch"], last, meta["weights_epoch"]) == ("early_stopped", 3, 6, 3)
        assert load_run(run, 4).state.bad_epochs == 1
        shown = json.loads(_cli("show", run, "--json").stdout)["snapshots"]
        assert (shown["weights_epoch"], shown["epochs_trained"], shown["epochs"]) == (3, 6, "0, 4, and 6")
    epoch = {"gd": 0, "sgd-shuffled": 1, "adam": last - 1, "early-stopping": 4}.get(case, last // 2)
    _assert_same_from(run, _branch(run, epoch, tmp_path / f"from-{epoch}"), epoch)


def test_a_branch_keeps_the_original_untouched_and_can_train_further(tmp_path):
    run = _train(BASE + CASES["sgd-shuffled"], tmp_path / "run")
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    r = _cli("train", "--resume", run, "--from-epoch", 12, "--epochs", 15, "--out", tmp_path / "more", "-q")
    assert r.exit_code == 0, r.output
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
    longer = _train(BASE + CASES["sgd-shuffled"], tmp_path / "longer", epochs=15)
    _assert_same_from(longer, tmp_path / "more", 12)


def test_branching_in_place_or_without_a_snapshot_is_refused(tmp_path):
    run = _train(_with("gd", "snapshots: {every: 5}"), tmp_path / "run")
    r = _cli("train", "--resume", run, "--from-epoch", 5)
    assert r.exit_code == 2 and "--out" in r.stderr and "Traceback" not in r.output
    r = _cli("train", "--resume", run, "--from-epoch", 7, "--out", tmp_path / "b")
    assert r.exit_code == 2
    assert r.stderr == f"error: --from-epoch 7: {run} keeps the weights of epochs 0-10 every 5, and 12\n"
    assert not (tmp_path / "b").exists()


# --- which epochs are kept --------------------------------------------------------------------------


def test_the_stride_keeps_the_snapshots_within_the_budget():
    s = TrainConfig()  # 50 MB
    # 4,818 bytes a snapshot (deep_relu), 10,000 epochs: 10,001 snapshots take 48.2 MB, so every epoch
    assert stride(4818, 10_000, s) == 1
    # 1,000 bytes, a million epochs: at most 50,000 snapshots; every 20 keeps 50,001 + the last, every 21 keeps 47,620
    assert stride(1000, 1_000_000, s) == 21
    assert stride(1000, 1_000_000, replace(s, snapshot_budget_mb=100.0)) == 11  # 90,910 + 1 of 100,000
    # a snapshot larger than a third of the budget: epoch 0 and the last only; larger than half: none
    assert stride(20_000_000, 50, s) == 51
    assert stride(25_000_001, 50, s) == 0
    assert stride(10, 50, replace(s, snapshot_every=7)) == 7
    assert stride(10, 50, replace(s, snapshots=False)) == 0


def test_budget_every_and_off_in_the_config(tmp_path):
    seed = (ROOT / "configs" / "seed.yaml").read_text().replace("epochs: 3000", "epochs: 20")
    # 9 parameters: 72 bytes + 90 of counters a snapshot; 1 kB allows 6: epochs 0, 5, 10, 15 and 20
    run = _train(seed + "  snapshots: {budget_mb: 0.001}\n", tmp_path / "budget")
    assert available_epochs(run) == [0, 5, 10, 15, 20]
    run = _train(seed + "  snapshots: {every: 6}\n", tmp_path / "every")
    assert available_epochs(run) == [0, 6, 12, 18, 20]
    run = _train(seed + "  snapshots: off\n", tmp_path / "off")
    assert available_epochs(run) == [] and not (run / "snapshots").exists()
    r = _cli("show", run, "--epoch", 0)
    assert r.exit_code == 2
    assert r.stderr.startswith(f"error: --epoch: {run} keeps no weight snapshots (train.snapshots: off)")
    assert load_config(tmp_path / "off.yaml")[0].to_dict()["train"]["snapshots"] == "off"
    run = _train(seed + "  snapshots: {budget_mb: 0.0003}\n", tmp_path / "tiny")  # 300 bytes: not two snapshots
    assert available_epochs(run) == []
    r = _cli("show", run)
    assert r.exit_code == 0 and "snapshots: none kept (one snapshot takes 162 bytes, more than half of" in r.stdout


@pytest.mark.parametrize("value,problem", [
    ("{evry: 5}", "train.snapshots.evry: unknown key 'evry' (did you mean 'every'?)"),
    ("{every: 0}", "train.snapshots.every: must be at least 1, found 0"),
    ("{budget_mb: -1}", "train.snapshots.budget_mb: must be > 0, found -1"),
    ("{every: 2, budget_mb: 3}", "train.snapshots: give every or budget_mb, not both"),
    ("sometimes", "train.snapshots: unknown value 'sometimes'"),
])
def test_bad_snapshot_settings_name_the_line(value, problem, tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(f"inputs: 2\nlayers: [1]\ndata: {{generator: xor}}\ntrain:\n  epochs: 5\n  snapshots: {value}\n")
    with pytest.raises(ConfigError) as err:
        load_config(p)
    assert str(err.value).startswith(f"{p}:6: {problem}") and "\n" not in str(err.value)  # that problem alone


def test_an_interrupted_run_keeps_its_last_whole_epoch(tmp_path):
    (tmp_path / "c.yaml").write_text(BASE + "train: {optimizer: momentum, epochs: 50, batch_size: 4}\n")
    cfg, data = load_config(tmp_path / "c.yaml")
    cfg = replace(cfg, train=replace(cfg.train, snapshot_every=10))
    calls = {"n": 0}

    def stop() -> bool:
        calls["n"] += 1
        return calls["n"] > 4 * 13 + 2  # 4 batches an epoch: stopped in epoch 14
    assert run_training(cfg, data, tmp_path / "run", should_stop=stop).status == "interrupted"
    assert available_epochs(tmp_path / "run") == [0, 10, 13]
    resumed = load_run(tmp_path / "run")
    at = load_run(tmp_path / "run", 13)
    for k, a in resumed.net.named_arrays().items():
        assert np.array_equal(a, at.net.named_arrays()[k])
    for k, a in resumed.state.buffers.items():
        assert np.array_equal(a, at.state.buffers[k])
    assert (at.state.step, at.state.rng_state) == (resumed.state.step, resumed.state.rng_state)
    # a chunk left by a save killed before its run.json went: deleted at the next save, never listed
    (tmp_path / "run" / "snapshots" / "14-20.npz").write_bytes(b"left by a kill")
    train(open_session(resume=tmp_path / "run"))
    assert sorted(p.name for p in (tmp_path / "run" / "snapshots").iterdir()) == ["0-0.npz", "10-13.npz", "20-50.npz"]
    assert available_epochs(tmp_path / "run") == [0, 10, 13, 20, 30, 40, 50]


# --- damaged runs and epochs not kept ----------------------------------------------------------------


@pytest.fixture
def small_run(tmp_path) -> Path:
    return _train(_with("adam", "snapshots: {every: 4}"), tmp_path / "run")


def test_an_epoch_not_kept_or_beyond_the_run_lists_what_is_kept(small_run):
    for epoch, beyond in ((5, ""), (13, "the run has 12 epochs; ")):
        r = _cli("explain", "--run", small_run, "--epoch", epoch, "-w", "v1")
        assert r.exit_code == 2
        assert r.stderr == f"error: --epoch {epoch}: {beyond}{small_run} keeps the weights of epochs 0-12 every 4\n"
    with pytest.raises(BpcliError):
        load_run(small_run, -1)
    r = _cli("explain", "-w", "v1", "--epoch", 0)
    assert r.exit_code == 2 and "--epoch" in r.stderr and "Traceback" not in r.output


def test_a_changed_byte_in_a_chunk_is_a_clear_error(small_run):
    chunk = next((small_run / "snapshots").glob("4-*.npz"))
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 1
    chunk.write_bytes(bytes(data))
    r = _cli("show", small_run, "--epoch", 8)
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert r.stderr.startswith(f"error: {chunk}: does not match the checksum recorded in run.json")
    assert _cli("show", small_run, "--epoch", 0).exit_code == 0  # the other chunk is whole
    assert _cli("show", small_run).exit_code == 0  # and the run itself
    with pytest.raises(BpcliError, match="checksum"):
        trajectory(small_run)


def test_a_missing_chunk_is_a_clear_error(small_run):
    chunk = next((small_run / "snapshots").glob("0-*.npz"))
    chunk.unlink()
    r = _cli("gradcheck", small_run, "--epoch", 0)
    assert r.exit_code == 2
    assert r.stderr == f"error: {chunk}: missing from the run folder\n"


def test_run_json_listing_a_chunk_wrongly_is_damage(small_run):
    meta = json.loads((small_run / "run.json").read_text())
    meta["snapshots"]["chunks"][1]["epochs"] = [[4, 12, 4], [13, 13, 1]]  # one epoch more than the chunk holds
    meta["sha256"] = __import__("hashlib").sha256(canonical({k: v for k, v in meta.items() if k != "sha256"})).hexdigest()
    (small_run / "run.json").write_text(json.dumps(meta))
    r = _cli("show", small_run)
    assert r.exit_code == 2 and "damaged (snapshots:" in r.stderr


def test_a_run_made_before_snapshots_loads_and_says_it_keeps_none(small_run):
    meta = json.loads((small_run / "run.json").read_text())
    del meta["snapshots"]
    meta["sha256"] = __import__("hashlib").sha256(canonical({k: v for k, v in meta.items() if k != "sha256"})).hexdigest()
    (small_run / "run.json").write_text(json.dumps(meta))
    assert available_epochs(small_run) == []
    r = _cli("show", small_run, "--epoch", 4)
    assert r.exit_code == 2
    assert r.stderr == f"error: --epoch: {small_run} keeps no weight snapshots (it was trained by a bpcli from before snapshots)\n"


# --- the commands at an epoch -----------------------------------------------------------------------


def test_explain_at_an_epoch_says_its_sample_count_once(tmp_path):
    run = _train(BASE + CASES["momentum"], tmp_path / "run")
    m = load_run(run).prepared.train.m
    for extra, count in (((), m), (("--batch", 2), 7)):  # the training set; batch 2 of epoch 4 (batches of 7)
        out = _cli("explain", "--run", run, "--epoch", 3, *extra, "-w", "v1").stdout
        head = " ".join(out.split("\n\n")[0].split())  # the title and the line under it, unwrapped
        assert 1 == head.count(" samples"), head
        assert f") {count} samples, inputs standardised as in training" in head


def test_explain_at_epoch_0_is_explain_on_the_config(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(BASE + CASES["momentum"])
    run = _train(cfg, tmp_path / "run")
    a = json.loads(_cli("explain", "--run", run, "--epoch", 0, "-w", "v1,w12", "--json").stdout)
    b = json.loads(_cli("explain", cfg, "-w", "v1,w12", "--json").stdout)
    assert a.pop("source") == f"{run} after epoch 0; training set"
    b.pop("source")
    assert a == b
    for extra in (("--sample", 3), ("--dot",)):  # show at epoch 0: the config's network, traced the same
        a = json.loads(_cli("show", run, "--epoch", 0, *extra, "--json").stdout)
        b = json.loads(_cli("show", cfg, *extra, "--json").stdout)
        assert {k: v for k, v in a.items() if k not in ("source", "epoch", "snapshots", "status", "stepped")} == \
            {k: v for k, v in b.items() if k != "source"}
    last = json.loads(_cli("explain", "--run", run, "--epoch", 12, "-w", "v1", "--json").stdout)
    whole = json.loads(_cli("explain", "--run", run, "-w", "v1", "--json").stdout)
    assert last["explanations"] == whole["explanations"]


def test_explain_batch_k_is_the_batch_training_drew(tmp_path):
    run = _train(BASE + CASES["sgd-shuffled"], tmp_path / "run")  # 16 training samples in batches of 5
    train_x = load_run(run).prepared.train.x
    rng = np.random.default_rng(4)  # train.seed: one permutation of the 16 rows each epoch
    orders = [rng.permutation(16) for _ in range(7)]
    for epoch, k in ((0, 1), (6, 2), (6, 4)):
        rows = orders[epoch][(k - 1) * 5: k * 5]  # batch k of epoch N+1
        assert epoch_batch(load_run(run, epoch), k).rows.tolist() == rows.tolist()
        r = _cli("explain", "--run", run, "--epoch", epoch, "--batch", k, "-w", "v1", "--json")
        d = json.loads(r.stdout)
        assert d["source"].endswith(f"after epoch {epoch}; batch {k} of 4 in epoch {epoch + 1}")  # 16 rows: 4 batches
        shown = [list(s["inputs"].values()) for s in d["explanations"][0]["samples"]]
        assert np.array_equal(np.array(shown), train_x[rows])
    r = _cli("explain", "--run", run, "--epoch", 6, "--batch", 5, "-w", "v1")
    assert r.exit_code == 2 and "batches 1 to 4" in r.stderr
    r = _cli("explain", "--run", run, "--batch", 1, "-w", "v1")
    assert r.exit_code == 2 and "--epoch" in r.stderr


def test_batch_on_a_full_batch_run_is_refused(tmp_path):
    run = _train(BASE + CASES["gd"], tmp_path / "run")
    r = _cli("explain", "--run", run, "--epoch", 2, "--batch", 1, "-w", "v1")
    assert r.exit_code == 2 and "full batches" in r.stderr


def test_show_lists_the_epochs_kept_and_inspect_reads_history_up_to_the_epoch(small_run):
    d = json.loads(_cli("show", small_run, "--json").stdout)
    assert d["snapshots"]["epochs"] == "0-12 every 4" and d["snapshots"]["count"] == 4
    assert d["snapshots"]["bytes"] == sum(p.stat().st_size for p in (small_run / "snapshots").iterdir())
    at = json.loads(_cli("show", small_run, "--epoch", 4, "--json").stdout)
    w4 = load_run(small_run, 4).net
    assert at["epoch"] == 4
    assert [p["value"] for p in at["parameters"]] == [w4.get(ref) for ref in w4.param_refs()]
    h = load_run(small_run, 8).history
    assert [r["epoch"] for r in h] == list(range(1, 9))
    assert [r["loss"] for r in h] == [r["loss"] for r in read_history(small_run)[:8]]
    early = json.loads(_cli("inspect", small_run, "--epoch", 8, "--json").stdout)
    assert early["epochs"] == 8 and "running" not in early["status"] and "12" in early["status"]  # it went on
    last = json.loads(_cli("inspect", small_run, "--epoch", 12, "--json").stdout)
    assert last["status"] == load_run(small_run).state.status


def test_the_history_up_to_an_epoch_is_the_sample_a_run_of_that_length_keeps(tmp_path):
    """Past 2,048 epochs the history sample is thinned: read back at epoch 4,101 it is what the log kept in memory
    when it had 4,101 epochs, and a branched history.csv holds exactly the first 4,101 rows."""
    from bpcli.runs.history import HistoryLog, read_prefix
    from bpcli.training.fit import EpochRecord
    log = HistoryLog.create(tmp_path / "history.csv", ["A", "B"])
    rng = np.random.default_rng(5)
    at = None
    for e in range(1, 5001):
        log.append(EpochRecord(e, float(rng.random()), None, float(rng.random()), None, (1.0, 2.0), (3.0, 0.5),
                               (1e-3, 2e-3), (0.0, None), 1e-4, None, bool(e % 7 == 0)))
        if e == 4101:
            at = [r.to_dict() for r in log.sample]
    recorded = log.sync()
    log.close()
    prefix, sample = read_prefix(tmp_path / "history.csv", recorded, ["A", "B"], 4101)
    assert [r.to_dict() for r in sample] == at and len(at) < 2100
    assert prefix.decode().splitlines() == (tmp_path / "history.csv").read_text().splitlines()[:4102]


def test_a_long_adam_run_reads_back_every_snapshot_chunk(tmp_path):
    # each snapshot also holds Adam's m: and v: buffers (three arrays per parameter): a chunk of some hundred
    # epochs is within the size its network and keys allow, not refused as oversized
    wide = BASE.replace("size: 4,", "size: 32,")  # 129 parameters: their buffers outweigh the per-array slack
    run = _train(wide + "train: {optimizer: adam, lr: 0.01, epochs: 600, seed: 1}\n", tmp_path / "run")
    chunks = json.loads((run / "run.json").read_text())["snapshots"]["chunks"]
    assert max(c["count"] for c in chunks) >= 300
    t = trajectory(run)
    assert t.epochs[0] == 0 and t.epochs[-1] == 600
    net = load_run(run).net
    for key, a in net.named_arrays().items():
        assert np.array_equal(t.params[key][-1], a), key
