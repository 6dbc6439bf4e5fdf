"""bpcli import reads targets the way PyTorch's F.cross_entropy takes them: one class index per sample."""

from __future__ import annotations

import numpy as np
from typer.testing import CliRunner

from bpcli.cli.app import app
from bpcli.yamlsrc import read_yaml


def test_class_indices_become_one_hot_targets(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "state.npz", **{"0.weight": rng.normal(size=(4, 2)), "0.bias": rng.normal(size=4),
                                         "2.weight": rng.normal(size=(3, 4)), "2.bias": rng.normal(size=3)})
    labels = np.array([0, 1, 2, 0, 2])
    np.savez(tmp_path / "data.npz", x=rng.normal(size=(5, 2)), y=labels)
    out = tmp_path / "m.yaml"
    res = CliRunner().invoke(app, ["import", str(tmp_path / "state.npz"), "--arch", "2-4-3", "--activations",
                                   "tanh,softmax", "--loss", "cross_entropy", "--data", str(tmp_path / "data.npz"),
                                   "-o", str(out)])
    assert res.exit_code == 0, res.output
    y = read_yaml(out.read_text(), "config.yaml")[0]["data"]["y"]
    assert y == np.eye(3)[labels].tolist()


def test_indices_that_are_not_classes_of_the_output_stay_as_they_are(tmp_path):
    """Index 3 for a 3-node output is no class: the targets are kept and the config check says what is wrong."""
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "state.npz", **{"0.weight": rng.normal(size=(3, 2)), "0.bias": rng.normal(size=3)})
    np.savez(tmp_path / "data.npz", x=rng.normal(size=(3, 2)), y=np.array([0, 1, 3]))
    res = CliRunner().invoke(app, ["import", str(tmp_path / "state.npz"), "--arch", "2-3", "--activations",
                                   "softmax", "--loss", "cross_entropy", "--data", str(tmp_path / "data.npz"),
                                   "-o", str(tmp_path / "m.yaml")])
    assert res.exit_code == 2 and not (tmp_path / "m.yaml").exists()
