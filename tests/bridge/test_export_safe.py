"""An export never runs a user's text: names, classes, formulas and paths reach model.py and predict.py as literals,
so importing the export (as bpcli tells the user to) runs only bpcli's code and predicts what bpcli predicts."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from bpcli.cli.app import app

runner = CliRunner()

# each piece of text, were it pasted into the code, would create a file named after where it came from
def payload(tag: str) -> str:
    return f'"""; open("RAN_{tag}", "w"); """'


HOSTILE_CONFIG = {
    "version": 1,
    "name": "net " + payload("name") + "\n" + "'''; open('RAN_name2', 'w'); '''",
    "inputs": ['a"""\nopen("RAN_input", "w")\n"""', "b'\n x\\", "c\r\n# \x0b"],
    "layers": [
        {"size": 3, "activation": {"name": "soft\nopen('RAN_act', 'w')\n" + payload("act"),
                                   "f": "z / (1 + abs(z))", "df": "1 / (1 + abs(z))**2"}},
        {"size": 1, "activation": "sigmoid"},
    ],
    "loss": "squared_error",
    "init": {"scheme": "xavier_uniform", "seed": 1, "bias": 0.1},
    "data": {"x": [[0, 0, 1], [0, 1, 0], [1, 0, 0], [1, 1, 1]], "y": [[0], [1], [1], [0]],
             "classes": ["no " + payload("class0"), "yes\n" + payload("class1")]},
    "train": {"optimizer": "gd", "lr": 2.0, "epochs": 20},
}
# the name and the paths alone: on a plain config, pasting them into a docstring gives code that runs
NAMED = {**HOSTILE_CONFIG, "name": "net " + payload("name"), "inputs": ["x1", "x2", "x3"],
         "layers": [{"size": 3, "activation": "tanh"}, {"size": 1, "activation": "sigmoid"}],
         "data": {k: v for k, v in HOSTILE_CONFIG["data"].items() if k != "classes"}}
# a file name may hold any byte but / and NUL: a config and a run folder named as code
HOSTILE_FILE = 'c""";open("RAN_file","w");""".yaml'
HOSTILE_RUN = 'r""";open("RAN_run","w");"""'

IMPORT_ALL = """
import importlib.util, json, sys
import numpy as np
import torch
x = np.array(json.loads(sys.argv[1]))
out = {}
for i, path in enumerate(sys.argv[2:]):
    spec = importlib.util.spec_from_file_location(f"export{i}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    y = mod.predict(x) if hasattr(mod, "predict") else mod.load()(torch.tensor(x)).detach().numpy()
    out[path] = {"y": y.tolist(), "classes": mod.classes(y) if hasattr(mod, "classes") else None,
                 "inputs": list(mod.INPUTS), "name": mod.NETWORK["name"], "source": mod.NETWORK["source"]}
print(json.dumps(out))
"""


def test_hostile_text_in_an_export_never_runs_and_it_predicts_as_bpcli(tmp_path):
    """Two runs: one whose name, config file and run folder are code, one with every text hostile (inputs with
    quotes and newlines, classes, a formula activation's name); each exported to numpy and to PyTorch."""
    pytest.importorskip("torch", reason="the PyTorch half of the export needs torch to import")
    runs, files = [], []
    for i, config in enumerate((NAMED, HOSTILE_CONFIG)):
        (tmp_path / str(i)).mkdir()
        path = tmp_path / str(i) / HOSTILE_FILE
        path.write_text(yaml.safe_dump(config))
        run = tmp_path / str(i) / HOSTILE_RUN
        trained = runner.invoke(app, ["train", str(path), "--out", str(run), "-q"])
        assert trained.exit_code == 0, trained.output
        for to, file in (("numpy", "predict.py"), ("pytorch", "model.py")):
            done = runner.invoke(app, ["export", str(run), "--to", to, "--out", str(tmp_path / str(i) / to)])
            assert done.exit_code == 0, done.output
            runs.append((config, run))
            files.append(str(tmp_path / str(i) / to / file))

    x = [[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [1.0, 1.0, 1.0], [0.3, -2.0, 5.0], [-1.5, 4.0, 0.0]]
    sandbox = tmp_path / "sandbox"  # where the payloads would write: the imports' working directory
    sandbox.mkdir()
    out = subprocess.run([sys.executable, "-c", IMPORT_ALL, json.dumps(x), *files], cwd=sandbox,
                         capture_output=True, text=True, timeout=120)
    ran = sorted(p.name for p in [*sandbox.iterdir(), *tmp_path.rglob("RAN_*")])
    assert [] == ran  # no RAN_* file: no text of the user's ran
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)

    from bpcli.nn.engine import predict
    from bpcli.runs.store import load_run
    for file, (config, run) in zip(files, runs):
        loaded = load_run(run)
        scaling = loaded.prepared.scaling
        expected = predict(loaded.net, np.array(x) if scaling is None else scaling.apply(np.array(x)))
        np.testing.assert_allclose(got[file]["y"], expected, rtol=1e-12, atol=0)
        # the texts come back as the very strings the config gave, as data
        assert config["inputs"] == got[file]["inputs"]
        assert config["name"] == got[file]["name"]
        assert str(run) == got[file]["source"]
        if "classes" in config["data"] and file.endswith("predict.py"):
            names = config["data"]["classes"]
            assert [names[int(v >= 0.5)] for v in expected[:, 0]] == got[file]["classes"]


@pytest.mark.parametrize("brk", ["\r", "\x85", "\u2028"], ids=["CR", "NEL", "LS"])
def test_import_writes_the_state_files_name_into_the_config_only_as_a_comment(brk, tmp_path):
    """YAML ends a comment at a CR, NEL or line separator: a file name holding one must not become config."""
    name = f"m{brk}init: {{values: {{w11: 5.0}}}} #.npz"
    state = {"0.weight": np.ones((2, 2)), "0.bias": np.zeros(2), "2.weight": np.ones((1, 2)), "2.bias": np.zeros(1)}
    np.savez(tmp_path / name, **state)
    out = tmp_path / "imported.yaml"
    done = runner.invoke(app, ["import", str(tmp_path / name), "--arch", "2-2-1", "--activations", "tanh,sigmoid",
                               "-o", str(out), "--data", "xor"])
    assert done.exit_code == 0, done.output
    doc = yaml.safe_load(out.read_text())
    assert "init" not in doc
    assert [[1.0, 1.0], [1.0, 1.0]] == doc["layers"][0]["weights"]  # w11 is the state's 1, not the name's 5
    from bpcli.config.loader import load_config
    from bpcli.nn.model import build
    assert 1.0 == build(load_config(out)[0]).W[0][0, 0]


def test_gradcheck_against_torch_runs_no_text_of_the_config(tmp_path, monkeypatch):
    """--against torch runs the exported model.py in this process: a name written as code must stay a name."""
    pytest.importorskip("torch", reason="PyTorch is not installed: pip install -e '.[dev,torch]' runs this")
    monkeypatch.chdir(tmp_path)  # where the payloads would write
    path = tmp_path / HOSTILE_FILE
    inputs = ['x""";open("RAN_input","w");"""', "x2", "x3"]  # the inputs' names were in model.py's docstring
    path.write_text(yaml.safe_dump({**NAMED, "inputs": inputs}))
    done = runner.invoke(app, ["gradcheck", "--against", "torch", str(path), "--json"])
    assert done.exit_code in (0, 3), done.output
    assert [] == sorted(p.name for p in tmp_path.glob("RAN_*"))
    assert json.loads(done.stdout)["entries"]


def test_literal_writes_only_plain_values_that_read_back_as_themselves():
    import ast

    from bpcli.errors import BpcliError
    from bpcli.bridge.export_spec import literal

    class Sly(str):  # a str whose repr is code
        def __repr__(self):
            return "__import__('os')"

    for value in ('a"""\nimport os', "b'\r\x00\udcff", ("x", 1, 2.5, None), {"A": {"f": "z ** 2"}}):
        text = literal(value)
        assert value == ast.literal_eval(text) and "\n" not in text
    for bad in (Sly("x"), float("inf"), float("nan"), ("ok", Sly("y")), {1: "not a str key"}, b"bytes"):
        with pytest.raises(BpcliError):
            literal(bad)
