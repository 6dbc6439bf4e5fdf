"""bpcli's training speed against PyTorch CPU, scikit-learn and a plain numpy loop, side by side.

    PYTHONPATH=src python benchmarks/run.py            # every workload, 5 repeats (several minutes)
    PYTHONPATH=src python benchmarks/run.py --quick    # tiny sizes, one repeat (a few seconds)

Every workload runs each system on the same data, architecture, initial weights (scikit-learn: its own
initialisation), batch size, dtype and number of steps, interleaved (the order rotates every repeat).
It prints medians, paired ratios (the median over repeats of bpcli / peer, measured back to back),
the floor (pure Python for the tiny network, the matrix products alone otherwise) and bpcli's share of
it, and checks that every system learned: its loss after training is below its loss before (or below
chance for scikit-learn, which keeps no starting loss).  Peers that are not installed are skipped with
a note.  See BENCHMARKS.md for the method and the latest table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from bpcli.nn.activations import get_activation  # noqa: E402
from bpcli.nn.blas import DEFAULT_THREADS  # noqa: E402
from bpcli.schema import TrainConfig  # noqa: E402
from bpcli.data.dataset import Dataset  # noqa: E402
from bpcli.nn.engine import cost, forward  # noqa: E402
from bpcli.gradcheck.report import GradcheckOptions  # noqa: E402
from bpcli.gradcheck.check import check  # noqa: E402
from bpcli.gradcheck.numeric import naive_numeric_gradient  # noqa: E402
from bpcli.nn.losses import get_loss  # noqa: E402
from bpcli.nn.model import LETTERS, SYMBOLS, Layer, Network  # noqa: E402
from bpcli.training.fit import TrainState, fit  # noqa: E402

try:
    import torch
except ImportError:  # an optional peer
    torch = None
try:
    import sklearn
    from sklearn.neural_network import MLPClassifier
except ImportError:  # an optional peer
    sklearn = None


# --- workloads ----------------------------------------------------------------------------------


@dataclass
class Workload:
    name: str
    title: str
    sizes: list[int]  # n_in, hidden..., n_out
    hidden: str
    output: str  # sigmoid (squared error, half_sum) or softmax (cross-entropy)
    x: np.ndarray
    y: np.ndarray
    batch: int | None  # None: full batch (gd)
    epochs: int
    lr: float
    dtype: type
    unit: str  # "step" or "epoch"
    init: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    note: str = ""

    @property
    def m(self) -> int:
        return self.x.shape[0]

    @property
    def steps_per_epoch(self) -> int:
        return 1 if self.batch is None else math.ceil(self.m / self.batch)

    @property
    def units(self) -> int:
        return self.epochs * (self.steps_per_epoch if self.unit == "step" else 1)


def _init(sizes: list[int], seed: int, dtype) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        lim = math.sqrt(6.0 / (n_in + n_out))
        out.append((rng.uniform(-lim, lim, (n_out, n_in)).astype(dtype), np.zeros(n_out, dtype)))
    return out


def _teacher_data(m: int, n_in: int, classes: int, seed: int, dtype) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic inputs in [0, 1) with labels from a random linear teacher: learnable, not trivial."""
    rng = np.random.default_rng(seed)
    x = rng.random((m, n_in), dtype=np.float32 if dtype == np.float32 else np.float64)
    teacher = rng.normal(size=(n_in, classes)).astype(x.dtype)
    labels = np.argmax((x - 0.5) @ teacher, axis=1)
    return x, np.eye(classes, dtype=x.dtype)[labels]


def _digits(quick: bool) -> tuple[np.ndarray, np.ndarray, str]:
    if sklearn is not None and not quick:
        from sklearn.datasets import load_digits
        d = load_digits()
        return d.data / 16.0, np.eye(10)[d.target], "8x8 digits (sklearn.datasets.load_digits), 1797 samples"
    m = 256 if quick else 1797
    x, y = _teacher_data(m, 64, 10, 1, np.float64)
    return x, y, f"synthetic 64-feature data with 10 teacher classes, {m} samples (digits need scikit-learn)"


def workloads(quick: bool) -> list[Workload]:
    xor_x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float)
    xor_y = np.array([[0], [1], [1], [0]], float)
    dx, dy, dnote = _digits(quick)
    med_m = 512 if quick else 60000
    mx, my = _teacher_data(med_m, 784, 10, 2, np.float32)
    ws = [
        Workload("tiny", "tiny: 2-2-1 sigmoid, XOR, full-batch GD, per step", [2, 2, 1], "sigmoid", "sigmoid",
                 xor_x, xor_y, None, 200 if quick else 3000, 2.0, np.float64, "step",
                 note="the seed network; squared error 1/2 (y - y')^2"),
        Workload("small", "small: 64-64-10 tanh + softmax CE, batch 32, per epoch", [64, 64, 10], "tanh", "softmax",
                 dx, dy, 32, 1 if quick else 3, 0.1, np.float64, "epoch", note=dnote),
        Workload("medium64", "medium: 784-128-64-10 relu, batch 64, float32, per epoch", [784, 128, 64, 10], "relu",
                 "softmax", mx, my, 64, 1, 0.05, np.float32, "epoch",
                 note=f"synthetic, {med_m} samples, labels from a random linear teacher"),
        Workload("medium256", "medium: 784-128-64-10 relu, batch 256, float32, per epoch", [784, 128, 64, 10], "relu",
                 "softmax", mx, my, 256, 1, 0.05, np.float32, "epoch", note="the same data"),
    ]
    for i, w in enumerate(ws):
        w.init = _init(w.sizes, 10 + i, w.dtype)
    return ws


# --- systems: each returns train() (timed) and loss() (untimed) -----------------------------------


def _eval_part(w: Workload) -> tuple[np.ndarray, np.ndarray]:
    return w.x[:2000], w.y[:2000]


def sys_bpcli(w: Workload):
    loss_name = "squared_error" if w.output == "sigmoid" else "cross_entropy"
    layers, Ws, bs = [], [], []
    for i, (W, b) in enumerate(w.init):
        act = get_activation(w.output if i == len(w.init) - 1 else w.hidden)
        layers.append(Layer(LETTERS[i], W.shape[1], W.shape[0], act, "on", SYMBOLS[i]))
        Ws.append(W.copy())
        bs.append(b.copy())
    net = Network(tuple(f"x{j + 1}" for j in range(w.sizes[0])), tuple(layers), Ws, bs, get_loss(loss_name),
                  w.dtype)
    data = Dataset(w.x, w.y, net.input_names, tuple(f"y{k}" for k in range(w.sizes[-1])), None, "classification")
    settings = TrainConfig(optimizer="gd" if w.batch is None else "sgd", lr=w.lr, epochs=w.epochs,
                           batch_size=w.batch, seed=0, dtype=np.dtype(w.dtype).name)
    ex, ey = _eval_part(w)

    def train():
        for _ in fit(net, data, None, settings, TrainState()):
            pass

    def loss():
        return cost(net, forward(net, ex.astype(w.dtype))[1], ey.astype(w.dtype))

    return train, loss


def _np_act(name):
    if name == "sigmoid":
        return lambda z: 1.0 / (1.0 + np.exp(-z)), lambda a: a * (1.0 - a)
    if name == "tanh":
        return np.tanh, lambda a: 1.0 - a * a
    return (lambda z: np.maximum(z, 0)), (lambda a: (a > 0).astype(a.dtype))


def _timed(fn, clock: dict, key: str):
    """fn, adding its wall time to clock[key] (profile_step.py's split of the hand loop)."""
    def timed(*a):
        t0 = time.perf_counter()
        r = fn(*a)
        clock[key] = clock.get(key, 0.0) + time.perf_counter() - t0
        return r
    return timed


def sys_numpy(w: Workload, clock: dict | None = None):
    """The loop a person writes with numpy: allocating expressions, nothing preallocated. clock: when given,
    collects the time of the forward passes ('forward') and of whole steps ('step')."""
    Ws = [W.copy() for W, _ in w.init]
    bs = [b.copy() for _, b in w.init]
    f, fprime = _np_act(w.hidden)
    x, y, m, lr = w.x, w.y, w.m, w.dtype(w.lr)
    rng = np.random.default_rng(0)

    def fwd(xb):
        acts = [xb]
        for l, (W, b) in enumerate(zip(Ws, bs)):
            z = acts[-1] @ W.T + b
            if l < len(Ws) - 1:
                acts.append(f(z))
            elif w.output == "sigmoid":
                acts.append(1.0 / (1.0 + np.exp(-z)))
            else:
                e = np.exp(z - z.max(axis=1, keepdims=True))
                acts.append(e / e.sum(axis=1, keepdims=True))
        return acts

    def step(xb, yb):
        acts = fwd(xb)
        out = acts[-1]
        if w.output == "sigmoid":
            dz = (out - yb) * out * (1.0 - out) / len(xb)
        else:
            dz = (out - yb) / len(xb)
        for l in range(len(Ws) - 1, -1, -1):
            dW = dz.T @ acts[l]
            db = dz.sum(axis=0)
            if l > 0:
                dz = (dz @ Ws[l]) * fprime(acts[l])
            Ws[l] -= lr * dW
            bs[l] -= lr * db

    if clock is not None:
        fwd, step = _timed(fwd, clock, "forward"), _timed(step, clock, "step")

    def train():
        for _ in range(w.epochs):
            if w.batch is None:
                step(x, y)
                continue
            order = rng.permutation(m)
            for s in range(0, m, w.batch):
                idx = order[s:s + w.batch]
                step(x[idx], y[idx])

    def loss():
        ex, ey = _eval_part(w)
        out = fwd(ex)[-1]
        if w.output == "sigmoid":
            return float(np.mean(0.5 * np.sum((out - ey) ** 2, axis=1)))
        return float(np.mean(-np.sum(ey * np.log(np.maximum(out, 1e-30)), axis=1)))

    return train, loss


def sys_python(w: Workload):
    """Pure Python for the 2-2-1 network: the floor of per-step overhead without numpy calls."""
    (W1, b1), (W2, b2) = w.init
    W1, b1, W2, b2 = W1.tolist(), b1.tolist(), W2.tolist()[0], b2.tolist()[0]
    xs, ys = w.x.tolist(), [r[0] for r in w.y.tolist()]
    lr, m = w.lr, len(xs)
    exp = math.exp
    state = [W1, b1, W2, b2]

    def train():
        (w11, w12), (w21, w22) = state[0]
        c1, c2 = state[1]
        v1, v2 = state[2]
        cb = state[3]
        for _ in range(w.epochs):
            g11 = g12 = g21 = g22 = gc1 = gc2 = gv1 = gv2 = gcb = 0.0
            for (x1, x2), t in zip(xs, ys):
                o1 = 1.0 / (1.0 + exp(-(w11 * x1 + w12 * x2 + c1)))
                o2 = 1.0 / (1.0 + exp(-(w21 * x1 + w22 * x2 + c2)))
                yh = 1.0 / (1.0 + exp(-(v1 * o1 + v2 * o2 + cb)))
                d = (yh - t) * yh * (1.0 - yh)
                gv1 += d * o1
                gv2 += d * o2
                gcb += d
                d1 = d * v1 * o1 * (1.0 - o1)
                d2 = d * v2 * o2 * (1.0 - o2)
                g11 += d1 * x1
                g12 += d1 * x2
                gc1 += d1
                g21 += d2 * x1
                g22 += d2 * x2
                gc2 += d2
            s = lr / m
            w11 -= s * g11
            w12 -= s * g12
            w21 -= s * g21
            w22 -= s * g22
            c1 -= s * gc1
            c2 -= s * gc2
            v1 -= s * gv1
            v2 -= s * gv2
            cb -= s * gcb
        state[:] = [[[w11, w12], [w21, w22]], [c1, c2], [v1, v2], cb]

    def loss():
        (w11, w12), (w21, w22) = state[0]
        c1, c2 = state[1]
        v1, v2 = state[2]
        total = 0.0
        for (x1, x2), t in zip(xs, ys):
            o1 = 1.0 / (1.0 + exp(-(w11 * x1 + w12 * x2 + c1)))
            o2 = 1.0 / (1.0 + exp(-(w21 * x1 + w22 * x2 + c2)))
            yh = 1.0 / (1.0 + exp(-(v1 * o1 + v2 * o2 + state[3])))
            total += 0.5 * (yh - t) ** 2
        return total / m

    return train, loss


def sys_torch(w: Workload):
    tdt = torch.float32 if w.dtype == np.float32 else torch.float64
    mods = []
    for i, (W, b) in enumerate(w.init):
        lin = torch.nn.Linear(W.shape[1], W.shape[0]).to(tdt)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(W))
            lin.bias.copy_(torch.from_numpy(b))
        mods.append(lin)
        if i < len(w.init) - 1:
            mods.append({"sigmoid": torch.nn.Sigmoid, "tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}[w.hidden]())
    if w.output == "sigmoid":
        mods.append(torch.nn.Sigmoid())
    model = torch.nn.Sequential(*mods)
    opt = torch.optim.SGD(model.parameters(), lr=w.lr, momentum=0.0)
    x = torch.from_numpy(w.x)
    y = torch.from_numpy(w.y)
    labels = y.argmax(dim=1)
    m = w.m
    gen = torch.Generator().manual_seed(0)

    def lossfn(out, yb, lb):
        if w.output == "sigmoid":
            return 0.5 * ((out - yb) ** 2).sum(dim=1).mean()
        return torch.nn.functional.cross_entropy(out, lb)

    def step(xb, yb, lb):
        opt.zero_grad(set_to_none=True)
        lossfn(model(xb), yb, lb).backward()
        opt.step()

    def train():
        for _ in range(w.epochs):
            if w.batch is None:
                step(x, y, labels)
                continue
            order = torch.randperm(m, generator=gen)
            for s in range(0, m, w.batch):
                idx = order[s:s + w.batch]
                step(x[idx], y[idx], labels[idx])

    def loss():
        ex, ey = _eval_part(w)
        with torch.no_grad():
            ey_t = torch.from_numpy(ey)
            return float(lossfn(model(torch.from_numpy(ex)), ey_t, ey_t.argmax(dim=1)))

    return train, loss


def sys_sklearn(w: Workload):
    """MLPClassifier with solver='sgd', no momentum, constant learning rate; its own init and loss checks."""
    hidden = tuple(w.sizes[1:-1])
    act = {"sigmoid": "logistic", "tanh": "tanh", "relu": "relu"}[w.hidden]
    bs = w.m if w.batch is None else w.batch
    labels = np.argmax(w.y, axis=1) if w.sizes[-1] > 1 else w.y[:, 0].astype(int)
    clf = MLPClassifier(hidden_layer_sizes=hidden, activation=act, solver="sgd", learning_rate="constant",
                        learning_rate_init=w.lr, momentum=0.0, nesterovs_momentum=False, alpha=0.0,
                        batch_size=bs, max_iter=w.epochs, shuffle=w.batch is not None, tol=0.0,
                        n_iter_no_change=10**9, random_state=0)
    ex = _eval_part(w)[0]
    el = labels[:len(ex)]
    state = {}

    def train():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.fit(w.x, labels)
        state["iters"] = clf.n_iter_

    def loss():
        if "iters" not in state:  # no model yet: chance level, the loss of predicting the class frequencies
            p = np.bincount(el, minlength=2 if w.sizes[-1] == 1 else w.sizes[-1]) / len(el)
            return float(-np.sum(p[p > 0] * np.log(p[p > 0])))
        proba = np.clip(clf.predict_proba(ex), 1e-30, 1)
        return float(-np.mean(np.log(proba[np.arange(len(el)), el])))

    return train, loss


def floor_matmuls(w: Workload):
    """The matrix products of one epoch alone, into preallocated arrays: forward, dW, and da below the top."""
    dt = w.dtype
    bs = w.m if w.batch is None else w.batch
    n_batches = w.steps_per_epoch
    sizes = w.sizes
    acts = [np.ones((bs, n), dt) for n in sizes]
    Ws = [W.copy() for W, _ in w.init]
    WT = [W.T for W in Ws]
    dWs = [np.empty_like(W) for W in Ws]
    dzs = [np.ones((bs, n), dt) for n in sizes[1:]]
    das = [np.empty((bs, n), dt) for n in sizes[1:]]

    def train():
        for _ in range(w.epochs):
            for _ in range(n_batches):
                for l in range(len(Ws)):
                    np.matmul(acts[l], WT[l], out=acts[l + 1])
                for l in range(len(Ws) - 1, -1, -1):
                    np.matmul(dzs[l].T, acts[l], out=dWs[l])
                    if l > 0:
                        np.matmul(dzs[l], Ws[l], out=das[l - 1])

    return train, None


# --- timing --------------------------------------------------------------------------------------


def _peers(w: Workload) -> dict:
    systems = {"bpcli": sys_bpcli, "numpy": sys_numpy}
    if torch is not None:
        systems["pytorch"] = sys_torch
    if sklearn is not None:
        systems["sklearn"] = sys_sklearn
    systems["floor"] = sys_python if w.name == "tiny" else floor_matmuls
    return systems


def run_workload(w: Workload, repeats: int) -> dict:
    systems = _peers(w)
    names = list(systems)
    times: dict[str, list[float]] = {n: [] for n in names}
    learned: dict[str, tuple] = {}
    for r in range(repeats):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            train, loss = systems[name](w)
            before = loss() if loss else None
            t0 = time.perf_counter()
            train()
            dt = time.perf_counter() - t0
            times[name].append(dt / w.units)
            if loss and r == 0:
                learned[name] = (before, loss())
    med = {n: statistics.median(v) for n, v in times.items()}
    ratios = {n: statistics.median([a / b for a, b in zip(times["bpcli"], times[n])]) for n in names if n != "bpcli"}
    return {"name": w.name, "title": w.title, "note": w.note, "unit": w.unit, "units": w.units, "repeats": repeats,
            "median_s": med, "ratio_bpcli_over": ratios,
            "learned": {n: {"before": b, "after": a, "ok": bool(a < b)} for n, (b, a) in learned.items()},
            "skipped": [p for p in ("pytorch", "sklearn") if p not in names]}


# --- gradient check --------------------------------------------------------------------------------


def run_gradcheck(quick: bool, repeats: int) -> dict:
    """Every entry of a 64-64-10 tanh/softmax network (4810 parameters) on 32 samples, and 16 directions."""
    out: dict = {"name": "gradcheck", "median_s": {}, "notes": []}
    w = workloads(quick)[1]
    x, y = w.x[:32], w.y[:32]
    init = w.init
    layers = [Layer("A", 64, 64, get_activation("tanh"), "on", "w"), Layer("B", 64, 10, get_activation("softmax"),
                                                                          "on", "v")]
    net = Network(tuple(f"x{j + 1}" for j in range(64)), tuple(layers), [W.copy() for W, _ in init],
                  [b.copy() for _, b in init], get_loss("cross_entropy"))
    timings: dict[str, list[float]] = {}

    def timed(name, fn):
        for _ in range(1 if quick else repeats):
            t0 = time.perf_counter()
            fn()
            timings.setdefault(name, []).append(time.perf_counter() - t0)

    refs = net.param_refs()
    if quick:
        refs = refs[:50]

    def naive():
        naive_numeric_gradient(net, x, y, 1e-6, refs)

    timed("naive loop" if not quick else "naive loop (50 entries)", naive)
    timed("bpcli entries", lambda: check(net, x, y, GradcheckOptions(mode="entries", all_entries=True, samples=None)))
    # 16 random directions in all: 4 per parameter array (A.W, A.b, B.W, B.b)
    timed("bpcli 16 directions", lambda: check(net, x, y, GradcheckOptions(mode="directional", directions=4,
                                                                           samples=None)))
    # the default check above the cap: sampled entries, one direction per node, random directions (6550 params)
    rng = np.random.default_rng(0)
    sizes = [20, 100, 40, 10]
    big = Network(tuple(f"x{j + 1}" for j in range(20)),
                  tuple(Layer(LETTERS[i], sizes[i], sizes[i + 1], get_activation("softmax" if i == 2 else "tanh"),
                              "on", SYMBOLS[i]) for i in range(3)),
                  [rng.normal(0, 1 / np.sqrt(sizes[i]), (sizes[i + 1], sizes[i])) for i in range(3)],
                  [rng.normal(0, 0.1, sizes[i + 1]) for i in range(3)], get_loss("cross_entropy"))
    xb, yb = rng.normal(size=(200, 20)), np.eye(10)[rng.integers(0, 10, 200)]
    timed("bpcli sampled default (6550 params)", lambda: check(big, xb, yb, GradcheckOptions()))
    if torch is not None and not quick:
        params = [torch.from_numpy(a.copy()).requires_grad_(True) for W, b in init for a in (W, b)]
        tx, ty = torch.from_numpy(x), torch.from_numpy(y).argmax(dim=1)

        def f(W1, b1, W2, b2):
            return torch.nn.functional.cross_entropy(torch.tanh(tx @ W1.T + b1) @ W2.T + b2, ty)

        timed("torch.autograd.gradcheck", lambda: torch.autograd.gradcheck(f, tuple(params), eps=1e-6, atol=1e-5))
    elif torch is None:
        out["notes"].append("PyTorch not installed: torch.autograd.gradcheck skipped")
    out["median_s"] = {k: statistics.median(v) for k, v in timings.items()}
    return out


# --- start-up and memory -----------------------------------------------------------------------


def _cli_has(command: str) -> bool:
    from bpcli.cli.app import app
    return any((c.name or c.callback.__name__) == command for c in app.registered_commands)


SEED_TRAIN = "bpcli train (the seed, 3000 epochs)"


def run_startup(quick: bool, repeats: int) -> dict:
    # As an installed package runs: byte-compiled modules (pip compiles them at install time), so the
    # timings do not include compiling bpcli's source, which PYTHONDONTWRITEBYTECODE would force every time.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(ROOT / "src")
    py = sys.executable
    scratch = Path(tempfile.mkdtemp(prefix="bpcli-bench-"))
    cmds = {
        "python -c pass": [py, "-c", "pass"],
        "import numpy": [py, "-c", "import numpy"],
        "import typer, rich": [py, "-c", "import typer, rich"],
        "import typer, rich, yaml, numpy": [py, "-c", "import typer, rich, yaml, numpy"],
        "bpcli --help": [py, "-m", "bpcli", "--help"],
        # the built-in seed, 3000 epochs, every snapshot kept, written to a fresh run folder each time
        SEED_TRAIN: [py, "-m", "bpcli", "train", "-q", "--out", str(scratch / "seed")],
    }
    if _cli_has("explain"):
        cmds["bpcli explain --weight v1"] = [py, "-m", "bpcli", "explain", "--weight", "v1"]
    else:
        cmds["bpcli show (explain not on this branch)"] = [py, "-m", "bpcli", "show"]
    if not quick:
        if torch is not None:
            cmds["import torch"] = [py, "-c", "import torch"]
        if sklearn is not None:
            cmds["import sklearn.neural_network"] = [py, "-c", "import sklearn.neural_network"]
    n = 1 if quick else max(repeats, 5)
    times: dict[str, list[float]] = {k: [] for k in cmds}
    for c in cmds.values():  # one untimed run each: warms the byte-code cache and the file-system cache
        subprocess.run(c, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, cwd=str(ROOT))
    for _ in range(n):
        for k, c in cmds.items():
            shutil.rmtree(scratch / "seed", ignore_errors=True)  # untimed: the train row writes a new run folder
            t0 = time.perf_counter()
            subprocess.run(c, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
                           cwd=str(ROOT))
            times[k].append(time.perf_counter() - t0)
    shutil.rmtree(scratch, ignore_errors=True)
    return {"name": "startup", "median_s": {k: statistics.median(v) for k, v in times.items()}}


def run_memory(quick: bool) -> dict:
    """Peak traced memory of one medium epoch (batch 64) against data + parameters + one batch's activations."""
    w = workloads(quick)[2]
    train, _ = sys_bpcli(w)
    data_b = w.x.nbytes + w.y.nbytes
    params_b = sum(W.nbytes + b.nbytes for W, b in w.init)
    item = np.dtype(w.dtype).itemsize
    acts_b = w.batch * (w.sizes[0] + 2 * sum(w.sizes[1:])) * item  # the batch, z and a of every layer
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    train()
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    budget = data_b + params_b + acts_b
    return {"name": "memory", "data_bytes": data_b, "params_bytes": params_b, "batch_activation_bytes": acts_b,
            "peak_extra_bytes": peak, "peak_total_bytes": data_b + peak, "ratio": (data_b + peak) / budget}


# --- weight snapshots: training time with them on and off -------------------------------------------


def _train_run(config: Path, epochs: int, snapshots: bool) -> tuple[float, float, int, int, float]:
    """One `bpcli train` session (history, checkpoints and all) into a temporary folder: wall and CPU seconds,
    the snapshot folder's bytes, its number of snapshots, and the wall seconds spent in the snapshot code
    (taking them each epoch, writing the chunks)."""
    import shutil
    import tempfile
    from dataclasses import replace

    from bpcli.config.loader import load_config, with_overrides
    from bpcli.runs.session import run_training
    from bpcli.runs.snapshot_store import Recorder
    from bpcli.runs.snapshots import available_epochs
    cfg, data = load_config(config)
    cfg = with_overrides(cfg, epochs=epochs, samples=data.m)
    cfg = replace(cfg, train=replace(cfg.train, snapshots=snapshots))
    d = Path(tempfile.mkdtemp(prefix="bpcli-bench-"))
    spent = [0.0]
    real = {name: getattr(Recorder, name) for name in ("take", "write_pending")}

    def timed(fn):
        def wrapper(*a, **kw):
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                spent[0] += time.perf_counter() - t
        return wrapper

    for name, fn in real.items():
        setattr(Recorder, name, timed(fn))
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        run_training(cfg, data, d / "run")
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        folder = d / "run" / "snapshots"
        size = sum(p.stat().st_size for p in folder.iterdir()) if folder.is_dir() else 0
        return wall, cpu, size, len(available_epochs(d / "run")), spent[0]
    finally:
        for name, fn in real.items():
            setattr(Recorder, name, fn)
        shutil.rmtree(d, ignore_errors=True)


def run_snapshots(quick: bool, repeats: int) -> dict:
    """Whole training sessions with snapshots on and off, interleaved (the order swaps every repeat), on the
    seed network and deep_relu; then deep_relu for 10,000 epochs once each way, for the snapshot folder's size."""
    configs = ROOT / "configs"
    cases = [("seed 2-2-1 gd", configs / "seed.yaml", 100 if quick else 3000),
             ("deep_relu sgd", configs / "deep_relu.yaml", 10 if quick else 2000)]
    rows = []
    for title, config, epochs in cases:
        t: dict[bool, list] = {True: [], False: []}
        for rep in range(repeats):
            for on in ((True, False) if rep % 2 else (False, True)):
                t[on].append(_train_run(config, epochs, on))
        rows.append({"title": f"{title}, {epochs:,} epochs", "off_s": statistics.median(r[0] for r in t[False]),
                     "on_s": statistics.median(r[0] for r in t[True]),
                     "ratio": statistics.median(a[0] / b[0] for a, b in zip(t[True], t[False])),
                     "cpu_ratio": statistics.median(a[1] / b[1] for a, b in zip(t[True], t[False])),
                     "share": statistics.median(a[4] / a[0] for a in t[True]),
                     "bytes": t[True][0][2], "kept": t[True][0][3]})
    long = 30 if quick else 10_000
    on, off = _train_run(configs / "deep_relu.yaml", long, True), _train_run(configs / "deep_relu.yaml", long, False)
    rows.append({"title": f"deep_relu sgd, {long:,} epochs (once)", "off_s": off[0], "on_s": on[0],
                 "ratio": on[0] / off[0], "cpu_ratio": on[1] / off[1], "share": on[4] / on[0], "bytes": on[2],
                 "kept": on[3]})
    return {"name": "snapshots", "rows": rows, "budget_bytes": 50_000_000}


# --- report ------------------------------------------------------------------------------------------


def _fmt_t(s: float) -> str:
    if s < 1e-3:
        return f"{s * 1e6:.1f} us"
    if s < 1:
        return f"{s * 1e3:.1f} ms"
    return f"{s:.2f} s"


# workload: [(peer, max ratio bpcli/peer)]: as fast as a hand-written numpy loop (within 1.10x, 1.5x on the
# tiny network, where per-call overhead is everything), and ahead of PyTorch CPU and scikit-learn everywhere.
_AHEAD = [("pytorch", 0.9), ("sklearn", 0.9)]
TARGETS = {
    "tiny": [("numpy", 1.5)] + _AHEAD,
    "small": [("numpy", 1.10)] + _AHEAD,
    "medium64": [("numpy", 1.10)] + _AHEAD,
    "medium256": [("numpy", 1.10)] + _AHEAD,
}
FLOOR_SHARE = {"medium64": 0.55, "medium256": 0.65}  # floor/bpcli at least this


def report(results: list[dict], quick: bool) -> str:
    lines = []
    cols = ["bpcli", "numpy", "pytorch", "sklearn", "floor"]
    lines.append("| workload | " + " | ".join(cols) + " | bpcli/numpy | bpcli/pytorch | bpcli/sklearn | floor/bpcli |")
    lines.append("|---" * (len(cols) + 5) + "|")
    checks = []
    for r in results:
        if r["name"] not in TARGETS:
            continue
        med, rat = r["median_s"], r["ratio_bpcli_over"]
        cells = [_fmt_t(med[c]) if c in med else "-" for c in cols]
        rcells = [f"{rat[c]:.2f}x" if c in rat else "-" for c in ("numpy", "pytorch", "sklearn")]
        frac = f"{1 / rat['floor']:.0%}" if "floor" in rat else "-"
        lines.append(f"| {r['title']} | " + " | ".join(cells) + " | " + " | ".join(rcells) + f" | {frac} |")
        for peer, limit in TARGETS[r["name"]]:
            if peer in rat:
                ok = rat[peer] <= limit
                checks.append(f"{'met ' if ok else 'MISS'}  {r['name']}: bpcli/{peer} {rat[peer]:.2f}x "
                              f"(target <= {limit}x)")
            else:
                checks.append(f"skip  {r['name']}: {peer} not installed")
        if r["name"] in FLOOR_SHARE and "floor" in rat:
            share, want = 1 / rat["floor"], FLOOR_SHARE[r["name"]]
            checks.append(f"{'met ' if share >= want else 'MISS'}  {r['name']}: floor/bpcli {share:.0%} "
                          f"(target >= {want:.0%})")
        bad = [n for n, v in r["learned"].items() if not v["ok"]]
        checks.append(f"{'learned' if not bad else 'DID NOT LEARN: ' + ', '.join(bad)}  {r['name']}: "
                      + ", ".join(f"{n} {v['before']:.3g} -> {v['after']:.3g}" for n, v in r["learned"].items()))
    for r in results:
        if r["name"] == "gradcheck":
            lines.append("")
            lines.append("| gradient check (4810 params, 32 samples) | median |")
            lines.append("|---|---|")
            for k, v in r["median_s"].items():
                lines.append(f"| {k} | {_fmt_t(v)} |")
            for k, limit in (("bpcli entries", 0.1), ("bpcli 16 directions", 0.01),
                             ("bpcli sampled default (6550 params)", 0.3)):
                if k in r["median_s"]:
                    v = r["median_s"][k]
                    checks.append(f"{'met ' if v <= limit else 'MISS'}  gradcheck: {k} {_fmt_t(v)} "
                                  f"(target <= {_fmt_t(limit)})")
            checks += [f"note  gradcheck: {n}" for n in r["notes"]]
        elif r["name"] == "startup":
            lines.append("")
            lines.append("| start-up (median wall time) | seconds |")
            lines.append("|---|---|")
            for k, v in r["median_s"].items():
                lines.append(f"| `{k}` | {v:.3f} |")
            med = r["median_s"]
            gap = med["bpcli --help"] - med["import typer, rich"]
            checks.append(f"{'met ' if gap <= 0.1 else 'MISS'}  start-up: bpcli --help is {gap:+.3f} s from "
                          f"import typer, rich (target within 0.1 s)")
            for k, v in med.items():
                if k.startswith("bpcli explain") or k.startswith("bpcli show"):
                    checks.append(f"{'met ' if v < 0.3 else 'MISS'}  start-up: {k} {v:.3f} s (target < 0.3 s)")
            if SEED_TRAIN in med:
                v = med[SEED_TRAIN]
                checks.append(f"{'met ' if v <= 0.5 else 'MISS'}  start-up: {SEED_TRAIN} {v:.3f} s, "
                              f"{v - med['import numpy']:+.3f} s from import numpy (target <= 0.5 s)")
        elif r["name"] == "snapshots":
            lines.append("")
            lines.append("| training with snapshots (whole session) | off | on | on/off | on/off CPU | "
                         "in snapshot code | kept | folder |")
            lines.append("|---|---|---|---|---|---|---|---|")
            for row in r["rows"]:
                lines.append(f"| {row['title']} | {_fmt_t(row['off_s'])} | {_fmt_t(row['on_s'])} | "
                             f"{row['ratio']:.3f}x | {row['cpu_ratio']:.3f}x | {row['share']:.1%} | {row['kept']:,} | "
                             f"{row['bytes'] / 1e6:.2f} MB |")
                checks.append(f"{'met ' if row['ratio'] <= 1.10 else 'MISS'}  snapshots: {row['title']} on/off "
                              f"{row['ratio']:.3f}x (target <= 1.10x)")
            big = r["rows"][-1]
            checks.append(f"{'met ' if big['bytes'] <= r['budget_bytes'] else 'MISS'}  snapshots: {big['title']} "
                          f"keeps {big['bytes'] / 1e6:.1f} MB (budget {r['budget_bytes'] / 1e6:.0f} MB)")
        elif r["name"] == "memory":
            mb = 1 / 2**20
            lines.append("")
            lines.append("| memory, one medium epoch (batch 64) | MiB |")
            lines.append("|---|---|")
            lines.append(f"| data (x, y) | {r['data_bytes'] * mb:.1f} |")
            lines.append(f"| parameters | {r['params_bytes'] * mb:.2f} |")
            lines.append(f"| one batch's activations (input, z and a per layer) | {r['batch_activation_bytes'] * mb:.2f} |")
            lines.append(f"| peak during the epoch, above the data (tracemalloc) | {r['peak_extra_bytes'] * mb:.2f} |")
            lines.append(f"| peak total / (data + parameters + activations) | {r['ratio']:.3f}x |")
            checks.append(f"{'met ' if r['ratio'] <= 1.5 else 'MISS'}  memory: {r['ratio']:.3f}x (target <= 1.5x)")
    for r in results:
        if r.get("skipped"):
            checks.append(f"note  {r['name']}: skipped {', '.join(r['skipped'])} (not installed in this Python)")
            break
    return "\n".join(lines) + "\n\n" + "\n".join(checks) + "\n"


def machine() -> dict:
    info = {"python": platform.python_version(), "numpy": np.__version__, "platform": platform.platform(),
            "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "torch": getattr(torch, "__version__", None), "sklearn": getattr(sklearn, "__version__", None),
            "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
            "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE")}
    try:
        with open("/proc/cpuinfo") as fh:
            info["cpu"] = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), info["cpu"])
    except OSError:
        pass
    try:
        from threadpoolctl import threadpool_info
        info["blas"] = [{k: p.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
                        for p in threadpool_info()]
    except ImportError:
        info["blas"] = "threadpoolctl not installed"
    if torch is not None:
        info["torch_threads"] = torch.get_num_threads()
    try:
        info["load_average"] = tuple(round(v, 2) for v in os.getloadavg())
    except OSError:
        pass
    return info


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes and one repeat (what the test suite runs)")
    ap.add_argument("--repeats", type=int, default=5, help="repeats of every timing (default 5)")
    ap.add_argument("--only", default="", help="comma-separated: tiny,small,medium64,medium256,gradcheck,startup,memory,"
                    "snapshots")
    ap.add_argument("--json", type=Path, help="also write every number to this JSON file")
    ap.add_argument("--threads", type=int, default=DEFAULT_THREADS,
                    help=f"BLAS/OpenMP threads for every system (default: {DEFAULT_THREADS}, what the bpcli command "
                         "uses; 0: each library's own default, all cores)")
    args = ap.parse_args(argv)
    limiter = None
    if args.threads:
        try:
            from threadpoolctl import threadpool_limits
            limiter = threadpool_limits(args.threads)
        except ImportError:
            print("# note: --threads needs threadpoolctl; running with the default threads", file=sys.stderr)
        if torch is not None:
            torch.set_num_threads(args.threads)
    repeats = 1 if args.quick else args.repeats
    only = set(filter(None, args.only.split(",")))
    mach = machine()
    print(f"# bpcli benchmark {time.strftime('%Y-%m-%d %H:%M')}  ({'quick' if args.quick else f'{repeats} repeats'})")
    print(f"# {mach['cpu']}, {mach['cores']} cores, Python {mach['python']}, numpy {mach['numpy']}, "
          f"torch {mach['torch'] or 'not installed'}, scikit-learn {mach['sklearn'] or 'not installed'}")
    print(f"# BLAS and OpenMP pools: {mach['blas']}; torch threads: {mach.get('torch_threads')}")
    print(f"# load average before: {mach.get('load_average')}")
    if torch is None or sklearn is None:
        missing = [n for n, mod in (("PyTorch", torch), ("scikit-learn", sklearn)) if mod is None]
        print(f"# note: {' and '.join(missing)} not installed: skipped (they are optional peers, "
              f"see BENCHMARKS.md to install them)")
    results = []
    for w in workloads(args.quick):
        if only and w.name not in only:
            continue
        print(f"... {w.name}", file=sys.stderr, flush=True)
        results.append(run_workload(w, repeats))
    for name, fn in (("gradcheck", lambda: run_gradcheck(args.quick, repeats)),
                     ("startup", lambda: run_startup(args.quick, repeats)),
                     ("memory", lambda: run_memory(args.quick)),
                     ("snapshots", lambda: run_snapshots(args.quick, repeats))):
        if only and name not in only:
            continue
        print(f"... {name}", file=sys.stderr, flush=True)
        results.append(fn())
    print()
    print(report(results, args.quick))
    try:
        print(f"# load average after: {tuple(round(v, 2) for v in os.getloadavg())}")
    except OSError:
        pass
    if limiter is not None:
        limiter.restore_original_limits()
    if args.json:
        args.json.write_text(json.dumps({"machine": mach, "quick": args.quick, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
