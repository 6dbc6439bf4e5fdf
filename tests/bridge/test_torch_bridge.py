"""The bridge against real PyTorch: exported runs predict, differentiate and step as bpcli does; gradcheck --against
torch; a PyTorch-trained MLP imported and explained.  Skipped where torch is not installed (CI installs it)."""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

torch = pytest.importorskip("torch", reason="PyTorch is not installed: pip install -e '.[dev,torch]' runs these")

from bpcli.nn import activations as act_mod  # noqa: E402
from bpcli.cli.app import app  # noqa: E402
from bpcli.config.loader import load_config, with_overrides  # noqa: E402
from bpcli.nn.engine import backward, forward  # noqa: E402
from bpcli.bridge.export import export  # noqa: E402
from bpcli.bridge.export_spec import spec_from_network  # noqa: E402
from bpcli.bridge.import_torch import import_state  # noqa: E402
from bpcli.nn.model import build  # noqa: E402
from bpcli.runs.store import load_run  # noqa: E402
from bpcli.runs.session import run_training  # noqa: E402
from bpcli.training.optim import Optimizer  # noqa: E402

from tests.conftest import load_module  # noqa: E402

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
runner = CliRunner()
PARAMS = {"leaky_relu": "leaky_relu:slope=0.2", "elu": "elu:alpha=0.7"}  # constants other than the defaults
HIDDEN = ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus", "silu", "gelu"]
DATA = {"blobs": {"generator": "blobs", "classes": 3, "samples": 40}, "moons": {"generator": "moons", "samples": 40},
        "sine": {"generator": "sine", "samples": 40}}
OUTPUTS = {"blobs": 3, "moons": 1, "sine": 1}
BIASES = ["on", "off", "frozen", "shared"]


def case(hidden, output, loss, data, bias="on", dtype="float64"):
    return pytest.param((hidden, output, loss, data, bias, dtype), id=f"{hidden}-{output}-{loss}-{bias}-{dtype}")


CASES = (
    [case(h, "softmax", "cross_entropy", "blobs", BIASES[i % 4]) for i, h in enumerate(HIDDEN)]
    + [case("tanh", o, loss, d, BIASES[i % 4]) for i, (o, loss, d) in enumerate([
        ("identity", "squared_error", "sine"), ("identity", "squared_error:convention=mean", "sine"),
        ("tanh", "squared_error:convention=sklearn", "sine"), ("identity", "squared_error:convention=sum", "sine"),
        ("sigmoid", "binary_cross_entropy", "moons"), ("softmax", "binary_cross_entropy", "blobs"),
        ("sigmoid", "cross_entropy", "blobs"), ("softmax", "squared_error", "blobs"),
        ("identity", "absolute_error", "sine"), ("identity", "huber:delta=0.5", "sine")])]
    + [case("silu", "sigmoid", "binary_cross_entropy", "moons", b, dt) for b, dt in itertools.product(BIASES, ["float32"])]
)


def named(text: str) -> dict | str:
    name, _, rest = text.partition(":")
    if not rest:
        return name
    k, _, v = rest.partition("=")
    return {"name": name, k: v if k == "convention" else float(v)}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Each case trained for 3 epochs into a run folder and exported to PyTorch: (loaded run, model.py, folder)."""
    base = tmp_path_factory.mktemp("bridge")
    made = {}

    def get(c):
        if c not in made:
            hidden, output, loss, data, bias, dtype = c
            name = f"r{len(made)}"
            doc = {"name": name, "bias": bias, "layers": [{"size": 4, "activation": named(PARAMS.get(hidden, hidden))},
                                                          {"size": 3, "activation": named(PARAMS.get(hidden, hidden))},
                                                          {"size": OUTPUTS[data], "activation": output}],
                   "loss": named(loss), "init": {"bias": 0.1}, "data": DATA[data],
                   "train": {"optimizer": "sgd", "lr": 0.3, "epochs": 3, "batch_size": 16, "dtype": dtype}}
            (base / f"{name}.yaml").write_text(yaml.safe_dump(doc))
            cfg, ds = load_config(base / f"{name}.yaml")
            run_training(cfg, ds, base / "runs" / name)
            loaded = load_run(base / "runs" / name)
            export(spec_from_network(loaded.net, name, "", loaded.prepared.scaling, loaded.prepared.train.class_names),
                   "pytorch", base / "export" / name)
            made[c] = (loaded, load_module(base / "export" / name / "model.py", f"bridge_{name}"), base / "export" / name)
        return made[c]
    return get


def tolerance(dtype: str) -> dict:
    return {"rtol": 1e-12, "atol": 1e-13} if dtype == "float64" else {"rtol": 2e-5, "atol": 2e-6}


def torch_grads(model, mod, x, y):
    for buf in (b for n, b in model.named_buffers() if n.endswith("_bias")):
        buf.requires_grad_(True)  # a frozen bias: bpcli's backward gives its gradient too
    c = mod.cost(model, torch.from_numpy(x), torch.from_numpy(y))
    c.backward()
    return c


def relative_max(a, b, scale: float) -> float:
    """The largest difference as a fraction of `scale`, the largest gradient of the network (a shared bias under a
    softmax has a gradient of exactly 0 up to rounding, which no relative error of its own can judge)."""
    return float(np.max(np.abs(a - b)) / scale)


@pytest.mark.parametrize("c", CASES)
def test_exported_run_predicts_differentiates_and_steps_as_bpcli(c, runs):
    loaded, mod, _ = runs(c)
    net, dtype = loaded.net.copy(), c[5]  # the step below changes it; the run is shared with other tests
    x = loaded.prepared.train.x.astype(net.dtype)
    y = loaded.prepared.train.y.astype(net.dtype)
    model = mod.load()
    y_hat, tape = forward(net, x)
    with torch.no_grad():
        np.testing.assert_allclose(model(torch.from_numpy(x)).numpy(), y_hat, **tolerance(dtype))
    grads = backward(net, tape, y)
    torch_grads(model, mod, x, y)
    scale = max(float(np.max(np.abs(g))) for g in grads.dW + grads.db if g is not None)
    limit = 1e-12 if dtype == "float64" else 1e-5
    for layer, dW, db in zip(net.layers, grads.dW, grads.db):
        lin = getattr(model, layer.letter)
        assert relative_max(dW, lin.weight.grad.numpy(), scale) <= limit
        if db is not None:
            tb = lin.bias if layer.bias == "on" else getattr(model, f"{layer.letter}_bias")
            assert relative_max(db, tb.grad.numpy(), scale) <= limit
    # one SGD step each, from the same gradients of the same cost
    opt = Optimizer(net, dataclasses.replace(loaded.cfg.train, optimizer="sgd", weight_decay=0.0))
    opt.step(opt.gradients(grads), 1)
    torch.optim.SGD(model.parameters(), lr=loaded.cfg.train.lr).step()
    state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    for layer, W, b in zip(net.layers, net.W, net.b):
        np.testing.assert_allclose(state[f"{layer.letter}.weight"], W, **tolerance(dtype))
        if b is not None:
            key = f"{layer.letter}.bias" if layer.bias == "on" else f"{layer.letter}_bias"
            np.testing.assert_allclose(state[key], b, **tolerance(dtype))


@pytest.mark.parametrize("c", CASES[:9] + CASES[-4:-2])
def test_bpcli_to_torch_to_import_gives_back_identical_weights(c, runs, tmp_path):
    loaded, _, folder = runs(c)
    hidden, output, loss, _, _, _ = c
    np.savez(tmp_path / "data.npz", x=loaded.prepared.train.x, y=loaded.prepared.train.y)
    acts = ",".join([PARAMS.get(hidden, hidden)] * 2 + [output])
    sizes = "-".join(str(n) for n in [loaded.net.n_inputs] + [layer.n_out for layer in loaded.net.layers])
    import_state(folder / "weights.npz", sizes, acts, loss, str(tmp_path / "data.npz"),
                 tmp_path / "back.yaml")
    back = build(load_config(tmp_path / "back.yaml")[0])
    assert [(la.bias, la.activation.name, la.activation.params) for la in loaded.net.layers] == \
        [(lb.bias, lb.activation.name, lb.activation.params) for lb in back.layers]
    for a, b in zip(loaded.net.W + loaded.net.b, back.W + back.b):
        assert (a is None and b is None) or np.array_equal(a, b)


def test_the_iris_run_exported_predicts_every_flower_as_bpcli(tmp_path):
    cfg, data = load_config(CONFIGS / "iris.yaml")
    run_training(with_overrides(cfg, epochs=20), data, tmp_path / "iris")
    loaded = load_run(tmp_path / "iris")
    res = runner.invoke(app, ["export", str(tmp_path / "iris"), "--to", "pytorch", "--out", str(tmp_path / "torch")])
    assert 0 == res.exit_code, res.output
    mod = load_module(tmp_path / "torch" / "model.py", "iris_model")
    with torch.no_grad():
        p = mod.load()(torch.from_numpy(data.x)).numpy()  # all 150 flowers, raw measurements
    expected = forward(loaded.net, loaded.prepared.scaling.apply(data.x))[0]
    assert 150 == p.shape[0]
    np.testing.assert_allclose(p, expected, rtol=1e-12, atol=1e-15)
    names = loaded.prepared.train.class_names
    assert [names[i] for i in expected.argmax(axis=1)] == mod.classes(torch.from_numpy(p))


@pytest.mark.parametrize("config", sorted(p.name for p in CONFIGS.glob("*.yaml")))
def test_gradcheck_against_torch_passes_on_every_shipped_config(config):
    res = runner.invoke(app, ["gradcheck", str(CONFIGS / config), "--against", "torch", "--json"])
    assert 0 == res.exit_code, res.output
    report = json.loads(res.output)
    assert ("PyTorch autograd", "pass") == (report["against"], report["verdict"])
    assert report["checked"]["entries"] == report["params"]


def test_gradcheck_against_torch_fails_on_a_planted_wrong_derivative(monkeypatch):
    spec = act_mod.ACTIVATIONS["tanh"]

    def broken():
        good = spec.build()
        return dataclasses.replace(good, grad=lambda z, a, out=None: 1.01 * (1.0 - a * a))

    monkeypatch.setitem(act_mod.ACTIVATIONS, "tanh", dataclasses.replace(spec, build=broken))
    res = runner.invoke(app, ["gradcheck", str(CONFIGS / "xor.yaml"), "--against", "torch"], terminal_width=120)
    assert 1 == res.exit_code, res.output
    assert "FAIL: backprop disagrees with PyTorch autograd" in res.output
    assert "w11" in res.output.split("FAIL")[1]


def test_a_torch_trained_mlp_imported_explains_with_autograds_gradients(tmp_path):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(30, 2, dtype=torch.float64, generator=g)
    labels = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    y = torch.nn.functional.one_hot(labels, 3).to(torch.float64)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3), torch.nn.Sigmoid(),
                                torch.nn.Linear(3, 3)).to(torch.float64)
    sgd = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(5):
        sgd.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        sgd.step()
    np.savez(tmp_path / "state.npz", **{k: v.detach().numpy() for k, v in model.state_dict().items()})
    np.savez(tmp_path / "data.npz", x=x.numpy(), y=y.numpy())
    res = runner.invoke(app, ["import", str(tmp_path / "state.npz"), "--arch", "2-4-3-3", "--activations",
                              "tanh,sigmoid,softmax", "--loss", "cross_entropy", "--data", str(tmp_path / "data.npz"),
                              "-o", str(tmp_path / "mlp.yaml")])
    assert 0 == res.exit_code, res.output
    sgd.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    wanted = {"w11": model[0].weight.grad[0, 0], "w23": None, "v32": model[2].weight.grad[2, 1],
              "u13": model[4].weight.grad[0, 2], "b_A4": model[0].bias.grad[3], "b_C2": model[4].bias.grad[1]}
    wanted.pop("w23")
    out = runner.invoke(app, ["explain", str(tmp_path / "mlp.yaml"), "-w", ",".join(wanted), "--json"])
    assert 0 == out.exit_code, out.output
    got = {e["weight"]: e["mean"] for e in json.loads(out.output)["explanations"]}
    for name, t in wanted.items():
        assert abs(got[name] - float(t)) <= 1e-12 * max(abs(float(t)), 1e-3), name


class EncoderDecoder(torch.nn.Module):
    """Layers registered encoder first, but named so that sorting by name would put the decoder first."""

    def __init__(self, n_in: int, n_hidden: int, n_out: int):
        super().__init__()
        self.encoder = torch.nn.Linear(n_in, n_hidden)
        self.decoder = torch.nn.Linear(n_hidden, n_out)

    def forward(self, x):
        return self.decoder(torch.tanh(self.encoder(x)))


def saved_encoder_decoder(tmp_path, sizes, keys=None):
    torch.manual_seed(3)
    model = EncoderDecoder(*sizes).to(torch.float64)
    state = model.state_dict()
    np.savez(tmp_path / "state.npz", **{k: state[k].numpy() for k in (keys or state)})
    g = torch.Generator().manual_seed(4)
    x = torch.randn(10, sizes[0], dtype=torch.float64, generator=g)
    y = torch.randn(10, sizes[2], dtype=torch.float64, generator=g)
    np.savez(tmp_path / "data.npz", x=x.numpy(), y=y.numpy())
    return model, x, y


def test_import_keeps_the_modules_order_and_explains_with_autograds_gradients(tmp_path):
    model, x, y = saved_encoder_decoder(tmp_path, (3, 3, 3))
    res = runner.invoke(app, ["import", str(tmp_path / "state.npz"), "--arch", "3-3-3", "--activations",
                              "tanh,identity", "--loss", "squared_error:convention=mean", "--data",
                              str(tmp_path / "data.npz"), "-o", str(tmp_path / "ed.yaml"), "--json"])
    assert 0 == res.exit_code, res.output
    torch.nn.functional.mse_loss(model(x), y).backward()  # MSELoss: the mean over samples and outputs
    wanted = {}
    for letter, layer in (("w", model.encoder), ("v", model.decoder)):
        for j, k in itertools.product(range(3), range(3)):
            wanted[f"{letter}{j + 1}{k + 1}"] = float(layer.weight.grad[j, k])
    for letter, layer in (("A", model.encoder), ("B", model.decoder)):
        for j in range(3):
            wanted[f"b_{letter}{j + 1}"] = float(layer.bias.grad[j])
    out = runner.invoke(app, ["explain", str(tmp_path / "ed.yaml"), "-w", ",".join(wanted), "--json"])
    assert 0 == out.exit_code, out.output
    got = {e["weight"]: e["mean"] for e in json.loads(out.output)["explanations"]}
    assert wanted.keys() == got.keys()
    for name, t in wanted.items():
        assert abs(got[name] - t) <= 1e-10, (name, got[name], t)
    assert ["A <- encoder.weight (3, 3), encoder.bias (3,)", "B <- decoder.weight (3, 3), decoder.bias (3,)"] == \
        [layer["mapping"] for layer in json.loads(res.output)["layers"]]


def test_import_refuses_layers_that_are_no_chain_in_file_order_and_takes_layers_to_name_it(tmp_path):
    saved_encoder_decoder(tmp_path, (3, 4, 2), ["decoder.weight", "decoder.bias", "encoder.weight", "encoder.bias"])
    args = ["import", str(tmp_path / "state.npz"), "--arch", "3-4-2", "--activations", "tanh,identity",
            "--data", str(tmp_path / "data.npz"), "-o", str(tmp_path / "ed.yaml")]
    res = runner.invoke(app, args)
    assert 2 == res.exit_code, res.output
    assert 1 == len(res.output.strip().splitlines()), res.output
    assert "do not form one chain" in res.output and "--layers" in res.output
    assert not (tmp_path / "ed.yaml").exists()
    res = runner.invoke(app, args + ["--layers", "encoder,decoder", "--json"])
    assert 0 == res.exit_code, res.output
    assert ["encoder.weight", "decoder.weight"] == [layer["weight"] for layer in json.loads(res.output)["layers"]]


def test_import_with_a_named_csv_writes_a_config_that_trains(tmp_path):
    torch.manual_seed(5)
    model = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3)).to(torch.float64)
    np.savez(tmp_path / "state.npz", **{k: v.numpy() for k, v in model.state_dict().items()})
    res = runner.invoke(app, ["import", str(tmp_path / "state.npz"), "--arch", "4-5-3", "--activations",
                              "tanh,softmax", "--loss", "cross_entropy", "--data", str(CONFIGS / "iris.csv"),
                              "--target", "species", "-o", str(tmp_path / "iris.yaml")])
    assert 0 == res.exit_code, res.output
    cfg, data = load_config(tmp_path / "iris.yaml")
    assert ("sepal_length", "sepal_width", "petal_length", "petal_width") == tuple(data.feature_names)
    assert (150, 3) == data.y.shape
    with torch.no_grad():  # the imported network is the module: same probabilities on the raw measurements
        p = torch.softmax(model(torch.from_numpy(data.x)), dim=1).numpy()
    np.testing.assert_allclose(forward(build(cfg), data.x)[0], p, rtol=1e-12, atol=1e-15)
    tr = runner.invoke(app, ["train", str(tmp_path / "iris.yaml"), "--epochs", "3", "--out", str(tmp_path / "run"),
                             "--json"])
    assert 0 == tr.exit_code, tr.output
    summary = json.loads(tr.stdout)
    assert ("completed", 3) == (summary["status"], summary["epochs"])
    assert 150 == summary["samples"]["train"] + summary["samples"]["validation"], summary["samples"]


def test_import_writes_input_names_that_look_like_numbers_as_names(tmp_path):
    """A column named 1e3 (a number to bpcli's YAML reader) must reach the written config quoted, as a name."""
    (tmp_path / "d.csv").write_text("1e3,yes,target\n0.5,1.5,0\n-1,2,1\n0,0,0\n")
    state = {"0.weight": np.array([[0.1, -0.2], [0.3, 0.4]]), "0.bias": np.array([0.0, 0.1]),
             "2.weight": np.array([[0.5, -0.6]]), "2.bias": np.array([0.2])}
    np.savez(tmp_path / "s.npz", **state)
    res = runner.invoke(app, ["import", str(tmp_path / "s.npz"), "--arch", "2-2-1", "--activations",
                              "tanh,sigmoid", "--loss", "binary_cross_entropy", "--data", str(tmp_path / "d.csv"),
                              "--target", "target", "-o", str(tmp_path / "c.yaml")])
    assert 0 == res.exit_code, res.output
    cfg, data = load_config(tmp_path / "c.yaml")
    assert ("1e3", "yes") == tuple(data.feature_names)


def test_against_torch_checks_the_subset_plain_gradcheck_checks_and_says_so_alike():
    """--n-samples draws the same samples for autograd as for central differences (the cost on them is the same
    number) and the note says it the same way, --n-samples named in both."""
    runner = CliRunner()
    for seed in range(4):
        args = ["gradcheck", "--n-samples", "2", "--seed", str(seed), "--json"]
        plain = json.loads(runner.invoke(app, args).stdout)
        ours = json.loads(runner.invoke(app, [*args, "--against", "torch"]).stdout)
        assert {"used": 2, "total": 4} == ours["samples"] == plain["samples"]
        assert plain["cost"] == ours["cost"], seed
        assert [f"2 of 4 samples, chosen at random (seed {seed}); --n-samples changes this"] == ours["notes"] \
            == plain["notes"]
