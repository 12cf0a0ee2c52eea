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
    out = inspect([new_code_cell("%%experiment ...", outputs=[output])], tmp_path)
    assert "1 experiments" in out and "2 runs (2 live, 0 replayed)" in out and "20 total" in out
    assert "$0.026" in out and "\x1b" not in out and KEY not in out
    assert "notebook (live turns + live experiment runs): 14 prompt · 6 completion · 20 total" in out


def test_a_judge_verdict_asked_once_is_billed_once_and_its_price_counts(ip, gateway, capsys):
    # two repeats, one output: the judge is asked once. Every reply is the same text: the runs and
    # the judge race for the queued replies (a first run's judge may be asked before the second run)
    for _ in range(3):
        gateway.plan(text="SCORE: 1", usage=USAGE)
    ip.user_ns["prices"] = {**PRICES, "j": PRICES["m1"]}
    line = "%%experiment -m m1 --repeats 2 --score 'rubric(\"good?\")' --judge j --prices prices -o res\nQ"
    assert ip.run_cell(line).success
    assert sorted(b["model"] for b in gateway.bodies()) == ["j", "m1", "m1"]
    lines = usage_lines(ip, capsys)
    assert "30 total" in lines["(experiments)"] and "$0.039" in lines["(experiments)"]  # 3 requests sent
    assert "10 tokens replayed" in lines["(experiments)"] and "30 total" in lines["(notebook)"]
    # the table's figure is the same: the runs and the verdict once (not the runs only)
    result = ip.user_ns["res"]
    assert result.cost == pytest.approx(0.039) and "0.039" in bundle(result)[0]["text/plain"]


def test_scoring_the_kernels_runs_again_keeps_them_billed(ip, gateway, capsys):
    for _ in range(2):
        gateway.plan(text="Paris", usage=USAGE)
    assert ip.run_cell("%%experiment -m m1 --case n=1 --case n=2 -o res\nQ $n").success
    assert ip.run_cell("%%experiment -m m1 --case n=1 --case n=2 --score 'contains(\"P\")' -o res\nQ $n").success
    assert len(gateway.requests) == 2 and all(r.scores for r in ip.user_ns["res"].runs)
    lines = usage_lines(ip, capsys)
    assert "2 runs (2 live, 0 replayed)" in lines["(experiments)"] and "20 total" in lines["(notebook)"]


def test_inspect_counts_a_copied_experiment_once_and_says_which_record_it_skipped(ip, gateway, tmp_path):
    import copy
    import dataclasses

    from elk_jupyter.records.turn import record_of
    from tests.environment import turns

    for _ in range(2):
        gateway.plan(text="x", usage=USAGE)
    gateway.plan(text="hi", usage=USAGE)
    ip.user_ns["prices"] = PRICES
    assert ip.run_cell("%%experiment -m m1 --case n=1 --case n=2 --prices prices -o res\nQ $n").success
    assert ip.run_cell("%%chat\nhello").success
    data, metadata = bundle(ip.user_ns["res"])
    hostile, huge = copy.deepcopy(metadata), copy.deepcopy(metadata)
    hostile["elk_jupyter_experiment"]["runs"][0]["cost"] = "a lot"
    for run in huge["elk_jupyter_experiment"]["runs"]:
        run["cost"], run["replayed"] = 1e308, False
        run["reply"]["id"] = run["reply"]["id"] + "-other"  # another sending: its costs overflow a float
    replayed = dataclasses.replace(turns(ip)[0], replayed=True)
    cells = [
        new_code_cell("%%experiment ...", outputs=[new_output("display_data", data=data, metadata=m)])
        for m in (metadata, metadata, hostile)  # the cell copied, then a hand-edited copy
    ]
    cells.append(
        new_code_cell("%%chat", outputs=[new_output("display_data", metadata={"elk_jupyter": record_of(replayed)})])
    )
    out = inspect(cells, tmp_path)
    assert "note: experiment record 3 is invalid: runs[0].cost should be number or null, got str" in out
    assert "experiment runs: 4 runs (2 live, 2 replayed) · 14 prompt · 6 completion · 20 total · $0.026" in out
    assert "notebook (live turns + live experiment runs): 14 prompt · 6 completion · 20 total" in out  # turn replayed
    cells[1].outputs[0].metadata = huge  # costs whose sum overflows a float: no figure, not a crash
    assert "experiment runs: 4 runs (4 live, 0 replayed) · 28 prompt · 12 completion · 40 total\n" in inspect(
        cells[:2], tmp_path
    )


def inspect(cells, tmp_path) -> str:
    path = tmp_path / "saved.ipynb"
    nbformat.write(new_notebook(cells=cells), path)
    done = subprocess.run(
        [sys.executable, "-m", "elk_jupyter.cli.main", "inspect", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_run_replay_only_cannot_serve_is_not_sent_neither_live_nor_replayed(ip, gateway, capsys):
    from elk_jupyter.experiments.results import result_of
    from elk_jupyter.records import experiment as records

    gateway.plan(text="Paris", usage=USAGE)
    assert ip.run_cell("%%experiment -m m1 --case n=1 -o res\nQ $n").success  # recorded: replay can serve it
    line = "%%experiment -m m1 --case n=1 --case n=2 --case n=3 --replay only -o only\nQ $n"
    assert ip.run_cell(line).success
    assert len(gateway.requests) == 1
    runs = sorted(ip.user_ns["only"].runs, key=lambda r: r.case)
    assert [(r.replayed, r.sent) for r in runs] == [(True, True), (False, False), (False, False)]
    lines = usage_lines(ip, capsys)
    assert "4 runs (1 live, 1 replayed, 2 not sent, 2 errors)" in lines["(experiments)"]
    # the record says it (only for such runs), passes the validator and reads back the same
    record = bundle(ip.user_ns["only"])[1][records.EXPERIMENT_KEY]
    assert [run.get("sent") for run in sorted(record["runs"], key=lambda r: r["case"])] == [None, False, False]
    assert records.validate(record) == []
    assert [r.sent for r in sorted(result_of(record).runs, key=lambda r: r.case)] == [True, False, False]
