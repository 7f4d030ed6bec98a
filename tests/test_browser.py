"""The generated pages in a real headless browser: Debian's chromium driven by Playwright.

Never a downloaded browser build: ``playwright install`` is not used; the system's
``/usr/bin/chromium`` (or $MS_CHROMIUM) is launched directly. Without chromium or Playwright
these tests skip, except under CI (the environment variable ``CI`` set), where they fail.

Screenshots of every page are saved as test artefacts in ``$MS_TEST_ARTIFACTS``, by default
``tests/artifacts/`` (ignored by git).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from modelsurgeon.cli.main import cli

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_models"
FIXTURES = ROOT / "tests" / "fixtures" / "mxnet"
ARTIFACTS = Path(os.environ.get("MS_TEST_ARTIFACTS") or ROOT / "tests" / "artifacts")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]


def _unavailable(why: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but the browser tests cannot run: {why}")
    pytest.skip(why)


def _chromium() -> str | None:
    for candidate in (os.environ.get("MS_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser",
                      shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright is not installed (pip install playwright; never 'playwright install')")
    executable = _chromium()
    if executable is None:
        _unavailable("no system chromium (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def _run(*args: Any, code: int = 0) -> None:
    result = CliRunner().invoke(cli, [str(a) for a in args], prog_name="modelsurgeon")
    assert result.exit_code == code, f"{args}\n{result.stdout}\n{result.stderr}\n{result.exception!r}"


@pytest.fixture(scope="session")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every kind of page, made with the project's own commands."""
    folder = tmp_path_factory.mktemp("pages")
    made = {name: folder / f"{name}.html" for name in
            ("cnn", "cnn-named", "tutorial", "mobilenet", "resnet34", "diff")}
    _run("graph", SAMPLES / "cnn.h5", "-o", made["cnn"])
    _run("graph", SAMPLES / "cnn-named.h5", "-o", made["cnn-named"])
    _run("graph", SAMPLES / "tutorial.h5", "-o", made["tutorial"])
    _run("graph", FIXTURES / "zoo" / "mobilenet0.25" / "mobilenet0.25-0000.params", "-o", made["mobilenet"],
         "--input-shape", "1,3,64,64")
    _run("graph", FIXTURES / "symbols" / "resnet34_v1-symbol.json", "-o", made["resnet34"],
         "--input-shape", "1,3,64,64")
    cnn3 = folder / "cnn3.h5"
    _run("replace-head", SAMPLES / "cnn.h5", "-o", cnn3, "--classes", "3", "--seed", "0")
    _run("diff", SAMPLES / "cnn.h5", cnn3, "--html", made["diff"], code=1)
    return made


class Visit:
    """An open page, with every request it tried and every error it logged."""

    def __init__(self, browser: Any, path: Path) -> None:
        self.context = browser.new_context(viewport={"width": 1400, "height": 900})
        self.page = self.context.new_page()
        self.url = path.resolve().as_uri()
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))

        def guard(route: Any) -> None:  # anything but the page itself is refused (and recorded above)
            if route.request.url == self.url:
                route.continue_()
            else:
                route.abort()

        self.context.route("**/*", guard)
        self.page.goto(self.url)
        self.data: dict[str, Any] = json.loads(self.page.locator("#ms-data").text_content() or "{}")

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def visit(browser: Any, pages: dict[str, Path]) -> Iterator[Any]:
    opened: list[Visit] = []

    def open_page(name: str) -> Visit:
        opened.append(Visit(browser, pages[name]))
        return opened[-1]

    yield open_page
    for page in opened:
        page.close()


def _shot(visit: Visit, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    visit.page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


#: What the page shows after layer ``i`` was clicked (one round trip instead of several).
SHOWN = """i => {
  const node = document.getElementById('n' + i);
  return {id: node.getAttribute('data-id'), selected: node.classList.contains('selected'),
          title: document.querySelector('#panel h2').innerText.trim(),
          keys: Array.from(document.querySelectorAll('#panel table.tensors td.key'),
                           td => td.firstChild ? td.firstChild.textContent : '')};
}"""


@pytest.mark.parametrize("name", ["cnn", "cnn-named", "tutorial", "mobilenet", "resnet34", "diff"])
def test_every_layer_is_present_and_shows_its_tensors_when_clicked(visit, name):
    opened = visit(name)
    page, layers = opened.page, opened.data["layers"]
    assert page.locator("svg.ms-picture g.layer").count() == len(layers) > 0
    for i, layer in enumerate(layers):
        # a real mouse click at the box, scrolled into view; if anything covered the box, the click would
        # land elsewhere and the panel below would show another layer
        page.locator(f"#n{i}").click(force=True)
        shown = page.evaluate(SHOWN, i)
        assert shown["id"] == layer["id"] and shown["selected"]
        assert shown["title"] == layer["name"] + (" HEAD" if layer.get("head") else "")
        assert shown["keys"] == [t["key"] for t in layer["tensors"]], layer["name"]
    _shot(opened, f"browser-{name}")
    assert opened.errors == []
    assert opened.requests == [opened.url]  # the page itself, and not one request more


def test_hovering_a_layer_shows_its_tensors(visit):
    opened = visit("cnn")
    page = opened.page
    index = next(i for i, layer in enumerate(opened.data["layers"]) if layer["name"] == "features.1")
    page.locator(f"#n{index}").hover()
    tip = page.locator("#tip")
    assert tip.is_visible()
    text = tip.inner_text()
    for key in ("features.1.gamma", "features.1.beta", "features.1.running_mean", "features.1.running_var"):
        assert key in text
    page.mouse.move(5, 890)
    assert not tip.is_visible()
    assert opened.requests == [opened.url]


def test_search_zoom_and_keyboard(visit):
    opened = visit("resnet34")
    page = opened.page
    page.keyboard.press("/")
    page.keyboard.type("dense")
    assert page.locator("#found").inner_text() == "1 found"
    page.keyboard.press("Enter")
    assert page.locator("#panel h2").inner_text().startswith("resnetv10_dense0_fwd")
    assert page.locator("g.layer.match").count() == 1
    width = page.locator("svg.ms-picture").bounding_box()["width"]
    page.locator("[data-zoom=fit]").click()
    assert page.locator("svg.ms-picture").bounding_box()["height"] <= 900
    page.locator("[data-zoom=one]").click()
    assert page.locator("svg.ms-picture").bounding_box()["width"] >= width
    page.locator("#canvas").focus()
    page.keyboard.press("Escape")
    assert page.locator("#panel h2").inner_text() == "Layers"
    _shot(opened, "browser-resnet34-search")
    assert opened.errors == [] and opened.requests == [opened.url]


def test_diff_report_opens_on_the_head(visit):
    opened = visit("diff")
    page = opened.page
    changed = page.locator("g.layer.state-reshaped")
    assert changed.count() == 1 and changed.get_attribute("data-id") == "output"
    assert page.locator("g.layer.state-changed, g.layer.state-added, g.layer.state-removed").count() == 0
    assert changed.is_visible() and changed.bounding_box()["y"] < 900  # scrolled to the change on load
    assert page.locator(".verdict").inner_text() == "1 of 10 layers touched: output."
    counts = dict(zip(page.locator("table.counts th").all_inner_texts(), page.locator("table.counts td").all_inner_texts()))
    assert counts["reshaped / retyped"] == "2" and counts["unchanged"] == "14"
    page.locator("#panel tr.rowlink").first.click()
    assert page.locator("#panel h2").inner_text().startswith("output")
    assert opened.errors == [] and opened.requests == [opened.url]


def test_a_page_that_tried_the_network_would_be_caught(browser, tmp_path):
    """The guard itself works: a page with an external image is recorded (and blocked)."""
    page_file = tmp_path / "leaky.html"
    page_file.write_text('<!DOCTYPE html><img src="http://modelsurgeon.invalid/x.png"><script id="ms-data" '
                         'type="application/json">{}</script>')
    opened = Visit(browser, page_file)
    try:
        assert opened.requests[0] == opened.url and "modelsurgeon.invalid" in opened.requests[1]
    finally:
        opened.close()
