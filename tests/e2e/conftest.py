"""Real-browser fixtures: one JupyterLab server (it serves Notebook 7 too), Debian's Chromium via
Playwright, and the local gateway the kernels talk to. Skipped only where Chromium or Playwright
is missing; CI installs both."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import free_port

CHROMIUM = "/usr/bin/chromium"
CHROME_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-dev-shm-usage",
]
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts"
KEY = "sk-elk-BROWSER-distinctive-31d7"

if (
    not Path(CHROMIUM).exists()
    or shutil.which("jupyter-lab") is None
    and not (Path(sys.executable).parent / "jupyter-lab").exists()
):
    pytest.skip("Debian's Chromium or JupyterLab is not installed (CI installs both)", allow_module_level=True)
pytest.importorskip("playwright")


LABEXTENSION = REPO / "elk_jupyter" / "labextension"  # the prebuilt renderer, as the wheel ships it
LAB_ARGS = [
    "--no-browser",
    "--ServerApp.ip=127.0.0.1",
    "--ServerApp.port_retries=0",
    "--IdentityProvider.token=",
    "--ServerApp.password=",
    "--ServerApp.disable_check_xsrf=True",
    "--allow-root",
    "--LabApp.news_url=None",
    "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
]


def lab_home(home: Path, data: Path) -> dict:
    """An isolated Jupyter home: config, settings, workspaces; ``data`` holds the notary (trust) and
    the renderer extension, so two servers sharing ``data`` trust the same notebooks."""
    settings = home / "settings"
    notify = settings / "@jupyterlab" / "apputils-extension"
    notify.mkdir(parents=True, exist_ok=True)
    (notify / "notification.jupyterlab-settings").write_text('{"fetchNews": "false", "checkForUpdates": false}')
    tracker = settings / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True, exist_ok=True)
    # Every cell in the DOM, so a test can read a long notebook without scrolling it.
    (tracker / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
    extension = data / "labextensions" / "elk-jupyter-renderer"
    if LABEXTENSION.is_dir() and not extension.exists():
        shutil.copytree(LABEXTENSION, extension)
    return dict(
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_DATA_DIR=str(data),
        # this checkout's renderer (in ``data``) before the one an install put in the environment
        JUPYTER_PREFER_ENV_PATH="0",
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
        IPYTHONDIR=str(home / "ipython"),
    )


@contextlib.contextmanager
def lab_server(root: Path, env: dict, *args: str, log_name: str = "jupyter-server.log"):
    """``jupyter lab`` on a free port of 127.0.0.1 (it serves Notebook 7 too), until the block ends."""
    port = free_port()
    ARTIFACTS.mkdir(exist_ok=True)
    log = open(ARTIFACTS / log_name, "w")
    cmd = [sys.executable, "-m", "jupyterlab", *LAB_ARGS, f"--ServerApp.port={port}", f"--ServerApp.root_dir={root}"]
    proc = subprocess.Popen([*cmd, *args], cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            if proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {proc.returncode}; see {log.name}")
            try:
                urllib.request.urlopen(base + "/api/status", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="session")
def jupyter(tmp_path_factory, session_gateway):
    root = tmp_path_factory.mktemp("nbroot")
    home = tmp_path_factory.mktemp("jhome")
    data = tmp_path_factory.mktemp("jdata")
    env = dict(
        os.environ,
        **lab_home(home, data),
        ELK_API_KEY=KEY,
        ELK_BASE_URL=session_gateway.base_url,
        ELK_MODEL="fake-small",
        ELK_REPLAY="off",
        ELK_CACHE_DIR=str(home / "cache"),
        PYTHONPATH=str(REPO),
    )
    with lab_server(root, env) as base:
        yield {"url": base, "root": root, "settings": home / "settings", "env": env, "data": data}


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROME_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, jupyter):
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    pg = context.new_page()
    pg.dialogs = []
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    yield pg
    context.close()
    base = jupyter["url"]
    for session in json.load(urllib.request.urlopen(base + "/api/sessions")):  # free the 2 cores
        urllib.request.urlopen(urllib.request.Request(f"{base}/api/sessions/{session['id']}", method="DELETE"))
