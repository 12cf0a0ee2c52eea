"""A distinctive key, every path a notebook user takes, and a search of everything left behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat

from elk_jupyter import Client
from tests.environment import elk_env
from tests.fake_gateway import FakeGateway
from tests.kernel import run_notebook

KEY = "sk-elk-SECRET-9f3a-distinctive-key-0042"


def test_the_key_is_nowhere(tmp_path):
    gateway = FakeGateway()
    cells = [
        "%load_ext elk_jupyter",
        "%elk config",
        "%elk models",
        "%%chat -o ok\nHello",
        "print(repr(ok), ok.to_dict(), ok.request)",
        "%%chat\nThis one fails with the key echoed back",
        "%%respond\nThis one breaks mid-stream",
        "%%chat --dry-run\nDry",
        "from elk_jupyter import Client\nprint(repr(Client()))",
        "%elk history",
        "%elk usage",
    ]
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    env = elk_env(gateway.base_url, KEY, tmp_path / "cache", model="m", replay="auto")
    # the second request: a gateway that quotes the key in its error (as OpenAI's 401 does)
    gateway.plan()
    gateway.plan(
        status=401,
        error_body={"error": {"message": f"Incorrect API key provided: {KEY}.", "type": "invalid_request_error"}},
    )
    gateway.plan(
        text="one two three",
        cut_after=1,
        frames=[f'data: {{"error": {{"message": "bad key {KEY}"}}}}\n\n'],
        ending="clean",
    )
    run_notebook(nb, env, allow_errors=True)
    path = tmp_path / "secrets.ipynb"
    nbformat.write(nb, path)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert len(errors) == 2 and "[redacted key]" in errors[0]["evalue"]
    assert gateway.requests[-1]["headers"]["Authorization"] == f"Bearer {KEY}"  # it was really used
    cli = Path(sys.executable).with_name("elk-jupyter")
    outputs = [
        subprocess.run([str(cli), *args], capture_output=True, text=True, env={**os.environ, **env})
        for args in (
            ["inspect", path],
            ["export", path, "-f", "jsonl"],
            ["export", path, "-f", "markdown"],
            ["replay", path, "-o", tmp_path / "replayed.ipynb"],
        )
    ]
    client = Client(KEY, base_url="https://user:pass@api.example.com/v1?token=abc")
    texts = [p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()]
    texts += [(o.stdout + o.stderr).encode() for o in outputs]
    texts += [repr(client).encode(), client.host.encode()]
    assert len(texts) >= 8 and all(o.returncode == 0 for o in outputs[:3])
    for blob in texts:
        assert KEY.encode() not in blob and KEY[-12:].encode() not in blob
    assert client.host == "api.example.com" and "pass" not in repr(client) and "token" not in repr(client)
    gateway.close()
