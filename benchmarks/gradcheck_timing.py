"""Time `bpcli gradcheck` on the issue's network: 64-64-10 tanh + softmax cross-entropy (4810 parameters), 32 samples.

    PYTHONPATH=src python benchmarks/gradcheck_timing.py [--repeats 15] [--naive]

Prints the best and the median wall time of check() over every entry, of the directional check, of the
part no method can skip (the registry's softmax and cross-entropy on the 2 * 4810 * 32 perturbed samples
the entries need), and optionally of the naive loop (two full forward passes per parameter).
Timings stay out of pytest; the machine's other load shows in the gap between best and median.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from bpcli.nn.activations import get_activation
from bpcli.nn.engine import cost, forward
from bpcli.gradcheck.report import GradcheckOptions
from bpcli.gradcheck.check import check
from bpcli.gradcheck.numeric import naive_numeric_gradient
from bpcli.nn.losses import get_loss
from bpcli.nn.model import LETTERS, SYMBOLS, Layer, Network


def make_net(rng: np.random.Generator, sizes=(64, 64, 10)) -> Network:
    layers, Ws, bs = [], [], []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        act = get_activation("softmax" if i == len(sizes) - 2 else "tanh")
        layers.append(Layer(LETTERS[i], n_in, n_out, act, "on", SYMBOLS[i]))
        Ws.append(rng.uniform(-1, 1, size=(n_out, n_in)) * np.sqrt(6 / (n_in + n_out)))
        bs.append(rng.normal(0, 0.1, size=n_out))
    return Network(tuple(f"x{j + 1}" for j in range(sizes[0])), tuple(layers), Ws, bs, get_loss("cross_entropy"))


def naive(net: Network, x, y, eps=1e-5) -> np.ndarray:
    return naive_numeric_gradient(net, x, y, eps)


def times(fn, repeats: int) -> tuple[float, float]:
    """(best, median) wall time in ms."""
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return 1e3 * min(ts), 1e3 * statistics.median(ts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--naive", action="store_true", help="also time the naive loop (slow)")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    net = make_net(rng)
    m = args.samples
    x = rng.normal(size=(m, 64))
    y = np.eye(10)[rng.integers(0, 10, size=m)]
    full = GradcheckOptions(mode="entries", all_entries=True, samples=None)
    dirs = GradcheckOptions(mode="directional", samples=None)
    rep = check(net, x, y, full)
    assert rep.passed and rep.n_entries == net.n_params, rep.verdict
    drep = check(net, x, y, dirs)
    assert drep.passed, drep.verdict

    softmax, ce = net.layers[-1].activation.fn, net.loss.value
    rows = 2 * net.n_params * m
    Z = rng.normal(size=(10, rows))
    Y = np.tile(y.T, (1, 2 * net.n_params))

    def floor():
        for s in range(0, rows, 2048):
            ce(softmax(Z[:, s:s + 2048].T), Y[:, s:s + 2048].T)

    print(f"network: 64-64-10 tanh + softmax cross-entropy, {net.n_params} parameters, {m} samples")
    print(f"{'':34}{'best':>9}{'median':>9}")
    b, med = times(lambda: check(net, x, y, full), args.repeats)
    print(f"{'every entry (' + str(rep.n_entries) + ')':34}{b:>6.1f} ms{med:>6.1f} ms   "
          f"worst rel error {max(r.rel_error for r in rep.entries):.1e}")
    b, med = times(lambda: check(net, x, y, dirs), args.repeats)
    print(f"{'directional (' + str(len(drep.directions)) + ' directions)':34}{b:>6.1f} ms{med:>6.1f} ms   "
          f"worst rel error {max(d.rel_error for d in drep.directions):.1e}")
    b, med = times(floor, args.repeats)
    print(f"{'floor: softmax + CE, ' + str(rows) + ' rows':34}{b:>6.1f} ms{med:>6.1f} ms")
    if args.naive:
        b, med = times(lambda: naive(net, x, y), 1)
        print(f"{'naive loop (2 passes per entry)':34}{b:>6.1f} ms")


if __name__ == "__main__":
    main()
