"""`bpcli view`: the learning page's data (issue 26), without a browser: which epochs it embeds, that its numbers
are explain's, that no name can break out of its script, and the CLI around it."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bpcli.cli.app import app
from bpcli.render.numbers import fmt
from bpcli.render.view_page import page_json, view_html
from bpcli.runs.store import load_run
from bpcli.render.view import BUDGET, epochs_to_embed, spread, view_run
from tests.conftest import train_shipped

runner = CliRunner()

HOSTILE = "</script><img src=x onerror=alert(1)><!--"
HOSTILE_CONFIG = """version: 1
name: "</ScRiPt><script>alert(1)</script>"
inputs: ["</script><img src=x onerror=alert(1)><!--", "x&2 ]]>"]
layers:
  - {size: 2, activation: sigmoid}
  - {size: 1, activation: sigmoid}
loss: squared_error
init: {scheme: xavier_uniform, seed: 3}
data:
  generator: xor
train: {optimizer: gd, lr: 2.0, epochs: 3, seed: 0}
"""


@pytest.fixture(scope="module")
def seed_run(tmp_path_factory) -> Path:
    return train_shipped(tmp_path_factory.mktemp("view"), "seed", 300)


@pytest.fixture(scope="module")
def seed_page(seed_run) -> dict:
    return view_run(seed_run).to_dict()


def page_data(html: str) -> dict:
    """The JSON a written page embeds, read back as the browser reads it."""
    m = re.search(r'<script type="application/json" id="data">(.*?)</script>', html, re.S)
    return json.loads(m.group(1))


# --- which epochs the page embeds --------------------------------------------------------------------------


def test_every_kept_epoch_is_embedded_when_they_fit():
    assert list(range(10)) == epochs_to_embed(list(range(10)), per_epoch=100, fixed=0, budget=10_000)


def test_epochs_over_the_budget_are_spread_evenly_with_the_first_and_last():
    # room for (11_500 - 1500) // 1000 = 10 epochs of 101: round(i * 100 / 9) for i = 0..9
    assert [0, 11, 22, 33, 44, 56, 67, 78, 89, 100] == epochs_to_embed(list(range(101)), 1000, 1500, 11_500)


def test_the_slider_holds_at_most_the_cap_however_small_the_epochs():
    picked = epochs_to_embed(list(range(0, 5000, 5)), per_epoch=1, fixed=0, budget=10**9, cap=120)
    assert 120 == len(picked)
    assert (0, 4995) == (picked[0], picked[-1])
    assert picked == sorted(set(picked))


def test_a_budget_smaller_than_one_epoch_still_shows_the_last():
    assert [7] == epochs_to_embed([0, 3, 7], per_epoch=10_000, fixed=0, budget=100)


def test_the_samples_on_offer_are_spread_over_the_training_set():
    assert [0, 1, 2, 3] == spread(4, 8)
    assert [0, 17, 34, 51, 68, 85, 102, 119] == spread(120, 8)  # round(i * 119 / 7)


# --- the page's numbers are explain's -----------------------------------------------------------------------


def _explain(run: Path, epoch: int, name: str) -> dict:
    res = runner.invoke(app, ["explain", "--run", str(run), "--epoch", str(epoch), "--weight", name, "--json"])
    assert 0 == res.exit_code, res.output
    return json.loads(res.stdout)["explanations"][0]


@pytest.mark.parametrize("name", ["v1", "w11", "b_A2"])
def test_the_pages_chain_numbers_equal_explain_json_at_three_epochs(seed_run, seed_page, name):
    epochs = [e["epoch"] for e in seed_page["epochs"]]
    assert (0, 300) == (epochs[0], epochs[-1])
    for k in (0, len(epochs) // 2, -1):
        rec = seed_page["epochs"][k]
        d = _explain(seed_run, rec["epoch"], name)
        c = rec["chain"][name]
        assert fmt(d["engine_gradient"]) == c["engine"]
        assert fmt(d["mean"]) == c["mean"]
        assert [[fmt(v) for v in f["values"]] for f in d["factors"]] == c["factors"]  # all 4 samples shown
        assert [fmt(s["product"]) for s in d["samples"]] == c["products"]
        assert (fmt(d["update"]["old"]), fmt(d["update"]["new"]), d["update"]["t"]) == \
            (c["update"]["old"], c["update"]["new"], c["update"]["t"])
        assert [[k2, fmt(v)] for k2, v in d["update"]["terms"].items()] == c["update"]["terms"]
        assert [s["equation"] for s in d["steps"]] == [s[1] for s in seed_page["network"]["explain"][name]["steps"]]


def test_the_pages_gradient_of_v1_is_the_chain_rule_worked_by_hand(seed_run, seed_page):
    """dC/dv1 = 1/4 sum_i (y' - y) y' (1 - y') o1, in plain floats from the snapshot's weights."""
    rec = seed_page["epochs"][len(seed_page["epochs"]) // 2]
    p = load_run(seed_run, rec["epoch"]).net.named_arrays()
    W, b, V, c = p["A.W"], p["A.b"], p["B.W"], p["B.b"]
    sig = lambda z: 1 / (1 + math.exp(-z))
    total = 0.0
    for (x1, x2), y in (((0, 0), 0), ((0, 1), 1), ((1, 0), 1), ((1, 1), 0)):
        o = [sig(W[j, 0] * x1 + W[j, 1] * x2 + b[j]) for j in range(2)]
        yh = sig(V[0, 0] * o[0] + V[0, 1] * o[1] + c[0])
        total += (yh - y) * yh * (1 - yh) * o[0]
    assert float(rec["chain"]["v1"]["engine"]) == pytest.approx(total / 4, rel=5e-6)
    assert rec["weights"]["v1"] == float(V[0, 0])


def test_the_drawn_weights_are_the_snapshots(seed_run, seed_page):
    rec = seed_page["epochs"][3]
    p = load_run(seed_run, rec["epoch"]).net.named_arrays()
    assert (float(p["A.W"][0, 1]), float(p["A.b"][1])) == (rec["weights"]["w12"], rec["weights"]["b_A2"])


def test_the_seed_plane_has_a_heatmap_per_node_and_the_four_samples(seed_page):
    plane = seed_page["samples"]["plane"]
    assert 4 == len(plane["points"])
    heat = seed_page["epochs"][-1]["heat"]
    assert [2, 1] == [len(layer) for layer in heat["nodes"]]
    assert 24 * 24 == len(heat["plane"]) == len(heat["nodes"][0][0])


# --- safety and size -------------------------------------------------------------------------------------


def test_hostile_names_stay_text_inside_the_json(tmp_path):
    cfg = tmp_path / "hostile.yaml"
    cfg.write_text(HOSTILE_CONFIG)
    out = tmp_path / "h.html"
    res = runner.invoke(app, ["view", str(cfg), "--out", str(out)])
    assert 0 == res.exit_code, res.output
    html = out.read_text()
    assert 2 == html.lower().count("</script")  # the data's and the code's own ends, nothing from the config
    assert "<img" not in html and "<!--" not in html
    data = page_data(html)
    assert "</ScRiPt><script>alert(1)</script>" == data["title"]
    assert [HOSTILE, "x&2 ]]>"] == data["network"]["inputs"]


def test_page_json_escapes_every_angle_bracket_and_ampersand():
    text = page_json({"a": "</script>&<!--", "b": "\u2028"})
    assert not set("<>&") & set(text)
    assert {"a": "</script>&<!--", "b": "\u2028"} == json.loads(text)


def test_the_page_needs_nothing_from_the_network(seed_page):
    html = view_html(seed_page)
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:|//)", html)
    assert "default-src 'none'" in html


@pytest.mark.slow  # 9 s: run beside the suite (`pytest -m slow`)
def test_the_iris_page_keeps_within_the_budget_and_says_it_subsampled(tmp_path):
    run = train_shipped(tmp_path, "iris", 200)  # early stopping ends it near epoch 128
    res = runner.invoke(app, ["view", str(run), "--out", str(tmp_path / "iris.html"), "--json"])
    assert 0 == res.exit_code, res.output
    summary = json.loads(res.stdout)
    size = (tmp_path / "iris.html").stat().st_size
    assert size == summary["bytes"] and size <= BUDGET
    assert summary["epochs_shown"] < summary["epochs_kept"]
    assert f"{summary['epochs_shown']} of the {summary['epochs_kept']} kept epochs" in summary["note"]
    data = page_data((tmp_path / "iris.html").read_text())
    assert ["B1 setosa", "B2 versicolor", "B3 virginica"] == data["network"]["layers"][-1]["labels"]
    assert "heat" not in data["epochs"][0]  # four inputs: no plane


# --- the command -------------------------------------------------------------------------------------------


def test_view_of_a_config_shows_it_as_initialised(tmp_path):
    from bpcli.config.loader import builtin_config_dir
    out = tmp_path / "seed.html"
    res = runner.invoke(app, ["view", str(builtin_config_dir() / "seed.yaml"), "--out", str(out), "--json"])
    assert 0 == res.exit_code, res.output
    data = page_data(out.read_text())
    assert [0] == [e["epoch"] for e in data["epochs"]]
    assert [] == data["curve"]["train"]
    d = runner.invoke(app, ["explain", str(builtin_config_dir() / "seed.yaml"), "-w", "v1", "--json"])
    assert fmt(json.loads(d.stdout)["explanations"][0]["engine_gradient"]) == data["epochs"][0]["chain"]["v1"]["engine"]


def test_view_without_runs_says_there_is_no_latest(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["view"])
    assert 2 == res.exit_code
    assert "latest: no run to call latest" in res.stderr
    assert "Traceback" not in res.output


def test_view_refuses_an_out_folder_that_does_not_exist(seed_run, tmp_path):
    res = runner.invoke(app, ["view", str(seed_run), "--out", str(tmp_path / "nope" / "v.html")])
    assert 2 == res.exit_code
    assert f"--out: folder {tmp_path / 'nope'} does not exist" in res.stderr


def test_view_writes_beside_the_run_by_default(seed_run):
    res = runner.invoke(app, ["view", str(seed_run)])
    assert 0 == res.exit_code, res.output
    assert (seed_run / "view.html").is_file()
    assert "120 of 301 kept epoch(s)" not in res.stdout  # said once, in the note that says why
    wrote, note = res.stdout.splitlines()
    assert wrote.startswith(f"wrote {seed_run / 'view.html'} (") and wrote.endswith(" MB); open it in a browser")
    assert "note: 120 of the 301 kept epochs, evenly spread (at most 120 on the slider)" == note


def test_view_says_the_epochs_in_its_first_line_when_the_page_shows_them_all(tmp_path):
    """'wrote F (..., 21 of 21 kept epoch(s))': every kept epoch shown, no note; a config's page has one epoch."""
    run = train_shipped(tmp_path, "seed", 20)
    res = runner.invoke(app, ["view", str(run), "--out", str(tmp_path / "a.html")])
    assert 0 == res.exit_code, res.output
    [wrote] = res.stdout.splitlines()
    assert wrote.startswith(f"wrote {tmp_path / 'a.html'} (") and wrote.endswith(
        " MB, all 21 kept epochs); open it in a browser"), wrote
    from bpcli.config.loader import builtin_config_dir
    res = runner.invoke(app, ["view", str(builtin_config_dir() / "seed.yaml"), "--out", str(tmp_path / "b.html")])
    assert 0 == res.exit_code, res.output
    [wrote] = res.stdout.splitlines()
    assert wrote.endswith(" MB, 1 epoch); open it in a browser"), wrote


def test_view_help_gives_the_default_run_once():
    text = " ".join(runner.invoke(app, ["view", "--help"]).stdout.split())  # its lines joined
    assert 1 == text.count("latest"), text
    assert "(default: latest, the newest in runs/)" in text


def test_the_curve_marker_of_epoch_0_sits_at_the_left_edge(seed_page):
    # the history starts at epoch 1 (the first epoch's loss); the initial weights sit at its left edge, not before it
    assert (1, 300) == tuple(seed_page["curve"]["epochs"])
    assert 0.0 == seed_page["epochs"][0]["x"] and 1.0 == seed_page["epochs"][-1]["x"]


PLANE_CSV = "x1,x2,s,d,kind\n0,0,0,0,a\n0,1,1,-1,b\n1,0,1,1,b\n1,1,2,0,c\n"
PLANE_CONFIG = """version: 1
name: plane
layers:
  - {{size: 3, activation: tanh}}
  - {{size: {n}, activation: {out}}}
loss: {loss}
init: {{scheme: xavier_uniform, seed: 0}}
data: {{csv: plane.csv, features: [x1, x2], target: {target}}}
train: {{optimizer: gd, lr: 0.1, epochs: 2, seed: 0}}
"""


@pytest.mark.parametrize("n, out, loss, target, classes", [
    (3, "softmax", "cross_entropy", "kind", True),  # a classifier: the predicted class, the targets' classes
    (2, "identity", "squared_error", "[s, d]", False),  # two regression outputs: the first, never an arg-max
])
def test_the_plane_shows_classes_only_for_a_classifier(tmp_path, n, out, loss, target, classes):
    (tmp_path / "plane.csv").write_text(PLANE_CSV)
    cfg = tmp_path / "plane.yaml"
    cfg.write_text(PLANE_CONFIG.format(n=n, out=out, loss=loss, target=target))
    assert 0 == runner.invoke(app, ["view", str(cfg), "--out", str(tmp_path / "p.html")]).exit_code
    plane = page_data((tmp_path / "p.html").read_text())["samples"]["plane"]
    assert classes == plane["classes"]
    # classes a, b, b, c -> 0, 1, 1, 2; s = 0, 1, 1, 2: levels 0, 31.5 -> 32 ("W", half to even), 63 ("_")
    assert ("0112" if classes else "0WW_") == plane["targets"]



def test_epochs_larger_than_the_measured_one_are_picked_again_by_the_largest():
    from bpcli.render.view import fit_budget
    assert [0, 10, 20, 30] == fit_budget([0, 10, 20, 30], [100, 100, 100, 100], fixed=50, budget=450)
    # 50 + 600 > 450: again with 300 bytes an epoch, room for (450 - 50) // 300 = 1, the last
    assert [30] == fit_budget([0, 10, 20, 30], [300, 100, 100, 100], fixed=50, budget=450)
