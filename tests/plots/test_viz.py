"""Plots, the DOT graph, `show --sample` and the training-dynamics inspector (issue 7)."""

from __future__ import annotations

import dataclasses
import io
import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from bpcli.cli.app import app
from tests.conftest import train_shipped
from bpcli.config.loader import builtin_config_dir, load_config
from bpcli.analysis.dot import network_dot, quote
from bpcli.analysis.inspect import fraction, inspect_run
from bpcli.nn.engine import backward, forward
from bpcli.errors import BpcliError
from bpcli.nn.model import build
from bpcli.plots.plot import plot_run
from bpcli.render.inspect import inspect_view
from bpcli.render.show import show_view
from bpcli.runs.store import load_run
from bpcli.runs.session import run_training
from bpcli.analysis.show import describe, trace_sample
from bpcli.training.fit import fit

runner = CliRunner()
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


_train = train_shipped  # a shipped config trained a few epochs into tmp/name (conftest)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("runs")
    return {"deep_sigmoid": _train(tmp, "deep_sigmoid", 25), "deep_relu": _train(tmp, "deep_relu", 25),
            "seed": _train(tmp, "seed", 200)}


def _inspect(run: Path):
    r = load_run(run)
    return inspect_run(r.net, r.history, r.cfg.name, str(r.run_dir), r.state.status)


def _fits(text: str, width: int) -> None:
    """Every printed line fits the width and no table cell was cut short."""
    lines = text.splitlines()
    assert lines
    assert max(len(ln) for ln in lines) <= width
    assert "…" not in text


# --- inspect ----------------------------------------------------------------------------------


def test_inspect_flags_vanishing_gradients_in_the_deep_sigmoid_net(runs):
    res = _inspect(runs["deep_sigmoid"])
    assert not res.healthy
    vanishing = {f.layer: f for f in res.findings if f.kind == "vanishing"}
    assert "A" in vanishing
    assert 1 == vanishing["A"].epoch
    assert 25 == vanishing["A"].epochs
    a = res.layers[0]
    assert a.vs_output < 1e-2
    assert "layer A: gradient 1/" in vanishing["A"].message
    assert "sigmoid's derivative is at most 0.25" in vanishing["A"].hint
    # each sigmoid layer shrinks the gradient: every ratio to the next layer is below 1
    assert all(la.vs_next < 1 for la in res.layers[:-1])


def test_inspect_gives_the_deep_relu_net_a_clean_bill(runs):
    res = _inspect(runs["deep_relu"])
    assert () == res.findings
    assert res.healthy
    assert res.summary.startswith("healthy:")
    assert min(la.vs_output for la in res.layers) > 0.1


def test_inspect_numbers_come_from_the_history(runs):
    r = load_run(runs["deep_sigmoid"])
    res = _inspect(runs["deep_sigmoid"])
    g = np.array([h["grad_norm"] for h in r.history])
    assert g[0, 0] == res.layers[0].grad_first
    assert g[-1, 0] / g[-1, -1] == pytest.approx(res.layers[0].vs_output)
    assert g[-1, 1] / g[-1, 2] == pytest.approx(res.layers[1].vs_next)
    assert 25 == res.epochs
    assert r.history[0]["loss"] == res.loss_first


def _history(E: int, grads, updates=None, sats=None) -> list[dict]:
    L = len(grads(0))
    return [{"epoch": e + 1, "loss": 1.0 / (e + 1), "grad_norm": list(grads(e)),
             "update_ratio": list(updates(e) if updates else [1e-2] * L),
             "saturation": list(sats(e) if sats else [0.0] * L)} for e in range(E)]


def _relu_net(rng):
    from tests.conftest import random_net
    return random_net(rng, 2, [4, 4, 1], hidden="relu", output="sigmoid", loss="binary_cross_entropy")


def test_inspect_reports_the_epoch_a_problem_started(rng):
    net = _relu_net(rng)
    hist = _history(20, lambda e: [1.0 if e < 7 else 1e-4, 1.0, 1.0],
                    sats=lambda e: [0.0, 0.75 if e >= 11 else 0.0, 0.0])
    res = inspect_run(net, hist, "t", "t")
    found = {(f.kind, f.layer): f for f in res.findings}
    assert 8 == found[("vanishing", "A")].epoch
    assert 13 == found[("vanishing", "A")].epochs
    assert 12 == found[("dead", "B")].epoch
    assert "3 of 4 relu units dead" in found[("dead", "B")].message


def test_inspect_ignores_a_short_blip_and_flags_exploding(rng):
    net = _relu_net(rng)
    blip = _history(20, lambda e: [1e-4 if e in (3, 4) else 1.0, 1.0, 1.0])
    assert () == inspect_run(net, blip, "t", "t").findings
    boom = _history(20, lambda e: [500.0, 1.0, 1.0])
    assert ["exploding"] == [f.kind for f in inspect_run(net, boom, "t", "t").findings]


def test_inspect_flags_slow_and_jumpy_layers_and_a_stuck_loss(rng):
    net = _relu_net(rng)
    hist = _history(12, lambda e: [1.0, 1.0, 1.0], updates=lambda e: [1e-5, 2.0, 0.5])
    for h in hist:
        h["loss"] = 0.69
    kinds = {(f.kind, f.layer) for f in inspect_run(net, hist, "t", "t").findings}
    assert {("slow", "A"), ("jumpy", "B"), ("stuck", None)} == kinds


def test_inspect_of_an_empty_history_says_so(rng):
    res = inspect_run(_relu_net(rng), [], "t", "t")
    assert 0 == res.epochs
    assert "no epochs" in res.summary


@pytest.mark.parametrize("r, text", [(0.00123, "1/810"), (1 / 3200, "1/3200"), (0.05, "1/20"), (0.5, "0.5"),
                                     (1.0, "1"), (250.0, "250x")])
def test_fraction_says_ratios_as_people_do(r, text):
    assert text == fraction(r)


@pytest.mark.parametrize("width", [80, 120])
def test_inspect_view_fits_the_terminal(runs, width):
    expected = {"deep_sigmoid": "layer A: gradient 1/", "deep_relu": "healthy"}
    for name, verdict in expected.items():
        buf = io.StringIO()
        Console(file=buf, width=width).print(inspect_view(_inspect(runs[name])))
        _fits(buf.getvalue(), width)
        assert verdict in buf.getvalue(), name


def test_inspect_cli_json_and_check_exit_codes(runs):
    bad = runner.invoke(app, ["inspect", str(runs["deep_sigmoid"]), "--json", "--check"])
    assert 1 == bad.exit_code
    doc = json.loads(bad.stdout)
    assert "inspect" == doc["command"]
    assert doc["healthy"] is False
    assert "vanishing" in {f["kind"] for f in doc["findings"]}
    assert 7 == len(doc["layers"])
    good = runner.invoke(app, ["inspect", str(runs["deep_relu"]), "--check"])
    assert 0 == good.exit_code
    assert "healthy" in good.stdout
    missing = runner.invoke(app, ["inspect", str(runs["seed"].parent / "nope")])
    assert 2 == missing.exit_code


def test_saturation_counts_dead_units_on_the_data_not_the_last_batch(rng):
    """A mini-batch epoch's last batch can be tiny; a unit off on it need not be dead."""
    cfg, ds = load_config(builtin_config_dir() / "deep_relu.yaml")
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=1, lr=1e-9))
    from bpcli.data.dataset import prepare
    p = prepare(cfg, ds)
    net = build(cfg)
    net.W[0][3] = 0.0
    net.b[0][3] = -100.0  # unit A4 can never fire; the other A units split the plane through the origin
    rec = next(fit(net, p.train, p.val, cfg.train))
    assert 0.1 == rec.saturation[0]


# --- show --sample and the DOT graph ------------------------------------------------------------


def test_trace_sample_matches_the_engine_and_the_chain_rule(runs):
    r = load_run(runs["seed"])
    x, y = r.prepared.train.x, r.prepared.train.y
    tr = trace_sample(r.net, x, y, 2)
    y_hat, tape = forward(r.net, x)
    g = backward(r.net, tape, y)
    for l, la in enumerate(tr.layers):
        assert [n.z for n in la.nodes] == pytest.approx(tape[l].z[1].tolist())
        assert [n.output for n in la.nodes] == pytest.approx(tape[l].a_out[1].tolist())
        assert [n.delta for n in la.nodes] == pytest.approx(g.dz[l][1].tolist())
    # by hand: z_A1 = w11 x1 + w12 x2 + b_A1, and for L = 1/2 (y - y')^2 with a sigmoid output,
    # delta_B = (y' - y) y' (1 - y'); dL/dv1 = delta_B * o1
    W, b = r.net.W, r.net.b
    assert W[0][0] @ x[1] + b[0][0] == pytest.approx(tr.layers[0].nodes[0].z)
    yp = tr.layers[1].nodes[0].output
    delta_b = (yp - y[1, 0]) * yp * (1 - yp)
    assert delta_b == pytest.approx(tr.layers[1].nodes[0].delta)
    v1 = next(e for e in tr.edges if e.name == "v1")
    assert delta_b * tr.layers[0].nodes[0].output == pytest.approx(v1.grad)
    assert 0.5 * (y[1, 0] - yp) ** 2 == pytest.approx(tr.loss)
    assert (yp - y[1, 0],) == pytest.approx(tr.dy_hat)


def test_trace_sample_rejects_an_index_out_of_range(runs):
    r = load_run(runs["seed"])
    with pytest.raises(BpcliError, match="from 1 to 4"):
        trace_sample(r.net, r.prepared.train.x, r.prepared.train.y, 5)
    with pytest.raises(BpcliError):
        trace_sample(r.net, r.prepared.train.x, r.prepared.train.y, 0)


EDGE = re.compile(r'^  "([^"]+)" -> "([^"]+)" \[label="([^"]*)", ')


def _check_dot(text: str) -> list[tuple[str, str, str]]:
    """Structure of our DOT text: one digraph, balanced braces and quotes; returns the weight edges."""
    assert text.startswith("digraph ")
    assert text.rstrip().endswith("}")
    unquoted = re.sub(r'"(\\.|[^"\\])*"', '""', text)
    unquoted = re.sub(r"<<TABLE.*?</TABLE>>", "X", unquoted)
    assert unquoted.count("{") == unquoted.count("}")
    assert '"' not in unquoted.replace('""', "")
    return [m.groups() for m in map(EDGE.match, text.splitlines()) if m]


def test_dot_has_every_weight_as_a_labelled_edge():
    cfg, _ = load_config(None)
    net = build(cfg)
    edges = _check_dot(network_dot(net, "seed"))
    assert 6 == len(edges)
    labels = {(s, t): lab for s, t, lab in edges}
    assert f"w11 = {net.W[0][0, 0]:.4g}" == labels[("x1", "A1")]
    assert f"v2 = {net.W[1][0, 1]:.4g}" == labels[("A2", "B")]


def test_dot_with_a_sample_shows_values_deltas_and_gradients(runs):
    r = load_run(runs["seed"])
    tr = trace_sample(r.net, r.prepared.train.x, r.prepared.train.y, 3)
    text = network_dot(r.net, "seed", tr)
    edges = _check_dot(text)
    v1 = next(e for e in tr.edges if e.name == "v1")
    assert f"v1 = {v1.value:.4g}\\ndL/dv1 = {v1.grad:.4g}" == dict(((s, t), lab) for s, t, lab in edges)[("A1", "B")]
    b = tr.layers[1].nodes[0]
    assert f"<TD ALIGN=\"RIGHT\">{b.delta:.4g}</TD>" in text
    assert '"B" -> loss' in text
    assert f"loss L = {tr.loss:.4g}" in text


def test_dot_escapes_names_and_refuses_huge_networks(rng):
    from tests.conftest import random_net
    net = random_net(rng, 2, [2, 1])
    net.input_names = ('a"b', "A1")  # a quote, and a name that clashes with node A1
    text = network_dot(net, 'my "net"')
    assert quote('a"b') == '"a\\"b"'
    assert 'digraph "my \\"net\\""' in text
    assert '"input A1" -> "A1"' in text
    _check_dot(text)
    big = random_net(rng, 40, [40, 1])
    with pytest.raises(BpcliError, match="1640"):
        network_dot(big, "big", max_edges=1000)


HOSTILE_DOT = ('a"];\n  injected -> x1;\n"', "b\\", "c\\N\\G <B>&amp;</B>\x07\x00", "d\r\ne</TD>")


def _skeleton(text: str) -> str:
    """DOT text with every quoted string and HTML-like label blanked: what is left is the graph's structure."""
    text = re.sub(r'"(\\.|[^"\\])*"', '""', text)
    return re.sub(r"<<TABLE.*?</TABLE>>", "X", text, flags=re.S)


def test_dot_takes_hostile_names_as_text_only(rng):
    from tests.conftest import random_net
    net = random_net(rng, 4, [2, 1])
    plain = dataclasses.replace(net, input_names=("p1", "p2", "p3", "p4"))
    net.input_names = HOSTILE_DOT
    text = network_dot(net, 't"]; evil [shape=box]; "x\\')
    assert _skeleton(network_dot(plain, "t")) == _skeleton(text)  # the same statements, whatever the names say
    assert [] == [c for c in text if c != "\n" and (ord(c) < 32 or ord(c) == 127)]  # no NUL, BEL, CR
    assert '"c\\\\N\\\\G <B>&amp;</B>??" -> "A1"' in text  # a backslash is itself, never Graphviz's \N
    assert "<B>c\\\\N\\\\G &lt;B&gt;&amp;amp;&lt;/B&gt;??</B>" in text
    if shutil.which("dot") is None:
        pytest.skip("Graphviz dot is not installed: the text is checked above")
    done = subprocess.run(["dot", "-Tsvg"], input=text.encode(), capture_output=True)
    assert 0 == done.returncode and b"" == done.stderr, done.stderr
    svg = ET.fromstring(done.stdout)
    bold = ["".join(t.itertext()).replace("\xa0", " ") for t in svg.iter("{http://www.w3.org/2000/svg}text")
            if t.get("font-weight") == "bold"]
    # each input's title as written (its lines one <text> each), the nodes A1, A2, B, nothing else
    assert sorted(['a"];', "  injected -> x1;", '"', "b\\", "c\\N\\G <B>&amp;</B>??", "d", "e</TD>", "A1", "A2",
                   "B"]) == sorted(bold)


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz dot is not installed")
def test_dot_renders_with_graphviz(runs, tmp_path):
    r = load_run(runs["seed"])
    tr = trace_sample(r.net, r.prepared.train.x, r.prepared.train.y, 1)
    done = subprocess.run(["dot", "-Tsvg"], input=network_dot(r.net, "seed", tr).encode(), capture_output=True)
    assert 0 == done.returncode, done.stderr
    svg = ET.fromstring(done.stdout)
    assert svg.tag.endswith("svg")
    out = tmp_path / "g.png"
    res = runner.invoke(app, ["show", str(runs["seed"]), "--sample", "1", "--out", str(out)])
    assert 0 == res.exit_code, res.output
    assert out.read_bytes().startswith(PNG_MAGIC)
    res = runner.invoke(app, ["show", str(runs["seed"]), "--render"])
    assert 0 == res.exit_code, res.output
    ET.parse(runs["seed"] / "network.svg")


def test_show_render_without_graphviz_says_so(runs, monkeypatch, tmp_path):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    res = runner.invoke(app, ["show", "--out", str(tmp_path / "n.svg")])
    assert 2 == res.exit_code
    assert "not installed" in res.output
    assert not (tmp_path / "n.svg").exists()
    res = runner.invoke(app, ["show", "--out", str(tmp_path / "n.dot")])  # the text needs no Graphviz
    assert 0 == res.exit_code
    _check_dot((tmp_path / "n.dot").read_text())


def test_show_cli_dot_and_default_output():
    res = runner.invoke(app, ["show", "--dot"])
    assert 0 == res.exit_code
    assert 6 == len(_check_dot(res.stdout))
    assert res.stdout == runner.invoke(app, ["show", "--format", "dot"]).stdout
    plain = runner.invoke(app, ["show"])
    assert "Parameters" in plain.stdout and "digraph" not in plain.stdout
    assert 2 == runner.invoke(app, ["show", "--format", "xml"]).exit_code
    assert 2 == runner.invoke(app, ["show", "--sample", "99"]).exit_code


def test_show_sample_json_carries_the_trace():
    res = runner.invoke(app, ["show", "--sample", "4", "--json"])
    assert 0 == res.exit_code
    doc = json.loads(res.stdout)
    assert 4 == doc["sample"]["index"]
    assert {"x1": 1.0, "x2": 1.0} == doc["sample"]["inputs"]
    assert ["w11", "w12", "w21", "w22", "v1", "v2"] == [w["name"] for w in doc["sample"]["weights"]]
    assert "parameters" in doc
    assert "sample" not in json.loads(runner.invoke(app, ["show", "--json"]).stdout)


@pytest.mark.parametrize("width", [80, 120])
def test_show_sample_view_fits_the_terminal(runs, width):
    for name in ("seed", "deep_relu"):
        r = load_run(runs[name])
        res = dataclasses.replace(describe(r.net, name, "x"),
                                  sample=trace_sample(r.net, r.prepared.train.x, r.prepared.train.y, 1,
                                                      r.prepared.scaling))
        buf = io.StringIO()
        Console(file=buf, width=width).print(show_view(res))
        text = buf.getvalue()
        assert "delta dL/dz" in text
        assert max(len(ln) for ln in text.splitlines()) <= width
        assert "…" not in text
    assert "... 3 more" in text  # ten-unit layers show 7 nodes, then a count


# --- plot ---------------------------------------------------------------------------------------


def _check_images(files: dict[str, list[str]]) -> None:
    for paths in files.values():
        for p in paths:
            data = Path(p).read_bytes()
            assert len(data) > 0
            if p.endswith(".png"):
                assert data.startswith(PNG_MAGIC)
            else:
                assert ET.fromstring(data).tag.endswith("svg")


def test_plot_writes_every_plot_as_png_and_svg(runs, tmp_path):
    pytest.importorskip("matplotlib")
    res = runner.invoke(app, ["plot", str(runs["deep_sigmoid"]), "--out", str(tmp_path), "--dpi", "40", "--json",
                              "--format", "png"])
    assert 0 == res.exit_code, res.output
    doc = json.loads(res.stdout)
    files = {p["kind"]: p["files"] for p in doc["plots"]}
    assert ["loss", "metric", "gradients", "dynamics", "boundary"] == list(files)
    assert all([f"{tmp_path / k}.png"] == v for k, v in files.items())
    _check_images(files)
    # SVG goes through another backend: one curve plot and the boundary (all kinds take a few seconds more)
    res = plot_run(load_run(runs["deep_sigmoid"]), tmp_path, ("svg",), only=("loss", "boundary"))
    _check_images({f.kind: list(f.paths) for f in res.files})
    assert 7 == len(list(tmp_path.iterdir()))


def _tiny_run(tmp: Path, name: str, text: str) -> Path:
    cfg_path = tmp / f"{name}.yaml"
    cfg_path.write_text(text)
    cfg, ds = load_config(cfg_path)
    run_training(cfg, ds, tmp / name)
    return tmp / name


@pytest.mark.parametrize("name, data, layers, loss, kind", [
    ("sine", "{generator: sine, samples: 40, seed: 0}", "[{size: 4, activation: tanh}, {size: 1, activation: identity}]",
     "squared_error", "fit"),
    ("blobs", "{generator: blobs, samples: 60, classes: 3, seed: 0}",
     "[{size: 4, activation: tanh}, {size: 3, activation: softmax}]", "cross_entropy", "boundary"),
    ("surface", "{x: [[0, 0], [0, 1], [1, 0], [1, 1], [0.5, 0.5]], y: [[0], [1], [1], [2], [1]]}",
     "[{size: 3, activation: tanh}, {size: 1, activation: identity}]", "squared_error", "surface"),
])
def test_plot_draws_the_data_plot_that_fits_the_problem(tmp_path, name, data, layers, loss, kind):
    pytest.importorskip("matplotlib")
    text = (f"name: {name}\ninputs: {['x1'] if name == 'sine' else ['x1', 'x2']}\nlayers: {layers}\nloss: {loss}\n"
            f"data: {data}\ntrain: {{lr: 0.1, epochs: 3}}\n")
    run = _tiny_run(tmp_path, name, text)
    res = plot_run(load_run(run), formats=("png",), dpi=30, only=("boundary", "surface", "fit"))
    kinds = {f.kind: list(f.paths) for f in res.files}
    assert [kind] == list(kinds)
    _check_images(kinds)


def test_plot_without_matplotlib_says_how_to_install_it(runs, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    res = runner.invoke(app, ["plot", str(runs["seed"])])
    assert 2 == res.exit_code
    assert "pip install 'bpcli[plot]'" in res.output
    assert 1 == len(res.output.strip().splitlines())


def test_plot_only_draws_the_plots_asked_for(runs, tmp_path):
    pytest.importorskip("matplotlib")
    res = runner.invoke(app, ["plot", str(runs["seed"]), "--only", "loss", "--format", "svg", "--out", str(tmp_path)])
    assert 0 == res.exit_code, res.output
    assert ["loss.svg"] == [p.name for p in tmp_path.iterdir()]
    bad = runner.invoke(app, ["plot", str(runs["seed"]), "--only", "los", "--out", str(tmp_path)])
    assert 2 == bad.exit_code
    assert "did you mean 'loss'" in bad.output


def test_plot_rejects_bad_options(runs):
    assert 2 == runner.invoke(app, ["plot", str(runs["seed"]), "--format", "gif"]).exit_code
    assert 2 == runner.invoke(app, ["plot", str(runs["seed"]), "--dpi", "5"]).exit_code
