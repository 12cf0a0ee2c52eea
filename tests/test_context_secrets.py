"""The key never leaves through notebook context: each feature that puts notebook text into a
request (``$_error``, ``%elk explain``, ``--file``, ``--cells``, ``${expr}``, a DataFrame cell, a
tool result across the 16,000-character cut, experiment cases and judge prompts) run in a real
kernel (nbclient) against a real HTTP gateway, then the key searched for in every spelling the
guard knows in the request bytes the server received, the saved notebook, the replay cache and
the CLI's output."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, quote_plus

import nbformat

from tests.environment import elk_env
from tests.fake_gateway import FakeGateway
from tests.kernel import run_notebook
from tests.recording import notebook

# '+', '/' and '=' make the URL-encoded spellings differ from the key itself.
KEY = "sk-elk-CTX+secret/9f3a=distinctive-key-0042"


def spellings(key: str) -> set[str]:
    """What a search must not find: every 12-character run of the key, the key URL-encoded, and
    the middle of its base64 (alone, after ``Bearer `` and after ``user:``, both alphabets)."""
    found = {key[i : i + 12] for i in range(len(key) - 11)} | {quote(key, safe=""), quote_plus(key)}
    for prefix in (b"", b"Bearer ", b"user:"):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            text = encode(prefix + key.encode()).decode()
            middle = len(prefix) * 4 // 3 + (len(text) - len(prefix) * 4 // 3) // 2
            found.add(text[middle - 8 : middle + 8])
    return found


def leaks(blob: bytes | str) -> list[str]:
    text = blob.decode("utf-8", "replace") if isinstance(blob, bytes) else blob
    return sorted(s for s in spellings(KEY) if s in text)


SETUP = """\
import base64, os, urllib.parse
import pandas as pd
from elk_jupyter.experiments import rubric
KEY = os.environ["ELK_API_KEY"]
def leak() -> str:
    \"\"\"Return a long text with the key just across the 16,000-character cut.\"\"\"
    return "y" * 15_990 + KEY
frame = pd.DataFrame({"note": ["x" * 20 + KEY], "n": [1]})
Path = __import__("pathlib").Path
Path("settings.env").write_text(
    f"ELK_API_KEY={KEY}\\nAUTH={base64.b64encode(('Bearer ' + KEY).encode()).decode()}\\n"
    f"URL=https://api.example.com/?key={urllib.parse.quote(KEY, safe='')}\\n"
)
cases = [{"q": "the token is " + KEY}]
judged = rubric("mentions a token")
"""

CELLS = [
    "%load_ext elk_jupyter",
    SETUP,
    "%%chat --tools leak\nCall leak",
    'raise RuntimeError(f"GET https://api.example.com/v1/data?key={KEY} failed")',
    "%%chat -i\nWhy did this fail?\n$_error",
    "%elk explain",
    "%%chat --file settings.env\nWhat is in this file?",
    "%%chat -i\nThe token is ${KEY[:10] + KEY[10:]} and the frame:\n$frame",
    f'auth = "Basic {base64.b64encode(("user:" + KEY).encode()).decode()}"  # pasted by the user',
    "%%chat --cells 2\nWhat did the cells above do?",
    "%%experiment --cases cases -m fake-small --score judged\nRepeat: $q",
]
ERROR_CELL = 3  # the user's own traceback (their output, not ours): cleared before the search
PASTED_CELL = 8  # the key the user pasted into a cell (their source, not ours): cleared too


def test_no_context_feature_lets_the_key_out(tmp_path):
    gateway = FakeGateway()
    gateway.plan(tool_calls=[("leak", "{}")], text="")
    gateway.plan(text="done")
    env = elk_env(gateway.base_url, KEY, tmp_path / "cache", model="fake-small", replay="auto")
    nb = notebook(CELLS)
    run_notebook(nb, env, allow_errors=True, resources={"metadata": {"path": str(tmp_path)}})
    errors = [(n, o) for n, c in enumerate(nb.cells) for o in c.outputs if o.get("output_type") == "error"]
    assert [n for n, _ in errors] == [ERROR_CELL], [o.get("evalue") for _, o in errors]
    assert KEY in errors[0][1]["evalue"]  # the error really quoted the key
    nb.cells[ERROR_CELL].outputs = []
    nb.cells[PASTED_CELL].source = ""
    path = tmp_path / "context.ipynb"
    nbformat.write(nb, path)

    # the server: every feature sent something, each with the key cut out
    sent = [json.dumps(r["body"], ensure_ascii=False) for r in gateway.requests]
    assert len(sent) >= 8
    assert {h for r in gateway.requests for h in [r["headers"].get("Authorization")]} == {f"Bearer {KEY}"}
    for marker in ("y" * 50, "The failing cell", "settings.env", "DataFrame: 1 rows", "cells run before", "Repeat"):
        assert any(marker in body and "[redacted key]" in body for body in sent), marker
    assert any("SCORE" in body or "rubric" in body.lower() for body in sent)  # the judge was asked
    for body in sent:
        assert not leaks(body), body[:300]

    # the panel's note and the Markdown copy say what was cut out
    notes = [
        o["data"]["text/markdown"]
        for c in nb.cells
        for o in c.outputs
        if "text/markdown" in o.get("data", {})
        and "&#40;ELK\\_API\\_KEY&#41; redacted from" in o["data"]["text/markdown"]
    ]
    assert len(notes) == 6  # the tool turn, $_error, explain, --file, ${expr} with $frame, --cells

    cli = Path(sys.executable).with_name("elk-jupyter")
    runs = [
        subprocess.run([str(cli), *args], capture_output=True, text=True, env={**os.environ, **env})
        for args in (
            ["inspect", str(path)],
            ["export", str(path), "-f", "jsonl"],
            ["export", str(path), "-f", "markdown"],
            ["export", str(path), "-f", "json"],
            ["experiments", "list", str(path)],
            ["experiments", "show", str(path), nb_experiment_name(path)],
        )
    ]
    assert [r.returncode for r in runs] == [0] * len(runs), [r.stderr for r in runs]
    saved = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "settings.env"]
    assert any(p.suffix == ".sqlite3" for p in saved)  # the replay cache is searched too
    for blob in [p.read_bytes() for p in saved] + [r.stdout + r.stderr for r in runs]:
        assert not leaks(blob)
    gateway.close()


def nb_experiment_name(path: Path) -> str:
    from elk_jupyter.records import notebooks
    from elk_jupyter.records.experiment import iter_experiments

    (record,) = list(iter_experiments(notebooks.read_json(path)))
    return record["experiment"]["id"][:8]
