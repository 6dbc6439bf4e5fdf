"""A run's history: every epoch appended to history.csv, and a thinned sample (at most ~2,000 epochs) kept in memory.

history.csv only grows; each checkpoint records how many rows and bytes of it are valid and their SHA-256,
so rows written after the last checkpoint (or torn by a kill) are ignored. Memory and checkpoint size depend
on the network, never on the epoch count.
"""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path

from bpcli.errors import RunFolderError
from bpcli.training.fit import EpochRecord

HISTORY = "history.csv"
SAMPLE_LIMIT = 2048  # the thinned sample keeps epoch 1, the last epoch and every stride-th epoch, at most this many
SAMPLE = "history-sample.json"


def stride(epochs: int) -> int:
    """The smallest power of two s with epochs // s <= SAMPLE_LIMIT."""
    s = 1
    while epochs // s > SAMPLE_LIMIT:
        s *= 2
    return s


def kept(epoch: int, epochs: int, s: int) -> bool:
    """Whether the sample after `epochs` epochs (stride s = stride(epochs)) keeps `epoch`: the first, the last
    and every s-th."""
    return epoch == 1 or epoch == epochs or epoch % s == 0


def thin(records: list, epochs: int) -> list:
    """The records (EpochRecord or dicts with 'epoch') the sample keeps after `epochs` epochs: a function of
    the epoch count only, so a resumed run keeps exactly the sample of an uninterrupted one."""
    s = stride(epochs)
    ep = (lambda r: r.epoch) if records and isinstance(records[0], EpochRecord) else (lambda r: r["epoch"])
    return [r for r in records if kept(ep(r), epochs, s)]


def header(letters: list[str]) -> list[str]:
    return (["epoch", "loss", "val_loss", "metric", "val_metric", "seconds"]
            + [f"{k}_{c}" for k in ("grad_norm", "weight_norm", "update_ratio", "saturation") for c in letters]
            + ["penalty", "best", "l1_penalty", "lr", "stats_every"])


OLD_HEADER_CELLS = 3  # history.csv of runs made before the l1_penalty and lr columns: the header without them
STRIDE_CELLS = 1  # runs made before the stats_every column (update_ratio and saturation at every epoch)


def _opt(v) -> str:
    return "" if v is None else repr(float(v))


def row(r: EpochRecord, lr_column: bool = True, stride_column: bool = True) -> str:
    cells = [str(r.epoch), repr(r.loss), _opt(r.val_loss), _opt(r.metric), _opt(r.val_metric), f"{r.seconds:.6f}"]
    for vals in (r.grad_norm, r.weight_norm, r.update_ratio, r.saturation):
        cells += [_opt(v) for v in vals]
    cells += [_opt(r.penalty), str(int(r.best))] + ([_opt(r.l1_penalty), _opt(r.lr)] if lr_column else [])
    cells += ["" if r.stats_every is None else str(r.stats_every)] if stride_column else []
    return ",".join(cells) + "\n"


class HistoryLog:
    """history.csv open for appending, the SHA-256 of every byte in it, and the thinned sample."""

    def __init__(self, path: Path, fh, digest, nbytes: int, rows: int, sample: list[EpochRecord]):
        self.path, self.fh, self.digest, self.bytes, self.rows, self.sample = path, fh, digest, nbytes, rows, sample
        self.lr_column = True  # False for the history of a run made before the lr column: its rows stay as they were
        self.stride_column = True  # likewise the stats_every column

    @classmethod
    def create(cls, path: Path, letters: list[str], prefix: bytes | None = None, sample: list[EpochRecord] = (),
               rows: int = 0) -> HistoryLog:
        """A new history.csv: the header, or `prefix` (the header and `rows` rows) whose thinned sample is `sample`
        (read_prefix's)."""
        fh = open(path, "xb")  # a new file in a new run folder: the umask gives 0644
        log = cls(path, fh, hashlib.sha256(), 0, rows, list(sample))
        log._write(prefix if prefix is not None else (",".join(header(letters)) + "\n").encode())
        first = b"" if prefix is None else prefix.split(b"\n", 1)[0]
        log.lr_column = prefix is None or first.endswith((b",lr", b",lr,stats_every"))
        log.stride_column = prefix is None or first.endswith(b",stats_every")
        return log

    @classmethod
    def reopen(cls, path: Path, recorded: dict, sample: list[EpochRecord]) -> HistoryLog:
        """Continue history.csv after its last checkpoint: check the recorded part, drop anything after it."""
        digest = hashlib.sha256()
        try:
            fh = open(path, "r+b")
        except OSError as err:
            raise RunFolderError(f"{path}: cannot open the history ({err.strerror})") from None
        left, rows, tail = recorded["bytes"], -1, b""  # rows: lines ended so far, the header not counted
        wrong = None  # the first row that is not the next epoch: a resume would glue two histories together
        try:
            while left:
                chunk = fh.read(min(left, 1 << 20))
                if not chunk:
                    break
                digest.update(chunk)
                left -= len(chunk)
                *lines, tail = (tail + chunk).split(b"\n")
                for line in lines:
                    if wrong is None and rows >= 0 and not line.startswith(b"%d," % (rows + 1)):
                        wrong = f"row {rows + 1} is not epoch {rows + 1}"
                    rows += 1
                if len(tail) > 1 << 20:
                    tail, wrong = b"", wrong or "a line longer than 1 MB"
            if left or digest.hexdigest() != recorded["sha256"]:
                raise RunFolderError(f"{path}: does not match the checksum recorded in run.json "
                                     "(the file was changed after the run was saved)")
            if wrong is None and (tail or rows != recorded["rows"]):
                wrong = f"it holds {max(rows, 0)} whole rows, run.json records {recorded['rows']}"
            if wrong is not None:
                raise RunFolderError(f"{path}: damaged ({wrong}); the run cannot be continued")
        except BaseException:
            fh.close()
            raise
        fh.truncate(recorded["bytes"])  # rows after the checkpoint, or a torn last row
        fh.seek(0)
        first = fh.readline()
        fh.seek(recorded["bytes"])
        log = cls(path, fh, digest, recorded["bytes"], recorded["rows"], sample)
        log.lr_column = first.rstrip(b"\n").endswith((b",lr", b",lr,stats_every"))
        log.stride_column = first.rstrip(b"\n").endswith(b",stats_every")
        return log

    def _write(self, data: bytes) -> None:
        self.fh.write(data)
        self.digest.update(data)
        self.bytes += len(data)

    def append(self, rec: EpochRecord) -> None:
        self._write(row(rec, self.lr_column, self.stride_column).encode())
        self.rows += 1
        prev = self.sample[-1].epoch if self.sample else None
        self.sample.append(rec)
        s = stride(rec.epoch)
        if prev is not None and prev != 1 and prev % s:
            del self.sample[-2]  # it was kept only as the last epoch
        if s != stride(rec.epoch - 1):
            self.sample = thin(self.sample, rec.epoch)  # the stride just doubled

    def sync(self) -> dict:
        """Flush and fsync; what a checkpoint records about the file."""
        self.fh.flush()
        os.fsync(self.fh.fileno())
        return {"file": HISTORY, "rows": self.rows, "bytes": self.bytes, "sha256": self.digest.hexdigest()}

    def close(self) -> None:
        self.fh.close()


# --- reading a sample back, every value checked -------------------------------------------------


def _number(v, what: str, optional: bool = False, lo: float = -math.inf) -> float | None:
    if v is None and optional:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"{what} is {type(v).__name__}, expected a number")
    try:
        f = float(v)
    except OverflowError:
        raise ValueError(f"{what} is out of range") from None
    if not math.isfinite(f) or f < lo:
        raise ValueError(f"{what} is {v!r}")
    return f


def record_from_dict(d, n_layers: int, epochs: int) -> EpochRecord:
    """An EpochRecord from its JSON form, every field checked by type and range; ValueError if damaged."""
    if not isinstance(d, dict):
        raise ValueError(f"a record is {type(d).__name__}, expected an object")
    ep = d.get("epoch")
    if isinstance(ep, bool) or not isinstance(ep, int) or not 1 <= ep <= epochs:
        raise ValueError(f"epoch {ep!r} is not between 1 and {epochs}")

    def layers(key: str, optional: bool = True) -> tuple:
        vals = d.get(key)
        if not isinstance(vals, list) or len(vals) != n_layers:
            raise ValueError(f"epoch {ep}: {key} is not a list of {n_layers} numbers")
        return tuple(_number(v, f"epoch {ep}: {key}", optional) for v in vals)

    return EpochRecord(ep, _number(d.get("loss"), f"epoch {ep}: loss"),
                       _number(d.get("val_loss"), f"epoch {ep}: val_loss", True),
                       _number(d.get("metric"), f"epoch {ep}: metric", True),
                       _number(d.get("val_metric"), f"epoch {ep}: val_metric", True),
                       layers("grad_norm"), layers("weight_norm"), layers("update_ratio"), layers("saturation"),
                       _number(d.get("seconds"), f"epoch {ep}: seconds", lo=0.0),
                       _number(d.get("penalty"), f"epoch {ep}: penalty", True, lo=0.0), _flag(d.get("best"), ep),
                       _number(d.get("lr"), f"epoch {ep}: lr", True, lo=0.0),
                       _number(d.get("l1_penalty"), f"epoch {ep}: l1_penalty", True, lo=0.0), _every(d.get("stats_every"), ep))


def _every(v, ep: int) -> int | None:
    if v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
        return v
    raise ValueError(f"epoch {ep}: stats_every is not a whole number of epochs")


def _flag(v, ep: int) -> bool:
    if v is None or isinstance(v, bool):
        return bool(v)
    raise ValueError(f"epoch {ep}: best is not true or false")


def sample_from_json(doc, n_layers: int, epochs: int) -> list[EpochRecord]:
    """The thinned sample of a checkpoint: exactly the epochs thin() keeps after `epochs`; ValueError if not."""
    if not isinstance(doc, list):
        raise ValueError(f"expected a list of records, found {type(doc).__name__}")
    if len(doc) > SAMPLE_LIMIT + 2:
        raise ValueError(f"{len(doc)} records, more than bpcli keeps ({SAMPLE_LIMIT + 2})")
    records = [record_from_dict(d, n_layers, epochs) for d in doc]
    s = stride(epochs)
    want = sorted({1, epochs, *range(s, epochs + 1, s)}) if epochs else []
    got = [r.epoch for r in records]
    if got != want:
        raise ValueError(f"holds epochs {got[:3]}...{got[-2:]}, expected the sample of {epochs} epochs")
    return records


def read_prefix(path: Path, recorded: dict, letters: list[str], rows: int) -> tuple[bytes, list[EpochRecord]]:
    """The header and first `rows` rows of history.csv as bytes, and the thinned sample of them (thin's epochs)
    as records, after checking every byte run.json records against its SHA-256; RunFolderError if damaged."""
    from bpcli.files import read_regular
    data = read_regular(path, recorded["bytes"] + 16 * 2**20, "history")[: recorded["bytes"]]
    if len(data) < recorded["bytes"] or hashlib.sha256(data).hexdigest() != recorded["sha256"]:
        raise RunFolderError(f"{path}: does not match the checksum recorded in run.json "
                             "(the file was changed after the run was saved)")
    lines = data.split(b"\n")
    names = header(letters)
    for old in (OLD_HEADER_CELLS, STRIDE_CELLS):
        if lines[0].decode("utf-8", "replace").split(",") == names[:-old]:
            names = names[:-old]  # a run made before the lr (or the stats_every) column: its rows have none
    if lines[0].decode("utf-8", "replace").split(",") != names or len(lines) < rows + 2:
        raise RunFolderError(f"{path}: damaged (the header or the number of rows is not what run.json records)")
    for i, line in enumerate(lines[1: rows + 1], start=1):  # the rows copied into a branch: epochs 1 to rows
        if not line.startswith(b"%d," % i):
            raise RunFolderError(f"{path}: damaged (row {i} is not epoch {i})")
    n = len(letters)
    records = []
    s = stride(rows)
    for i, line in enumerate(lines[1: rows + 1], start=1):
        if not kept(i, rows, s):  # thin's rule, applied before parsing
            continue
        cells = [None if c == "" else c for c in line.decode("utf-8", "replace").split(",")]
        try:
            if len(cells) != len(names) or cells[0] != str(i):
                raise ValueError(f"row {i} is not epoch {i} with {len(names)} cells")
            every = cells.pop() if names[-1] == "stats_every" else None
            lr, l1 = (cells.pop(), cells.pop()) if names[-1] in ("lr", "stats_every") else (None, None)
            v = [None if c is None or not math.isfinite(float(c)) else float(c) for c in cells[1:-1]]
            layer = lambda k: v[5 + k * n: 5 + (k + 1) * n]
            records.append(record_from_dict(
                {"epoch": i, "loss": v[0], "val_loss": v[1], "metric": v[2], "val_metric": v[3], "seconds": v[4],
                 "grad_norm": layer(0), "weight_norm": layer(1), "update_ratio": layer(2), "saturation": layer(3),
                 "penalty": v[-1], "best": cells[-1] == "1", "lr": None if lr is None else float(lr),
                 "l1_penalty": None if l1 is None else float(l1),
                 "stats_every": None if every is None else int(every)}, n, rows))
        except ValueError as err:
            raise RunFolderError(f"{path}: damaged ({err})") from None
    end = sum(len(line) + 1 for line in lines[: rows + 1])
    return data[:end], records
