"""explain's last step: the configured optimiser's next update of one parameter, every term read from
Optimizer.step run on copies (optim.preview_step), continuing from the optimiser state it is given."""

from __future__ import annotations

import numpy as np

from bpcli.nn.engine import Gradients
from bpcli.explain.result import Update
from bpcli.nn.model import Network, ParamRef
from bpcli.training.optim import TERMS, hyper_of, l1_of, preview_step
from bpcli.schema import TrainConfig


def settings_of(train: TrainConfig | float) -> TrainConfig:
    """A config's training settings, or plain gradient descent with learning rate `train`."""
    return train if isinstance(train, TrainConfig) else TrainConfig(optimizer="gd", lr=float(train))


def next_update(net: Network, ref: ParamRef, grads: Gradients, s: TrainConfig, buffers: dict | None, step: int,
                m: int, note: str = "") -> Update:
    """The update training would make next to parameter `ref` with these gradients (over m samples: all of them,
    or one batch); `note` is said with it."""
    layer = net.layers[ref.layer]
    old = float(net.get(ref))
    gradient = float((grads.dW[ref.layer] if ref.kind == "W" else grads.db[ref.layer])[ref.index])
    trainable = ref.kind == "W" or layer.bias_trainable
    wd = float(s.weight_decay) if ref.kind == "W" else 0.0
    notes = [note] if note else []
    if s.batch_size is not None and s.batch_size < m:
        notes.append(f"training steps on mini-batches of {s.batch_size}: each step uses the gradient of one batch; "
                     f"shown is the step with the gradient over all {m} samples")
    if not trainable:
        notes.insert(0, f"{ref.name} is frozen: training leaves it at {old:g}")
        return Update(s.optimizer, False, old, gradient, old, float(s.lr), step + 1, wd, (), hyper_of(s) + l1_of(s),
                      "; ".join(notes))
    trace = preview_step(net, s, grads, buffers, step)[f"{layer.letter}.{ref.kind}"]
    terms = tuple((name, float(np.asarray(trace[name])[ref.index])) for name in TERMS[s.optimizer]
                  if name in trace and name not in ("value", "gradient", "new"))
    new = float(trace["new"][ref.index])
    return Update(s.optimizer, True, old, gradient, new, float(s.lr), step + 1, wd, terms, hyper_of(s) + l1_of(s),
                  "; ".join(notes))
