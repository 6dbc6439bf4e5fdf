"""bpcli's network in PyTorch (the exported model.py, run in memory) and `gradcheck --against torch`.

The only module that imports torch, and only when one of its functions is called; bpcli itself never needs it.
"""

from __future__ import annotations

import time
import types

import numpy as np

from bpcli.errors import BpcliError
from bpcli.bridge.export_spec import ExportSpec, spec_from_network, torch_arrays
from bpcli.gradcheck.check import layer_summaries, selection, subset
from bpcli.gradcheck.report import ArrayResult, GradcheckOptions, GradcheckReport
from bpcli.gradcheck.rounding import analytic_bounds
from bpcli.gradcheck.verdict import SAFETY, judge
from bpcli.nn.model import Network

Array = np.ndarray

AGAINST = "PyTorch autograd"
TORCH_TOL = 1e-9  # pass line of --against torch: both compute the same sums, so only rounding may differ
INSTALL = "pip install 'bpcli[torch]'"


def require_torch(what: str = "this"):
    """The torch module, or one clear BpcliError (exit 2) saying how to install it."""
    try:
        import torch
    except ImportError:
        raise BpcliError(f"{what} needs PyTorch, which is not installed here; install it with {INSTALL}") from None
    return torch


def load_source(spec: ExportSpec) -> types.ModuleType:
    """The model.py that `bpcli export --to pytorch` writes for spec, run as a module in memory.

    The check runs the exported code itself rather than a second translation, so what it verifies is what users get.
    """
    require_torch()
    from bpcli.bridge.export_torch import torch_source
    mod = types.ModuleType("bpcli_exported_model")
    mod.__file__ = "model.py"  # the generated load() defaults to weights.npz beside it; never used here
    exec(compile(torch_source(spec), f"<bpcli export of {spec.name}: model.py>", "exec"), mod.__dict__)
    return mod


def to_torch(net: Network, name: str = "network", scaling=None, classes=None):
    """(module, its model.py namespace): net in PyTorch with net's weights and dtype."""
    torch = require_torch()
    spec = spec_from_network(net, name, scaling=scaling, classes=classes)
    mod = load_source(spec)
    model = getattr(mod, spec.class_name)()
    model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in torch_arrays(spec).items()})
    return model, mod


def torch_gradients(net: Network, x: Array, y: Array) -> tuple[float, list[Array], list[Array | None]]:
    """(C, dC/dW[l], dC/db[l]) by PyTorch autograd of the exported model's cost, in net's dtype.

    Frozen biases are buffers in the module; their gradient is taken all the same, as bpcli's backward gives it.
    """
    torch = require_torch()
    model, mod = to_torch(net)
    frozen = []
    for layer in net.layers:
        if layer.bias in ("frozen", "shared_frozen"):
            buf = getattr(model, f"{layer.letter}_bias")
            buf.requires_grad_(True)
            frozen.append(buf)
    dtype = getattr(torch, np.dtype(net.dtype).name)
    c = mod.cost(model, torch.as_tensor(np.asarray(x), dtype=dtype), torch.as_tensor(np.asarray(y), dtype=dtype))
    c.backward()
    dW, db = [], []
    for layer in net.layers:
        dW.append(getattr(model, layer.letter).weight.grad.detach().numpy().copy())
        if layer.bias == "off":
            db.append(None)
        else:
            owner = getattr(model, layer.letter) if layer.bias == "on" else model
            attr = "bias" if layer.bias == "on" else f"{layer.letter}_bias"
            db.append(getattr(owner, attr).grad.detach().numpy().copy())
    return float(c.detach()), dW, db


def check_against_torch(net: Network, x: Array, y: Array, options: GradcheckOptions | None = None, name: str = "",
                        source: str = "") -> GradcheckReport:
    """Every selected gradient entry of bpcli's backprop against PyTorch autograd of the same cost, in float64.

    Judged by gradcheck's one rule (gradcheck.verdict.judge), each entry against its own bound: both sides are
    analytic, so the bound is twice backprop's own rounding bound (gradcheck.rounding.analytic_bounds).
    """
    from bpcli.nn.engine import backward, cost, forward

    t0 = time.perf_counter()
    opt = options or GradcheckOptions(tol=TORCH_TOL, samples=None)
    opt.validate()
    net = net.astype(np.float64)
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    m_total = x.shape[0]
    notes: list[str] = []
    x, y = subset(x, y, opt, np.random.default_rng(opt.seed), notes)
    with np.errstate(all="ignore"):
        _, tape = forward(net, x)
        grads = backward(net, tape, y)
        base_cost = cost(net, tape, y)
    _, tdW, tdb = torch_gradients(net, x, y)
    sel = selection(net, tuple(opt.weights))
    m = x.shape[0]
    with np.errstate(all="ignore"):
        abound = analytic_bounds(net, tape, y, grads)
    arrays = []
    for (l, kind), flat in sel.items():
        if kind == "W":
            ana, num, bound = grads.dW[l], tdW[l], abound[l][0]
        else:
            ana, num, bound = grads.db[l], tdb[l], abound[l][1]
        a, n, s = ana.ravel()[flat], num.ravel()[flat], 2 * bound.ravel()[flat]
        rel, code, passed = judge(a, n, s, opt.tol)
        arrays.append(ArrayResult(net.layers[l], kind, flat, a, n, rel, code, passed, s))
    n_selected = int(sum(v.size for v in sel.values()))
    return GradcheckReport(name, source, net.n_params, n_selected, m, m_total, "torch", False, tuple(notes), opt,
                           base_cost, SAFETY, tuple(arrays), (), layer_summaries(net, sel, arrays, []), (),
                           time.perf_counter() - t0, against=AGAINST)
