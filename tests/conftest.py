"""Shared fixtures: isolation from the user's settings, the scripted server and llmock servers."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.environment import elk_env
from tests.fake_gateway import FakeGateway
from tests.recording import CELLS, KEY, execute, notebook
from tests.scripted_server import ScriptedServer

TRANSCRIPTS = Path(__file__).parent / "fixtures" / "transcripts"
LLMOCK = Path(sys.executable).with_name("llmock")


@pytest.fixture(autouse=True)
def _no_user_settings(monkeypatch):
    """A test never sees the developer's real key, gateway or model."""
    for name in ("ELK_API_KEY", "ELK_BASE_URL", "ELK_MODEL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def scripted():
    """A ``ScriptedServer``: ``scripted.queue(Script(...))``, then point a client at ``scripted.base_url``."""
    server = ScriptedServer()
    yield server
    server.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def llmock_server(*options: str):
    """``llmock serve --response-style echo`` on a free port with extra options; yields its base URL
    once it answers. Echo replies are "Hello! You said: <last user text>"."""
    port = free_port()
    process = subprocess.Popen(
        [
            str(LLMOCK),
            "serve",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "--log-level",
            "warning",
            "--response-style",
            "echo",
            *options,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"llmock did not start: {process.stderr.read().decode(errors='replace')}")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stderr.close()


@pytest.fixture(scope="session")
def llmock():
    """One echoing llmock for the whole session (its base URL)."""
    if not LLMOCK.exists():
        pytest.skip("llmock is not installed")
    with llmock_server() as base_url:
        yield base_url


@pytest.fixture
def gateway():
    """A ``FakeGateway`` (real HTTP, real SSE bytes) for one test."""
    server = FakeGateway()
    yield server
    server.close()


@pytest.fixture(scope="module")
def module_gateway():
    """One ``FakeGateway`` for a module whose kernel lives across its tests."""
    server = FakeGateway()
    yield server
    server.close()


# -- a notebook recorded through a real kernel (shared by the records and CLI tests)
@pytest.fixture
def recording_env(gateway, tmp_path):
    yield gateway, elk_env(gateway.base_url, KEY, tmp_path / "cache", replay="auto")


@pytest.fixture
def recorded(recording_env, tmp_path):
    gateway, values = recording_env
    path = tmp_path / "experiment.ipynb"
    execute(notebook(CELLS), values, path)
    return path, gateway, values
