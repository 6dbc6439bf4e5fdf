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
from bpcli.nn.model import Network
from bpcli.training.optim import Optimizer
from bpcli.schema import TrainConfig
from bpcli.training.fit import TrainState

SNAPSHOTS = "snapshots"
CHUNK_NAME = re.compile(r"snapshots/(0|[1-9][0-9]{0,7})-(0|[1-9][0-9]{0,7})\.npz")
WHOLE = ("epoch", "step", "bad_epochs", "best_epoch")  # int64 (k,)
SCALARS = (*WHOLE, "best_val", "rng", "rng_set", "has_best")
PLATEAU = "plateau"  # (k, 4) float64: lr, best, bad epochs, cooldown of reduce-on-plateau (only with that schedule)


def plateau_of(arrays: dict, i: int) -> tuple | None:
    """Snapshot i's reduce-on-plateau state (schedules.Plateau), None when the chunk holds none for it."""
    p = arrays.get(PLATEAU)
    if p is None or np.isnan(p[i, 0]):
        return None
    return (float(p[i, 0]), None if np.isnan(p[i, 1]) else float(p[i, 1]), int(p[i, 2]), int(p[i, 3]))
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
    every N-th epoch and the last one within the budget (N = epochs + 1: epoch 0 and the last only; 0 when even
    those two would not fit)."""
    if not settings.snapshots:
        return 0
    if settings.snapshot_every is not None:
        return settings.snapshot_every
    budget = settings.snapshot_budget_mb * 1e6
    if 2 * per_snapshot > budget:
        return 0
    every = max(1, math.ceil(per_snapshot * (epochs + 1) / budget))
    while every <= epochs and (epochs // every + 2) * per_snapshot > budget:
        every += 1
    return every


def size_text(n: int) -> str:
    """Bytes in the budget's unit (MB = 10^6 bytes): '3.2 MB', '512.0 kB', '162 bytes'."""
    return f"{n / 1e6:,.1f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB" if n >= 1000 else f"{n} bytes"


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
    """Snapshots taken during training, held in memory until the next save writes them as one chunk.

    A snapshot is one row of a preallocated block (every array of the snapshot raveled side by side, in the
    network's dtype), filled by a single np.concatenate, and a tuple of its counters: a few microseconds an epoch.
    """

    def __init__(self, net: Network, settings: TrainConfig, every: int, chunks: list[dict], epochs: int):
        self.every, self.chunks = every, list(chunks)
        self.keys = array_keys(net, settings)
        self.shapes = {k: key_shape(net, k) for k in self.keys}
        sizes = [math.prod(self.shapes[k]) for k in self.keys]
        self.offsets = dict(zip(self.keys, np.cumsum([0] + sizes).tolist()))
        self.width = sum(sizes)
        self.dtype = net.dtype
        self.last = max((c["last"] for c in self.chunks), default=-1)  # the last epoch saved in a chunk
        self.block = np.empty((0 if not every else min(64, epochs // every + 3), self.width), self.dtype)
        self.counters: list[tuple] = []  # per snapshot: epoch, step, bad_epochs, best_epoch, best_val, rng_state
        self.has_best: list[bool] = []
        self._src: list[np.ndarray] | None = None  # the arrays a snapshot copies, raveled (views, not copies)
        self._absent: list[str] = []  # best: (or optimiser) arrays not made yet: zeros stand in for them
        self._best = False  # the best epoch's copies exist (and are in _src)

    @property
    def n(self) -> int:
        return len(self.counters)

    def _sources(self, net: Network, state: TrainState) -> list[np.ndarray]:
        """The live arrays to copy: the network's and the optimiser's are updated in place, so they are looked
        up once (again only while an early-stopping copy does not exist yet)."""
        if self._src is None or (self._absent and any(k in state.buffers for k in self._absent)):
            params, src, self._absent = net.named_arrays(), [], []
            for k in self.keys:
                a = params.get(k)
                if a is None:
                    a = state.buffers.get(k)
                if a is None:  # best: before the first improvement; m: and v: before the first step are 0
                    self._absent.append(k)
                    a = np.zeros(self.shapes[k], self.dtype)
                src.append(a.reshape(-1))
            self._src = src
            self._best = any(k.startswith(BEST) for k in self.keys) and not any(k.startswith(BEST) for k in self._absent)
        return self._src

    def due(self, epoch: int) -> bool:
        return bool(self.every) and epoch % self.every == 0

    def pending_last(self) -> int:
        return self.counters[-1][0] if self.counters else self.last

    def _room(self, k: int) -> None:
        if self.n + k > len(self.block):
            grown = np.empty((max(8, 2 * len(self.block), self.n + k), self.width), self.dtype)
            grown[: self.n] = self.block[: self.n]
            self.block = grown

    def take(self, net: Network, state: TrainState) -> None:
        """Keep the state after epoch state.epoch: its arrays copied into the next row, its counters referenced
        (fit makes a new rng_state dict whenever the state moves, and never changes one)."""
        src = self._sources(net, state)
        i = self.n
        if i == len(self.block):
            self._room(1)
        np.concatenate(src, out=self.block[i])
        self.counters.append((state.epoch, state.step, state.bad_epochs, state.best_epoch, state.best_val,
                              state.rng_state, state.plateau))
        self.has_best.append(self._best)

    def extend(self, arrays: dict[str, np.ndarray], upto: int) -> None:
        """Add the snapshots of a chunk read back (snapshot_read.read_chunk) whose epoch is at most `upto`."""
        k = int(np.searchsorted(arrays["epoch"], upto, side="right"))
        self._room(k)
        rows = self.block[self.n: self.n + k]
        for key in self.keys:
            off = self.offsets[key]
            width = math.prod(self.shapes[key])
            rows[:, off: off + width] = arrays[key][:k].reshape(k, width) if key in arrays else 0
        for i in range(k):
            self.counters.append((*(int(arrays[w][i]) for w in WHOLE), float(arrays["best_val"][i]),
                                  rng_state(arrays["rng"][i]) if arrays["rng_set"][i] else None,
                                  plateau_of(arrays, i)))
            self.has_best.append(bool(arrays["has_best"][i]))

    def pending(self) -> tuple[str, bytes, dict] | None:
        """The chunk of the snapshots taken since the last save: (file, bytes, manifest entry), or None."""
        if not self.counters:
            return None
        n = self.n
        epochs = [c[0] for c in self.counters]
        arrays: dict[str, np.ndarray] = {w: np.array([c[j] for c in self.counters], np.int64)
                                         for j, w in enumerate(WHOLE)}
        arrays["best_val"] = np.array([c[4] for c in self.counters], np.float64)
        rows = [rng_row(c[5]) for c in self.counters]
        arrays["rng"] = np.array([r for r, _ in rows], np.uint64).reshape(n, 6)
        arrays["rng_set"] = np.array([ok for _, ok in rows], bool)
        arrays["has_best"] = np.array(self.has_best, bool)
        if any(c[6] is not None for c in self.counters):  # reduce-on-plateau's state, NaN where there is none
            arrays[PLATEAU] = np.array([[np.nan] * 4 if c[6] is None else
                                        [c[6][0], np.nan if c[6][1] is None else c[6][1], c[6][2], c[6][3]]
                                        for c in self.counters], np.float64).reshape(n, 4)
        for k in self.keys:
            if not k.startswith(BEST) or any(self.has_best):
                off = self.offsets[k]
                arrays[k] = self.block[:n, off: off + math.prod(self.shapes[k])].reshape(n, *self.shapes[k])
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
            self.counters, self.has_best = [], []
