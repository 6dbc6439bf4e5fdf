"""The benchmark runs end to end on tiny sizes and skips the peers that are not installed (no timings asserted)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow  # run apart: `pytest -m slow` (.ci/run runs the group beside the suite)
def test_quick_benchmark_runs_every_workload_and_notes_missing_peers(tmp_path):
    out = tmp_path / "bench.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--json", str(out)],
                          capture_output=True, text=True, env=env, timeout=120, cwd=str(ROOT))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    names = [r["name"] for r in doc["results"]]
    assert names == ["tiny", "small", "medium64", "medium256", "gradcheck", "startup", "memory", "snapshots"]
    for r in doc["results"][:4]:
        assert {"bpcli", "numpy", "floor"} <= set(r["median_s"])
        assert all(v > 0 for v in r["median_s"].values())
        assert r["learned"]["bpcli"]["ok"] and r["learned"]["numpy"]["ok"]
    missing = [name for name in ("torch", "sklearn") if importlib.util.find_spec(name) is None]
    if missing:
        assert "not installed" in proc.stdout
        assert doc["results"][0]["skipped"]
    assert "| tiny: 2-2-1 sigmoid" in proc.stdout
    assert doc["results"][-2]["ratio"] > 1.0
    assert [row["kept"] for row in doc["results"][-1]["rows"]] == [101, 11, 31]  # every epoch of each run


@pytest.mark.slow
def test_step_profile_splits_both_loops_into_their_parts():
    """profile_step.py wraps fit's parts by name: every part is called (a renamed one would raise or read 0) and the
    parts of each system add up to no more than its whole run."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import profile_step
        import run
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    w = next(w for w in run.workloads(quick=True) if w.name == "small")
    p = profile_step.profile(w, 1)
    parts = ("forward", "backward", "optimiser", "tally", "epoch close")
    assert all(p["bpcli"][k] > 0 for k in parts)
    assert sum(p["bpcli"][k] for k in parts) < p["bpcli"]["total"]
    assert 0 < p["numpy loop"]["forward"] < p["numpy loop"]["total"]
    assert p["numpy loop"]["backward and update"] > 0
    import bpcli.training.fit as fit_module
    assert fit_module.forward.__module__ == "bpcli.nn.engine"  # the wrappers were taken off again
