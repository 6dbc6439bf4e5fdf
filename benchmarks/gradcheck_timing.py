"""Time `bpcli gradcheck` on the issue's network: 64-64-10 tanh + softmax cross-entropy (4810 parameters), 32 samples.

    PYTHONPATH=src python benchmarks/gradcheck_timing.py [--repeats 7]

Prints the median wall time of a check of every entry, of the directional check, and of the naive loop
(two full forward passes per parameter) that the structured method replaces.  Timings stay out of pytest.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from bpcli.activations import get_activation
from bpcli.engine import cost, forward
from bpcli.gradcheck import GradcheckOptions, check
from bpcli.losses import get_loss
from bpcli.model import LETTERS, SYMBOLS, Layer, Network


def make_net(rng: np.random.Generator, sizes=(64, 64, 10)) -> Network:
    layers, Ws, bs = [], [], []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        act = get_activation("softmax" if i == len(sizes) - 2 else "tanh")
        layers.append(Layer(LETTERS[i], n_in, n_out, act, "on", SYMBOLS[i]))
        Ws.append(rng.uniform(-1, 1, size=(n_out, n_in)) * np.sqrt(6 / (n_in + n_out)))
        bs.append(rng.normal(0, 0.1, size=n_out))
    return Network(tuple(f"x{j + 1}" for j in range(sizes[0])), tuple(layers), Ws, bs, get_loss("cross_entropy"))


def naive(net: Network, x, y, eps=1e-5) -> np.ndarray:
    out = []
    for ref in net.param_refs():
        v = net.get(ref)
        net.set(ref, v + eps)
        cp = cost(net, forward(net, x)[0], y)
        net.set(ref, v - eps)
        cm = cost(net, forward(net, x)[0], y)
        net.set(ref, v)
        out.append((cp - cm) / (2 * eps))
    return np.array(out)


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--naive", action="store_true", help="also time the naive loop (slow)")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    net = make_net(rng)
    x = rng.normal(size=(args.samples, 64))
    y = np.eye(10)[rng.integers(0, 10, size=args.samples)]
    full = GradcheckOptions(mode="entries", all_entries=True, samples=None)
    dirs = GradcheckOptions(mode="directional", samples=None)
    rep = check(net, x, y, full)
    assert rep.passed and len(rep.entries) == net.n_params, rep.verdict
    drep = check(net, x, y, dirs)
    assert drep.passed, drep.verdict
    print(f"network: 64-64-10 tanh + softmax cross-entropy, {net.n_params} parameters, {args.samples} samples")
    print(f"every entry  ({len(rep.entries)} entries):       {1e3 * median_time(lambda: check(net, x, y, full), args.repeats):8.1f} ms"
          f"   worst rel error {max(r.rel_error for r in rep.entries):.1e}")
    print(f"directional  ({len(drep.directions)} directions):     {1e3 * median_time(lambda: check(net, x, y, dirs), args.repeats):8.1f} ms"
          f"   worst rel error {max(r.rel_error for r in drep.directions):.1e}")
    if args.naive:
        print(f"naive loop   (2 forward passes each): {1e3 * median_time(lambda: naive(net, x, y), 1):8.1f} ms")


if __name__ == "__main__":
    main()
