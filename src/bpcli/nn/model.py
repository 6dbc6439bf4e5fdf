"""Network: layers and named parameters, the parameter-name grammar (parse, resolve, list), and build(config).

Naming follows the seed: inputs x1, x2; layers lettered A, B, C, ... from the first hidden layer;
node j of layer A is A<j> (a layer of one node is just its letter); the weight into node j from
node k of the layer before is <symbol><j><k> (w12), with the node index dropped in a layer of
one node (v1) and the indices joined by '_' when either passes 9 (w12_3).  w[1,2] is accepted
too.  The bias of node A1 is b_A1 (also bA1, b[A1]); a bias shared by a whole layer is b_A.

The grammar is unambiguous because of what symbols may be: ASCII lower-case letters that do not begin
with b (every name beginning with b is a bias) and are not o, x, y or z (outputs, inputs, targets);
letters are single ASCII capitals.  Typed names are NFKC-normalised, so a full-width ｗ１１ is w11.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

import numpy as np

from bpcli.nn.activations import Activation, get_activation
from bpcli.errors import NameError_, did_you_mean, is_finite_number
from bpcli.nn.losses import Loss, get_loss
from bpcli.schema import NetConfig

Array = np.ndarray

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
SYMBOLS = "wvutsrqpnmlkjhgfedc"  # w for the first layer, then v, u, t, ... (never b, o, x, y, z)
BIAS_MODES = ("on", "off", "frozen", "shared", "shared_frozen")  # shared_frozen: one untrained bias per layer
RESERVED_SYMBOLS = ("o", "x", "y", "z")  # node outputs o1, inputs x1, targets y, and z: never weight symbols
MAX_SYMBOL = 16

LISTED_PARAMS = 100_000  # parameters show and step list by name: a row each costs ~1 kB, a large network has millions


def symbol_problem(symbol: str) -> str | None:
    """Why `symbol` cannot name a layer's weights, or None when it can (see the module docstring)."""
    rule = (f"a weight symbol is 1 to {MAX_SYMBOL} ASCII lower-case letters a-z, not beginning with b (names "
            f"beginning with b are biases: b_A1, bA1) and not {', '.join(RESERVED_SYMBOLS)}")
    if not re.fullmatch(rf"[a-z]{{1,{MAX_SYMBOL}}}", symbol) or symbol.startswith("b") or symbol in RESERVED_SYMBOLS:
        return f"{rule}; found '{_clip(symbol)}'"
    return None


def letter_problem(letter: str) -> str | None:
    """Why `letter` cannot name a layer (its nodes A1, its biases b_A1), or None when it can."""
    if not re.fullmatch(r"[A-Z]", letter):
        return f"a layer letter is one ASCII upper-case letter A-Z; found '{_clip(letter)}'"
    return None


def _clip(text: str, n: int = 24) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


@dataclass(frozen=True)
class Layer:
    """One dense layer: z = a_in @ W.T + b, a_out = f(z). W: (n_out, n_in)."""

    letter: str
    n_in: int
    n_out: int
    activation: Activation
    bias: str = "on"  # on | off | frozen | shared | shared_frozen
    symbol: str = "w"

    @property
    def has_bias(self) -> bool:
        return self.bias != "off"

    @property
    def bias_trainable(self) -> bool:
        return self.bias in ("on", "shared")

    @property
    def shared_bias(self) -> bool:
        """One bias for the whole layer (b_A), trained or not."""
        return self.bias in ("shared", "shared_frozen")

    @property
    def n_params(self) -> int:
        nb = {"on": self.n_out, "frozen": self.n_out, "shared": 1, "shared_frozen": 1, "off": 0}[self.bias]
        return self.n_out * self.n_in + nb


@dataclass(frozen=True)
class ParamRef:
    """Where a named scalar parameter lives: layer index, 'W' or 'b', and its index."""

    name: str
    layer: int
    kind: str  # "W" or "b"
    to_node: int | None  # j (0-based); None for a shared bias
    from_node: int | None  # k (0-based); None for a bias

    @property
    def index(self) -> tuple[int, ...]:
        if self.kind == "W":
            return (self.to_node, self.from_node)
        return (0,) if self.to_node is None else (self.to_node,)


@dataclass
class Network:
    """Plain arrays with stable names. W[l]: (n_out, n_in); b[l]: (n_out,), (1,) if shared, None if off."""

    input_names: tuple[str, ...]
    layers: tuple[Layer, ...]
    W: list[Array]
    b: list[Array | None]
    loss: Loss
    dtype: type = np.float64
    extra: dict = field(default_factory=dict)

    @property
    def n_inputs(self) -> int:
        return len(self.input_names)

    @property
    def n_outputs(self) -> int:
        return self.layers[-1].n_out

    @property
    def n_params(self) -> int:
        return sum(layer.n_params for layer in self.layers)

    @property
    def fused_output(self) -> bool:
        """True when the loss pairs with the output activation to give dL/dz = y' - y."""
        return self.loss.fused_with is not None and self.loss.fused_with == self.layers[-1].activation.name

    def copy(self) -> Network:
        return Network(
            self.input_names, self.layers, [w.copy() for w in self.W],
            [None if b is None else b.copy() for b in self.b], self.loss, self.dtype, dict(self.extra),
        )

    def astype(self, dtype) -> Network:
        net = self.copy()
        net.W = [w.astype(dtype) for w in net.W]
        net.b = [None if b is None else b.astype(dtype) for b in net.b]
        net.dtype = dtype
        return net

    def get(self, ref: ParamRef) -> float:
        arr = self.W[ref.layer] if ref.kind == "W" else self.b[ref.layer]
        return float(arr[ref.index])

    def set(self, ref: ParamRef, value: float) -> None:
        arr = self.W[ref.layer] if ref.kind == "W" else self.b[ref.layer]
        arr[ref.index] = value

    def named_arrays(self) -> dict[str, Array]:
        """Every parameter array keyed 'A.W', 'A.b', ... (the layout of weights.npz)."""
        out: dict[str, Array] = {}
        for layer, W, b in zip(self.layers, self.W, self.b):
            out[f"{layer.letter}.W"] = W
            if b is not None:
                out[f"{layer.letter}.b"] = b
        return out

    # --- names -------------------------------------------------------------

    def node_name(self, l: int, j: int) -> str:
        return node_name(self.layers[l], j)

    def source_name(self, l: int, k: int) -> str:
        """The symbol of the k-th input of layer l: x1 for the first layer, o1 / o_A1 further on."""
        if l == 0:
            return self.input_names[k]
        return output_symbol(self, l - 1, k)

    def param_refs(self) -> list[ParamRef]:
        """Every scalar parameter, layer by layer, weights then biases."""
        return list(self.iter_param_refs())

    def iter_param_refs(self):
        """param_refs one at a time (a list of a large network's refs takes gigabytes)."""
        for l, layer in enumerate(self.layers):
            for j in range(layer.n_out):
                for k in range(layer.n_in):
                    yield ParamRef(weight_name(layer, j, k), l, "W", j, k)
            if layer.shared_bias:
                yield ParamRef(f"b_{layer.letter}", l, "b", None, None)
            elif layer.has_bias:
                for j in range(layer.n_out):
                    yield ParamRef(f"b_{node_name(layer, j)}", l, "b", j, None)

    def param_names(self) -> list[str]:
        return [r.name for r in self.param_refs()]

    def resolve(self, name: str) -> ParamRef:
        """The parameter called `name` (any accepted spelling); NameError_ lists valid names."""
        ref = parse_name(self, name)
        if ref is None:
            names = self.param_names()
            typed = unicodedata.normalize("NFKC", str(name)).strip()
            folded = typed.casefold()
            same = [n for n in names if n.casefold() == folded]  # V1 for v1
            longer = [n for n in names if n.casefold().startswith(folded)] if typed else []  # v1 on a wide layer: v11
            close = same or longer
            hint = f" (did you mean '{close[0]}'?)" if close else did_you_mean(typed, names)
            raise NameError_(
                f"unknown parameter '{name}'{hint}; this network's parameters are: {self._names_shown(names)} "
                "(see `bpcli show`)"
            )
        return ref

    def _names_shown(self, names: list[str]) -> str:
        """Every name when there are few; else each layer's weights and biases as 'first to last' ranges."""
        if len(names) <= 40:
            return ", ".join(names)
        parts = []
        for l, layer in enumerate(self.layers):
            refs = [r for r in self.iter_param_refs() if r.layer == l]
            for kind, what in (("W", "weights"), ("b", "biases")):
                mine = [r.name for r in refs if r.kind == kind]
                if mine:
                    parts.append(mine[0] if len(mine) == 1 else
                                 f"{mine[0]} to {mine[-1]} (layer {layer.letter}'s {len(mine)} {what})")
        return ", ".join(parts) + f"; {len(names)} in all"


def node_name(layer: Layer, j: int) -> str:
    return layer.letter if layer.n_out == 1 else f"{layer.letter}{j + 1}"


def output_symbol(net: Network, l: int, j: int) -> str:
    """Symbol for the output of node j of hidden layer l: o1 in a one-hidden-layer net, else o_A1."""
    if len(net.layers) == 2:
        return f"o{j + 1}"
    return f"o_{node_name(net.layers[l], j)}"


def weight_name(layer: Layer, j: int, k: int) -> str:
    """The canonical name of W[j, k] of `layer` (0-based j, k)."""
    if layer.n_out == 1:
        return f"{layer.symbol}{k + 1}"
    if j + 1 > 9 or k + 1 > 9:
        return f"{layer.symbol}{j + 1}_{k + 1}"
    return f"{layer.symbol}{j + 1}{k + 1}"


_WEIGHT_RE = re.compile(r"^([a-z]+)(\d+)(?:_(\d+))?$")
_BRACKET_RE = re.compile(r"^([a-z]+)\[\s*(\d+)\s*(?:,\s*(\d+)\s*)?\]$")
_BIAS_RE = re.compile(r"^b_?([A-Za-z])(\d*)$|^b\[\s*([A-Za-z])(\d*)\s*\]$")


def parse_name(net: Network, name: str) -> ParamRef | None:
    """Parse any accepted spelling of a parameter name; None when it names nothing here."""
    text = unicodedata.normalize("NFKC", str(name)).strip()
    m = _BIAS_RE.match(text)
    if m:
        letter = (m.group(1) or m.group(3)).upper()
        digits = m.group(2) if m.group(1) else m.group(4)
        for l, layer in enumerate(net.layers):
            if layer.letter != letter or not layer.has_bias:
                continue
            if layer.shared_bias:
                return ParamRef(f"b_{letter}", l, "b", None, None) if digits in ("", None) else None
            if digits in ("", None):
                if layer.n_out == 1:
                    return ParamRef(f"b_{letter}", l, "b", 0, None)
                return None
            j = int(digits) - 1
            if 0 <= j < layer.n_out:
                return ParamRef(f"b_{node_name(layer, j)}", l, "b", j, None)
        return None
    m = _WEIGHT_RE.match(text) or _BRACKET_RE.match(text)
    if not m:
        return None
    symbol, first, second = m.group(1), m.group(2), m.group(3)
    bracket = text.endswith("]")
    for l, layer in enumerate(net.layers):
        if layer.symbol != symbol:
            continue
        if second is not None:
            j, k = int(first) - 1, int(second) - 1
        elif layer.n_out == 1:
            j, k = 0, int(first) - 1
        elif bracket or len(first) != 2:
            return None
        else:
            j, k = int(first[0]) - 1, int(first[1]) - 1
        if 0 <= j < layer.n_out and 0 <= k < layer.n_in:
            return ParamRef(weight_name(layer, j, k), l, "W", j, k)
        return None
    return None


def init_weights(shape: tuple[int, int], scheme: str, rng: np.random.Generator, low: float, high: float,
                 std: float) -> Array:
    """Initial W of shape (n_out, n_in) for a named scheme."""
    n_out, n_in = shape
    if scheme == "xavier_uniform":
        lim = np.sqrt(6.0 / (n_in + n_out))
        return rng.uniform(-lim, lim, size=shape)
    if scheme == "xavier_normal":
        return rng.normal(0.0, np.sqrt(2.0 / (n_in + n_out)), size=shape)
    if scheme == "he_uniform":
        lim = np.sqrt(6.0 / n_in)
        return rng.uniform(-lim, lim, size=shape)
    if scheme == "he_normal":
        return rng.normal(0.0, np.sqrt(2.0 / n_in), size=shape)
    if scheme == "uniform":
        return rng.uniform(low, high, size=shape)
    if scheme == "normal":
        return rng.normal(0.0, std, size=shape)
    if scheme == "zeros":
        return np.zeros(shape)
    raise ValueError(f"unknown init scheme {scheme!r}")  # config validation makes this unreachable


INIT_SCHEMES = ("xavier_uniform", "xavier_normal", "he_uniform", "he_normal", "uniform", "normal", "zeros")


def build(cfg: NetConfig) -> Network:
    """Make the Network a checked config describes, with its initial weights (scheme, then explicit values)."""
    rng = np.random.default_rng(cfg.init.seed)
    layers, Ws, bs = [], [], []
    n_in = len(cfg.inputs)
    for lc in cfg.layers:
        act = get_activation(lc.activation, lc.activation_params)
        layer = Layer(lc.letter, n_in, lc.size, act, lc.bias, lc.symbol)
        W = init_weights((lc.size, n_in), cfg.init.scheme, rng, cfg.init.low, cfg.init.high, cfg.init.std)
        b = None
        if lc.bias != "off":
            b = np.full(1 if lc.bias in ("shared", "shared_frozen") else lc.size, cfg.init.bias, dtype=np.float64)
        if lc.weights is not None:
            W2 = np.asarray(lc.weights, dtype=float)
            if W2.shape == W.shape:
                W = W2
        if lc.biases is not None and b is not None:
            bv = np.atleast_1d(np.asarray(lc.biases, dtype=object))
            if bv.ndim == 1 and bv.shape[0] == b.shape[0] and all(is_finite_number(v) for v in bv):
                b = bv.astype(np.float64)
        layers.append(layer)
        Ws.append(W)
        bs.append(b)
        n_in = lc.size
    loss = get_loss(cfg.loss, cfg.loss_params).for_outputs(layers[-1].n_out)
    net = Network(tuple(cfg.inputs), tuple(layers), Ws, bs, loss)
    for pname, value in cfg.init.values.items():
        ref = parse_name(net, pname)
        if ref is not None:
            net.set(ref, value)
    if cfg.train.dtype == "float32":
        net = net.astype(np.float32)
    return net
