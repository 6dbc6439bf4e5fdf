"""Weight snapshots on disk: append-only chunk files of stacked arrays, each listed with its SHA-256 in run.json.

    RUN/snapshots/0-1200.npz   one chunk per save: the snapshots taken since the save before, stacked
                               (k snapshots: 'epoch' (k,), 'A.W' (k, n_out, n_in), 'm:A.W', 'v:A.W', 'best:A.W'...)

run.json's "snapshots" field names every chunk with its SHA-256 and the epochs it holds (as arithmetic runs),
and the stride; a chunk is written and synced before the manifest that names it, so a kill leaves a consistent run.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from bpcli.files import atomic_write_bytes, fsync_dir, npz_bytes, sha256
from bpcli.model import Network
from bpcli.optim import Optimizer
from bpcli.schema import TrainConfig
from bpcli.train import TrainState

SNAPSHOTS = "snapshots"
CHUNK_NAME = re.compile(r"snapshots/(0|[1-9][0-9]{0,7})-(0|[1-9][0-9]{0,7})\.npz")
WHOLE = ("epoch", "step", "bad_epochs", "best_epoch")  # int64 (k,)
SCALARS = (*WHOLE, "best_val", "rng", "rng_set", "has_best")
SCALAR_BYTES = 8 * len(WHOLE) + 8 + 6 * 8 + 2  # best_val, rng (k, 6) and two flags, per snapshot
BEST = TrainState.BEST


def _u128(v: int) -> tuple[int, int]:
    return v >> 64, v & (2**64 - 1)


def rng_row(s: dict | None) -> tuple[list[int], bool]:
    """A PCG64 state as six uint64 (state hi, lo, inc hi, lo, has_uint32, uinteger); None -> zeros, False."""
    if s is None:
        return [0] * 6, False
    return [*_u128(s["state"]["state"]), *_u128(s["state"]["inc"]), s["has_uint32"], s["uinteger"]], True


def rng_state(row: np.ndarray) -> dict:
    r = [int(v) for v in row]
    return {"bit_generator": "PCG64", "state": {"state": (r[0] << 64) | r[1], "inc": (r[2] << 64) | r[3]},
            "has_uint32": r[4], "uinteger": r[5]}


def is_pcg64_state(s) -> bool:
    """numpy's PCG64 state: {'bit_generator': 'PCG64', 'state': {'state': int, 'inc': int}, 'has_uint32', 'uinteger'}."""
    u128 = lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**128
    if not (isinstance(s, dict) and set(s) == {"bit_generator", "state", "has_uint32", "uinteger"}
            and s["bit_generator"] == "PCG64" and isinstance(s["state"], dict) and set(s["state"]) == {"state", "inc"}
            and u128(s["state"]["state"]) and u128(s["state"]["inc"]) and s["has_uint32"] in (0, 1)
            and not isinstance(s["has_uint32"], bool) and u128(s["uinteger"]) and s["uinteger"] < 2**32):
        return False
    try:
        np.random.default_rng().bit_generator.state = s
    except (TypeError, ValueError, KeyError, OverflowError):
        return False
    return True


# --- which epochs are kept --------------------------------------------------------------------------


def array_keys(net: Network, settings: TrainConfig) -> list[str]:
    """What a snapshot holds besides its scalars: every parameter, the optimiser's buffers (as
    optim.Optimizer makes them: m:A.W, v:A.W ...), and the best epoch's parameters when early stopping keeps them."""
    params = list(net.named_arrays())
    keep_best = settings.patience is not None and settings.restore_best
    return params + sorted(Optimizer(net, settings).buffers) + ([BEST + k for k in params] if keep_best else [])


def key_shape(net: Network, key: str) -> tuple[int, ...]:
    """The shape of a snapshot array: its parameter's ('m:A.W' and 'best:A.W' have A.W's)."""
    return net.named_arrays()[key.partition(":")[2] or key].shape


def snapshot_bytes(net: Network, settings: TrainConfig) -> int:
    """Bytes one snapshot takes: its arrays in the network's dtype, plus its scalars."""
    item = np.dtype(net.dtype).itemsize
    return sum(math.prod(key_shape(net, k)) for k in array_keys(net, settings)) * item + SCALAR_BYTES


def stride(per_snapshot: int, epochs: int, settings: TrainConfig) -> int:
    """Snapshots every N epochs (0: none): train.snapshots' every, else the smallest N that keeps epoch 0,
    every N-th epoch and the last one within the budget (when even 0 and the last alone exceed it: those two)."""
    if not settings.snapshots:
        return 0
    if settings.snapshot_every is not None:
        return settings.snapshot_every
    budget = settings.snapshot_budget_mb * 1e6
    every = max(1, math.ceil(per_snapshot * (epochs + 1) / budget))
    while every <= epochs and (epochs // every + 2) * per_snapshot > budget:
        every += 1
    return every


def runs_of(epochs: list[int]) -> list[list[int]]:
    """Sorted epochs as arithmetic runs [first, last, step]: [0, 5, 10, 13] -> [[0, 10, 5], [13, 13, 1]]."""
    out: list[list[int]] = []
    i = 0
    while i < len(epochs):
        j = i + 1
        if j < len(epochs):
            d = epochs[j] - epochs[i]
            while j + 1 < len(epochs) and epochs[j + 1] - epochs[j] == d:
                j += 1
            out.append([epochs[i], epochs[j], d])
            i = j + 1
        else:
            out.append([epochs[i], epochs[i], 1])
            i = j
    return out


def expand(runs: list[list[int]]) -> list[int]:
    return [e for first, last, step in runs for e in range(first, last + 1, step)]


def describe(epochs: list[int]) -> str:
    """'0-500 every 5, and 503'; '0-3000'; 'none'."""
    if not epochs:
        return "none"
    parts = []
    for first, last, step in runs_of(epochs):
        if first == last:
            parts.append(str(first))
        elif (last - first) // step == 1:
            parts.append(f"{first}, {last}")
        else:
            parts.append(f"{first}-{last}" + (f" every {step}" if step > 1 else ""))
    if len(parts) > 1:
        parts[-1] = "and " + parts[-1]
    return ", ".join(parts)


# --- recording ----------------------------------------------------------------------------------


class Recorder:
    """Snapshots taken during training, held in preallocated stacks until the next save writes them as a chunk."""

    def __init__(self, net: Network, state: TrainState, settings: TrainConfig, every: int, chunks: list[dict],
                 epochs: int):
        self.every, self.chunks, self.keep_best = every, list(chunks), settings.patience is not None and settings.restore_best
        self.keys = array_keys(net, settings)
        self.shapes = {k: key_shape(net, k) for k in self.keys}
        self.dtype = net.dtype
        self.last = max((c["last"] for c in self.chunks), default=-1)  # the last epoch saved in a chunk
        self.cap = 0 if not every else min(64, epochs // every + 3)
        self.n = 0
        self._alloc(self.cap)

    def _alloc(self, cap: int) -> None:
        self.cap = cap
        self.whole = np.zeros((cap, len(WHOLE)), np.int64)
        self.best_val = np.zeros(cap, np.float64)
        self.rng = np.zeros((cap, 6), np.uint64)
        self.rng_set = np.zeros(cap, bool)
        self.has_best = np.zeros(cap, bool)
        self.stacks = [np.zeros((cap, *self.shapes[k]), self.dtype) for k in self.keys]

    def _grow(self) -> None:
        old = (self.whole, self.best_val, self.rng, self.rng_set, self.has_best, self.stacks)
        self._alloc(max(8, 2 * self.cap))
        for new, a in zip((self.whole, self.best_val, self.rng, self.rng_set, self.has_best), old[:5]):
            new[: self.n] = a[: self.n]
        for new, a in zip(self.stacks, old[5]):
            new[: self.n] = a[: self.n]

    def due(self, epoch: int) -> bool:
        return bool(self.every) and epoch % self.every == 0

    def pending_last(self) -> int:
        return int(self.whole[self.n - 1, 0]) if self.n else self.last

    def take(self, net: Network, state: TrainState) -> None:
        """Copy the state after epoch state.epoch: one copy per array into the next preallocated slot."""
        if self.n == self.cap:
            self._grow()
        i = self.n
        w = self.whole[i]
        w[0], w[1], w[2], w[3] = state.epoch, state.step, state.bad_epochs, state.best_epoch
        self.best_val[i] = state.best_val
        if state.rng_state is not None:
            self.rng[i], self.rng_set[i] = rng_row(state.rng_state)
        params, buffers = net.named_arrays(), state.buffers
        has_best = False
        for k, stack in zip(self.keys, self.stacks):
            a = params.get(k)
            if a is None:
                a = buffers.get(k)
                if a is None:  # best: before the first improvement; m: and v: before the first step are 0
                    if not k.startswith(BEST):
                        stack[i] = 0
                    continue
                has_best = has_best or k.startswith(BEST)
            stack[i] = a
        self.has_best[i] = has_best
        self.n = i + 1

    def extend(self, arrays: dict[str, np.ndarray], upto: int) -> None:
        """Add the snapshots of a chunk read back (read_chunk) whose epoch is at most `upto`."""
        k = int(np.searchsorted(arrays["epoch"], upto, side="right"))
        while self.n + k > self.cap:
            self._grow()
        s = slice(self.n, self.n + k)
        for j, name in enumerate(WHOLE):
            self.whole[s, j] = arrays[name][:k]
        self.best_val[s], self.rng[s], self.rng_set[s] = arrays["best_val"][:k], arrays["rng"][:k], arrays["rng_set"][:k]
        self.has_best[s] = arrays["has_best"][:k]
        for key, stack in zip(self.keys, self.stacks):
            if key in arrays:
                stack[s] = arrays[key][:k]
        self.n += k

    def pending(self) -> tuple[str, bytes, dict] | None:
        """The chunk of the snapshots taken since the last save: (file, bytes, manifest entry), or None."""
        if not self.n:
            return None
        n = self.n
        epochs = [int(e) for e in self.whole[:n, 0]]
        arrays = {name: self.whole[:n, j] for j, name in enumerate(WHOLE)}
        arrays.update(best_val=self.best_val[:n], rng=self.rng[:n], rng_set=self.rng_set[:n], has_best=self.has_best[:n])
        for k, stack in zip(self.keys, self.stacks):
            if not k.startswith(BEST) or self.has_best[:n].any():
                arrays[k] = stack[:n]
        data = npz_bytes(arrays)
        name = f"{SNAPSHOTS}/{epochs[0]}-{epochs[-1]}.npz"
        return name, data, {"file": name, "sha256": sha256(data), "bytes": len(data), "count": n,
                            "first": epochs[0], "last": epochs[-1], "epochs": runs_of(epochs)}

    def field(self, entry: dict | None = None) -> dict:
        """run.json's "snapshots" field, with `entry` (the chunk being saved) listed."""
        return {"every": self.every, "chunks": self.chunks + ([entry] if entry else [])}

    def write_pending(self, run_dir: Path) -> dict | None:
        """Write the pending chunk (synced, its folder too) before the manifest names it; its entry or None."""
        got = self.pending()
        if got is None:
            return None
        name, data, entry = got
        folder = run_dir / SNAPSHOTS
        if not folder.is_dir():
            folder.mkdir()
            fsync_dir(run_dir)
        atomic_write_bytes(run_dir / name, data)
        fsync_dir(folder)
        return entry

    def sweep(self, run_dir: Path) -> None:
        """Delete chunks run.json does not list: left by a save killed between its chunk and its manifest."""
        listed = {c["file"] for c in self.chunks}
        folder = run_dir / SNAPSHOTS
        for p in folder.iterdir() if folder.is_dir() and not folder.is_symlink() else ():
            if f"{SNAPSHOTS}/{p.name}" not in listed and (p.is_file() or p.is_symlink()):
                p.unlink(missing_ok=True)

    def committed(self, entry: dict | None) -> None:
        """The manifest naming `entry` is in place: the stacks are free again."""
        if entry is not None:
            self.chunks.append(entry)
            self.last = entry["last"]
            self.n = 0
