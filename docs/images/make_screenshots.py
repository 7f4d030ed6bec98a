"""Make the README's screenshots with the project's own commands and a headless browser.

    python docs/images/make_screenshots.py

Needs Playwright for Python (``pip install playwright``) and Debian's ``chromium``
(``apt-get install chromium``); it never downloads a browser (no ``playwright install``).
Writes ``graph-cnn.png`` (the zoo's ResNet-18 v1, drawn by ``modelsurgeon graph``) and
``diff-report.png`` (``modelsurgeon diff --html`` of the CNN sample against a
``replace-head --classes 3`` result) beside this script.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]


def modelsurgeon(*args: object, cwd: Path, ok: tuple[int, ...] = (0,)) -> None:
    """Run the command line as a user would (``modelsurgeon ARGS`` in ``cwd``)."""
    command = [sys.executable, "-c", "from modelsurgeon.cli.main import main; main()", *map(str, args)]
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode not in ok:
        sys.exit(f"modelsurgeon {' '.join(map(str, args))} failed ({done.returncode}):\n{done.stderr}")


def chromium() -> str:
    for candidate in (os.environ.get("MS_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and os.path.isfile(candidate):
            return candidate
    sys.exit("no chromium found (apt-get install chromium, or set MS_CHROMIUM)")


def layer(page: Any, name: str) -> Any:
    """The drawn box of the layer called ``name`` (found through the page's own data)."""
    index = page.evaluate("name => JSON.parse(document.getElementById('ms-data').textContent)"
                          ".layers.findIndex(layer => layer.name === name)", name)
    return page.locator(f"#n{index}")


def main() -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as work:
        folder = Path(work)  # file names relative to it, so the pages' titles are short
        shutil.copyfile(ROOT / "sample_models" / "cnn.h5", folder / "cnn.h5")
        modelsurgeon("zoo", "resnet18_v1", "-o", "resnet18.h5", "--classes", "10", "--seed", "0", cwd=folder)
        modelsurgeon("graph", "resnet18.h5", "-o", "resnet18.html", cwd=folder)
        modelsurgeon("replace-head", "cnn.h5", "-o", "cnn-3class.h5", "--classes", "3", "--seed", "0", cwd=folder)
        modelsurgeon("diff", "cnn.h5", "cnn-3class.h5", "--html", "report.html", cwd=folder, ok=(1,))
        graph_page, report = folder / "resnet18.html", folder / "report.html"

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1360, "height": 860}, device_scale_factor=1.5)
            page.goto(graph_page.as_uri())
            # the first downsampling residual block: a fork, a shortcut lane and the join
            layer(page, "features.5.0.body.0").click()
            layer(page, "features.4.1/relu").evaluate(
                "node => node.scrollIntoView({block: 'start'})")
            page.locator("#canvas").evaluate("canvas => { canvas.scrollTop -= 40; }")
            page.mouse.move(1, 1)
            page.screenshot(path=str(HERE / "graph-cnn.png"))

            page = browser.new_page(viewport={"width": 1360, "height": 1080}, device_scale_factor=1.5)
            page.goto(report.as_uri())
            page.locator("[data-zoom=one]").click()  # the panel keeps its overview: what changed
            page.mouse.move(1, 1)
            page.screenshot(path=str(HERE / "diff-report.png"))
            browser.close()
    print(f"wrote {HERE / 'graph-cnn.png'} and {HERE / 'diff-report.png'}")


if __name__ == "__main__":
    main()
