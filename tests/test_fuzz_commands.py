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

from bpcli.activations import ACTIVATIONS
from bpcli.cli import app
from bpcli.data import GENERATORS
from bpcli.losses import LOSSES

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
