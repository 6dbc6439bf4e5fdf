"""The hot path's speed work changes no number: every shipped config trains to the same losses, bit for bit."""

from __future__ import annotations

import dataclasses

import pytest

from bpcli.config.loader import builtin_config_dir, load_config
from bpcli.data.dataset import prepare
from bpcli.nn.model import build
from bpcli.training.fit import fit

# The first four epochs' training losses and the fourth epoch's metric, recorded from the engine before the
# bookkeeping moved off the hot path (the engine itself is checked against autograd and finite differences
# elsewhere; these pin that the speed work changed no bit of what a run records).
PINNED = {
    "deep_relu": ([0.7271019038195833, 0.6362285512106542, 0.5936309751347826, 0.5627903966601865], 0.6866666666666666),
    "deep_sigmoid": ([0.7277149591766435, 0.7050483380133907, 0.6974814826566746, 0.6961032162003228], 0.5),
    "iris": ([1.336222470510347, 0.8208791276479545, 0.5895999833964519, 0.4871966988146933], 0.8416666666666667),
    "seed": ([0.13089327514603788, 0.128568025292486, 0.12693249783365235, 0.12580351103702983], 0.5),
    "sine": ([0.083621850597707, 0.07507505191182733, 0.05466645423464313, 0.03817093196547707], 0.8358748327113495),
    "softsign_xor": ([0.12670724065372263, 0.12530844967810167, 0.12412908562810518, 0.12311832969623807], 0.5),
    "worked_example": ([0.2983711087600027, 0.29102777369359933, 0.28354713312241997, 0.27594328888945185], None),
    "xor": ([0.7135441272229666, 0.6954156856494851, 0.68130548058841, 0.6707013097268405], 0.5),
}


@pytest.mark.parametrize("name", sorted(PINNED))
def test_shipped_configs_train_to_the_pinned_losses_bit_for_bit(name):
    cfg, ds = load_config(builtin_config_dir() / f"{name}.yaml")
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=4))
    p = prepare(cfg, ds)
    recs = list(fit(build(cfg), p.train, p.val, cfg.train))
    losses, metric = PINNED[name]
    assert losses == [r.loss for r in recs]
    assert metric == recs[-1].metric


def test_update_ratios_and_saturation_are_taken_on_the_declared_stride_and_inspect_says_so(tmp_path):
    """The seed (4 samples, full batch: one step an epoch) measures them at epoch 1 and every 64th epoch
    (64 steps apart); history.csv records the stride on every row and `inspect` names it."""
    import json

    from typer.testing import CliRunner

    from bpcli.cli.app import app
    from tests.conftest import read_history

    runner = CliRunner()
    run = tmp_path / "r"
    assert 0 == runner.invoke(app, ["train", "--epochs", "130", "-q", "--out", str(run)]).exit_code
    rows = read_history(run)
    assert [64.0] * 130 == [r["stats_every"] for r in rows]
    measured = [r["epoch"] for r in rows if r["update_ratio"] != [None, None]]
    assert [1, 64, 128] == measured
    assert measured == [r["epoch"] for r in rows if r["saturation"] != [None, None]]
    # a measured ratio is ||W_end - W_start|| / ||W_start||, here from the snapshots of epochs 63 and 64
    import numpy as np

    from bpcli.runs.snapshots import trajectory
    t = trajectory(run)
    W63, W64 = (t.params["A.W"][t.epochs.tolist().index(e)] for e in (63, 64))
    expected = float(np.sqrt(np.sum((W64 - W63) ** 2)) / np.sqrt(np.sum(W63 ** 2)))
    np.testing.assert_allclose(rows[63]["update_ratio"][0], expected, rtol=1e-12)
    doc = json.loads(runner.invoke(app, ["inspect", str(run), "--json"]).stdout)
    assert (64, 128) == (doc["stats_every"], doc["stats_last"])
    text = runner.invoke(app, ["inspect", str(run)], env={"COLUMNS": "200"}).stdout
    assert "measured every 64 epochs" in text
    assert "epoch 128" in text  # the units table's last column is the last measured epoch


def test_blas_threads_default_to_one_and_bpcli_threads_overrides():
    from bpcli.nn.blas import THREAD_VARS, ThreadsError, set_blas_threads

    env: dict[str, str] = {}
    assert 1 == set_blas_threads(env)
    assert {v: "1" for v in THREAD_VARS} == env
    env = {"BPCLI_THREADS": " 2 ", "OMP_NUM_THREADS": "4"}
    assert 2 == set_blas_threads(env)
    assert ["2"] * len(THREAD_VARS) == [env[v] for v in THREAD_VARS]
    env = {"OMP_NUM_THREADS": "4"}  # the user's own setting stands
    assert set_blas_threads(env) is None
    assert {"OMP_NUM_THREADS": "4"} == env
    env = {"BPCLI_THREADS": ""}  # set but empty: as if unset
    assert 1 == set_blas_threads(env)
    for bad in ("0", "-1", "two", "1.5"):
        with pytest.raises(ThreadsError, match=f"BPCLI_THREADS is '{bad}'; expected a whole number"):
            set_blas_threads({"BPCLI_THREADS": bad})


def test_the_bpcli_command_runs_numpy_on_the_threads_asked_for_and_rejects_a_bad_count():
    import os
    import subprocess
    import sys

    pytest.importorskip("threadpoolctl")
    probe = ("import sys; from bpcli.nn.blas import set_blas_threads; set_blas_threads(); import numpy; "
             "from threadpoolctl import threadpool_info; "
             "print(sorted({p['num_threads'] for p in threadpool_info() if p['internal_api'] == 'openblas'}))")
    env = {k: v for k, v in os.environ.items() if k not in ("BPCLI_THREADS", "OMP_NUM_THREADS",
                                                           "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    one = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    assert "[1]" == one.stdout.strip(), one.stderr
    two = subprocess.run([sys.executable, "-c", probe], env=dict(env, BPCLI_THREADS="2"), capture_output=True,
                         text=True)
    assert "[2]" == two.stdout.strip(), two.stderr
    bad = subprocess.run([sys.executable, "-m", "bpcli", "--help"], env=dict(env, BPCLI_THREADS="many"),
                         capture_output=True, text=True)
    assert (2, "", "error: BPCLI_THREADS is 'many'; expected a whole number of threads, 1 or more\n") == (
        bad.returncode, bad.stdout, bad.stderr)


def test_the_history_sample_json_is_null_where_a_value_overflowed_and_plain_otherwise():
    from bpcli.runs.store import _sample_json

    assert b'[{"loss":0.5,"grad_norm":[1.0,2.5]}]' == _sample_json([{"loss": 0.5, "grad_norm": (1.0, 2.5)}])
    nan, inf = float("nan"), float("inf")
    assert b'[{"loss":0.5,"metric":null,"grad_norm":[null,2.5]}]' == _sample_json(
        [{"loss": 0.5, "metric": nan, "grad_norm": (-inf, 2.5)}])
