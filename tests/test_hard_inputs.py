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

from bpcli.cli import app
from bpcli.config import load_config
from bpcli.config_data import STORED_BYTES_PER_VALUE
from bpcli.errors import ConfigError
from bpcli.yamlsrc import MAX_CONFIG_BYTES, MAX_YAML_NODES, read_yaml

SRC = str(Path(__file__).resolve().parents[1] / "src")
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
    from bpcli.config import parse
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
    import bpcli.config as config
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
