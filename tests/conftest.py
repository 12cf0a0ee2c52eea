"""Shared fixtures (isolation from the user's settings, the scripted server, the fake gateway,
llmock) and the test tiers.

Tiers (pytest markers, assigned here so test files need no edits; README "Running the tests by tier"):
- ``browser``: everything under tests/e2e (a Jupyter server and Chromium);
- ``kernel``: a test that starts another process (an ipykernel, nbclient, a Jupyter server, the CLI
  or IPython in a subprocess, llmock), found by following the names its code, its helpers and its
  fixtures use to the modules that start processes; and the few long in-process sweeps (hundreds of
  hypothesis examples, 2 MB streams) marked ``@pytest.mark.kernel`` by hand to keep unit quick;
- ``unit``: the rest, in this one process (in-process IPython shells and in-thread HTTP servers
  included). ``pytest -m unit`` is the quick loop; an audit hook fails a unit test that starts a
  process anyway, so a missed case shows itself instead of slowing the tier down.
"""

from __future__ import annotations

import contextlib
import inspect
import socket
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

from tests.environment import elk_env, shell_at
from tests.fake_gateway import FakeGateway
from tests.recording import CELLS, KEY, execute, notebook
from tests.scripted_server import ScriptedServer

TRANSCRIPTS = Path(__file__).parent / "fixtures" / "transcripts"
LLMOCK = Path(sys.executable).with_name("llmock")
TIERS = ("unit", "kernel", "browser")
# What starts another process: reaching any of these makes a test ``kernel`` tier.
PROCESS_MODULES = {"subprocess", "jupyter_client", "nbclient", "multiprocessing", "tests.kernel", "tests.recording"}


def pytest_collection_modifyitems(config, items):
    """Give every test its tier (an explicit tier marker on a test wins)."""
    seen: dict = {}
    for item in items:
        if any(item.get_closest_marker(tier) for tier in TIERS):
            continue
        if Path(item.path).is_relative_to(Path(__file__).parent / "e2e"):
            item.add_marker(pytest.mark.browser)
        elif any(_starts_processes(f, seen) for f in _code_of(item)):
            item.add_marker(pytest.mark.kernel)
        else:
            item.add_marker(pytest.mark.unit)


def _code_of(item) -> list:
    """The test function and every fixture function it uses (transitively)."""
    found = [getattr(item, "function", None)]
    info = getattr(item, "_fixtureinfo", None)
    for definitions in info.name2fixturedefs.values() if info else ():
        found += [d.func for d in definitions]
    return [f for f in found if f is not None]


def _starts_processes(func, seen: dict) -> bool:
    """Whether ``func``'s code, or a test-suite function or class it names, reaches PROCESS_MODULES."""
    func = inspect.unwrap(getattr(func, "__func__", func))
    if func in seen:
        return seen[func]
    seen[func] = False  # a cycle between helpers adds nothing
    code = getattr(func, "__code__", None)
    scope = getattr(func, "__globals__", {})
    if code is None:  # a class: its methods
        members = vars(func).values() if isinstance(func, type) else ()
        seen[func] = any(_starts_processes(m, seen) for m in members if inspect.isfunction(m))
        return seen[func]
    names, stack = set(), [code]
    while stack:
        current = stack.pop()
        names |= set(current.co_names)
        stack += [c for c in current.co_consts if isinstance(c, types.CodeType)]
    if any(name in PROCESS_MODULES or name.split(".")[0] in PROCESS_MODULES for name in names):
        seen[func] = True  # imported inside the function
        return True
    for name in names:
        value = scope.get(name)
        module = value.__name__ if isinstance(value, types.ModuleType) else getattr(value, "__module__", None)
        if module in PROCESS_MODULES or (module or "").split(".")[0] in PROCESS_MODULES:
            seen[func] = True
        elif (module or "").startswith("tests") and (inspect.isfunction(value) or inspect.isclass(value)):
            seen[func] = _starts_processes(value, seen)
        if seen[func]:
            return True
    return False


_UNIT = types.SimpleNamespace(test=False, started=[])  # the running test (tests run one at a time)


def _no_process_in_unit_tests(event: str, args) -> None:
    if event == "subprocess.Popen" and _UNIT.test:
        _UNIT.started.append(str(args[1])[:120])


sys.addaudithook(_no_process_in_unit_tests)


def pytest_sessionstart(session):
    # matplotlib builds its font cache the first time it is imported on a machine, running fc-list:
    # on a fresh machine, once here, not inside whichever unit test draws the first figure
    with contextlib.suppress(ImportError):
        import matplotlib.font_manager  # noqa: F401


@pytest.fixture(autouse=True)
def _unit_tests_stay_in_process(request):
    """A unit test that starts a process fails: it belongs to the kernel tier (mark it so)."""
    _UNIT.test, _UNIT.started = request.node.get_closest_marker("unit") is not None, []
    yield
    started, _UNIT.test = _UNIT.started, False
    assert not started, f"a unit test started {started}: mark it @pytest.mark.kernel"


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


# -- one fixture per meaning: ``gateway`` is always a FakeGateway (scope in the name when it is
# shared), ``ip`` always the in-process shell pointed at ``gateway``; other servers have their own names.
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


@pytest.fixture(scope="session")
def session_gateway():
    """One ``FakeGateway`` for the session (the browser tests' Jupyter server points at it)."""
    server = FakeGateway()
    yield server
    server.close()


@pytest.fixture
def ip(gateway, monkeypatch, tmp_path):
    """The in-process IPython shell, elk loaded, a fresh notebook state (as after a kernel restart)
    pointed at ``gateway`` with ``tests.environment.KEY``: replay off, cache in tmp_path, no widget,
    no cell id (each cell is a new cell), working directory tmp_path."""
    shell, _ = shell_at(monkeypatch, tmp_path, gateway.base_url)
    monkeypatch.chdir(tmp_path)
    yield shell
    shell.parent_header = {}


@pytest.fixture
def audio_ip(scripted, monkeypatch, tmp_path):
    """``ip`` pointed at ``scripted`` (raw audio streams a test writes) with an audio model; the
    working directory is where a kernel without a known notebook puts big clips."""
    shell, _ = shell_at(monkeypatch, tmp_path, scripted.base_url, model="gpt-audio-test")
    monkeypatch.chdir(tmp_path)
    yield shell
    shell.parent_header = {}


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
