"""Fuzz every command: 1,000 seeded, structurally varied configs through `train`, then every command that reads a run.

A config is built from parts (1-4 layers of 1 to 11 nodes, every activation, loss, bias mode, optimiser and
data source, odd symbols, letters and names, explicit weights and init values), then maybe mutated (a value
replaced by a nasty one, a key dropped or misspelt, the text cut or salted with bytes). Each goes through
`bpcli train`; each run that is written is read back by show, explain on one of its listed weights, gradcheck
and inspect (text views for one run in five, JSON for the others). No command may raise, print a traceback,
take 30 s, or grow the process by 1 GB. BPCLI_FUZZ_N and BPCLI_FUZZ_SEED change the count and the seed.

Marked `fuzz`: the default `pytest` leaves it out; `.ci/run` runs it (`pytest -m fuzz`) beside the main suite,
on the second core.
"""

from __future__ import annotations

import json
import os
import random
import resource
import signal
import string
import tempfile
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from bpcli.nn.activations import ACTIVATIONS
from bpcli.cli.app import app
from bpcli.data.dataset import GENERATORS
from bpcli.nn.losses import LOSSES
from tests.conftest import rerecord

N_CONFIGS = int(os.environ.get("BPCLI_FUZZ_N", "1000"))
SEED = int(os.environ.get("BPCLI_FUZZ_SEED", "20251130"))
SECONDS = 30

NASTY = [None, True, -1, 0, 1.0e+308, -1.0e+308, 10**400, float("nan"), float("inf"), "", "x", "1e999", "~",
         [], {}, [[1, 2], [3]], {"a": 1}, "\x1b[2J", "[red]markup[/]", 2**63, 1_000_001, 0.5, "w11", "ba1", "α"]
ODD_NAMES = ["x1", "sepal length", "[v1]", "α", "a\x1b[2Jb", "名", "b_A1", "o1", "x" * 60, "tab\there"]
SYMBOLS = ["w", "v", "a", "ww", "ba", "b", "α", "W", "o", "x", "q", "zz", "e"]
LETTERS = ["A", "B", "Z", "a", "Α", "AB"]


def _rows(rng: random.Random, m: int, n: int, scale: float = 1.0) -> list[list[float]]:
    return [[round(rng.gauss(0, scale), 3) for _ in range(n)] for _ in range(m)]


def _targets(rng: random.Random, m: int, n_out: int, loss: str, out_act: str) -> list[list[float]]:
    if loss in ("cross_entropy",) or (out_act == "softmax" and rng.random() < 0.8):
        return [[1.0 if j == k else 0.0 for j in range(n_out)] for k in (rng.randrange(n_out) for _ in range(m))]
    if loss == "binary_cross_entropy" or rng.random() < 0.3:
        return [[float(rng.randrange(2)) for _ in range(n_out)] for _ in range(m)]
    return _rows(rng, m, n_out)


def make_config(rng: random.Random) -> tuple[dict, str | None]:
    """A config built from random parts (valid most of the time) and the text of its CSV file, if any."""
    source = rng.choice(["generator", "generator", "inline", "inline", "csv"])
    m = rng.randint(2, 12)
    n_in = rng.choice([1, 2, 2, 3, 10])
    names = None if rng.random() < 0.7 else rng.sample(ODD_NAMES, k=min(n_in, len(ODD_NAMES)))
    n_in = len(names) if names else n_in
    loss = rng.choice(list(LOSSES))
    csv_text, classes = None, 0
    if source == "generator":
        gen = rng.choice(GENERATORS)
        n_in, names = (1 if gen == "sine" else 2), None
        data: dict = {"generator": gen, "samples": rng.randint(4, 24)}
        if gen in ("spirals", "blobs"):
            classes = data["classes"] = rng.choice([2, 3])
        elif gen != "sine":
            classes = 2
        if rng.random() < 0.3:
            data["noise"] = rng.choice([0.0, 0.2])
    elif source == "csv":
        labels = rng.choice([["no", "yes"], ["a", "b", "c"], ["l\x1b[31m", "ok"], ["1", "2"]])
        classes = len(labels)
        header = list(names or [f"x{k + 1}" for k in range(n_in)]) + ["label"]
        header = [h.replace(",", " ") for h in header]
        names = header[:-1] if names else None
        rows = [[str(round(rng.gauss(0, 1), 3)) for _ in range(n_in)] + [labels[k % len(labels)]] for k in range(m)]
        csv_text = "\n".join(",".join(r) for r in [header] + rows) + "\n"
        data = {"csv": "data.csv", "target": "label"}
    if classes:  # one output for two classes (0/1), else one per class
        n_out = 1 if classes == 2 and rng.random() < 0.6 else classes
        out_act = "softmax" if n_out > 1 and rng.random() < 0.7 else "sigmoid"
        if loss in ("cross_entropy", "binary_cross_entropy"):
            loss = "binary_cross_entropy" if n_out == 1 else rng.choice(["cross_entropy", "binary_cross_entropy"])
    else:
        n_out = rng.choice([1, 1, 2, 3])
        out_act = {"cross_entropy": "softmax", "binary_cross_entropy": "sigmoid"}.get(loss, rng.choice(list(ACTIVATIONS)))
        if out_act == "softmax" and n_out < 2:
            n_out = 2
    if source == "inline":
        data = {"x": _rows(rng, m, n_in, rng.choice([1.0, 1.0, 1e3])), "y": _targets(rng, m, n_out, loss, out_act)}
    n_layers = rng.choice([1, 2, 2, 2, 3, 3, 4])
    sizes = [rng.choice([1, 1, 2, 2, 3, 4, 5, 10, 11]) for _ in range(n_layers - 1)] + [n_out]
    layers = []
    for i, size in enumerate(sizes):
        last = i == n_layers - 1
        act = out_act if last else rng.choice([a for a in ACTIVATIONS if a != "softmax"])
        lay: dict = {"size": size, "activation": act}
        if act == "leaky_relu" and rng.random() < 0.5:
            lay["activation"] = {"name": act, "slope": rng.choice([0.01, 0.3])}
        if act == "elu" and rng.random() < 0.5:
            lay["activation"] = {"name": act, "alpha": rng.choice([0.5, 1.0])}
        if rng.random() < 0.3:
            lay["bias"] = rng.choice(["on", "off", "frozen", "shared"])
        if rng.random() < 0.06:
            lay["symbol"] = rng.choice(SYMBOLS)
        if rng.random() < 0.03:
            lay["letter"] = rng.choice(LETTERS)
        layers.append(lay)
    doc: dict = {"name": rng.choice(["net", "fuzz", "n\x1b]0;t\x07", "with space", "../up", "x" * 90])}
    if rng.random() < 0.25:
        data["validation"] = rng.choice([0.25, 0.5])
    if rng.random() < 0.25:
        data["standardize"] = True
    doc["inputs"] = names if names else n_in
    doc["layers"] = layers
    doc["loss"] = {"name": "huber", "delta": rng.choice([0.5, 2.0])} if loss == "huber" and rng.random() < 0.5 else loss
    init: dict = {"scheme": rng.choice(["xavier_uniform", "xavier_normal", "he_uniform", "he_normal", "uniform",
                                        "normal", "zeros", "glorot_uniform"]), "seed": rng.randrange(100)}
    if rng.random() < 0.2:
        init["values"] = {rng.choice(["w11", "v1", "b_A1", "ba1", "w1_10", "w[1,2]", "zz", "u1"]): rng.choice([0.5, 5.0])}
    if rng.random() < 0.1:
        prev = n_in
        for lay in layers:
            lay["weights"] = _rows(rng, lay["size"], prev, rng.choice([0.5, 1e150]))
            prev = lay["size"]
    doc["init"] = init
    doc["data"] = data
    opt = rng.choice(["gd", "sgd", "momentum", "adam"])
    train: dict = {"optimizer": opt, "lr": 10 ** rng.uniform(-3, 4), "epochs": rng.choice([1, 2])}
    if opt != "gd" and rng.random() < 0.7:
        train["batch_size"] = rng.choice([1, 2, "full", 3])
    if rng.random() < 0.15:
        train["early_stopping"] = {"patience": 1}
    if rng.random() < 0.15:
        train["dtype"] = "float32"
    if rng.random() < 0.1:
        train["weight_decay"] = 0.01
    doc["train"] = train
    return doc, csv_text


def _leaves(node, path=()):
    yield path, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaves(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _leaves(v, path + (i,))


def mutate(rng: random.Random, doc: dict) -> None:
    """One structural change: a value replaced by a nasty one, a key dropped, misspelt or added."""
    path = rng.choice([p for p, _ in _leaves(doc) if p])
    parent = doc
    for p in path[:-1]:
        parent = parent[p]
    key = path[-1]
    action = rng.choice(["replace", "replace", "replace", "delete", "typo", "unknown"])
    if action == "replace":
        parent[key] = rng.choice(NASTY)
    elif action == "delete":
        del parent[key]
    elif action == "typo" and isinstance(key, str):
        parent[key[:-1] + key[-1].upper()] = parent.pop(key)
    elif action == "unknown" and isinstance(parent, dict):
        parent["".join(rng.choices(string.ascii_lowercase, k=5))] = rng.choice(NASTY)


def config_text(rng: random.Random) -> tuple[bytes, str | None, str]:
    """(config file bytes, CSV text or None, what was done to it)."""
    doc, csv_text = make_config(rng)
    kind = "built"
    if rng.random() < 0.3:
        for _ in range(rng.randint(1, 3)):
            mutate(rng, doc)
        kind = "mutated"
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=rng.random() < 0.5).encode()
    if rng.random() < 0.06:
        at = rng.randrange(len(text) + 1)
        text = text[:at] if rng.random() < 0.5 else text[:at] + bytes(rng.randrange(256) for _ in range(3)) + text[at:]
        kind = "raw"
    return text, csv_text, kind


class Hang(Exception):
    pass


@contextmanager
def _deadline(seconds: int):
    def alarm(signum, frame):
        raise Hang(f"no answer in {seconds} s")
    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


RUNNER = CliRunner()
TIMES: Counter = Counter()


def _invoke(args: list[str], what: str):
    """Run one command in-process; fail on an exception, a traceback or a hang."""
    t0 = time.perf_counter()
    with _deadline(SECONDS):
        result = RUNNER.invoke(app, args, catch_exceptions=True)
    seconds = time.perf_counter() - t0
    TIMES[args[0] + (" json" if "--json" in args else "")] += seconds
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{' '.join(args)}: {type(result.exception).__name__}: {result.exception}\n{what}")
    assert "Traceback" not in result.output, f"{' '.join(args)}\n{result.output[-2000:]}\n{what}"
    assert seconds < SECONDS
    return result


def _readers(rng: random.Random, run: str, what: str, stats: Counter) -> None:
    text = rng.random() < 0.2
    fmt = [] if text else ["--json"]
    shown = _invoke(["show", run, "--json"], what)
    assert 0 == shown.exit_code, shown.output + what
    names = [p["name"] for p in json.loads(shown.stdout)["parameters"]]
    if text:
        assert 0 == _invoke(["show", run], what).exit_code
    name = rng.choice(names)
    res = _invoke(["explain", run, "-w", name] + fmt, what)
    if res.exit_code == 2 and "no training step starts from that pair" in res.output:
        # early stopping put back an earlier epoch's weights beside the last epoch's optimiser state: explain
        # refuses that mix and names the --epoch values that work; the best epoch's must then explain
        best = int(res.output.split("holds the weights of epoch ")[1].split()[0])
        res = _invoke(["explain", run, "--epoch", str(best), "-w", name] + fmt, what)
    assert res.exit_code in (0, 1, 3) and "unknown parameter" not in res.output, res.output + what
    res = _invoke(["gradcheck", run] + fmt, what)
    assert res.exit_code in (0, 1, 3), res.output + what
    res = _invoke(["inspect", run] + fmt, what)
    assert 0 == res.exit_code, res.output + what
    res = _invoke(["predict", run] + fmt, what)  # the run's own data: CSV (piped) or JSON
    assert 0 == res.exit_code, res.output + what
    res = _invoke(["evaluate", run, "--part", "all"] + fmt, what)
    assert 0 == res.exit_code, res.output + what
    stats["runs read"] += 1
    stats["text views" if text else "json views"] += 1


@pytest.mark.fuzz
def test_a_thousand_configs_through_every_command():
    rng = random.Random(SEED)
    stats: Counter = Counter()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    old = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="bpcli-fuzz-", dir=base) as d:
        os.chdir(d)
        try:
            for i in range(N_CONFIGS):
                text, csv_text, kind = config_text(rng)
                folder = Path(d) / f"c{i}"
                folder.mkdir()
                (folder / "cfg.yaml").write_bytes(text)
                if csv_text is not None:
                    (folder / "data.csv").write_text(csv_text)
                what = f"\n--- config {i} (seed {SEED}, {kind}) ---\n{text[:3000]!r}"
                run = str(folder / "run")
                args = ["train", str(folder / "cfg.yaml"), "-q", "--out", run] + (["--json"] if i % 3 == 0 else [])
                result = _invoke(args, what)
                stats[kind] += 1
                stats[f"train exit {result.exit_code}"] += 1
                assert result.exit_code in (0, 1, 2), result.output + what
                if result.exit_code == 2:
                    assert [ln for ln in result.stderr.splitlines() if ln.startswith("error:")], result.output + what
                    assert not Path(run).exists() or not any(Path(run).iterdir()), what
                    continue
                _readers(rng, run, what, stats)
        finally:
            os.chdir(old)
    seconds = time.perf_counter() - t0
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    print(f"\nfuzz: {N_CONFIGS} configs in {seconds:.1f} s, peak RSS grew {grown_mb:.0f} MB; {dict(stats)}")
    print("seconds per command:", {k: round(v, 1) for k, v in TIMES.most_common()})
    assert grown_mb < 1024
    assert N_CONFIGS == stats["built"] + stats["mutated"] + stats["raw"]
    if N_CONFIGS >= 1000:  # the generator must keep producing both kinds: runs to read and configs to refuse
        assert stats["runs read"] >= N_CONFIGS // 4, stats
        assert stats["train exit 2"] >= N_CONFIGS // 10, stats


# --- round three: the surfaces added since: predict, evaluate, import, diagnose, the run-reading commands, outputs ---
#
# Each case is one command on one hostile input, in-process, under the same rules as above: no exception, no
# traceback, an answer within SECONDS, exit 0, 1 or 2 (2 with an "error:" line), and the process's peak memory
# grows by less than GROWTH_MB over a whole test. Cases marked with _fails_elsewhere failed until the fix named
# in their reason (a FIFO or /dev/zero names.json, a FIFO run.json, outputs renamed over a device, a symlink, an
# existing file or the input, a deep names.json, a long CSV answers field) was merged; they all run now.

GROWTH_MB = 1024
READS = "output writers and readers branch (io-files): one way to read any file"
WRITES = "output writers and readers branch (io-files): one way to write an output file"


def _fails_elsewhere(reason: str, run: bool = True):
    """Was an xfail while the fix lived on another branch; every such fix is merged, so each case must pass."""
    return ()


CLS = ("inputs: [x1, x2]\nlayers: [{size: 3, activation: tanh}, {size: 1, activation: sigmoid}]\n"
       "loss: binary_cross_entropy\ndata: {csv: data.csv, target: y, validation: 0.25, standardize: true}\n"
       "train: {epochs: 4, optimizer: adam, lr: 0.1, snapshots: {every: 1}}\n")
CLS_CSV = "x1,x2,y\n" + "".join(f"{(k * 7) % 5 - 2},{(k * 3) % 4 - 1.5},{'yes' if k % 3 else 'no'}\n" for k in range(16))


@pytest.fixture(scope="module")
def arena(tmp_path_factory) -> Path:
    """A folder with a trained classifier (runs/cls, from data.csv with columns x1, x2, y), a second run
    (runs/other), a numpy state file for import (state.npz, 2-3-1) and the config."""
    d = tmp_path_factory.mktemp("arena")
    (d / "data.csv").write_text(CLS_CSV)
    (d / "cls.yaml").write_text(CLS)
    (d / "runs").mkdir()
    for name, epochs in (("cls", "4"), ("other", "3")):
        r = RUNNER.invoke(app, ["train", str(d / "cls.yaml"), "-q", "--epochs", epochs, "--out", str(d / "runs" / name)])
        assert r.exit_code == 0, r.output
    import numpy as np
    np.savez(d / "state.npz", **{"0.weight": np.ones((3, 2)), "0.bias": np.zeros(3), "2.weight": np.ones((1, 3)),
                                 "2.bias": np.zeros(1)})
    return d


@contextmanager
def _bounded_memory():
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    yield
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    assert grown_mb < GROWTH_MB, f"peak RSS grew {grown_mb:.0f} MB"


def _answered(args: list[str], what: str = "", codes=(0, 1, 2)):
    """_invoke, then: an allowed exit code, and an error line on stderr for exit 2."""
    res = _invoke(args, what)
    assert res.exit_code in codes, f"{' '.join(args)}: exit {res.exit_code}\n{res.output[-2000:]}"
    if res.exit_code == 2:
        assert [ln for ln in res.stderr.splitlines() if ln.startswith("error:")], res.output[-2000:]
    return res


HOSTILE_CSV = {
    "wrong-columns": b"p,q\n1,2\n",
    "one-column-short": b"x1\n1\n",
    "extra-columns": b"x1,x2,y,z\n1,2,yes,3\n",
    "nan-inf": b"x1,x2,y\nnan,1,yes\ninf,-inf,no\n",
    "huge": b"x1,x2,y\n1e400,1,yes\n1" + b"0" * 400 + b",2,no\n-1e308,1e308,yes\n",
    "not-utf8-body": b"x1,x2,y\n\xff\xfe,1,yes\n",
    "not-utf8-header": b"\xffx1,x2,y\n1,2,yes\n",
    "bom": b"\xef\xbb\xbfx1,x2,y\n1,2,yes\n",
    "utf16": "x1,x2,y\n1,2,yes\n".encode("utf-16"),
    "crlf": b"x1,x2,y\r\n1,2,yes\r\n3,4,no\r\n",
    "quoted": b'"x1","x2","y"\n"1","2","yes"\n"3,5",4,no\n',
    "quoted-newline": b'x1,x2,y\n"1\n2",3,yes\n',
    "unclosed-quote": b'x1,x2,y\n"1,2,yes\n',
    "empty": b"",
    "header-only": b"x1,x2,y\n",
    "blank-lines": b"x1,x2,y\n\n1,2,yes\n\n",
    "nul": b"x1,x2,y\n1\x00,2,yes\n",
    "ragged": b"x1,x2,y\n1\n1,2,yes,4\n",
    "unknown-label": b"x1,x2,y\n1,2,maybe\n",
    "duplicate-header": b"x1,x1,y\n1,2,yes\n",
    "long-field": b"x1,x2,y\n" + b"1" * 200_000 + b",2,yes\n",
    "binary": bytes(range(256)) * 4,
}
SPECIAL_PATHS = ["fifo", "/dev/zero", "folder", "missing.csv", "loop"]


def _specials(d: Path) -> None:
    if not (d / "fifo").exists():
        os.mkfifo(d / "fifo")
        (d / "folder").mkdir()
        os.symlink("loop", d / "loop")


def _csv_commands(run: str, path: str, k: str) -> list[list[str]]:
    return [["predict", run, path], ["predict", run, path, "--json"], ["evaluate", run, path, "--json"],
            ["import", "state.npz", "--arch", "2-3-1", "--activations", "tanh,sigmoid", "--loss",
             "binary_cross_entropy", "-o", f"imported-{k}.yaml", "--data", path]]


@pytest.mark.fuzz
@pytest.mark.parametrize("name", list(HOSTILE_CSV) + SPECIAL_PATHS)
def test_hostile_csvs_for_predict_evaluate_and_import(arena, tmp_path, name, monkeypatch):
    monkeypatch.chdir(arena)
    _specials(arena)
    path = name
    if name in HOSTILE_CSV:
        path = str(tmp_path / f"{name}.csv")
        Path(path).write_bytes(HOSTILE_CSV[name])
    with _bounded_memory():
        for args in _csv_commands(str(arena / "runs" / "cls"), path, name):
            _answered(args, f"csv {name}")


@pytest.mark.fuzz
def test_a_million_rows_through_predict_and_evaluate(arena, tmp_path, monkeypatch):
    """A million rows: bounded by the processor time they take (SECONDS), the wall clock given twice that (on a
    busy 2-core machine predict took 22 s of wall time for 7.5 s of processor time)."""
    monkeypatch.chdir(arena)
    limit = SECONDS
    monkeypatch.setitem(globals(), "SECONDS", 2 * limit)
    big = tmp_path / "big.csv"
    with open(big, "w") as fh:
        fh.write("x1,x2,y\n")
        fh.writelines(f"{k % 7 - 3},{k % 5 - 2},{'yes' if k % 2 else 'no'}\n" for k in range(1_000_000))
    cpu = lambda: (lambda u: u.ru_utime + u.ru_stime)(resource.getrusage(resource.RUSAGE_SELF))
    with _bounded_memory():
        for args in (["predict", "runs/cls", str(big), "--out", str(tmp_path / "p.csv")],
                     ["evaluate", "runs/cls", str(big), "--json"]):
            t0 = cpu()
            assert _answered(args).exit_code == 0
            assert cpu() - t0 < limit, f"{args[0]}: {cpu() - t0:.1f} s of processor time"
    assert sum(1 for _ in open(tmp_path / "p.csv")) == 1_000_001


def _npz_bytes(arrays: dict) -> bytes:
    import io
    import numpy as np
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _npz_cases() -> dict:
    import io
    import zipfile
    import numpy as np
    ok = {"0.weight": np.ones((3, 2)), "0.bias": np.zeros(3), "2.weight": np.ones((1, 3)), "2.bias": np.zeros(1)}
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:  # 400 MB of zeros in ~400 KB
        head = b"\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, 'shape': (50000000,), }"
        zf.writestr("0.weight.npy", head + b" " * (127 - len(head)) + b"\n" + bytes(400_000_000))
    return {
        "not-a-zip": b"hello",
        "truncated": _npz_bytes(ok)[:200],
        "empty": _npz_bytes({}),
        "pickled": _npz_bytes({**ok, "0.weight": np.array([{"a": 1}], dtype=object)}),
        "wrong-shapes": _npz_bytes({**ok, "0.weight": np.ones((2, 3))}),
        "nan": _npz_bytes({**ok, "0.weight": np.full((3, 2), np.nan)}),
        "huge-values": _npz_bytes({**ok, "0.weight": np.full((3, 2), 1e308)}),
        "strings": _npz_bytes({**ok, "0.weight": np.array([["a", "b"]] * 3)}),
        "scalar": _npz_bytes({**ok, "0.bias": np.float64(1.0)}),
        "extra": _npz_bytes({**ok, "9.weight": np.ones((1, 1))}),
        "complex": _npz_bytes({**ok, "0.weight": np.ones((3, 2)) * 1j}),
        "bomb": bomb.getvalue(),
    }


@pytest.mark.fuzz
@pytest.mark.parametrize("name", ["not-a-zip", "truncated", "empty", "pickled", "wrong-shapes", "nan", "huge-values",
                                  "strings", "scalar", "extra", "complex", "bomb"])
def test_hostile_state_files_for_import(tmp_path, name, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "state.npz").write_bytes(_npz_cases()[name])
    with _bounded_memory():
        _answered(["import", "state.npz", "--arch", "2-3-1", "--activations", "tanh,sigmoid", "-o", "out.yaml",
                   "--data", "xor"], f"npz {name}")


NAMES_JSON = {
    "not-json": b"{", "not-utf8": b"\xff\xfe{}", "list": b"[]", "arrays-number": b'{"arrays": 5}',
    "arrays-list": b'{"arrays": [1, 2]}', "odd-modes": b'{"arrays": {"0.bias": "weird", "2.bias": {"bias": 7}}}',
    "deep": b"[" * 100_000 + b"]" * 100_000, "huge-number": b'{"arrays": {"0.bias": 1' + b"0" * 5000 + b"}}",
    "big": b'{"x": "' + b"a" * 20_000_000 + b'"}',
}


@pytest.mark.fuzz
@pytest.mark.parametrize("name", [pytest.param(n, marks=_fails_elsewhere(f"{READS}: JSON depth bounded (a RecursionError)"))
                                  if n == "deep" else n for n in NAMES_JSON] + [
    pytest.param("fifo", marks=_fails_elsewhere(f"{READS}: a FIFO names.json blocks", run=False)),
    pytest.param("/dev/zero", marks=_fails_elsewhere(f"{READS}: /dev/zero as names.json is read until memory runs "
                                                     "out", run=False)),
    "folder"])
def test_hostile_names_json_beside_an_imported_state(arena, tmp_path, name, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "state.npz").write_bytes((arena / "state.npz").read_bytes())
    target = tmp_path / "names.json"
    if name in NAMES_JSON:
        target.write_bytes(NAMES_JSON[name])
    elif name == "fifo":
        os.mkfifo(target)
    elif name == "folder":
        target.mkdir()
    else:
        os.symlink(name, target)
    with _bounded_memory():
        _answered(["import", "state.npz", "--arch", "2-3-1", "--activations", "tanh,sigmoid", "-o", "out.yaml",
                   "--data", "xor"], f"names.json {name}")


ANSWERS = {
    "empty.yaml": b"", "list.yaml": b"- 1\n- 2\n", "scalar.yaml": b"3\n", "not-utf8.yaml": b"v1: \xff\n",
    "nan.yaml": b"v1: .nan\nw11: .inf\n", "huge.yaml": b"v1: 1" + b"0" * 400 + b"\n", "unknown.yaml": b"zz9: 1\n",
    "text.yaml": b"v1: one\n", "nested.yaml": b"v1: {a: [1, 2]}\n", "alias-bomb.yaml": (
        b"a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
        b"e: [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n"),
    "duplicate.yaml": b"v1: 0.1\nv1: 0.2\n", "tagged.yaml": b"v1: !!python/object/apply:os.system [echo]\n",
    "deep.json": b"[" * 100_000 + b"]" * 100_000, "object.json": b'{"v1": 1e400, "w11": -0}',
    "rows.csv": b"v1,0.1\nw11\n,,\n", "bom.csv": b"\xef\xbb\xbfv1,0.5\r\n", "quoted.csv": b'"v1","0.1"\n',
    "long-field.csv": b"v1," + b"1" * 200_000 + b"\n", "binary.csv": bytes(range(256)),
    "noext": b"v1: 0.1\n", "big.yaml": b"# " + b"a" * 6_000_000 + b"\n",
}
ANSWERS_ELSEWHERE = {"long-field.csv": "diagnose branch (eval-diag): a CSV answers field over 131,072 characters"}


@pytest.mark.fuzz
@pytest.mark.parametrize("name", [pytest.param(n, marks=_fails_elsewhere(ANSWERS_ELSEWHERE[n])
                                               if n in ANSWERS_ELSEWHERE else ()) for n in ANSWERS]
                         + ["fifo.yaml", "/dev/zero", "folder.yaml"])
def test_hostile_answers_for_diagnose(arena, tmp_path, name, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = str(tmp_path / name)
    if name in ANSWERS:
        Path(path).write_bytes(ANSWERS[name])
    elif name == "fifo.yaml":
        os.mkfifo(path)
    elif name == "folder.yaml":
        os.mkdir(path)
    else:
        path = name
    with _bounded_memory():
        _answered(["diagnose", path], f"answers {name}")
        _answered(["diagnose", str(arena / "runs" / "cls"), path, "--json"], f"answers {name}")


def _history_rows(run: Path, keep: list[int]) -> None:
    import hashlib
    lines = (run / "history.csv").read_bytes().split(b"\n")
    new = b"".join(lines[i] + b"\n" for i in keep)
    (run / "history.csv").write_bytes(new)
    m = json.loads((run / "run.json").read_text())
    rerecord(run, history={**m["history"], "bytes": len(new), "sha256": hashlib.sha256(new).hexdigest()},
              status="interrupted")


def _in_checkpoint(name: str, change):
    def tamper(run: Path) -> None:
        ck = run / json.loads((run / "run.json").read_text())["checkpoint"]
        (ck / name).write_bytes(change((ck / name).read_bytes()))
        rerecord(run, status="interrupted")  # interrupted: a resume would continue it
    return tamper


def _npz_without(key_prefix: str):
    def change(b: bytes) -> bytes:
        import io
        import numpy as np
        with np.load(io.BytesIO(b)) as z:
            return _npz_bytes({k: z[k] for k in z.files if not k.startswith(key_prefix)})
    return change


TAMPERED = {  # each must be refused by every command that loads the run: one error line, exit 2
    "metric-10^400": _in_checkpoint("metrics.json", lambda b: b.replace(b'"loss":', b'"loss": 1' + b"0" * 400
                                                                        + b', "x":', 1)),
    "metric-1e400": _in_checkpoint("metrics.json", lambda b: b.replace(b'"loss":', b'"loss": 1e400, "x":', 1)),
    "metrics-list": _in_checkpoint("metrics.json", lambda b: b"[]"),
    "scaling-huge": _in_checkpoint("scaling.json", lambda b: b'{"mean": [1e308, 0], "std": [1e-308, 1]}'),
    "scaling-shifted": _in_checkpoint("scaling.json", lambda b: b'{"mean": [0.5, 0.5], "std": [1, 1]}'),
    "state-emptied": _in_checkpoint("state.npz", lambda b: _npz_bytes({})),
    "state-no-v": _in_checkpoint("state.npz", _npz_without("v:")),
    "weights-nan": _in_checkpoint("weights.npz", lambda b: _npz_bytes({"A.W": __import__("numpy").full((3, 2), float(
        "nan")), "A.b": __import__("numpy").zeros(3), "B.W": __import__("numpy").zeros((1, 3)),
        "B.b": __import__("numpy").zeros(1)})),
    "sample-cut": _in_checkpoint("history-sample.json", lambda b: json.dumps(json.loads(b)[:-1]).encode()),
    "config-other-size": _in_checkpoint("config.yaml", lambda b: b.replace(b"size: 3", b"size: 4", 1)),
    "history-row-gone": lambda run: _history_rows(run, [0, 2, 3, 4]),
    "history-glued": lambda run: _history_rows(run, [0, 1, 2, 3, 4, 3, 4]),
    "history-short": lambda run: _history_rows(run, [0, 1, 2]),
    "epoch-negative": lambda run: rerecord(run, epoch=-1),
    "checkpoint-escape": lambda run: rerecord(run, checkpoint="../cls"),
    "status-odd": lambda run: rerecord(run, status="[red]done"),
    "rng-odd": lambda run: rerecord(run, rng_state={"bit_generator": "PCG64", "state": {"state": 1, "inc": 2}}),
}


@pytest.mark.fuzz
@pytest.mark.parametrize("name", list(TAMPERED))
def test_tampered_run_folders_are_refused_by_every_command(arena, tmp_path, name):
    import shutil
    run = tmp_path / "runs" / "t"
    shutil.copytree(arena / "runs" / "cls", run)
    TAMPERED[name](run)
    good = str(arena / "runs" / "other")
    # show, plot and the rest read run.json's count of history.csv's rows, not the rows: only a resume reads them
    only_resume = name.startswith("history-")
    with _bounded_memory():
        listed = _answered(["runs", str(tmp_path / "runs"), "--json"], name, codes=(0,))
        [row] = json.loads(listed.stdout)["runs"]
        if row["ok"]:  # runs reads run.json and metrics.json alone: the rest is for the commands that load it
            assert name not in ("metric-10^400", "metric-1e400", "metrics-list", "epoch-negative",
                                "checkpoint-escape", "status-odd"), row
        for args in (["show", str(run)], ["compare", good, str(run)], ["step", str(run), "--json"],
                     ["animate", str(run), "--out", str(tmp_path / "a.gif")],
                     ["plot", str(run), "--out", str(tmp_path / "plots")], ["train", "--resume", str(run), "-q"],
                     ["predict", str(run), str(arena / "data.csv")]):
            if only_resume and args[0] != "train":
                _answered(args, name)
                continue
            res = _answered(args, name, codes=(2,))
            assert [ln for ln in res.stderr.splitlines() if ln.startswith("error:")] == \
                [ln for ln in res.stderr.splitlines() if not ln.startswith(("plot:", "animate:"))], res.stderr
        if not only_resume:
            assert not (tmp_path / "a.gif").exists() and not (tmp_path / "plots").exists()


def _foreign(kind: str, d: Path) -> Path:
    f = d / "runs" / "f"
    f.parent.mkdir(exist_ok=True)
    if kind == "file":
        f.write_text("not a run\n")
    elif kind == "symlink-loop":
        os.symlink("f", f)
    else:
        f.mkdir()
        if kind == "random-files":
            (f / "notes.txt").write_text("hello")
            (f / "epoch-3").mkdir()
        elif kind == "manifest-folder":
            (f / "run.json").mkdir()
        elif kind == "manifest-garbage":
            (f / "run.json").write_bytes(bytes(range(256)))
        elif kind == "manifest-fifo":
            os.mkfifo(f / "run.json")
        elif kind == "manifest-zero":
            os.symlink("/dev/zero", f / "run.json")
        elif kind == "format-1":
            (f / "train_state.json").write_text("{}")
    return f


FOREIGN_ELSEWHERE = {"manifest-fifo": f"{READS}: runs and latest block on a FIFO run.json"}


@pytest.mark.fuzz
@pytest.mark.parametrize("kind", [pytest.param(k, marks=_fails_elsewhere(FOREIGN_ELSEWHERE[k], run=False)
                                               if k in FOREIGN_ELSEWHERE else ())
                                  for k in ["empty", "file", "symlink-loop", "random-files", "manifest-folder",
                                            "manifest-garbage", "manifest-fifo", "manifest-zero", "format-1"]])
def test_foreign_folders_for_the_run_reading_commands(arena, tmp_path, kind, monkeypatch):
    f = _foreign(kind, tmp_path)
    monkeypatch.chdir(tmp_path)
    with _bounded_memory():
        _answered(["runs", str(tmp_path / "runs")], kind, codes=(0,))
        _answered(["show", "runs/latest"], kind, codes=(2,))
        for args in (["show", str(f)], ["compare", str(arena / "runs" / "cls"), str(f)], ["step", str(f)],
                     ["animate", str(f), "--out", "a.gif"], ["plot", str(f), "--out", "plots"],
                     ["train", "--resume", str(f), "-q"], ["inspect", str(f)]):
            _answered(args, kind, codes=(2,))


# every output option: (command line with {out} for the target, the suffix it needs, its own input to aim at or None)
OUTPUTS = {
    "predict --out": (["predict", "run", "data.csv", "--out", "{out}"], ".csv", "data.csv"),
    "exercise --config-out": (["exercise", "--config-out", "{out}", "--seed", "3"], ".yaml", None),
    "import -o": (["import", "state.npz", "--arch", "2-3-1", "--activations", "tanh,sigmoid", "-o", "{out}",
                   "--data", "xor"], ".yaml", "state.npz"),
    "import -o --force": (["import", "state.npz", "--arch", "2-3-1", "--activations", "tanh,sigmoid", "-o", "{out}",
                           "--data", "xor", "--force"], ".yaml", "state.npz"),
    "export --out": (["export", "run", "--out", "{out}"], "", "run"),
    "train --out": (["train", "cls.yaml", "-q", "--epochs", "2", "--out", "{out}"], "", "cls.yaml"),
    "step --out": (["step", "run", "--out", "{out}"], "", "run"),
    "animate --out": (["animate", "run", "--out", "{out}"], ".gif", None),
    "plot --out": (["plot", "run", "--out", "{out}", "--only", "loss"], "", None),  # plots beside the run: by design
    "compare --out": (["compare", "run", "run2", "--out", "{out}"], ".png", None),
    "show --out": (["show", "run", "--out", "{out}"], ".dot", None),
}
# writes a temporary file and renames it over the target: replaces a device, a symlink, an existing file or its input
RENAMES_OVER = {"predict --out", "exercise --config-out", "import -o --force", "animate --out", "compare --out",
                "show --out"}
OUTPUT_ELSEWHERE = {(c, t): WRITES for c in RENAMES_OVER for t in ("device", "symlink", "existing", "input")}


def _snapshot(p: Path):
    """What a target is: its kind and, for a regular file, its bytes (for a folder, its file names)."""
    import stat as st
    if p.is_symlink():
        return ("symlink", os.readlink(p))
    if not p.exists():
        return ("missing",)
    mode = p.stat().st_mode
    if st.S_ISCHR(mode):
        return ("device", p.stat().st_rdev)
    if p.is_dir():
        return ("folder", sorted(x.name for x in p.rglob("*")))
    return ("file", p.read_bytes())


def _output_cases():
    for cmd, (_, suffix, own) in OUTPUTS.items():
        for target in ("device", "symlink", "existing", "input"):
            if target == "input" and own is None:
                continue
            if target == "existing" and "--force" in cmd:
                continue  # the replace option given: replacing an existing file is what was asked
            marks = _fails_elsewhere(OUTPUT_ELSEWHERE[(cmd, target)]) if (cmd, target) in OUTPUT_ELSEWHERE else ()
            yield pytest.param(cmd, target, marks=marks, id=f"{cmd}-{target}")


@pytest.mark.fuzz
@pytest.mark.parametrize("cmd,target", list(_output_cases()))
def test_every_output_option_spares_a_device_a_symlink_an_existing_file_and_its_input(arena, tmp_path, cmd,
                                                                                      target, monkeypatch):
    import shutil
    import stat as st
    args, suffix, own = OUTPUTS[cmd]
    monkeypatch.chdir(tmp_path)
    shutil.copytree(arena / "runs" / "cls", "run")
    shutil.copytree(arena / "runs" / "other", "run2")
    for name in ("data.csv", "cls.yaml", "state.npz"):
        shutil.copy(arena / name, name)
    Path("precious.txt").write_text("the user's own file\n")
    out = Path(f"target{suffix}")
    if target == "device":
        if os.geteuid() != 0:
            pytest.skip("a private device node needs root (mknod)")
        os.mknod(out, st.S_IFCHR | 0o666, os.makedev(1, 3))  # this folder's own /dev/null
    elif target == "symlink":
        os.symlink("precious.txt", out)
    elif target == "existing":
        out.write_text("the user's own file\n")
    else:
        out = Path(own)
    before, precious = _snapshot(out), _snapshot(Path("precious.txt"))
    with _bounded_memory():
        res = _answered([a.replace("{out}", str(out)) for a in args], f"{cmd} onto {target}")
    after = _snapshot(out)
    if target == "device":
        assert after == before, f"{cmd}: the device node became {after[0]}"
    elif target == "symlink":
        assert after == before, f"{cmd}: the symlink became {after[0]}"
        if res.exit_code != 0:
            assert _snapshot(Path("precious.txt")) == precious
    else:
        assert after == before, f"{cmd}: {target} {out} was changed (exit {res.exit_code})"
