"""The L1 penalty l1 * sum |W| beside L2: its subgradient l1 * sign(W) (0 at W = 0) in every update, against the
2-2-1 network's chain rule and textbook updates in plain floats (test_optimizers), and reported apart from the data
loss and the L2 penalty in history.csv and the summary."""

from __future__ import annotations

import json
import math

import pytest
import yaml
from typer.testing import CliRunner

from bpcli.cli.app import app
from tests.conftest import read_history
from tests.training.test_optimizers import B1, BB, V, W1, WEIGHTS, assert_same, config, grads, trained


def sign(v: float) -> float:
    return (v > 0) - (v < 0)  # the subgradient of |v| bpcli uses: 0 at v = 0


def reference(optimizer: str, steps: int, lr: float, l1: float, wd: float = 0.0, mu: float = 0.9,
              b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8):
    """Parameters after `steps` full-batch steps, and each step's L1 and L2 penalties at the weights its gradient
    was taken at."""
    p = {"w11": W1[0][0], "w12": W1[0][1], "w21": W1[1][0], "w22": W1[1][1], "b1": B1[0], "b2": B1[1],
         "v1": V[0], "v2": V[1], "bB": BB}
    m = {k: 0.0 for k in p}
    v = {k: 0.0 for k in p}
    pens = []
    for t in range(1, steps + 1):
        pens.append((l1 * sum(abs(p[k]) for k in WEIGHTS), 0.5 * wd * sum(p[k] ** 2 for k in WEIGHTS)))
        g = grads(p, [0, 1, 2, 3])
        for k in p:
            gk = g[k] + ((wd * p[k] + l1 * sign(p[k])) if k in WEIGHTS else 0.0)
            if optimizer == "gd":
                p[k] -= lr * gk
            elif optimizer == "momentum":
                m[k] = mu * m[k] + gk
                p[k] -= lr * m[k]
            else:
                m[k] = b1 * m[k] + (1 - b1) * gk
                v[k] = b2 * v[k] + (1 - b2) * gk * gk
                p[k] -= lr * (m[k] / (1 - b1**t)) / (math.sqrt(v[k] / (1 - b2**t)) + eps)
    return p, pens


@pytest.mark.parametrize("optimizer,lr,l1,wd", [("gd", 0.5, 0.01, 0.0), ("momentum", 0.3, 0.02, 0.01),
                                                 ("adam", 0.05, 0.05, 0.0)])
def test_l1_steps_and_penalties_match_plain_floats(tmp_path, optimizer, lr, l1, wd):
    cfg = config(optimizer, lr, 3, wd=wd)
    cfg["train"]["l1"] = l1
    want, pens = reference(optimizer, 3, lr, l1, wd)
    assert_same(trained(tmp_path, cfg), want)
    rows = read_history(tmp_path / "run")
    assert len(rows) == len(pens) == 3
    for r, (l1_pen, l2_pen) in zip(rows, pens):
        assert r["l1_penalty"] == pytest.approx(l1_pen, rel=1e-13)
        assert (r["penalty"] or 0.0) == pytest.approx(l2_pen, rel=1e-13)
    # without the L1 term the weights differ far beyond the tolerance: the comparison sees it
    plain, _ = reference(optimizer, 3, lr, 0.0, wd)
    assert max(abs(plain[k] - want[k]) for k in WEIGHTS) > 1e-4


def test_the_summary_reports_the_l1_penalty_apart(tmp_path):
    cfg = config("gd", 0.5, 2, wd=0.01)
    cfg["train"]["l1"] = 0.02
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    r = CliRunner().invoke(app, ["train", str(path), "--out", str(tmp_path / "run"), "-q", "--json"])
    assert 0 == r.exit_code, r.output
    final = json.loads(r.stdout)["final"]
    p, _ = reference("gd", 2, 0.5, 0.02, 0.01)
    assert final["l1_penalty"] == pytest.approx(0.02 * sum(abs(p[k]) for k in WEIGHTS), rel=1e-13)
    assert final["penalty"] == pytest.approx(0.005 * sum(p[k] ** 2 for k in WEIGHTS), rel=1e-13)
    assert final["objective"] == pytest.approx(final["loss"] + final["penalty"] + final["l1_penalty"], rel=1e-15)
    text = CliRunner().invoke(app, ["train", str(path), "--out", str(tmp_path / "run2")], env={"COLUMNS": "120"})
    assert "+ L2 penalty" in text.stdout and "+ L1 penalty" in text.stdout


def test_the_subgradient_at_zero_is_zero_and_explain_shows_the_term(tmp_path):
    cfg = config("gd", 0.5, 1)
    cfg["layers"][0]["weights"] = [[0.0, -0.2], [0.25, 0.3]]  # w11 exactly 0
    cfg["train"]["l1"] = 0.03
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = {}
    for w in ("w11", "w12", "w21"):
        r = CliRunner().invoke(app, ["explain", str(path), "-w", w, "--json"])
        assert 0 == r.exit_code, r.output
        u = json.loads(r.stdout)["explanations"][0]["update"]
        out[w] = u["terms"]["l1"]
        assert u["terms"]["g"] == pytest.approx(u["gradient"] + u["terms"]["l1"], rel=1e-15)
    assert {"w11": 0.0, "w12": -0.03, "w21": 0.03} == out
    text = CliRunner().invoke(app, ["explain", str(path), "-w", "w12"], env={"COLUMNS": "100"}).stdout
    assert "l1 * sign(w12)" in text and "L1 penalty l1 = 0.03" in text
    tex = CliRunner().invoke(app, ["explain", str(path), "-w", "w12", "--format", "latex"]).stdout
    assert r"\operatorname{sign}" in tex
