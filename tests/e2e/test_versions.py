"""The built wheel in fresh venvs with the oldest and the newest JupyterLab 4 and Notebook 7: `jupyter labextension
list` says the renderer is OK, and in Chromium, with no kernel, the renderer draws every saved turn of the committed
quickstart and of the same notebook re-executed by today's code (issue 26).

The venvs are cached under ``$ELK_TEST_VENVS`` (default ``~/.cache/elk-jupyter-tests/venvs``), one per entry of
VERSIONS; the first run creates them from the package index (a minute or two each), later runs only reinstall the
wheel (and upgrade the "newest" one to the newest 4.x / 7.x). Delete the folder to start afresh.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from elk_jupyter.display.turn_output import TURN_MIME, whole_view
from tests.conftest import free_port
from tests.e2e.conftest import ARTIFACTS, LAB_ARGS, REPO
from tests.e2e.lab import NB, UIS

QUICKSTART = REPO / "notebooks" / "quickstart.ipynb"
VENVS = Path(os.environ.get("ELK_TEST_VENVS") or Path.home() / ".cache" / "elk-jupyter-tests" / "venvs")
NO_KERNELS = "--KernelSpecManager.allowed_kernelspecs=['elk-no-such-kernel']"  # "no kernel", as on another machine

# name: (what pip installs beside the wheel, the versions it must end up with (None: the newest), the UIs to open).
# Notebook 7.0.0 needs jupyterlab>=4.0.2: its oldest is paired with the oldest JupyterLab it accepts.
VERSIONS = {
    "jupyterlab-4.0.0": (["jupyterlab==4.0.0"], {"jupyterlab": "4.0.0"}, ["lab"]),
    "notebook-7.0.0": (["notebook==7.0.0", "jupyterlab==4.0.2"], {"notebook": "7.0.0"}, ["notebook7"]),
    "newest": (["jupyterlab>=4,<5", "notebook>=7,<8"], {"jupyterlab": None, "notebook": None}, ["lab", "notebook7"]),
}
APPS = {"lab": "jupyterlab", "notebook7": "notebook"}
CASES = [(name, ui) for name, (_, _, uis) in VERSIONS.items() for ui in uis]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(REPO)],
        check=True,
        capture_output=True,
    )
    return next(out.glob("elk_jupyter-*.whl"))


def _clean_env() -> dict:
    """This environment less what would make the venv see this one's packages (PYTHONPATH: pip would count them)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "PYTHONPATH", "VIRTUAL_ENV"))}


def _pip(venv: Path, *args: str) -> None:
    command = [str(venv / "bin" / "python"), "-m", "pip", "-q", "--disable-pip-version-check", *args]
    done = subprocess.run(command, capture_output=True, text=True, env=_clean_env())
    assert done.returncode == 0, done.stderr[-3000:]


def _version(venv: Path, module: str) -> str:
    code = f"import {module}; print({module}.__version__)"
    python = str(venv / "bin" / "python")
    return subprocess.run([python, "-c", code], capture_output=True, text=True, env=_clean_env()).stdout.strip()


@pytest.fixture(scope="module")
def venvs(wheel):
    """name -> the venv's path, made (or refreshed) on first use, with the wheel installed as a user would."""
    made = {}

    def get(name: str) -> Path:
        if name not in made:
            specs, pinned, _ = VERSIONS[name]
            venv = VENVS / name
            if not (venv / "bin" / "python").exists():
                subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=_clean_env())
            _pip(venv, "install", "--upgrade", *specs, str(wheel))
            _pip(venv, "install", "--force-reinstall", "--no-deps", str(wheel))  # this checkout's, whatever cached
            for module, version in pinned.items():
                assert version is None or _version(venv, module) == version, (name, module)
            made[name] = venv
        return made[name]

    return get


@pytest.fixture(scope="module")
def notebooks(tmp_path_factory):
    """The committed quickstart, and the same notebook re-executed offline by this checkout in a real kernel."""
    from tests.environment import replay_offline

    root = tmp_path_factory.mktemp("versions-root")
    (root / "committed.ipynb").write_bytes(QUICKSTART.read_bytes())
    with pytest.MonkeyPatch.context() as monkeypatch:
        nb = replay_offline(QUICKSTART, tmp_path_factory.mktemp("replay"), monkeypatch)
    nbformat.write(nb, root / "reexecuted.ipynb")
    return root


def turn_texts(path: Path) -> list[str]:
    nb = nbformat.read(path, as_version=4)
    return [
        whole_view(o["data"], o["metadata"])["text"]  # the answer, kept in the record (docs/record.md)
        for c in nb.cells
        for o in c.get("outputs", [])
        if TURN_MIME in o.get("data", {})
    ]


def isolated_env(venv: Path, home: Path) -> dict:
    """The venv's own Jupyter: its share/jupyter holds the renderer the wheel installed; nothing of this user's."""
    env = _clean_env()
    settings = home / "settings"
    notify = settings / "@jupyterlab" / "apputils-extension"
    notify.mkdir(parents=True, exist_ok=True)
    (notify / "notification.jupyterlab-settings").write_text('{"fetchNews": "false", "checkForUpdates": false}')
    tracker = settings / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True, exist_ok=True)
    (tracker / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')  # every cell drawn, no scrolling
    return dict(
        env,
        PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_DATA_DIR=str(home / "data"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
    )


@contextlib.contextmanager
def server(venv: Path, ui: str, root: Path, env: dict, log_name: str):
    """``jupyter lab`` or ``jupyter notebook`` of the venv on a free port of 127.0.0.1, with no kernel to start."""
    port = free_port()
    ARTIFACTS.mkdir(exist_ok=True)
    log = open(ARTIFACTS / log_name, "w")
    cmd = [str(venv / "bin" / "python"), "-m", APPS[ui], *LAB_ARGS, f"--ServerApp.port={port}", NO_KERNELS]
    proc = subprocess.Popen([*cmd, f"--ServerApp.root_dir={root}"], cwd=root, env=env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(1200):
            assert proc.poll() is None, f"{APPS[ui]} exited with {proc.returncode}; see {log.name}"
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


def drawn_turns(browser, url: str, count: int) -> list[str]:
    """Open ``url`` in a fresh page, decline the kernel, wait for ``count`` renderer views; their answers' text."""
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    try:
        page.goto(url)
        page.wait_for_selector(f"{NB} .jp-Cell", timeout=90_000)
        dialog = page.locator(".jp-Dialog")
        with contextlib.suppress(Exception):  # the "select a kernel" dialog, where the version asks
            dialog.wait_for(timeout=15_000)
            no_kernel = dialog.locator("button", has_text="No Kernel")
            (no_kernel if no_kernel.count() else dialog.locator(".jp-mod-reject")).first.click()
        selector = f"{NB} .elk-turn-output .elk-panel"
        page.wait_for_function(
            "([s, n]) => document.querySelectorAll(s).length >= n", arg=[selector, count], timeout=60_000
        )
        page.wait_for_timeout(500)
        body = page.locator(NB).first.inner_text()
        assert "Loading widget" not in body and "Error displaying widget" not in body
        assert page.locator(selector).count() == count
        return page.locator(f"{selector} .elk-answer").all_text_contents()
    finally:
        context.close()


def words(text: str) -> set[str]:
    return {w.lower() for w in re.findall(r"\w{3,}", text)}


def same_answer(shown: str, text: str) -> bool:
    """The drawn answer holds the reply's words (Markdown syntax and code fences' info strings aside)."""
    expected = words(text)
    return bool(expected) and len(expected & words(shown)) >= 0.8 * len(expected)


@pytest.mark.timeout(1800)  # the first use of a venv creates it from the package index
@pytest.mark.parametrize(("name", "ui"), CASES)
def test_the_wheel_shows_saved_turns_in_this_version(name, ui, venvs, notebooks, browser, tmp_path):
    venv = venvs(name)
    env = isolated_env(venv, tmp_path / "home")
    listed = subprocess.run(
        [str(venv / "bin" / "jupyter"), "labextension", "list"], env=env, capture_output=True, text=True
    )
    line = next((ln for ln in (listed.stdout + listed.stderr).splitlines() if "elk-jupyter-renderer" in ln), "")
    assert "enabled" in line and "OK" in line, listed.stdout + listed.stderr
    assert "not compatible" not in listed.stdout + listed.stderr
    with server(venv, ui, notebooks, env, f"versions-{name}-{ui}.log") as base:
        for saved in ("committed.ipynb", "reexecuted.ipynb"):
            texts = turn_texts(notebooks / saved)
            assert len(texts) >= 5, saved  # every %%chat / %%respond turn of the quickstart left the bundle
            shown = drawn_turns(browser, base + UIS[ui].format(saved), len(texts))
            assert all(same_answer(s, t) for s, t in zip(shown, texts, strict=True)), (saved, shown, texts)
