"""An export's optimiser state in the layout of PyTorch's Optimizer.state_dict(), so training goes on in torch.optim.

optimizer.json holds the optimiser's class and param_groups (lr, betas, eps, weight_decay, ... and the module's
parameter names in order); optimizer_state.npz holds each parameter's state ("0.exp_avg", "0.exp_avg_sq",
"0.step" for Adam and AdamW; "0.square_avg" for RMSprop, "0.sum" for Adagrad, each with "0.step";
"0.momentum_buffer" for momentum and nesterov), read with allow_pickle=False. Weight decay is bpcli's L2
term on the weights only, so the biases are a second group with weight_decay 0.
"""

from __future__ import annotations

import json

import numpy as np

from bpcli.errors import BpcliError
from bpcli.files import npz_bytes
from bpcli.nn.model import Network
from bpcli.schema import TrainConfig

TORCH_CLASS = {"gd": "SGD", "sgd": "SGD", "momentum": "SGD", "nesterov": "SGD", "rmsprop": "RMSprop",
               "adagrad": "Adagrad", "adam": "Adam", "adamw": "AdamW"}
# each torch class's per-parameter state from bpcli's buffers (m:KEY, v:KEY; see optim.BUFFERS) and its step count
_STATE = {"Adam": (("exp_avg", "m"), ("exp_avg_sq", "v")), "AdamW": (("exp_avg", "m"), ("exp_avg_sq", "v")),
          "RMSprop": (("square_avg", "v"),), "Adagrad": (("sum", "v"),)}


def torch_name(layer, key: str) -> str:
    """The module's parameter name of bpcli's A.W or A.b (A.weight; A.bias, or A_bias for a shared bias)."""
    if key.endswith(".W"):
        return f"{layer.letter}.weight"
    return f"{layer.letter}.bias" if layer.bias == "on" else f"{layer.letter}_bias"


def optimizer_files(net: Network, settings: TrainConfig, buffers: dict[str, np.ndarray], steps: int,
                    dtype: str) -> dict[str, bytes]:
    """optimizer.json and optimizer_state.npz for a network after `steps` updates with `buffers` (m:KEY, v:KEY)."""
    kind = TORCH_CLASS.get(settings.optimizer)
    if kind is None:
        raise BpcliError(f"--optimizer-state: no PyTorch form of the {settings.optimizer} optimiser's state yet "
                         f"(exportable: {', '.join(TORCH_CLASS)})")
    weights, biases = [], []
    for layer, b in zip(net.layers, net.b):
        weights.append((f"{layer.letter}.W", torch_name(layer, ".W")))
        if b is not None and layer.bias_trainable:
            biases.append((f"{layer.letter}.b", torch_name(layer, ".b")))
    hyper = _hyper(kind, settings)
    groups, arrays, index = [], {}, 0
    for params, wd in ((weights, settings.weight_decay), (biases, 0.0)):
        if not params:
            continue
        groups.append({**hyper, "weight_decay": wd, "params": list(range(index, index + len(params))),
                       "param_names": [name for _, name in params]})
        for key, _ in params:
            if kind in _STATE:
                for field, buf in _STATE[kind]:
                    arrays[f"{index}.{field}"] = buffers[f"{buf}:{key}"].astype(dtype)
                arrays[f"{index}.step"] = np.array(float(steps))
            elif settings.optimizer in ("momentum", "nesterov") and steps > 0:  # torch has no buffer before a step
                arrays[f"{index}.momentum_buffer"] = buffers[f"m:{key}"].astype(dtype)
            index += 1
    doc = {"optimizer": kind, "bpcli_optimizer": settings.optimizer, "steps": steps, "param_groups": groups}
    return {"optimizer.json": (json.dumps(doc, indent=2) + "\n").encode(), "optimizer_state.npz": npz_bytes(arrays)}


def _hyper(kind: str, s: TrainConfig) -> dict:
    """The torch class's constructor arguments (but params and weight_decay) for bpcli's settings."""
    if kind in ("Adam", "AdamW"):
        return {"lr": s.lr, "betas": [s.beta1, s.beta2], "eps": s.epsilon, "amsgrad": False, "maximize": False}
    if kind == "RMSprop":
        return {"lr": s.lr, "alpha": s.alpha, "eps": s.epsilon, "momentum": 0.0, "centered": False,
                "maximize": False}
    if kind == "Adagrad":
        return {"lr": s.lr, "lr_decay": 0.0, "initial_accumulator_value": 0.0, "eps": s.epsilon, "maximize": False}
    return {"lr": s.lr, "momentum": s.momentum if s.optimizer in ("momentum", "nesterov") else 0.0,
            "dampening": 0.0, "nesterov": s.optimizer == "nesterov", "maximize": False}


# Appended to model.py when the state is exported: fixed text, no name from the config reaches it (the
# parameter names are read from optimizer.json at run time).
LOADER = '''

def load_optimizer(model, folder=Path(__file__).parent):
    """The torch.optim optimiser over model's parameters with the state bpcli's training reached
    (optimizer.json and optimizer_state.npz, read without pickle): its next step is bpcli's next step."""
    import json

    meta = json.loads((folder / "optimizer.json").read_text())
    named = dict(model.named_parameters())
    groups = [{k: v for k, v in g.items() if k not in ("params", "param_names")} for g in meta["param_groups"]]
    for group, saved in zip(groups, meta["param_groups"]):
        group["params"] = [named[name] for name in saved["param_names"]]
    optimizer = getattr(torch.optim, meta["optimizer"])(groups)
    state = {}
    with np.load(folder / "optimizer_state.npz", allow_pickle=False) as npz:
        for key in npz.files:
            index, field = key.split(".", 1)
            value = torch.from_numpy(npz[key])
            state.setdefault(int(index), {})[field] = value if field != "step" else value.to(torch.float32)
    # the constructor filled each group with its defaults; the saved groups keep those, with indices for params
    saved_groups = [{**g, "params": saved["params"]} for g, saved in zip(optimizer.param_groups, meta["param_groups"])]
    optimizer.load_state_dict({"state": state, "param_groups": saved_groups})
    return optimizer
'''
