"""diagnose: a learner's gradients against the engine's, and which classic mistake reproduces each wrong one."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bpcli.engine import backward, forward
from bpcli.errors import BpcliError, ConfigError, is_finite_number, sample_row
from bpcli.mistakes import Context, Variant, all_variants
from bpcli.model import Network

Array = np.ndarray

DEFAULT_TOL = 1e-3  # relative: an answer to 4 significant figures passes
FLOOR = 1e-12  # values below this count as 0 when comparing
NOT_KNOWN = "not one of the known mistakes"


@dataclass(frozen=True)
class Finding:
    """A mistake that reproduces a wrong answer."""

    key: str
    where: str
    label: str
    text: str
    value: float  # the gradient with this mistake made

    def to_dict(self) -> dict:
        return {"mistake": self.key, "where": self.where, "label": self.label, "explanation": self.text,
                "value_with_mistake": self.value}


@dataclass(frozen=True)
class AnswerRow:
    name: str
    engine: float
    learner: float
    rel_error: float
    right: bool
    findings: tuple[Finding, ...]  # empty for a right answer, and for a wrong one no mistake reproduces

    @property
    def verdict(self) -> str:
        return "right" if self.right else "wrong"

    @property
    def factor(self) -> float | None:
        """learner / engine, when the engine's value is not 0."""
        return self.learner / self.engine if abs(self.engine) > FLOOR else None

    @property
    def diagnosis(self) -> str:
        if self.right:
            return ""
        return "; or ".join(f.label for f in self.findings) if self.findings else NOT_KNOWN

    def to_dict(self) -> dict:
        return {"name": self.name, "engine": self.engine, "yours": self.learner, "rel_error": self.rel_error,
                "verdict": self.verdict, "factor": self.factor, "diagnosis": self.diagnosis,
                "mistakes": [f.to_dict() for f in self.findings]}


@dataclass(frozen=True)
class DiagnoseReport:
    name: str
    source: str
    answers: str
    m: int
    sample: int | None  # 1-based, when one sample was asked for
    tol: float
    rows: tuple[AnswerRow, ...]
    explains_all: tuple[str, ...]  # labels of the mistakes that reproduce every wrong answer

    @property
    def wrong(self) -> list[AnswerRow]:
        return [r for r in self.rows if not r.right]

    @property
    def exit_code(self) -> int:
        return 1 if self.wrong else 0

    def to_dict(self) -> dict:
        return {"command": "diagnose", "name": self.name, "source": self.source, "answers": self.answers,
                "samples": self.m, "sample": self.sample, "tol": self.tol,
                "right": len(self.rows) - len(self.wrong), "wrong": len(self.wrong),
                "explains_all_wrong": list(self.explains_all), "rows": [r.to_dict() for r in self.rows]}


def _rel(a: float, b: float) -> float:
    den = max(abs(a), abs(b), FLOOR)
    return abs(a - b) / den if max(abs(a), abs(b)) > FLOOR else 0.0


def diagnose(net: Network, x: Array, y: Array, answers: dict[str, float], lr: float, *, tol: float = DEFAULT_TOL,
             sample: int | None = None, name: str = "", source: str = "", answers_source: str = "") -> DiagnoseReport:
    """answers: parameter name (any accepted spelling) -> the learner's dC/dparam on these samples (x: (m, n_in)).

    sample: a 0-based index to diagnose one sample's gradient instead of the mean over all.
    """
    if not (0 < tol < 1):
        raise BpcliError(f"--tol: must be between 0 and 1 (relative), found {tol:g}")
    if sample is not None:
        sample_row(sample + 1, x.shape[0])
        x, y = x[sample: sample + 1], y[sample: sample + 1]
    refs = {}
    problems = []
    for key in answers:
        try:
            ref = net.resolve(key)
        except BpcliError as err:
            problems.append(f"{answers_source}: {err}")
            continue
        if ref.name in refs:
            problems.append(f"{answers_source}: '{key}' and '{refs[ref.name]}' name the same parameter {ref.name}")
        refs[ref.name] = key
    if problems:
        raise ConfigError(problems)
    net = net.astype(np.float64)
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    with np.errstate(all="ignore"):
        _, tape = forward(net, x)
        grads = backward(net, tape, y)
    ctx = Context(net, x, y, tape, grads, lr)
    true = ctx.values(grads)
    variants = all_variants(ctx)

    rows = []
    for pname, key in refs.items():
        e, a = true[pname], float(answers[key])
        rel = _rel(a, e)
        right = rel <= tol
        found = () if right else tuple(_reproducing(variants, pname, a, e, tol))
        rows.append(AnswerRow(pname, e, a, rel, right, found))
    wrong = [r for r in rows if not r.right]
    # The diagnosis prefers the mistakes that explain the whole sheet: first those that reproduce every wrong
    # answer and leave every right one right, then those that reproduce every wrong answer; only when none does
    # is each wrong answer given every mistake that reproduces it on its own.
    right = [r for r in rows if r.right]
    explains = [v for v in variants if wrong and all(_matches(v.values[r.name], r.learner, r.engine, tol)
                                                      for r in wrong)]
    everywhere = [v for v in explains if all(_rel(v.values[r.name], r.engine) <= tol for r in right)] or explains
    keep = {(v.key, v.where) for v in everywhere}
    if keep:
        rows = [r if r.right else AnswerRow(r.name, r.engine, r.learner, r.rel_error, r.right,
                                             tuple(f for f in r.findings if (f.key, f.where) in keep))
                for r in rows]
    return DiagnoseReport(name, source, answers_source, int(x.shape[0]), None if sample is None else sample + 1,
                          tol, tuple(rows), tuple(v.label for v in everywhere))


def _matches(v: float, a: float, e: float, tol: float) -> bool:
    return _rel(v, e) > tol and _rel(a, v) <= tol


def _reproducing(variants: list[Variant], pname: str, a: float, e: float, tol: float) -> list[Finding]:
    out = []
    for v in variants:
        if _matches(v.values[pname], a, e, tol):
            out.append(Finding(v.key, v.where, v.label, v.text, v.values[pname]))
    return out


# --- the answers file ----------------------------------------------------------------------------


def read_answers(path: str | Path) -> tuple[dict[str, float], dict]:
    """(name -> value, meta) from YAML, JSON (a mapping, the values maybe under `gradients:`) or CSV (name,value).

    meta: the `exercise:` mapping of a worksheet's answers (seed, size, activation, samples), else {}.
    """
    p = Path(path)
    src = str(path)
    if not p.is_file():
        raise ConfigError([f"{src}: answers file not found" if not p.exists() else f"{src}: is not a file"])
    raw = p.read_bytes()
    if len(raw) > 5_000_000:
        raise ConfigError([f"{src}: {len(raw) / 1e6:.0f} MB is too large for an answers file"])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError([f"{src}: the file is not UTF-8 text"]) from None
    if p.suffix.lower() == ".csv":
        return _read_csv(text, src), {}
    from bpcli.yamlsrc import read_yaml
    doc, locs = read_yaml(text, src)

    def where(path: tuple) -> str:
        line = locs.line(path)
        return f"{src}:{line}" if line else src

    if not isinstance(doc, dict):
        raise ConfigError([f"{src}: expected a mapping of parameter name to gradient (v1: 0.0123), or CSV rows "
                           "name,value"])
    meta = doc.get("exercise") or {}
    if not isinstance(meta, dict):
        raise ConfigError([f"{where(('exercise',))}: exercise: expected a mapping (seed, size, activation)"])
    values, base = doc, ()
    if "gradients" in doc:
        values, base = doc["gradients"], ("gradients",)
        if not isinstance(values, dict):
            raise ConfigError([f"{where(base)}: gradients: expected a mapping of parameter name to value"])
    out, problems = {}, []
    for k, v in values.items():
        if not base and k in ("exercise", "gradients"):
            continue
        if not is_finite_number(v):
            problems.append(f"{where(base + (k,))}: {k}: expected a finite number, found {v!r:.40}")
        else:
            out[str(k)] = float(v)
    if problems:
        raise ConfigError(problems)
    if not out:
        raise ConfigError([f"{src}: no answers found; write one line per parameter, e.g. v1: 0.0123"])
    return out, meta


def _read_csv(text: str, src: str) -> dict[str, float]:
    out, problems = {}, []
    for i, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [c.strip() for c in row]
        if not cells or not any(cells) or cells[0].startswith("#"):
            continue
        if len(cells) != 2:
            problems.append(f"{src}:{i}: expected two columns, name,value; found {len(cells)}")
            continue
        try:
            v = float(cells[1])
        except ValueError:
            if i == 1:
                continue  # a header row
            problems.append(f"{src}:{i}: {cells[0]}: expected a number, found {cells[1][:40]!r}")
            continue
        if not math.isfinite(v):
            problems.append(f"{src}:{i}: {cells[0]}: expected a finite number, found {cells[1][:40]!r}")
            continue
        out[cells[0]] = v
    if problems:
        raise ConfigError(problems)
    if not out:
        raise ConfigError([f"{src}: no answers found; write one row per parameter, name,value"])
    return out
