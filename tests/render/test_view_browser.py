"""`bpcli view` in a real browser: headless Chromium (the system's) driven by Playwright (issue 26).

Skipped when playwright or chromium is missing (pip install 'bpcli[browser]', apt-get install chromium).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bpcli.cli.app import app
from bpcli.render.numbers import fmt
from tests.conftest import train_shipped

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install 'bpcli[browser]'")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH: apt-get install chromium")

runner = CliRunner()
VIEWPORTS = {"desktop": (1280, 800), "phone": (390, 844)}


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def seed_run(tmp_path_factory) -> Path:
    return train_shipped(tmp_path_factory.mktemp("view-browser"), "seed", 300)


@pytest.fixture(scope="module")
def seed_html(seed_run) -> Path:
    out = seed_run.parent / "seed.html"
    res = runner.invoke(app, ["view", str(seed_run), "--out", str(out)])
    assert 0 == res.exit_code, res.output
    return out


class Page:
    """A page opened in a fresh tab, with every request, console error and page error it caused."""

    def __init__(self, browser, html: Path, viewport=(1280, 800)):
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.tab = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
        self.tab.on("request", lambda r: self.requests.append(r.url))
        self.tab.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.tab.on("pageerror", lambda e: self.errors.append(str(e)))
        self.tab.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.tab.goto(html.as_uri())

    def epoch_index(self, k: int) -> int:
        """Move the slider to its k-th position (as a user's drag does: input events); the epoch drawn."""
        self.tab.eval_on_selector("#epoch", "(e, k) => { e.value = k; e.dispatchEvent(new Event('input')); }", k)
        return int(self.tab.eval_on_selector("body", "b => b.dataset.epoch"))

    def chain_text(self) -> str:
        return self.tab.inner_text("#chain")


def _explain(run: Path, epoch: int, name: str) -> dict:
    res = runner.invoke(app, ["explain", "--run", str(run), "--epoch", str(epoch), "--weight", name, "--json"])
    assert 0 == res.exit_code, res.output
    return json.loads(res.stdout)["explanations"][0]


def test_clicking_v1_and_w11_shows_explains_numbers_at_three_epochs(browser, seed_run, seed_html):
    page = Page(browser, seed_html)
    last = int(page.tab.eval_on_selector("#epoch", "e => e.max"))
    for k in (0, last // 2, last):
        epoch = page.epoch_index(k)
        for name in ("v1", "w11"):
            page.tab.click(f'[data-param="{name}"] .handle')
            d = _explain(seed_run, epoch, name)
            text = page.chain_text()
            assert f"dC/d{name} = {fmt(d['engine_gradient'])}" in text
            assert f"at epoch {epoch}: {name} = {fmt(d['value'])}" in text
            assert f"= {fmt(d['update']['new'])}" in page.tab.inner_text("#chain .upd")
            assert f"(training step t = {d['update']['t']})" in text
            # every factor of every sample, in the per-sample table ("mean over the samples" is selected)
            rows = page.tab.eval_on_selector_all("#chain table.factors tr",
                                                 "rs => rs.map(r => [...r.cells].map(c => c.textContent))")
            assert [[str(i + 1)] + [fmt(f["values"][i]) for f in d["factors"]] + [fmt(s["product"])]
                    for i, s in enumerate(d["samples"])] == rows[1:]
    assert [] == page.errors


def test_choosing_a_sample_shows_its_factors_and_from_the_list_for_keyboards(browser, seed_run, seed_html):
    page = Page(browser, seed_html)
    epoch = page.epoch_index(40)
    page.tab.select_option("#param", "w11")
    page.tab.select_option("#sample", "2")  # the third sample: x1 = 1, x2 = 0
    d = _explain(seed_run, epoch, "w11")
    rows = page.tab.eval_on_selector_all("#chain table.factors tr",
                                         "rs => rs.map(r => [r.cells[0].textContent, r.cells[1].textContent])")
    assert [[f["symbol"], fmt(f["values"][2])] for f in d["factors"]] + \
        [["dL_3/dw11", fmt(d["samples"][2]["product"])]] == rows[1:]
    assert [] == page.errors


def test_a_keyboard_opens_a_chain_rule_with_tab_and_enter(browser, seed_run, seed_html):
    page = Page(browser, seed_html)
    epoch = page.epoch_index(10)
    page.tab.focus('[data-param="v2"]')
    page.tab.keyboard.press("Enter")
    assert f"dC/dv2 = {fmt(_explain(seed_run, epoch, 'v2')['engine_gradient'])}" in page.chain_text()
    assert "v2" == page.tab.eval_on_selector("#param", "s => s.value")  # the list follows the choice
    assert [] == page.errors


def test_the_drawn_weights_follow_the_slider(browser, seed_run, seed_html):
    from bpcli.runs.store import load_run
    page = Page(browser, seed_html)
    for k in (0, 7, 77):
        epoch = page.epoch_index(k)
        drawn = dict(page.tab.eval_on_selector_all("[data-param]", "es => es.map(e => [e.dataset.param, +e.dataset.value])"))
        net = load_run(seed_run, epoch).net
        assert {n: float(net.get(net.resolve(n))) for n in net.param_names()} == drawn
        for n in ("v1", "w11", "b_B"):  # colour by sign: blue positive, orange negative
            stroke = page.tab.eval_on_selector(f'[data-param="{n}"] .edge', "e => e.getAttribute('stroke')")
            assert ("#0072B2" if drawn[n] >= 0 else "#D55E00") == stroke


def test_the_page_asks_the_network_for_nothing_and_logs_no_error(browser, seed_html):
    page = Page(browser, seed_html)
    page.tab.click("#play")
    page.tab.wait_for_timeout(300)
    page.tab.click("#play")
    page.tab.click('[data-param="b_A1"] .handle')
    assert [seed_html.as_uri()] == page.requests
    assert [] == page.errors


def test_hostile_names_are_shown_as_text(browser, tmp_path):
    from tests.render.test_view import HOSTILE, HOSTILE_CONFIG
    cfg = tmp_path / "hostile.yaml"
    cfg.write_text(HOSTILE_CONFIG)
    out = tmp_path / "h.html"
    assert 0 == runner.invoke(app, ["view", str(cfg), "--out", str(out)]).exit_code
    page = Page(browser, out)
    page.tab.wait_for_timeout(100)
    assert [] == page.dialogs and [] == page.errors
    assert "</ScRiPt><script>alert(1)</script>" == page.tab.inner_text("#title")
    assert 0 == page.tab.eval_on_selector_all("img", "es => es.length")
    assert HOSTILE in page.tab.inner_text("#net-card")


@pytest.mark.parametrize("name", VIEWPORTS)
def test_screenshots_at_both_viewports(browser, seed_html, tmp_path, name):
    w, h = VIEWPORTS[name]
    page = Page(browser, seed_html, (w, h))
    page.epoch_index(60)
    page.tab.click('[data-param="w11"] .handle')
    # nothing wider than the window: no sideways scrolling on a phone
    assert w >= page.tab.evaluate("document.documentElement.scrollWidth")
    shot = tmp_path / f"view-{name}.png"
    page.tab.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000
    assert [] == page.errors
