"""Notebook functions as tools: schemas, the loop on both endpoints (parallel calls, an exception,
the step limit, a declined approval), re-sends in later turns and replay that runs nothing.

Real IPython shell, real HTTP: tests/fake_gateway.py plans the model's calls; llmock (tool mode
auto) calls whatever tool it is offered and answers once a result comes back.
"""

from __future__ import annotations

import enum
import json
import threading
from typing import Literal

import pytest
from pydantic import BaseModel

from elk_jupyter.records import turn as record
from elk_jupyter.tools import functions as tools
from tests.conftest import llmock_server
from tests.environment import conversations, shell_at
from tests.test_magics import KEY, run

CHAT, RESPONSES = "/chat/completions", "/responses"


@pytest.fixture
def calls(ip):
    """Notebook functions that log every call (thread, time) into ``calls``."""
    log = []
    ip.run_cell(
        "import time, threading\n"
        "def add(a: int, b: int = 1) -> int:\n"
        '    """Add two numbers.\n\n    Args:\n        a: the first number\n        b: the second number\n    """\n'
        "    log.append(('add', threading.get_ident())); time.sleep(0.2); return a + b\n"
        "def boom(reason: str):\n"
        '    """Always fails."""\n'
        "    log.append(('boom', threading.get_ident())); time.sleep(0.2); raise ValueError(reason)\n"
    )
    ip.user_ns["log"] = log
    return log


def last_turn(ip):
    return conversations(ip).conversation("default").turns[-1]


# -- schemas
class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Point(BaseModel):
    x: float
    y: float


def test_a_schema_comes_from_the_signature_hints_and_docstring():
    def paint(where: Point, colour: Colour, sizes: list[int], mode: Literal["fill", "line"] = "fill", note=None):
        """Paint a point.

        :param where: the point
        :param mode: how to paint
        """

    tool = tools.tool_of(paint)
    assert (tool.name, tool.description) == ("paint", "Paint a point.")
    assert tool.parameters == {
        "type": "object",
        "properties": {
            "where": {**Point.model_json_schema(), "description": "the point"},
            "colour": {"enum": ["red", "blue"]},
            "sizes": {"type": "array", "items": {"type": "integer"}},
            "mode": {"enum": ["fill", "line"], "description": "how to paint", "default": "fill"},
            "note": {"default": None},
        },
        "required": ["where", "colour", "sizes"],
        "additionalProperties": False,
    }


def test_a_pydantic_parameter_receives_its_model_and_errors_are_results():
    seen = []

    def place(where: Point) -> str:
        seen.append(where)
        return f"at {where.x},{where.y}"

    toolset = {"place": tools.tool_of(place)}
    results = tools.run_calls(
        [
            tools.Call("c1", "place", '{"where": {"x": 1, "y": 2}}'),
            tools.Call("c2", "place", "{not json"),
            tools.Call("c3", "nope", "{}"),
        ],
        toolset,
        None,
    )
    assert seen == [Point(x=1, y=2)]
    assert [(r["status"], r["output"]) for r in results] == [
        ("ok", "at 1.0,2.0"),
        ("error", results[1]["output"]),
        ("error", json.dumps({"error": "no tool named 'nope'; the tools are: place"})),
    ]
    assert "not valid JSON" in results[1]["error"]


# -- the loop, both endpoints
@pytest.mark.parametrize("magic, path", [("chat", CHAT), ("respond", RESPONSES)])
def test_parallel_calls_and_an_exception_go_back_to_the_model(ip, gateway, calls, magic, path):
    gateway.plan(tool_calls=[("add", '{"a": 2, "b": 3}'), ("boom", '{"reason": "no disk"}')], text="")
    gateway.plan(text="Five, and the disk is gone.")
    result = run(ip, f"%%{magic} --tools add,boom\nAdd 2 and 3, then break.")
    assert result.success, result.error_in_exec
    assert sorted(name for name, _ in calls) == ["add", "boom"]
    assert len({thread for _, thread in calls}) == 2, "the two calls ran on two threads at once"
    first, second = gateway.bodies(path)
    results = {
        "call_1_0": "5",
        "call_1_1": json.dumps({"error": "ValueError: no disk"}),
    }
    if magic == "chat":
        assert [t["function"]["name"] for t in first["tools"]] == ["add", "boom"]
        assert second["messages"][:1] == first["messages"]
        assert second["messages"][1:] == [
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1_0",
                        "type": "function",
                        "function": {"name": "add", "arguments": '{"a": 2, "b": 3}'},
                    },
                    {
                        "id": "call_1_1",
                        "type": "function",
                        "function": {"name": "boom", "arguments": '{"reason": "no disk"}'},
                    },
                ],
            },
            *({"role": "tool", "tool_call_id": k, "content": v} for k, v in results.items()),
        ]
    else:
        assert [t["name"] for t in first["tools"]] == ["add", "boom"]
        assert second["previous_response_id"].startswith("resp_")
        assert second["input"] == [
            {"type": "function_call_output", "call_id": k, "output": v} for k, v in results.items()
        ]
        assert second["tools"] == first["tools"]
    turn = last_turn(ip)
    assert turn.text == "Five, and the disk is gone." and turn.status == "completed"
    (step,) = turn.reply["steps"]
    assert [(c["name"], c["status"], c["output"], c["error"]) for c in step["calls"]] == [
        ("add", "ok", "5", None),
        ("boom", "error", results["call_1_1"], "ValueError: no disk"),
    ]
    assert all(c["duration"] >= 0.2 for c in step["calls"])
    assert record.validate(_record(turn)) == []


def _record(turn):
    from elk_jupyter.records.turn import record_of

    return record_of(turn)


@pytest.mark.parametrize("magic, path", [("chat", CHAT), ("respond", RESPONSES)])
def test_the_step_limit_stops_the_loop_and_says_so(ip, gateway, calls, magic, path, capsys):
    for _ in range(3):
        gateway.plan(tool_calls=[("add", '{"a": 1}')], text="")
    result = run(ip, f"%%{magic} --tools add --max-steps 2\nKeep adding.")
    assert result.success
    assert len(gateway.bodies(path)) == 2 and len(calls) == 1
    turn = last_turn(ip)
    assert turn.status == "incomplete"
    assert turn.reply["incomplete_details"] == {"reason": "max_tool_steps", "max_steps": 2, "calls_not_run": 1}
    out = capsys.readouterr().out
    assert "tool add" in out and "step limit 2 reached: 1 calls not run" in out


@pytest.mark.parametrize("magic, path", [("chat", CHAT), ("respond", RESPONSES)])
def test_a_declined_approval_runs_nothing_and_tells_the_model(ip, gateway, calls, magic, path, monkeypatch):
    answers = iter(["n", "yes"])
    asked = []
    # The terminal's own prompt: IPython's input() reads stdin (a kernel turns it into a stdin
    # request; tests/test_tools_kernel.py answers one through a real kernel).
    monkeypatch.setattr("builtins.input", lambda text: asked.append(text) or next(answers))
    gateway.plan(tool_calls=[("boom", '{"reason": "x"}'), ("add", '{"a": 4}')], text="")
    gateway.plan(text="ok")
    assert run(ip, f"%%{magic} --tools add,boom --approve\nTry both.").success
    assert asked == ['elk: run tool boom({"reason": "x"})? [y/N] ', 'elk: run tool add({"a": 4})? [y/N] ']
    assert [name for name, _ in calls] == ["add"]
    outputs = _outputs(gateway.bodies(path)[1])
    assert outputs == [json.dumps({"error": "the user declined this call"}), "5"]
    assert [c["status"] for c in last_turn(ip).reply["steps"][0]["calls"]] == ["declined", "ok"]


def _outputs(body):
    if "messages" in body:
        return [m["content"] for m in body["messages"] if m["role"] == "tool"]
    return [i["output"] for i in body["input"] if i.get("type") == "function_call_output"]


@pytest.mark.parametrize("magic, path", [("chat", CHAT), ("respond", RESPONSES)])
def test_a_later_turn_resends_the_calls_and_results(ip, gateway, calls, magic, path):
    gateway.plan(tool_calls=[("add", '{"a": 2, "b": 2}')], text="Let me add.")
    gateway.plan(text="Four.")
    flag = "" if magic == "chat" else " --stateless"
    assert run(ip, f"%%{magic} --tools add{flag}\nTwo and two?").success
    assert run(ip, f"%%{magic}{flag}\nAnd again?").success
    later = gateway.bodies(path)[-1]
    if magic == "chat":
        assert later["messages"] == [
            {"role": "user", "content": "Two and two?"},
            {
                "role": "assistant",
                "content": "Let me add.",
                "tool_calls": [
                    {"id": "call_1_0", "type": "function", "function": {"name": "add", "arguments": '{"a": 2, "b": 2}'}}
                ],
            },
            {"role": "tool", "tool_call_id": "call_1_0", "content": "4"},
            {"role": "assistant", "content": "Four."},
            {"role": "user", "content": "And again?"},
        ]
    else:
        assert later["input"] == [
            {"type": "message", "role": "user", "content": "Two and two?"},
            {"type": "message", "role": "assistant", "content": "Let me add."},
            {"type": "function_call", "call_id": "call_1_0", "name": "add", "arguments": '{"a": 2, "b": 2}'},
            {"type": "function_call_output", "call_id": "call_1_0", "output": "4"},
            {"type": "message", "role": "assistant", "content": "Four."},
            {"type": "message", "role": "user", "content": "And again?"},
        ]


def test_a_chained_later_turn_chains_from_the_final_response(ip, gateway, calls):
    gateway.plan(tool_calls=[("add", '{"a": 1}')], text="")
    gateway.plan(text="Two.")
    assert run(ip, "%%respond --tools add\nOne plus one?").success
    assert run(ip, "%%respond\nThanks").success
    final = last_turn(ip)
    tool_turn = conversations(ip).conversation("default").turns[0]
    assert final.request["previous_response_id"] == tool_turn.reply["id"]
    assert final.request["input"] == "Thanks"


@pytest.mark.parametrize("magic, path", [("chat", CHAT), ("respond", RESPONSES)])
def test_replay_serves_recorded_results_without_running_the_functions(
    gateway, monkeypatch, tmp_path, magic, path, capsys
):
    ip, _ = shell_at(monkeypatch, tmp_path, gateway.base_url)
    ip.user_ns["log"] = log = []
    ip.run_cell("def add(a: int, b: int = 1) -> int:\n    log.append(a)\n    return a + b\n")
    gateway.plan(tool_calls=[("add", '{"a": 40, "b": 2}')], text="")
    gateway.plan(text="42.")
    assert run(ip, f"%%{magic} --tools add\nWhat is 40 + 2?").success
    assert log == [40]
    gateway.close()  # nothing answers any more
    ip, _ = shell_at(monkeypatch, tmp_path, gateway.base_url, replay="only")  # a fresh notebook state
    ip.user_ns["log"] = log
    capsys.readouterr()
    assert run(ip, f"%%{magic} --tools add\nWhat is 40 + 2?").success
    assert log == [40], "the replay ran no function"
    turn = last_turn(ip)
    assert (turn.origin, turn.text) == ("replayed", "42.")
    assert turn.reply["steps"][0]["calls"][0]["output"] == "42"
    assert "tool add" in capsys.readouterr().out  # the recorded calls are shown again


def test_dry_run_shows_the_tool_definitions(ip, gateway, calls, capsys):
    assert run(ip, "%%chat --tools add --dry-run\nAdd.").success
    body = json.loads(capsys.readouterr().out)
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "add",
                "description": "Add two numbers.",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "a": {"type": "integer", "description": "the first number"},
                        "b": {"type": "integer", "description": "the second number", "default": 1},
                    },
                    "required": ["a"],
                    "additionalProperties": False,
                },
            },
        }
    ]
    assert gateway.requests == []


def test_a_name_that_is_not_a_function_is_one_usage_line(ip, gateway):
    ip.user_ns["x"] = 3
    result = run(ip, "%%chat --tools x\nHi")
    assert not result.success and "a tool must be a function, got int" in str(result.error_in_exec)
    result = run(ip, "%%chat --tools missing\nHi")
    assert "--tools: 'missing' is not defined" in str(result.error_in_exec)
    assert gateway.requests == []


# -- llmock: a server that decides to call the tools by itself
@pytest.fixture(scope="module")
def llmock_tools():
    with llmock_server("--tool-mode", "auto") as base_url:
        yield base_url


@pytest.mark.parametrize("magic", ["chat", "respond"])
def test_llmock_calls_the_tool_and_answers_after_the_result(llmock_tools, monkeypatch, tmp_path, magic):
    ip, _ = shell_at(monkeypatch, tmp_path, llmock_tools)
    seen = []
    lock = threading.Lock()

    def weather(city: str) -> dict:
        """The weather in a city."""
        with lock:
            seen.append(city)
        return {"city": city, "sky": "clear"}

    ip.user_ns["weather"] = weather
    assert run(ip, f"%%{magic} --tools weather\nWhat is the weather in Oslo?").success
    assert len(seen) == 1
    turn = last_turn(ip)
    (step,) = turn.reply["steps"]
    assert step["calls"][0]["name"] == "weather" and step["calls"][0]["status"] == "ok"
    assert json.loads(step["calls"][0]["output"]) == {"city": seen[0], "sky": "clear"}
    assert turn.status == "completed" and turn.text


# -- Python: Client(...).chat(messages, tools=[f, g])
@pytest.mark.parametrize("endpoint", ["chat", "respond"])
def test_the_client_runs_python_functions_as_tools(gateway, endpoint):
    from elk_jupyter import Client

    log = []

    def add(a: int, b: int) -> int:
        """Add."""
        log.append((a, b))
        return a + b

    gateway.plan(tool_calls=[("add", '{"a": 1, "b": 2}')], text="")
    gateway.plan(text="Three.")
    client = Client(base_url=gateway.base_url, model="fake-small", api_key_env="NO_SUCH_KEY_VAR")
    prompt = [{"role": "user", "content": "1+2?"}] if endpoint == "chat" else "1+2?"
    reply = getattr(client, endpoint)(prompt, tools=[add])
    assert (reply.text, log) == ("Three.", [(1, 2)])
    assert reply.steps[0]["calls"][0]["output"] == "3"
    first = gateway.bodies()[0]
    assert first["tools"][0]["function" if endpoint == "chat" else "name"] in (
        "add",
        {"name": "add", "description": "Add.", "parameters": tools.tool_of(add).parameters},
    )


def test_the_client_takes_approve_and_max_steps(gateway):
    from elk_jupyter import Client

    log = []

    def add(a: int) -> int:
        log.append(a)
        return a

    client = Client(base_url=gateway.base_url, model="fake-small", api_key_env="NO_SUCH_KEY_VAR")
    gateway.plan(tool_calls=[("add", '{"a": 1}')], text="")
    reply = client.chat([{"role": "user", "content": "?"}], tools=[add], max_steps=1)
    assert (reply.status, reply.incomplete_details["reason"], log) == ("incomplete", "max_tool_steps", [])
    gateway.plan(tool_calls=[("add", '{"a": 1}')], text="")
    gateway.plan(text="fine")
    reply = client.respond("?", tools=[add], approve=lambda call: False)
    assert (reply.text, log, reply.steps[0]["calls"][0]["status"]) == ("fine", [], "declined")
    assert "approve" not in gateway.bodies()[-1] and "max_steps" not in gateway.bodies()[-1]


def test_a_tool_that_returns_the_key_sends_and_records_it_redacted(ip, gateway):
    ip.run_cell(
        "import os\ndef leak() -> str:\n    return 'key=' + os.environ['ELK_API_KEY']\n"
        "def fail() -> str:\n    raise RuntimeError(os.environ['ELK_API_KEY'])\n"
    )
    gateway.plan(tool_calls=[("leak", "{}"), ("fail", "{}")], text="")
    gateway.plan(text="ok")
    assert run(ip, "%%chat --tools leak,fail\nGo").success
    sent = json.dumps(gateway.bodies(CHAT)[1])
    saved = json.dumps(_record(last_turn(ip)))
    assert KEY not in sent and KEY not in saved
    assert "key=[redacted key]" in sent and "RuntimeError: [redacted key]" in saved


def test_usage_counts_every_request_of_a_tool_turn(ip, gateway, calls, capsys):
    gateway.plan(
        tool_calls=[("add", '{"a": 1}')],
        text="",
        usage={"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    )
    gateway.plan(text="2", usage={"prompt_tokens": 30, "completion_tokens": 1, "total_tokens": 31})
    assert run(ip, "%%chat --tools add\nOne plus one").success
    totals = conversations(ip).usage_totals()
    assert (totals["turns"], totals["prompt"], totals["completion"], totals["total"]) == (1, 40, 6, 46)


@pytest.mark.parametrize("magic, path", [("chat", CHAT), ("respond", RESPONSES)])
def test_the_loop_works_without_streaming(ip, gateway, calls, magic, path):
    gateway.plan(tool_calls=[("add", '{"a": 5}')], text="")
    gateway.plan(text="Six.")
    assert run(ip, f"%%{magic} --tools add --no-stream\nFive plus one").success
    assert last_turn(ip).text == "Six." and [name for name, _ in calls] == ["add"]
    assert _outputs(gateway.bodies(path)[1]) == ["6"]


def test_validate_names_a_broken_step_or_attachment_and_restore_skips_bad_bytes(ip, gateway, calls):
    import base64

    from elk_jupyter.media import attachments

    gateway.plan(tool_calls=[("add", '{"a": 1}')], text="")
    gateway.plan(text="2")
    assert run(ip, "%%chat --tools add\n1+1").success
    good = _record(last_turn(ip))
    broken = json.loads(json.dumps(good))
    broken["turn"]["reply"]["steps"][0]["calls"][0]["output"] = 7
    broken["turn"]["reply"]["steps"].append("not a step")
    broken["turn"]["attachments"] = [{"digest": "x", "media_type": "image/png", "size": "big", "source": "s"}, 3]
    assert record.validate(broken) == [
        "turn.reply.steps[0].calls[0].output should be str, got int",
        "turn.reply.steps[1] should be an object with a list of calls",
        "turn.attachments[0].size should be int, got str",
        "turn.attachments[1] should be object",
    ]
    import hashlib

    bytes_ = b"not an image"
    digest = hashlib.sha256(bytes_).hexdigest()  # a matching digest: only the content is wrong
    images = attachments.Images()
    images.remember([{"digest": digest, "data": base64.b64encode(bytes_).decode()}, {"digest": "1", "data": "@@"}])
    assert digest not in images and "1" not in images  # skipped, no crash
