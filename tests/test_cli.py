"""The elk-jupyter command on real saved notebooks (recorded through real kernels)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from elk_jupyter.records import notebooks
from elk_jupyter.records import turn as record
from tests.recording import KEY

CLI = [str(Path(sys.executable).with_name("elk-jupyter"))]


def cli(*args, env_vars=None):
    return subprocess.run(
        [*CLI, *map(str, args)], capture_output=True, text=True, timeout=60, env={**os.environ, **(env_vars or {})}
    )


def test_inspect_lists_conversations_turns_and_usage(recorded):
    path, _, _ = recorded
    before = path.read_bytes()
    result = cli("inspect", path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "5 turns in 3 conversations" in out
    assert "[default]" in out and "[r]" in out and "[other]" in out
    assert "'First question' -> 'echo: First question'" in out and "usage:" in out
    assert KEY not in out and path.read_bytes() == before


def test_export_as_messages_jsonl_and_markdown(recorded, tmp_path):
    path, _, _ = recorded
    messages = json.loads(cli("export", path, "-f", "json").stdout)
    assert messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "First question"},
        {"role": "assistant", "content": "echo: First question"},
        {"role": "user", "content": "Second question"},
        {"role": "assistant", "content": "echo: Second question"},
    ]
    lines = cli("export", path, "-c", "r", "-f", "jsonl").stdout.strip().splitlines()
    assert [json.loads(line)["prompt"] for line in lines] == ["Chained one", "Chained two"]
    out = tmp_path / "r.md"
    assert cli("export", path, "-c", "r", "-f", "markdown", "-o", out).returncode == 0
    r1 = [r["turn"] for r in notebooks.iter_records(notebooks.read_notebook(path))][2]
    assert f"## {r1['id'][:8]} · user" in out.read_text() and "echo: Chained two" in out.read_text()


@pytest.mark.parametrize("command", ["rerun", "replay"])  # replay: its first name, kept as an alias
def test_rerun_runs_live_with_another_model_and_writes_a_new_notebook(recorded, tmp_path, command):
    path, gateway, values = recorded
    before = path.read_bytes()
    gateway.plans.clear()
    out = tmp_path / "replayed.ipynb"
    sent = len(gateway.requests)
    result = cli(command, path, "-o", out, "-m", "fake-large", "-p", "temperature=0.5", env_vars=values)
    assert result.returncode == 0, result.stderr
    bodies = gateway.bodies()[sent:]
    assert len(bodies) == 5 and all(b["model"] == "fake-large" and b["temperature"] == 0.5 for b in bodies)
    # the chained Responses turn points at the *new* first response
    new_records = [r["turn"] for r in notebooks.iter_records(notebooks.read_notebook(out))]
    assert bodies[3]["previous_response_id"] == new_records[2]["reply"]["id"]
    assert all(record.validate({"version": 1, "package": "x", "turn": t}) == [] for t in new_records)
    assert (
        new_records[0]["id"][:8] in result.stdout
        and "fake-large-served" in result.stdout
        and f"wrote {out}" in result.stdout
    )
    assert path.read_bytes() == before and KEY not in result.stdout + result.stderr + out.read_text()


def test_bad_files_fail_with_one_line_and_status_2(tmp_path):
    (tmp_path / "bad.ipynb").write_text("{nope")
    empty = tmp_path / "empty.ipynb"
    empty.write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    for args in (
        ("inspect", tmp_path / "bad.ipynb"),
        ("inspect", tmp_path / "none.ipynb"),
        ("export", empty),
        ("replay", empty, "-o", empty),
    ):
        result = cli(*args)
        assert result.returncode == 2 and result.stderr.startswith("elk-jupyter: error: ")
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
