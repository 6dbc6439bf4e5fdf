"""Activation registry: name -> value, derivative and the formula text that explain prints."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from bpcli.errors import ConfigError, did_you_mean, is_finite_number, one_of

Array = np.ndarray


@dataclass(frozen=True)
class Activation:
    """One activation with its parameters bound.

    fn(z, out=None) -> a; grad(z, a, out=None) -> f'(z) elementwise (None for softmax, which uses vjp);
    vjp(z, a, da, out=None) -> dz, the chain-rule step dL/dz = dL/da * da/dz for a whole layer.
    `out`, when given, is a preallocated array of z's shape and dtype that the result may be written into
    (the training loop's buffers); always use the returned array, which may be another one (identity
    returns z itself).
    """

    name: str
    fn: Callable[[Array], Array]
    grad: Callable[[Array, Array], Array] | None
    formula: str  # f(z) = ...
    grad_formula: str  # f'(z) = ...
    latex: str
    grad_latex: str
    kinks: tuple[float, ...] = ()  # points of z where f is not differentiable
    # a formula's branch conditions at z, stacked (k, *z.shape): f has a kink where one of them changes
    branches: Callable[[Array], Array] | None = None
    elementwise: bool = True
    params: dict = field(default_factory=dict)
    saturates: str | None = None  # "sigmoid-like" or "relu-like": how the inspector reads it
    grad_peak: float | None = None  # the largest f'(z) of a sigmoid-like f: saturation is measured against it

    def vjp(self, z: Array, a: Array, da: Array, out: Array | None = None) -> Array:
        """dz = da * f'(z) elementwise; softmax uses its Jacobian. z, a, da: (m, n)."""
        if self.name == "identity":
            return da  # f'(z) = 1
        if self.elementwise:
            if out is None:
                return da * self.grad(z, a)
            return np.multiply(da, self.grad(z, a, out=out), out=out)
        # softmax Jacobian J_kl = a_k (delta_kl - a_l), applied row by row without forming it.
        t = np.multiply(da, a, out=out)
        s = np.add.reduce(t, axis=1, keepdims=True)
        np.subtract(da, s, out=t)
        return np.multiply(a, t, out=t)

    def jacobian(self, z: Array, a: Array) -> Array:
        """Full per-sample Jacobian da_k/dz_l, shape (m, n, n) (used by explain for softmax)."""
        if self.elementwise:
            d = self.grad(z, a)
            return np.einsum("mk,kl->mkl", d, np.eye(z.shape[1]))
        return a[:, :, None] * (np.eye(z.shape[1])[None] - a[:, None, :])


@dataclass(frozen=True)
class ActivationSpec:
    """A registry entry: defaults for its parameters and a builder that binds them."""

    name: str
    defaults: dict
    build: Callable[..., Activation]
    summary: str


def _sigmoid(z: Array, out: Array | None = None) -> Array:
    """1 / (1 + e^-z), exact to rounding in both tails: e^min(z, 0) / (1 + e^-|z|).

    That is 1 / (1 + e^-z) for z >= 0 and e^z / (1 + e^z) below, and no exponential overflows, so the
    negative tail keeps its relative accuracy down to the smallest float (4.25e-18 at z = -40).
    `out` (same shape and dtype as z, not z itself) receives the result without a new array.
    """
    a = np.minimum(z, 0.0, out=out)
    np.exp(a, out=a)  # e^min(z, 0): e^z below 0, 1 from 0 on
    t = np.copysign(z, -1.0)  # -|z|, exactly, in one call
    np.exp(t, out=t)  # e^-|z|
    t += 1.0
    return np.divide(a, t, out=a)


def _into(value: Array, out: Array | None, dtype=None) -> Array:
    """`value` written into `out` when one is given (for activations computed through temporaries)."""
    if out is None:
        return value if dtype is None else value.astype(dtype)
    np.copyto(out, value, casting="unsafe")
    return out


def _ones(z: Array, a: Array, out: Array | None = None) -> Array:
    if out is None:
        return np.ones_like(z)
    out.fill(1.0)
    return out


def _identity() -> Activation:
    return Activation(
        "identity", lambda z, out=None: z, _ones,
        "f(z) = z", "f'(z) = 1", r"f(z) = z", r"f'(z) = 1",
    )


def _sigmoid_grad(z: Array, a: Array, out: Array | None = None) -> Array:
    t = np.subtract(1.0, a, out=out)  # f(z) * (1 - f(z))
    return np.multiply(a, t, out=t)


def _tanh_grad(z: Array, a: Array, out: Array | None = None) -> Array:
    t = np.multiply(a, a, out=out)  # 1 - f(z)^2
    return np.subtract(1.0, t, out=t)


def _relu_grad(z: Array, a: Array, out: Array | None = None) -> Array:
    if out is None:
        return (z > 0).astype(z.dtype)
    return np.greater(z, 0.0, out=out, casting="unsafe")


def _sigmoid_act() -> Activation:
    return Activation(
        "sigmoid", _sigmoid, _sigmoid_grad,
        "f(z) = 1 / (1 + e^(-z))", "f'(z) = f(z) * (1 - f(z))",
        r"f(z) = \frac{1}{1 + e^{-z}}", r"f'(z) = f(z)\,(1 - f(z))",
        saturates="sigmoid-like", grad_peak=0.25,  # f'(0) = 1/4
    )


def _tanh() -> Activation:
    return Activation(
        "tanh", lambda z, out=None: np.tanh(z, out=out), _tanh_grad,
        "f(z) = tanh(z)", "f'(z) = 1 - f(z)^2",
        r"f(z) = \tanh(z)", r"f'(z) = 1 - f(z)^2",
        saturates="sigmoid-like", grad_peak=1.0,  # f'(0) = 1
    )


def _relu() -> Activation:
    return Activation(
        "relu", lambda z, out=None: np.maximum(z, 0.0, out=out), _relu_grad,
        "f(z) = max(0, z)", "f'(z) = 1 if z > 0 else 0",
        r"f(z) = \max(0, z)", r"f'(z) = [z > 0]",
        kinks=(0.0,), saturates="relu-like",
    )


def _leaky_relu(slope: float = 0.01) -> Activation:
    s = float(slope)
    return Activation(
        "leaky_relu",
        lambda z, out=None: _into(np.where(z > 0, z, s * z), out),
        lambda z, a, out=None: _into(np.where(z > 0, 1.0, s), out, z.dtype),
        f"f(z) = z if z > 0 else {s:g} * z", f"f'(z) = 1 if z > 0 else {s:g}",
        rf"f(z) = \max(z, {s:g} z)", rf"f'(z) = 1 \text{{ if }} z > 0 \text{{ else }} {s:g}",
        kinks=(0.0,), params={"slope": s},
    )


def _elu(alpha: float = 1.0) -> Activation:
    al = float(alpha)
    return Activation(
        "elu",
        lambda z, out=None: _into(np.where(z > 0, z, al * np.expm1(np.minimum(z, 0.0))), out),
        lambda z, a, out=None: _into(np.where(z > 0, 1.0, a + al), out, z.dtype),
        f"f(z) = z if z > 0 else {al:g} * (e^z - 1)", f"f'(z) = 1 if z > 0 else f(z) + {al:g}",
        rf"f(z) = z \text{{ if }} z > 0 \text{{ else }} {al:g}(e^z - 1)",
        rf"f'(z) = 1 \text{{ if }} z > 0 \text{{ else }} f(z) + {al:g}",
        kinks=(0.0,) if al != 1.0 else (), params={"alpha": al},
    )


def _softplus() -> Activation:
    return Activation(
        "softplus",
        lambda z, out=None: np.logaddexp(0.0, z, out=out),
        lambda z, a, out=None: _sigmoid(z, out=out),
        "f(z) = ln(1 + e^z)", "f'(z) = 1 / (1 + e^(-z))",
        r"f(z) = \ln(1 + e^{z})", r"f'(z) = \frac{1}{1 + e^{-z}}",
    )


def _silu() -> Activation:
    def grad(z: Array, a: Array, out: Array | None = None) -> Array:
        s = _sigmoid(z)
        return _into(s * (1.0 + z * (1.0 - s)), out)

    return Activation(
        "silu", lambda z, out=None: np.multiply(z, _sigmoid(z), out=out), grad,
        "f(z) = z * sigmoid(z)", "f'(z) = s(z) * (1 + z * (1 - s(z))),  s = sigmoid",
        r"f(z) = z\,\sigma(z)", r"f'(z) = \sigma(z)\,(1 + z\,(1 - \sigma(z)))",
    )


_GELU_C = math.sqrt(2.0 / math.pi)


def _gelu() -> Activation:
    # tanh(...) is exactly +-1 in float64 once |z| > 10, so clipping z at +-50 inside the cubic
    # changes no value and keeps z**3 from overflowing (and inf * 0 from making the gradient NaN).
    def fn(z: Array, out: Array | None = None) -> Array:
        zc = np.clip(z, -50.0, 50.0)
        return _into(0.5 * z * (1.0 + np.tanh(_GELU_C * (zc + 0.044715 * zc**3))), out)

    def grad(z: Array, a: Array, out: Array | None = None) -> Array:
        zc = np.clip(z, -50.0, 50.0)
        t = np.tanh(_GELU_C * (zc + 0.044715 * zc**3))
        return _into(0.5 * (1.0 + t) + 0.5 * zc * (1.0 - t * t) * _GELU_C * (1.0 + 3 * 0.044715 * zc * zc), out)

    return Activation(
        "gelu", fn, grad,
        "f(z) = z/2 * (1 + tanh(sqrt(2/pi) * (z + 0.044715 z^3)))",
        "f'(z) = (1 + t)/2 + z/2 * (1 - t^2) * sqrt(2/pi) * (1 + 0.134145 z^2),  t = tanh(...)",
        r"f(z) = \tfrac{z}{2}\left(1 + \tanh\left(\sqrt{2/\pi}\,(z + 0.044715 z^3)\right)\right)",
        r"f'(z) = \tfrac{1 + t}{2} + \tfrac{z}{2}(1 - t^2)\sqrt{2/\pi}\,(1 + 0.134145 z^2)",
    )


ROW_BLOCK = 2048  # row_max's rows per block: a block's columns stay in the cache while they are compared


def row_max(z: Array) -> Array:
    """The largest entry of each row of z (m, n), as (m, 1): np.maximum.reduce(z, axis=1, keepdims=True).

    numpy reduces a row of a few entries slowly (some 30 ns a row); from 128 rows and up to 32 columns the maximum
    is taken column by column instead, over blocks of ROW_BLOCK rows, 3 to 40 times faster. The maximum is the
    same whatever the order it is taken in (a NaN in a row gives NaN either way).
    """
    m, n = z.shape
    if m < 128 or n > 32 or n < 2:
        return np.maximum.reduce(z, axis=1, keepdims=True)
    r = np.empty((m, 1), z.dtype)
    for a in range(0, m, ROW_BLOCK):
        block, top = z[a:a + ROW_BLOCK], r[a:a + ROW_BLOCK, 0]
        np.maximum(block[:, 0], block[:, 1], out=top)
        for k in range(2, n):
            np.maximum(top, block[:, k], out=top)
    return r


def _softmax_fn(z: Array, out: Array | None = None) -> Array:
    with np.errstate(over="ignore"):  # z_k - max below -1.8e308 becomes -inf, and e^-inf = 0 is right
        e = np.subtract(z, row_max(z), out=out)
    np.exp(e, out=e)
    return np.divide(e, np.add.reduce(e, axis=1, keepdims=True), out=e)


def _softmax() -> Activation:
    return Activation(
        "softmax", _softmax_fn, None,
        "f(z)_k = e^(z_k) / sum_l e^(z_l)", "df_k/dz_l = f_k * ([k = l] - f_l)",
        r"f(z)_k = \frac{e^{z_k}}{\sum_l e^{z_l}}",
        r"\frac{\partial f_k}{\partial z_l} = f_k\,(\delta_{kl} - f_l)",
        elementwise=False,
    )


ACTIVATIONS: dict[str, ActivationSpec] = {
    s.name: s
    for s in [
        ActivationSpec("identity", {}, _identity, "linear output, f(z) = z"),
        ActivationSpec("sigmoid", {}, _sigmoid_act, "logistic, output in (0, 1)"),
        ActivationSpec("tanh", {}, _tanh, "hyperbolic tangent, output in (-1, 1)"),
        ActivationSpec("relu", {}, _relu, "max(0, z)"),
        ActivationSpec("leaky_relu", {"slope": 0.01}, _leaky_relu, "z, or slope * z below 0"),
        ActivationSpec("elu", {"alpha": 1.0}, _elu, "z, or alpha * (e^z - 1) below 0"),
        ActivationSpec("softplus", {}, _softplus, "ln(1 + e^z), a smooth relu"),
        ActivationSpec("silu", {}, _silu, "z * sigmoid(z), also called swish"),
        ActivationSpec("gelu", {}, _gelu, "Gaussian error linear unit (tanh form)"),
        ActivationSpec("softmax", {}, _softmax, "normalised exponentials; output layer only"),
    ]
}
ALIASES = {"linear": "identity", "swish": "silu", "logistic": "sigmoid", "none": "identity"}


def registry_entry(kind: str, name: str, registry: dict, aliases: dict[str, str], params: dict | None, where: str,
                   word: str = "parameter"):
    """(key, spec, params) of `name` in an activation or loss registry (aliases and case folded), the params'
    names checked against the spec's defaults; ConfigError naming `where`, with a did-you-mean hint, if unknown."""
    key = aliases.get(str(name).lower(), str(name).lower())
    spec = registry.get(key)
    if spec is None:
        names = list(registry) + list(aliases)
        raise ConfigError([
            f"{where}: unknown {kind} '{name}'{did_you_mean(name, names)}; expected one of {one_of(registry)}"
        ])
    params = dict(params or {})
    unknown = set(params) - set(spec.defaults)
    if unknown:
        bad = sorted(unknown, key=str)[0]
        allowed = one_of(spec.defaults) if spec.defaults else "none"
        raise ConfigError([f"{where}: {kind} '{key}' has no {word} '{bad}' ({word}s: {allowed})"])
    return key, spec, params


def get_activation(name: str, params: dict | None = None, where: str = "activation") -> Activation:
    """The registry entry for `name` with its parameters bound; ConfigError if unknown.

    With params f and df (formulas in z, see formula.py) the activation is the user's own, named `name`.
    """
    if params and ("f" in params or "df" in params):
        from bpcli.nn.formula import formula_activation  # only configs with a formula pay for the parser
        return Activation(**formula_activation(name, params, where, list(ACTIVATIONS) + list(ALIASES)))
    _, spec, params = registry_entry("activation", name, ACTIVATIONS, ALIASES, params, where)
    for k, v in params.items():
        if not is_finite_number(v):
            raise ConfigError([f"{where}.{k}: expected a finite number, found {v!r}"])
    return spec.build(**{**spec.defaults, **params})
