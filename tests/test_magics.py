"""%%chat, %%respond and %elk in a real IPython shell against a real local gateway."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from tests.environment import KEY, conversations, turns


def run(ip, source, cell_id=None):
    ip.parent_header = {"metadata": {"cellId": cell_id}} if cell_id else {}
    return ip.run_cell(source)


def short_ids(ip, conversation="default"):
    """The conversation's turn ids as the UI shows them (ids are random: read them back)."""
    return [t.short_id for t in turns(ip, conversation)]


def messages(body):
    return [(m["role"], m["content"]) for m in body["messages"]]


def test_multi_turn_chat_sends_the_whole_history(ip, gateway):
    assert run(ip, "%%chat -s 'Be brief.'\nFirst {question}").success
    assert run(ip, "%%chat\nSecond").success
    first, second = gateway.bodies("/chat/completions")
    assert first == {
        "model": "fake-small",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "First {question}"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    assert messages(second) == [
        ("system", "Be brief."),
        ("user", "First {question}"),
        ("assistant", "echo: First {question}"),
        ("user", "Second"),
    ]
    assert gateway.requests[0]["headers"]["Authorization"] == f"Bearer {KEY}"


def test_every_chat_option_reaches_the_body_and_falsy_values_are_sent(ip, gateway):
    ip.user_ns["schema"] = {"title": "Colors", "type": "object", "properties": {"c": {"type": "string"}}}
    source = (
        "%%chat -m other -t 0 --top-p 0.5 --max-tokens 7 -r low --seed 0 --stop END --stop STOP -n 2 "
        "--schema schema -p presence_penalty=0 -p 'logit_bias={\"1\": -100}' -p user=alice --no-context\nHi"
    )
    gateway.plan(text='{"c": "red"}')
    result = run(ip, source)
    assert result.success, result.error_in_exec
    body = gateway.bodies()[-1]
    assert body["model"] == "other"
    assert body["temperature"] == 0 and body["seed"] == 0 and body["presence_penalty"] == 0
    assert body["top_p"] == 0.5 and body["max_tokens"] == 7 and body["reasoning_effort"] == "low"
    assert body["stop"] == ["END", "STOP"] and body["n"] == 2
    assert body["logit_bias"] == {"1": -100} and body["user"] == "alice"
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "Colors", "schema": ip.user_ns["schema"], "strict": True},
    }
    assert result.result == {"c": "red"}


def test_max_tokens_field_is_configurable(ip, gateway):
    ip.run_line_magic("config", "ElkMagics.max_tokens_field = 'max_completion_tokens'")
    assert run(ip, "%%chat --max-tokens 5 --no-stream\nHi").success
    body = gateway.bodies()[-1]
    assert body["max_completion_tokens"] == 5 and "max_tokens" not in body
    assert body["stream"] is False and "stream_options" not in body


def test_respond_options_and_previous_response_id_chaining(ip, gateway):
    assert run(ip, "%%respond -s 'Be kind.' -r high --summary auto --max-tokens 9 --truncation auto\nOne").success
    assert run(ip, "%%respond\nTwo").success
    first, second = gateway.bodies("/responses")
    assert first == {
        "model": "fake-small",
        "input": "One",
        "instructions": "Be kind.",
        "max_output_tokens": 9,
        "truncation": "auto",
        "reasoning": {"effort": "high", "summary": "auto"},
        "stream": True,
    }
    previous = turns(ip)[0]
    assert second["previous_response_id"] == previous.reply["id"] and second["input"] == "Two"
    assert second["instructions"] == "Be kind."  # instructions do not carry over a chain: re-sent
    assert turns(ip)[1].mode == "chain"


def test_respond_stateless_resends_the_history(ip, gateway):
    assert run(ip, "%%respond --stateless\nOne").success
    assert run(ip, "%%respond --stateless\nTwo").success
    second = gateway.bodies("/responses")[-1]
    assert "previous_response_id" not in second
    assert second["input"] == [
        {"type": "message", "role": "user", "content": "One"},
        {"type": "message", "role": "assistant", "content": "echo: One"},
        {"type": "message", "role": "user", "content": "Two"},
    ]


def test_json_mode_returns_the_parsed_object_and_output_stores_it(ip, gateway):
    gateway.plan(text='{"primes": [2, 3, 5]}')
    result = run(ip, "%%chat --json -o data\nThree primes")
    assert result.success and result.result == {"primes": [2, 3, 5]}
    assert ip.user_ns["data"] == {"primes": [2, 3, 5]}
    assert gateway.bodies()[-1]["response_format"] == {"type": "json_object"}


def test_schema_from_a_pydantic_class(ip, gateway):
    pydantic = pytest.importorskip("pydantic")

    class City(pydantic.BaseModel):
        name: str
        population: int

    ip.user_ns["City"] = City
    gateway.plan(text='{"name": "Oslo", "population": 700000}')
    result = run(ip, "%%respond --schema City\nA city")
    assert result.success, result.error_in_exec
    assert result.result == City(name="Oslo", population=700000)
    fmt = gateway.bodies()[-1]["text"]["format"]
    assert (
        fmt["type"] == "json_schema" and fmt["name"] == "City" and fmt["schema"]["required"] == ["name", "population"]
    )


def test_output_stores_the_reply(ip, gateway):
    gateway.plan(text="hello there", reasoning="thinking hard")
    assert run(ip, "%%chat -o reply\nHi").success
    reply = ip.user_ns["reply"]
    assert (reply.text, reply.reasoning, reply.status) == ("hello there", "thinking hard", "completed")
    assert reply.usage["completion_tokens_details"]["reasoning_tokens"] == 2
    assert reply.model == "fake-small-served"


def test_dry_run_sends_nothing_and_shows_the_body(ip, gateway, capsys):
    ip.user_ns["tools"] = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    assert run(ip, "%%chat --dry-run -p tools=@tools -p tool_choice=auto -p audio.voice=alloy\nHello").success
    assert gateway.requests == []
    shown = capsys.readouterr().out
    assert '"tool_choice": "auto"' in shown and '"voice": "alloy"' in shown and '"name": "f"' in shown


def test_bad_options_raise_usage_errors_and_send_nothing(ip, gateway, capsys):
    for line in (
        "%%chat --bogus",
        "%%chat -t hot",
        "%%chat -p 'x={bad'",
        "%%chat -p novalue",
        "%%chat --schema nope",
        "%%chat -p x=@missing",
        "%%respond --summary loud",
        "%%chat --api-key sk-1",
        "%%chat -p api_key=sk-1",
        "%%chat -p Authorization=Bearer",
    ):
        result = run(ip, line + "\nHi")
        assert not result.success
        assert type(result.error_in_exec).__name__ == "UsageError", line
    assert not run(ip, "%%chat\n   \n").success
    assert gateway.requests == []
    assert "Traceback" not in capsys.readouterr().out


def test_interpolation_is_explicit_and_brace_safe(ip, gateway):
    ip.user_ns.update(name="Ada", numbers=[1, 2])
    assert run(ip, '%%chat -i\nHi $name, sum ${sum(numbers)}, cost $$5, json {"a": {"b": 1}}').success
    assert run(ip, "%%chat\nverbatim $name ${x}").success
    sent = [b["messages"][-1]["content"] for b in gateway.bodies()]
    assert sent == ['Hi Ada, sum 3, cost $5, json {"a": {"b": 1}}', "verbatim $name ${x}"]
    result = run(ip, "%%chat -i\nHi $undefined_name")
    assert type(result.error_in_exec).__name__ == "UsageError" and len(gateway.requests) == 2


def test_rerunning_a_cell_replaces_its_turn_and_drops_later_ones(ip, gateway, capsys):
    run(ip, "%%chat\nA", cell_id="cell-a")
    run(ip, "%%chat\nB", cell_id="cell-b")
    run(ip, "%%chat\nC", cell_id="cell-c")
    run(ip, "%%chat\nB edited", cell_id="cell-b")
    ids = short_ids(ip)
    assert f"turn {ids[1]} replaced; {ids[2]} dropped from the context" in capsys.readouterr().out
    assert messages(gateway.bodies()[-1]) == [("user", "A"), ("assistant", "echo: A"), ("user", "B edited")]
    run(ip, "%%chat\nD", cell_id="cell-d")
    assert [c for r, c in messages(gateway.bodies()[-1]) if r == "user"] == ["A", "B edited", "D"]


def test_failed_turn_is_kept_but_never_sent(ip, gateway, capsys):
    run(ip, "%%chat\nA")
    gateway.plan(
        status=400, error_body={"error": {"message": "bad things", "type": "invalid_request_error", "code": "bad"}}
    )
    result = run(ip, "%%chat\nB")
    err = result.error_in_exec
    assert type(err).__name__ == "APIError" and err.status == 400
    assert "HTTP 400 [invalid_request_error, bad]: bad things (request id req_" in str(err)
    run(ip, "%%chat\nC")
    assert [c for r, c in messages(gateway.bodies()[-1]) if r == "user"] == ["A", "C"]
    ip.run_line_magic("elk", "history")
    out = capsys.readouterr().out
    ids = short_ids(ip)
    assert f" {ids[1]} error" in out and f"*{ids[2]}" in out


def test_interrupted_stream_keeps_the_partial_reply_until_accepted(ip, gateway):
    gateway.plan(text="one two three four five six", cut_after=3)
    result = run(ip, "%%chat -o partial\nLong")
    err = result.error_in_exec
    assert type(err).__name__ == "StreamError"
    (first,) = short_ids(ip)
    assert f"partial reply kept in turn {first}" in str(err) and f"%elk accept {first}" in str(err)
    conversation = conversations(ip).conversation("default")
    assert conversation.turns[0].status == "interrupted" and conversation.turns[0].text == "one two three "
    assert conversation.active == []
    run(ip, "%%chat\nNext")
    assert messages(gateway.bodies()[-1]) == [("user", "Next")]
    ip.run_line_magic("elk", f"accept {first}")
    run(ip, "%%chat\nAfter accept")
    assert messages(gateway.bodies()[-1])[:2] == [("user", "Long"), ("assistant", "one two three ")]


def test_real_sigint_stops_the_stream_and_the_next_cell_works(ip, gateway):
    gateway.plan(text=" ".join(f"w{i}" for i in range(200)), delay=0.02)
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    result = run(ip, "%%chat\nSlow")
    timer.join()
    err = result.error_in_exec
    assert type(err).__name__ == "StreamError" and "interrupted by the user" in str(err)
    turn = turns(ip)[0]
    assert turn.status == "interrupted" and 0 < len(turn.text) < len(" ".join(f"w{i}" for i in range(200)))
    assert run(ip, "%%chat\nStill alive?").success
    assert messages(gateway.bodies()[-1]) == [("user", "Still alive?")]


def test_fork_and_reset(ip, gateway, capsys):
    run(ip, "%%chat\nA")
    run(ip, "%%chat\nB")
    ip.run_line_magic("elk", f"fork default side {short_ids(ip)[0]}")
    run(ip, "%%chat -c side\nC")
    assert [c for r, c in messages(gateway.bodies()[-1]) if r == "user"] == ["A", "C"]
    ip.run_line_magic("elk", "reset side")
    run(ip, "%%chat -c side\nD")
    assert messages(gateway.bodies()[-1]) == [("user", "D")]
    run(ip, "%%chat --new\nE")
    assert messages(gateway.bodies()[-1]) == [("user", "E")]
    ip.run_line_magic("elk", "list")
    assert "default" in capsys.readouterr().out


def test_context_policy_limits_turns_and_says_so(ip, gateway, capsys):
    ip.run_line_magic("config", "ElkMagics.context_turns = 1")
    for prompt in ("A", "B", "C"):
        run(ip, f"%%chat\n{prompt}")
    assert [c for r, c in messages(gateway.bodies()[-1]) if r == "user"] == ["B", "C"]
    assert "1 older left out by the context policy" in capsys.readouterr().out


def test_elk_config_models_usage_never_show_the_key(ip, gateway, capsys):
    run(ip, "%%chat\nA")
    for command in ("config", "models", "usage", "list", "history"):
        ip.run_line_magic("elk", command)
    out = capsys.readouterr().out
    assert KEY not in out
    assert "…7Q2Z" in out and "$ELK_API_KEY" in out and "fake-large" in out
    assert "turns   1" in out


def test_usage_errors_for_elk(ip):
    for line in (
        "",
        "nope",
        "history missing",
        "fork default",
        "accept t99",
        "history a b",
        "reset --bogus",
        "usage x",
    ):
        result = ip.run_cell(f"%elk {line}")
        assert type(result.error_in_exec).__name__ == "UsageError", line


def test_values_json_cannot_carry_are_refused_before_sending(ip, gateway):
    ip.user_ns["blob"] = object()
    ip.user_ns["huge"] = float("inf")
    cases = {
        "%%chat -t nan": "temperature=nan: JSON cannot carry NaN or Infinity",
        "%%chat -p temperature=1e999": "temperature=inf: JSON cannot carry NaN or Infinity",
        "%%chat -p 'logit_bias={\"50256\": -1e999}'": "logit_bias.50256=-inf: JSON cannot carry NaN or Infinity",
        "%%chat -p top_k=@huge": "top_k=inf: JSON cannot carry NaN or Infinity",
        "%%chat -p metadata=@blob": "the request holds a value JSON cannot carry (Object of type object",
    }
    for line, message in cases.items():
        result = run(ip, line + "\nHi")
        assert type(result.error_in_exec).__name__ == "ConfigError", line
        assert str(result.error_in_exec).startswith(message), str(result.error_in_exec)
    assert gateway.requests == []
    assert run(ip, "%%chat\nstill fine").success
