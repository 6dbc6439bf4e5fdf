"""Where samples come from: inline lists, CSV files and built-in generators; splits and scaling."""

from __future__ import annotations

import csv
import io
from array import array
from dataclasses import dataclass

import numpy as np

from bpcli.errors import DataError, did_you_mean
from bpcli.schema import NetConfig

Array = np.ndarray

GENERATORS = ("xor", "and", "or", "circles", "moons", "spirals", "blobs", "sine")


@dataclass(frozen=True)
class Dataset:
    """x: (m, n_in), y: (m, n_out). class_names is set for classification data."""

    x: Array
    y: Array
    feature_names: tuple[str, ...]
    target_names: tuple[str, ...]
    class_names: tuple[str, ...] | None = None
    task: str = "regression"  # "classification" or "regression"
    note: str = ""  # e.g. how many CSV rows were used

    @property
    def m(self) -> int:
        return int(self.x.shape[0])

    def subset(self, idx: Array) -> Dataset:
        return Dataset(self.x[idx], self.y[idx], self.feature_names, self.target_names,
                       self.class_names, self.task, self.note)


@dataclass(frozen=True)
class Scaling:
    """Standardisation x' = (x - mean) / std, statistics from the training part only."""

    mean: Array
    std: Array

    def apply(self, x: Array) -> Array:
        return (x - self.mean) / self.std

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @staticmethod
    def from_dict(d: dict) -> Scaling:
        return Scaling(np.asarray(d["mean"], dtype=np.float64), np.asarray(d["std"], dtype=np.float64))


def fit_scaling(x: Array) -> Scaling:
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return Scaling(mean, std)


def infer_task(y: Array) -> str:
    """Classification when every target is 0 or 1 (one column, or one-hot rows)."""
    if y.size == 0 or not np.all((y == 0) | (y == 1)):
        return "regression"
    if y.shape[1] == 1 or np.all(y.sum(axis=1) == 1):
        return "classification"
    return "regression"


def class_labels(y: Array) -> Array:
    """Class index per sample: argmax of one-hot targets, or y >= 0.5 for one 0/1 output."""
    return (y[:, 0] >= 0.5).astype(np.intp) if y.shape[1] == 1 else y.argmax(axis=1)


def held_out(m: int, validation: float, test: float = 0.0) -> tuple[int, int]:
    """(validation rows, test rows) of m samples: round(fraction * m) for each part that is on, both fractions of
    all m samples; the training rows are what is left (training_rows)."""
    return (int(round(validation * m)) if validation > 0 else 0, int(round(test * m)) if test > 0 else 0)


def training_rows(m: int, validation: float, test: float = 0.0) -> int:
    """How many of m samples are trained on once the validation and test parts are held out."""
    return m - sum(held_out(m, validation, test))


def validation_indices(data: Dataset, fraction: float, seed: int) -> Array:
    """The sorted indices of the samples held out for validation: round(fraction * m) of them.

    Classification is stratified, as scikit-learn's MLP does for its validation set: each class gives its
    share (largest remainders settle the rounding), each class's samples drawn by one seeded permutation.
    """
    m = data.m
    n_val, _ = held_out(m, fraction)
    if n_val < 1 or n_val >= m:
        raise DataError(
            f"data.validation: {fraction:g} of {m} samples leaves "
            f"{'no' if n_val < 1 else 'no training'} samples; use a fraction that keeps both parts non-empty"
        )
    return _drawn(data, n_val, seed)


def _drawn(data: Dataset, n: int, seed: int) -> Array:
    """The sorted indices of n samples drawn with `seed`: stratified for classification (validation_indices)."""
    m = data.m
    rng = np.random.default_rng(seed)
    if data.task != "classification":
        return np.sort(rng.permutation(m)[:n])
    labels = class_labels(data.y)
    classes, counts = np.unique(labels, return_counts=True)
    share = counts * (n / m)
    take = np.floor(share).astype(int)
    rest = n - int(take.sum())
    order = sorted(range(len(classes)), key=lambda c: (-(share[c] - take[c]), c))  # largest remainder first
    for c in order[:rest]:
        take[c] += 1
    picked = [np.flatnonzero(labels == k)[rng.permutation(n)[:t]] for k, n, t in zip(classes, counts, take)]
    return np.sort(np.concatenate(picked))


def test_indices(data: Dataset, fraction: float, validation: float, seed: int) -> Array:
    """The sorted indices of the test part: round(fraction * m) samples, drawn first (stratified, with its own
    seed) so the test rows do not depend on the validation split; both fractions are of all m samples."""
    m = data.m
    n_val, n_test = held_out(m, validation, fraction)
    if n_test < 1 or n_test + n_val >= m:
        raise DataError(f"data.test: {fraction:g} of {m} samples leaves "
                        f"{'no test' if n_test < 1 else 'no training'} samples; use a fraction that keeps "
                        "every part non-empty")
    return _drawn(data, n_test, seed)


def partition(data: Dataset, validation: float, split_seed: int, test: float = 0.0,
              test_seed: int = 0) -> tuple[Array, Array | None, Array | None]:
    """Sorted row indices of (train, validation, test): the test rows drawn first (test_indices), then
    round(validation * m) validation rows from the rest, as validation_indices draws them; None for an empty part."""
    m = data.m
    if test <= 0:
        if validation <= 0:
            return np.arange(m), None, None
        val = validation_indices(data, validation, split_seed)
        return np.setdiff1d(np.arange(m), val), val, None
    tst = test_indices(data, test, validation, test_seed)
    rest = np.setdiff1d(np.arange(m), tst)
    if validation <= 0:
        return rest, None, tst
    val = rest[_drawn(data.subset(rest), held_out(m, validation)[0], split_seed)]
    return np.setdiff1d(rest, val), val, tst


def split(data: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset | None]:
    """Hold out `fraction` of the samples for validation (validation_indices); (train, val)."""
    if fraction <= 0:
        return data, None
    val = validation_indices(data, fraction, seed)
    keep = np.ones(data.m, dtype=bool)
    keep[val] = False
    return data.subset(np.flatnonzero(keep)), data.subset(val)


@dataclass(frozen=True)
class Prepared:
    """The data a network trains and is explained on: split, and scaled when asked."""

    train: Dataset
    val: Dataset | None
    scaling: Scaling | None
    test: Dataset | None = None  # data.test: held out from training, early stopping and the scaling's fit


def parts(cfg: NetConfig, data: Dataset) -> tuple[Dataset, Dataset | None, Dataset | None]:
    """(train, validation, test) as the config splits the data: the test rows first, then the validation rows."""
    if cfg.data.test > 0:
        idx = partition(data, cfg.data.validation, cfg.data.split_seed, cfg.data.test, cfg.data.test_seed)
        train, val, test = (None if i is None else data.subset(i) for i in idx)
        return train, val, test
    train, val = split(data, cfg.data.validation, cfg.data.split_seed)
    return train, val, None


def prepare(cfg: NetConfig, data: Dataset, scaling: Scaling | None = None) -> Prepared:
    """Split off the test and validation parts and standardise with training statistics (or the given ones)."""
    train, val, test = parts(cfg, data)
    if cfg.data.standardize:
        scaling = scaling or fit_scaling(train.x)

        def scaled(d: Dataset | None) -> Dataset | None:
            return None if d is None else Dataset(scaling.apply(d.x), d.y, d.feature_names, d.target_names,
                                                  d.class_names, d.task, d.note)
        train, val, test = scaled(train), scaled(val), scaled(test)
    return Prepared(train, val, scaling if cfg.data.standardize else None, test)


# --- CSV -------------------------------------------------------------------


MAX_DATA_VALUES = 50_000_000  # rows x (features + targets) held at once: 400 MB as float64
MAX_LABELS = 100_000  # distinct target values kept as labels; beyond this the target must be numeric


def csv_header(reader, place: str, empty: str) -> list[str]:
    """A CSV's header row: the column names stripped, each named and present once; DataError at `place`:1
    (or the message `empty` when there is no row at all)."""
    header = next(reader, None)
    if header is None:
        raise DataError(empty)
    header = [h.strip() for h in header]
    seen: set[str] = set()
    for i, h in enumerate(header):
        if not h:
            raise DataError(f"{place}:1: column {i + 1} has no name in the header row")
        if h in seen:
            raise DataError(f"{place}:1: column '{h}' appears twice in the header row")
        seen.add(h)
    return header


def read_csv(path, features: list[str] | None, target: list[str], n_out: int | None, where: str,
             max_rows: int | None = None, as_labels: bool = False) -> Dataset:
    """Read a CSV with a header row. Numeric feature columns; a target that is numeric or class labels.

    Labels are one-hot encoded over the sorted class names (or 0/1 for one output and two classes).
    as_labels (data.task: classification): a single numeric target column is class labels too (1 and 2 -> 0/1).
    The file is streamed once into flat float64 buffers (8 bytes a value, no per-row Python lists);
    a single target column is kept as codes into its distinct values. Every problem names the line.
    """
    from bpcli.files import NotReadable, open_regular

    try:
        fh = io.TextIOWrapper(open_regular(path), newline="", encoding="utf-8-sig")
    except NotReadable as err:
        if err.kind == "missing":
            raise DataError(f"{where}: data file not found: {path}") from None
        if err.kind == "folder":
            raise DataError(f"{where}: {path} is a folder, not a CSV file") from None
        raise DataError(f"{where}: {err}") from None
    with fh:
        try:
            reader = csv.reader(fh)
            header = csv_header(reader, f"{where}: {path}",
                                f"{where}: {path} is empty (expected a header row and data rows)")
            features = _feature_columns(header, features, target, where, path)
            f_idx, t_idx = [header.index(c) for c in features], [header.index(c) for c in target]
            xbuf, ybuf, codes, lines, labels, truncated = _stream_rows(reader, header, f_idx, t_idx, where, path,
                                                                       max_rows)
        except UnicodeDecodeError:
            raise DataError(f"{where}: {path} is not UTF-8 text") from None
        except csv.Error as err:
            raise DataError(f"{where}: {path}: malformed CSV ({err})") from None
    m = len(lines)
    if m == 0:
        raise DataError(f"{where}: {path} has a header but no data rows")
    x = np.frombuffer(xbuf, dtype=np.float64).reshape(m, len(f_idx))
    bad = np.flatnonzero(~np.isfinite(x))
    if bad.size:
        r, c = divmod(int(bad[0]), x.shape[1])
        raise DataError(f"{where}: {path}:{lines[r]}: column '{features[c]}' is {x[r, c]} (NaN or infinite)")
    note = f"{m:,} rows read from {path}" + (f" (stopped at data.max_rows: {max_rows:,})" if truncated else "")
    code_arr = np.frombuffer(codes, dtype=np.int64)
    numeric = labels is None or all(_is_float(t) for t in labels)
    as_labels = as_labels and len(target) == 1
    if numeric and not as_labels and not (len(target) == 1 and n_out is not None and n_out > 1):
        if labels is not None:
            values = np.array([float(t) for t in labels], dtype=np.float64)
            y = values[code_arr][:, None]
        else:
            y = np.frombuffer(ybuf, dtype=np.float64).reshape(m, len(target))
        bad = np.flatnonzero(~np.all(np.isfinite(y), axis=1))
        if bad.size:
            raise DataError(f"{where}: {path}:{lines[int(bad[0])]}: target is NaN or infinite")
        return Dataset(x, y, tuple(features), tuple(target), None, infer_task(y), note)
    return _labelled(x, labels, code_arr, features, target, n_out, where, note, as_labels)


def _stream_rows(reader, header: list[str], f_idx: list[int], t_idx: list[int], where: str, path, max_rows: int | None):
    """The data rows in flat buffers: (x, numeric y, label codes, line numbers, labels or None, cut by max_rows)."""
    width, n_f = len(header), len(f_idx)
    max_m = MAX_DATA_VALUES // (n_f + len(t_idx))
    xbuf, ybuf, codes, lines = array("d"), array("d"), array("q"), array("q")
    labels: dict[str, int] | None = {} if len(t_idx) == 1 else None
    t0 = t_idx[0]
    truncated = False
    target = [header[i] for i in t_idx]
    for row in reader:
        if len(row) != width:
            if not row or all(not c.strip() for c in row):
                continue
            raise DataError(f"{where}: {path}:{reader.line_num}: row has {len(row)} fields, "
                            f"the header has {width}")
        if max_rows is not None and len(lines) >= max_rows:
            truncated = True
            break
        if len(lines) >= max_m:
            raise DataError(f"{where}: {path} has more than {max_m:,} rows of {n_f + len(t_idx)} values "
                            f"(over {MAX_DATA_VALUES * 8 // 2**20:,} MiB); read part of it with "
                            f"data.max_rows: {max_m:,}")
        try:
            xbuf.extend([float(row[i]) for i in f_idx])
            if "_" in "".join(row) and not all(_is_float(row[i]) for i in f_idx):
                raise ValueError  # Python's float reads 5_1 as 51: a number is written without _
        except ValueError:
            i = next(i for i in f_idx if not _is_float(row[i]))
            what = f"'{row[i]}' is not a number" if row[i].strip() else "the value is missing"
            raise DataError(f"{where}: {path}:{reader.line_num}: column '{header[i]}': {what}") from None
        lines.append(reader.line_num)
        if labels is not None:
            t = row[t0].strip()
            c = labels.get(t)
            if c is None:
                if not t:
                    raise DataError(f"{where}: {path}:{reader.line_num}: column '{target[0]}': "
                                    "the target value is missing")
                if len(labels) < MAX_LABELS:
                    c = labels[t] = len(labels)
                else:  # too many distinct values for class labels: numeric from here on
                    ybuf = _label_floats(labels, codes, where, path, target[0])
                    labels = None
            if labels is not None:
                codes.append(c)
                continue
        try:
            ybuf.extend([float(row[i]) for i in t_idx])
            if "_" in "".join(row) and not all(_is_float(row[i]) for i in t_idx):
                raise ValueError
        except ValueError:
            i = next(i for i in t_idx if not _is_float(row[i]))
            raise DataError(f"{where}: {path}:{reader.line_num}: column '{header[i]}': '{row[i]}' is not "
                            f"a number" + (" (targets of several columns must be numbers)"
                                           if len(t_idx) > 1 else
                                           f" (more than {MAX_LABELS:,} distinct values: not class labels)")
                            ) from None
    return xbuf, ybuf, codes, lines, labels, truncated


def _feature_columns(header: list[str], features: list[str] | None, target: list[str], where: str, path) -> list[str]:
    """The feature columns (all but the target when not named), each checked to be in the header."""
    missing = [c for c in (features or []) + target if c not in header]
    if missing:
        raise DataError(f"{where}: column '{missing[0]}' is not in {path}{did_you_mean(missing[0], header)}; "
                        f"its columns are: {', '.join(header)}")
    if features is None:
        features = [h for h in header if h not in target]
    both = [c for c in features if c in target]
    if both:
        raise DataError(f"{where}: column '{both[0]}' is both a feature and the target")
    if not features:
        raise DataError(f"{where}: {path} has no feature columns besides the target {', '.join(target)}")
    return features


def _labelled(x: Array, labels: dict[str, int] | None, code_arr: Array, features: list[str], target: list[str],
              n_out: int | None, where: str, note: str, as_labels: bool = False) -> Dataset:
    """A classifier's Dataset from a label column: 0/1 for one output and two classes, else one-hot, sorted."""
    m = x.shape[0]
    if labels is None:
        if as_labels:
            raise DataError(f"{where}: target '{target[0]}' has more than {MAX_LABELS:,} distinct values; too many "
                            "for class labels (data.task: classification)")
        raise DataError(f"{where}: class labels need a single target column, found {len(target)}")
    classes = sorted(labels, key=lambda s: (not _is_float(s), float(s) if _is_float(s) else 0.0, s))
    if len(classes) < 2:
        raise DataError(f"{where}: target '{target[0]}' has a single class '{classes[0]}'; nothing to learn")
    rank = np.empty(len(classes), dtype=np.int64)  # code (order of first appearance) -> sorted class index
    for i, c in enumerate(classes):
        rank[labels[c]] = i
    code_arr = rank[code_arr]
    shown = ", ".join(classes[:10]) + (", ..." if len(classes) > 10 else "")
    if n_out == 1 and len(classes) == 2:
        y = code_arr[:, None].astype(np.float64)
    else:
        if n_out is not None and n_out != len(classes):
            raise DataError(
                f"{where}: target '{target[0]}' has {len(classes)} classes ({shown}) "
                f"but the output layer has {n_out} nodes; make the last layer's size {len(classes)}"
            )
        if m * len(classes) > MAX_DATA_VALUES:
            raise DataError(f"{where}: target '{target[0]}' has {len(classes):,} classes; too many to one-hot "
                            f"encode {m:,} rows")
        y = one_hot(code_arr, len(classes))
    return Dataset(x, y, tuple(features), tuple(classes) if y.shape[1] > 1 else tuple(target),
                   tuple(classes), "classification", note)


def _label_floats(labels: dict[str, int], codes, where: str, path, name: str):
    """Switch a target column from labels to numbers: the float of each row's label so far."""
    values = [number_of(t) for t in labels]
    if None in values:
        raise DataError(f"{where}: {path}: column '{name}' has more than {MAX_LABELS:,} distinct values "
                        "and some are not numbers; class labels must be fewer")
    return array("d", (values[c] for c in codes))


def number_of(s: str) -> float | None:
    """The number s writes as CSV data writes one: Python's float() but without its digit separators (5_1 is text,
    not 51); None when s is not a number. The one rule for a cell or a label, in the training data and new data."""
    if "_" in s:
        return None
    try:
        return float(s)
    except ValueError:
        return None


def _is_float(s: str) -> bool:
    return number_of(s) is not None


def has_text_labels(data: Dataset) -> bool:
    """Class names that are not all numbers as CSV data writes them (_is_float): a CSV's text labels, as opposed to
    0/1 or 0, 1, 2."""
    return data.class_names is not None and not all(_is_float(c) for c in data.class_names)


def one_hot(codes: Array, k: int) -> Array:
    """(m,) class indices -> (m, k) rows of 0 and 1, without building a k x k identity."""
    y = np.zeros((codes.shape[0], k))
    y[np.arange(codes.shape[0]), codes] = 1.0
    return y
