"""Data to apply a trained run to: a CSV (or stdin) with the run's input columns by name, or the run's own data.

Every problem is one line naming the file and line: a missing column (with did-you-mean), a row with the wrong
number of fields, a value that is not a number, NaN or infinite; a class label the run does not know.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bpcli.data.dataset import Dataset, csv_header, number_of, one_hot, validation_indices
from bpcli.errors import DataError, did_you_mean

STDIN = "-"
MAX_CELLS = 10_000_000  # values of a DATA file kept at once (its other columns are carried through as text)
MAX_TABLE_BYTES = 200_000_000  # a DATA file or stdin: checked before reading a file, counted while reading stdin


@dataclass(frozen=True)
class Table:
    """A CSV read for a run: its header, its rows as text, and the line each row started on."""

    source: str  # the file as given, or <stdin>
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    lines: tuple[int, ...]

    @property
    def m(self) -> int:
        return len(self.rows)

    def numbers(self, columns: tuple[str, ...], what: str = "input") -> np.ndarray:
        """The named columns as floats (m, len(columns)); DataError at the first missing, non-numeric or
        non-finite value, or when a column is not in the header."""
        self.require(columns, what)
        idx = [self.header.index(c) for c in columns]
        out = np.empty((self.m, len(idx)), dtype=np.float64)
        for r, row in enumerate(self.rows):
            for c, i in enumerate(idx):
                out[r, c] = self._number(row[i], r, columns[c])
        return out

    def require(self, columns: tuple[str, ...], what: str) -> None:
        missing = [c for c in columns if c not in self.header]
        if missing:
            raise DataError(f"{self.source}: no {what} column '{missing[0]}'{did_you_mean(missing[0], self.header)}; "
                            f"the run needs {', '.join(columns)}; the file has {', '.join(self.header)}")

    def _number(self, cell: str, r: int, column: str) -> float:
        where = f"{self.source}:{self.lines[r]}: column '{column}'"
        if not cell.strip():
            raise DataError(f"{where}: the value is missing")
        v = number_of(cell)  # as the run's data was read: 5_1 is not 51
        if v is None:
            raise DataError(f"{where}: '{cell}' is not a number")
        if not math.isfinite(v):
            raise DataError(f"{where}: '{cell.strip()}' is not a finite number (NaN or infinite)")
        return v

    def class_codes(self, column: str, classes: tuple[str, ...]) -> np.ndarray:
        """The class index of every row's label in `column` (m,); a label may also be written as the number of
        a class named by a number (1.0 for '1')."""
        self.require((column,), "target")
        i = self.header.index(column)
        lookup = {c: k for k, c in enumerate(classes)}
        # numbers by the data reader's rule (number_of): '10' is not the class '1_0', nor '1_0' the class '10'
        numeric = {v: k for k, v in ((k, number_of(c)) for k, c in enumerate(classes)) if v is not None}
        codes = np.empty(self.m, dtype=np.intp)
        for r, row in enumerate(self.rows):
            label = row[i].strip()
            k = lookup.get(label)
            if k is None:
                v = number_of(label)
                k = None if v is None else numeric.get(v)
            if k is None:
                where = f"{self.source}:{self.lines[r]}: column '{column}'"
                if not label:
                    raise DataError(f"{where}: the class label is missing")
                raise DataError(f"{where}: '{label}' is not a class of this run{did_you_mean(label, classes)}; "
                                f"its classes: {', '.join(classes)}")
            codes[r] = k
        return codes


def read_table(path: str | Path, stdin=None) -> Table:
    """A CSV file with a header row, or stdin for '-' (`stdin`: a binary stream); DataError naming the line."""
    from bpcli.files import CappedStream, NotReadable, open_capped

    source = "<stdin>" if str(path) == STDIN else str(path)
    if Path(path).suffix.lower() in (".yaml", ".yml"):
        raise DataError(f"{path} is a YAML config; DATA is a CSV file of inputs (a header row naming the run's "
                        "input columns, then one row per sample)")
    if str(path) == STDIN:  # capped like a file: an endless stdin stops at MAX_TABLE_BYTES
        capped = io.BufferedReader(CappedStream(stdin, MAX_TABLE_BYTES, source, "DATA file"))
        fh = io.TextIOWrapper(capped, newline="", encoding="utf-8-sig")
    else:
        try:
            fh = io.TextIOWrapper(open_capped(path, MAX_TABLE_BYTES, "DATA file"), newline="", encoding="utf-8-sig")
        except NotReadable as err:
            what = {"missing": "not found", "folder": "is a folder, not a CSV file"}.get(err.kind, err.problem)
            raise DataError(f"{path}: {what}") from None
    try:
        reader = csv.reader(fh)
        header = csv_header(reader, source, f"{source}: empty (expected a header row naming the columns, then data rows)")
        rows, lines = [], []
        width = len(header)
        for row in reader:
            if len(row) != width:
                if not row or all(not c.strip() for c in row):
                    continue  # a blank line
                raise DataError(f"{source}:{reader.line_num}: row has {len(row)} fields, the header has {width}")
            if (len(rows) + 1) * width > MAX_CELLS:
                raise DataError(f"{source}: more than {MAX_CELLS:,} values; split it into smaller files")
            rows.append(tuple(row))
            lines.append(reader.line_num)
    except UnicodeDecodeError:
        raise DataError(f"{source}: not UTF-8 text") from None
    except NotReadable as err:
        raise DataError(f"{source}: {err.problem}; split it into smaller files") from None
    except csv.Error as err:
        raise DataError(f"{source}: malformed CSV ({err})") from None
    finally:
        if str(path) != STDIN:
            fh.close()
        else:
            fh.detach().detach()  # leave the process's stdin open (the capped reader over it is dropped)
    if not rows:
        raise DataError(f"{source}: a header but no data rows")
    return Table(source, tuple(header), tuple(rows), tuple(lines))


def target_columns(loaded) -> tuple[str, ...]:
    """The columns holding a run's targets in a DATA file: the config's CSV target column(s); else y (class
    labels or one output) or the target names y1, y2, ..."""
    cfg, train = loaded.cfg, loaded.prepared.train
    if cfg.data.source == "csv" and cfg.data.target:
        return tuple(cfg.data.target)
    if train.task == "classification" or loaded.net.n_outputs == 1:
        return ("y",)
    return tuple(train.target_names)


def targets(table: Table, loaded, classes: tuple[str, ...] | None) -> np.ndarray:
    """y (m, n_out) as the network is trained on: one-hot (or 0/1 for one output) from a label column, or
    the numeric target columns."""
    columns = target_columns(loaded)
    n_out = loaded.net.n_outputs
    if classes is not None and len(columns) == 1:
        codes = table.class_codes(columns[0], classes)
        return codes[:, None].astype(np.float64) if n_out == 1 else one_hot(codes, n_out)
    y = table.numbers(columns, "target")
    if y.shape[1] != n_out:
        raise DataError(f"{table.source}: {len(columns)} target columns for {n_out} outputs")
    return y


def own_data(loaded) -> tuple[Dataset, np.ndarray | None, np.ndarray | None]:
    """The run's own data as it was read (unscaled, in file order) and the indices of its validation and test rows."""
    from bpcli.config.loader import load_config
    from bpcli.data.dataset import partition
    from bpcli.runs.store import CONFIG

    _, raw = load_config(loaded.run_dir / loaded.checkpoint / CONFIG)
    d = loaded.cfg.data
    if d.test > 0:
        _, val, test = partition(raw, d.validation, d.split_seed, d.test, d.test_seed)
        return raw, val, test
    val = validation_indices(raw, d.validation, d.split_seed) if d.validation > 0 else None
    return raw, val, None
