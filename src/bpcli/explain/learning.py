"""The learning page's numbers (bpcli view): each kept epoch's weights, explanations and activations, from the engine.

render.view lays them out as the page's data; everything here is computed by the engine (forward) and explain(),
read from a run folder's snapshots or a config's initial network.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from bpcli.data.dataset import Dataset, Prepared
from bpcli.explain.chain import explain
from bpcli.explain.result import Explanation
from bpcli.nn.engine import forward
from bpcli.nn.model import Network
from bpcli.schema import NetConfig, TrainConfig
from bpcli.training.fit import TrainState
from bpcli.training.schedules import in_force, schedule_note

Array = np.ndarray
Snapshots = Callable[[list[int]], Iterable[tuple[int, Network, TrainState | None]]]


@dataclass(frozen=True)
class Learning:
    """What a page is made of: the config, its network and prepared data, the history, where it comes from, the
    kept epochs, and snapshots(epochs), which yields (epoch, network, TrainState or None) for each of the given
    kept epochs in order."""

    cfg: NetConfig
    net: Network
    prepared: Prepared
    history: list[dict]
    source: str
    kept: list[int]
    snapshots: Snapshots


@dataclass(frozen=True)
class Plane:
    """An n x n grid over two inputs' range, lo (2,) to hi (2,) with a 10% margin; grid: (n * n, 2), its rows
    from the top (high x2) down."""

    n: int
    lo: Array
    hi: Array
    grid: Array


@dataclass(frozen=True)
class EpochState:
    """One epoch: its optimiser step, every parameter's value and Explanation (by name, in the network's order),
    each layer's outputs on the training samples, a_out: (m, n_out), and over the plane's grid, (n * n, n_out),
    when there is a plane."""

    epoch: int
    step: int
    weights: dict[str, float]
    explanations: dict[str, Explanation]
    acts: tuple[Array, ...]
    plane_acts: tuple[Array, ...] | None


def input_plane(net: Network, x: Array, n: int) -> Plane | None:
    """The plane over two inputs drawn as an n x n heatmap (None for other input counts or no samples)."""
    if net.n_inputs != 2 or not len(x):
        return None
    x = np.asarray(x, dtype=np.float64)
    lo, hi = x.min(axis=0), x.max(axis=0)
    pad = np.where(hi > lo, (hi - lo) * 0.1, 1.0)
    lo, hi = lo - pad, hi + pad
    g1 = lo[0] + (np.arange(n) + 0.5) / n * (hi[0] - lo[0])
    g2 = hi[1] - (np.arange(n) + 0.5) / n * (hi[1] - lo[1])
    gx, gy = np.meshgrid(g1, g2)
    return Plane(n, lo, hi, np.column_stack([gx.ravel(), gy.ravel()]))


def epoch_state(epoch: int, net: Network, state: TrainState | None, data: Dataset, train: TrainConfig,
                plane: Plane | None) -> EpochState:
    """The page's numbers of one epoch: each parameter explained as `explain --run RUN --epoch N --weight NAME
    --json` explains it (the training set `data`, the snapshot's optimiser buffers and step, the schedule's lr of
    the next epoch), the weights, and the forward pass over the samples and over the plane."""
    names = net.param_names()
    done, plateau = (state.epoch, state.plateau) if state else (0, None)
    settings, note = in_force(train, done, plateau), schedule_note(train, done, plateau)
    explanations = {name: explain(net, data.x, data.y, name, settings, None, True,
                                  buffers=state.buffers if state else None, step=state.step if state else 0,
                                  class_names=data.class_names, update_note=note)
                    for name in names}
    weights = {n: float(net.get(net.resolve(n))) for n in names}
    _, tape = forward(net, data.x)
    plane_acts = None
    if plane is not None:
        _, ptape = forward(net, plane.grid.astype(net.dtype))
        plane_acts = tuple(t.a_out for t in ptape)
    return EpochState(int(epoch), int(state.step) if state else 0, weights, explanations,
                      tuple(t.a_out for t in tape), plane_acts)


def epoch_states(learning: Learning, epochs: list[int], plane: Plane | None) -> Iterator[EpochState]:
    """epoch_state of each of the given kept epochs, in order, each read from its snapshot."""
    for epoch, net, state in learning.snapshots(epochs):
        yield epoch_state(epoch, net, state, learning.prepared.train, learning.cfg.train, plane)


def run_learning(run_dir: Path) -> Learning:
    """A run folder's page: every kept snapshot, read as `--epoch N` reads it; BpcliError when it keeps none."""
    from bpcli.runs.snapshot_read import kept, none_to, states
    from bpcli.runs.store import load_run

    loaded = load_run(run_dir)
    epochs = kept(loaded.snapshots[1])
    if not epochs:
        raise none_to(loaded, "show")
    return Learning(loaded.cfg, loaded.net, loaded.prepared, loaded.history, str(loaded.run_dir), epochs,
                    lambda wanted: states(loaded, wanted))


def config_learning(cfg: NetConfig, net: Network, prepared: Prepared) -> Learning:
    """A config's page: its network as initialised, trained for zero epochs."""
    return Learning(cfg, net, prepared, [], cfg.path, [0], lambda epochs: ((0, net, None) for _ in epochs[:1]))
