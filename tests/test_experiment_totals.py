"""Experiment runs count in ``%elk usage`` and ``elk-jupyter inspect``: tokens, cost, live vs replayed."""

from __future__ import annotations

import os
import subprocess
import sys

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from elk_jupyter.experiments.view import bundle
from tests.environment import elk_env, fresh_shell, use_env

KEY = "sk-experiment-totals-1357"
USAGE = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
PRICES = {"m1": {"input": 1000.0, "output": 2000.0}}  # USD per 1M: 7·1000 + 3·2000 = $0.013 a run


@pytest.fixture
def ip(gateway, monkeypatch, tmp_path):
    use_env(monkeypatch, elk_env(gateway.base_url, KEY, tmp_path / "cache"), unset=("ELK_REPLAY",))
    shell, _ = fresh_shell(replay="auto")
    yield shell
    shell.parent_header = {}


def usage_lines(ip, capsys) -> dict[str, str]:
    capsys.readouterr()
    ip.run_line_magic("elk", "usage")
    return {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.strip()}


def test_elk_usage_counts_experiment_runs_live_and_replayed(ip, gateway, capsys):
    for _ in range(3):
        gateway.plan(text="Paris", usage=USAGE)
    ip.user_ns["prices"] = PRICES
    line = "%%experiment -m m1 --case n=1 --case n=2 --case n=3 --prices prices -o res\nQuestion $n"
    assert ip.run_cell(line).success
    lines = usage_lines(ip, capsys)
    assert "30 total" in lines["(experiments)"] and "3 runs (3 live, 0 replayed)" in lines["(experiments)"]
    assert "$0.039" in lines["(experiments)"]
    assert "30 total" in lines["(notebook)"]
    gateway.plan(text="hello", usage={"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2})
    assert ip.run_cell("%%chat\nhi").success
    assert "32 total" in usage_lines(ip, capsys)["(notebook)"]  # turns and experiment runs together
    # another experiment whose runs the cache answers: counted as replayed, not billed
    again = line.replace("--case n=1", "--case n=1 tag=x").replace("-o res", "-o again")  # the same requests
    assert ip.run_cell(again).success
    assert all(r.replayed for r in ip.user_ns["again"].runs) and len(gateway.requests) == 4
    lines = usage_lines(ip, capsys)
    assert lines["(experiments)"].startswith("(experiments)    2 · 6 runs (3 live, 3 replayed)")
    assert "30 tokens replayed" in lines["(experiments)"]
    assert "32 total" in lines["(notebook)"]


def test_inspect_adds_up_a_notebooks_experiments(ip, gateway, tmp_path):
    for _ in range(2):
        gateway.plan(text="x", usage=USAGE)
    ip.user_ns["prices"] = PRICES
    assert ip.run_cell(
        "%%experiment -m m1 --case n=1 --case n=2 --prices prices --name totals\x1b[2J -o res\nQ $n"
    ).success
    data, metadata = bundle(ip.user_ns["res"])
    output = new_output("display_data", data=data, metadata=metadata)
    path = tmp_path / "exp.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("%%experiment ...", outputs=[output])]), path)
    done = subprocess.run(
        [sys.executable, "-m", "elk_jupyter.cli.main", "inspect", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "1 experiments" in out and "2 runs (2 live, 0 replayed)" in out and "20 total" in out
    assert "$0.026" in out and "\x1b" not in out and KEY not in out
    assert "notebook (turns + live experiment runs): 14 prompt · 6 completion · 20 total" in out
