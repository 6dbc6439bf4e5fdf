"""Loss registry: name -> per-sample value, gradient dL_i/dy' and formula text.

The cost is always C = 1/m * sum_i L_i, the mean of the per-sample losses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from bpcli.errors import ConfigError, did_you_mean, is_finite_number, one_of
from bpcli.nn.activations import registry_entry, row_max

Array = np.ndarray


def _clip_eps(y_hat: Array) -> tuple[Array, float]:
    """y' clipped to [eps, 1 - eps] with eps the dtype's machine epsilon, as scikit-learn's log losses do.

    Only the non-fused uses of a log loss need it: the fused pairs are computed from z (value_z).
    """
    eps = float(np.finfo(y_hat.dtype).eps) if np.issubdtype(y_hat.dtype, np.floating) else float(np.finfo(float).eps)
    return np.clip(y_hat, eps, 1.0 - eps), eps


@dataclass(frozen=True)
class Loss:
    """One loss with its options bound.

    value(y_hat, y) -> L_i, shape (m,); grad(y_hat, y) -> dL_i/dy', shape (m, n).
    fused_with: the output activation whose pairing simplifies dL/dz to (y' - y).
    """

    name: str
    value: Callable[[Array, Array], Array]
    grad: Callable[[Array, Array], Array]
    formula: str
    grad_formula: str
    latex: str
    grad_latex: str
    fused_with: str | None = None
    # value_z(z, y) -> L_i (m,): the same loss from the output layer's weighted sums, exact where the
    # probabilities round to 0 or 1; used instead of value() whenever the output activation is fused_with.
    value_z: Callable[[Array, Array], Array] | None = None
    kinks: tuple[float, ...] = ()  # values of (y' - y) where L is not differentiable
    params: dict = field(default_factory=dict)
    classification: bool = False
    multi_text: tuple[str, str, str, str] | None = None  # the four formula texts for several outputs

    def for_outputs(self, n: int) -> Loss:
        """This loss with formula texts written for an output layer of n nodes."""
        if n > 1 and self.multi_text is not None:
            f, g, fl, gl = self.multi_text
            return replace(self, formula=f, grad_formula=g, latex=fl, grad_latex=gl)
        return self


@dataclass(frozen=True)
class LossSpec:
    name: str
    defaults: dict
    build: Callable[..., Loss]
    summary: str


SQUARED_CONVENTIONS = {
    "half_sum": "L = 1/2 * sum_k (y_k - y'_k)^2 (the seed's convention)",
    "mean": "L = 1/n * sum_k (y_k - y'_k)^2 (PyTorch MSELoss, reduction='mean')",
    "sklearn": "L = 1/2 * sum_k (y_k - y'_k)^2, the objective scikit-learn's MLP differentiates "
               "(its reported loss_ is L / n)",
    "sum": "L = sum_k (y_k - y'_k)^2",
}


def squared_scale(convention: str, n: int) -> float:
    """The factor in front of sum_k (y_k - y'_k)^2 for n outputs."""
    if convention == "half_sum":
        return 0.5
    if convention == "sklearn":
        # scikit-learn's MLPRegressor reports loss_ = 1/(2n) sum_k (mean over all entries / 2) but trains on
        # the gradient y' - y, i.e. of 1/2 sum_k: bpcli trains as it does and reports what it differentiates
        return 0.5
    return {"mean": 1.0 / n, "sum": 1.0}[convention]


def _squared_error(convention: str = "half_sum") -> Loss:
    if convention not in SQUARED_CONVENTIONS:
        raise ConfigError([
            f"loss.convention: unknown convention '{convention}'"
            f"{did_you_mean(convention, SQUARED_CONVENTIONS)}; expected one of {one_of(SQUARED_CONVENTIONS)}"
        ])

    def scale(n: int) -> float:
        return squared_scale(convention, n)

    def value(y_hat: Array, y: Array) -> Array:
        r = y_hat - y
        return scale(y.shape[1]) * np.add.reduce(r * r, axis=1)

    def grad(y_hat: Array, y: Array) -> Array:
        f = 2.0 * scale(y.shape[1])
        r = y_hat - y
        return r if f == 1.0 else f * r  # 1/2 sum_k: y' - y itself (times 1.0 would be the same numbers)

    text = {
        "half_sum": ("L = 1/2 * (y - y')^2", "dL/dy' = (y' - y)",
                     r"L = \tfrac{1}{2}(y - y')^2", r"\frac{\partial L}{\partial y'} = y' - y"),
        "mean": ("L = 1/n * sum_k (y_k - y'_k)^2", "dL/dy'_k = 2/n * (y'_k - y_k)",
                 r"L = \tfrac{1}{n}\sum_k (y_k - y'_k)^2", r"\frac{\partial L}{\partial y'_k} = \tfrac{2}{n}(y'_k - y_k)"),
        "sklearn": ("L = 1/2 * sum_k (y_k - y'_k)^2", "dL/dy'_k = (y'_k - y_k)",
                    r"L = \tfrac{1}{2}\sum_k (y_k - y'_k)^2", r"\frac{\partial L}{\partial y'_k} = y'_k - y_k"),
        "sum": ("L = sum_k (y_k - y'_k)^2", "dL/dy'_k = 2 * (y'_k - y_k)",
                r"L = \sum_k (y_k - y'_k)^2", r"\frac{\partial L}{\partial y'_k} = 2(y'_k - y_k)"),
    }[convention]
    multi = None
    if convention == "half_sum":
        multi = ("L = 1/2 * sum_k (y_k - y'_k)^2", "dL/dy'_k = (y'_k - y_k)",
                 r"L = \tfrac{1}{2}\sum_k (y_k - y'_k)^2", r"\frac{\partial L}{\partial y'_k} = y'_k - y_k")
    return Loss("squared_error", value, grad, *text, params={"convention": convention}, multi_text=multi)


def _binary_cross_entropy() -> Loss:
    def value(y_hat: Array, y: Array) -> Array:
        p, _ = _clip_eps(y_hat)
        return -np.sum(y * np.log(p) + (1.0 - y) * np.log1p(-p), axis=1)

    def grad(y_hat: Array, y: Array) -> Array:
        p, _ = _clip_eps(y_hat)
        return (p - y) / (p * (1.0 - p))

    def value_z(z: Array, y: Array) -> Array:
        # -(y ln s(z) + (1 - y) ln(1 - s(z))) = softplus(z) - y z, written max(z, 0) - y z + ln(1 + e^-|z|)
        # so that neither tail cancels (PyTorch's BCEWithLogitsLoss has the same form)
        return np.sum(np.maximum(z, 0.0) - y * z + np.log1p(np.exp(-np.abs(z))), axis=1)

    return Loss(
        "binary_cross_entropy", value, grad,
        "L = -(y * ln(y') + (1 - y) * ln(1 - y'))", "dL/dy' = (y' - y) / (y' * (1 - y'))",
        r"L = -\left(y \ln y' + (1 - y)\ln(1 - y')\right)",
        r"\frac{\partial L}{\partial y'} = \frac{y' - y}{y'(1 - y')}",
        fused_with="sigmoid", value_z=value_z, classification=True,
    )


def _cross_entropy() -> Loss:
    def value(y_hat: Array, y: Array) -> Array:
        p, _ = _clip_eps(y_hat)
        return -np.sum(y * np.log(p), axis=1)

    def grad(y_hat: Array, y: Array) -> Array:
        p, _ = _clip_eps(y_hat)
        return -y / p

    def value_z(z: Array, y: Array) -> Array:
        # -sum_k y_k ln softmax(z)_k = sum_k y_k (logsumexp(z) - z_k) with logsumexp(z) = max + ln(1 + s),
        # s = sum over the entries below the max of e^(z_l - max) (+ 1 for each further tie): ln(1 + s) by
        # log1p keeps a confident right answer exact (L = 9.36e-14 at a margin of 30, not 0 or 1e-16 noise).
        # z - max is -inf only below a max near -1.8e308; training and the CLI silence numpy's warning there.
        d = z - row_max(z)  # <= 0; exactly 0 at the max
        top = d == 0
        e = np.exp(d)
        e -= top  # e^0 = 1 at the max becomes 0: the sum then holds only what lies below it, unrounded
        s = np.add.reduce(e, axis=1, keepdims=True)
        # each further entry at a row's max adds 1 (e^0); a row of several is found by counting: every row has one
        # entry at its max, except a row with a NaN (or +inf) in z, which has none and whose loss is NaN anyway
        if np.count_nonzero(top) + np.count_nonzero(np.isnan(s)) > top.shape[0]:
            ties = np.add.reduce(top, axis=1, keepdims=True, dtype=e.dtype)
            ties -= 1
            s += ties
        np.log1p(s, out=s)
        np.subtract(s, d, out=d)  # logsumexp(z) - z_k
        d *= y
        return np.add.reduce(d, axis=1)

    return Loss(
        "cross_entropy", value, grad,
        "L = -sum_k y_k * ln(y'_k)", "dL/dy'_k = -y_k / y'_k",
        r"L = -\sum_k y_k \ln y'_k", r"\frac{\partial L}{\partial y'_k} = -\frac{y_k}{y'_k}",
        fused_with="softmax", value_z=value_z, classification=True,
    )


def _absolute_error() -> Loss:
    return Loss(
        "absolute_error",
        lambda y_hat, y: np.sum(np.abs(y_hat - y), axis=1),
        lambda y_hat, y: np.sign(y_hat - y),
        "L = sum_k |y_k - y'_k|", "dL/dy'_k = sign(y'_k - y_k)",
        r"L = \sum_k |y_k - y'_k|", r"\frac{\partial L}{\partial y'_k} = \operatorname{sign}(y'_k - y_k)",
        kinks=(0.0,),
    )


def _huber(delta: float = 1.0) -> Loss:
    d = float(delta)
    if not d > 0:
        raise ConfigError([f"loss.delta: must be > 0, found {delta!r}"])

    def value(y_hat: Array, y: Array) -> Array:
        r = np.abs(y_hat - y)
        return np.sum(np.where(r <= d, 0.5 * r * r, d * (r - 0.5 * d)), axis=1)

    return Loss(
        "huber", value, lambda y_hat, y: np.clip(y_hat - y, -d, d),
        f"L = sum_k 1/2 r_k^2 if |r_k| <= {d:g} else {d:g} * (|r_k| - {d / 2:g}),  r = y' - y",
        f"dL/dy'_k = clip(y'_k - y_k, -{d:g}, {d:g})",
        rf"L = \sum_k \begin{{cases}} \tfrac12 r_k^2 & |r_k| \le {d:g} \\ {d:g}(|r_k| - {d / 2:g}) & \text{{otherwise}} \end{{cases}}",
        rf"\frac{{\partial L}}{{\partial y'_k}} = \operatorname{{clip}}(y'_k - y_k, -{d:g}, {d:g})",
        params={"delta": d},
    )


LOSSES: dict[str, LossSpec] = {
    s.name: s
    for s in [
        LossSpec("squared_error", {"convention": "half_sum"}, _squared_error,
                 "1/2 (y - y')^2 by default; conventions half_sum, mean (PyTorch), sklearn, sum"),
        LossSpec("binary_cross_entropy", {}, _binary_cross_entropy, "for sigmoid outputs with 0/1 targets"),
        LossSpec("cross_entropy", {}, _cross_entropy, "categorical, for softmax outputs with one-hot targets"),
        LossSpec("absolute_error", {}, _absolute_error, "|y - y'| summed over outputs"),
        LossSpec("huber", {"delta": 1.0}, _huber, "squared near 0, absolute beyond delta"),
    ]
}
ALIASES = {
    "mse": "squared_error", "squared": "squared_error", "l2": "squared_error",
    "bce": "binary_cross_entropy", "ce": "cross_entropy", "categorical_cross_entropy": "cross_entropy",
    "mae": "absolute_error", "l1": "absolute_error",
}


def get_loss(name: str, params: dict | None = None, where: str = "loss") -> Loss:
    """The registry entry for `name` with its options bound; ConfigError if unknown.

    With options L and dL (formulas in y and yhat, see formula.py) the loss is the user's own, named `name`.
    """
    if params and ("L" in params or "dL" in params):
        from bpcli.nn.formula import formula_loss  # only configs with a formula pay for the parser
        return Loss(**formula_loss(name, params, where, list(LOSSES) + list(ALIASES)))
    _, spec, params = registry_entry("loss", name, LOSSES, ALIASES, params, where, word="option")
    for k, v in params.items():
        if k == "convention":
            if not isinstance(v, str):
                raise ConfigError([f"{where}.convention: expected text, one of {one_of(SQUARED_CONVENTIONS)}, "
                                   f"found {v!r}"])
            continue
        if not is_finite_number(v):
            raise ConfigError([f"{where}.{k}: expected a finite number, found {v!r}"])
    return spec.build(**{**spec.defaults, **params})
