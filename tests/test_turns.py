"""The runner without IPython: an ``Ask`` and a ``Settings`` value, a small front-end, a real gateway.

Nothing here imports IPython or the magics: a turn is a value, run the same way from any front-end.
"""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from elk_jupyter.conversation.ask import Ask
from elk_jupyter.conversation.settings import Settings
from elk_jupyter.conversation.turns import TurnRunner
from elk_jupyter.errors import ConfigError, ElkError
from elk_jupyter.gateway.dialects import NAMES, dialect
from elk_jupyter.media import attachments
from elk_jupyter.records.cache_file import Cache
from elk_jupyter.tools import functions as tools

KEY = "sk-elk-turns-test-3F7Q"
PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


class Frontend:
    """A front-end that keeps what it was shown: the views' events and the dry runs' bodies."""

    def __init__(self):
        self.views, self.bodies = [], []

    def open_view(self, endpoint, conversation, model, context, replayed=False, images=()):
        view = View(endpoint, conversation, model, context, replayed, list(images))
        self.views.append(view)
        return view

    def show_json(self, body):
        self.bodies.append(body)


class View:
    def __init__(self, *header):
        self.header, self.shown, self.finished = header, 0, None

    def show(self, reply):
        self.shown += 1

    def finish(self, reply, record, note=""):
        self.finished = (reply.text, record["turn"]["status"], record["turn"]["origin"], note)


@pytest.fixture
def runner(gateway, tmp_path, monkeypatch):
    monkeypatch.setenv("ELK_API_KEY", KEY)
    settings = Settings(base_url=gateway.base_url, model="fake-small", retries=0, replay="auto")
    return TurnRunner(lambda: settings, cache=Cache(tmp_path / "cache.sqlite3"))


def test_a_turn_runs_from_values_through_any_front_end(runner, gateway):
    frontend = Frontend()
    outcome = runner.run(Ask("chat", "Hello", {"temperature": 0}), frontend)
    assert outcome.reply.text == "echo: Hello" and outcome.turn.status == "completed"
    (view,) = frontend.views
    assert view.header[:3] == ("chat", "default", "fake-small") and view.shown > 0
    assert view.finished == ("echo: Hello", "completed", "live", "")
    assert gateway.bodies()[-1]["temperature"] == 0
    second = runner.run(Ask("responses", "Again", conversation="r", dry_run=True), frontend)
    assert second is None and frontend.bodies[-1]["input"] == "Again" and len(gateway.requests) == 1


def test_the_same_request_again_samples_again_and_a_forced_replay_replays(runner, gateway):
    frontend = Frontend()
    runner.run(Ask("chat", "Same", cell=("cell-1", 1)), frontend)
    runner.run(Ask("chat", "Same", no_context=True, cell=("cell-1", 2)), frontend)
    assert frontend.views[-1].finished[2] == "regenerated" and len(gateway.requests) == 2
    runner.run(Ask("chat", "Same", no_context=True, replay="auto", cell=("cell-1", 3)), frontend)
    assert frontend.views[-1].finished[2] == "replayed" and len(gateway.requests) == 2


@pytest.mark.parametrize("endpoint", NAMES)
def test_an_ask_with_tools_runs_the_loop_without_ipython(runner, gateway, endpoint):
    ran = []

    def add(a: int, b: int) -> int:
        """Add two numbers."""
        ran.append((a, b))
        return a + b

    gateway.plan(tool_calls=[("add", '{"a": 2, "b": 3}')], text="")
    gateway.plan(text="five")
    asked = []
    ask = Ask(endpoint, "Add", tools=(tools.tool_of(add),), approve=lambda call: asked.append(call) or True)
    outcome = runner.run(ask, Frontend())
    assert outcome.reply.text == "five" and ran == [(2, 3)] and [c.name for c in asked] == ["add"]
    first, follow_up = gateway.bodies()
    assert first["tools"] == dialect(endpoint).tool_fields([tools.tool_of(add)])["tools"]
    assert "5" in json.dumps(follow_up) and outcome.turn.reply["steps"][0]["calls"][0]["output"] == "5"


@pytest.mark.parametrize("endpoint", NAMES)
def test_an_ask_with_an_image_sends_its_bytes_and_records_its_digest(runner, gateway, endpoint):
    png = base64.b64decode(PIXEL)
    image = attachments.from_bytes(png, "pixel")
    frontend = Frontend()
    ask = Ask(endpoint, "What is it?", attachments=attachments.parts([], [image]), images=(image,))
    outcome = runner.run(ask, frontend)
    sent = json.dumps(gateway.bodies()[-1])
    assert "data:image/png;base64," + PIXEL in sent and attachments.SCHEME not in sent
    assert attachments.SCHEME + image.digest in json.dumps(outcome.turn.request)  # the record: the digest
    assert outcome.turn.attachments[0]["digest"] == hashlib.sha256(png).hexdigest()
    assert frontend.views[0].header[-1][0]["src"].startswith("data:image/png;base64,")  # the thumbnail


def test_only_refuses_a_request_nothing_recorded(runner, gateway):
    with pytest.raises(ElkError, match="replay is 'only' and no recorded reply matches"):
        runner.run(Ask("chat", "Never seen", replay="only"), Frontend())
    assert gateway.requests == []


def test_each_endpoint_has_one_dialect_and_an_unknown_one_is_a_config_error():
    assert NAMES == ("chat", "responses")
    assert [dialect(name).path for name in NAMES] == ["/chat/completions", "/responses"]
    assert dialect("chat").fields({"max_tokens": 5}, "max_completion_tokens")["max_completion_tokens"] == 5
    assert dialect("responses").fields({"max_tokens": 5}, "max_tokens")["max_output_tokens"] == 5
    assert dialect("chat").completion_cap({"max_completion_tokens": 7}) == 7
    assert dialect("responses").completion_cap({"max_output_tokens": 9}) == 9
    with pytest.raises(ConfigError, match="unknown endpoint 'completions'"):
        dialect("completions")
