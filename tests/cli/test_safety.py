"""Hard inputs: data files, command-line values, run folders, absurd sizes, foreign code. Each a clear error."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bpcli.cli.app import app
from bpcli.config.loader import load_config
from bpcli.data.dataset import read_csv
from bpcli.errors import ConfigError
from bpcli.runs.claim import safe_name
from bpcli.runs.store import load_run

runner = CliRunner()

NET = "layers: [{size: 3, activation: tanh}, {size: 1, activation: sigmoid}]\n"


def _train(*args, cwd: Path | None = None):
    """Invoke `bpcli train ARGS` with cwd set; a real exception (not an exit) fails the test."""
    import os
    old = os.getcwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        result = runner.invoke(app, ["train", *map(str, args)], catch_exceptions=False)
    finally:
        os.chdir(old)
    return result


# --- data files --------------------------------------------------------------------------------

CSV_CASES = [
    ("missing", None, "data file not found"),
    ("empty", "", "is empty (expected a header row and data rows)"),
    ("header only", "a,b,y\n", "has a header but no data rows"),
    ("ragged", "a,b,y\n1,2,0\n3,4\n", "data.csv:3: row has 2 fields, the header has 3"),
    ("non-numeric", "a,b,y\n1,2,0\n3,x,1\n", "data.csv:3: column 'b': 'x' is not a number"),
    ("digit separator", "a,b,y\n1,2,0\n3,5_1,1\n", "data.csv:3: column 'b': '5_1' is not a number"),
    ("empty cell", "a,b,y\n1,2,0\n3,,1\n", "data.csv:3: column 'b': the value is missing"),
    ("NaN", "a,b,y\n1,2,0\n\n3,nan,1\n", "data.csv:4: column 'b' is nan (NaN or infinite)"),
    ("inf", "a,b,y\n1,-inf,0\n3,4,1\n", "data.csv:2: column 'b' is -inf (NaN or infinite)"),
    ("NaN target", "a,b,y\n1,2,0.5\n3,4,nan\n", "data.csv:3: target is NaN or infinite"),
    ("missing target", "a,b,y\n1,2,0\n3,4,\n", "data.csv:3: column 'y': the target value is missing"),
    ("one class", "a,b,y\n1,2,cat\n3,4,cat\n", "target 'y' has a single class 'cat'; nothing to learn"),
    ("labels vs outputs", "a,b,y\n1,2,a\n3,4,b\n5,6,c\n",
     "target 'y' has 3 classes (a, b, c) but the output layer has 1 nodes; make the last layer's size 3"),
    ("duplicate column", "a,a,y\n1,2,0\n3,4,1\n", "data.csv:1: column 'a' appears twice in the header row"),
    ("no features", "y\n0\n1\n", "has no feature columns besides the target y"),
    ("unknown target", "a,b,z\n1,2,0\n", "column 'y' is not in"),
    ("not UTF-8", b"a,b,y\n1,2,\xff\xfe\n", "is not UTF-8 text"),
]


@pytest.mark.parametrize("case,content,expected", CSV_CASES, ids=[c[0] for c in CSV_CASES])
def test_bad_data_file_is_one_clear_error(case, content, expected, tmp_path):
    if content is not None:
        p = tmp_path / "data.csv"
        p.write_bytes(content if isinstance(content, bytes) else content.encode())
    (tmp_path / "cfg.yaml").write_text(NET + "data: {csv: data.csv, target: y}\ntrain: {epochs: 1}\n")
    result = _train("cfg.yaml", "-q", cwd=tmp_path)
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: cfg.yaml:2: data.csv: ")  # the config line that names the file
    assert expected in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["cfg.yaml"] + (["data.csv"] if content is not None else []))


def test_data_path_is_relative_to_the_config_not_the_working_folder(tmp_path):
    sub = tmp_path / "project"
    sub.mkdir()
    (sub / "data.csv").write_text("a,b,y\n0,0,0\n0,1,1\n1,0,1\n1,1,0\n")
    (sub / "cfg.yaml").write_text(NET + "data: {csv: data.csv, target: y}\ntrain: {epochs: 2}\n")
    result = _train("project/cfg.yaml", "-q", "--out", "out", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    saved = load_run(tmp_path / "out")
    assert saved.cfg.data.csv == str((sub / "data.csv").resolve())
    assert saved.prepared.train.m == 4


@pytest.mark.slow  # run apart: `pytest -m slow` (.ci/run runs the group beside the suite)
def test_a_big_csv_is_read_once_and_says_how_many_rows(tmp_path):
    """500,000 rows (2,000,000 take about 4 s, see docs/safety.md): every value right, the count in the note."""
    n = 500_000
    rng = np.random.default_rng(0)
    a = rng.integers(0, 100, size=(n, 2))
    p = tmp_path / "big.csv"
    body = "\n".join(f"{x},{y},{int(x + y > 100)}" for x, y in a.tolist())
    p.write_text("x1,x2,y\n" + body + "\n")
    del body
    t0 = time.perf_counter()
    data = read_csv(p, None, ["y"], 1, "data.csv")
    seconds = time.perf_counter() - t0
    assert data.m == n
    assert data.note == f"500,000 rows read from {p}"
    np.testing.assert_array_equal(data.x, a.astype(float))
    np.testing.assert_array_equal(data.y[:, 0], (a.sum(axis=1) > 100).astype(float))
    assert seconds < 30  # about 2 s alone; generous for a shared machine


@pytest.mark.slow  # run apart: `pytest -m slow` (.ci/run runs the group beside the suite)
def test_csv_memory_is_bytes_per_value_not_python_objects(tmp_path):
    """Peak Python allocation while reading 20,000 rows: under 80 bytes a row (lists of floats took ~450)."""
    n = 20_000
    p = tmp_path / "mid.csv"
    p.write_text("x1,x2,y\n" + "".join(f"{i % 97},{i % 13},{'ab'[i % 2]}\n" for i in range(n)))
    tracemalloc.start()
    data = read_csv(p, None, ["y"], 1, "data.csv")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert data.m == n and data.y.shape == (n, 1)
    assert peak < 80 * n, f"{peak / n:.0f} bytes a row"


def test_max_rows_stops_reading_and_says_so(tmp_path):
    (tmp_path / "d.csv").write_text("a,y\n" + "".join(f"{i},{i % 2}\n" for i in range(50)))
    (tmp_path / "cfg.yaml").write_text(NET + "data: {csv: d.csv, target: y, max_rows: 20}\ntrain: {epochs: 1}\n")
    result = _train("cfg.yaml", "--out", "o", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert f"data: 20 rows read from {(tmp_path / 'd.csv').resolve()} (stopped at data.max_rows: 20)" \
        in result.stderr.replace("\n", "")
    assert load_run(tmp_path / "o").prepared.train.m == 20


# --- command-line values -----------------------------------------------------------------------

CLI_CASES = [
    (["--epochs", "-3"], "error: --epochs: must be at least 1, found -3"),
    (["--epochs", "0"], "error: --epochs: must be at least 1, found 0"),
    (["--epochs", "100000000000"], "error: --epochs: must be at most 10000000, found 100000000000"),
    (["--lr", "0"], "error: --lr: must be > 0, found 0"),
    (["--lr", "nan"], "error: --lr: expected a finite number, found nan"),
    (["--lr", "1e308"], "error: --lr: must be <= 1e+06, found 1e+308"),
    (["--lr", "-0.1"], "error: --lr: must be > 0, found -0.1"),
    (["--batch-size", "5"], "error: --batch-size: 5 is larger than the 4 samples; use at most 4 (or 0 for full batch)"),
    (["--batch-size", "-1"], "error: --batch-size: must be at least 1, found -1 (or 0 for full batch)"),
    (["--seed", "-1"], "error: --seed: must be at least 0, found -1"),
    (["--resume", "nowhere"], "error: nowhere: run folder not found (`bpcli runs` lists the runs)"),
    (["--out", "/proc/no/such"], "error: --out: cannot create /proc/no/such: No such file or directory"),
]


@pytest.mark.parametrize("args,expected", CLI_CASES, ids=[" ".join(c[0]) for c in CLI_CASES])
def test_bad_command_line_value_is_one_clear_error(args, expected, tmp_path):
    result = _train(*args, "-q", cwd=tmp_path)
    assert result.exit_code == 2
    assert result.stderr == expected + "\n"
    assert list(tmp_path.iterdir()) == []  # nothing written


@pytest.mark.parametrize("eps", ["0", "-1e-5", "nan", "inf"])
def test_gradcheck_refuses_a_useless_step(eps):
    result = runner.invoke(app, ["gradcheck", "--eps", eps])
    assert result.exit_code == 2
    assert "--eps" in result.stderr and "Traceback" not in result.output


def test_unknown_weight_lists_the_valid_names():
    for cmd in (["explain", "--weight", "v9"], ["gradcheck", "--weight", "v9"]):
        result = runner.invoke(app, cmd)
        assert result.exit_code == 2, cmd
        assert "unknown parameter 'v9'" in result.stderr and "w11" in result.stderr


# --- limits and foreign code -------------------------------------------------------------------------


def test_absurd_layer_is_refused_with_the_memory_it_needs(tmp_path):
    (tmp_path / "cfg.yaml").write_text("inputs: 2\nlayers: [{size: 1000000000}, 1]\ndata: {generator: xor}\n")
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "cfg.yaml")
    # 10^9 * (2 + 1) + 1 * (10^9 + 1) parameters, 8 bytes each
    assert err.value.problems == [
        f"{tmp_path / 'cfg.yaml'}:2: layers[0].size: this network has 4,000,000,001 parameters and would "
        "need 29.8 GiB for its weights alone; bpcli is for small networks (at most 10,000,000 parameters "
        "and 1,000,000 nodes per layer)"]


def test_absurd_data_pass_is_refused_before_allocating(tmp_path):
    (tmp_path / "cfg.yaml").write_text("layers: [{size: 3000}, 1]\ndata: {generator: moons, samples: 1000000}\n")
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "cfg.yaml")
    assert err.value.problems == [
        f"{tmp_path / 'cfg.yaml'}:1: layers: one pass over the 1,000,000 samples would need 67.1 GiB for the layer "
        "values (z, a and dz of every node for every sample); use fewer samples (data.max_rows) or smaller "
        "layers (at most 4.0 GiB)"]


def test_python_object_tags_are_refused_and_never_run(tmp_path):
    marker = tmp_path / "pwned"
    (tmp_path / "cfg.yaml").write_text(f"layers: !!python/object/apply:os.system ['touch {marker}']\n")
    result = _train("cfg.yaml", "-q", cwd=tmp_path)
    assert result.exit_code == 2
    assert result.stderr == ("error: cfg.yaml:1: refused YAML tag '!!python/object/apply:os.system': bpcli reads "
                             "plain YAML only and never constructs Python objects\n")
    assert not marker.exists()


@pytest.mark.parametrize("name,folder", [
    ("../../etc", "_.._etc"), ("/abs/path", "_abs_path"), ("..", "run"), (".hidden", "hidden"),
    ("a" * 300, "a" * 80), ("naïve café", "na_ve_caf_"), ("", "run"),
])
def test_run_folder_names_never_escape_runs(name, folder, tmp_path):
    d = tmp_path / "runs" / safe_name(name)
    assert d == tmp_path / "runs" / folder
    assert d.resolve().parent == (tmp_path / "runs").resolve()


def test_config_name_cannot_write_outside_runs(tmp_path):
    (tmp_path / "cfg.yaml").write_text("name: ../../escape\nlayers: [1]\ndata: {generator: xor}\ntrain: {epochs: 1}\n")
    result = _train("cfg.yaml", "-q", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cfg.yaml", "runs"]
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["_.._escape"]


def test_control_characters_in_a_key_stay_on_one_line(tmp_path):
    (tmp_path / "cfg.yaml").write_text('"bad\\rkey\\nhere": 1\nlayers: [1]\ndata: {generator: xor}\n')
    result = _train("cfg.yaml", "-q", cwd=tmp_path)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: cfg.yaml:1: bad\\rkey\\nhere: unknown key 'bad\\rkey\\nhere'")
    assert len(result.stderr.splitlines()) == 1


def test_every_bad_command_line_value_is_named_at_once(tmp_path):
    result = _train("--epochs", "0", "--lr", "-1", "--seed", "-2", "-q", cwd=tmp_path)
    assert result.exit_code == 2
    assert result.stderr == ("error: --epochs: must be at least 1, found 0\n"
                             "error: --lr: must be > 0, found -1\n"
                             "error: --seed: must be at least 0, found -2\n")
