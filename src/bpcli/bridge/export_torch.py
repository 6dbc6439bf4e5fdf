"""The text of an exported model.py: an nn.Module that computes what bpcli computes, importing only torch and numpy.

Every activation and loss bpcli has is written with bpcli's constants; torch_bridge runs this very text for
`gradcheck --against torch`, so the check and the export cannot drift apart.
"""

from __future__ import annotations

from bpcli.bridge.export_spec import (
    ExportSpec, LayerSpec, activation_label, bias_key, formula_function, formula_lines, header_table, number,
    safe_dtype,
)
from bpcli.prose import wrap

# z is the weighted sums of one layer; the code computes f(z) as bpcli's registry entry does
ACTIVATION_CODE = {
    "identity": "{z}",
    "sigmoid": "torch.sigmoid({z})",
    "tanh": "torch.tanh({z})",
    "relu": "torch.relu({z})",
    "leaky_relu": "F.leaky_relu({z}, negative_slope={slope!r})",
    "elu": "F.elu({z}, alpha={alpha!r})",
    # ln(1 + e^z) exactly in both tails (F.softplus returns z itself above z = 20)
    "softplus": "torch.logaddexp({z}, torch.zeros_like({z}))",
    "silu": "F.silu({z})",
    # z/2 (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3))): bpcli's gelu, the tanh form
    "gelu": "F.gelu({z}, approximate=\"tanh\")",
    "softmax": "torch.softmax({z}, dim=1)",
}

SQUARED = {  # bpcli's squared_error conventions; the cost is the mean over samples of L_i
    "half_sum": ("0.5 * ((y_hat - y) ** 2).sum(dim=1).mean()", "L = 1/2 sum_k (y_k - y'_k)^2"),
    "mean": ("F.mse_loss(y_hat, y)", "L = 1/n sum_k (y_k - y'_k)^2, PyTorch's MSELoss"),
    "sklearn": ("0.5 * ((y_hat - y) ** 2).sum(dim=1).mean()",
                "L = 1/2 sum_k (y_k - y'_k)^2, what scikit-learn's MLP differentiates"),
    "sum": ("((y_hat - y) ** 2).sum(dim=1).mean()", "L = sum_k (y_k - y'_k)^2"),
}


def activation_code(layer: LayerSpec, z: str) -> str:
    """f(z) of one layer as torch code; BpcliError for an activation this exporter does not know."""
    if "f" in layer.params:
        return f"{formula_function(layer)}({z})"
    template = ACTIVATION_CODE.get(layer.activation)
    if template is None:
        from bpcli.errors import BpcliError
        raise BpcliError(f"layer {layer.letter}: activation '{layer.activation}' has no PyTorch form in "
                         f"bpcli export yet (exportable: {', '.join(ACTIVATION_CODE)})")
    return template.format(z=z, **{k: float(number(v)) for k, v in layer.params.items()})


def loss_code(spec: ExportSpec) -> tuple[str, str]:
    """(the cost's torch code from y_hat or z, and its description)."""
    if "L" in spec.loss_params:  # the config's own loss, written beside the model by formula_lines
        return "loss_formula(y, y_hat).sum(dim=1).mean()", "the config's own L (FORMULAS), summed over the outputs"
    if spec.fused and spec.loss == "cross_entropy":
        return "F.cross_entropy(z, y)", "cross_entropy from the logits: mean_i -sum_k y_k ln softmax(z_i)_k"
    if spec.fused and spec.loss == "binary_cross_entropy":
        return ('F.binary_cross_entropy_with_logits(z, y, reduction="none").sum(dim=1).mean()',
                "binary_cross_entropy from the logits")
    if spec.loss == "squared_error":
        return SQUARED[spec.loss_params.get("convention", "half_sum")]
    if spec.loss == "binary_cross_entropy":
        return ("-(y * torch.log(p) + (1 - y) * torch.log1p(-p)).sum(dim=1).mean()",
                "binary_cross_entropy, y' clipped to [eps, 1 - eps]")
    if spec.loss == "cross_entropy":
        return "-(y * torch.log(p)).sum(dim=1).mean()", "cross_entropy, y' clipped to [eps, 1 - eps]"
    if spec.loss == "absolute_error":
        return "(y_hat - y).abs().sum(dim=1).mean()", "L = sum_k |y_k - y'_k|"
    if spec.loss == "huber":
        d = number(spec.loss_params.get("delta", 1.0))
        return f'F.huber_loss(y_hat, y, reduction="none", delta={d}).sum(dim=1).mean()', f"huber, delta {d}"
    from bpcli.errors import BpcliError
    raise BpcliError(f"loss '{spec.loss}' has no PyTorch form in bpcli export yet")


def _mapping_lines(spec: ExportSpec) -> list[str]:
    """The docstring's short form of names.json: which tensor entry is which bpcli parameter."""
    lines = []
    for layer in spec.layers:
        first = layer.weight_names[0][0]
        symbol = first.rstrip("0123456789_")
        kind = f"{symbol}_jk" if layer.n_out > 1 else f"{symbol}_k"
        lines.append(f"    {layer.letter}.weight[j-1, k-1] is bpcli's {kind} ({layer.letter}.weight[0, 0] is {first})")
        if layer.b is not None:
            key, name = bias_key(layer), layer.bias_names[0]
            lines.append({"on": f"    {key}[j-1] is b_{layer.letter}j ({key}[0] is {name})",
                          "frozen": f"    {key}[j-1] is b_{layer.letter}j ({key}[0] is {name}), frozen: a buffer",
                          "shared": f"    {key} is {name}, one parameter shared by the layer's nodes",
                          "shared_frozen": f"    {key} is {name}, one bias shared by the layer's nodes, frozen: a buffer",
                          }[layer.bias])
    return [w for line in lines for w in wrap(line.strip(), indent="    ", subsequent_indent="        ")]


def torch_source(spec: ExportSpec) -> str:
    """model.py for this network."""
    cls, dt = spec.class_name, safe_dtype(spec)
    acts = ", ".join(f"{layer.letter}: {layer.n_out} {activation_label(layer)}" for layer in spec.layers)
    cost, cost_doc = loss_code(spec)
    top = spec.layers[-1]
    lines = [
        *wrap(f'"""The {spec.sizes} network bpcli trained, as a PyTorch module ({dt}); NETWORK names it and its '
              "source."),
        "",
        f"Exported by bpcli {_version()}. It needs only torch and numpy:",
        "",
        "    from model import load",
        *wrap(f"net = load()    # {cls} with the trained weights (weights.npz)", indent="    ",
              subsequent_indent="                    # "),
        f"    y_hat = net(x)  # x: (m, {len(spec.inputs)}) tensor, its columns as INPUTS lists them",
        "",
        "Parameter names (names.json lists every entry):",
        *_mapping_lines(spec),
        '"""',
        "",
        "from pathlib import Path",
        "",
        "import numpy as np",
        "import torch",
        "import torch.nn.functional as F",
        "from torch import nn",
        "",
        f"DTYPE = torch.{dt}",
        *header_table(spec),
    ]
    lines += formula_lines(spec, "torch")
    lines += ["", "", f"class {cls}(nn.Module):", *_docstring(f"{len(spec.inputs)} inputs -> {acts}.", "    "), "",
              *_init_lines(spec), *_logits_lines(spec)]
    lines += ["", "    def forward(self, x):", f'        """The network\'s output y\': (m, {top.n_out})."""',
              f"        return {activation_code(top, 'self.logits(x)')}", "", "",
              "def cost(model, x, y):",
              *_docstring(f"bpcli's cost C = 1/m sum_i L_i: {cost_doc}.", "    ")]
    if spec.fused:
        lines.append("    z = model.logits(x)")
    else:
        lines.append("    y_hat = model(x)")
        if "p" in cost.replace("(", " ").replace(")", " ").split():
            lines.append("    p = y_hat.clamp(torch.finfo(DTYPE).eps, 1 - torch.finfo(DTYPE).eps)")
    lines += [f"    y = torch.as_tensor(y, dtype=DTYPE)", f"    return {cost}", "", "",
              'def load(path=Path(__file__).with_name("weights.npz")):',
              f'    """{cls} with the arrays of an .npz (read without pickle)."""',
              f"    model = {cls}()", "    with np.load(path, allow_pickle=False) as npz:",
              "        model.load_state_dict({k: torch.from_numpy(npz[k]) for k in npz.files})", "    return model"]
    if spec.classes:
        rule = "y_hat[:, 0] >= 0.5" if top.n_out == 1 else "y_hat.argmax(dim=1)"
        lines += ["", "", "def classes(y_hat):", f'    """The class of each row of the output ({"threshold 0.5" if top.n_out == 1 else "arg-max"})."""',
                  f"    return [CLASSES[int(i)] for i in {rule}]"]
    return "\n".join(lines) + "\n"


def _init_lines(spec: ExportSpec) -> list[str]:
    """The module's __init__: the input standardisation's buffers, one nn.Linear per layer and the biases
    nn.Linear does not hold (frozen, shared)."""
    lines = ["    def __init__(self):", "        super().__init__()"]
    if spec.mean is not None:
        n = len(spec.inputs)
        lines += ["        # inputs standardised as in training: x' = (x - mean) / std, in float64",
                  f"        self.register_buffer(\"input_mean\", torch.zeros({n}, dtype=torch.float64))",
                  f"        self.register_buffer(\"input_std\", torch.ones({n}, dtype=torch.float64))"]
    for layer in spec.layers:
        on = layer.bias == "on"
        lines.append(f"        self.{layer.letter} = nn.Linear({layer.n_in}, {layer.n_out}"
                     f"{'' if on else ', bias=False'}, dtype=DTYPE)")
        if layer.bias == "frozen":
            lines += ["        # frozen: never trained",
                      f"        self.register_buffer(\"{bias_key(layer)}\", torch.zeros({layer.n_out}, dtype=DTYPE))"]
        elif layer.bias == "shared":
            lines += [f"        # shared: one bias for all {layer.n_out} nodes",
                      f"        self.{bias_key(layer)} = nn.Parameter(torch.zeros(1, dtype=DTYPE))"]
        elif layer.bias == "shared_frozen":
            lines += [f"        # shared by all {layer.n_out} nodes, never trained",
                      f"        self.register_buffer(\"{bias_key(layer)}\", torch.zeros(1, dtype=DTYPE))"]
    return lines


def _logits_lines(spec: ExportSpec) -> list[str]:
    """The module's logits(x): the inputs standardised, then each layer; the output layer's z not activated."""
    top = spec.layers[-1]
    lines = ["", "    def logits(self, x):", f'        """The output layer\'s weighted sums z_{top.letter}: '
             f'(m, {top.n_out})."""']
    if spec.mean is not None:
        lines.append("        x = ((x.to(torch.float64) - self.input_mean) / self.input_std).to(DTYPE)")
    else:
        lines.append("        x = x.to(DTYPE)")
    a = "x"
    for layer in spec.layers:
        z = f"self.{layer.letter}({a})" + ("" if layer.bias in ("on", "off") else f" + self.{bias_key(layer)}")
        if layer is top:
            lines.append(f"        return {z}")
        else:
            lines.append(f"        a = {activation_code(layer, z)}")
            a = "a"
    return lines


def _docstring(text: str, indent: str) -> list[str]:
    """A docstring at `indent`, on one line if it fits in 79 columns, else wrapped between terms."""
    one = f'{indent}"""{text}"""'
    if len(one) <= 79:
        return [one]
    return wrap(text, indent=f'{indent}"""', subsequent_indent=indent) + [f'{indent}"""']


def _version() -> str:
    from bpcli import __version__
    return __version__
