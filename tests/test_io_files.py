"""Files in and out: every output option refuses what it must not replace, every read is bounded and never blocks."""

from __future__ import annotations

import io
import json
import os
import resource
import signal
import stat
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bpcli.cli.app import app

SRC = str(Path(__file__).resolve().parents[1] / "src")
runner = CliRunner()
ORIGINAL = "original\n"
DEVICE = os.makedev(1, 3)  # the numbers of /dev/null: a private copy, so nothing of the machine's is at stake


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A trained seed run (with snapshots), a DATA file for it, and a state file for import."""
    from tests.conftest import train_shipped
    tmp = tmp_path_factory.mktemp("io")
    run = train_shipped(tmp, "seed", 20)
    (tmp / "data.csv").write_text("x1,x2\n0,1\n1,1\n")
    rng = np.random.default_rng(0)
    np.savez(tmp / "state.npz", **{"0.weight": rng.normal(size=(2, 2)), "0.bias": rng.normal(size=2),
                                   "2.weight": rng.normal(size=(1, 2)), "2.bias": rng.normal(size=1)})
    return tmp, run


IMPORT = ["--arch", "2-2-1", "--activations", "sigmoid,sigmoid", "--data", "xor"]

# command -> (argv for an output path, the suffix its output needs, whether --force writes quickly)
COMMANDS = {
    "predict": (lambda t, run, out: ["predict", str(run), str(t / "data.csv"), "--out", str(out)], ".csv", True),
    "exercise": (lambda t, run, out: ["exercise", "--config-out", str(out)], ".yaml", True),
    "import": (lambda t, run, out: ["import", str(t / "state.npz"), *IMPORT, "-o", str(out)], ".yaml", True),
    "show": (lambda t, run, out: ["show", "--out", str(out)], ".dot", True),
    "init": (lambda t, run, out: ["init", str(out)], ".yaml", True),
    "compare": (lambda t, run, out: ["compare", str(run), str(run), "--out", str(out)], ".png", False),
    "animate": (lambda t, run, out: ["animate", str(run), "--out", str(out), "--frames", "2", "--dpi", "20"],
                ".gif", False),
}


def _make(kind: str, path: Path, victim: Path) -> None:
    if kind == "device":
        os.mknod(path, stat.S_IFCHR | 0o600, DEVICE)
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "symlink":
        victim.write_text(ORIGINAL)
        os.symlink(victim, path)
    else:
        path.write_text(ORIGINAL)


def _intact(kind: str, path: Path, victim: Path) -> bool:
    st = os.lstat(path)
    if kind == "device":
        return stat.S_ISCHR(st.st_mode) and st.st_rdev == DEVICE
    if kind == "fifo":
        return stat.S_ISFIFO(st.st_mode)
    if kind == "symlink":
        return stat.S_ISLNK(st.st_mode) and victim.read_text() == ORIGINAL
    return stat.S_ISREG(st.st_mode) and path.read_text() == ORIGINAL


def _errors(result) -> list[str]:
    return [line for line in result.output.splitlines() if line.startswith("error:")]


@pytest.mark.parametrize("command", list(COMMANDS))
def test_an_output_option_never_replaces_a_device_fifo_link_or_file_without_force(command, made, tmp_path):
    """Each output option against a private device node, a FIFO, a symbolic link and an existing file: refused in
    one line, exit 2, the original untouched (with --force too, except a regular file, which --force replaces)."""
    t, run = made
    argv, suffix, quick = COMMANDS[command]
    kinds = ["fifo", "symlink", "file"] + (["device"] if os.geteuid() == 0 else [])
    for kind in kinds:
        for force in (False, True):
            if kind == "file" and force:
                continue
            out, victim = tmp_path / f"{kind}-{force}{suffix}", tmp_path / f"victim-{kind}-{force}{suffix}"
            _make(kind, out, victim)
            res = runner.invoke(app, argv(t, run, out) + (["--force"] if force else []))
            assert 2 == res.exit_code, (kind, force, res.output)
            [line] = _errors(res)
            assert str(out) in line and ("--force" in line if kind == "file" else "--force" not in line), line
            assert _intact(kind, out, victim), (kind, force)
    if quick:  # --force replaces a regular file, whole
        out = tmp_path / f"replaced{suffix}"
        out.write_text(ORIGINAL)
        res = runner.invoke(app, argv(t, run, out) + ["--force"])
        assert 0 == res.exit_code, res.output
        assert out.read_text() != ORIGINAL and stat.S_ISREG(os.lstat(out).st_mode)
        assert [out.name] == [p.name for p in tmp_path.iterdir() if p.name.startswith((".replaced", "replaced"))]


def test_a_symbolic_link_is_refused_with_the_same_words_everywhere(made, tmp_path):
    t, run = made
    said = set()
    for command, (argv, suffix, _) in COMMANDS.items():
        out = tmp_path / f"{command}{suffix}"
        os.symlink(tmp_path / f"nowhere-{command}", out)  # dangling: writing through it would create a file
        res = runner.invoke(app, argv(t, run, out))
        assert 2 == res.exit_code, (command, res.output)
        [line] = _errors(res)
        said.add(line.replace(str(out), "PATH").replace("-o:", "--out:").replace("--config-out:", "--out:")
                 .replace("error: PATH:", "error: --out: PATH"))
        assert not (tmp_path / f"nowhere-{command}").exists(), command
    assert {"error: --out: PATH is a symbolic link; bpcli never writes through one nor replaces it: give the path "
            "of the file itself"} == said


def test_predict_never_writes_over_its_own_data_or_its_run(made, tmp_path):
    t, run = made
    data = tmp_path / "data.csv"
    data.write_text("x1,x2\n0,1\n1,1\n")
    os.link(data, tmp_path / "same.csv")  # a hard link: the same file by another name
    for out, what in ((data, "a file"), (tmp_path / "same.csv", f"the same file as {data}, which"),
                      (Path(os.path.relpath(data)), f"the same file as {data}, which")):
        res = runner.invoke(app, ["predict", str(run), str(data), "--out", str(out), "--force"])
        assert 2 == res.exit_code, res.output
        [line] = _errors(res)
        assert f"error: --out: {out} is {what} this command reads; write the output to another file" == line
    assert "x1,x2\n0,1\n1,1\n" == data.read_text()
    manifest = (run / "run.json").read_bytes()
    res = runner.invoke(app, ["predict", str(run), str(data), "--out", str(run / "run.json"), "--force"])
    assert 2 == res.exit_code and f"in {run}, which this command reads" in res.output, res.output
    assert manifest == (run / "run.json").read_bytes()


def test_import_never_writes_over_its_state_file_or_names_json(made, tmp_path):
    t, _ = made
    state = tmp_path / "state.npz"
    state.write_bytes((t / "state.npz").read_bytes())
    (tmp_path / "names.json").write_text("{}")
    for out in (state, tmp_path / "names.json"):
        before = out.read_bytes()
        res = runner.invoke(app, ["import", str(state), *IMPORT, "-o", str(out), "--force"])
        assert 2 == res.exit_code and "this command reads" in res.output, res.output
        assert before == out.read_bytes()


# --- export: staged, whole or not at all ------------------------------------------------------


def _export(run, out: Path, *more: str):
    return runner.invoke(app, ["export", str(run), "--out", str(out), "--to", "numpy", *more])


def test_export_refuses_a_device_link_file_or_a_folder_of_other_files(made, tmp_path):
    _, run = made
    cases = {"file": lambda p: p.write_text(ORIGINAL), "link": lambda p: os.symlink(tmp_path / "elsewhere", p),
             "fifo": os.mkfifo}
    if os.geteuid() == 0:
        cases["device"] = lambda p: os.mknod(p, stat.S_IFCHR | 0o600, DEVICE)
    (tmp_path / "elsewhere").mkdir()
    for kind, make in cases.items():
        make(tmp_path / kind)
        before = os.lstat(tmp_path / kind)
        res = _export(run, tmp_path / kind, "--force")
        assert 2 == res.exit_code, (kind, res.output)
        assert 1 == len(_errors(res)), res.output
        after = os.lstat(tmp_path / kind)
        assert (before.st_ino, before.st_mode) == (after.st_ino, after.st_mode), kind
    assert [] == list((tmp_path / "elsewhere").iterdir())
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text(ORIGINAL)
    res = _export(run, mine, "--force")
    assert 2 == res.exit_code and "notes.txt" in res.output, res.output
    assert ["notes.txt"] == [p.name for p in mine.iterdir()]


def test_export_force_replaces_an_earlier_export_whole(made, tmp_path):
    _, run = made
    out = tmp_path / "out"
    assert 0 == runner.invoke(app, ["export", str(run), "--out", str(out)]).exit_code  # pytorch: model.py
    assert 0 == _export(run, out, "--force").exit_code
    assert ["names.json", "predict.py", "weights.npz"] == sorted(p.name for p in out.iterdir())
    assert ["out"] == [p.name for p in tmp_path.iterdir()]  # nothing staged or set aside is left


FS_CALLS = ("open", "mkdir", "rename", "replace", "unlink", "rmdir", "link")


def _export_killed_at(k: int, run: Path, out: Path, counter: Path) -> None:
    """In a forked child: export with SIGKILL at the k-th file-system call (k = 0: count them)."""
    from bpcli.bridge.export import export
    from bpcli.bridge.export_spec import spec_from_network
    from bpcli.runs.store import load_run

    loaded = load_run(run)
    spec = spec_from_network(loaded.net, loaded.cfg.name, str(run), loaded.prepared.scaling,
                             loaded.prepared.train.class_names)
    calls = {"n": 0}
    for name in FS_CALLS:
        def counted(*a, _real=getattr(os, name), **kw):
            calls["n"] += 1
            if k == 0:
                counter.write_text(str(calls["n"]))
            if calls["n"] == k:
                os.kill(os.getpid(), signal.SIGKILL)
            return _real(*a, **kw)
        setattr(os, name, counted)
    export(spec, "numpy", out, force=True)


@pytest.mark.slow  # run apart: `pytest -m slow` (.ci/run runs the group beside the suite)
def test_sigkill_at_every_step_of_an_export_leaves_no_partial_export(made, tmp_path):
    """A process killed at each file-system call of an export over an earlier one: the folder is the earlier
    export or the new one, whole, or (killed between the two renames) not there; never part of one, never a .tmp."""
    from bpcli.bridge.export import export_files
    from bpcli.bridge.export_spec import spec_from_network
    from bpcli.runs.store import load_run

    _, run = made
    loaded = load_run(run)
    spec = spec_from_network(loaded.net, loaded.cfg.name, str(run), loaded.prepared.scaling,
                             loaded.prepared.train.class_names)
    old, new = export_files(spec, "pytorch"), export_files(spec, "numpy")
    out, counter = tmp_path / "x" / "out", tmp_path / "calls"
    k, total, seen = 0, None, set()
    while total is None or k <= total:
        if out.parent.exists():
            import shutil
            shutil.rmtree(out.parent)
        out.mkdir(parents=True)
        for name, data in old.items():
            (out / name).write_bytes(data)
        pid = os.fork()
        if pid == 0:  # the child: never returns into pytest
            try:
                _export_killed_at(k, run, out, counter)
                os._exit(0)
            except BaseException:
                os._exit(3)
        _, status = os.waitpid(pid, 0)
        if k == 0:
            assert 0 == os.waitstatus_to_exitcode(status)
            total = int(counter.read_text())
        else:
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, status
        held = {p.name: p.read_bytes() for p in out.iterdir()} if out.exists() else None
        assert held in (old, new, None), (k, sorted(held or {}))
        seen.add("old" if held == old else "new" if held == new else "none")
        leftovers = [p for p in out.parent.rglob("*") if p.name.endswith(".tmp")]
        assert [] == leftovers, k
        assert {p.name for p in out.parent.iterdir() if not p.name.startswith(".bpcli-")} <= {"out"}, k
        k += 1
    assert total >= 8 and {"old", "new"} <= seen, (total, seen)


# --- reads that used to hang or fill memory ------------------------------------------------------------


def _bpcli(args, cwd, timeout=30, memory=1_500_000_000, stdin=subprocess.DEVNULL):
    """bpcli in a child process with its address space capped (an unbounded read dies instead of swapping)."""
    def cap():
        if memory is not None:
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    env = {**os.environ, "PYTHONPATH": SRC, "OPENBLAS_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "bpcli", *map(str, args)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, stdin=stdin, preexec_fn=cap)


def _one_error(proc) -> str:
    assert 2 == proc.returncode, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    [line] = proc.stderr.splitlines()
    return line


def test_runs_and_latest_skip_a_folder_whose_run_json_is_a_fifo(made, tmp_path):
    import shutil
    _, run = made
    shutil.copytree(run, tmp_path / "runs" / "good")
    (tmp_path / "runs" / "trap").mkdir()
    os.mkfifo(tmp_path / "runs" / "trap" / "run.json")  # reading it would wait for a writer forever
    listed = _bpcli(["runs", "runs", "--json"], tmp_path, memory=None)
    assert 0 == listed.returncode, listed.stderr
    rows = {r["name"]: r for r in json.loads(listed.stdout)["runs"]}
    assert "damaged: run.json unreadable" == rows["trap"]["status"]
    assert rows["trap"]["problem"].endswith("run.json: is a named pipe (FIFO), not a regular file")
    assert rows["good"]["ok"]
    shown = _bpcli(["show", "latest", "--json"], tmp_path, memory=None)
    assert 0 == shown.returncode, shown.stderr
    assert str(Path("runs") / "good") == json.loads(shown.stdout)["source"]


def test_import_refuses_a_fifo_state_file_and_a_fifo_or_device_names_json(made, tmp_path):
    t, _ = made
    os.mkfifo(tmp_path / "fifo.npz")
    line = _one_error(_bpcli(["import", "fifo.npz", *IMPORT, "-o", "a.yaml"], tmp_path))
    assert "fifo.npz" in line and "named pipe (FIFO)" in line, line
    for kind, make in (("fifo", os.mkfifo), ("zero", lambda p: os.symlink("/dev/zero", p))):
        d = tmp_path / kind
        d.mkdir()
        (d / "state.npz").write_bytes((t / "state.npz").read_bytes())
        make(d / "names.json")
        line = _one_error(_bpcli(["import", d / "state.npz", *IMPORT, "-o", d / "a.yaml"], tmp_path))
        what = "named pipe (FIFO)" if kind == "fifo" else "character device"
        assert f"{d / 'names.json'}: is a {what}, not a regular file" in line, line
        assert not (d / "a.yaml").exists()


def _zip_of_zeros(path: Path, members: int, member_bytes: int) -> None:
    """An .npz whose `members` .npy members each expand to member_bytes of zeros, deflated once and stored
    `members` times (a zip bomb of a few MB, built in a fraction of a second)."""
    n = (member_bytes - 128) // 8
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False, "shape": (n,)})
    header = buf.getvalue()
    comp, crc, size = zlib.compressobj(9, zlib.DEFLATED, -15), zlib.crc32(header), len(header) + n * 8
    parts, chunk = [comp.compress(header)], bytes(1 << 22)
    for i in range(0, n * 8, len(chunk)):
        piece = chunk[: min(len(chunk), n * 8 - i)]
        crc = zlib.crc32(piece, crc)
        parts.append(comp.compress(piece))
    body = b"".join(parts) + comp.flush()
    local, central, offset = bytearray(), bytearray(), 0
    for m in range(members):
        name = f"a{m}.npy".encode()
        head = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0, crc, len(body), size, len(name), 0) + name
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 8, 0, 0, crc, len(body), size, len(name),
                               0, 0, 0, 0, 0, offset) + name
        local += head + body
        offset += len(head) + len(body)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, members, members, len(central), offset, 0)
    path.write_bytes(bytes(local) + bytes(central) + end)


def test_an_npz_bomb_is_refused_from_its_headers(tmp_path):
    """30 members of 128 MiB of zeros (3.8 GiB expanded) in a 4 MB file: refused before expanding, in one line,
    in a process capped at 1.5 GB of address space."""
    bomb = tmp_path / "bomb.npz"
    _zip_of_zeros(bomb, 30, 128 << 20)
    assert bomb.stat().st_size < 5_000_000
    import zipfile
    with zipfile.ZipFile(bomb) as z:  # a well-formed archive whose headers tell the truth
        assert 30 * (128 << 20) == sum(i.file_size for i in z.infolist())
    line = _one_error(_bpcli(["import", "bomb.npz", *IMPORT, "-o", "a.yaml"], tmp_path))
    assert "bomb.npz: its arrays expand to more than 400,000,000 bytes (30 members); refused before expanding" in line


def test_a_sparse_answers_file_is_refused_before_it_is_read(tmp_path):
    answers = tmp_path / "answers.yaml"
    with open(answers, "wb") as fh:
        fh.truncate(3_000_000_000)  # 3 GB of holes: reading it whole would need 3 GB
    line = _one_error(_bpcli(["diagnose", "answers.yaml"], tmp_path, memory=1_000_000_000))
    assert "error: answers.yaml: holds 3,000,000,000 bytes, over the answers file limit (5,000,000 bytes)" == line


def test_stdin_is_capped_like_a_file(made, monkeypatch):
    from bpcli.analysis import newdata
    _, run = made
    monkeypatch.setattr(newdata, "MAX_TABLE_BYTES", 1000, raising=False)
    rows = "x1,x2\n" + "0,1\n" * 1000  # 4,006 bytes
    res = runner.invoke(app, ["predict", str(run), "-"], input=rows)
    assert 2 == res.exit_code, res.output
    assert "error: <stdin>: more than 1,000 bytes, over the DATA file limit; split it into smaller files" \
        == res.output.strip()
    ok = runner.invoke(app, ["predict", str(run), "-"], input=rows[:806])  # 200 rows: under the cap
    assert 0 == ok.exit_code, ok.output
    labelled = "x1,x2,y\n" + "0,1,1\n" * 200  # 1,208 bytes
    res = runner.invoke(app, ["evaluate", str(run), "-"], input=labelled)
    assert 2 == res.exit_code and "error: <stdin>: more than 1,000 bytes, over the DATA file limit" in res.output
    assert 0 == runner.invoke(app, ["evaluate", str(run), "-"], input=labelled[:608]).exit_code


def test_a_run_weights_file_of_many_members_is_refused_by_their_total(made, tmp_path):
    """A forger's weights.npz (checksums recorded again) of 200 deflated members, each within the size one of the
    network's arrays may have: refused from the headers for their total, before any is expanded."""
    import shutil

    from tests.conftest import rerecord

    from bpcli.runs.store import checkpoint_dir
    _, run = made
    shutil.copytree(run, tmp_path / "run")
    weights = checkpoint_dir(tmp_path / "run") / "weights.npz"
    _zip_of_zeros(weights, 200, 4096)  # the seed network's largest array: 4 values; a member may hold 4,128 bytes
    rerecord(tmp_path / "run")
    res = runner.invoke(app, ["show", str(tmp_path / "run")])
    assert 2 == res.exit_code, res.output
    [line] = _errors(res)
    assert f"error: {weights}: its arrays expand to more than 16,456 bytes (200 members); refused before " \
           "expanding them" == line


def test_plot_redraws_its_own_images_but_never_a_device_fifo_or_link_at_their_names(made, tmp_path):
    """plot names its files itself (loss.png, ...) and redraws them in place; at those names a FIFO, a symbolic
    link or a device node is refused, untouched."""
    _, run = made
    argv = ["plot", str(run), "--only", "loss", "--dpi", "20", "--out", str(tmp_path)]
    assert 0 == runner.invoke(app, argv).exit_code
    first = (tmp_path / "loss.png").stat().st_ino
    assert 0 == runner.invoke(app, argv).exit_code  # drawn again, in place of its own earlier image
    assert first != (tmp_path / "loss.png").stat().st_ino
    kinds = ["fifo", "symlink"] + (["device"] if os.geteuid() == 0 else [])
    for kind in kinds:
        (tmp_path / "loss.png").unlink()
        _make(kind, tmp_path / "loss.png", tmp_path / "victim.png")
        res = runner.invoke(app, argv)
        assert 2 == res.exit_code, (kind, res.output)
        [line] = _errors(res)
        assert line.startswith(f"error: --out: {tmp_path / 'loss.png'} is a"), line
        assert _intact(kind, tmp_path / "loss.png", tmp_path / "victim.png"), kind
