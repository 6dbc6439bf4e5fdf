"""Reading snapshots back: run.json's list of chunks checked, a chunk checked against its SHA-256 and the network,
and a run as it was after any epoch kept."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np

from bpcli.errors import BpcliError, RunFolderError
from bpcli.files import read_npz, read_regular, sha256
from bpcli.nn.model import Network
from bpcli.runs.snapshot_store import (
    CHUNK_NAME, PLATEAU, SCALARS, WHOLE, array_keys, plateau_of, describe, expand, is_pcg64_state, key_shape, rng_state,
    size_text, snapshot_bytes,
)
from bpcli.training.fit import TrainState

# --- reading -------------------------------------------------------------------------------------


def chunks_of(m: dict, path: Path) -> tuple[int, list[dict]]:
    """(every, chunks) of run.json's "snapshots" field, each checked; (None, []) for a run made before snapshots."""
    f = m.get("snapshots")
    if f is None:
        return None, []

    def bad(what: str):
        raise RunFolderError(f"{path}: damaged (snapshots: {what})")

    def whole(v) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**53

    if not isinstance(f, dict) or set(f) != {"every", "chunks"} or not whole(f["every"]) \
            or not isinstance(f["chunks"], list):
        bad("expected every and chunks")
    prev = -1
    for c in f["chunks"]:
        if not isinstance(c, dict) or set(c) != {"file", "sha256", "bytes", "count", "first", "last", "epochs"}:
            bad("a chunk entry is not file, sha256, bytes, count, first, last and epochs")
        m_ = CHUNK_NAME.fullmatch(c["file"]) if isinstance(c["file"], str) else None
        if m_ is None or not isinstance(c["sha256"], str) or not re.fullmatch(r"[0-9a-f]{64}", c["sha256"]) \
                or not all(whole(c[k]) for k in ("bytes", "count", "first", "last")):
            bad(f"chunk {str(c.get('file'))[:40]!r} is not described right")
        runs = c["epochs"]
        if not isinstance(runs, list) or len(runs) > c["count"] or not all(
                isinstance(r, list) and len(r) == 3 and all(whole(v) for v in r) and r[2] >= 1 and r[0] <= r[1]
                for r in runs):
            bad(f"{c['file']}: epochs are not runs of [first, last, step]")
        eps = expand(runs)
        if len(eps) != c["count"] or eps[0] != c["first"] or eps[-1] != c["last"] or eps[0] <= prev \
                or any(b <= a for a, b in zip(eps, eps[1:])) or (int(m_.group(1)), int(m_.group(2))) != (eps[0], eps[-1]):
            bad(f"{c['file']}: the epochs listed do not match the chunk's name, count or order")
        prev = eps[-1]
    return f["every"], f["chunks"]


def read_chunk(run_dir: Path, entry: dict, net: Network, keys: list[str]) -> dict[str, np.ndarray]:
    """A chunk's arrays, checked against run.json's SHA-256 and the network (keys: array_keys of the run)."""
    path = run_dir / entry["file"]
    k = entry["count"]
    biggest = max(a.size for a in net.named_arrays().values())
    data = read_regular(path, k * (biggest * 8 + 128) * (len(keys) + len(SCALARS)) + 65536, "snapshot chunk")
    again = "; train it again, or load the run without --epoch"
    if sha256(data) != entry["sha256"]:
        raise RunFolderError(f"{path}: does not match the checksum recorded in run.json (the file was changed "
                             f"after the run was saved){again}")
    arrays = read_npz(path, k * (biggest * 8 + 64) + 4096, "snapshot chunk", data=data,
                      max_total=k * (sum(int(np.prod(key_shape(net, key))) for key in keys) * 8
                                     + 64 * (len(keys) + len(SCALARS))) + 4096 * (len(keys) + len(SCALARS)))

    def bad(what: str):
        raise RunFolderError(f"{path}: damaged ({what}){again}")

    for key in SCALARS:
        if key not in arrays or arrays[key].shape[:1] != (k,):
            bad(f"'{key}' is missing or not {k} long")
    if not np.array_equal(arrays["epoch"], expand(entry["epochs"])):
        bad("its epochs are not those run.json lists")
    if arrays["rng"].shape != (k, 6) or arrays["rng"].dtype != np.uint64 or arrays["rng_set"].dtype != bool \
            or arrays["has_best"].dtype != bool or arrays["best_val"].dtype != np.float64 \
            or any(arrays[w].dtype != np.int64 or arrays[w].ndim != 1 or np.any(arrays[w] < 0) for w in WHOLE):
        bad("its counters are not arrays of the right kind")
    if np.any(np.isnan(arrays["best_val"])) or np.any(arrays["best_epoch"] > arrays["epoch"]):
        bad("best_val or best_epoch out of range")
    r = arrays["rng"][arrays["rng_set"]]  # PCG64: an odd increment, has_uint32 0 or 1, a 32-bit uinteger
    if np.any(r[:, 3] % 2 != 1) or np.any(r[:, 4] > 1) or np.any(r[:, 5] >= 2**32):
        bad("a random generator state is not valid")
    p = arrays.get(PLATEAU)
    if p is not None and (p.shape != (k, 4) or p.dtype != np.float64 or np.any(np.isinf(p))
                          or np.any(p[~np.isnan(p[:, 0])][:, [0, 2, 3]] < 0)):
        bad("its reduce-on-plateau state is not (k, 4) numbers")
    for key in arrays:
        if key in SCALARS or key == PLATEAU:
            continue
        if key not in keys:
            bad(f"array '{key[:40]}' does not belong to the network in config.yaml")
        a, shape = arrays[key], (k, *key_shape(net, key))
        if a.shape != shape or a.dtype != np.dtype(net.dtype):
            bad(f"array '{key}' has shape {a.shape} and type {a.dtype}, expected {shape} and {np.dtype(net.dtype)}")
        rows = slice(None) if not key.startswith(TrainState.BEST) else arrays["has_best"]
        if not np.all(np.isfinite(a[rows])):
            bad(f"array '{key}' holds NaN or infinite values")
    missing = [key for key in keys if key not in arrays
               and not (key.startswith(TrainState.BEST) and not arrays["has_best"].any())]
    if missing:
        bad(f"arrays {', '.join(missing[:4])} are missing")
    return arrays


def state_at(arrays: dict[str, np.ndarray], i: int, net: Network) -> tuple[Network, TrainState]:
    """The network and training state of snapshot i of a chunk read by read_chunk."""
    out = net.copy()
    for key, a in out.named_arrays().items():
        a[...] = arrays[key][i]
    buffers = {k: np.array(v[i], dtype=net.dtype) for k, v in arrays.items()
               if k not in SCALARS and ":" in k and (not k.startswith(TrainState.BEST) or arrays["has_best"][i])}
    best_val = float(arrays["best_val"][i])
    rng = rng_state(arrays["rng"][i]) if arrays["rng_set"][i] else None
    if rng is not None and not is_pcg64_state(rng):
        raise RunFolderError(f"snapshot of epoch {int(arrays['epoch'][i])}: damaged (its random generator state "
                             "is not valid)")
    state = TrainState(epoch=int(arrays["epoch"][i]), step=int(arrays["step"][i]), buffers=buffers,
                       rng_state=rng,
                       best_val=best_val, best_epoch=int(arrays["best_epoch"][i]),
                       bad_epochs=int(arrays["bad_epochs"][i]), plateau=plateau_of(arrays, i))
    return out, state


def states(loaded, epochs: list[int]):
    """(epoch, network, TrainState) of each of the given kept epochs of a loaded run (runs.load_run's), in order,
    read chunk by chunk as `--epoch N` reads them (state_at); a chunk holding none of them is not read."""
    keys = array_keys(loaded.net, loaded.cfg.train)
    wanted = set(epochs)
    for c in loaded.snapshots[1]:
        eps = expand(c["epochs"])
        if not wanted.intersection(eps):
            continue
        arrays = read_chunk(loaded.run_dir, c, loaded.net, keys)
        for i, e in enumerate(eps):
            if e in wanted:
                net, state = state_at(arrays, i, loaded.net)
                yield e, net, state


def kept(chunks: list[dict]) -> list[int]:
    """Every epoch with a snapshot, in order (from run.json alone)."""
    return [e for c in chunks for e in expand(c["epochs"])]


def not_kept(loaded, epoch: int) -> BpcliError:
    """The error for an epoch with no snapshot: what the run keeps instead."""
    every, chunks = loaded.snapshots
    d, last = loaded.run_dir, loaded.state.epoch
    if epoch < 0:
        return BpcliError(f"--epoch: epochs are counted from 0 (the initial weights), found {epoch}")
    if not chunks:
        return BpcliError(f"--epoch: {d} keeps no weight snapshots ({none_kept(loaded.cfg, loaded.net, every)})")
    beyond = f"the run has {last} epoch{'s' if last != 1 else ''}; " if epoch > last else ""
    return BpcliError(f"--epoch {epoch}: {beyond}{d} keeps the weights of epochs {describe(kept(chunks))}")


def none_to(loaded, to: str) -> BpcliError:
    """The error for a command that needs a run's kept epochs (`to` draw them, show them) when it keeps none."""
    every = loaded.snapshots[0]
    return BpcliError(f"{loaded.run_dir} keeps no weight snapshots ({none_kept(loaded.cfg, loaded.net, every)}), "
                      f"so there are no epochs to {to}")


def none_kept(cfg, net: Network, every: int | None) -> str:
    """Why a run keeps no snapshots, in a few words."""
    if every is None:
        return "it was trained by a bpcli from before snapshots"
    if not cfg.train.snapshots:
        return "train.snapshots: off"
    size = snapshot_bytes(net, cfg.train)
    return (f"one snapshot takes {size_text(size)}, more than half of train.snapshots' budget of "
            f"{cfg.train.snapshot_budget_mb:g} MB; raise budget_mb or give every: N")


def find(loaded, epoch: int) -> tuple[dict, int]:
    """(chunk entry, index in it) of the snapshot of `epoch`; BpcliError listing what is kept if none."""
    for c in loaded.snapshots[1]:
        if c["first"] <= epoch <= c["last"]:
            eps = expand(c["epochs"])
            if epoch in eps:
                return c, eps.index(epoch)
    raise not_kept(loaded, epoch)


def at_epoch(loaded, epoch: int):
    """A LoadedRun (runs.load_run's) as it was after `epoch`: weights, optimiser state, RNG and history."""
    from bpcli.runs.history import read_prefix
    entry, i = find(loaded, epoch)
    keys = array_keys(loaded.net, loaded.cfg.train)
    arrays = read_chunk(loaded.run_dir, entry, loaded.net, keys)
    net, state = state_at(arrays, i, loaded.net)
    final = epoch == loaded.state.epoch
    state.status = loaded.state.status if final else "running"
    state.message = loaded.state.message if final else ""
    letters = [layer.letter for layer in net.layers]
    _, sample = read_prefix(loaded.run_dir / loaded.history_file["file"], loaded.history_file, letters, epoch)
    history = [r.to_dict() for r in sample]
    return dataclasses.replace(loaded, net=net, state=state, history=history, epoch=epoch)
