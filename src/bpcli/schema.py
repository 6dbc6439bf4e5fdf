"""The validated config as frozen dataclasses, and back to plain data (to_dict) for a run folder."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

FORMAT_VERSION = 1


@dataclass(frozen=True)
class LayerConfig:
    size: int
    activation: str
    activation_params: dict
    bias: str
    symbol: str
    letter: str
    weights: list | None = None  # explicit (n_out, n_in) matrix
    biases: list | float | None = None


@dataclass(frozen=True)
class InitConfig:
    scheme: str = "xavier_uniform"
    seed: int = 0
    low: float = -0.5
    high: float = 0.5
    std: float = 0.1
    bias: float = 0.0
    values: dict = field(default_factory=dict)


@dataclass(frozen=True)
class DataConfig:
    source: str  # "inline" | "csv" | "generator"
    x: list | None = None
    y: list | None = None
    csv: str | None = None  # absolute path
    features: list | None = None
    target: list | None = None
    max_rows: int | None = None
    generator: str | None = None
    samples: int = 200
    noise: float = 0.1
    seed: int = 0
    classes: int | None = None  # spirals and blobs: how many
    class_names: tuple[str, ...] | None = None  # a classifier's outputs, in order (`classes: [names]` in YAML)
    validation: float = 0.0
    split_seed: int = 0  # the validation split's own seed: --seed and train.seed do not move it
    test: float = 0.0  # the share of the samples held out as the test part (never trained or stopped on)
    test_seed: int = 0  # the test split's own seed
    standardize: bool = False
    task: str = "auto"


@dataclass(frozen=True)
class ScheduleConfig:
    """train.schedule: the learning rate per epoch (schedules.epoch_lr); the fields its name uses."""

    name: str  # step | exponential | cosine | plateau
    step_size: int = 10  # step: epochs between reductions
    gamma: float = 0.1  # step, exponential: the factor
    t_max: int = 100  # cosine: the epochs of the half period (default: train.epochs)
    eta_min: float = 0.0  # cosine: the lowest lr
    monitor: str = "val_loss"  # plateau: loss | val_loss | metric | val_metric
    mode: str = "min"  # plateau: min (a loss) | max (accuracy, R^2)
    factor: float = 0.1
    patience: int = 10
    threshold: float = 1e-4
    threshold_mode: str = "rel"  # rel | abs
    cooldown: int = 0
    min_lr: float = 0.0

    KEYS = {"step": ("step_size", "gamma"), "exponential": ("gamma",), "cosine": ("t_max", "eta_min"),
            "plateau": ("monitor", "mode", "factor", "patience", "threshold", "threshold_mode", "cooldown", "min_lr")}

    def to_dict(self) -> dict:
        return {"name": self.name, **{k: getattr(self, k) for k in self.KEYS[self.name]}}


@dataclass(frozen=True)
class TrainConfig:
    optimizer: str = "gd"
    lr: float = 0.5
    epochs: int = 1000
    batch_size: int | None = None  # None = full batch
    momentum: float = 0.9
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8  # adam, adamw, rmsprop; adagrad's default is 1e-10 (PyTorch's)
    alpha: float = 0.99  # rmsprop's smoothing constant (PyTorch's name and default)
    seed: int = 0
    weight_decay: float = 0.0
    l1: float = 0.0  # the L1 penalty l1 * sum |W| (weights only); its subgradient l1 * sign(W), 0 at W = 0
    patience: int | None = None  # early stopping on the validation data loss (the L2 penalty left out)
    min_delta: float = 0.0
    restore_best: bool = True  # with early stopping: end on the weights of the best validation epoch
    stop_monitor: str = "val_loss"  # early stopping watches val_loss or val_metric (accuracy, R^2)
    stop_mode: str = "min"  # min: lower is better (a loss); max: higher is better (a metric)
    stop_start: int = 0  # epochs 1..stop_start are not watched (neither best nor counted)
    dtype: str = "float64"
    snapshots: bool = True  # train.snapshots: off -> False
    snapshot_every: int | None = None  # train.snapshots: {every: N}; None: the stride the budget allows
    snapshot_budget_mb: float = 50.0  # train.snapshots: {budget_mb: X}
    schedule: ScheduleConfig | None = None  # train.schedule; None: lr in every epoch

    def stop_watch(self) -> dict:
        """Early stopping's monitor, mode and start where they differ from watching val_loss (min) from epoch 1."""
        return {k: v for k, v, default in (("monitor", self.stop_monitor, "val_loss"), ("mode", self.stop_mode, "min"),
                                           ("start", self.stop_start, 0)) if v != default}

    def snapshots_dict(self):
        """train.snapshots as the config file gives it: 'off', {every: N} or {budget_mb: X}."""
        if not self.snapshots:
            return "off"
        return {"every": self.snapshot_every} if self.snapshot_every is not None else {"budget_mb": self.snapshot_budget_mb}


@dataclass(frozen=True)
class NetConfig:
    """A whole validated config: the network, loss, initial weights, data and training settings."""

    name: str
    path: str  # the file it came from ("<built-in seed>" for the default)
    inputs: tuple[str, ...]
    layers: tuple[LayerConfig, ...]
    loss: str
    loss_params: dict
    init: InitConfig
    data: DataConfig
    train: TrainConfig
    description: str = ""

    def to_dict(self) -> dict:
        """The resolved config as plain data, loadable again by load_config."""
        layers = []
        for lc in self.layers:
            d: dict[str, Any] = {"size": lc.size, "letter": lc.letter, "symbol": lc.symbol, "bias": lc.bias}
            d["activation"] = {"name": lc.activation, **lc.activation_params} if lc.activation_params else lc.activation
            if lc.weights is not None:
                d["weights"] = lc.weights
            if lc.biases is not None:
                d["biases"] = lc.biases
            layers.append(d)
        data = {k: v for k, v in asdict(self.data).items() if v is not None and k != "source"}
        if not self.data.test:  # no test part: the keys left out, as before they existed
            data.pop("test"), data.pop("test_seed")
        if data.pop("class_names", None) is not None:
            data["classes"] = list(self.data.class_names)
        train = asdict(self.train)
        if self.train.optimizer != "rmsprop":
            train.pop("alpha")  # rmsprop's alone: every other config reads as it did
        if not self.train.l1:
            train.pop("l1")
        patience, min_delta, restore = train.pop("patience"), train.pop("min_delta"), train.pop("restore_best")
        for k in ("stop_monitor", "stop_mode", "stop_start", "snapshots", "snapshot_every", "snapshot_budget_mb"):
            train.pop(k)
        train["snapshots"] = self.train.snapshots_dict()
        if train.pop("schedule") is not None:
            train["schedule"] = self.train.schedule.to_dict()
        if patience is not None:
            train["early_stopping"] = {"patience": patience, "min_delta": min_delta, "restore_best": restore,
                                       **self.train.stop_watch()}
        init = asdict(self.init)
        if not init["values"]:
            init.pop("values")
        return {
            "version": FORMAT_VERSION, "name": self.name, "description": self.description,
            "inputs": list(self.inputs), "layers": layers,
            "loss": {"name": self.loss, **self.loss_params}, "init": init, "data": data, "train": train,
        }
