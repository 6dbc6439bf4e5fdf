"""Every `$ ...` example in README.md and docs/*.md, run in a scratch folder and compared with the doc.

What is tested (also written in docs/development.md):
- a fenced block (```` ``` ```` or ```` ```console ````) whose first line starts with `$ ` is an example;
  each `$ ` line is a shell command (bash, `bpcli` and `python` on PATH, COLUMNS=80, stdout and stderr
  together), the lines after it up to the next `$ ` line are its expected output;
- a line `...` in an expected output stands for any number of lines (zero or more);
- the comparison ignores what legitimately varies: timings (`2.44 s`, `0:00:00`), dates, the scratch
  folder's path (written `/tmp/bpcli-docs` in a doc), progress bars, how many spaces or box rules pad a line;
- the examples of one file run in order, in one scratch folder holding a copy of `configs/` and an empty
  `docs/img/`: each file's runs are its own;
- HTML comments steer the test and are invisible in the rendered doc:
  `<!-- doc-test: skip REASON -->` before a block leaves it out;
  `<!-- doc-test: needs PROGRAM -->` before a block runs it only where PROGRAM is installed;
  `<!-- doc-test: terminal -->` before a block runs it on a pseudo-terminal 80 columns wide (tables, not CSV);
  `<!-- doc-test: file NAME -->` before a fenced block writes that block's text to NAME in the scratch folder;
  `<!-- doc-test: setup` ... `-->` runs the shell script in between (one bash), silently, where it stands.

`BPCLI_DOCS_UPDATE=1 pytest -m docs tests/test_docs.py` rewrites each example's output with what the tool
prints now (keeping the `...` elisions where the lines around them are still found); review with `git diff`.
The examples run under `pytest -m docs` (`.ci/run` runs the group beside the suite); the checker's own
tests below run in the default suite.
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
UPDATE = os.environ.get("BPCLI_DOCS_UPDATE") == "1"
ELLIPSIS = "..."
DOC_SCRATCH = "/tmp/bpcli-docs"  # how a doc writes the scratch folder's path
_FENCE = re.compile(r"^(\s*)(```+)(\w*)\s*$")
_DIRECTIVE = re.compile(r"^<!-- doc-test: (skip|needs|file|setup|terminal)\b ?(.*?)(-->)?\s*$")


@dataclass
class Command:
    """One `$ ` line and the doc lines (0-based, end exclusive) of its expected output."""
    shell: str
    start: int
    end: int
    expected: list[str]


@dataclass
class Step:
    """What the doc asks for at one place: an example block, a file to write or hidden setup commands."""
    kind: str                     # "example", "file" or "setup"
    line: int                     # 1-based line of the block in the doc
    commands: list[Command] = field(default_factory=list)
    text: str = ""                # the file's text, or the setup's shell lines
    name: str = ""                # the file's name
    skip: str = ""                # why the block is left out ("" when it runs)
    needs: list[str] = field(default_factory=list)
    terminal: bool = False        # run on a pseudo-terminal 80 columns wide (what a user sees typing it)


def parse(text: str) -> list[Step]:
    """The steps of one doc, in order."""
    lines = text.split("\n")
    steps: list[Step] = []
    pending: dict[str, str] = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        d = _DIRECTIVE.match(line)
        if d:
            kind, arg = d.group(1), d.group(2).strip()
            if kind == "setup":
                body = [arg] if arg else []
                while not d.group(3):
                    i += 1
                    if lines[i].strip() == "-->":
                        break
                    body.append(lines[i])
                steps.append(Step("setup", i + 1, text="\n".join(b for b in body if b.strip())))
            elif kind == "needs":
                pending.setdefault("needs", "")
                pending["needs"] += " " + arg
            else:
                pending[kind] = arg or "-"
            i += 1
            continue
        f = _FENCE.match(line)
        if not f:
            i += 1
            continue
        fence, j = f.group(2), i + 1
        while j < len(lines) and lines[j].strip() != fence:
            j += 1
        body = lines[i + 1:j]
        if "file" in pending:
            steps.append(Step("file", i + 1, name=pending["file"], text="\n".join(body) + "\n"))
        elif body and body[0].startswith("$ "):
            step = Step("example", i + 1, skip=pending.get("skip", ""), needs=pending.get("needs", "").split(),
                        terminal="terminal" in pending)
            k = 0
            while k < len(body):
                shell = body[k][2:]
                k0 = k = k + 1
                while k < len(body) and not body[k].startswith("$ "):
                    k += 1
                step.commands.append(Command(shell, i + 1 + k0, i + 1 + k, body[k0:k]))
            steps.append(step)
        pending = {}
        i = j + 1
    return steps


_PROGRESS = re.compile(r"━|\d+:\d\d:\d\d\s*$")
_RULES = [
    (re.compile(r"\b\d+:\d\d:\d\d\b"), "<time>"),
    (re.compile(r"\b\d+(\.\d+)?\s?(ms|s)\b"), "<secs>"),
    (re.compile(r"\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +\d{1,2} +\d\d:\d\d\b"), "<date>"),
    (re.compile(r"\b\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)?"), "<date>"),
    (re.compile(r"\b\d+(\.\d+)? KB\b"), "<size>"),
    (re.compile(r"^(\s*seconds)[\d.\s]+$"), r"\1 <secs>"),
    (re.compile(r"─+"), "─"),
    (re.compile(r"\s+"), " "),
]


def normalise(lines: list[str], scratch: str = "") -> list[str]:
    """The lines with what legitimately varies taken out (see the module docstring)."""
    out = []
    for line in lines:
        if _PROGRESS.search(line):
            continue
        if scratch:
            line = line.replace(scratch, "<tmp>")
        line = line.replace(DOC_SCRATCH, "<tmp>")
        for pattern, repl in _RULES:
            line = pattern.sub(repl, line)
        line = line.strip().rstrip("│").strip()
        if line:
            out.append(line)
    return out


def _segments(expected: list[str]) -> list[list[str]]:
    """The expected lines cut at each `...` line: the runs of lines between them (the first and last may be empty)."""
    segments: list[list[str]] = [[]]
    for line in expected:
        if line.strip() == ELLIPSIS:
            segments.append([])
        else:
            segments[-1].append(line)
    return segments


def matches(expected: list[str], actual: list[str]) -> bool:
    """Whether the normalised actual lines fit the expected ones, each `...` standing for any lines."""
    segments = _segments(expected)
    if len(segments) == 1:
        return expected == actual
    first, last = segments[0], segments[-1]
    if actual[:len(first)] != first or len(actual) < len(first) + len(last):
        return False
    if last and actual[len(actual) - len(last):] != last:
        return False
    pos, stop = len(first), len(actual) - len(last)
    for seg in segments[1:-1]:
        while pos + len(seg) <= stop and actual[pos:pos + len(seg)] != seg:
            pos += 1
        if pos + len(seg) > stop:
            return False
        pos += len(seg)
    return True


def regenerate(expected: list[str], actual: list[str], scratch: str = "") -> list[str]:
    """The new expected lines: the actual output, with each `...` kept where the lines around it are found."""
    actual = [line.rstrip() for line in actual]
    marks = [line for line in expected if line.strip() == ELLIPSIS]
    if not marks:
        return actual
    segments = _segments(expected)
    norm = normalise
    out: list[str] = actual[:len(segments[0])]
    pos = len(segments[0])
    tail = len(segments[-1])
    stop = max(pos, len(actual) - tail)
    for n, seg in enumerate(segments[1:-1]):
        key = norm(seg[:1], scratch)
        found = next((p for p in range(pos, stop) if key and norm([actual[p]], scratch) == key), None)
        out.append(marks[n])
        if found is None:
            out.extend(seg)
            continue
        out.extend(actual[found:found + len(seg)])
        pos = found + len(seg)
    out.append(marks[-1])
    if tail:
        key = norm(segments[-1][:1], scratch)
        found = next((p for p in range(pos, len(actual)) if key and norm([actual[p]], scratch) == key), None)
        out.extend(actual[min(stop, found) if found is not None else stop:])
    return out


def _shims(folder: Path) -> None:
    folder.mkdir()
    for name, script in [("bpcli", f'exec "{sys.executable}" -m bpcli "$@"'),
                         ("python", f'exec "{sys.executable}" "$@"'), ("python3", f'exec "{sys.executable}" "$@"')]:
        (folder / name).write_text(f"#!/bin/sh\n{script}\n")
        (folder / name).chmod(0o755)


def scratch_folder(base: Path) -> tuple[Path, dict]:
    """A folder with a copy of configs/ and an empty docs/img/, and the environment the examples run in."""
    work = base / "work"
    shutil.copytree(ROOT / "configs", work / "configs")
    (work / "docs" / "img").mkdir(parents=True)
    _shims(base / "bin")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "BPCLI_", "COV_"))}
    env.update(PATH=f"{base / 'bin'}{os.pathsep}{env.get('PATH', '')}", COLUMNS="80", LINES="50", TERM="dumb",
               NO_COLOR="1", PYTHONPATH=str(ROOT / "src"), TZ="UTC", PYTHONHASHSEED="0")
    return work, env


def _run_on_terminal(shell: str, cwd: Path, env: dict) -> str:
    """The command run with stdout and stderr on a pseudo-terminal of 80 x 50; what it wrote there."""
    import fcntl
    import pty
    import struct
    import termios
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 80, 0, 0))
    p = subprocess.Popen(["bash", "-c", shell], cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=slave,
                         stderr=slave, close_fds=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    p.wait(timeout=300)
    os.close(master)
    text = b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))


def run(shell: str, cwd: Path, env: dict, terminal: bool = False) -> list[str]:
    """The command's stdout and stderr, together, as lines."""
    if terminal:
        out = _run_on_terminal(shell, cwd, env)
        return out.rstrip("\n").split("\n") if out.strip() else []
    p = subprocess.run(["bash", "-c", shell], cwd=cwd, env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=300)
    return p.stdout.rstrip("\n").split("\n") if p.stdout.strip() else []


def check_doc(path: Path, base: Path, update: bool = False) -> list[str]:
    """Run one doc's examples in order; the mismatches as readable diffs (and, with update, rewrite the doc)."""
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    work, env = scratch_folder(base)
    scratch = str(work)
    problems, edits = [], []
    for step in parse(text):
        if step.kind == "file":
            (work / step.name).write_text(step.text, encoding="utf-8")
            continue
        if step.kind == "setup":
            run(step.text, work, env)
            continue
        if step.skip or any(shutil.which(n) is None for n in step.needs):
            continue
        for cmd in step.commands:
            actual = run(cmd.shell, work, env, step.terminal)
            if matches(normalise(cmd.expected, scratch), normalise(actual, scratch)):
                continue
            if update:
                edits.append((cmd.start, cmd.end, regenerate(cmd.expected, actual, scratch)))
            diff = difflib.unified_diff(cmd.expected, [a.rstrip() for a in actual], "doc", "actual", lineterm="", n=1)
            problems.append(f"{path.name}:{cmd.start}: $ {cmd.shell}\n" + "\n".join(diff))
    if update and edits:
        for start, end, new in sorted(edits, reverse=True):
            lines[start:end] = [line.replace(scratch, DOC_SCRATCH) for line in new]
        path.write_text("\n".join(lines), encoding="utf-8")
    return problems


@pytest.mark.docs
@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_doc_examples_print_what_the_doc_shows(doc: Path, tmp_path: Path) -> None:
    problems = check_doc(doc, tmp_path, update=UPDATE)
    if UPDATE:
        return
    assert not problems, (f"{len(problems)} example(s) of {doc.name} print something else "
                          f"(BPCLI_DOCS_UPDATE=1 pytest -m docs {Path(__file__).name} rewrites them):\n\n"
                          + "\n\n".join(problems))


# The checker itself, on tiny synthetic docs (default suite: fast, no run of training).

_TINY = """# tiny
<!-- doc-test: file hello.txt -->
```
hi there
```

```console
$ cat hello.txt
hi there
$ echo 'took 2.44 s' && echo "$PWD/x"
took 0.50 s
{scratch}/x
```
"""


def _tiny_doc(tmp_path: Path, body: str) -> Path:
    doc = tmp_path / "tiny.md"
    doc.write_text(body, encoding="utf-8")
    return doc


def test_checker_accepts_a_doc_that_matches_with_timings_and_paths_normalised(tmp_path: Path) -> None:
    doc = _tiny_doc(tmp_path, _TINY.replace("{scratch}", "/tmp/bpcli-docs/work"))
    base = tmp_path / "base"
    base.mkdir()
    problems = check_doc(doc, base)
    # the scratch path differs from the doc's: only that command fails; the timing is normalised
    assert [p.split("\n")[0] for p in problems] == ["tiny.md:10: $ echo 'took 2.44 s' && echo \"$PWD/x\""]
    base2 = tmp_path / "base2"
    base2.mkdir()
    doc.write_text(_TINY.replace("{scratch}", str(base2 / "work")), encoding="utf-8")
    assert [] == check_doc(doc, base2)


def test_checker_fails_when_one_printed_number_changes(tmp_path: Path) -> None:
    doc = _tiny_doc(tmp_path, "```console\n$ bpcli show --json | head -c 0; echo 'n_params 9'\nn_params 8\n```\n")
    problems = check_doc(doc, tmp_path)
    assert len(problems) == 1
    assert "-n_params 8" in problems[0] and "+n_params 9" in problems[0]


def test_checker_fails_when_a_real_bpcli_number_changes(tmp_path: Path) -> None:
    right = "```console\n$ bpcli show --json | grep -m1 n_params\n  \"n_params\": 9,\n```\n"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert [] == check_doc(_tiny_doc(tmp_path, right), tmp_path / "a")
    problems = check_doc(_tiny_doc(tmp_path, right.replace("9,", "10,")), tmp_path / "b")
    assert len(problems) == 1 and '+  "n_params": 9,' in problems[0]


def test_update_rewrites_the_output_and_keeps_the_elision(tmp_path: Path) -> None:
    doc = _tiny_doc(tmp_path, "intro\n```\n$ printf 'a\\nb\\nc\\nd\\n'\na\n...\nD\n```\nafter\n")
    assert len(check_doc(doc, tmp_path, update=True)) == 1
    assert "intro\n```\n$ printf 'a\\nb\\nc\\nd\\n'\na\n...\nd\n```\nafter\n" == doc.read_text()


def test_ellipsis_matches_any_number_of_lines() -> None:
    assert matches(["a", "...", "d"], ["a", "b", "c", "d"])
    assert matches(["a", "...", "d"], ["a", "d"])
    assert matches(["a", "  ...", "d"], ["a", "b", "d"])
    assert matches(["a", "...", "c", "...", "e"], ["a", "b", "c", "d", "e"])
    assert not matches(["a", "...", "x", "...", "e"], ["a", "b", "c", "d", "e"])
    assert not matches(["a", "b"], ["a", "b", "c"])


def test_normalise_takes_out_timings_dates_padding_and_progress_bars() -> None:
    lines = ["│ epochs          3000  (2.44 s)      │", "epoch 3/3 ━━━━ loss 0.1 0:00:00",
             "iris  Nov 30 02:14  done", "╭─ trained ───────╮"]
    assert ["│ epochs 3000 (<secs>)", "iris <date> done", "╭─ trained ─╮"] == normalise(lines)


def test_parse_reads_commands_outputs_and_directives() -> None:
    text = ("<!-- doc-test: skip needs a kill -->\n```\n$ a\nx\n```\n<!-- doc-test: setup\nbpcli train -q\n-->\n"
            "```console\n$ b\ny\n$ c\n```\n")
    steps = parse(text)
    assert ["example", "setup", "example"] == [s.kind for s in steps]
    assert "needs a kill" == steps[0].skip and "bpcli train -q" == steps[1].text
    assert [("b", ["y"]), ("c", [])] == [(c.shell, c.expected) for c in steps[2].commands]
