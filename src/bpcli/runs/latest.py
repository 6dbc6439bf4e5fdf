"""`latest` wherever a command takes a RUN: the newest run folder in runs/ (or in FOLDER for FOLDER/latest).

A real folder called `latest` wins. Reads only each candidate's run.json (no weights, no data).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from bpcli.runs.claim import MANIFEST, MARKER
from bpcli.errors import BpcliError

LATEST = "latest"
RUNS = Path("runs")
MAX_MANIFEST = 8_000_000  # runs.MAX_JSON: run.json never comes near it


def quick_manifest(run_dir: Path) -> dict | None:
    """run.json as a dict when it is bpcli's (its checksum is not checked here); None otherwise."""
    from bpcli.files import NotReadable, loads_json, read_capped
    try:  # never blocks: a FIFO or device named run.json is not a manifest
        doc = loads_json(read_capped(run_dir / MANIFEST, MAX_MANIFEST, "run manifest", follow=False), run_dir)
    except (NotReadable, OSError, ValueError, RecursionError):
        return None
    return doc if isinstance(doc, dict) and doc.get("format") == MARKER else None


def created_at(run_dir: Path, manifest: dict | None) -> str:
    """When the run began, as ISO 8601 UTC: run.json's `created`, else (a run from before it was recorded, or
    a damaged folder) the time run.json or the folder was last changed."""
    created = (manifest or {}).get("created")
    if isinstance(created, str):
        try:
            return datetime.fromisoformat(created).astimezone(timezone.utc).isoformat(timespec="microseconds")
        except ValueError:
            pass
    for p in (run_dir / MANIFEST, run_dir):
        try:
            t = p.stat().st_mtime
        except OSError:
            continue
        return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="microseconds")
    return ""


def run_folders(folder: Path) -> list[Path]:
    """The folders directly inside `folder`, hidden ones (a run being staged) left out; sorted by name."""
    try:
        return sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")),
                      key=lambda p: p.name)
    except OSError:
        return []


def newest_first(entries: list[tuple[Path, str]]) -> list[tuple[Path, str]]:
    """(folder, created) pairs, the newest first; folders created at the same instant by name."""
    by_name = sorted(entries, key=lambda e: e[0].name)
    return sorted(by_name, key=lambda e: e[1], reverse=True)


def newest_run(folder: Path) -> Path | None:
    """The bpcli run folder in `folder` created last; None when it holds none."""
    runs = [(d, created_at(d, m)) for d in run_folders(folder) if (m := quick_manifest(d)) is not None]
    return newest_first(runs)[0][0] if runs else None


def resolve_run(path: str | Path | None) -> Path | None:
    """`latest`, `runs/latest` or `FOLDER/latest` -> the newest run folder there; any other path unchanged.

    BpcliError (exit 2) when there is no run to be the latest.
    """
    if path is None:
        return None
    p = Path(path)
    if p.name != LATEST or p.exists() or p.is_symlink():
        return p
    folder = RUNS if str(path).rstrip("/\\") == LATEST else p.parent
    found = newest_run(folder)
    if found is None:
        where = "does not exist" if not folder.is_dir() else "holds no run folders"
        raise BpcliError(f"{path}: no run to call latest: {folder} {where}; train one with `bpcli train CONFIG`")
    return found
