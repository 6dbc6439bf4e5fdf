"""bpcli export and import without PyTorch: the files, the plain-numpy predict.py, import's checks, the CLI's errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bpcli.nn.activations import ACTIVATIONS, get_activation
from bpcli.cli.app import app
from bpcli.config.loader import load_config, with_overrides
from bpcli.nn.engine import forward
from bpcli.errors import BpcliError
from bpcli.bridge.export import export, export_files
from bpcli.bridge.export_spec import spec_from_network
from bpcli.bridge.import_torch import import_state
from bpcli.nn.model import build
from bpcli.runs.store import load_run
from bpcli.runs.session import run_training

from tests.conftest import load_module

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
runner = CliRunner()


def trained(tmp: Path, config: Path, epochs: int = 5):
    """A run folder of `config` trained for a few epochs, loaded back."""
    cfg, data = load_config(config)
    run_training(with_overrides(cfg, epochs=epochs), data, tmp / cfg.name)
    return load_run(tmp / cfg.name)


@pytest.fixture(scope="module")
def iris(tmp_path_factory):
    return trained(tmp_path_factory.mktemp("iris"), CONFIGS / "iris.yaml", epochs=20)


def all_flowers():
    cfg, data = load_config(CONFIGS / "iris.yaml")
    return data


def test_numpy_export_of_the_iris_run_predicts_every_flower_as_bpcli_does(iris, tmp_path):
    result = export(spec_from_network(iris.net, "iris", "", iris.prepared.scaling, iris.prepared.train.class_names),
                    "numpy", tmp_path / "np")
    assert ["predict.py", "weights.npz", "names.json"] == [n for n, _ in result.files]
    mod = load_module(tmp_path / "np" / "predict.py", "iris_predict")
    flowers = all_flowers()
    expected = forward(iris.net, iris.prepared.scaling.apply(flowers.x))[0]
    y_hat = mod.predict(flowers.x)
    np.testing.assert_allclose(y_hat, expected, rtol=1e-12, atol=1e-15)
    assert [iris.prepared.train.class_names[i] for i in expected.argmax(axis=1)] == mod.classes(y_hat)
    assert "torch" not in (tmp_path / "np" / "predict.py").read_text()


@pytest.mark.parametrize("activation", [a for a in ACTIVATIONS if a != "softmax"])
def test_numpy_export_computes_each_activation_as_the_registry_does(activation, rng):
    from bpcli.bridge.export_numpy import FUNCTIONS
    if activation not in FUNCTIONS:
        pytest.skip(f"{activation} has no numpy export yet (export refuses it, see the test below)")
    act = get_activation(activation, {"leaky_relu": {"slope": 0.2}, "elu": {"alpha": 0.7}}.get(activation))
    ns: dict = {"np": np}
    exec("\n".join(FUNCTIONS["sigmoid"] + FUNCTIONS[activation]), ns)
    z = np.concatenate([rng.normal(0, 3, size=200), [-800.0, -40.0, -1e-300, 0.0, 1e-300, 40.0, 800.0]])[:, None]
    np.testing.assert_allclose(ns[activation](z, *act.params.values()), act.fn(z), rtol=1e-15, atol=1e-300)


def test_export_needs_no_torch(iris, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # any `import torch` now fails
    spec = spec_from_network(iris.net, "iris", "", iris.prepared.scaling, iris.prepared.train.class_names)
    files = export_files(spec, "pytorch")
    assert {"model.py", "weights.npz", "names.json"} == set(files)
    source = files["model.py"].decode()
    imports = {line.split()[1] for line in source.splitlines() if line.startswith(("import ", "from "))}
    assert {"pathlib", "numpy", "torch", "torch.nn.functional"} == imports


def test_names_json_maps_every_entry_to_bpcli_names(iris, tmp_path):
    spec = spec_from_network(iris.net, "iris", "", iris.prepared.scaling, iris.prepared.train.class_names)
    names = json.loads(export_files(spec, "pytorch")["names.json"])
    assert "w12" == names["arrays"]["A.weight"]["names"][0][1]
    assert "b_B3" == names["arrays"]["B.bias"]["names"][2]
    assert ["setosa", "versicolor", "virginica"] == names["classes"]
    assert set(iris.net.param_names()) == {n for a in names["arrays"].values() if "bias" in a or a["bpcli"].endswith(".W")
                                           for n in np.ravel(a["names"])}


def test_export_cli_refuses_to_clobber_and_explains_onnx(iris, tmp_path):
    out = tmp_path / "out"
    ok = runner.invoke(app, ["export", str(iris.run_dir), "--out", str(out)])
    assert 0 == ok.exit_code, ok.output
    assert "model.py" in ok.output
    again = runner.invoke(app, ["export", str(iris.run_dir), "--out", str(out)])
    assert 2 == again.exit_code
    assert "--force" in again.output
    assert 0 == runner.invoke(app, ["export", str(iris.run_dir), "--out", str(out), "--force"]).exit_code
    onnx = runner.invoke(app, ["export", str(iris.run_dir), "--out", str(tmp_path / "o"), "--to", "onnx"])
    assert 2 == onnx.exit_code and "not built yet" in onnx.output
    assert not (tmp_path / "o").exists()
    config = runner.invoke(app, ["export", str(CONFIGS / "iris.yaml"), "--out", str(tmp_path / "c")])
    assert 2 == config.exit_code and "not a run folder" in config.output


def test_import_refuses_shapes_that_do_not_fit_the_architecture(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "state.npz", **{"0.weight": rng.normal(size=(4, 3)), "0.bias": np.zeros(4),
                                        "2.weight": rng.normal(size=(3, 4)), "2.bias": np.zeros(3)})
    res = runner.invoke(app, ["import", str(tmp_path / "state.npz"), "--arch", "2-4-3", "--activations",
                              "tanh,softmax", "--loss", "cross_entropy", "--data", "blobs", "-o", str(tmp_path / "c.yaml")])
    assert 2 == res.exit_code
    assert "0.weight has shape (4, 3); --arch needs (4, 2) for layer A" in res.output
    assert not (tmp_path / "c.yaml").exists()
    wrong_count = runner.invoke(app, ["import", str(tmp_path / "state.npz"), "--arch", "3-4-3-2", "--activations",
                                      "tanh,tanh,softmax", "--data", "blobs", "-o", str(tmp_path / "c.yaml")])
    assert 2 == wrong_count.exit_code and "holds 2 Linear layer(s)" in wrong_count.output


def test_import_never_unpickles(tmp_path):
    (tmp_path / "model.pt").write_bytes(b"\x80\x04not really")
    res = runner.invoke(app, ["import", str(tmp_path / "model.pt"), "--arch", "2-1", "--activations", "sigmoid",
                              "--data", "xor", "-o", str(tmp_path / "c.yaml")])
    assert 2 == res.exit_code and "pickle" in res.output
    np.savez(tmp_path / "obj.npz", **{"0.weight": np.array([object()], dtype=object)})
    res = runner.invoke(app, ["import", str(tmp_path / "obj.npz"), "--arch", "2-1", "--activations", "sigmoid",
                              "--data", "xor", "-o", str(tmp_path / "c.yaml")])
    assert 2 == res.exit_code and "pickle" in res.output


def test_import_of_an_export_gives_back_identical_weights_for_every_bias_mode(tmp_path):
    cfg, data = load_config(CONFIGS / "worked_example.yaml")  # shared biases
    np.savez(tmp_path / "data.npz", x=data.x, y=data.y)
    for bias in ("on", "off", "frozen", "shared"):
        layers = tuple(type(lc)(**{**lc.__dict__, "bias": bias, "biases": None}) for lc in cfg.layers)
        net = build(type(cfg)(**{**cfg.__dict__, "layers": layers}))
        export(spec_from_network(net, "we"), "pytorch", tmp_path / bias)
        out = tmp_path / f"{bias}.yaml"
        import_state(tmp_path / bias / "weights.npz", "2-2-2", "sigmoid,sigmoid", "squared_error", str(tmp_path / "data.npz"),
                     out)
        back = build(load_config(out)[0])
        assert [layer.bias for layer in net.layers] == [layer.bias for layer in back.layers]
        for a, b in zip(net.W + net.b, back.W + back.b):
            assert (a is None and b is None) or np.array_equal(a, b)


def test_export_refuses_an_activation_it_cannot_write():
    from bpcli.bridge.export_numpy import numpy_source
    from bpcli.bridge.export_torch import torch_source
    for name in ACTIVATIONS:
        cfg, _ = load_config(CONFIGS / "seed.yaml")
        layers = (type(cfg.layers[0])(**{**cfg.layers[0].__dict__, "activation": name}),) + cfg.layers[1:]
        if name == "softmax":
            continue
        spec = spec_from_network(build(type(cfg)(**{**cfg.__dict__, "layers": layers})), "seed")
        for source in (torch_source, numpy_source):
            try:
                text = source(spec)
            except BpcliError as err:
                assert name in str(err)
            else:
                compile(text, "model.py", "exec")


def test_gradcheck_against_torch_without_torch_is_one_clear_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # as if torch were not installed
    res = runner.invoke(app, ["gradcheck", str(CONFIGS / "seed.yaml"), "--against", "torch"])
    assert 2 == res.exit_code
    lines = res.output.strip().splitlines()
    assert 1 == len(lines) and "needs PyTorch" in lines[0] and "pip install 'bpcli[torch]'" in lines[0]


def test_gradcheck_against_refuses_options_of_central_differences():
    res = runner.invoke(app, ["gradcheck", str(CONFIGS / "seed.yaml"), "--against", "torch", "--units"])
    assert 2 == res.exit_code and "--units" in res.output
    res = runner.invoke(app, ["gradcheck", str(CONFIGS / "seed.yaml"), "--against", "jax"])
    assert 2 == res.exit_code and "unknown oracle" in res.output
