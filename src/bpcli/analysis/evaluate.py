"""bpcli evaluate: a trained run's loss and metrics on labelled data; a confusion matrix and per-class scores.

The loss and the accuracy or R^2 are train.evaluate's (the numbers training reports); the confusion matrix
counts true class (rows) against predicted class (columns), as scikit-learn's confusion_matrix does, and the
per-class precision, recall and F1 follow its classification_report (0 where a ratio would be 0/0), and so do
the averages: over the classes present in the truth or the predictions, unless every class is asked for.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bpcli.data.dataset import Dataset, class_labels
from bpcli.data.labels import class_names_of, output_labels
from bpcli.analysis.predict import network_outputs, scaled


@dataclass(frozen=True)
class ClassScore:
    name: str  # the class
    node: str  # its output node, with the class: B1 (class "setosa")
    precision: float
    recall: float
    f1: float
    support: int  # samples of this class


@dataclass(frozen=True)
class OutputScore:
    name: str  # the output (target column)
    r2: float | None
    mae: float


@dataclass(frozen=True)
class Evaluation:
    name: str
    run: str
    source: str  # a DATA file, <stdin>, or the run's training or validation data
    task: str
    m: int
    loss_name: str
    loss: float
    metric: str  # accuracy | r2
    value: float | None  # the accuracy or R^2 (None when the targets do not vary)
    classes: tuple[str, ...] | None = None
    confusion: np.ndarray | None = None  # (k, k) counts: row = true class, column = predicted class
    per_class: tuple[ClassScore, ...] = ()
    macro: tuple[float, float, float] | None = None  # unweighted mean precision, recall, F1
    weighted: tuple[float, float, float] | None = None  # weighted by support
    averaged: tuple[str, ...] = ()  # the classes the averages are over
    all_classes: bool = False  # True: every class of the run; False: those in the truth or the predictions
    mae: float | None = None  # regression: mean absolute error over every output
    per_output: tuple[OutputScore, ...] = ()
    balanced_accuracy: float | None = None  # the mean recall over the classes in the truth
    roc_auc: float | None = None  # binary, or one-vs-rest macro; None when a class is missing from the truth
    roc_auc_note: str = ""  # how it is taken, or why there is none
    threshold: float | None = None  # one sigmoid output: the class is 1 where y' >= threshold

    def to_dict(self) -> dict:
        d = {"command": "evaluate", "name": self.name, "run": self.run, "source": self.source, "task": self.task,
             "samples": self.m, "loss": {"name": self.loss_name, "value": self.loss}, "metric": self.metric,
             "value": self.value}
        if self.classes is not None:
            d |= {"classes": list(self.classes), "confusion_matrix": self.confusion.tolist(),
                  "per_class": [{"class": c.name, "node": c.node, "precision": c.precision, "recall": c.recall,
                                 "f1": c.f1, "support": c.support} for c in self.per_class],
                  "macro_avg": dict(zip(("precision", "recall", "f1"), self.macro)),
                  "weighted_avg": dict(zip(("precision", "recall", "f1"), self.weighted)),
                  "averages_over": {"classes": list(self.averaged),
                                    "rule": "every class of the run" if self.all_classes else
                                    "the classes present in the truth or the predictions (scikit-learn's default)"},
                  "balanced_accuracy": self.balanced_accuracy, "roc_auc": self.roc_auc,
                  "roc_auc_note": self.roc_auc_note, "threshold": self.threshold}
        else:
            d |= {"mae": self.mae, "per_output": [{"output": o.name, "r2": o.r2, "mae": o.mae}
                                                  for o in self.per_output]}
        return d


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else 0.0


def confusion_matrix(true: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    """(k, k) counts of (true class, predicted class) pairs, from class indices true, pred (m,)."""
    out = np.zeros((k, k), dtype=np.int64)
    np.add.at(out, (true, pred), 1)
    return out


def roc_auc(truth: np.ndarray, score: np.ndarray) -> float | None:
    """The area under the ROC curve of `score` (m,) for truth (m,) in {0, 1}: the chance a random positive
    scores above a random negative, ties counting half (Mann-Whitney U with average ranks); None without both."""
    pos = truth == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(score, kind="mergesort")
    sorted_score = score[order]
    ranks = np.empty(score.size, dtype=np.float64)
    edges = np.flatnonzero(np.r_[True, sorted_score[1:] != sorted_score[:-1], True])
    for a, b in zip(edges[:-1], edges[1:]):  # a run of ties gets the mean of its ranks a+1 .. b
        ranks[order[a:b]] = (a + 1 + b) / 2
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _auc_of(true: np.ndarray, y_hat: np.ndarray, k: int) -> tuple[float | None, str]:
    """Binary AUC of the positive class's output, or the one-vs-rest macro mean over k classes (as scikit-learn's
    roc_auc_score with multi_class='ovr'); None and why when a class is missing from the truth."""
    if k == 2:
        score = y_hat[:, 0] if y_hat.shape[1] == 1 else y_hat[:, 1]
        auc = roc_auc(true, score)
        return auc, ("of the second class's output" if auc is not None else
                     "undefined: the truth holds one class only")
    missing = [c for c in range(k) if not np.any(true == c)]
    if missing:
        return None, f"undefined: {len(missing)} of the {k} classes are not in the truth"
    aucs = [roc_auc((true == c).astype(np.intp), y_hat[:, c]) for c in range(k)]
    return float(np.mean(aucs)), f"one-vs-rest, the macro mean over the {k} classes"


def evaluate(loaded, data: Dataset, source: str, all_classes: bool = False,
             threshold: float | None = None) -> Evaluation:
    """Score a loaded run on `data` (x scaled as the run's inputs, y as the network's targets).

    The macro and weighted averages are over the classes present in the truth or the predictions, as
    scikit-learn's classification_report does by default; all_classes=True takes every class of the run.
    threshold (one sigmoid output only): the class is 1 where y' >= threshold (0.5 when None).
    """
    from bpcli.nn.model import node_name
    from bpcli.training.tally import metric_of, score, total_squares
    from bpcli.training.fit import evaluate as cost_and_metric, metric_name

    net = loaded.net
    loss, value = cost_and_metric(net, data)
    y_hat = network_outputs(net, data.x)
    common = dict(name=loaded.cfg.name, run=str(loaded.run_dir), source=source, task=data.task, m=data.m,
                  loss_name=net.loss.name, loss=loss, metric=metric_name(data), value=value)
    classes = class_names_of(data, net.n_outputs)
    if classes is None and threshold is not None:
        from bpcli.errors import BpcliError
        raise BpcliError("--threshold: for a classifier with one sigmoid output; this run predicts numbers")
    if classes is None:
        names = data.target_names if len(data.target_names) == net.n_outputs else tuple(
            f"y{j + 1}" for j in range(net.n_outputs))
        abs_err = np.abs(y_hat - data.y)
        per = tuple(OutputScore(n, metric_of(score(y_hat[:, j:j + 1], data.y[:, j:j + 1], None), data.m, None,
                                             total_squares(data.y[:, j:j + 1])), float(abs_err[:, j].mean()))
                    for j, n in enumerate(names))
        return Evaluation(**common, mae=float(abs_err.mean()), per_output=per)
    k = len(classes)
    true = class_labels(data.y)
    if threshold is not None and net.n_outputs != 1:
        from bpcli.errors import BpcliError
        raise BpcliError(f"--threshold: for a network with one sigmoid output; this one has {net.n_outputs} "
                         f"{net.layers[-1].activation.name} outputs (the class is the largest)")
    cut = 0.5 if threshold is None else threshold
    pred = (y_hat[:, 0] >= cut).astype(np.intp) if net.n_outputs == 1 else class_labels(y_hat)
    cm = confusion_matrix(true, pred, k)
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    precision = [_ratio(tp[c], cm[:, c].sum()) for c in range(k)]
    recall = [_ratio(tp[c], support[c]) for c in range(k)]
    f1 = [_ratio(2 * p * r, p + r) for p, r in zip(precision, recall)]
    last = net.layers[-1]
    labels = output_labels(net.n_outputs, classes)
    nodes = ([f"{node_name(last, 0)} < {cut:g}", f"{node_name(last, 0)} >= {cut:g}"] if net.n_outputs == 1
             else [f"{node_name(last, j)} ({labels[j]})" for j in range(k)])
    per_class = tuple(ClassScore(c, nodes[i], precision[i], recall[i], f1[i], int(support[i]))
                      for i, c in enumerate(classes))
    used = np.ones(k, dtype=bool) if all_classes else (support > 0) | (cm.sum(axis=0) > 0)
    w = support[used] / support[used].sum()
    scores = np.array([precision, recall, f1])[:, used]
    if threshold is not None:  # the accuracy at this threshold, not training's 0.5
        common["value"] = float(np.trace(cm) / data.m)
    auc, auc_note = _auc_of(true, y_hat, k)
    present = support > 0
    return Evaluation(**common, classes=classes, confusion=cm, per_class=per_class,
                      macro=tuple(float(v) for v in scores.mean(axis=1)),
                      weighted=tuple(float(v) for v in scores @ w),
                      averaged=tuple(c for c, u in zip(classes, used) if u), all_classes=all_classes,
                      balanced_accuracy=float(np.mean(np.asarray(recall)[present])), roc_auc=auc,
                      roc_auc_note=auc_note, threshold=threshold if net.n_outputs == 1 else None)


def evaluate_table(loaded, table, all_classes: bool = False, threshold: float | None = None) -> Evaluation:
    """evaluate on a DATA file (newdata.Table) with the run's input columns and its target column(s)."""
    from bpcli.analysis.newdata import targets

    train = loaded.prepared.train
    classes = class_names_of(train, loaded.net.n_outputs)
    x_raw = table.numbers(tuple(loaded.cfg.inputs))
    y = targets(table, loaded, classes)
    data = Dataset(scaled(loaded, x_raw), y, tuple(loaded.cfg.inputs), train.target_names, train.class_names, train.task)
    return evaluate(loaded, data, table.source, all_classes, threshold)


def evaluate_part(loaded, part: str | None, all_classes: bool = False, threshold: float | None = None) -> Evaluation:
    """evaluate on the run's own data: 'validation' (the default when the run holds some out), 'train', 'test'
    (data.test's held-out rows) or 'all' (the training and validation parts; never the test part)."""
    from bpcli.errors import BpcliError

    train, val, test = loaded.prepared.train, loaded.prepared.val, loaded.prepared.test
    part = part or ("validation" if val is not None else "train")
    if part == "validation" and val is None:
        raise BpcliError("--part validation: the run holds no validation data (data.validation is 0); "
                         "use --part train")
    if part == "test" and test is None:
        raise BpcliError("--part test: the run holds no test data (data.test is 0); use --part train or validation")
    if part == "all" and val is not None:
        data = Dataset(np.r_[train.x, val.x], np.r_[train.y, val.y], train.feature_names, train.target_names,
                       train.class_names, train.task)
    else:
        data = {"validation": val, "test": test}.get(part, train)
    what = {"train": "the training data", "validation": "the validation data", "test": "the held-out test data",
            "all": "all of the run's data" if test is None else "the training and validation data"}[part]
    return evaluate(loaded, data, f"{what} ({data.m} samples)", all_classes, threshold)
