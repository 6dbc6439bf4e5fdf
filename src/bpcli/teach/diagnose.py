"""diagnose: a learner's gradients against the engine's, and which classic mistake reproduces each wrong one."""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

import numpy as np

from bpcli.config.checker import by_line
from bpcli.files import NotReadable, read_capped
from bpcli.nn.engine import backward, forward
from bpcli.errors import BpcliError, ConfigError, is_finite_number, sample_row
from bpcli.gradcheck.rounding import analytic_bounds
from bpcli.gradcheck.verdict import judge, undecided
from bpcli.teach.mistakes import Context, Variant, all_variants
from bpcli.nn.model import Network
from bpcli.yamlsrc import format_path, yaml11_hint

Array = np.ndarray

DEFAULT_TOL = 1e-3  # relative: an answer to 4 significant figures passes
FLOOR = 1e-12  # values below this count as 0 when comparing
NOT_KNOWN = "not one of the known mistakes"
# A mistake is named only when its prediction matches the answer to the precision the answer was written with
# and the right value and every other mistake are at least MARGIN such tolerances away.
MARGIN = 10.0
# Answers written with more figures than this (relative) are compared at this precision: code in float32, or a
# hand computation that kept 7 figures, is no more accurate than that.
REL_PRECISION = 1e-6
# rule -> what decided a row's diagnosis (the JSON's `rule`)
RULES = {
    "right": "the relative error is within the tolerance",
    "unique": "the only mistake whose value matches the answer to the precision written; the right value and "
              f"every other mistake are at least {MARGIN:g} times that precision away",
    "unique_on_sheet": "several mistakes give this value; this is the only one that also explains every other "
                       "answer on the sheet, and the right value and the rest are at least "
                       f"{MARGIN:g} times the precision away",
    "several": "more than one explanation matches the answer to the precision written",
    "near": "a mistake comes within the tolerance, but not to the precision the answer was written with",
    "rounded": "the right value, rounded to the figures written: too few figures to tell a mistake from rounding",
    "none": "no mistake comes within the tolerance",
}


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
    # the mistakes the diagnosis names: one for unique/unique_on_sheet, the candidates (closest first) for
    # several/near, none otherwise
    findings: tuple[Finding, ...]
    rule: str = "right"  # a key of RULES
    written: str = ""  # the answer as written
    figures: int | None = None  # its significant figures
    precision: float = 0.0  # the absolute tolerance it is compared at (half a unit of its last figure)
    margin: float | None = None  # the next explanation's distance from the answer, in units of `precision`
    runner_up: str = ""  # that next explanation ("the right value" or a mistake's label)

    @property
    def verdict(self) -> str:
        return "right" if self.right else "wrong"

    @property
    def factor(self) -> float | None:
        """learner / engine, when the engine's value is not 0."""
        return self.learner / self.engine if abs(self.engine) > FLOOR else None

    @property
    def confident(self) -> bool:
        return self.rule in ("unique", "unique_on_sheet")

    @property
    def diagnosis(self) -> str:
        if self.right:
            return ""
        if self.confident:
            return self.findings[0].label
        if self.rule in ("several", "near"):
            also = ", ".join(f.label for f in self.findings[1:])
            return f"possibly {self.findings[0].label}" + (f" (also consistent with: {also})" if also else "")
        if self.rule == "rounded":
            return f"the right value rounded to {self.figures} significant figure{'s' if self.figures != 1 else ''}"
        return NOT_KNOWN

    def to_dict(self) -> dict:
        return {"name": self.name, "engine": self.engine, "yours": self.learner, "written": self.written,
                "rel_error": self.rel_error, "verdict": self.verdict, "factor": self.factor,
                "diagnosis": self.diagnosis, "rule": self.rule, "confident": self.confident,
                "significant_figures": self.figures, "precision": self.precision, "margin": self.margin,
                "runner_up": self.runner_up or None, "mistakes": [f.to_dict() for f in self.findings]}


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
    margin: float = MARGIN  # how many times its precision the next explanation must be from a named mistake

    @property
    def wrong(self) -> list[AnswerRow]:
        return [r for r in self.rows if not r.right]

    @property
    def exit_code(self) -> int:
        return 1 if self.wrong else 0

    def to_dict(self) -> dict:
        return {"command": "diagnose", "name": self.name, "source": self.source, "answers": self.answers,
                "samples": self.m, "sample": self.sample, "tol": self.tol, "margin": self.margin,
                "right": len(self.rows) - len(self.wrong), "wrong": len(self.wrong),
                "explains_all_wrong": list(self.explains_all), "rows": [r.to_dict() for r in self.rows],
                "rules": {k: v for k, v in RULES.items() if any(r.rule == k for r in self.rows)}}


def _rel(a: float, b: float) -> float:
    den = max(abs(a), abs(b), FLOOR)
    return abs(a - b) / den if max(abs(a), abs(b)) > FLOOR else 0.0


def written_precision(text: str) -> tuple[int | None, float]:
    """(significant figures, half a unit of the last figure) of a number as written: '0.074' -> (2, 0.0005).

    An exact zero ('0', '0.0') is (None, 0.0): it claims to be exactly 0. Text that is not a plain decimal
    number (0x1F) is (None, 0.0) too.
    """
    try:
        d = Decimal(text.strip())
    except (InvalidOperation, ValueError):
        return None, 0.0
    if not d.is_finite() or d == 0:
        return None, 0.0
    t = d.as_tuple()
    return len(t.digits), 0.5 * 10.0 ** t.exponent


def diagnose(net: Network, x: Array, y: Array, answers: dict[str, float | str], lr: float, *,
             tol: float = DEFAULT_TOL, sample: int | None = None, name: str = "", source: str = "",
             answers_source: str = "") -> DiagnoseReport:
    """answers: parameter name (any accepted spelling) -> the learner's dC/dparam on these samples (x: (m, n_in)).

    A value given as text is the number as the learner wrote it ("0.074"): its figures set the precision it is
    compared at; a float is taken as written by repr (its shortest round-trip text).
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

    bounds = analytic_bounds(net, tape, y, grads)
    answered = []  # (name, engine, learner, written, figures, precision, right by gradcheck's rule)
    for pname, key in refs.items():
        raw = answers[key]
        a = float(raw)
        written = raw.strip() if isinstance(raw, str) else repr(a)
        figures, half = written_precision(written)
        ok = _not_failed(a, true[pname], net.resolve(pname), bounds, tol)
        answered.append((pname, true[pname], a, written, figures, max(half, REL_PRECISION * abs(a), FLOOR), ok))
    # The sheet as a whole: the mistakes that match every wrong answer to its precision, preferring those that
    # also leave every right answer right. Among mistakes that give a row the same value, these win.
    wrong = [r for r in answered if not r[6] and abs(r[2] - r[1]) > r[5]]
    right = [r for r in answered if r[6]]
    explains = [v for v in variants if wrong and all(abs(v.values[r[0]] - r[2]) <= r[5] for r in wrong)]
    everywhere = [v for v in explains if all(_rel(v.values[r[0]], r[1]) <= tol for r in right)] or explains
    keep = {id(v) for v in everywhere}
    rows = [_judge(pname, e, a, written, figures, prec, ok, tol, variants, keep)
            for pname, e, a, written, figures, prec, ok in answered]
    return DiagnoseReport(name, source, answers_source, int(x.shape[0]), None if sample is None else sample + 1,
                          tol, tuple(rows), tuple(v.label for v in everywhere))


def _judge(pname: str, e: float, a: float, written: str, figures: int | None, prec: float, ok: bool, tol: float,
           variants: list[Variant], keep: set[int]) -> AnswerRow:
    """One answer's verdict (ok: gradcheck's rule did not fail it) and diagnosis; `keep`: ids of the variants
    that explain the whole sheet."""
    rel = _rel(a, e)
    base = dict(name=pname, engine=e, learner=a, rel_error=rel, written=written, figures=figures, precision=prec)
    if ok:
        return AnswerRow(**base, right=True, findings=())
    if abs(a - e) <= prec:
        return AnswerRow(**base, right=False, findings=(), rule="rounded", margin=None, runner_up="the right value")
    # a mistake that leaves this parameter as it is cannot explain a wrong value of it
    cands = sorted(((abs(v.values[pname] - a), v) for v in variants if _rel(v.values[pname], e) > 1e-9),
                   key=lambda dv: dv[0])
    fits = [v for d, v in cands if d <= prec]
    if fits:
        preferred = [v for v in fits if id(v) in keep] or fits
        named = preferred[0]
        # every other explanation, save those the rest of the sheet rules out when there is one that fits it
        rivals = [(abs(e - a), "the right value")] + [(d, v.label) for d, v in cands if v is not named]
        open_rivals = [(abs(e - a), "the right value")] + [(d, v.label) for d, v in cands
                                                          if v is not named and (not keep or id(v) in keep)]
        near, who = min(rivals, key=lambda r: r[0])
        near_open, who_open = min(open_rivals, key=lambda r: r[0])
        if near >= MARGIN * prec:
            return AnswerRow(**base, right=False, findings=(_finding(named, pname),), rule="unique",
                             margin=near / prec, runner_up=who)
        if len(preferred) == 1 and near_open >= MARGIN * prec:
            return AnswerRow(**base, right=False, findings=(_finding(named, pname),), rule="unique_on_sheet",
                             margin=near_open / prec, runner_up=who_open)
        others = [v for d, v in cands if v is not named and d < MARGIN * prec and (not keep or id(v) in keep)]
        return AnswerRow(**base, right=False, findings=tuple(_finding(v, pname) for v in [named, *others]),
                         rule="several", margin=near_open / prec, runner_up=who_open)
    near = [v for d, v in cands if _rel(a, v.values[pname]) <= tol]
    if near:
        return AnswerRow(**base, right=False, findings=tuple(_finding(v, pname) for v in near), rule="near",
                         margin=cands[0][0] / prec, runner_up=near[0].label)
    return AnswerRow(**base, right=False, findings=(), rule="none")


def _not_failed(a: float, e: float, ref, bounds, tol: float) -> bool:
    """gradcheck's rule (judge) on the learner's answer against the engine's value and its rounding bound: an
    answer is wrong only when the verdict fails (it may also be right where the engine's own value is noise)."""
    b = bounds[ref.layer][0 if ref.kind == "W" else 1]
    _, code, passed = judge(a, e, float(np.asarray(b)[ref.index]), tol)
    return bool(passed) or bool(undecided(code))


def _finding(v: Variant, pname: str) -> Finding:
    return Finding(v.key, v.where, v.label, v.text, v.values[pname])


# --- the answers file ----------------------------------------------------------------------------


MAX_ANSWERS_BYTES = 5_000_000
_NUMBER = re.compile(r"^[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$")  # as Python and YAML 1.2 write it


def read_answers(path: str | Path) -> tuple[dict[str, str], dict]:
    """(name -> the value as written, meta) from YAML, JSON (a mapping, maybe under `gradients:`) or CSV (name,value).

    The values are the numbers' text ("0.074"), checked to be finite numbers: diagnose compares each at the
    precision it was written with. meta: the `exercise:` mapping of a worksheet's answers (seed, size,
    activation, samples), else {}.
    """
    p = Path(path)
    src = str(path)
    try:  # size checked before reading: a sparse file of gigabytes is refused at once
        raw = read_capped(p, MAX_ANSWERS_BYTES, "answers file")
    except NotReadable as err:
        raise ConfigError([f"{src}: answers file not found" if err.kind == "missing" else
                           f"{src}: {err.problem}"]) from None
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

    problems = [f"{src}:{line}: {format_path(path)}: given twice (lines {first} and {line}); keep one"
                for path, first, line in locs.duplicates]
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
    out = {}
    for k, v in values.items():
        if not base and k in ("exercise", "gradients"):
            continue
        if not is_finite_number(v):
            problems.append(f"{where(base + (k,))}: {k}: expected a finite number, found {v!r:.40}{yaml11_hint(v)}")
        else:
            written = locs.texts.get(base + (str(k),), "")
            out[str(k)] = written if _NUMBER.match(written) and float(written) == float(v) else repr(float(v))
    if problems:
        raise ConfigError(by_line(problems))
    if not out:
        raise ConfigError([f"{src}: no answers found; write one line per parameter, e.g. v1: 0.0123"])
    return out, meta


def _read_csv(text: str, src: str) -> dict[str, str]:
    out, problems, lines = {}, [], {}
    header = False
    reader = csv.reader(io.StringIO(text))
    try:
        for row in reader:
            i = reader.line_num
            cells = [c.strip() for c in row]
            if not cells or not any(cells) or cells[0].startswith("#"):
                continue
            if len(cells) != 2:
                problems.append(f"{src}:{i}: expected two columns, name,value; found {len(cells)}")
                continue
            value = cells[1]
            if not _NUMBER.match(value) or not math.isfinite(float(value)):
                if not (out or problems or header) and not _looks_numeric(value):
                    header = True  # a header row: the first row, its value not a number
                    continue
                what = "a finite number" if _looks_numeric(value) and "_" not in value else "a number"
                hint = " (write the digits without '_')" if "_" in value and _looks_numeric(value) else ""
                problems.append(f"{src}:{i}: {cells[0][:40]}: expected {what}, found {value[:40]!r}{hint}")
                continue
            if cells[0] in lines:
                problems.append(f"{src}:{i}: {cells[0][:40]}: given twice (lines {lines[cells[0]]} and {i}); "
                                "keep one")
                continue
            lines[cells[0]] = i
            out[cells[0]] = value
    except csv.Error as err:  # a field over the csv module's size limit, a NUL byte, ...
        raise ConfigError([f"{src}:{reader.line_num}: not a row of name,value ({err})"]) from None
    if problems:
        raise ConfigError(problems)
    if not out:
        raise ConfigError([f"{src}: no answers found; write one row per parameter, name,value"])
    return out


def _looks_numeric(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True

