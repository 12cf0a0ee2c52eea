"""Every way a turn has failed with a raw exception, run in a real kernel under ``%xmode Verbose``.

Verbose tracebacks print every frame's locals, and the request's frames hold the Authorization
header. Each trigger must give one ElkError line whose exception carries no chained exception or
frame holding the key; the saved notebook and the cache are then searched for the key.
"""

from __future__ import annotations

import json

import nbformat
import pytest

from tests.environment import elk_env
from tests.fake_gateway import FakeGateway
from tests.kernel import run_notebook

KEY = "sk-elk-VERBOSE-7c1d-distinctive-key-9921"

# Walks the last error's whole chain (context, cause) and every frame's locals for the key;
# prints only where it was found, never the key.
PROBE = """
def _leaks():
    import os, sys
    key = os.environ["ELK_API_KEY"]
    err = sys.last_value
    found, seen, stack = [], set(), [err]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        stack += [e.__context__, e.__cause__]
        tb = e.__traceback__
        while tb is not None:
            for name, value in list(tb.tb_frame.f_locals.items()):
                try:
                    text = repr(value)
                except Exception:
                    text = ""
                if key in text:
                    found.append(tb.tb_frame.f_code.co_name + ":" + name)
            tb = tb.tb_next
    print(type(err).__name__, "chain", len(seen), "leaks", found)
"""

FLAKY = '''
class Flaky(dict):
    """A user's mapping that breaks the second time it is read: a bug deep in a turn."""
    calls = 0
    def items(self):
        Flaky.calls += 1
        if Flaky.calls > 1:
            raise RuntimeError("boom")
        return super().items()
flaky = Flaky(a=1)
'''

# (cell, expected one-line error or None, the turn is recorded as failed)
TRIGGERS = [
    ("%%chat -c bad -t nan\nx", "ConfigError: temperature=nan: JSON cannot carry NaN or Infinity", False),
    ("%%chat -c bad -p temperature=1e999\nx", "ConfigError: temperature=inf: JSON cannot carry NaN or Infinity", False),
    ("%%chat -c bad\nredirect loop", "APIError: HTTP 307: the gateway redirects to http://127.0.0.1:", True),
    ("%%chat -c bad\nftp location", "APIError: HTTP 307: the gateway redirects to ftp://files.example.com/x;", True),
    ("%%chat -c bad\nmalformed location", "sent a malformed response (ValueError); not retried", True),
    ("%%chat -c bad\ntwo lengths", "sent a malformed response (InvalidHeader); not retried", True),
    (
        "import os\n_saved = os.environ['ELK_BASE_URL']\nos.environ['ELK_BASE_URL'] = 'gateway.example/v1?token=t'\n"
        "try:\n    get_ipython().run_cell_magic('chat', '-c bad', 'no scheme')\n"
        "finally:\n    os.environ['ELK_BASE_URL'] = _saved",
        "ConfigError: the base URL must start with http:// or https://",
        True,
    ),
    (
        "%%chat -c bad -p metadata=@flaky\nbug",
        "InternalError: unexpected RuntimeError: boom (a bug: please report it)",
        False,
    ),
]
CONFIGS = [
    ("timeout = 0", "ElkMagics.timeout must be a finite number of seconds above 0, got 0"),
    ("timeout = float('nan')", "ElkMagics.timeout must be a finite number of seconds above 0, got nan"),
    ("retries = -1", "retries must be a whole number from 0 to 10, got -1"),
    ("base_url = 'api.example.com/v1'", "the base URL must start with http:// or https://"),
    ("base_url = 'https://user:pw-SECRET@api.example.com/v1'", "the base URL carries user:password@ credentials"),
    ("context_turns = -2", "ElkMagics.context_turns must be a whole number >= 0"),
    ("context_tokens = -1", "ElkMagics.context_tokens must be a whole number >= 0"),
]
SETTINGS = "m = get_ipython().magics_manager.registry['ElkMagics']\nprint(m.timeout, m.retries, m.base_url, m.context_turns, m.context_tokens)"


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("leaks")
    gateway = FakeGateway()
    gateway.plan()  # the first good turn
    gateway.plan(status=307, error_body={"moved": True}, headers={"Location": gateway.base_url + "/chat/completions"})
    gateway.plan(status=307, error_body={"moved": True}, headers={"Location": "ftp://files.example.com/x?sig=abc"})
    gateway.plan(status=307, error_body={"moved": True}, headers={"Location": "http://[::1"})
    gateway.plan(status=200, error_body={"id": "x"}, headers={"Content-Length": "3"})
    gateway.plan(headers={"x-request-id": f"echo-{KEY}"})  # a success that echoes the key
    cells = ["%load_ext elk_jupyter\n%xmode Verbose", PROBE, FLAKY, "%%chat -c ok\nfirst"]
    for source, _, _ in TRIGGERS:
        cells += [source, "_leaks()"]
    for assignment, _ in CONFIGS:
        cells += [f"%config ElkMagics.{assignment}", SETTINGS]
    cells += [
        "%%chat -c echo -o echoed\nhello",
        "print(echoed.request_id, repr(echoed), echoed.to_dict())",
        "%%chat -c bad\nrecovers",
        "import json\nprint(json.dumps([t.status for t in m.conversations.conversation('bad').turns]))",
    ]
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    env = elk_env(gateway.base_url, KEY, tmp / "cache", model="m", replay="auto")
    try:
        run_notebook(nb, env, allow_errors=True, timeout=120)
    finally:
        gateway.close()
    path = tmp / "verbose.ipynb"
    nbformat.write(nb, path)
    return nb, path, tmp, gateway


def outputs(cell, kind):
    return [o for o in cell.outputs if o.output_type == kind]


def text(cell, name="stdout") -> str:
    return "".join(o.text for o in outputs(cell, "stream") if o.name == name)


@pytest.mark.parametrize("number", range(len(TRIGGERS)))
def test_each_trigger_is_one_line_with_no_frame_holding_the_key(ran, number):
    nb, _, _, _ = ran
    cell, probe = nb.cells[4 + 2 * number], nb.cells[5 + 2 * number]
    (error,) = outputs(cell, "error")
    assert len(error.traceback) == 1, error.traceback  # not Verbose's pages of frames
    assert TRIGGERS[number][1] in error.traceback[0]
    assert KEY not in error.traceback[0] and "SECRET" not in error.traceback[0] and "token=t" not in error.traceback[0]
    name = TRIGGERS[number][1].split(":")[0] if ":" in TRIGGERS[number][1] else "APIError"
    assert text(probe).split() == [name, "chain", "1", "leaks", "[]"]


def test_failed_turns_are_recorded_and_the_next_cell_works(ran):
    nb, _, _, gateway = ran
    statuses = json.loads(text(nb.cells[-1]))
    recorded = sum(1 for _, _, failed in TRIGGERS if failed)
    assert statuses == ["error"] * recorded + ["completed"]
    assert not outputs(nb.cells[-2], "error")
    # -t nan, 1e999 and the user's broken mapping were refused before anything was sent
    assert [b["messages"][-1]["content"] for b in gateway.bodies()] == [
        "first",
        "redirect loop",
        "ftp location",
        "malformed location",
        "two lengths",
        "hello",
        "recovers",
    ]


@pytest.mark.parametrize("number", range(len(CONFIGS)))
def test_bad_settings_are_one_line_at_config_time_and_change_nothing(ran, number):
    nb, _, _, _ = ran
    start = 4 + 2 * len(TRIGGERS)
    cell, after = nb.cells[start + 2 * number], nb.cells[start + 2 * number + 1]
    message = text(cell, "stderr").strip()
    assert CONFIGS[number][1] in message and "\n" not in message and "SECRET" not in message
    assert text(after).split() == ["600.0", "2", "None", "0", "0"]


def test_the_key_is_in_no_saved_byte(ran):
    nb, path, tmp, _ = ran
    assert "echo-[redacted key]" in text(nb.cells[-3])  # the echoed header, redacted
    blobs = [p.read_bytes() for p in tmp.rglob("*") if p.is_file()]
    assert path.read_bytes() in blobs and any(p.name == "cache.sqlite3" for p in tmp.rglob("*"))
    for blob in blobs:
        assert KEY.encode() not in blob and KEY[-12:].encode() not in blob
