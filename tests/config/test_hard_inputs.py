"""Inputs that used to hang or eat memory are refused quickly: special files, alias bombs, configs too big to store."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from bpcli.cli.app import app
from bpcli.config.loader import load_config
from bpcli.config.data_section import STORED_BYTES_PER_VALUE
from bpcli.errors import ConfigError
from bpcli.yamlsrc import MAX_CONFIG_BYTES, MAX_YAML_NODES, read_yaml

SRC = str(Path(__file__).resolve().parents[2] / "src")
runner = CliRunner()


def _bpcli(args, cwd, timeout=20):
    env = {**os.environ, "PYTHONPATH": SRC}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "bpcli", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)
    return proc, time.perf_counter() - t0


def _specials(tmp_path: Path) -> dict[str, str]:
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "folder").mkdir()
    os.symlink("loop_b", tmp_path / "loop_a")
    os.symlink("loop_a", tmp_path / "loop_b")
    return {"fifo": "named pipe", "/dev/zero": "character device", "folder": "folder", "loop_a": "symbolic link loop"}


def test_a_data_path_that_is_not_a_regular_file_is_refused_quickly(tmp_path):
    """A FIFO hung forever and /dev/zero grew without bound; a loop was a RuntimeError traceback."""
    for path, words in _specials(tmp_path).items():
        (tmp_path / "cfg.yaml").write_text(f"layers: [1]\ndata: {{csv: {path}, target: y}}\n")
        proc, seconds = _bpcli(["train", "cfg.yaml", "-q"], tmp_path)
        assert 2 == proc.returncode, proc.stderr
        [line] = proc.stderr.splitlines()
        assert line.startswith("error: cfg.yaml:2: data.csv: ") and words in line, line
        assert seconds < 10
        assert not (tmp_path / "runs").exists()


def test_a_config_path_that_is_not_a_regular_file_is_refused_quickly(tmp_path):
    for path, words in _specials(tmp_path).items():
        if path == "folder":
            continue  # a folder is taken as a run folder: covered by the run-folder tests
        proc, _ = _bpcli(["train", path, "-q"], tmp_path)
        assert 2 == proc.returncode, proc.stderr
        [line] = proc.stderr.splitlines()
        assert line.startswith(f"error: {path}: ") and words in line, line


def test_an_alias_bomb_in_the_data_is_refused_in_a_fraction_of_a_second():
    """250 KB of aliases to a 2,000-value row: 120,000,000 values (this took minutes before)."""
    text = "r: &r [" + ", ".join(["0.5"] * 2000) + "]\ndata:\n  x: [" + ", ".join(["*r"] * 60_000) + "]\n"
    assert len(text) > 240_000
    t0 = time.perf_counter()
    with pytest.raises(ConfigError) as err:
        read_yaml(text, "bomb.yaml")
    seconds = time.perf_counter() - t0
    assert seconds < 1.0, seconds
    [problem] = err.value.problems
    assert problem.startswith("bomb.yaml:2: data: ") and f"{MAX_YAML_NODES:,}" in problem


def test_a_nested_billion_laughs_and_a_recursive_alias_are_refused():
    laughs = "a0: &a0 [1, 2]\n" + "".join(f"a{d}: &a{d} [{', '.join([f'*a{d - 1}'] * 9)}]\n" for d in range(1, 10))
    with pytest.raises(ConfigError, match="alias"):
        read_yaml(laughs, "l.yaml")
    with pytest.raises(ConfigError, match="recursive"):
        read_yaml("layers: &a [1, *a]\n", "r.yaml")


def test_a_document_just_within_the_node_limit_is_read():
    row = "[" + ", ".join(["1"] * 100) + "]"
    doc, _ = read_yaml(f"r: &r {row}\nx: [{', '.join(['*r'] * 1000)}]\n", "ok.yaml")
    assert 1000 == len(doc["x"]) and 100 == len(doc["x"][-1])


def test_inline_data_too_big_to_store_in_the_run_is_refused_before_training(tmp_path):
    """16 KB of aliases making 1,400,000 numbers: the run's config.yaml would exceed what bpcli reads back."""
    # anchors come first in YAML: name and description hold them (and are refused later as not text)
    text = ("name: &y [1]\ndescription: &r [" + ", ".join(["0.5"] * 1000) + "]\ninputs: 1000\nlayers: [1]\n"
            "data:\n  x: [" + ", ".join(["*r"] * 1400) + "]\n  y: [" + ", ".join(["*y"] * 1400) + "]\n")
    (tmp_path / "big.yaml").write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "big.yaml")
    assert any(p.startswith(f"{tmp_path / 'big.yaml'}:5: data: the inline data and weights hold 1,401,400 numbers")
               for p in err.value.problems), err.value.problems


def test_the_stored_size_estimate_bounds_the_real_config_yaml():
    """The worst case for the bound: long negative floats in a 3-deep list, written as save_run writes them."""
    from bpcli.config.loader import parse
    from bpcli.yamlsrc import Locations
    rng = np.random.default_rng(0)
    x = (-np.abs(rng.normal(size=(400, 3))) * 1.2345678901234567e-300).tolist()
    w = (-np.abs(rng.normal(size=(3, 3))) * 1.2345678901234567e-300).tolist()
    doc = {"inputs": 3, "layers": [{"size": 3, "weights": w}, 1], "data": {"x": x, "y": [[0.5]] * 400}}
    cfg, _ = parse(doc, "s.yaml", Locations(None), Path("."))
    stored = yaml.safe_dump(cfg.to_dict(), sort_keys=False).encode()
    n_values = 400 * 3 + 400 + 9
    assert len(stored) <= n_values * STORED_BYTES_PER_VALUE + 100_000
    assert len(stored) > n_values * 25  # and it is not a wild overestimate


def test_one_limit_for_reading_a_config_and_a_run_back():
    import bpcli.config.loader as config
    assert config.MAX_CONFIG_BYTES is MAX_CONFIG_BYTES


# --- user text that reached a traceback: a header that is not UTF-8, a name matplotlib or XML cannot take ---------


def test_import_with_a_csv_whose_header_is_not_utf8_is_one_line(tmp_path):
    np.savez(tmp_path / "state.npz", **{"0.weight": np.ones((3, 2)), "0.bias": np.zeros(3),
                                        "2.weight": np.ones((1, 3)), "2.bias": np.zeros(1)})
    (tmp_path / "x.csv").write_bytes(b"\xff\xfea,b,y\n1,2,3\n")  # UTF-16's byte-order mark, then Latin-1 text
    args = ["import", "state.npz", "--arch", "2-3-1", "--activations", "tanh,identity", "-o", "out.yaml",
            "--data", "x.csv"]
    proc, _ = _bpcli(args, tmp_path)
    assert (proc.returncode, proc.stderr) == (2, "error: --data: x.csv:1: the header row is not UTF-8 text\n")
    assert not (tmp_path / "out.yaml").exists()


def test_import_takes_the_target_from_a_quoted_header_field(tmp_path):
    np.savez(tmp_path / "state.npz", **{"0.weight": np.ones((1, 2)), "0.bias": np.zeros(1)})
    (tmp_path / "x.csv").write_text('x1,x2,"the, y"\n1,2,3\n4,5,6\n')  # the quotes were kept in the name
    proc, _ = _bpcli(["import", "state.npz", "--arch", "2-1", "--activations", "identity", "-o", "out.yaml",
                      "--data", "x.csv"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert yaml.safe_load((tmp_path / "out.yaml").read_text())["data"]["target"] == "the, y"


NAMED = ("inputs: [a, b]\nlayers: [{size: 2, activation: tanh}, {size: 1, activation: sigmoid}]\n"
         "loss: binary_cross_entropy\ndata: {generator: xor}\ntrain: {epochs: 3, lr: 0.1, snapshots: {every: 1}}\n")


@pytest.mark.parametrize("name,shown", [("ctl\x01name", "ctl\\x01name"), ("cost $\\frac$ x", "cost $\\frac$ x")],
                         ids=["control-character", "mathtext"])
def test_a_run_name_with_a_control_character_or_dollars_is_drawn_as_written(tmp_path, name, shown):
    """animate --out a.svg failed parsing its own SVG (a raw \\x01 is not XML) and plot/animate raised on '$\\frac$'
    (matplotlib's mathtext); the name is drawn as written, the control character as \\x01."""
    import xml.etree.ElementTree as ET
    (tmp_path / "cfg.yaml").write_text(f"name: {yaml.safe_dump(name).splitlines()[0]}\n" + NAMED)
    assert runner.invoke(app, ["train", str(tmp_path / "cfg.yaml"), "-q", "--out", str(tmp_path / "run")]).exit_code == 0
    r = runner.invoke(app, ["animate", str(tmp_path / "run"), "--out", str(tmp_path / "a.svg")])
    assert r.exit_code == 0, r.output
    texts = "".join(ET.parse(tmp_path / "a.svg").getroot().itertext())
    assert f"{shown}: epoch 3 of 3" in texts
    r = runner.invoke(app, ["plot", str(tmp_path / "run"), "--out", str(tmp_path / "p"), "--format", "svg"])
    assert r.exit_code == 0, r.output
    title = "".join(ET.parse(tmp_path / "p" / "loss.svg").getroot().itertext())
    assert f"{shown}: loss per epoch" in title


# --- limits that hold: the parameter limit every command serves, tables that stop, checks within a budget -------


@pytest.mark.parametrize("width,params,ok", [(9970, 3 * 1000 + 1001 * 9970 + (9970 + 1), True),
                                             (9980, 3 * 1000 + 1001 * 9980 + (9980 + 1), False)])
def test_the_parameter_limit_is_ten_million(tmp_path, width, params, ok):
    """2 inputs -> 1000 -> width -> 1: 9,992,941 parameters load, 10,002,961 are refused (the limit was 50
    million, where `show` took 11.7 GB and `export` 10.4 GB)."""
    (tmp_path / "cfg.yaml").write_text(f"inputs: 2\nlayers: [1000, {width}, 1]\ndata: {{generator: xor}}\n")
    if ok:
        assert load_config(tmp_path / "cfg.yaml")[0].layers[1].size == width
        return
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "cfg.yaml")
    [problem] = err.value.problems
    assert f"this network has {params:,} parameters" in problem
    assert problem.endswith("(at most 10,000,000 parameters and 1,000,000 nodes per layer)")


WIDE = "inputs: 2\nlayers: [400, 300, {size: 1, activation: sigmoid}]\nloss: binary_cross_entropy\ndata: {generator: xor}\n"


def test_show_builds_rows_for_the_first_100000_parameters_only(tmp_path):
    """121,801 parameters: 2*400 + 400 in A, 400*300 + 300 in B, 300 + 1 in C; the 100,000th is B's weight
    98,799 (0-based) after A's 1,200: node 98,799 // 400 + 1 = 247, input 98,799 % 400 + 1 = 400."""
    from bpcli.nn.model import build
    from bpcli.analysis.show import describe
    (tmp_path / "cfg.yaml").write_text(WIDE)
    cfg, _ = load_config(tmp_path / "cfg.yaml")
    res = describe(build(cfg), cfg.name, cfg.path)
    assert (res.n_params, len(res.params)) == (121_801, 100_000)
    assert (res.params[0].name, res.params[1199].name, res.params[-1].name) == ("w11", "b_A400", "v247_400")
    assert res.to_dict()["parameters_listed"] == 100_000
    r = runner.invoke(app, ["show", str(tmp_path / "cfg.yaml")])
    assert r.exit_code == 0, r.output
    assert "... and 121741 more parameters (--all and --json list the first 100,000)" in r.stdout


def test_step_lists_the_first_100000_parameters_or_any_asked_for(tmp_path):
    (tmp_path / "cfg.yaml").write_text(WIDE)
    r = runner.invoke(app, ["step", str(tmp_path / "cfg.yaml"), "--json"])
    assert r.exit_code == 0, r.output
    doc = __import__("json").loads(r.stdout)
    assert (doc["n_params"], doc["parameters_listed"], len(doc["parameters"])) == (121_801, 100_000, 100_000)
    r = runner.invoke(app, ["step", str(tmp_path / "cfg.yaml"), "--json", "-w", "u300,v300_400,u300"])
    assert r.exit_code == 0, r.output
    doc = __import__("json").loads(r.stdout)
    assert [p["name"] for p in doc["parameters"]] == ["v300_400", "u300"] and "parameters_listed" not in doc


DEEP = ("inputs: 2\nlayers: [{size: 1000, activation: tanh}, {size: 1000, activation: tanh}, {size: 1000, "
        "activation: tanh}, {size: 1, activation: sigmoid}]\nloss: binary_cross_entropy\n"
        "data: {generator: moons, samples: 200}\n")


def test_gradcheck_refuses_a_check_estimated_beyond_its_budget_before_starting(tmp_path):
    """2,006,001 entries on 64 samples, estimated at 47 minutes: it used to start (16 million parameters were
    estimated at 271,677 s and carried on)."""
    (tmp_path / "deep.yaml").write_text(DEEP)
    proc, seconds = _bpcli(["gradcheck", "deep.yaml", "--all"], tmp_path, timeout=60)
    assert proc.returncode == 2, proc.stderr
    [line] = proc.stderr.splitlines()
    assert line.startswith("error: --budget: this check of 2,006,001 entries and directions is estimated at ")
    assert "more than --budget 600; give --budget " in line and line.endswith("(without --all, or --weight NAME)")
    assert proc.stdout == ""


def test_the_gradcheck_budget_holds_at_its_edge_for_a_small_network(tmp_path):
    from bpcli.gradcheck.report import GradcheckOptions
    from bpcli.gradcheck.check import estimate_seconds
    from bpcli.nn.model import build
    (tmp_path / "cfg.yaml").write_text("inputs: 2\nlayers: [3, 1]\ndata: {generator: xor}\n")
    cfg, data = load_config(tmp_path / "cfg.yaml")
    _, seconds = estimate_seconds(build(cfg), data.m, GradcheckOptions(all_entries=True))
    for budget, code in ((seconds, 0), (seconds * 0.999, 2), (0, 2), (float("nan"), 2)):
        r = runner.invoke(app, ["gradcheck", str(tmp_path / "cfg.yaml"), "--all", "--budget", repr(budget)])
        assert r.exit_code == code, (budget, r.output)
        if code == 2:
            assert r.stderr.startswith("error: --budget: ") and len(r.stderr.splitlines()) == 1, r.stderr


def test_compare_with_a_symlink_loop_for_a_run_is_one_line(tmp_path):
    """Found by the command fuzzer: compare resolved the folders' names before loading them (a RuntimeError)."""
    os.symlink("loop", tmp_path / "loop")
    r = runner.invoke(app, ["compare", str(tmp_path / "loop"), str(tmp_path / "loop")])
    assert r.exit_code == 2 and len(r.stderr.splitlines()) == 1, r.output
    assert r.stderr.startswith("error: cannot compare: "), r.stderr
