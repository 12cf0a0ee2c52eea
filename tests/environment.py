"""What the tests share to run turns for real: the environment a shell or a kernel runs under, a
fresh in-process shell, and the public read of a notebook's conversations. Fixtures are in conftest."""

from __future__ import annotations

import os
import sys

from IPython import get_ipython
from IPython.testing.globalipapp import start_ipython


def elk_env(base_url: str, key: str, cache_dir, *, model: str = "fake-small", replay: str = "off", **more) -> dict:
    """The ELK_* settings of a test (and PYTHONPATH, so a kernel imports this checkout)."""
    env = {
        "ELK_API_KEY": key,
        "ELK_BASE_URL": base_url,
        "ELK_MODEL": model,
        "ELK_REPLAY": replay,
        "ELK_CACHE_DIR": str(cache_dir),
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    return {**env, **more}


def kernel_env(*args, **kwargs) -> dict:
    """``elk_env`` over this process's environment: what a kernel subprocess is started with."""
    return dict(os.environ, **elk_env(*args, **kwargs))


def use_env(monkeypatch, env: dict, unset: tuple[str, ...] = ()) -> None:
    """Apply ``env`` to this process (an in-process shell reads it), removing ``unset``."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in unset:
        monkeypatch.delenv(name, raising=False)


def fresh_shell(**traits):
    """The test shell with a new ElkMagics (a fresh notebook state, as a kernel restart gives;
    the cache on disk stays); ``traits`` are set on it. Returns (shell, magics)."""
    from elk_jupyter.front.magics import ElkMagics

    shell = start_ipython() or get_ipython()  # one global test shell per process
    shell.run_line_magic("load_ext", "elk_jupyter")
    shell.config.pop("ElkMagics", None)  # an earlier test's %config must not reach this one
    magics = ElkMagics(shell)
    magics.retries = 0
    for name, value in traits.items():
        setattr(magics, name, value)
    shell.register_magics(magics)
    shell.parent_header = {}
    return shell, magics


KEY = "sk-elk-magics-test-7Q2Z"  # the key of the ``ip`` shell (tests assert it never leaks)


def shell_at(monkeypatch, tmp_path, base_url: str, replay: str = "off", **env):
    """The test shell pointed at ``base_url`` with ``KEY``, its cache in ``tmp_path``, no widget, no
    notebook file, and a fresh notebook state with ``replay``. Returns (shell, magics)."""
    use_env(
        monkeypatch,
        elk_env(base_url, KEY, tmp_path / "cache", ELK_NO_WIDGET="1", **env),
        unset=("ELK_REPLAY", "JPY_SESSION_NAME"),
    )
    return fresh_shell(replay=replay)


def conversations(ip):
    """The notebook's conversations, read through the magics' public ``conversations``."""
    return ip.magics_manager.registry["ElkMagics"].conversations


def turns(ip, name: str = "default") -> list:
    """A conversation's turns (failed ones included), oldest first."""
    return conversations(ip).conversation(name).turns


def replay_offline(notebook, tmp_path, monkeypatch):
    """Execute a committed notebook in a real kernel as the main job does: ``ELK_REPLAY=only``, an
    empty cache, nothing listening where it was recorded (llama-server on 127.0.0.1:8080)."""
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.delenv("ELK_API_KEY", raising=False)
    for key, value in {
        "ELK_REPLAY": "only",
        "ELK_BASE_URL": "http://127.0.0.1:8080/v1",
        "ELK_MODEL": "smollm2",
        "JPY_SESSION_NAME": str(notebook),
        "ELK_CACHE_DIR": str(tmp_path / "empty"),
        "PYTHONPATH": os.pathsep.join(sys.path),
    }.items():
        monkeypatch.setenv(key, value)
    nb = nbformat.read(notebook, as_version=4)
    NotebookClient(nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(tmp_path)}}).execute()
    return nb
