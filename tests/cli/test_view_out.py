"""`bpcli view --out FILE` is refused under files.check_output's rules before the page is computed."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from bpcli.cli.app import app
from bpcli.config.loader import builtin_config_dir

runner = CliRunner()


@pytest.fixture
def no_page(monkeypatch):
    """Fail the test if the page is computed at all."""
    import bpcli.render.view as view

    def computed(*args, **kwargs):
        raise AssertionError("the page was computed before --out was checked")

    monkeypatch.setattr(view, "view_config", computed)
    monkeypatch.setattr(view, "view_run", computed)


def test_an_existing_out_file_without_force_is_refused_before_the_page_is_computed(tmp_path, no_page):
    out = tmp_path / "v.html"
    out.write_text("mine")
    r = runner.invoke(app, ["view", str(builtin_config_dir() / "seed.yaml"), "--out", str(out)])
    expected = f"error: --out: {out} already exists; choose another file or add --force to replace it"
    assert (2, expected) == (r.exit_code, r.stderr.strip())
    assert "mine" == out.read_text()


@pytest.mark.parametrize("where, message", [
    ("folder", "--out: {out} is a folder; give a file name such as {out}/view.html"),
    ("missing", "--out: folder {out.parent} does not exist"),
])
def test_a_folder_or_a_missing_folder_says_so_before_the_page_is_computed(tmp_path, no_page, where, message):
    out = tmp_path if where == "folder" else tmp_path / "nope" / "v.html"
    r = runner.invoke(app, ["view", str(builtin_config_dir() / "seed.yaml"), "--out", str(out)])
    assert (2, "error: " + message.format(out=out)) == (r.exit_code, r.stderr.strip())
