"""The parameter-name grammar is unambiguous: every name `show` lists resolves to itself, whatever symbols a config picks."""

from __future__ import annotations

import itertools
import string
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bpcli.cli.app import app
from bpcli.config.loader import parse
from bpcli.errors import ConfigError
from bpcli.nn.model import build
from bpcli.yamlsrc import Locations

LOWER = string.ascii_lowercase
ONE_AND_TWO_LETTERS = list(LOWER) + ["".join(p) for p in itertools.product(LOWER, repeat=2)]


def allowed(symbol: str) -> bool:
    """The rule stated independently of bpcli: ASCII a-z, not starting with b, not o/x/y/z alone."""
    return (all(c in LOWER for c in symbol) and 1 <= len(symbol) <= 16 and not symbol.startswith("b")
            and symbol not in ("o", "x", "y", "z"))


def _doc(symbol: str, where: int) -> dict:
    """Three layers (10 nodes from 10 inputs, 1 node, 2 nodes); `symbol` on layer `where`, others fixed."""
    others = iter(s for s in ("wq", "vq", "uq") if s != symbol)
    layers = [{"size": 10}, {"size": 1}, {"size": 2, "bias": "shared"}]
    for i, lay in enumerate(layers):
        lay["symbol"] = symbol if i == where else next(others)
    return {"inputs": 10, "layers": layers, "data": {"x": [[0.0] * 10], "y": [[0.0] * 2]}}


def _config(doc: dict):
    return parse(doc, "names.yaml", Locations(None), Path("."))[0]


@pytest.mark.parametrize("where, symbols", [(0, ONE_AND_TWO_LETTERS), (1, ONE_AND_TWO_LETTERS[:26 * 4])],
                         ids=["10-node layer", "1-node layer"])
def test_every_listed_name_resolves_to_itself_for_every_one_and_two_letter_symbol(where, symbols):
    accepted = 0
    for symbol in symbols:
        doc = _doc(symbol, where)
        if not allowed(symbol):
            with pytest.raises(ConfigError) as err:
                _config(doc)
            assert any(f"layers[{where}].symbol" in p for p in err.value.problems), (symbol, err.value.problems)
            continue
        net = build(_config(doc))
        refs = net.param_refs()
        assert len({(r.layer, r.kind, r.index) for r in refs}) == len(refs) == net.n_params
        for ref in refs:
            got = net.resolve(ref.name)
            assert (ref.name, ref.layer, ref.kind, ref.index) == (got.name, got.layer, got.kind, got.index)
        accepted += 1
    assert sum(map(allowed, symbols)) == accepted
    assert 21 + 25 * 26 == sum(map(allowed, ONE_AND_TWO_LETTERS))  # all but b, o, x, y, z and b.


@pytest.mark.parametrize("symbol", ["ba", "b", "bias", "α", "é", "ｗ", "W", "w1", "w_", "", "o", "a" * 17])
def test_a_symbol_outside_the_grammar_is_a_located_error(symbol):
    doc = _doc("v", 1)
    doc["layers"][0]["symbol"] = symbol
    with pytest.raises(ConfigError) as err:
        _config(doc)
    assert [p for p in err.value.problems if p.startswith("names.yaml: layers[0].symbol: ")], err.value.problems


@pytest.mark.parametrize("letter", ["Α", "É", "a", "AB", "", "1"])
def test_a_letter_outside_the_grammar_is_a_located_error(letter):
    doc = _doc("v", 1)
    doc["layers"][0]["letter"] = letter
    with pytest.raises(ConfigError) as err:
        _config(doc)
    assert [p for p in err.value.problems if p.startswith("names.yaml: layers[0].letter: ")], err.value.problems


def test_every_capital_letter_names_its_biases():
    for letter in string.ascii_uppercase:
        doc = _doc("w", 0)
        doc["layers"][0]["letter"] = letter
        doc["layers"][1]["letter"] = "A" if letter != "A" else "B"
        doc["layers"][2]["letter"] = "C" if letter not in "C" else "D"
        if letter in ("A", "B") and doc["layers"][1]["letter"] == letter:
            continue
        net = build(_config(doc))
        for ref in net.param_refs():
            assert ref.name == net.resolve(ref.name).name


def test_ba1_in_init_values_never_sets_a_weight_silently(tmp_path):
    """The issue's case: with layer symbol 'a', ba1 is the bias b_A1 (b is reserved), never weight a... ."""
    doc = _doc("a", 0)
    doc["init"] = {"values": {"ba1": 5.0}}
    net = build(_config(doc))
    assert 5.0 == net.get(net.resolve("b_A1"))
    assert 5.0 not in net.W[0]


def test_typed_names_are_normalised_so_full_width_digits_and_letters_work():
    net = build(_config(_doc("w", 0)))
    assert "w10_3" == net.resolve("ｗ１０_３").name


def test_an_unknown_weight_names_the_option():
    runner = CliRunner()
    for cmd in (["explain", "-w", "zz"], ["gradcheck", "--weight", "v1,zz"]):
        result = runner.invoke(app, cmd)
        assert 2 == result.exit_code
        assert result.stderr.startswith("error: --weight: unknown parameter 'zz'"), result.stderr


def test_an_unknown_name_on_a_wide_network_lists_every_layer_and_suggests_its_longer_names():
    from bpcli.config.loader import builtin_config_dir, load_config
    from bpcli.nn.model import build
    cfg, _ = load_config(builtin_config_dir() / "iris.yaml")  # 4-8-3: v1 does not exist, v11..v38 do
    net = build(cfg)
    with pytest.raises(Exception) as err:
        net.resolve("v1")
    assert ("unknown parameter 'v1' (did you mean 'v11'?); this network's parameters are: "
            "w11 to w84 (layer A's 32 weights), b_A1 to b_A8 (layer A's 8 biases), "
            "v11 to v38 (layer B's 24 weights), b_B1 to b_B3 (layer B's 3 biases); 67 in all (see `bpcli show`)"
            ) == str(err.value)


@pytest.mark.parametrize("typed, name", [("V1", "v1"), ("V2", "v2"), ("W1", "w11")])
def test_a_name_typed_in_the_wrong_case_is_suggested_in_the_right_one(typed, name):
    from bpcli.config.loader import load_config
    net = build(load_config()[0])  # the seed: w11 ... b_B
    with pytest.raises(Exception) as err:
        net.resolve(typed)
    assert str(err.value).startswith(f"unknown parameter '{typed}' (did you mean '{name}'?); ")
