"""Tool turns in real kernels: --approve through the kernel's stdin (as JupyterLab and Notebook 7
answer it) and without stdin (nbclient), --code as the kernel's set_next_input payload, and a
frozen Run All of a saved notebook that replays its tool turns with the gateway stopped and no
function run."""

from __future__ import annotations

import os
import sys

import pytest

from elk_jupyter.records import notebooks
from tests.fake_gateway import FakeGateway
from tests.kernel import Kernel
from tests.recording import execute, notebook
from tests.test_records import replies

KEY = "sk-elk-TOOLS-kernel-9d1e"
DEFINE = (
    "import os, pathlib\n"
    "def touch(name: str) -> str:\n"
    '    """Create a marker file."""\n'
    "    pathlib.Path(os.environ['MARKS'], name).write_text('x')\n"
    "    return 'made ' + name\n"
)


@pytest.fixture
def env(tmp_path):
    gateway = FakeGateway()
    marks = tmp_path / "marks"
    marks.mkdir()
    values = {
        "ELK_API_KEY": KEY,
        "ELK_BASE_URL": gateway.base_url,
        "ELK_MODEL": "fake-small",
        "ELK_REPLAY": "off",
        "ELK_CACHE_DIR": str(tmp_path / "cache"),
        "MARKS": str(marks),
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    yield gateway, values, marks
    gateway.close()


@pytest.fixture
def kernel(env):
    _, values, _ = env
    k = Kernel({**os.environ, **values})
    assert k.execute("%load_ext elk_jupyter").status == "ok"
    assert k.execute(DEFINE).status == "ok"
    yield k
    k.close()


def test_approve_asks_through_the_kernels_stdin_and_a_no_declines(env, kernel):
    gateway, _, marks = env
    gateway.plan(tool_calls=[("touch", '{"name": "a"}'), ("touch", '{"name": "b"}')], text="")
    gateway.plan(text="done")
    run = kernel.execute("%%chat --tools touch --approve\nMake two", answers=["no", "y"])
    assert run.status == "ok", run.error_text
    assert run.prompts == ['elk: run tool touch({"name": "a"})? [y/N] ', 'elk: run tool touch({"name": "b"})? [y/N] ']
    assert sorted(p.name for p in marks.iterdir()) == ["b"]
    tool_messages = [m["content"] for m in gateway.bodies()[-1]["messages"] if m["role"] == "tool"]
    assert tool_messages == ['{"error": "the user declined this call"}', "made b"]


def test_approve_without_stdin_declines_and_says_why(env, kernel):
    gateway, _, marks = env
    gateway.plan(tool_calls=[("touch", '{"name": "a"}')], text="")
    gateway.plan(text="done")
    run = kernel.execute("%%respond --tools touch --approve\nMake one")  # stdin not allowed, as in nbclient
    assert run.status == "ok", run.error_text
    assert "cannot ask about touch here (the front-end takes no input): declined" in run.stdout
    assert list(marks.iterdir()) == []


def test_code_is_a_set_next_input_payload(env, kernel):
    gateway, _, _ = env
    gateway.plan(text="Here:\n\n```python\ntouch('c')\n```")
    run = kernel.execute("%%chat --code\nGive me code")
    assert run.status == "ok", run.error_text
    assert run.payload == [{"source": "set_next_input", "text": "touch('c')", "replace": False}]
    assert "put into the next cell" in run.stdout


def test_a_frozen_run_all_replays_tool_turns_without_running_the_functions(env, tmp_path):
    gateway, values, marks = env
    gateway.plan(tool_calls=[("touch", '{"name": "first"}')], text="")
    gateway.plan(text="made it")
    gateway.plan(tool_calls=[("touch", '{"name": "second"}')], text="")
    gateway.plan(text="made that too")
    cells = ["%load_ext elk_jupyter", DEFINE, "%%chat --tools touch\nMake one", "%%respond --tools touch\nAnother"]
    path = tmp_path / "tools.ipynb"
    execute(notebook(cells), {**values, "ELK_REPLAY": "auto"}, path)
    assert sorted(p.name for p in marks.iterdir()) == ["first", "second"]
    for mark in marks.iterdir():
        mark.unlink()
    gateway.close()  # nothing answers: any request would fail the run
    offline = dict(values, ELK_REPLAY="only", ELK_CACHE_DIR=str(tmp_path / "empty"), JPY_SESSION_NAME=str(path))
    replayed = execute(notebooks.read_notebook(path), offline, tmp_path / "replayed.ipynb")
    assert replies(replayed) == ["made it", "made that too"]
    assert list(marks.iterdir()) == [], "a replayed tool turn ran a function"
    steps = [r["turn"]["reply"]["steps"] for r in notebooks.iter_records(replayed)]
    assert [s[0]["calls"][0]["output"] for s in steps] == ["made first", "made second"]


def test_an_interrupt_while_a_function_runs_is_one_line_and_the_next_cell_works(env, kernel):
    gateway, _, _ = env
    assert kernel.execute("import time\ndef hang() -> str:\n    time.sleep(60)\n    return 'late'").status == "ok"
    gateway.plan(tool_calls=[("hang", "{}")], text="")
    run = kernel.execute("%%chat --tools hang\nWait", interrupt_after=2)
    assert run.status == "error"
    assert run.error["ename"] == "StreamError"
    assert "interrupted by the user while the tools ran" in run.error["evalue"]
    assert len(run.error["traceback"]) == 1 and KEY not in run.error_text
    assert kernel.execute("%%chat\nStill there?").status == "ok"


def test_the_saved_output_shows_the_images_sent(env, kernel):
    pixel = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    assert kernel.execute(f"import base64\npixel = base64.b64decode({pixel!r})").status == "ok"
    run = kernel.execute("%%chat --image pixel --image https://example.com/cat.jpg\nWhat is it?")
    assert run.status == "ok", run.error_text
    data = run.last_bundle()["data"]
    view = data["application/vnd.elk-jupyter.turn.v1+json"]
    assert view["images"] == [
        {"label": "pixel · image/png · 70 bytes", "src": f"data:image/png;base64,{pixel}"},
        {"label": "https://example.com/cat.jpg · URL", "src": ""},
    ]
    assert (
        data["text/markdown"].splitlines()[2]
        == r"*sent pixel · image/png · 70 bytes; https\://example.com/cat.jpg · URL*"  # never a link
    )
