"""A config's own activation (a formula) crosses to PyTorch and numpy: autograd of the user's f is the oracle
for the user's df, and the exported code computes what bpcli computes."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from typer.testing import CliRunner

from bpcli.cli.app import app
from bpcli.config.loader import builtin_config_dir

runner = CliRunner()
SOFTSIGN = builtin_config_dir() / "softsign_xor.yaml"


def test_formula_code_writes_the_checked_tree_only():
    from bpcli.nn.formula import FormulaError
    from bpcli.bridge.formula_code import formula_code
    assert formula_code("z / (1 + abs(z))", {"z": "x"}, "numpy") == "np.divide(x, np.add(1.0, np.absolute(x)))"
    assert formula_code("where(z > 0, z, 0.1 * z)", {"z": "z"}, "torch") == \
        "torch.where(torch.gt(z, _t(0.0)), z, torch.mul(_t(0.1), z))"
    # a chain of comparisons is every link, as bpcli evaluates it (it was the first link only)
    assert formula_code("where(-0.5 < z < 0.5, z, 0)", {"z": "z"}, "numpy") == \
        "np.where(np.logical_and(np.less(np.negative(0.5), z), np.less(z, 0.5)), z, 0.0)"
    with pytest.raises(FormulaError):
        formula_code("__import__('os').system('true')", {"z": "z"}, "numpy")


def test_numpy_export_of_a_formula_activation_predicts_as_bpcli(tmp_path):
    run = tmp_path / "run"
    assert runner.invoke(app, ["train", str(SOFTSIGN), "--epochs", "50", "--out", str(run), "-q"]).exit_code == 0
    assert runner.invoke(app, ["export", str(run), "--to", "numpy", "--out", str(tmp_path / "np")]).exit_code == 0
    spec = importlib.util.spec_from_file_location("predict_softsign", tmp_path / "np" / "predict.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    x = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.3, -2.0]])
    from bpcli.nn.engine import predict
    from bpcli.runs.store import load_run
    np.testing.assert_allclose(mod.predict(x), predict(load_run(run).net, x), rtol=1e-13, atol=0)


def test_gradcheck_against_torch_judges_the_users_derivative(tmp_path):
    pytest.importorskip("torch", reason="PyTorch is not installed: pip install -e '.[dev,torch]' runs this")
    ok = runner.invoke(app, ["gradcheck", "--against", "torch", str(SOFTSIGN), "--json"])
    assert ok.exit_code == 0, ok.output
    wrong = tmp_path / "wrong.yaml"  # df of z / (1 + z) instead of z / (1 + |z|): wrong for z < 0
    wrong.write_text(SOFTSIGN.read_text().replace('df: "1 / (1 + abs(z))**2"', 'df: "1 / (1 + z)**2"'))
    bad = runner.invoke(app, ["gradcheck", "--against", "torch", str(wrong), "--json"])
    assert bad.exit_code == 1, bad.output
    import json
    failed = {e["name"] for e in json.loads(bad.stdout)["entries"] if not e["passed"]}
    assert failed and all(n.startswith(("w", "b_A")) for n in failed)  # the hidden layer, where the formula is


# --- every construct the parser accepts: random valid formulas, exported, equal bpcli's forward ----------------

UNARY_FNS = ("exp", "log", "log1p", "sqrt", "abs", "tanh", "sin", "cos")
LIBM = ("exp", "log", "log1p", "sqrt", "tanh", "sin", "cos")  # rounded by each library its own way
NUMBERS = ("0", "1", "2", "3", "0.5", ".25", "7.25", "1e-3", "2.5e3", "100", "1e300", "1e-300", "10" * 12, "0.0")
POWERS = ("0", "1", "2", "3", "0.5", "1.5", "-1", "-2", "+3", "64", "-0.5")
COMPARE = ("<", "<=", ">", ">=", "==", "!=")


def random_formula(rng, depth: int, p_var: float) -> str:
    """A formula in z built from every construct formula.py accepts (numbers, z, unary + and -, + - * / **, the
    functions, where with a chain of comparisons, clip), each part in brackets."""
    if depth == 0 or rng.random() < 0.2:
        return "z" if rng.random() < p_var else str(rng.choice(NUMBERS))
    sub = lambda: random_formula(rng, depth - 1, p_var)  # noqa: E731
    kind = rng.integers(8)
    if kind == 0:
        return f"({rng.choice(['-', '+'])}{sub()})"
    if kind == 1:
        return f"({sub()} {rng.choice(['+', '-', '*', '/'])} {sub()})"
    if kind == 2:
        return f"({sub()} ** {rng.choice(POWERS)})"
    if kind == 3:
        return f"{rng.choice(UNARY_FNS)}({sub()})"
    if kind == 4:
        return f"{rng.choice(['maximum', 'minimum'])}({sub()}, {sub()})"
    if kind == 5:
        links = rng.integers(1, 4)  # a < b, a < b <= c, a < b <= c != d
        chain = sub() + "".join(f" {rng.choice(COMPARE)} {sub()}" for _ in range(links))
        return f"where({chain}, {sub()}, {sub()})"
    if kind == 6:
        return f"clip({sub()}, {sub()}, {sub()})"
    return f"({sub()} {rng.choice(['+', '*'])} {sub()})"


def random_formulas(n: int, seed: int) -> list[str]:
    from bpcli.nn.formula import FormulaError, parse_formula
    rng = np.random.default_rng(seed)
    out = ["where(-0.5 < z < 0.5, z, 0)", "1", "1/0", "(-2)**1.5", "z + 1/0", "where(1 < 2 < 3, z, -z)",
           "1e-50 * 1e50 * z", "clip(z, 1, -1)", "z ** -1", "-(-z)", "+z"]
    while len(out) < n:
        text = random_formula(rng, int(rng.integers(1, 6)), p_var=0.0 if rng.random() < 0.1 else 0.5)
        try:
            parse_formula(text, ("z",))
        except FormulaError:  # over the checker's limits (parts, depth): not a valid formula
            continue
        out.append(text)
    return out


def formula_rows(rng, m: int):
    """x: (m, 2), the network's z itself (the layer's weights are the identity): the edges, then spread values."""
    edges = np.array([0.0, -0.0, 0.5, -0.5, 1.0, -1.0, 2.0, -2.0, 3.0, 1e-3, -1e-300, 1e-300, 700.0, -700.0,
                      1e10, -1e10, 1e300, -1e300, 7.25, 100.0])
    v = np.concatenate([edges, rng.normal(0, 3, m * 2 - 2 * edges.size), rng.normal(0, 300, edges.size)])
    return v.reshape(m, 2)


def formula_network(text: str, dtype):
    """1 layer of 2 nodes whose activation is `text`, W the identity and no bias: its output is f(x) itself."""
    from bpcli.nn.activations import get_activation
    from bpcli.nn.losses import get_loss
    from bpcli.nn.model import Layer, Network
    act = get_activation("mine", {"f": text, "df": "1"})
    net = Network(("x1", "x2"), (Layer("A", 2, 2, act, "off"),), [np.eye(2)], [None],
                  get_loss("squared_error").for_outputs(2))
    return net.astype(dtype) if dtype is not np.float64 else net


def exported(source: str, folder):
    """The generated module run as `import` runs it, its weights.npz in folder."""
    import types
    mod = types.ModuleType("exported")
    mod.__file__ = str(folder / "module.py")
    exec(compile(source, mod.__file__, "exec"), mod.__dict__)
    return mod


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # float32: 1e300 is inf, and inf * 0 in the matmul nan
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_random_formulas_export_to_numpy_exactly_as_bpcli_computes_them(dtype, tmp_path):
    from bpcli.nn.engine import predict
    from bpcli.bridge.export_numpy import numpy_source
    from bpcli.bridge.export_spec import numpy_arrays, spec_from_network
    from bpcli.files import npz_bytes
    x = formula_rows(np.random.default_rng(0), 1000)
    formulas = random_formulas(400 if dtype is np.float64 else 150, seed=1)
    (tmp_path / "weights.npz").write_bytes(npz_bytes(numpy_arrays(spec_from_network(formula_network("z", dtype),
                                                                                      "p"))))
    for text in formulas:
        net = formula_network(text, dtype)
        expected = predict(net, x.astype(dtype))  # bpcli predict gives the network x in its dtype
        got = exported(numpy_source(spec_from_network(net, "p")), tmp_path).predict(x)
        assert expected.shape == got.shape, text
        np.testing.assert_array_equal(got, expected, err_msg=text)  # the same numpy calls: bit for bit


def rounding_allowance(text: str, z, eps: float = 1e-12, tie: float = 1e-9):
    """(ties, bound) for comparing two float64 evaluations of `text` at z whose functions may each round the last
    bit differently (numpy's and torch's exp, sin, x**0.5, ...), from bpcli's own evaluation of every part:
    ties marks the entries where some comparison's two sides are within `tie` of each other (a last-bit difference
    may take the other branch of where), bound is eps times the largest part's size (a last-bit difference there
    survives a cancellation such as tanh(z) - z)."""
    import ast

    from bpcli.nn.formula import parse_formula

    tree = ast.parse(text, mode="eval").body
    value = lambda node: parse_formula(ast.unparse(node), ("z",))(z=z).astype(np.float64)  # noqa: E731
    uses_z = lambda node: any(isinstance(n, ast.Name) and n.id == "z" for n in ast.walk(node))  # noqa: E731
    # a part whose last bit is the library's choice: a function or a power of z (a number is bpcli's own)
    inexact = lambda node: any(uses_z(n) and (isinstance(n, ast.Call) and n.func.id in LIBM
                                              or isinstance(n, ast.BinOp) and isinstance(n.op, ast.Pow))
                               for n in ast.walk(node))  # noqa: E731
    ties = np.zeros(z.shape, dtype=bool)
    scale = np.abs(np.nan_to_num(z, posinf=0.0, neginf=0.0))
    with np.errstate(all="ignore"):
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                nodes = [node.left, *node.comparators]
                for a, b in zip(nodes, nodes[1:]):
                    if ast.dump(a) == ast.dump(b) or not (inexact(a) or inexact(b)):
                        continue  # the same bits on both sides: + - * / max min abs round alike everywhere
                    left, right = value(a), value(b)
                    ties |= np.abs(left - right) <= tie * np.maximum(np.abs(left), np.abs(right))
            elif isinstance(node, (ast.BinOp, ast.UnaryOp, ast.Call)):
                v = np.abs(value(node))
                scale = np.maximum(scale, np.where(np.isfinite(v), v, 0.0))
    return ties, eps * scale


def test_rounding_allowance_marks_ties_and_sizes():
    z = np.array([[0.5, 2.0]])
    ties, bound = rounding_allowance("where(z ** 0.5 < sqrt(z), 1, 0)", z)  # equal sides: both entries tie
    assert [[True, True]] == ties.tolist()
    assert [[False, True]] == rounding_allowance("where(z ** 2 < 4, 1, 0)", z)[0].tolist()  # 2 ** 2 is 4
    ties, bound = rounding_allowance("where(z < 1, tanh(z) - z, 0)", z)
    assert [[False, False]] == ties.tolist()
    assert [[False, False]] == rounding_allowance("where(exp(z) <= exp(z), 1, 0)", z)[0].tolist()  # the same twice
    np.testing.assert_allclose(bound, [[1e-12 * 0.5, 2e-12]], rtol=1e-15)  # z itself is the largest part


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # float32: 1e300 is inf, and inf * 0 in the matmul nan
@pytest.mark.parametrize("dtype, eps, tie", [(np.float64, 1e-12, 1e-9), (np.float32, 1e-5, 1e-4)])
def test_random_formulas_export_to_torch_as_bpcli_computes_them(dtype, eps, tie, tmp_path):
    """float32 too: numpy makes a part float64 where a computed number (-0.5, 1/3) meets it, and so does the
    export; it was float32 throughout (cos(6.25 * z) at z = -1e10 gave -0.99999917 where bpcli gives 0.041)."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: pip install -e '.[dev,torch]' runs this")
    from bpcli.nn.engine import predict
    from bpcli.bridge.export_spec import spec_from_network, torch_arrays
    from bpcli.bridge.export_torch import torch_source
    from bpcli.files import npz_bytes
    x = formula_rows(np.random.default_rng(0), 1000).astype(dtype)  # bpcli predict gives x in the network's dtype
    (tmp_path / "weights.npz").write_bytes(npz_bytes(torch_arrays(spec_from_network(formula_network("z", dtype),
                                                                                      "p"))))
    compared = 0
    for text in random_formulas(300, seed=2):
        net = formula_network(text, dtype)
        expected = predict(net, x).astype(np.float64)
        with torch.no_grad():
            got = exported(torch_source(spec_from_network(net, "p")), tmp_path).load()(torch.tensor(x)).numpy()
        assert expected.shape == got.shape, text
        got = got.astype(np.float64)
        ties, bound = rounding_allowance(text, x, eps, tie)
        keep = ~ties
        compared += int(keep.sum())
        # torch's exp, sin, x**0.5 ... may round the last bit otherwise than numpy's; nothing else may differ
        with np.errstate(invalid="ignore"):
            close = (got == expected) | (np.isnan(got) & np.isnan(expected)) | \
                (np.abs(got - expected) <= eps * np.abs(expected) + bound)
        wrong = np.argwhere(keep & ~close)
        assert not wrong.size, (f"{text}: at z = {x[tuple(wrong[0])]!r} torch's export gives "
                                f"{got[tuple(wrong[0])]!r}, bpcli {expected[tuple(wrong[0])]!r}")
    assert compared > 0.97 * 300 * x.size  # ties are rare: the check compared nearly every entry


CHAINED = """version: 1
name: chained
layers:
  - {size: 8, activation: {name: window, f: "F", df: "where(-0.5 < z < 0.5, 1, 0)"}}
  - {size: 1, activation: identity}
loss: squared_error
init: {scheme: xavier_normal, seed: 0, bias: 0.1}
data: {generator: sine, samples: 200, noise: 0.05}
train: {optimizer: gd, lr: 0.05, epochs: 5}
"""


@pytest.mark.parametrize("f", ["where(-0.5 < z < 0.5, z, 0)", "0.5",
                               "minimum(1/0, where((-2)**1.5 == (-2)**1.5, 0, z))"])
def test_a_hidden_formula_exports_equal_to_bpcli_predict(f, tmp_path):
    """The chained comparison is both comparisons (it was the first only: 103 of 200 predictions differed), a
    constant f fills the layer (it was a scalar: a matmul ValueError), numbers are numpy's: 1/0 is inf (it raised
    ZeroDivisionError) and (-2)**1.5 is nan, unequal to itself (it was a complex number, equal to itself)."""
    import csv
    import json
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: pip install -e '.[dev,torch]' runs this")
    from tests.conftest import load_module
    config = tmp_path / "chained.yaml"
    config.write_text(CHAINED.replace('"F"', json.dumps(f)))
    run = tmp_path / "run"
    assert runner.invoke(app, ["train", str(config), "--out", str(run), "-q"]).exit_code == 0
    x = np.linspace(-4, 4, 1000).reshape(-1, 1)
    with open(tmp_path / "x.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([["x1"], *x.tolist()])
    done = runner.invoke(app, ["predict", str(run), str(tmp_path / "x.csv"), "--json"])
    assert done.exit_code == 0, done.output
    expected = np.array([list(r["predicted"].values()) for r in json.loads(done.stdout)["rows"]])
    for to in ("numpy", "pytorch"):
        assert runner.invoke(app, ["export", str(run), "--to", to, "--out", str(tmp_path / to)]).exit_code == 0
    y_np = load_module(tmp_path / "numpy" / "predict.py", f"chained_np_{abs(hash(f))}").predict(x)
    with torch.no_grad():
        y_pt = load_module(tmp_path / "pytorch" / "model.py", f"chained_pt_{abs(hash(f))}").load()(
            torch.tensor(x)).numpy()
    assert expected.shape == y_np.shape == y_pt.shape == (1000, 1)
    np.testing.assert_allclose(y_np, expected, rtol=1e-13, atol=1e-15, equal_nan=True)
    np.testing.assert_allclose(y_pt, expected, rtol=1e-12, atol=1e-15, equal_nan=True)


FORMULA_LOSS = """version: 1
name: own_loss
inputs: 2
layers:
  - {size: 3, activation: tanh}
  - {size: 2, activation: sigmoid}
loss: {name: my_loss, L: "where(-0.5 < yhat - y < 0.5, (yhat - y)**2, abs(yhat - y) - 0.25)",
       dL: "where(-0.5 < yhat - y < 0.5, 2 * (yhat - y), where(yhat > y, 1, -1))"}
data: {x: [[0, 0], [0, 1], [1, 0], [1, 1], [0.5, -2]], y: [[0, 1], [1, 0], [1, 1], [0, 0], [1, 0]]}
init: {seed: 3}
train: {epochs: 3}
"""


def test_a_formula_loss_exports_to_torch_and_autograd_judges_its_derivative(tmp_path):
    """The config's own L is written into model.py's cost (it was refused: no PyTorch form), so the exported cost
    is bpcli's, and gradcheck --against torch checks the user's dL against autograd of the user's L."""
    import json
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: pip install -e '.[dev,torch]' runs this")
    from bpcli.config.loader import load_config
    from bpcli.nn.engine import cost, forward
    from tests.conftest import load_module
    config = tmp_path / "own_loss.yaml"
    config.write_text(FORMULA_LOSS)
    ok = runner.invoke(app, ["gradcheck", "--against", "torch", str(config), "--json"])
    assert ok.exit_code == 0, ok.output
    wrong = tmp_path / "wrong.yaml"  # dL without its factor 2 inside the window
    wrong.write_text(FORMULA_LOSS.replace("2 * (yhat - y)", "(yhat - y)"))
    bad = runner.invoke(app, ["gradcheck", "--against", "torch", str(wrong), "--json"])
    assert bad.exit_code == 1, bad.output
    assert any(not e["passed"] for e in json.loads(bad.stdout)["entries"])

    run = tmp_path / "run"
    assert runner.invoke(app, ["train", str(config), "--out", str(run), "-q"]).exit_code == 0
    assert runner.invoke(app, ["export", str(run), "--to", "pytorch", "--out", str(tmp_path / "pt")]).exit_code == 0
    mod = load_module(tmp_path / "pt" / "model.py", "own_loss_model")
    cfg, data = load_config(config)
    from bpcli.runs.store import load_run
    net = load_run(run).net
    expected = cost(net, forward(net, data.x)[1], data.y)
    with torch.no_grad():
        got = float(mod.cost(mod.load(), torch.tensor(data.x), torch.tensor(data.y)))
    assert expected == pytest.approx(got, rel=1e-13, abs=0)
