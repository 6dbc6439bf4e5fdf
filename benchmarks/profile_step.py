"""Where one training step's time goes: bpcli's parts beside the plain numpy loop's, per step, in one process.

    PYTHONPATH=src python benchmarks/profile_step.py                 # tiny, small, medium64, medium256
    PYTHONPATH=src python benchmarks/profile_step.py --only tiny --repeats 5

The workloads are run.py's (the same data, network, batch size and initial weights; the medium ones on their first
--rows rows, 16384 by default).  bpcli's fit is timed whole and in parts by wrapping the functions it calls:
forward, backward, the tally (per-batch statistics), the optimiser and the epoch's close (loss, metric, norms,
update ratios, saturation, the record; its saturation's forward pass counts as forward), each per step; what is left is the loop itself (mini-batch gathers, the
rollback copy, bookkeeping).  The hand loop is split into its forward passes and the rest of its steps.  The wrappers
add about 0.3 us a call; the medians of --repeats runs are printed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # noqa: E402  (benchmarks/run.py: the workloads and both systems)

import bpcli.training.fit as fit_module  # noqa: E402
from bpcli.training.optim import Optimizer  # noqa: E402
from bpcli.training.tally import Tally  # noqa: E402

# (part, where fit finds it, name): forward and backward are wrapped in fit's own namespace, where it looks them up
PARTS = (("forward", fit_module, "forward"), ("backward", fit_module, "backward"), ("tally", Tally, "add"),
         ("optimiser", Optimizer, "step"), ("epoch close", fit_module, "_close_epoch"))


def _wrap(clock: dict) -> list:
    """Wrap each part's function so its own time adds up in clock (a part called inside another, such as the
    saturation's forward pass in the epoch's close, counts for itself only); returns what to put back."""
    saved = []
    inner = [0.0]  # the time of the parts called inside the running one

    for key, owner, name in PARTS:
        fn = getattr(owner, name)
        saved.append((owner, name, fn))

        def timed(*a, _fn=fn, _key=key, **kw):
            outer, inner[0] = inner[0], 0.0
            t0 = time.perf_counter()
            r = _fn(*a, **kw)
            dt = time.perf_counter() - t0
            clock[_key] = clock.get(_key, 0.0) + dt - inner[0]
            inner[0] = outer + dt
            return r

        setattr(owner, name, timed)
    return saved


def profile(w: run.Workload, repeats: int) -> dict:
    """Per-step medians (seconds) of bpcli's parts and the hand loop's, over `repeats` runs of the workload."""
    steps = w.epochs * w.steps_per_epoch
    ours: dict[str, list[float]] = {}
    hand: dict[str, list[float]] = {}
    for _ in range(repeats):
        clock: dict[str, float] = {}
        train, _ = run.sys_bpcli(w)
        saved = _wrap(clock)
        try:
            t0 = time.perf_counter()
            train()
            total = time.perf_counter() - t0
        finally:
            for owner, name, fn in saved:
                setattr(owner, name, fn)
        clock["the loop itself"] = total - sum(clock.values())
        clock["total"] = total
        for k, v in clock.items():
            ours.setdefault(k, []).append(v / steps)
        clock = {}
        train, _ = run.sys_numpy(w, clock)
        t0 = time.perf_counter()
        train()
        total = time.perf_counter() - t0
        split = {"forward": clock["forward"], "backward and update": clock["step"] - clock["forward"],
                 "the loop itself": total - clock["step"], "total": total}
        for k, v in split.items():
            hand.setdefault(k, []).append(v / steps)
    return {"bpcli": {k: statistics.median(v) for k, v in ours.items()},
            "numpy loop": {k: statistics.median(v) for k, v in hand.items()}}


def _us(s: float) -> str:
    return f"{s * 1e6:.1f} us"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default="", help="comma-separated: tiny,small,medium64,medium256")
    ap.add_argument("--repeats", type=int, default=3, help="runs of each workload (default 3)")
    ap.add_argument("--rows", type=int, default=16384, help="rows of the medium workloads' data (default 16384)")
    ap.add_argument("--quick", action="store_true", help="run.py's quick sizes, one repeat")
    args = ap.parse_args(argv)
    only = set(filter(None, args.only.split(",")))
    for w in run.workloads(args.quick):
        if only and w.name not in only:
            continue
        if w.name.startswith("medium"):
            w.x, w.y = w.x[:args.rows], w.y[:args.rows]
        p = profile(w, 1 if args.quick else args.repeats)
        print(f"\n{w.title}; the parts per step ({w.m} rows, {w.steps_per_epoch} steps an epoch)")
        print("| part | bpcli | numpy loop |")
        print("|---|---|---|")
        keys = ["forward", "backward", "backward and update", "optimiser", "tally", "epoch close", "the loop itself",
                "total"]
        for k in keys:
            a, b = p["bpcli"].get(k), p["numpy loop"].get(k)
            if a is None and b is None:
                continue
            print(f"| {k} | {_us(a) if a is not None else ''} | {_us(b) if b is not None else ''} |")
        print(f"bpcli / numpy loop: {p['bpcli']['total'] / p['numpy loop']['total']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
