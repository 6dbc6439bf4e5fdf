"""explain's last step is the configured optimiser's next update: against update formulas written out here in
plain floats, and against what `bpcli train` does in the next epoch (the weight change between two epochs).

The reference shares nothing with bpcli: the 2-2-1 network's chain rule is spelled out per weight with math.exp
and each optimiser is its textbook update (Adam with bias-corrected m_hat and v_hat, as in Kingma & Ba).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from bpcli.cli.app import app
from bpcli.config.loader import load_config
from bpcli.data.dataset import prepare
from bpcli.explain.chain import explain
from bpcli.nn.model import build
from bpcli.render.numbers import fmt
from bpcli.runs.store import checkpoint_dir, load_run

runner = CliRunner()

X = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]
Y = [0.0, 1.0, 1.0, 0.0]
START = {"w11": 0.15, "w12": -0.2, "w21": 0.25, "w22": 0.3, "b_A1": 0.35, "b_A2": -0.1, "v1": 0.4, "v2": -0.45,
         "b_B": 0.6}
WEIGHTS = ("w11", "w12", "w21", "w22", "v1", "v2")  # weight decay applies to these, not to the biases
KEYS = {"w11": ("A.W", (0, 0)), "w12": ("A.W", (0, 1)), "w21": ("A.W", (1, 0)), "w22": ("A.W", (1, 1)),
        "b_A1": ("A.b", (0,)), "b_A2": ("A.b", (1,)), "v1": ("B.W", (0, 0)), "v2": ("B.W", (0, 1)),
        "b_B": ("B.b", (0,))}


def sig(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def hand_grads(p: dict, rows: list[int] | None = None) -> dict:
    """dC/dparam for C = 1/m sum_i 1/2 (y_i - y'_i)^2 over the given rows (default all 4), the chain rule one
    weight at a time."""
    rows = list(range(len(X))) if rows is None else rows
    g = {k: 0.0 for k in p}
    for (x1, x2), y in ((X[i], Y[i]) for i in rows):
        o = [sig(p[f"w{j}1"] * x1 + p[f"w{j}2"] * x2 + p[f"b_A{j}"]) for j in (1, 2)]
        yh = sig(p["v1"] * o[0] + p["v2"] * o[1] + p["b_B"])
        dz_b = (yh - y) * yh * (1.0 - yh)
        g["v1"] += dz_b * o[0]
        g["v2"] += dz_b * o[1]
        g["b_B"] += dz_b
        for j in (1, 2):
            dz_a = dz_b * p[f"v{j}"] * o[j - 1] * (1.0 - o[j - 1])
            g[f"w{j}1"] += dz_a * x1
            g[f"w{j}2"] += dz_a * x2
            g[f"b_A{j}"] += dz_a
    return {k: v / len(rows) for k, v in g.items()}


def hand_step(opt: str, p: dict, m: dict, v: dict, t: int, lr: float, wd: float, mu: float = 0.9,
              b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, alpha: float = 0.99) -> tuple[dict, dict]:
    """One full-batch update of every parameter in place (p, m, v); returns the terms of each parameter.
    nesterov keeps its velocity in m; rmsprop its average of g^2 and adagrad its sum of g^2 in v; adamw's weight
    decay is decoupled: lr * wd * p comes off the weight, g is the bare gradient."""
    g = hand_grads(p)
    terms = {}
    for k in p:
        gk = g[k] + (wd * p[k] if k in WEIGHTS and opt != "adamw" else 0.0)
        if opt == "nesterov":
            v_prev = m[k]
            m[k] = mu * m[k] + gk
            look = gk + mu * m[k]
            p[k] = p[k] - lr * look
            terms[k] = {"g": gk, "v_prev": v_prev, "v": m[k], "look": look}
        elif opt == "rmsprop":
            v_prev = v[k]
            v[k] = alpha * v[k] + (1 - alpha) * gk * gk
            p[k] = p[k] - lr * gk / (math.sqrt(v[k]) + eps)
            terms[k] = {"g": gk, "v_prev": v_prev, "v": v[k], "denom": math.sqrt(v[k]) + eps}
        elif opt == "adagrad":
            s_prev = v[k]
            v[k] = v[k] + gk * gk
            p[k] = p[k] - lr * gk / (math.sqrt(v[k]) + 1e-10)
            terms[k] = {"g": gk, "s_prev": s_prev, "s": v[k], "denom": math.sqrt(v[k]) + 1e-10}
        elif opt == "adamw":
            m_prev, v_prev = m[k], v[k]
            m[k] = b1 * m[k] + (1 - b1) * gk
            v[k] = b2 * v[k] + (1 - b2) * gk * gk
            m_hat = m[k] / (1 - b1**t)
            v_hat = v[k] / (1 - b2**t)
            decay = lr * wd * p[k] if k in WEIGHTS else 0.0
            p[k] = p[k] - decay - lr * m_hat / (math.sqrt(v_hat) + eps)
            terms[k] = {"g": gk, "m_prev": m_prev, "v_prev": v_prev, "m": m[k], "v": v[k], "m_hat": m_hat,
                        "v_hat": v_hat}
            if k in WEIGHTS and wd:
                terms[k]["decay"] = decay
        elif opt == "gd":
            p[k] = p[k] - lr * gk
            terms[k] = {"g": gk}
        elif opt == "momentum":
            v_prev = m[k]
            m[k] = mu * m[k] + gk
            p[k] = p[k] - lr * m[k]
            terms[k] = {"g": gk, "v_prev": v_prev, "v": m[k]}
        else:
            m_prev, v_prev = m[k], v[k]
            m[k] = b1 * m[k] + (1 - b1) * gk
            v[k] = b2 * v[k] + (1 - b2) * gk * gk
            m_hat = m[k] / (1 - b1**t)
            v_hat = v[k] / (1 - b2**t)
            p[k] = p[k] - lr * m_hat / (math.sqrt(v_hat) + eps)
            terms[k] = {"g": gk, "m_prev": m_prev, "v_prev": v_prev, "m": m[k], "v": v[k], "m_hat": m_hat,
                        "v_hat": v_hat, "c1": 1 - b1**t, "c2": 1 - b2**t}
    return p, terms


def config(opt: str, lr: float, wd: float, epochs: int = 1) -> dict:
    return {
        "name": "upd", "inputs": 2,
        "layers": [{"size": 2, "activation": "sigmoid",
                    "weights": [[START["w11"], START["w12"]], [START["w21"], START["w22"]]],
                    "biases": [START["b_A1"], START["b_A2"]]},
                   {"size": 1, "activation": "sigmoid", "weights": [[START["v1"], START["v2"]]],
                    "biases": [START["b_B"]]}],
        "loss": "squared_error",
        "data": {"x": X, "y": [[v] for v in Y]},
        "train": {"optimizer": opt, "lr": lr, "epochs": epochs, "seed": 3, "weight_decay": wd},
    }


def write(tmp_path, cfg: dict, name: str = "c.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg))
    return path


def train_run(tmp_path, cfg_path, epochs: int, name: str) -> dict:
    """Train `epochs` epochs with `bpcli train`; the saved weights by parameter name."""
    out = tmp_path / name
    r = runner.invoke(app, ["train", str(cfg_path), "--epochs", str(epochs), "--out", str(out), "-q", "--json"])
    assert 0 == r.exit_code, r.output
    return out, saved_weights(out)


def saved_weights(run) -> dict:
    with np.load(checkpoint_dir(run) / "weights.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return {name: float(arrays[key][idx]) for name, (key, idx) in KEYS.items()}


CASES = [("gd", 2.0, 0.0), ("gd", 0.5, 0.01), ("momentum", 0.5, 0.0), ("momentum", 0.3, 0.02),
         ("adam", 0.05, 0.0), ("adam", 0.05, 0.01), ("nesterov", 0.5, 0.0), ("nesterov", 0.3, 0.02),
         ("rmsprop", 0.01, 0.0), ("rmsprop", 0.01, 0.02), ("adagrad", 0.1, 0.0), ("adagrad", 0.1, 0.02),
         ("adamw", 0.05, 0.0), ("adamw", 0.05, 0.1)]


@pytest.mark.parametrize("opt,lr,wd", CASES)
def test_the_update_is_the_hand_written_formula_and_the_first_training_epoch(tmp_path, opt, lr, wd):
    path = write(tmp_path, config(opt, lr, wd))
    cfg, data = load_config(path)
    net, prepared = build(cfg), prepare(cfg, data)
    want, terms = hand_step(opt, dict(START), {k: 0.0 for k in START}, {k: 0.0 for k in START}, 1, lr, wd)
    _, trained = train_run(tmp_path, path, 1, "run1")
    for name in START:
        e = explain(net, prepared.train.x, prepared.train.y, name, cfg.train)
        u = e.update
        assert (opt, 1, START[name]) == (u.optimizer, u.t, u.old)
        assert abs(u.new - want[name]) <= 1e-12, name
        assert abs(u.new - trained[name]) <= 1e-12, name  # what one epoch of `bpcli train` does
        for term, value in terms[name].items():
            assert abs(u.term(term) - value) <= 1e-12 * max(1.0, abs(value)), (name, term)
        assert (wd if name in WEIGHTS else 0.0) == u.weight_decay


@pytest.mark.parametrize("opt,lr,wd", [("momentum", 0.3, 0.02), ("adam", 0.05, 0.01), ("nesterov", 0.3, 0.02),
                                       ("rmsprop", 0.01, 0.02), ("adagrad", 0.1, 0.02), ("adamw", 0.05, 0.1)])
def test_explaining_a_run_continues_its_optimiser_state(tmp_path, opt, lr, wd):
    """The update at epoch 2 is the weight change between epochs 2 and 3: it uses the run's velocity or m, v and
    t = 3; the same update from zero state (what explain showed before) is far off."""
    path = write(tmp_path, config(opt, lr, wd, epochs=100))
    run2, _ = train_run(tmp_path, path, 2, "run2")
    _, third = train_run(tmp_path, path, 3, "run3")
    p, m, v = dict(START), {k: 0.0 for k in START}, {k: 0.0 for k in START}
    for t in (1, 2):
        hand_step(opt, p, m, v, t, lr, wd)
    want, terms = hand_step(opt, dict(p), dict(m), dict(v), 3, lr, wd)
    r = runner.invoke(app, ["explain", str(run2), "-w", ",".join(START), "--json"])
    assert 0 == r.exit_code, r.output
    loaded = load_run(run2)
    for e in json.loads(r.stdout)["explanations"]:
        name, u = e["weight"], e["update"]
        assert 3 == u["t"]
        assert abs(u["new"] - want[name]) <= 1e-12, name
        assert abs(u["new"] - third[name]) <= 1e-12, name
        for term, value in terms[name].items():
            assert abs(u["terms"][term] - value) <= 1e-12 * max(1.0, abs(value)), (name, term)
        # must-fail: the zero-state update (the optimiser's state ignored) is not this one
        ref = loaded.net.resolve(name)
        fresh = explain(loaded.net, loaded.prepared.train.x, loaded.prepared.train.y, name, loaded.cfg.train)
        assert abs(fresh.update.new - u["new"]) > 1e-4, name
        assert loaded.net.get(ref) == u["old"]


def test_a_frozen_bias_and_a_mini_batch_config_say_so(tmp_path):
    cfg = config("gd", 0.5, 0.0)
    cfg["layers"][1]["bias"] = "frozen"
    cfg["train"]["batch_size"] = 2
    cfg["train"]["optimizer"] = "sgd"
    r = runner.invoke(app, ["explain", str(write(tmp_path, cfg)), "-w", "b_B,v1", "--json"])
    assert 0 == r.exit_code, r.output
    frozen, v1 = (e["update"] for e in json.loads(r.stdout)["explanations"])
    assert not frozen["trainable"] and frozen["new"] == frozen["old"] == START["b_B"] and "frozen" in frozen["note"]
    assert "mini-batches of 2" in v1["note"]


def test_an_update_too_small_for_six_digits_is_shown_with_more(tmp_path):
    path = write(tmp_path, config("gd", 1e-9, 0.0))
    r = runner.invoke(app, ["explain", str(path), "-w", "w11", "--json"])
    u = json.loads(r.stdout)["explanations"][0]["update"]
    assert fmt(u["old"]) == fmt(u["new"]) and u["old"] != u["new"]  # six digits cannot tell them apart
    text = runner.invoke(app, ["explain", str(path), "-w", "w11"], env={"COLUMNS": "120"}).stdout
    line = next(ln for ln in text.splitlines() if "w11 <- w11" in ln)
    old, new = line.split(" = ")[1].split(" - ")[0], line.split(" = ")[-1]
    assert old != new
    assert abs(float(new) - u["new"]) < abs(u["new"] - u["old"])  # enough digits to see the step
    assert abs(float(old) - u["old"]) < abs(u["new"] - u["old"])


def tex_form(s: str) -> str:
    """5.32307e-07 as LaTeX writes it: 5.32307 \\times 10^{-7}."""
    if "e" not in s:
        return s
    mant, ex = s.split("e")
    return rf"{mant} \times 10^{{{int(ex)}}}"


SHOWN = {"momentum": {"v_prev"}, "adam": {"m", "m_hat", "v_hat"}, "nesterov": {"v_prev", "look"},
         "rmsprop": {"v_prev", "denom", "step"}, "adagrad": {"s_prev", "s", "denom", "step"},
         "adamw": {"m", "m_hat", "v_hat", "step"}}
WORDS = {"momentum": ["mu = 0.9"], "nesterov": ["mu = 0.9"], "rmsprop": ["alpha = 0.99", "eps = 1e-08"],
         "adagrad": ["eps = 1e-10"], "adam": ["beta1 = 0.9", "beta2 = 0.999", "eps = 1e-08", "t = 1"],
         "adamw": ["beta1 = 0.9", "beta2 = 0.999", "eps = 1e-08", "t = 1", "decoupled weight decay"]}


@pytest.mark.parametrize("opt", ["momentum", "adam", "nesterov", "rmsprop", "adagrad", "adamw"])
def test_every_update_term_is_in_the_text_markdown_and_latex(tmp_path, opt):
    path = write(tmp_path, config(opt, 0.1, 0.01))
    doc = json.loads(runner.invoke(app, ["explain", str(path), "-w", "v1", "--json"]).stdout)
    u = doc["explanations"][0]["update"]
    text = runner.invoke(app, ["explain", str(path), "-w", "v1"], env={"COLUMNS": "80"}).stdout
    md = runner.invoke(app, ["explain", str(path), "-w", "v1", "--format", "markdown"]).stdout
    tex = runner.invoke(app, ["explain", str(path), "-w", "v1", "--format", "latex"]).stdout
    shown = {"decay", "g", "new"} | ({"v"} if opt != "adagrad" else set()) | SHOWN[opt]
    for out in (text, md):
        for term in shown:
            value = u["new"] if term == "new" else u["terms"][term]
            assert (fmt(value) if out is text else tex_form(fmt(value))) in out, term
    last = {"adam": "m_hat", "adamw": "m_hat", "adagrad": "s", "nesterov": "look"}.get(opt, "v")
    assert tex_form(fmt(u["terms"][last])) in tex and tex_form(fmt(u["new"])) in tex
    assert all(w in text for w in WORDS[opt]) and "wd = 0.01" in text, text


def test_at_epoch_n_the_update_is_the_change_between_snapshots_n_and_n_plus_1(tmp_path):
    from bpcli.runs.store import load_run
    path = write(tmp_path, config("adam", 0.05, 0.01, epochs=5))
    run, _ = train_run(tmp_path, path, 5, "run5")
    at3 = load_run(run, 3).net
    r = runner.invoke(app, ["explain", str(run), "--epoch", "2", "-w", ",".join(START), "--json"])
    assert 0 == r.exit_code, r.output
    for e in json.loads(r.stdout)["explanations"]:
        assert 3 == e["update"]["t"]
        assert abs(e["update"]["new"] - at3.get(at3.resolve(e["weight"]))) <= 1e-12, e["weight"]
