"""Learning-rate schedules against torch.optim.lr_scheduler: the lr of every epoch in history.csv equals the
scheduler's (stepped once after each epoch), and the weights bpcli trains equal torch.optim.SGD stepped with those
lrs and autograd's gradients (the network and the torch side from test_optimizers_torch)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from bpcli.cli.app import app
from bpcli.config.loader import load_config
from bpcli.runs.session import run_training
from bpcli.runs.store import checkpoint_dir
from tests.conftest import read_history
from tests.training.test_optimizers_torch import STEPS, W1, config, torch_weights

LR = 0.8


def torch_lrs(make, metrics: list[float] | None = None) -> list[float]:
    """The lr of each of STEPS epochs: the scheduler stepped after each (with the epoch's metric for plateau)."""
    opt = torch.optim.SGD([torch.zeros(1, dtype=torch.float64, requires_grad=True)], lr=LR)
    sched = make(opt)
    lrs = []
    for e in range(STEPS):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step(*([metrics[e]] if metrics is not None else []))
    return lrs


def train(tmp_path, schedule: dict, **data) -> tuple[dict, list[dict]]:
    cfg = config({"optimizer": "sgd", "lr": LR, "schedule": schedule})
    cfg["data"].update(data)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["train", str(path), "--out", str(out), "-q", "--json"])
    assert res.exit_code == 0, res.output
    with np.load(checkpoint_dir(out) / "weights.npz", allow_pickle=False) as z:
        return {k: z[k].copy() for k in ("A.W", "A.b", "B.W", "B.b")}, read_history(out)


CASES = [
    ({"name": "step", "step_size": 2, "gamma": 0.5}, lambda o: torch.optim.lr_scheduler.StepLR(o, 2, gamma=0.5)),
    ({"name": "exponential", "gamma": 0.7}, lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.7)),
    ({"name": "cosine", "t_max": 4, "eta_min": 0.1},
     lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=4, eta_min=0.1)),
    ({"name": "cosine", "t_max": 3}, lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=3)),
]


@pytest.mark.parametrize("schedule,make", CASES, ids=[f"{c[0]['name']}-{i}" for i, c in enumerate(CASES)])
def test_each_epochs_lr_and_the_weights_equal_torchs_scheduler(tmp_path, schedule, make):
    got, rows = train(tmp_path, schedule)
    want_lrs = torch_lrs(make)
    assert len(set(want_lrs)) > 2  # the schedule moves the lr
    np.testing.assert_allclose([r["lr"] for r in rows], want_lrs, rtol=1e-12, atol=0)
    want = torch_weights(lambda g: torch.optim.SGD(g, lr=LR), lrs=want_lrs)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-12, atol=1e-14, err_msg=k)
    assert np.max(np.abs(want["A.W"] - np.array(W1))) > 1e-3


PLATEAU = [
    # the training loss falls every epoch: watched with mode max it never improves, so the lr halves after
    # patience + 1 epochs, then the cooldown holds the count at 0 for one epoch
    ({"name": "plateau", "monitor": "loss", "mode": "max", "factor": 0.5, "patience": 1, "cooldown": 1},
     dict(mode="max", factor=0.5, patience=1, cooldown=1), "loss", {}),
    # the validation loss, min mode with an absolute threshold large enough that small gains do not count
    ({"name": "plateau", "factor": 0.3, "patience": 0, "threshold": 0.002, "threshold_mode": "abs",
      "min_lr": 0.1}, dict(factor=0.3, patience=0, threshold=0.002, threshold_mode="abs", min_lr=0.1), "val_loss",
     {"validation": 0.4}),
]


@pytest.mark.parametrize("schedule,kwargs,watch,data", PLATEAU, ids=["loss-max-cooldown", "val-loss-abs-min-lr"])
def test_reduce_on_plateau_follows_torchs_rule_on_the_runs_own_losses(tmp_path, schedule, kwargs, watch, data):
    got, rows = train(tmp_path, schedule, **data)
    values = [r[watch] for r in rows]  # the run's own monitored values: torch's scheduler is fed the same
    want_lrs = torch_lrs(lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o, **kwargs), values)
    assert len(set(want_lrs)) > 1
    np.testing.assert_allclose([r["lr"] for r in rows], want_lrs, rtol=1e-12, atol=0)
    if not data:  # all samples train: the weights are torch's SGD with these lrs
        want = torch_weights(lambda g: torch.optim.SGD(g, lr=LR), lrs=want_lrs)
        for k in want:
            np.testing.assert_allclose(got[k], want[k], rtol=1e-12, atol=1e-14, err_msg=k)


def test_a_run_without_a_schedule_records_its_constant_lr(tmp_path):
    cfg = config({"optimizer": "adam", "lr": 0.05})
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    res = CliRunner().invoke(app, ["train", str(path), "--out", str(tmp_path / "run"), "-q"])
    assert res.exit_code == 0, res.output
    assert [0.05] * STEPS == [r["lr"] for r in read_history(tmp_path / "run")]


@pytest.mark.parametrize("schedule,message", [
    ({"name": "stp"}, "train.schedule.name: unknown value 'stp' (did you mean 'step'?)"),
    ({"name": "step"}, "train.schedule: missing key 'step_size'"),
    ({"name": "exponential", "gamma": 1.5}, "train.schedule.gamma: must be <= 1, found 1.5"),
    ({"name": "plateau", "monitor": "val_loss"}, "train.schedule.monitor: val_loss needs validation data"),
    ({"name": "cosine", "gamma": 0.5}, "train.schedule.gamma: unknown key 'gamma'"),
])
def test_a_bad_schedule_is_one_line_naming_the_field(tmp_path, schedule, message):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config({"optimizer": "sgd", "lr": 0.1, "schedule": schedule})))
    res = CliRunner().invoke(app, ["train", str(path), "--out", str(tmp_path / "run"), "-q"])
    assert 2 == res.exit_code and "Traceback" not in res.output
    assert message in res.stderr, res.stderr


def test_resuming_mid_plateau_from_the_checkpoint_continues_bit_for_bit(tmp_path):
    """Six epochs (interrupted), then `train --resume` from run.json's checkpoint (plateau's counters there), equal
    to twelve epochs in one go: every weight, the optimiser state and every epoch's lr and loss."""
    cfg = config({"optimizer": "momentum", "lr": 0.5, "epochs": 12, "schedule": {
        "name": "plateau", "monitor": "loss", "mode": "max", "factor": 0.5, "patience": 2, "cooldown": 1}})
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    run = lambda *a: CliRunner().invoke(app, ["train", *map(str, a), "-q"])
    assert 0 == run(path, "--out", tmp_path / "whole").exit_code
    calls = iter(range(1, 100))  # interrupted in epoch 7 (one full-batch step an epoch): saved after epoch 6
    cfg_, data = load_config(path)
    run_training(cfg_, data, tmp_path / "half", should_stop=lambda: next(calls) > 6)
    assert 6 == len(read_history(tmp_path / "half"))
    r = run("--resume", tmp_path / "half")
    assert 0 == r.exit_code, r.output
    whole, half = read_history(tmp_path / "whole"), read_history(tmp_path / "half")
    assert [(h["loss"], h["lr"]) for h in whole] == [(h["loss"], h["lr"]) for h in half]
    assert len({h["lr"] for h in whole[6:]}) > 1  # the lr moves after the resume
    for name in ("weights.npz", "state.npz"):
        with np.load(checkpoint_dir(tmp_path / "whole") / name) as a, \
                np.load(checkpoint_dir(tmp_path / "half") / name) as b:
            assert a.files == b.files and all(np.array_equal(a[k], b[k]) for k in a.files), name


@pytest.mark.parametrize("schedule", [{"name": "step", "step_size": 2, "gamma": 0.5},
                                      {"name": "plateau", "monitor": "loss", "mode": "max", "patience": 0,
                                       "factor": 0.5}], ids=["step", "plateau"])
def test_explain_and_step_at_epoch_n_use_the_lr_of_epoch_n_plus_1(tmp_path, schedule):
    import json

    from bpcli.runs.store import load_run
    train(tmp_path, schedule)
    run = tmp_path / "run"
    rows = read_history(run)
    for n in range(STEPS - 1):
        r = CliRunner().invoke(app, ["explain", str(run), "--epoch", str(n), "-w", "v12", "--json"])
        assert 0 == r.exit_code, r.output
        u = json.loads(r.stdout)["explanations"][0]["update"]
        after = load_run(run, n + 1).net
        assert (rows[n]["lr"], after.get(after.resolve("v12"))) == (u["lr"], pytest.approx(u["new"], rel=1e-13))
        s = CliRunner().invoke(app, ["step", str(run), "--epoch", str(n), "-w", "v12", "--json"])
        assert 0 == s.exit_code, s.output
        assert rows[n]["lr"] == json.loads(s.stdout)["lr"]
    assert len({r["lr"] for r in rows}) > 2


def test_the_lr_plot_draws_each_epochs_lr_and_only_when_it_changes(tmp_path):
    from bpcli.plots.plot import context
    from bpcli.plots.curves import lr_figure, no_lr
    from bpcli.runs.store import load_run
    _, rows = train(tmp_path, {"name": "exponential", "gamma": 0.7})
    ctx = context(load_run(tmp_path / "run"))
    assert no_lr(ctx) is None
    fig, title = lr_figure(ctx)
    line = fig.axes[0].lines[0]
    assert [r["lr"] for r in rows] == list(line.get_ydata()) and list(range(1, STEPS + 1)) == list(line.get_xdata())
    cfg = config({"optimizer": "sgd", "lr": 0.1})
    (tmp_path / "plain.yaml").write_text(yaml.safe_dump(cfg))
    assert 0 == CliRunner().invoke(app, ["train", str(tmp_path / "plain.yaml"), "--out", str(tmp_path / "plain"),
                                         "-q"]).exit_code
    assert "" == no_lr(context(load_run(tmp_path / "plain")))  # a constant lr: no plot, nothing said


@pytest.mark.parametrize("cells,last", [(3, ",best"), (1, ",l1_penalty,lr")])
def test_a_run_made_before_the_lr_column_resumes_and_branches_with_its_own_columns(tmp_path, cells, last):
    """history.csv of a run written before the l1_penalty, lr and stats_every columns (its header and rows three
    cells shorter), or before stats_every alone (one cell), still loads, resumes and branches: new rows keep the
    file's own columns."""
    import hashlib
    import json

    from bpcli.runs.store import canonical
    cfg = config({"optimizer": "adam", "lr": 0.05, "epochs": 4})
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    calls = iter(range(1, 100))
    cfg_, data = load_config(path)
    run = tmp_path / "old"
    run_training(cfg_, data, run, should_stop=lambda: next(calls) > 2)  # epochs 1 and 2, interrupted
    hist = run / "history.csv"
    lines = hist.read_text().splitlines()
    assert lines[0].endswith(",l1_penalty,lr,stats_every")
    old = "".join(",".join(line.split(",")[:-cells]) + "\n" for line in lines).encode()  # as an older bpcli wrote it
    assert old.split(b"\n")[0].endswith(last.encode())
    hist.write_bytes(old)
    meta = json.loads((run / "run.json").read_text())
    meta.pop("sha256")
    meta["history"].update(bytes=len(old), sha256=hashlib.sha256(old).hexdigest())
    (run / "run.json").write_text(json.dumps({**meta, "sha256": hashlib.sha256(canonical(meta)).hexdigest()}))
    r = CliRunner().invoke(app, ["train", "--resume", str(run), "-q"])
    assert 0 == r.exit_code, r.output
    rows = hist.read_text().splitlines()
    assert 5 == len(rows) and {len(row.split(",")) for row in rows} == {len(rows[0].split(","))}
    assert rows[0] == lines[0].rsplit(",", cells)[0]
    assert 0 == CliRunner().invoke(app, ["inspect", str(run)]).exit_code
    r = CliRunner().invoke(app, ["train", "--resume", str(run), "--from-epoch", "1", "--out", str(tmp_path / "b"),
                                 "-q"])
    assert 0 == r.exit_code, r.output
    branched = (tmp_path / "b" / "history.csv").read_text().splitlines()
    assert branched[:2] == rows[:2] and {len(row.split(",")) for row in branched} == {len(rows[0].split(","))}


def test_the_weights_equal_a_plain_float_gradient_descent_loop_with_the_schedulers_lrs(tmp_path):
    """The 2-2-1 network of test_optimizers, its chain rule in plain floats, stepped with torch's StepLR lrs."""
    from tests.training.test_optimizers import B1, BB, V, W1 as W1_221, assert_same, grads, trained
    from tests.training.test_optimizers import config as config_221
    cfg = config_221("gd", 2.0, 7)
    cfg["train"]["schedule"] = {"name": "step", "step_size": 3, "gamma": 0.25}
    got = trained(tmp_path, cfg)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=2.0)
    sched = torch.optim.lr_scheduler.StepLR(opt, 3, gamma=0.25)
    p = {"w11": W1_221[0][0], "w12": W1_221[0][1], "w21": W1_221[1][0], "w22": W1_221[1][1], "b1": B1[0],
         "b2": B1[1], "v1": V[0], "v2": V[1], "bB": BB}
    for _ in range(7):
        lr = opt.param_groups[0]["lr"]
        g = grads(p, [0, 1, 2, 3])
        p = {k: p[k] - lr * g[k] for k in p}
        opt.step()
        sched.step()
    assert_same(got, p)
    assert {2.0, 0.5, 0.125} == {r["lr"] for r in read_history(tmp_path / "run")}
