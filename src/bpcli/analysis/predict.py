"""bpcli predict: a trained run applied to new inputs (its saved scaling, then the engine's forward pass)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import numpy as np

from bpcli.data.dataset import class_labels
from bpcli.errors import DataError
from bpcli.data.labels import class_names_of


@dataclass(frozen=True)
class Prediction:
    """What the run says for each row: the inputs (as given), the columns carried through, the outputs."""

    name: str  # the run's config name
    run: str
    source: str  # the DATA file, <stdin>, or "the run's data"
    task: str  # classification | regression
    input_names: tuple[str, ...]
    x: np.ndarray  # (m, n_in) the inputs before scaling
    carried: tuple[tuple[str, tuple[str, ...]], ...]  # (column, its cells): the file's other columns, as text
    y_hat: np.ndarray  # (m, n_out) the network's outputs
    classes: tuple[str, ...] | None  # classification: the class of each output (two for one sigmoid output)
    probabilities: np.ndarray | None  # (m, k) each class's probability (or output value), classification only
    probabilistic: bool  # the outputs are probabilities (softmax, sigmoid)
    predicted: tuple[str, ...] | None  # classification: the predicted class of each row
    target: str  # the target's name: predicted_<target>
    output_names: tuple[str, ...]  # regression: the name of each output
    scaled: bool
    order: tuple[int, ...] | None = None  # the file's column order of inputs (0..n_in-1) and carried columns

    @property
    def m(self) -> int:
        return int(self.x.shape[0])

    @property
    def lead(self) -> tuple[int, ...]:
        """Inputs and carried columns in output order: index j < n_in is input j, n_in + k carried column k."""
        return self.order or tuple(range(len(self.input_names) + len(self.carried)))

    def columns(self) -> list[str]:
        """The CSV header: inputs and carried columns (in the file's order), the prediction, each class's
        probability."""
        names = list(self.input_names) + [c for c, _ in self.carried]
        out = [names[j] for j in self.lead]
        if self.classes is not None:
            return out + [f"predicted_{self.target}"] + [f"p_{c}" if self.probabilistic else f"out_{c}"
                                                          for c in self.classes]
        return out + [f"predicted_{n}" for n in self.output_names]

    def cells(self, i: int) -> list:
        """Row i's values in column order: floats for numbers, text for carried cells and class labels."""
        values: list = [float(v) for v in self.x[i]] + [cells[i] for _, cells in self.carried]
        row = [values[j] for j in self.lead]
        if self.classes is not None:
            return row + [self.predicted[i]] + [float(p) for p in self.probabilities[i]]
        return row + [float(v) for v in self.y_hat[i]]

    def to_csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(self.columns())
        for i in range(self.m):
            w.writerow([repr(v) if isinstance(v, float) else v for v in self.cells(i)])
        return buf.getvalue()

    def to_dict(self) -> dict:
        rows = []
        for i in range(self.m):
            row = {"inputs": dict(zip(self.input_names, (float(v) for v in self.x[i])))}
            if self.carried:
                row["carried"] = {c: cells[i] for c, cells in self.carried}
            if self.classes is not None:
                row["predicted"] = self.predicted[i]
                row["probabilities" if self.probabilistic else "outputs"] = dict(
                    zip(self.classes, (float(p) for p in self.probabilities[i])))
            else:
                row["predicted"] = dict(zip(self.output_names, (float(v) for v in self.y_hat[i])))
            rows.append(row)
        return {"command": "predict", "name": self.name, "run": self.run, "source": self.source, "task": self.task,
                "inputs": list(self.input_names), "classes": list(self.classes) if self.classes else None,
                "scaled": self.scaled, "columns": self.columns(), "rows": rows}


def scaled(loaded, x_raw: np.ndarray) -> np.ndarray:
    """Raw inputs (m, n_in) as the network sees them: the run's saved scaling applied, if it has one."""
    return loaded.prepared.scaling.apply(x_raw) if loaded.prepared.scaling is not None else x_raw


def outputs(loaded, x_raw: np.ndarray) -> np.ndarray:
    """The network's outputs y' (m, n_out) for raw inputs x_raw (m, n_in): the run's scaling, then forward."""
    return network_outputs(loaded.net, scaled(loaded, x_raw))


def network_outputs(net, x: np.ndarray) -> np.ndarray:
    """y' (m, n_out) of the engine's forward pass for inputs x (m, n_in) as the network sees them, in float64."""
    from bpcli.nn.engine import forward

    with np.errstate(over="ignore", invalid="ignore"):
        y_hat, _ = forward(net, x.astype(net.dtype, copy=False))
    return np.asarray(y_hat, dtype=np.float64)


def class_probabilities(y_hat: np.ndarray) -> np.ndarray:
    """(m, k) per class: one sigmoid output y' is P(second class), so the first has 1 - y'; else y' itself."""
    return np.c_[1.0 - y_hat, y_hat] if y_hat.shape[1] == 1 else y_hat


def predict(loaded, x_raw: np.ndarray, source: str, carried=(), target: str | None = None,
            order: tuple[int, ...] | None = None) -> Prediction:
    """Apply a loaded run (runs.LoadedRun) to raw inputs x_raw (m, n_in), in the run's input order; `carried`
    columns are (name, cells) pairs passed through, `order` the order of inputs and carried columns (as in
    Prediction.lead)."""
    net, train = loaded.net, loaded.prepared.train
    y_hat = outputs(loaded, x_raw)
    classes = class_names_of(train, net.n_outputs)
    out_act = net.layers[-1].activation.name
    probs = predicted = None
    if classes is not None:
        probs = class_probabilities(y_hat)
        predicted = tuple(classes[k] for k in class_labels(y_hat))  # the training metric's rule: 0.5 or arg-max
    if target is None:
        from bpcli.analysis.newdata import target_columns
        target = target_columns(loaded)[0] if classes is not None else "y"
    names = tuple(train.target_names) if len(train.target_names) == net.n_outputs else tuple(
        f"y{j + 1}" for j in range(net.n_outputs))
    taken = set(loaded.cfg.inputs) | {c for c, _ in carried}
    res = Prediction(loaded.cfg.name, str(loaded.run_dir), source, train.task, tuple(loaded.cfg.inputs), x_raw,
                     tuple(carried), y_hat, classes, probs, out_act in ("softmax", "sigmoid"), predicted, target,
                     names, loaded.prepared.scaling is not None, order)
    clash = [c for c in res.columns()[len(taken):] if c in taken]
    if clash:
        raise DataError(f"{source}: column '{clash[0]}' has the name of a column predict adds; rename it")
    return res


def predict_table(loaded, table) -> Prediction:
    """predict on a DATA file (newdata.Table): the run's inputs by name, every other column carried through."""
    inputs = tuple(loaded.cfg.inputs)
    x = table.numbers(inputs)
    others = [h for h in table.header if h not in inputs]
    carried = tuple((h, tuple(row[table.header.index(h)] for row in table.rows)) for h in others)
    order = tuple(inputs.index(h) if h in inputs else len(inputs) + others.index(h) for h in table.header)
    return predict(loaded, x, table.source, carried, order=order)


def predict_own(loaded) -> Prediction:
    """predict on the run's own data, in its order: each row's target and part (train, validation or test) carried."""
    from bpcli.analysis.newdata import own_data, target_columns

    raw, val, test = own_data(loaded)
    classes = class_names_of(loaded.prepared.train, loaded.net.n_outputs)
    columns = target_columns(loaded)
    if classes is not None:
        carried = [(columns[0], tuple(classes[k] for k in class_labels(raw.y)))]
    else:
        names = columns if len(columns) == raw.y.shape[1] else tuple(f"y{j + 1}" for j in range(raw.y.shape[1]))
        carried = [(n, tuple(repr(float(v)) for v in raw.y[:, j])) for j, n in enumerate(names)]
    if val is not None or test is not None:
        part = np.full(raw.m, "train", dtype=object)
        for idx, name in ((val, "validation"), (test, "test")):
            if idx is not None:
                part[idx] = name
        carried.append(("part", tuple(part)))
    return predict(loaded, raw.x, "the run's data", tuple(carried))
