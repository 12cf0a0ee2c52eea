"""Regenerate the README's panel pictures, docs/panel-light.png and docs/panel-dark.png: a finished
``%%chat`` turn (reasoning folded, highlighted code, math, usage footer) in JupyterLab 4, light and
dark, in Debian's headless Chromium against the local fake gateway (no key, no network).

Run by hand from the repository root (it is not a test: it asserts nothing and writes into docs/)::

    PYTHONPATH=. .venv/bin/python docs/screenshots.py

It drives the browser tests' own harness (tests/e2e/conftest.py, tests/e2e/lab.py).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.e2e.conftest import CHROME_ARGS, CHROMIUM, KEY, lab_home, lab_server  # noqa: E402
from tests.e2e.lab import NB, finished, open_and_run, write  # noqa: E402
from tests.e2e.test_panel_browser import USAGE  # noqa: E402
from tests.fake_gateway import FakeGateway  # noqa: E402

REPLY = (
    "Server-Sent Events keep **one HTTP response open** and push `data:` lines:\n\n"
    "- the reply streams as it is generated\n- the reasoning folds away once the answer starts\n\n"
    "```python\nfor event in client.iter_chat(messages):\n    print(event)  # one per data: line\n```\n\n"
    "With $n$ events of $b$ bytes each, the traffic is $$T = n \\cdot (b + 6)$$"
)
THEMES = {"light": "JupyterLab Light", "dark": "JupyterLab Dark"}


def shoot(page, jupyter: dict, gateway: FakeGateway, theme: str, target: Path) -> None:
    """One finished turn in ``theme``, its panel saved as ``target``."""
    themes = jupyter["settings"] / "@jupyterlab" / "apputils-extension" / "themes.jupyterlab-settings"
    themes.parent.mkdir(parents=True, exist_ok=True)
    themes.write_text(f'{{"theme": "{THEMES[theme]}"}}')
    gateway.plan(
        text=REPLY,
        reasoning="The user asks about SSE. Explain briefly, with a short example.",
        delay=0.01,
        usage=USAGE,
    )
    name = f"screenshot_{theme}.ipynb"
    source = "%load_ext elk_jupyter\nget_ipython().run_cell_magic('chat', '-t 0', 'What are Server-Sent Events?')"
    write(jupyter["root"], name, source)
    open_and_run(page, jupyter, "lab", name)
    finished(page, "completed")
    page.wait_for_selector(f"{NB} .elk-answer .hljs-keyword")  # the lazily loaded grammar
    page.wait_for_function(
        "(NB) => document.querySelectorAll(NB + ' .elk-answer .elk-math mjx-container').length === 3", arg=NB
    )
    page.locator(f"{NB} .elk-panel").first.screenshot(path=str(target))
    themes.unlink()


def main() -> None:
    from playwright.sync_api import sync_playwright

    gateway = FakeGateway()
    with tempfile.TemporaryDirectory() as scratch:
        root, home, data = (Path(scratch) / part for part in ("nbroot", "jhome", "jdata"))
        for folder in (root, home, data):
            folder.mkdir()
        env = dict(
            os.environ,
            **lab_home(home, data),
            ELK_API_KEY=KEY,
            ELK_BASE_URL=gateway.base_url,
            ELK_MODEL="fake-small",
            ELK_REPLAY="off",
            ELK_CACHE_DIR=str(home / "cache"),
            PYTHONPATH=str(REPO),
        )
        with lab_server(root, env, log_name="screenshots-server.log") as base, sync_playwright() as playwright:
            jupyter = {"url": base, "root": root, "settings": home / "settings"}
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROME_ARGS)
            for theme in THEMES:
                context = browser.new_context(viewport={"width": 1100, "height": 900})
                target = REPO / "docs" / f"panel-{theme}.png"
                shoot(context.new_page(), jupyter, gateway, theme, target)
                context.close()
                print(f"wrote {target.relative_to(REPO)}")
            browser.close()
    gateway.close()


if __name__ == "__main__":
    main()
