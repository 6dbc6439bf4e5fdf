"""Fuzz `bpcli train` with generated and mutated configs: exit 0/1/2, never a traceback, nothing half-written.

Every example runs in a fresh folder holding only cfg.yaml (and data.csv); afterwards that folder may
only have gained runs/<name>/ folders, each a complete run that load_run accepts. Errors must name
the config file. Bounded: a few hundred derandomised examples, each trains at most 1 epoch on tiny data.
"""

from __future__ import annotations

import contextlib
import copy
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from bpcli.cli.app import app
from bpcli.runs.store import load_run

RUN_FILES = {"run.json", "history.csv"}
CHECKPOINT_FILES = {"config.yaml", "weights.npz", "state.npz", "history-sample.json", "metrics.json"}
CSV_TEXT = "a,b,label\n0,0,no\n0,1,yes\n1,0,yes\n1,1,no\n0.5,0.5,yes\n"

BASES = [
    {"name": "seedish", "inputs": ["x1", "x2"],
     "layers": [{"size": 2, "activation": "sigmoid"}, {"size": 1, "activation": "sigmoid"}],
     "loss": "squared_error", "init": {"scheme": "xavier_uniform", "seed": 3},
     "data": {"generator": "xor"}, "train": {"optimizer": "gd", "lr": 2.0, "epochs": 1}},
    {"name": "blobs3", "inputs": 2,
     "layers": [{"size": 4, "activation": "relu"}, {"size": 3, "activation": "softmax"}],
     "loss": "cross_entropy",
     "data": {"generator": "blobs", "samples": 30, "classes": 3, "validation": 0.2, "standardize": True},
     "train": {"optimizer": "adam", "lr": 0.01, "epochs": 1, "batch_size": 8, "early_stopping": {"patience": 2}}},
    {"name": "inline", "inputs": 1, "bias": "shared",
     "layers": [{"size": 3, "activation": {"name": "leaky_relu", "slope": 0.1}},
                {"size": 1, "activation": "identity", "weights": [[0.1, 0.2, 0.3]], "biases": [0.0]}],
     "loss": {"name": "huber", "delta": 1.0}, "init": {"values": {"w11": 0.5}},
     "data": {"x": [[0.0], [1.0], [2.0]], "y": [[0.0], [1.0], [4.0]]},
     "train": {"optimizer": "momentum", "lr": 0.01, "epochs": 1, "momentum": 0.5}},
    {"name": "fromcsv",
     "layers": [{"size": 2, "activation": "tanh"}, {"size": 1, "activation": "sigmoid"}],
     "loss": "binary_cross_entropy",
     "data": {"csv": "data.csv", "target": "label", "max_rows": 100},
     "train": {"optimizer": "sgd", "lr": 0.1, "epochs": 1, "batch_size": 2, "dtype": "float32"}},
]

NASTY = st.one_of(
    st.none(), st.booleans(),
    st.integers(-5, 64),
    st.sampled_from([0, -1, 10**9, 2**63, -(2**63), 10**400, -(10**400), 1_000_001, 10_000_001, 50_000_001]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["sigmoid", "sigmod", "relu", "softmax", "xor", "blobs", "spirals", "adam", "cross_entropy",
                     "-1", "1e999", ".inf", "~", "yes", "on", "full", "data.csv", "../../etc/passwd", "/dev/null",
                     "nope.csv", "..", "x1", "w11"]),
    st.lists(st.integers(-3, 3), max_size=3),
    st.lists(st.lists(st.floats(allow_nan=True), max_size=3), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
    st.integers(1, 40).map(lambda d: _nest(d)),
)


def _nest(depth: int):
    v: object = 1
    for _ in range(depth):
        v = [v]
    return v


def _paths(node, prefix=()):
    """Every (path, value) in a nested dict/list document, the root included."""
    yield prefix, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


def _get(doc, path):
    for p in path:
        doc = doc[p]
    return doc


@st.composite
def mutated_config(draw) -> bytes:
    """A valid base config with 1-3 structural mutations, then maybe a raw-text mutation."""
    doc = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p, _ in _paths(doc) if p]
        path = draw(st.sampled_from(paths))
        parent, key = _get(doc, path[:-1]), path[-1]
        action = draw(st.sampled_from(["replace", "replace", "replace", "delete", "unknown_key", "typo", "wrap"]))
        if action == "replace":
            parent[key] = draw(NASTY)
        elif action == "delete":
            del parent[key]
        elif action == "unknown_key" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=8))] = draw(NASTY)
        elif action == "typo" and isinstance(parent, dict) and isinstance(key, str) and len(key) > 1:
            parent[key[:-1] + key[-1].upper()] = parent.pop(key)
        elif action == "wrap":
            parent[key] = [parent[key]]
    text = yaml.safe_dump(doc, sort_keys=False).encode()
    raw = draw(st.sampled_from(["none", "none", "none", "truncate", "bytes", "dup_line", "tab"]))
    if raw == "truncate":
        text = text[: draw(st.integers(0, len(text)))]
    elif raw == "bytes":
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.binary(min_size=1, max_size=6)) + text[at:]
    elif raw == "dup_line":
        lines = text.splitlines(keepends=True)
        i = draw(st.integers(0, len(lines) - 1))
        text = b"".join(lines[: i + 1] + [lines[i]] + lines[i + 1:])
    elif raw == "tab":
        text = text.replace(b"  ", b"\t", 1)
    return text


def _laughs(depth: int, width: int, where: str) -> bytes:
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    for d in range(1, depth + 1):
        lines.append(f"l{d}: &l{d} [{', '.join([f'*l{d - 1}'] * width)}]")
    return ("\n".join(lines) + f"\n{where}: *l{depth}\n").encode()


TEMPLATES = st.one_of(
    st.sampled_from([
        b"", b"   \n", b"# only a comment\n", b"- 1\n- 2\n", b"42\n", b"'just text'\n", b"~\n", b"[]\n", b"{}\n",
        b"\xff\xfe\x00l\x00a\x00y\x00", b"layers: [1]\n\x80\x81\n", b"a: 1\n---\nb: 2\n",
        b"layers: !!python/object/apply:os.system ['echo pwned']\n",
        b"name: !!python/name:os.system\n", b"!!python/object:collections.OrderedDict {}\n",
        b"layers: !custom [1]\n", b"layers: &a [*a]\ndata: {generator: xor}\n",
        b"data: &d {generator: xor, x: *d}\nlayers: [1]\n",
        b"layers: [1]\nlayers: [2]\ndata: {generator: xor}\n",
        b"layers: [{size: 1, size: 2}]\ndata: {generator: xor}\n",
        b"? [a, b]\n: 1\n", b"a: {<<: 1}\n", b"layers: [1]\ndata: {generator: xor}\ntrain: {epochs: 1}\nname: ../../etc\n",
        b"layers: [{size: 1000000000}]\ndata: {generator: xor}\n",
        b"inputs: 1000000\nlayers: [1000000, 1]\ndata: {generator: xor}\n",
        b"layers: [1]\ndata: {generator: blobs, samples: 10000000, classes: 100}\n",
        b"layers: [{size: 1000000, activation: softmax}]\nloss: cross_entropy\ndata: {generator: blobs}\n",
        b"\ttabs: 1\n", b"layers: [1\n", b"layers: \"unterminated\n", b"%YAML 9.9\n---\na: 1\n",
    ]),
    st.builds(_laughs, st.integers(1, 9), st.integers(2, 9),
              st.sampled_from(["layers", "inputs", "description", "name", "init", "data"])),
    st.integers(50, 250).map(lambda d: ("layers: " + "[" * d + "]" * d + "\n").encode()),
    st.integers(50, 250).map(lambda d: ("data: " + "{a: " * d + "1" + "}" * d + "\n").encode()),
)

STATS: Counter = Counter()
runner = CliRunner()


@contextlib.contextmanager
def _fresh_folder():
    old = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="bpcli-fuzz-") as d:
        os.chdir(d)
        try:
            yield Path(d)
        finally:
            os.chdir(old)


def _check_one(text: bytes) -> None:
    """Run `bpcli train cfg.yaml` on `text` and check every promise the CLI makes about bad input."""
    with _fresh_folder() as d:
        (d / "cfg.yaml").write_bytes(text)
        (d / "data.csv").write_text(CSV_TEXT)
        t0 = time.perf_counter()
        result = runner.invoke(app, ["train", "cfg.yaml", "--quiet", "--epochs", "1"], catch_exceptions=True)
        STATS["seconds"] += time.perf_counter() - t0
        if os.environ.get("BPCLI_FUZZ_SLOW") and time.perf_counter() - t0 > 0.5:
            print(f"\nslow {time.perf_counter() - t0:.2f}s {text[:300]!r}")
        # never a traceback: any exception other than the CLI's own exit is a bug
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            f"{type(result.exception).__name__}: {result.exception}\n--- config ---\n{text[:2000]!r}")
        code = result.exit_code
        assert code in (0, 1, 2), (code, result.output)
        STATS[code] += 1
        err_lines = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
        assert "Traceback" not in result.output
        if code == 2:
            assert err_lines, result.output
            for ln in err_lines:  # every problem names the file it is in
                assert "cfg.yaml" in ln, ln
        if code == 1:
            assert "diverged" in result.output or "loss became" in result.stderr, result.output
        # nothing written outside runs/, and every run folder is complete and loadable
        assert sorted(p.name for p in d.iterdir()) in (["cfg.yaml", "data.csv"], ["cfg.yaml", "data.csv", "runs"])
        runs = d / "runs"
        folders = sorted(runs.iterdir()) if runs.exists() else []
        if code == 2:
            assert folders == [], "a refused config left a run folder"
        for f in folders:
            assert f.parent == runs and f.is_dir()
            assert {p.name for p in f.iterdir()} >= RUN_FILES, sorted(p.name for p in f.iterdir())
            assert not any(p.name.endswith(".tmp") for p in f.iterdir())
            loaded = load_run(f)
            assert loaded.state.status in ("completed", "early_stopped", "diverged")
            assert [p.name for p in f.glob("epoch-*")] == [loaded.checkpoint]  # the previous ones are gone
            assert {p.name for p in (f / loaded.checkpoint).iterdir()} >= CHECKPOINT_FILES


FUZZ = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@FUZZ
@given(mutated_config())
def test_mutated_configs_exit_cleanly(text):
    STATS["mutated"] += 1
    _check_one(text)


@settings(max_examples=80, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(TEMPLATES)
def test_hostile_yaml_exits_cleanly(text):
    STATS["hostile"] += 1
    _check_one(text)


@pytest.mark.parametrize("doc", BASES, ids=[b["name"] for b in BASES])
def test_the_unmutated_bases_train(doc):
    """The fuzz bases are valid configs, so mutations start from something that works."""
    with _fresh_folder() as d:
        (d / "cfg.yaml").write_text(yaml.safe_dump(doc))
        (d / "data.csv").write_text(CSV_TEXT)
        result = runner.invoke(app, ["train", "cfg.yaml", "--quiet"])
        assert result.exit_code == 0, result.output
        assert len(list((d / "runs").iterdir())) == 1


@pytest.mark.parametrize("text", [
    b"\xff\xfe\x00bad",
    b"layers: !!python/object/apply:os.system ['echo pwned > pwned.txt']\n",
    _laughs(9, 9, "layers"),
])
def test_real_process_gives_one_clean_error(text, tmp_path):
    """The same promises in a real `python -m bpcli` process: exit 2, no traceback, nothing written."""
    (tmp_path / "cfg.yaml").write_bytes(text)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    proc = subprocess.run([sys.executable, "-m", "bpcli", "train", "cfg.yaml", "-q"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: cfg.yaml")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cfg.yaml"]
    STATS["subprocess"] += 1


@pytest.mark.parametrize("text", ["layers: " + "[" * 2000 + "]" * 2000 + "\n",
                                  "".join(" " * i + f"k{i}:\n" for i in range(3000)) + " " * 3000 + "1\n"],
                         ids=["flow", "block"])
def test_very_deep_nesting_is_refused(text):
    with _fresh_folder() as d:
        (d / "cfg.yaml").write_text(text)
        result = runner.invoke(app, ["train", "cfg.yaml", "-q"])
        assert result.exit_code == 2
        assert result.stderr.startswith("error: cfg.yaml:") and result.stderr.endswith(": YAML is nested too deeply\n")
        assert 1 == len(result.stderr.splitlines())
