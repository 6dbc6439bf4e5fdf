"""Claiming a run folder: made whole by one rename, locked while a run writes it, overwritten only if bpcli's own."""

from __future__ import annotations

import errno
import os
import re
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from bpcli.errors import ArgumentError, BpcliError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks, the exclusive rename still holds
    fcntl = None

MANIFEST = "run.json"
MARKER = "bpcli-run"  # run.json's "format": how bpcli recognises a folder it wrote
STAGING, ASIDE = ".bpcli-new-", ".bpcli-old-"
V1_FILES = {"config.yaml", "weights.npz", "state.npz", "history.json", "history.csv", "metrics.json",
            "train_state.json", "scaling.json"}
PLOTS = {f"{k}.{f}" for k in ("loss", "metric", "gradients", "dynamics", "boundary", "surface", "fit")
         for f in ("png", "svg")}  # written into the run folder by `bpcli plot`


@dataclass
class Lock:
    """A run folder held by this process (flock on the folder, released by the OS when the process ends)."""

    path: Path
    fd: int

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _flock(path: Path, what: str) -> Lock:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError as err:
        raise BpcliError(f"{what}: cannot open {path} ({err.strerror})") from None
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise BpcliError(f"{what}: {path} is being written by another bpcli process right now; "
                             "wait for it to finish or choose another folder") from None
    return Lock(path, fd)


def held(run_dir: Path) -> bool:
    """Whether a process holds the run folder now (is training into it): its flock taken and let go at once."""
    try:
        lock = _flock(run_dir, "runs")
    except BpcliError:
        return fcntl is not None and Path(run_dir).is_dir()  # locked by another process (or unopenable)
    lock.release()
    return False


def lock_run(run_dir: Path) -> Lock:
    """Hold an existing run folder for --resume; BpcliError (exit 2) when another process holds it."""
    return _flock(run_dir, "--resume")


def is_bpcli_run(folder: Path) -> bool:
    """True when `folder` holds a run.json bpcli wrote (format 2) or a format-1 train_state.json."""
    from bpcli.files import NotReadable, loads_json, read_capped
    for name, ok in ((MANIFEST, lambda d: d.get("format") == MARKER),
                     ("train_state.json", lambda d: d.get("format_version") == 1 and "bpcli_version" in d)):
        try:  # never blocks on a FIFO
            doc = loads_json(read_capped(folder / name, 8_000_000, name, follow=False), folder / name)
        except (NotReadable, OSError, ValueError, RecursionError):
            continue
        if isinstance(doc, dict) and ok(doc):
            return True
    return False


def foreign_entries(folder: Path) -> list[str]:
    """Entries of a bpcli run folder that bpcli did not write there (a user's files)."""
    known = lambda n: (n in V1_FILES or n in PLOTS or n in (MANIFEST, "history.csv") or n.startswith("epoch-")
                       or (n.startswith(".") and n.endswith(".tmp")))
    chunk = lambda p: not p.is_symlink() and p.is_file() and re.fullmatch(r"[0-9]+-[0-9]+\.npz|\..*\.tmp", p.name)
    snaps = lambda p: p.name == "snapshots" and p.is_dir() and not p.is_symlink() and all(map(chunk, p.iterdir()))
    return sorted(p.name for p in folder.iterdir() if not known(p.name) and not snaps(p))


def check_target(out: Path, overwrite: bool) -> None:
    """Refuse --out before any work: an existing non-empty folder without --force, or one bpcli did not write."""
    if not out.exists() and not out.is_symlink():
        return
    if not out.is_dir() or out.is_symlink():
        raise ArgumentError("out", f"{out} exists and is not a folder; choose another path")
    if not any(out.iterdir()):
        return
    if not overwrite:
        raise ArgumentError("out", f"{out} already exists; choose another folder or add --force")
    if not is_bpcli_run(out):
        raise ArgumentError("out", f"{out} is not a bpcli run folder (no run.json written by bpcli); "
                            "--force replaces only run folders, never other files")
    foreign = foreign_entries(out)
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise ArgumentError("out", f"{out} holds files bpcli did not write ({shown}); refusing to overwrite it")


def stage(parent: Path, target: Path | None = None) -> tuple[Path, Lock]:
    """A new hidden folder in `parent` to build a run's first checkpoint in, locked by this process.

    `target` (--out) only names the folder in messages.
    """
    def refuse(err: OSError):
        if target is not None:
            raise ArgumentError("out", f"cannot create {target}: {err.strerror}") from None
        raise BpcliError(f"{parent}: cannot create the runs folder ({err.strerror}); choose one with --out") from None

    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        refuse(err)
    _sweep(parent)
    path = parent / f"{STAGING}{secrets.token_hex(6)}"
    try:
        path.mkdir()
    except OSError as err:
        refuse(err)
    return path, _flock(path, "--out")


def _sweep(parent: Path) -> None:
    """Remove staging and set-aside folders left by a killed bpcli (those no live process holds)."""
    now = time.time()
    for p in parent.glob(".bpcli-*"):
        if not p.name.startswith((STAGING, ASIDE)) or not p.is_dir() or p.is_symlink():
            continue
        try:
            if now - p.stat().st_mtime < 60:
                continue  # maybe made a moment ago by a process about to lock it
        except OSError:
            continue
        try:
            lock = _flock(p, "sweep")
        except BpcliError:
            continue  # a live process holds it
        shutil.rmtree(p, ignore_errors=True)
        lock.release()


def commit(staged: Path, target: Path, overwrite: bool) -> None:
    """Put the staged run at `target` with one rename; BpcliError (exit 2) when another run got there first.

    With overwrite, an existing run folder (checked again under its lock) is first renamed aside, then deleted.
    """
    aside = None
    old_lock = None
    if overwrite and target.is_dir() and any(target.iterdir()):
        old_lock = _flock(target, "--out")
        try:
            check_target(target, overwrite=True)
            aside = target.parent / f"{ASIDE}{secrets.token_hex(6)}"
            os.rename(target, aside)
        except BaseException:
            old_lock.release()
            raise
    try:
        os.rename(staged, target)
    except OSError as err:
        if aside is not None:
            try:
                os.rename(aside, target)  # put the old run back where it was
            except OSError:
                pass
        if err.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
            raise ArgumentError("out", f"{target} was just written by another bpcli run; "
                                "choose another folder or add --force") from None
        raise ArgumentError("out", f"cannot create {target} ({err.strerror})") from None
    finally:
        if old_lock is not None:
            old_lock.release()
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


def safe_name(name: str) -> str:
    """A config's name as a folder name: ASCII letters, digits, '-', '_' and '.', no leading dot, at most 80."""
    safe = "".join(c if (c.isascii() and c.isalnum()) or c in "-_." else "_" for c in name)
    return safe.lstrip(".")[:80] or "run"


def commit_new(staged: Path, base: Path, name: str) -> Path:
    """runs/<name>, or runs/<name>-2, -3, ...: the first name no other run holds, taken with one rename."""
    name = safe_name(name)
    candidate, n = base / name, 2
    while True:
        try:
            os.rename(staged, candidate)
            return candidate
        except OSError as err:
            if err.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                raise BpcliError(f"{candidate}: cannot create the run folder ({err.strerror}); "
                                 "choose one with --out") from None
        candidate, n = base / f"{name}-{n}", n + 1
