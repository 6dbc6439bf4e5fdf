"""bpcli step: the steps `bpcli train` takes, against hand-written updates and against training itself; --out writes a
run folder that `train --resume` continues bit for bit."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from typer.testing import CliRunner

from bpcli.cli.app import app
from bpcli.runs.store import checkpoint_dir
from bpcli.runs.snapshots import trajectory

from tests.explain.test_explain_update import KEYS, START, WEIGHTS, config, hand_grads, write

runner = CliRunner()


def arrays(run) -> dict:
    out = {}
    ck = checkpoint_dir(run)
    for name in ("weights.npz", "state.npz"):
        with np.load(ck / name, allow_pickle=False) as z:
            out.update({f"{name}:{k}": z[k] for k in z.files})
    return out


def by_name(run) -> dict:
    a = arrays(run)
    return {name: float(a[f"weights.npz:{key}"][idx]) for name, (key, idx) in KEYS.items()}


def step_json(*args) -> dict:
    r = runner.invoke(app, ["step", *args, "--json"])
    assert 0 == r.exit_code, r.output
    return json.loads(r.stdout)


def test_one_step_on_the_seed_is_the_first_epoch_of_training_for_all_nine_parameters(tmp_path):
    doc = step_json()
    r = runner.invoke(app, ["train", "--epochs", "1", "--out", str(tmp_path / "one"), "-q", "--json"])
    assert 0 == r.exit_code, r.output
    trained = arrays(tmp_path / "one")
    snap = trajectory(tmp_path / "one")
    names = ["w11", "w12", "w21", "w22", "b_A1", "b_A2", "v1", "v2", "b_B"]
    assert names == [p["name"] for p in doc["parameters"]]
    where = {"w11": ("A.W", (0, 0)), "w12": ("A.W", (0, 1)), "w21": ("A.W", (1, 0)), "w22": ("A.W", (1, 1)),
             "b_A1": ("A.b", (0,)), "b_A2": ("A.b", (1,)), "v1": ("B.W", (0, 0)), "v2": ("B.W", (0, 1)),
             "b_B": ("B.b", (0,))}
    for p in doc["parameters"]:
        key, idx = where[p["name"]]
        assert trained[f"weights.npz:{key}"][idx] == p["new"], p["name"]  # bit for bit: the same step
        assert snap.params[key][list(snap.epochs).index(1)][idx] == p["new"], p["name"]  # the first snapshot's
        assert p["new"] - p["value"] == p["update"]
        assert abs(p["new"] - (p["value"] - 2.0 * p["gradient"])) <= 1e-15  # the seed's gd with lr 2
    assert (1, 0, 1) == (doc["steps"], doc["start"]["step"], doc["end"]["step"])
    assert doc["cost"]["after"] < doc["cost"]["before"]
    text = runner.invoke(app, ["step"], env={"COLUMNS": "80"}).stdout
    rows = [ln.split()[0] for ln in text.splitlines() if ln.split()[:1] and ln.split()[0] in names]
    assert names == rows


def test_the_gradient_and_update_columns_are_the_hand_written_ones(tmp_path):
    lr, wd = 0.5, 0.01
    doc = step_json(str(write(tmp_path, config("gd", lr, wd))))
    g = hand_grads(dict(START))
    for p in doc["parameters"]:
        n = p["name"]
        assert abs(p["gradient"] - g[n]) <= 1e-15, n
        want = START[n] - lr * (g[n] + (wd * START[n] if n in WEIGHTS else 0.0))
        assert abs(p["new"] - want) <= 1e-15, n


def shuffled_steps(k: int, seed: int) -> list[list[int]]:
    """The documented shuffle: numpy.random.default_rng(train.seed).permutation(4) each epoch, batches of 2."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < k:
        order = [int(i) for i in rng.permutation(4)]
        out += [order[:2], order[2:]]
    return out[:k]


def hand_sgd(steps: list[list[int]], lr: float) -> dict:
    """Plain SGD on the given batches, each step's gradient by the chain rule over its rows."""
    p = dict(START)
    for rows in steps:
        g = hand_grads(p, rows)
        for k in p:
            p[k] -= lr * g[k]
    return p


def test_mini_batch_steps_are_batches_of_the_seeded_shuffle_and_out_needs_whole_epochs(tmp_path):
    cfg = config("sgd", 0.7, 0.0, epochs=10)
    cfg["train"]["batch_size"] = 2
    path = write(tmp_path, cfg)
    doc = step_json(str(path), "--steps", "3")
    want = hand_sgd(shuffled_steps(3, 3), 0.7)
    first = hand_sgd(shuffled_steps(1, 3), 0.7)
    for p in doc["parameters"]:
        assert abs(p["new"] - want[p["name"]]) <= 1e-14, p["name"]
        assert abs(p["value"] - 0.7 * p["gradient"] - first[p["name"]]) <= 1e-14  # step 1's batch gradient
    assert (2, 2, 1.5) == (doc["batch"], doc["steps_per_epoch"], doc["end"]["epoch"])
    r = runner.invoke(app, ["step", str(path), "--steps", "3", "--out", str(tmp_path / "no")])
    assert 2 == r.exit_code and "not a whole number of epochs" in r.stderr and "multiple of 2" in r.stderr
    assert not (tmp_path / "no").exists()


def test_out_writes_a_run_that_train_resume_continues_bit_for_bit(tmp_path):
    """step CONFIG -k 4 --out r2 (two epochs of two batches), step r2 -k 2 --out r3, train --resume r3: the same
    run as `train CONFIG` straight through (Adam's m and v, the step count and the shuffle carried over)."""
    cfg = config("adam", 0.05, 0.01, epochs=5)
    cfg["train"]["batch_size"] = 2
    path = write(tmp_path, cfg)
    r2, r3, straight = tmp_path / "r2", tmp_path / "r3", tmp_path / "straight"
    first = step_json(str(path), "-k", "4", "--out", str(r2))
    assert str(r2) == first["out"]
    second = step_json(str(r2), "-k", "2", "--out", str(r3))
    assert (2, 4, 3) == (second["start"]["epoch"], second["start"]["step"], second["end"]["epoch"])
    manifest = json.loads((r3 / "run.json").read_text())
    assert (3, 6, "interrupted") == (manifest["epoch"], manifest["step"], manifest["status"])
    assert {p["name"]: p["new"] for p in second["parameters"]} == by_name(r3)  # what step showed is what it saved
    assert 0 == runner.invoke(app, ["train", "--resume", str(r3), "-q", "--json"]).exit_code
    assert 0 == runner.invoke(app, ["train", str(path), "--out", str(straight), "-q", "--json"]).exit_code
    a, b = arrays(r3), arrays(straight)
    assert a.keys() == b.keys()
    assert all(np.array_equal(a[k], b[k]) for k in a), [k for k in a if not np.array_equal(a[k], b[k])]
    assert (r3 / "history.csv").read_text().count("\n") == 6  # the header and five epochs


def test_nothing_is_written_without_out_and_bad_input_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert 0 == runner.invoke(app, ["step", "-k", "2"]).exit_code
    assert [] == os.listdir(tmp_path)
    for args, words in ((["-k", "0"], "--steps"), (["-w", "w13"], "unknown parameter"),
                        (["--rows", "-1"], "--rows")):
        r = runner.invoke(app, ["step", *args])
        assert 2 == r.exit_code and words in r.stderr and "Traceback" not in r.output, args
    run = tmp_path / "run"
    assert 0 == runner.invoke(app, ["step", "--out", str(run)]).exit_code
    r = runner.invoke(app, ["step", str(run), "--out", str(run), "--overwrite"])
    assert 2 == r.exit_code and "is the run being stepped" in r.stderr


@pytest.mark.parametrize("width", [80, 120])
def test_the_view_fits_and_filters_by_weight(width):
    r = runner.invoke(app, ["step", "-k", "2", "-w", "v1,b_B"], env={"COLUMNS": str(width)})
    assert 0 == r.exit_code, r.output
    lines = r.stdout.splitlines()
    assert [] == [ln for ln in lines if len(ln) > width or ln != ln.rstrip()]
    names = [ln.split()[0] for ln in lines if ln.split()[:1] and ln.split()[0] in ("v1", "b_B", "w11")]
    assert ["v1", "b_B"] == names
    assert "the 2 steps together" in r.stdout


def test_a_bigger_network_lists_rows_and_says_how_many_more():
    from bpcli.config.loader import builtin_config_dir
    r = runner.invoke(app, ["step", str(builtin_config_dir() / "iris.yaml"), "--rows", "5"], env={"COLUMNS": "80"})
    assert 0 == r.exit_code, r.output
    assert "... 62 more parameters" in r.stdout  # 4*8 + 8 + 8*3 + 3 = 67
    assert "mini-batches of 16" in r.stdout


def test_a_run_at_an_earlier_epoch_steps_to_its_next_snapshot_and_branches_with_out(tmp_path):
    from bpcli.runs.store import load_run
    cfg = config("momentum", 0.3, 0.02, epochs=5)
    cfg["train"]["batch_size"] = 2
    path = write(tmp_path, cfg)
    run, branch = tmp_path / "run", tmp_path / "branch"
    assert 0 == runner.invoke(app, ["train", str(path), "--out", str(run), "-q", "--json"]).exit_code
    before = arrays(run)
    doc = step_json(str(run), "--epoch", "2", "-k", "2", "--out", str(branch))
    at3 = load_run(run, 3).net
    assert {p["name"]: at3.get(at3.resolve(p["name"])) for p in doc["parameters"]} == \
        {p["name"]: p["new"] for p in doc["parameters"]}
    assert before.keys() == arrays(run).keys() and all(np.array_equal(before[k], arrays(run)[k]) for k in before)
    assert 0 == runner.invoke(app, ["train", "--resume", str(branch), "-q", "--json"]).exit_code
    a, b = arrays(branch), arrays(run)
    assert all(np.array_equal(a[k], b[k]) for k in b)  # the branch ends where the run did, bit for bit



def test_the_closing_hint_names_the_explain_command_of_the_same_weights_and_state(tmp_path):
    cfg = config("momentum", 0.3, 0.02, epochs=5)
    path = write(tmp_path, cfg)
    run = tmp_path / "run"
    assert 0 == runner.invoke(app, ["train", str(path), "--out", str(run), "-q", "--json"]).exit_code
    shown = runner.invoke(app, ["step", str(run), "--epoch", "2", "-w", "v1"], env={"COLUMNS": "200"})
    hint = shown.stdout.strip().splitlines()[-1]
    assert hint == f"every term of one parameter's update: `bpcli explain {run} --epoch 2 -w NAME`", hint
    # the hint's command explains the very update step took
    new = step_json(str(run), "--epoch", "2", "-w", "v1")["parameters"][0]["new"]
    doc = json.loads(runner.invoke(app, ["explain", str(run), "--epoch", "2", "-w", "v1", "--json"]).stdout)
    assert new == doc["explanations"][0]["update"]["new"]
    assert runner.invoke(app, ["step", str(path), "-w", "v1"], env={"COLUMNS": "200"}).stdout.strip().endswith(
        f"`bpcli explain {path} -w NAME`")


def test_the_closing_hint_keeps_its_command_whole_on_a_narrow_terminal(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a short relative path: the command fits a line of 80, the sentence does not
    path = write(tmp_path, config("momentum", 0.3, 0.02, epochs=5))
    assert 0 == runner.invoke(app, ["train", str(path), "--out", "runs/seed", "-q", "--json"]).exit_code
    narrow = runner.invoke(app, ["step", "runs/seed", "--epoch", "2", "-w", "v1"], env={"COLUMNS": "80"})
    assert ["every term of one parameter's update:", "`bpcli explain runs/seed --epoch 2 -w NAME`"] == \
        narrow.stdout.strip().splitlines()[-2:], narrow.stdout


EARLY = """\
name: early
layers:
  - {{size: 6, activation: tanh}}
  - {{size: 3, activation: softmax}}
loss: cross_entropy
init: {{scheme: xavier_uniform, seed: 0}}
data: {{csv: {csv}, target: species, validation: 0.2, standardize: true}}
train: {{optimizer: adam, lr: 0.05, epochs: 300, seed: 0, early_stopping: {{patience: 5}}}}
"""


def test_explain_and_step_on_an_early_stopped_adam_run_refuse_alike_and_agree_at_the_epochs_named(tmp_path):
    """restore_best puts back epoch 31's weights after Adam's state moved on to epoch 36: neither command takes an
    update from that pair; both name --epoch 31 and --epoch 36, and there give the same update."""
    from pathlib import Path
    csv = Path(__file__).resolve().parents[2] / "configs" / "iris.csv"
    (tmp_path / "early.yaml").write_text(EARLY.format(csv=csv))
    run = tmp_path / "run"
    r = runner.invoke(app, ["train", str(tmp_path / "early.yaml"), "--out", str(run), "-q", "--json"])
    assert 0 == r.exit_code, r.output
    assert (36, 31) == (json.loads(r.stdout)["epochs"], json.loads(r.stdout)["weights_epoch"])
    ex = runner.invoke(app, ["explain", "--run", str(run), "-w", "v11", "--json"])
    st = runner.invoke(app, ["step", str(run), "--json"])
    assert (2, 2) == (ex.exit_code, st.exit_code), (ex.output, st.output)
    messages = [json.loads(res.stdout)["error"]["message"] for res in (ex, st)]
    assert messages[0].replace("bpcli explain", "bpcli step").replace(" -w v11", "") == messages[1]
    assert "--epoch 31" in messages[0] and "--epoch 36" in messages[0] and "\n" not in messages[0]
    assert f"`bpcli step {run} --epoch 31`" in messages[1]
    for epoch in ("31", "36"):
        ex = runner.invoke(app, ["explain", "--run", str(run), "-w", "v11", "--epoch", epoch, "--json"])
        assert 0 == ex.exit_code, ex.output
        update = json.loads(ex.stdout)["explanations"][0]["update"]
        doc = step_json(str(run), "--epoch", epoch, "-w", "v11")
        v11 = doc["parameters"][0]
        assert ("adam", doc["start"]["step"] + 1) == (update["optimizer"], update["t"])
        assert (v11["value"], v11["gradient"], v11["first_step"]) == (update["old"], update["gradient"],
                                                                       update["terms"])
        if epoch == "31":  # after epoch 36 the step's epoch ends with patience out: fit puts back epoch 31's weights
            assert v11["new"] == update["new"]


def test_rows_0_lists_no_parameters_and_says_so_without_an_empty_table():
    """--rows 0: no table with a header and no rows, no '... 9 more' after nothing; the seed's 9 parameters are
    named as not listed, and the cost line still follows."""
    out = runner.invoke(app, ["step", "--rows", "0"], env={"COLUMNS": "120"})
    assert out.exit_code == 0, out.output
    lines = out.stdout.splitlines()
    assert not any(ln.split()[:2] == ["name", "value"] for ln in lines), out.stdout
    assert "more parameters" not in out.stdout
    assert "9 parameters, none listed (--rows 0; choose with --weight; all of them in --json)" in out.stdout
    assert any(ln.startswith("cost C = 0.130893 -> 0.128568") for ln in lines), out.stdout
