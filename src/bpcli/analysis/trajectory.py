"""A run's weights over its kept epochs, with the gradients and cost at each: what the weight plots and animate draw.

Gradients are not stored with the snapshots: they are computed again here with the one engine (engine.forward and
engine.backward on the run's training data, at each snapshot's weights), the cost and metric with train.evaluate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bpcli.data.dataset import Dataset
from bpcli.nn.engine import backward, forward
from bpcli.nn.model import Network
from bpcli.training.fit import evaluate

Array = np.ndarray


@dataclass(frozen=True)
class Along:
    """The network at some of a run's kept epochs (k of them), in float64.

    params['A.W']: (k, n_out, n_in) the weights after each epoch (epoch 0: the initial ones); grads['A.W']: the
    same shape, dC/dW of the mean training cost at those weights; loss (k,) that cost; metric (k,) accuracy or R^2.
    """

    epochs: Array
    params: dict[str, Array]
    grads: dict[str, Array]
    loss: Array
    metric: Array


def frame_indices(k: int, n: int) -> list[int]:
    """At most n indices into k snapshots, evenly spread, the first and the last always among them."""
    if n < 1:
        raise ValueError("n must be at least 1")
    if k <= n:
        return list(range(k))
    if n == 1:
        return [k - 1]
    return sorted({round(i * (k - 1) / (n - 1)) for i in range(n)})


def set_params(net: Network, params: dict[str, Array], i: int) -> None:
    """Put snapshot i of `params` (stacked arrays keyed as Network.named_arrays) into `net`, in place."""
    for key, a in net.named_arrays().items():
        a[...] = params[key][i]


def along(net: Network, data: Dataset, epochs, params: dict[str, Array], pick: list[int] | None = None) -> Along:
    """The snapshots `pick` (indices; default all) of a trajectory, each with its gradients, cost and metric.

    net: the run's network (its shapes, activations and loss; its weights are not used); data: its training set.
    """
    idx = list(range(len(epochs))) if pick is None else list(pick)
    work = net.astype(np.float64)
    keys = list(work.named_arrays())
    grads = {k: np.empty((len(idx),) + work.named_arrays()[k].shape) for k in keys}
    loss = np.empty(len(idx))
    metric = np.full(len(idx), np.nan)
    x = data.x.astype(np.float64, copy=False)
    y = data.y.astype(np.float64, copy=False)
    for n, i in enumerate(idx):
        set_params(work, params, i)
        with np.errstate(over="ignore", invalid="ignore"):
            _, tape = forward(work, x)
            g = backward(work, tape, y)
        for l, layer in enumerate(work.layers):
            grads[f"{layer.letter}.W"][n] = g.dW[l]
            if g.db[l] is not None:
                grads[f"{layer.letter}.b"][n] = g.db[l]
        c, m = evaluate(work, data)
        loss[n] = c
        metric[n] = np.nan if m is None else m
    return Along(np.asarray(epochs)[idx].astype(int), {k: np.asarray(params[k])[idx].astype(np.float64) for k in keys},
                 grads, loss, metric)


def series(net: Network, names: list[str]) -> list[tuple[str, str, tuple[int, ...]]]:
    """(name as the network spells it, array key 'A.W', index in that array) for each parameter name given.

    NameError_ (with did-you-mean) on an unknown name, from Network.resolve.
    """
    out = []
    for name in names:
        ref = net.resolve(name)
        out.append((ref.name, f"{net.layers[ref.layer].letter}.{ref.kind}", ref.index))
    return out


def layer_names(net: Network, letter: str) -> list[str]:
    """Every parameter name of the layer lettered `letter`; NameError_ with did-you-mean when there is none."""
    from bpcli.errors import NameError_, did_you_mean
    letters = [layer.letter for layer in net.layers]
    typed = letter.strip()
    if typed.upper() not in letters:
        raise NameError_(f"--layer: unknown layer '{letter}'{did_you_mean(typed.upper(), letters)}; this network's "
                         f"layers are {', '.join(letters)}")
    l = letters.index(typed.upper())
    return [r.name for r in net.param_refs() if r.layer == l]
