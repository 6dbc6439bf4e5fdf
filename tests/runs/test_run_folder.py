"""Run folders: verified whole (every file, every value), claimed once, overwritten only if bpcli's own, never lost."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bpcli.runs import history
from bpcli.runs.claim import commit, lock_run, stage
from bpcli.errors import BpcliError
from bpcli.cli.app import app
from bpcli.analysis.inspect import inspect_run
from bpcli.runs.history import HistoryLog, stride, thin
from bpcli.nn.model import build
from bpcli.runs.store import checkpoint_dir, load_run
from bpcli.training.fit import EpochRecord
from tests.conftest import rerecord

runner = CliRunner()
SRC = Path(__file__).resolve().parents[2] / "src"
IRIS_LIKE = ("inputs: 2\nlayers: [{size: 3, activation: tanh}, {size: 3, activation: softmax}]\nloss: cross_entropy\n"
             "data: {generator: blobs, samples: 40, classes: 3, validation: 0.25, standardize: true}\n"
             "train: {epochs: 6, optimizer: momentum, lr: 0.1}\n")


def _cli(*args, cwd: Path | None = None):
    old = os.getcwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        return runner.invoke(app, [*map(str, args)], catch_exceptions=False)
    finally:
        os.chdir(old)


@pytest.fixture(scope="module")
def good_run(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("good")
    (d / "cfg.yaml").write_text(IRIS_LIKE)
    r = _cli("train", "cfg.yaml", "-q", "--out", "run", cwd=d)
    assert r.exit_code == 0, r.output
    return d / "run"


@pytest.fixture
def run(good_run, tmp_path) -> Path:
    shutil.copytree(good_run, tmp_path / "run")
    return tmp_path / "run"


def _one_error(run: Path, command: str = "show") -> str:
    r = _cli(command, run)
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    assert len(r.stderr.splitlines()) == 1, r.stderr
    return r.stderr.strip()


def test_a_good_run_loads_with_every_file_checked(good_run):
    loaded = load_run(good_run)
    assert (loaded.state.epoch, loaded.state.status, loaded.checkpoint) == (6, "completed", "epoch-6")
    assert sorted(p.name for p in (good_run / "epoch-6").iterdir()) == [
        "config.yaml", "history-sample.json", "metrics.json", "scaling.json", "state.npz", "weights.npz"]
    assert set(json.loads((good_run / "run.json").read_text())["files"]) == {
        "config.yaml", "history-sample.json", "metrics.json", "scaling.json", "state.npz", "weights.npz"}


# --- a changed file is one clear error naming it ----------------------------------------------------------

CHECKED = ["config.yaml", "weights.npz", "state.npz", "metrics.json", "scaling.json", "history-sample.json"]


@pytest.mark.parametrize("name", CHECKED)
def test_any_changed_checkpoint_file_is_named_with_how_to_start_afresh(run, name):
    ck = checkpoint_dir(run)
    data = (ck / name).read_bytes()
    (ck / name).write_bytes(data.replace(b"tanh", b"relu") if name == "config.yaml" else data[:-1] + b" ")
    msg = _one_error(run)
    assert msg.startswith(f"error: {ck / name}: does not match the checksum recorded in run.json")
    if name != "config.yaml":
        assert msg.endswith(f"start afresh with `bpcli train {ck / 'config.yaml'}`")


def test_a_changed_run_json_field_breaks_its_own_checksum(run):
    m = json.loads((run / "run.json").read_text())
    m["epoch"] = 5
    (run / "run.json").write_text(json.dumps(m))
    assert _one_error(run) == (f"error: {run / 'run.json'}: does not match its own checksum "
                               "(it was changed after the run was saved)")


def test_deleting_run_json_does_not_turn_checking_off(run):
    (run / "run.json").unlink()
    assert _one_error(run) == (f"error: {run / 'run.json'}: missing, so nothing in {run} can be checked; "
                               "the run folder is damaged")


def test_a_format_1_folder_is_refused_with_how_to_train_it_again(tmp_path):
    run = tmp_path / "old"
    run.mkdir()
    (run / "config.yaml").write_text("layers: [1]\n")
    (run / "train_state.json").write_text('{"format_version": 1, "bpcli_version": "0.1.0"}')
    assert _one_error(run) == (f"error: {run}: a run folder of format 1 (an older bpcli); this bpcli reads "
                               f"format 2: train it again with `bpcli train {run / 'config.yaml'}`")


BIG = 10 ** 400
DEEP = "[" * 100_000 + "]" * 100_000

# (run.json field, value, what the one error line says), each with the checksums recorded again
MANIFEST_CASES = [
    ("format_version", 99, "run format version 99 is newer than this bpcli understands (2); upgrade bpcli"),
    ("format_version", "2", "run format version '2' was not written by bpcli"),
    ("format_version", 1, "run format version 1 was not written by bpcli"),
    ("format", "other", "not a bpcli run manifest"),
    ("epoch", 5, "says epoch 5 but history.csv holds 6 epochs"),
    ("epoch", BIG, "damaged (epoch is 1000000000"),
    ("step", -1, "damaged (step is -1)"),
    ("step", [1], "damaged (step is [1])"),
    ("bad_epochs", 1.5, "damaged (bad_epochs is 1.5)"),
    ("status", "hacked", "damaged (unknown status 'hacked')"),
    ("status", {"a": 1}, "damaged (unknown status"),
    ("best_val", "x", "damaged (best_val is x)"),
    ("best_val", BIG, "damaged (best_val is 1000000000"),
    ("message", ["x"], "damaged (message is not text)"),
    ("rng_state", {"bit_generator": "PCG64"}, "damaged (rng_state is not a random generator state)"),
    ("rng_state", {"bit_generator": "PCG64", "state": {"state": BIG, "inc": 1}, "has_uint32": 0, "uinteger": 0},
     "damaged (rng_state is not a random generator state)"),
    ("checkpoint", "../../etc", "damaged (checkpoint is '../../etc')"),
    ("checkpoint", ["epoch-6"], "damaged (checkpoint is ['epoch-6'])"),
    ("files", ["config.yaml"], "damaged (files is not the list of checkpoint files and their SHA-256)"),
    ("files", {"config.yaml": "0" * 64}, "damaged (files is not the list of checkpoint files and their SHA-256)"),
    ("history", {"file": "history.csv", "rows": 6, "bytes": BIG, "sha256": "0"},
     "damaged (history is not the rows, bytes and SHA-256 of history.csv)"),
    ("history", {"0": 1}, "damaged (history is not the rows, bytes and SHA-256 of history.csv)"),
]


@pytest.mark.parametrize("field,value,expected", MANIFEST_CASES,
                         ids=[f"{c[0]}={str(c[1])[:12]}" for c in MANIFEST_CASES])
def test_each_manifest_field_is_checked_by_type_and_range(run, field, value, expected):
    rerecord(run, **{field: value})
    msg = _one_error(run)
    assert msg.startswith(f"error: {run / 'run.json'}: {expected}"), msg


def _npz(arrays: dict) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _weights(run: Path) -> dict:
    with np.load(checkpoint_dir(run) / "weights.npz") as z:
        return dict(z)


def _bloated() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:  # 80 MB of zeros compress to ~80 KB
        header = b"\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, 'shape': (10000000,), }"
        zf.writestr("A.W.npy", header + b" " * (127 - len(header)) + b"\n" + bytes(80_000_000))
    return buf.getvalue()


class Boom:
    def __reduce__(self):
        return (Path.touch, (Path("/tmp/bpcli-pwned"),))


# (file, how it is changed (the checksums then recorded again), what the one error line says)
FILE_CASES = [
    ("config.yaml", lambda b, run: b.replace(b"tanh", b"relu").replace(b"size: 3\n  letter: A", b"size: 4\n  letter: A"),
     "weights.npz: A.W has shape (3, 2), the config needs (4, 2)"),
    ("config.yaml", lambda b, run: b.replace(b"version: 1", b"version: 7"),
     "config.yaml: version: config format version 7 is newer"),
    ("config.yaml", lambda b, run: b.replace(b"standardize: true", b"standardize: false"),
     "config.yaml: standardize does not match the checkpoint's files"),
    ("weights.npz", lambda b, run: _npz({**_weights(run), "A.W": np.full((3, 2), np.nan)}),
     "weights.npz: A.W holds NaN or infinite values"),
    ("weights.npz", lambda b, run: _npz({**_weights(run), "A.W": np.zeros((2, 2))}),
     "weights.npz: A.W has shape (2, 2), the config needs (3, 2)"),
    ("weights.npz", lambda b, run: _npz({**_weights(run), "A.W": np.array([Boom()], dtype=object)}),
     "weights.npz: refused: it holds pickled objects, which bpcli never loads"),
    ("weights.npz", lambda b, run: b[: len(b) // 2], "weights.npz: not a valid weights file (truncated or damaged"),
    ("weights.npz", lambda b, run: _bloated(),
     "weights.npz: A.W.npy holds 80,000,128 bytes, more than the config's arrays need"),
    ("state.npz", lambda b, run: _npz({"m:A.W": np.zeros((5, 5))}),
     "state.npz: array 'm:A.W' does not fit the network in config.yaml"),
    ("metrics.json", lambda b, run: b"[1, 2]", "metrics.json: damaged (expected a JSON object)"),
    ("metrics.json", lambda b, run: DEEP.encode(), "metrics.json: damaged (JSON nested too deeply)"),
    ("scaling.json", lambda b, run: b'{"mean": {"0": 1, "1": 2}, "std": [1, 1]}',
     "scaling.json: damaged (expected mean and std lists of 2 numbers)"),
    ("scaling.json", lambda b, run: f'{{"mean": [{BIG}, 0], "std": [1, 1]}}'.encode(),
     "scaling.json: damaged (expected mean and std lists of 2 numbers)"),
    ("scaling.json", lambda b, run: b'{"mean": [0, 0], "std": [1, 0]}', "scaling.json: damaged (std must be above 0)"),
    ("scaling.json", lambda b, run: b'{"mean": [0, 0], "std": [1, NaN]}',
     "scaling.json: damaged (expected mean and std lists of 2 numbers)"),
    # values each within JSON, wrong for the run: a metric beyond float range, limits that are not the data's
    ("metrics.json", lambda b, run: b.replace(b'"loss":', b'"loss": 1' + b"0" * 400 + b', "x":', 1),
     "metrics.json: damaged (loss is 1000000000000000000000000000000000000000, expected a finite number)"),
    ("metrics.json", lambda b, run: b.replace(b'"val_metric":', b'"val_metric": 1e400, "x":', 1),
     "metrics.json: damaged (val_metric is inf, expected a finite number)"),
    ("metrics.json", lambda b, run: b.replace(b'"epochs": 6', b'"epochs": -6', 1),
     "metrics.json: damaged (epochs is -6, expected a whole number of epochs)"),
    ("scaling.json", lambda b, run: b'{"mean": [1e308, 0], "std": [1e-308, 1]}',
     "scaling.json: damaged (mean and std are not those of the training data in config.yaml)"),
    ("scaling.json", lambda b, run: json.dumps({k: [v[0] * 1.001, v[1]] for k, v in json.loads(b).items()}).encode(),
     "scaling.json: damaged (mean and std are not those of the training data in config.yaml)"),
    ("state.npz", lambda b, run: _npz({}),
     "state.npz: damaged (arrays m:A.W, m:A.b, m:B.W, m:B.b of the momentum optimiser's state are missing)"),
    ("state.npz", lambda b, run: _npz({k: v for k, v in np.load(io.BytesIO(b)).items() if k != "m:B.b"}),
     "state.npz: damaged (arrays m:B.b of the momentum optimiser's state are missing)"),
    ("history-sample.json", lambda b, run: b'{"0": {"epoch": 1}}',
     "history-sample.json: damaged (expected a list of records, found dict)"),
    ("history-sample.json", lambda b, run: json.dumps(json.loads(b)[:-1]).encode(),
     "history-sample.json: damaged (holds epochs"),
    ("history-sample.json", lambda b, run: b.replace(b'"loss":', b'"loss":1' + b"0" * 400 + b',"x":', 1),
     "history-sample.json: damaged (epoch 1: loss is out of range)"),
    ("history-sample.json", lambda b, run: b.replace(b'"grad_norm":[', b'"grad_norm":["x",', 1),
     "history-sample.json: damaged (epoch 1: grad_norm is not a list of 2 numbers)"),
    ("history-sample.json", lambda b, run: DEEP.encode(), "history-sample.json: damaged (JSON nested too deeply)"),
]


@pytest.mark.parametrize("name,change,expected", FILE_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(FILE_CASES)])
def test_each_checkpoint_file_is_checked_by_value_after_its_checksum(run, name, change, expected):
    ck = checkpoint_dir(run)
    (ck / name).write_bytes(change((ck / name).read_bytes(), run))
    rerecord(run)
    msg = _one_error(run)
    assert msg.startswith(f"error: {ck / expected.split(':')[0]}:"), msg
    assert expected.split(": ", 1)[1] in msg, msg
    assert not Path("/tmp/bpcli-pwned").exists()


def test_a_metric_beyond_float_range_is_one_line_in_compare_and_a_damaged_row_in_runs(run, good_run):
    ck = checkpoint_dir(run)
    (ck / "metrics.json").write_bytes((ck / "metrics.json").read_bytes().replace(b'"loss":', b'"loss": 1' + b"0" * 400
                                                                                + b', "x":', 1))
    rerecord(run)
    r = _cli("compare", good_run, run)
    assert r.exit_code == 2 and "Traceback" not in r.output and len(r.stderr.splitlines()) == 1, r.output
    assert r.stderr.startswith(f"error: cannot compare: {ck / 'metrics.json'}: damaged (loss is 1000"), r.stderr
    r = _cli("runs", run.parent, "--json")
    assert r.exit_code == 0, r.output
    (row,) = json.loads(r.stdout)["runs"]
    assert (row["ok"], row["status"], row["loss"]) == (False, "damaged: metrics.json", None)
    assert row["problem"].startswith(f"{ck / 'metrics.json'}: damaged (loss is 1000")


@pytest.mark.parametrize("field,value", [("epoch", -1), ("status", "[red]done"), ("best_epoch", 99)])
def test_runs_lists_a_run_json_whose_fields_are_out_of_range_as_damaged(run, field, value):
    """Found by the command fuzzer: `runs` checked run.json's checksum only and listed epoch -1 as a run."""
    rerecord(run, **{field: value})
    r = _cli("runs", run.parent, "--json")
    assert r.exit_code == 0, r.output
    (row,) = json.loads(r.stdout)["runs"]
    assert (row["ok"], row["status"], row["epochs"]) == (False, "damaged: run.json", None)
    assert row["problem"].startswith(f"{run / 'run.json'}: damaged (")


def test_a_scaling_that_is_not_the_datas_is_one_line_in_plot(run, tmp_path):
    ck = checkpoint_dir(run)
    (ck / "scaling.json").write_text('{"mean": [1e308, 0], "std": [1e-308, 1]}')  # NaN axis limits, before
    rerecord(run)
    r = _cli("plot", run, "--out", tmp_path / "p.png")
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    errors = [ln for ln in r.stderr.splitlines() if not ln.startswith("plot: reading")]  # the progress line
    assert errors == [f"error: {ck / 'scaling.json'}: damaged (mean and std are not those of the training data in "
                      f"config.yaml); start afresh with `bpcli train {ck / 'config.yaml'}`"]
    assert not (tmp_path / "p.png").exists()


def test_an_emptied_optimiser_state_is_never_resumed_from_zero(tmp_path):
    run = _interrupted(tmp_path)
    ck = checkpoint_dir(run)
    before = (run / "history.csv").read_bytes()
    (ck / "state.npz").write_bytes(_npz({}))
    rerecord(run)
    r = _cli("train", "--resume", run, "-q")
    assert r.exit_code == 2 and len(r.stderr.splitlines()) == 1, r.output
    assert r.stderr.startswith(f"error: {ck / 'state.npz'}: damaged (arrays m:A.W, m:A.b, m:B.W, m:B.b of the "
                               "momentum optimiser's state are missing)")
    assert (run / "history.csv").read_bytes() == before  # nothing appended


@pytest.mark.parametrize("keep,why", [
    ([0, 2, 3], "row 1 is not epoch 1"),
    ([0, 1, 2], "it holds 2 whole rows, run.json records 3"),
    ([0, 1, 2, 3, 2, 3], "row 4 is not epoch 4"),
], ids=["a-row-gone", "fewer", "glued"])
def test_a_history_whose_rows_disagree_with_run_json_is_not_resumed(tmp_path, keep, why):
    """history.csv rewritten (its size and SHA-256 recorded again): rows missing, fewer than run.json's count, or
    rows glued on from elsewhere; resuming would continue a history that is not this run's."""
    import hashlib
    run = _interrupted(tmp_path)
    lines = (run / "history.csv").read_bytes().split(b"\n")
    new = b"".join(lines[i] + b"\n" for i in keep)
    (run / "history.csv").write_bytes(new)
    m = json.loads((run / "run.json").read_text())
    rerecord(run, history={**m["history"], "bytes": len(new), "sha256": hashlib.sha256(new).hexdigest()})
    r = _cli("train", "--resume", run, "-q")
    assert r.exit_code == 2 and len(r.stderr.splitlines()) == 1, r.output
    assert r.stderr == f"error: {run / 'history.csv'}: damaged ({why}); the run cannot be continued\n"
    assert (run / "history.csv").read_bytes() == new


@pytest.mark.parametrize("name", ["run.json", "weights.npz", "metrics.json"])
def test_a_folder_or_fifo_where_a_file_belongs_is_one_clear_error(run, name):
    path = run / name if name == "run.json" else checkpoint_dir(run) / name
    path.unlink()
    path.mkdir()
    assert _one_error(run).endswith(f"{path}: expected the {'manifest' if name == 'run.json' else name}, "
                                    "found a folder")
    path.rmdir()
    os.mkfifo(path)  # reading it would block forever
    assert _one_error(run).endswith("found not a regular file")


def test_history_csv_shorter_than_recorded_or_missing_is_named(run):
    data = (run / "history.csv").read_bytes()
    (run / "history.csv").write_bytes(data[:-10])
    assert "history.csv: shorter than run.json records" in _one_error(run)
    (run / "history.csv").unlink()
    assert "history.csv: missing from the run folder" in _one_error(run)


def _interrupted(tmp_path: Path, after_epochs: int = 3) -> Path:
    from bpcli.config.loader import load_config
    from bpcli.runs.session import run_training
    (tmp_path / "cfg.yaml").write_text(IRIS_LIKE)
    cfg, data = load_config(tmp_path / "cfg.yaml")
    done = []
    res = run_training(cfg, data, tmp_path / "run", on_epoch=done.append, should_stop=lambda: len(done) >= after_epochs)
    assert res.status == "interrupted" and res.epochs == after_epochs
    return tmp_path / "run"


def test_a_changed_history_csv_is_refused_on_resume_and_a_torn_tail_is_dropped(tmp_path):
    run = _interrupted(tmp_path)
    good = (run / "history.csv").read_bytes()
    (run / "history.csv").write_bytes(good + b"4,0.5,0.4,0.9,0.8,0.01,1" * 1000)  # rows after run.json's count
    assert load_run(run).state.epoch == 3  # what run.json does not count is not read
    r = _cli("train", "--resume", run, "-q")
    assert r.exit_code == 0, r.output
    rows = (run / "history.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in rows] == ["epoch", "1", "2", "3", "4", "5", "6"]
    (tmp_path / "b").mkdir()
    run2 = _interrupted(tmp_path / "b")
    (run2 / "history.csv").write_bytes((run2 / "history.csv").read_bytes().replace(b"1,", b"9,", 1))
    r = _cli("train", "--resume", run2, "-q")
    assert r.exit_code == 2 and len(r.stderr.splitlines()) == 1
    assert r.stderr == (f"error: {run2 / 'history.csv'}: does not match the checksum recorded in run.json "
                        "(the file was changed after the run was saved)\n")


# --- claiming the folder: overwrite, concurrency, resume --------------------------------------------------


def test_overwrite_never_touches_a_folder_bpcli_did_not_write(tmp_path):
    (tmp_path / "config.yaml").write_text(IRIS_LIKE)
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "weights.npz").write_bytes(b"my own weights")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    r = _cli("train", "config.yaml", "--out", ".", "--force", "-q", cwd=tmp_path)
    assert r.exit_code == 2
    assert r.stderr == ("error: --out: . is not a bpcli run folder (no run.json written by bpcli); "
                        "--force replaces only run folders, never other files\n")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # byte for byte, nothing added


def test_overwrite_refuses_a_run_folder_holding_a_users_file(run):
    (run / "notes.txt").write_text("mine")
    before = {str(p): p.read_bytes() for p in run.rglob("*") if p.is_file()}
    r = _cli("train", "-q", "--out", run, "--force")
    assert r.exit_code == 2
    assert r.stderr == (f"error: --out: {run} holds files bpcli did not write (notes.txt); refusing to overwrite it\n")
    assert {str(p): p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


def test_overwrite_replaces_a_run_whole_leaving_none_of_its_files(run):
    (checkpoint_dir(run) / "loss.png").write_bytes(b"png")  # what `bpcli plot` writes there
    r = _cli("train", "-q", "--epochs", "2", "--out", run, "--force")  # the seed: no scaling.json
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in run.iterdir()) == ["epoch-2", "history.csv", "run.json", "snapshots"]
    assert "scaling.json" not in {p.name for p in (run / "epoch-2").iterdir()}
    assert load_run(run).cfg.name == "seed"
    assert not [p for p in run.parent.iterdir() if p.name.startswith(".bpcli-")]


def test_resume_with_out_is_refused(run, tmp_path):
    r = _cli("train", "--resume", run, "--out", tmp_path / "other", "-q")
    assert r.exit_code == 2
    assert r.stderr == (f"error: --out: a resumed run continues in its own folder ({run}); give no --out with "
                        "--resume, or branch a new run with --from-epoch N --out NEW\n")
    assert not (tmp_path / "other").exists()


def test_a_run_being_written_cannot_be_overwritten_or_resumed(tmp_path):
    run = _interrupted(tmp_path)
    before = {str(p): p.read_bytes() for p in run.rglob("*") if p.is_file()}
    lock = lock_run(run)  # what a training process holds while it writes
    try:
        for args in (["--resume", run], ["--out", run, "--overwrite"]):
            r = _cli("train", *args, "-q")
            assert r.exit_code == 2, r.output
            assert r.stderr.endswith(f"{run} is being written by another bpcli process right now; wait for it to "
                                     "finish or choose another folder\n")
    finally:
        lock.release()
    assert {str(p): p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
    assert _cli("train", "--resume", run, "-q").exit_code == 0


def test_the_second_of_two_claims_on_one_folder_is_refused_and_the_first_kept(tmp_path):
    """Two runs built at once for the same --out: each appears with one rename, so only the first does."""
    x = tmp_path / "x"
    (a, lock_a), (b, lock_b) = stage(tmp_path, x), stage(tmp_path, x)
    (a / "run.json").write_text("A")
    (b / "run.json").write_text("B")
    commit(a, x, overwrite=False)
    with pytest.raises(BpcliError) as err:
        commit(b, x, overwrite=False)
    # the core names its argument (out); the command line says it as the flag, --out
    assert str(err.value) == f"out: {x} was just written by another bpcli run; choose another folder or add --force"
    with pytest.raises(BpcliError) as err:  # even with --overwrite, while the first one holds it
        commit(b, x, overwrite=True)
    assert str(err.value).endswith("is being written by another bpcli process right now; wait for it to finish "
                                   "or choose another folder")
    assert (x / "run.json").read_text() == "A"
    lock_a.release()
    lock_b.release()


def _popen(args, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bpcli", *map(str, args)], cwd=cwd,
                            env={**os.environ, "PYTHONPATH": str(SRC)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_two_writers_to_one_folder_exactly_one_wins(tmp_path):
    (tmp_path / "a.yaml").write_text(IRIS_LIKE.replace("epochs: 6", "epochs: 300"))
    (tmp_path / "b.yaml").write_text(IRIS_LIKE.replace("epochs: 6", "epochs: 200"))
    procs = [_popen(["train", cfg, "--out", "x", "-q", "--json"], tmp_path) for cfg in ("a.yaml", "b.yaml")]
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    codes = sorted(r[0] for r in results)
    assert codes == [0, 2], results
    winner = next(r for r in results if r[0] == 0)
    loser = next(r for r in results if r[0] == 2)
    assert "Traceback" not in loser[2] and len(loser[2].splitlines()) == 1
    assert loser[2].startswith("error: --out: x ")
    epochs = json.loads(winner[1])["epochs"]
    loaded = load_run(tmp_path / "x")  # the winner's run, whole
    assert (loaded.state.epoch, loaded.state.status) == (epochs, "completed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.yaml", "b.yaml", "x"]  # no staging left behind


def _signal_catching(pid: int, sig: int) -> bool:
    """True once the process catches `sig` (bpcli's main() has installed its handler), from /proc."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("SigCgt:")), 16)
    return bool(caught >> (sig - 1) & 1)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc to see when handlers are set")
def test_a_signal_in_the_first_moments_leaves_a_loadable_run_or_none_and_says_which(tmp_path):
    """SIGINT and SIGTERM from 0 to 200 ms after bpcli's first line runs: no traceback, exit 130 or 143, and
    "saved" only when the run folder exists (and then it loads and resumes)."""
    (tmp_path / "cfg.yaml").write_text(IRIS_LIKE.replace("epochs: 6", "epochs: 100000"))
    trials = [(sig, delay) for sig in (signal.SIGINT, signal.SIGTERM) for delay in (0.0, 0.03, 0.08, 0.14, 0.2)]
    procs = []
    for i, (sig, delay) in enumerate(trials):
        p = _popen(["train", "cfg.yaml", "--out", f"r{i}", "-q"], tmp_path)
        deadline = time.monotonic() + 30
        while not _signal_catching(p.pid, signal.SIGTERM):
            assert time.monotonic() < deadline and p.poll() is None
            time.sleep(0.001)
        if delay == 0.0:  # frozen the moment its handlers are set, long before numpy is in: the signal waits
            p.send_signal(signal.SIGSTOP)  # for it, so "nothing was saved" is reached however busy the machine
            p.send_signal(sig)
            p.send_signal(signal.SIGCONT)
        else:
            procs.append((p, sig, time.monotonic() + delay))
            continue
        procs.append((p, sig, 0.0))
    for p, sig, at in sorted(procs, key=lambda t: t[2]):
        if at:
            time.sleep(max(0.0, at - time.monotonic()))
            p.send_signal(sig)
    for sig in (signal.SIGINT, signal.SIGTERM):  # and once the run folder has just appeared
        i = len(procs)
        p = _popen(["train", "cfg.yaml", "--out", f"r{i}", "-q"], tmp_path)
        while not (tmp_path / f"r{i}").exists():
            assert p.poll() is None
            time.sleep(0.001)
        p.send_signal(sig)
        procs.append((p, sig, 0.0))
    outcomes = set()
    for i, (p, sig, _) in enumerate(procs):
        _, err = p.communicate(timeout=60)
        run = tmp_path / f"r{i}"
        assert p.returncode == 128 + sig, err
        assert "Traceback" not in err and len(err.splitlines()) == 1, err
        if run.exists():
            assert err.startswith("interrupted: state after epoch ") and f"saved in r{i}; continue with" in err
            assert load_run(run).state.status == "interrupted"
            outcomes.add("saved")
        else:
            assert err == "interrupted: nothing was saved (stopped before the run folder was written)\n"
            outcomes.add("nothing")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".bpcli-")]  # no half-made folder left
    resumed = next(tmp_path / f"r{i}" for i in range(len(procs)) if (tmp_path / f"r{i}").exists())
    assert _cli("train", "--resume", resumed, "--epochs", load_run(resumed).state.epoch + 2, "-q").exit_code == 0
    assert outcomes == {"saved", "nothing"}, outcomes  # both sides of the switch were reached


# A signal that lands inside numpy's C start-up comes out of the import wrapped (ImportError, RuntimeError), with
# the handler's Interrupted as its cause or context; or it is swallowed there and only received_signal remembers it.
_WRAPPED_AT_STARTUP = """
import os, signal, sys
import bpcli.__main__ as entry

class SignalInsideImport:  # the signal arrives while bpcli.cli.app is being imported, and the import wraps it
    def find_spec(self, name, path=None, target=None):
        if name != "bpcli.cli.app":
            return None
        try:
            os.kill(os.getpid(), signal.SIG%s)
            for _ in range(10**6):
                pass
        except BaseException as err:
            if %r:
                raise RuntimeError("initialisation of an extension failed") from err
        raise ImportError("numpy C-extensions failed")  # the handler's exception swallowed: only the record is left

sys.meta_path.insert(0, SignalInsideImport())
sys.argv = ["bpcli", "--help"]
entry.main()
"""


@pytest.mark.parametrize("sig", ["INT", "TERM"])
@pytest.mark.parametrize("wrapped", [True, False])
def test_a_signal_inside_the_start_up_imports_is_the_usual_interruption_not_a_traceback(tmp_path, sig, wrapped):
    proc = subprocess.run([sys.executable, "-c", _WRAPPED_AT_STARTUP % (sig, wrapped)], cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(SRC)}, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 128 + getattr(signal, "SIG" + sig), proc.stderr
    assert proc.stderr == "interrupted: nothing was saved (stopped before the run folder was written)\n"
    assert proc.stdout == ""


_LOST_IN_A_FINALISER = """
import os, signal, sys
import bpcli.__main__ as entry

class Finaliser:  # the signal lands in a finaliser (as in importlib's module-lock callback): Python cannot raise it
    def __del__(self):
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(10**6):
            pass

class SignalInsideImport:
    def find_spec(self, name, path=None, target=None):
        if name == "bpcli.cli.app":
            Finaliser()
        return None

sys.meta_path.insert(0, SignalInsideImport())
sys.argv = ["bpcli", "train", "cfg.yaml", "--out", "r", "-q"]
entry.main()
"""


def test_a_start_up_signal_lost_in_a_finaliser_stops_the_run_without_a_traceback(tmp_path):
    """Python prints an exception raised in a finaliser as "Exception ignored in ...", with a traceback; the
    signal is kept (errors.received_signal) and the run stops at epoch 0, saved, with the usual one line."""
    (tmp_path / "cfg.yaml").write_text(IRIS_LIKE.replace("epochs: 6", "epochs: 100000"))
    proc = subprocess.run([sys.executable, "-c", _LOST_IN_A_FINALISER], cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(SRC)}, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 143, proc.stderr
    assert proc.stderr == "interrupted: state after epoch 0 saved in r; continue with `bpcli train --resume r`\n"
    assert load_run(tmp_path / "r").state.epoch == 0


def test_run_files_get_the_usual_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        assert _cli("train", "-q", "--epochs", "3", "--out", tmp_path / "r").exit_code == 0
        assert _cli("train", "--resume", tmp_path / "r", "-q").exit_code == 2  # completed: nothing written
    finally:
        os.umask(old)
    modes = {str(p.relative_to(tmp_path)): stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "r").rglob("*")}
    modes["r"] = stat.S_IMODE((tmp_path / "r").stat().st_mode)
    assert modes == {**{k: 0o644 for k in modes if "." in k}, **{k: 0o755 for k in modes if "." not in k}}, modes


# --- a long history: bounded in memory and on display -------------------------------------------------


def _rec(e: int, g_a: float = 1.0) -> EpochRecord:
    return EpochRecord(e, 1.0 / e, None, None, None, (g_a, 1.0), (1.0, 1.0), (0.01, 0.01), (None, None), 0.0)


def test_the_history_sample_is_bounded_and_the_same_whatever_was_resumed(tmp_path):
    log = HistoryLog.create(tmp_path / "h.csv", ["A", "B"])
    for e in range(1, 30_001):
        log.append(_rec(e))
        if e in (1, 2, 2048, 2049, 2050, 4096, 4097, 4098, 8193, 30_000) or e % 997 == 0:
            s = stride(e)
            assert [r.epoch for r in log.sample] == sorted({1, e, *range(s, e + 1, s)}), e
            assert len(log.sample) <= history.SAMPLE_LIMIT + 2
    log.sync()
    log.close()
    assert thin([r.to_dict() for r in map(_rec, range(1, 30_001))], 30_000) == [r.to_dict() for r in log.sample]
    assert (tmp_path / "h.csv").read_text().count("\n") == 30_001  # every epoch is in the file


def test_inspect_on_a_thinned_history_names_epochs_not_positions():
    from bpcli.config.loader import load_config
    cfg, _ = load_config(None)
    net = build(cfg)
    full = [_rec(e, 1.0 if e < 6001 else 1e-4).to_dict() for e in range(1, 20_001)]
    sample = thin(full, 20_000)
    assert len(sample) < 2100
    res = inspect_run(net, sample, "seed", "run")
    f = next(f for f in res.findings if f.kind == "vanishing")
    assert 6001 - stride(20_000) < f.epoch <= 6001 and abs(f.epochs - 14_000) <= stride(20_000)
    assert res.epochs == 20_000 and res.trace_epochs[-1] == 20_000
