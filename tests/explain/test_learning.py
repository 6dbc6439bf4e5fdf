"""The learning page's numbers (explain.learning): an epoch's weights, activations, plane and gradients against the
seed network worked by hand in plain floats; a run that keeps no snapshots has no epochs to show."""

from __future__ import annotations

import dataclasses

import pytest
from typer.testing import CliRunner

from bpcli.cli.app import app
from bpcli.config.loader import builtin_config_dir, load_config
from bpcli.data.dataset import prepare
from bpcli.explain.learning import config_learning, epoch_states, input_plane
from bpcli.nn.model import build
from bpcli.runs.session import run_training
from tests.explain.test_explain import SEED_FIXED, W, X, Y, hand_forward


def by_hand(x1: float, x2: float) -> tuple[float, float, float]:
    """(o1, o2, y') of the seed network at W, in plain floats."""
    h = hand_forward(W, x1, x2)
    return h["o1"], h["o2"], h["yp"]


@pytest.fixture(scope="module")
def learning(tmp_path_factory):
    path = tmp_path_factory.mktemp("learning") / "seed_fixed.yaml"
    path.write_text(SEED_FIXED)
    cfg, data = load_config(path)
    return config_learning(cfg, build(cfg), prepare(cfg, data))


def test_a_config_is_one_epoch_0_at_step_0_with_its_own_weights(learning):
    assert [0] == learning.kept
    (st,) = list(epoch_states(learning, [0], None))
    assert (0, 0) == (st.epoch, st.step)
    assert W == st.weights
    assert None is st.plane_acts


def test_the_activations_are_the_forward_pass_worked_by_hand(learning):
    (st,) = list(epoch_states(learning, [0], None))
    for i, (x1, x2) in enumerate(X):
        o1, o2, yp = by_hand(x1, x2)
        assert [o1, o2] == pytest.approx(list(st.acts[0][i]), rel=1e-14)
        assert yp == pytest.approx(float(st.acts[1][i, 0]), rel=1e-14)


def test_each_parameter_is_explained_with_the_gradient_worked_by_hand(learning):
    (st,) = list(epoch_states(learning, [0], None))
    assert list(W) == list(st.explanations)
    # dC/dv1 = 1/m sum_i (y' - y) y' (1 - y') o1 and dC/dw12 = 1/m sum_i (y' - y) y' (1 - y') v1 o1 (1 - o1) x2
    dv1 = dw12 = 0.0
    for (x1, x2), y in zip(X, Y):
        o1, _, yp = by_hand(x1, x2)
        dv1 += (yp - y) * yp * (1 - yp) * o1 / len(X)
        dw12 += (yp - y) * yp * (1 - yp) * W["v1"] * o1 * (1 - o1) * x2 / len(X)
    assert dv1 == pytest.approx(st.explanations["v1"].engine, rel=1e-12)
    assert dw12 == pytest.approx(st.explanations["w12"].engine, rel=1e-12)


def test_the_plane_is_a_grid_over_the_inputs_with_a_tenth_of_their_range_as_margin(learning):
    plane = input_plane(learning.net, learning.prepared.train.x, 2)
    # x1 in [-1, 2] -> [-1.3, 2.3]; x2 in [-0.5, 1] -> [-0.65, 1.15]; cell centres at 1/4 and 3/4 of each,
    # rows from the top (high x2) down
    assert [-1.3, -0.65] == pytest.approx(list(plane.lo), abs=1e-15)
    assert [2.3, 1.15] == pytest.approx(list(plane.hi), abs=1e-15)
    expected = [(-0.4, 0.7), (1.4, 0.7), (-0.4, -0.2), (1.4, -0.2)]
    assert expected == [pytest.approx(tuple(p), abs=1e-15) for p in plane.grid.tolist()]
    (st,) = list(epoch_states(learning, [0], plane))
    assert [by_hand(*p)[2] for p in expected] == pytest.approx(st.plane_acts[-1][:, 0].tolist(), rel=1e-14)


def test_only_two_inputs_make_a_plane_and_a_constant_input_gets_a_margin_of_one(learning):
    net = learning.net
    assert None is input_plane(net, learning.prepared.train.x[:0], 24)  # no samples
    flat = input_plane(net, [[3.0, 0.0], [3.0, 1.0]], 2)
    assert ([2.0, -0.1], [4.0, 1.1]) == (pytest.approx(list(flat.lo)), pytest.approx(list(flat.hi)))
    cfg, data = load_config(builtin_config_dir() / "iris.yaml")
    assert None is input_plane(build(cfg), prepare(cfg, data).train.x, 24)  # four inputs


def test_view_of_a_run_without_snapshots_says_it_has_no_epochs_to_show(tmp_path):
    cfg, data = load_config(builtin_config_dir() / "seed.yaml")
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=2, snapshots=False))
    run_training(cfg, data, tmp_path / "bare")
    r = CliRunner().invoke(app, ["view", str(tmp_path / "bare"), "--out", str(tmp_path / "v.html")])
    expected = (f"error: {tmp_path / 'bare'} keeps no weight snapshots (train.snapshots: off), so there are no "
                "epochs to show")
    assert (2, expected) == (r.exit_code, r.stderr.strip())
    assert not (tmp_path / "v.html").exists()


def test_an_epochs_update_on_a_scheduled_run_uses_the_lr_training_stepped_with(tmp_path):
    """The page's update after epoch N is `explain --run RUN --epoch N --json`'s: with the schedule's lr of epoch
    N + 1 (step schedule, step_size 2, gamma 0.1: epoch 5's lr is 0.05 * 0.1^2), not train.lr."""
    import json
    import math

    from bpcli.explain.learning import run_learning
    from bpcli.schema import ScheduleConfig

    cfg, data = load_config(builtin_config_dir() / "xor.yaml")
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(
        cfg.train, epochs=6, lr=0.05, schedule=ScheduleConfig("step", step_size=2, gamma=0.1)))
    run_training(cfg, data, tmp_path / "run")
    (st,) = list(epoch_states(run_learning(tmp_path / "run"), [4], None))
    update = st.explanations["v1"].to_dict()["update"]
    assert (cfg.train.optimizer, 5) == ("adam", update["t"])
    assert 0.05 * 0.1 ** 2 == pytest.approx(update["lr"], rel=1e-15)
    t = update["terms"]
    assert update["old"] - 0.05 * 0.1 ** 2 * t["m_hat"] / (math.sqrt(t["v_hat"]) + 1e-8) == pytest.approx(
        update["new"], rel=1e-12)
    r = CliRunner().invoke(app, ["explain", "--run", str(tmp_path / "run"), "--epoch", "4", "-w", "v1", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["explanations"][0]["update"] == update
