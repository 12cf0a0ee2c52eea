"""The one redaction rule (``elk_jupyter.redaction``) and the inputs around it: every spelling of
the key it knows, bodies of any depth, tool results cut after redaction, the client's last guard
on a real HTTP server, ``--approve`` showing the whole call, bounded reads of ``--file`` /
``--image``, and one line for each bad input of issue 22."""

from __future__ import annotations

import base64
import json
import os
from urllib.parse import quote, quote_plus

import pytest
from PIL import Image

from elk_jupyter import Client
from elk_jupyter.errors import ConfigError, unexpected
from elk_jupyter.redaction import REPLACEMENT, Redactor, redact
from elk_jupyter.tools import functions as tools
from tests.environment import elk_env, fresh_shell, use_env
from tests.test_context_secrets import leaks
from tests.test_magics import run

KEY = "sk-elk-CTX+secret/9f3a=distinctive-key-0042"  # the one test_context_secrets.leaks looks for
B64 = base64.b64encode


@pytest.mark.parametrize(
    "text",
    [
        KEY,
        f"https://api.example.com/v1?key={KEY}&x=1",
        f"?key={quote(KEY, safe='')}",
        f"q={quote_plus(KEY)}",
        B64(KEY.encode()).decode(),
        "Authorization: Basic " + B64(f"Bearer {KEY}".encode()).decode(),
        B64(f"user:{KEY}".encode()).decode(),
        base64.urlsafe_b64encode(f"xy{KEY}".encode()).decode(),
        "| " + KEY[:37] + "… |",  # a preview's cut: the longest piece is left
        "...[" + KEY[-12:],
        KEY[5:17] + " and " + KEY[20:40],
    ],
)
def test_every_spelling_the_rule_knows_is_cut_out(text):
    cut, count = Redactor(KEY).text(text)
    assert count >= 1 and REPLACEMENT in cut
    assert not leaks(cut), cut


def test_short_pieces_and_other_text_are_left_alone():
    guard = Redactor(KEY)
    for text in ["nothing here", KEY[:11], "sk-elk-" * 50, "", "é" * 10_000]:
        assert guard.text(text) == (text, 0)
    assert Redactor(None).text(KEY) == (KEY, 0) and redact(None, KEY) is None


def test_a_body_is_redacted_in_every_string_keys_included_at_any_depth():
    deep: list = [KEY]
    for _ in range(5_000):  # deeper than Python's recursion limit
        deep = [deep]
    body = {"messages": [{"role": "user", "content": f"x {KEY}"}], KEY: (KEY, 3, None), "deep": deep}
    cut, count = Redactor(KEY).body(body)
    assert (
        count == 4 and KEY not in json.dumps(cut[REPLACEMENT]) and cut["messages"][0]["content"] == "x " + REPLACEMENT
    )
    assert isinstance(cut[REPLACEMENT], tuple) and body["messages"][0]["content"] == f"x {KEY}"  # a copy
    inner = cut["deep"]
    for _ in range(5_000):
        (inner,) = inner
    assert inner == [REPLACEMENT]
    clean = {"a": ["b", {"c": 1}]}
    assert Redactor(KEY).body(clean) == (clean, 0) and Redactor(KEY).body(clean)[0] is clean


@pytest.mark.parametrize(
    "body",
    [
        {"messages": [{"role": "user", "content": f"x {KEY}"}], "temperature": 0.5},
        {"metadata": {KEY[3:20]: 1}, "z": "é"},
        {"input": [{"type": "input_image", "image_url": "data:;base64," + B64(f"user:{KEY}".encode()).decode()}]},
        {"messages": [{"role": "user", "content": "nothing to cut, ünïcode 🦌"}], "b": [1, 2.5, None, True]},
    ],
)
def test_a_body_written_by_the_caller_is_redacted_as_one_written_here(body):
    # an experiment's plan hands over the body's canonical JSON (sorted keys, no spaces) for the scan
    written = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert Redactor(KEY).body(body, written) == Redactor(KEY).body(body)


def test_a_key_across_the_tool_result_cut_is_redacted_before_the_cut():
    def leak() -> str:
        """Return the key just across the cut."""
        return "y" * (tools.OUTPUT_LIMIT - 4) + KEY

    (result,) = tools.run_calls([tools.Call("c1", "leak", "{}")], {"leak": tools.tool_of(leak)}, None, Redactor(KEY))
    assert result["redacted"] == 1 and not leaks(result["output"]) and "more characters not sent" in result["output"]


def test_the_client_guards_every_body_it_sends(gateway):
    client = Client(KEY, base_url=gateway.base_url, model="m")
    reply = client.chat([{"role": "user", "content": f"my key is {quote(KEY, safe='')}"}], max_tokens=5)
    assert reply.ok
    (request,) = gateway.requests
    assert request["headers"]["Authorization"] == f"Bearer {KEY}"
    assert not leaks(json.dumps(request["body"])) and REPLACEMENT in json.dumps(request["body"])


def test_an_unexpected_error_quoting_the_key_is_one_redacted_line():
    class Loud(Exception):
        def __str__(self):
            raise RuntimeError("no")

    said = str(unexpected(ValueError(f"token={B64(KEY.encode()).decode()}\nmore"), KEY))
    assert not leaks(said) and "\n" not in said
    assert str(unexpected(Loud(), KEY)) == "unexpected Loud (a bug: please report it)"


# -- the magics: a real IPython shell against a real HTTP gateway
@pytest.fixture
def ip(gateway, monkeypatch, tmp_path):
    use_env(monkeypatch, elk_env(gateway.base_url, KEY, tmp_path / "cache", ELK_NO_WIDGET="1"))
    shell, _ = fresh_shell(replay="off")
    yield shell
    shell.parent_header = {}


def test_approve_shows_the_whole_call(ip, gateway, monkeypatch, capsys):
    asked = []
    monkeypatch.setattr("builtins.input", lambda text: asked.append(text) or "n")
    ip.run_cell("def query(sql: str) -> str:\n    '''Run SQL.'''\n    return 'ran'\n")
    hidden = json.dumps({"sql": "SELECT name FROM users" + " " * 180 + "; DROP TABLE users"})
    long = json.dumps({"sql": "SELECT 1 -- " + "padding " * 600 + "; DROP TABLE users"})
    huge = json.dumps({"sql": "x" * 30_000})
    gateway.plan(tool_calls=[("query", hidden), ("query", long), ("query\x1b]52;c;aGk=\x07", huge)], text="")
    gateway.plan(text="ok")
    assert run(ip, "%%chat --tools query --approve\nClean up").success
    out = capsys.readouterr().out
    assert len(asked) == 2  # the huge call is declined without a question it could not show whole
    assert "SELECT name FROM users⟨180 spaces⟩; DROP TABLE users" in asked[0]
    assert "arguments above" in asked[1] and json.dumps(json.loads(long), indent=2) in out
    assert "too many to show whole here: declined" in out and "\x1b" not in out and "\\x1b]52" in out


def test_reads_are_bounded_and_devices_fifos_and_directories_refused(ip, gateway, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    big = tmp_path / "big.txt"
    with open(big, "wb") as file:
        file.truncate(1_500_000_000)  # sparse: refused by its size before a byte is read
    for option, message in [
        ("--file /dev/zero", "--file /dev/zero: not a regular file (a device, FIFO or socket), refused"),
        ("--image /dev/zero", "--image /dev/zero: not a regular file"),
        (f"--file {fifo}", f"--file {fifo}: not a regular file"),
        (f"--file {tmp_path}", f"--file {tmp_path}: a directory, refused"),
        (f"--file {big}", f"--file {big}: 1,500,000,000 bytes, more than the 800,000 allowed"),
        (f"--image {big}", "1,500,000,000 bytes, more than the 20,971,520 allowed"),
    ]:
        result = run(ip, f"%%chat {option}\nHi")
        assert not result.success and type(result.error_in_exec).__name__ == "UsageError", option
        assert message in str(result.error_in_exec) and "\n" not in str(result.error_in_exec), option
    assert gateway.requests == []


@pytest.mark.parametrize("mode", ["CMYK", "F", "I", "YCbCr"])
def test_pil_images_png_cannot_hold_are_converted(ip, gateway, mode):
    ip.user_ns["picture"] = Image.new(mode, (4, 4))
    assert run(ip, "%%chat --image picture\nWhat is it?").success
    (part,) = [p for p in gateway.requests[0]["body"]["messages"][-1]["content"] if p["type"] == "image_url"]
    assert part["image_url"]["url"].startswith("data:image/png;base64,")


def test_bad_values_are_one_line(ip, gateway):
    ip.run_cell(
        "class Sly:\n    def __str__(self):\n        raise RuntimeError('no str for you ' + __import__('os').environ['ELK_API_KEY'])\n"
        "sly = Sly()\n"
        'def one() -> int:\n    "One."\n    return 1\n'
    )
    for source, message in [
        ("%%chat -i\nLook: $sly", "$sly failed: RuntimeError: no str for you [redacted key]"),
        ("%%chat -i\nLook: ${sly}", "${sly} failed: RuntimeError: no str for you [redacted key]"),
        ("%%chat --tools one --max-steps 0\nHi", "--max-steps must be at least 1"),
    ]:
        result = run(ip, source)
        assert not result.success and message in str(result.error_in_exec), source
    assert gateway.requests == []


def test_max_steps_zero_is_a_config_error(gateway):
    def add(a: int) -> int:
        """Add one."""
        return a + 1

    with pytest.raises(ConfigError, match="max_steps must be a whole number of at least 1"):
        Client(KEY, base_url=gateway.base_url).chat([{"role": "user", "content": "hi"}], tools=[add], max_steps=0)
    assert gateway.requests == []
