"""Sweeps against a real local gateway: the grid, concurrency, the table, offline replay, budgets."""

from __future__ import annotations

import io

import pytest

from elk_jupyter import Client, sweep
from elk_jupyter.errors import ConfigError, ElkError
from elk_jupyter.records.cache import Replays
from elk_jupyter.records.cache_file import Cache


def test_grid_runs_concurrently_and_replays_offline(gateway, tmp_path):
    client = Client("sk-sweep-test-1234", base_url=gateway.base_url, model="a")
    replays = Replays(Cache(tmp_path / "cache.sqlite3"))
    for _ in range(8):
        gateway.plan(text="answer <b>bold</b>", delay=0.05)
    out = io.StringIO()
    table = sweep(
        "Hi",
        models=["a", "b"],
        grid={"temperature": [0, 1]},
        repeats=2,
        client=client,
        concurrency=3,
        replays=replays,
        prices={"a": {"input": 1.0, "output": 2.0}},
        progress=out,
    )
    bodies = gateway.bodies()
    assert sorted((b["model"], b["temperature"]) for b in bodies) == sorted([(m, t) for m in "ab" for t in (0, 1)] * 2)
    assert 1 < gateway.max_in_flight <= 3
    assert [(r["model"], r["params"], r["repeat"]) for r in table.rows][:3] == [
        ("a", {"temperature": 0}, 0),
        ("a", {"temperature": 0}, 1),
        ("a", {"temperature": 1}, 0),
    ]
    assert all(
        r["status"] == "completed" and r["text"] == "answer <b>bold</b>" and r["latency"] > 0 for r in table.rows
    )
    assert table.rows[0]["cost"] == pytest.approx((table.rows[0]["prompt"] * 1 + table.rows[0]["completion"] * 2) / 1e6)
    assert table.rows[-1]["cost"] is None  # no price for b
    assert "answer &lt;b&gt;bold&lt;/b&gt;" in table._repr_html_() and "<b>bold" not in table._repr_html_()
    assert "sweep: 8/8 runs" in out.getvalue()
    gateway.close()  # offline from here on
    again = sweep(
        "Hi",
        models=["a", "b"],
        grid={"temperature": [0, 1]},
        repeats=2,
        client=client,
        replays=replays,
        replay="only",
        progress=None,
    )
    assert [r["text"] for r in again.rows] == [r["text"] for r in table.rows] and all(r["replayed"] for r in again.rows)


def test_only_mode_refuses_unrecorded_runs(gateway, tmp_path):
    client = Client("sk-sweep-test-1234", base_url=gateway.base_url, model="a")
    with pytest.raises(ElkError, match="never recorded"):
        sweep("Hi", client=client, replays=Replays(Cache(tmp_path / "c.sqlite3")), replay="only", progress=None)
    assert gateway.requests == []


def test_budget_guard_refuses_to_start(gateway, tmp_path):
    client = Client("sk-sweep-test-1234", base_url=gateway.base_url, model="a")
    prices = {"a": {"input": 10.0, "output": 30.0}}
    with pytest.raises(ConfigError, match=r"could cost up to \$0\.3.* over the budget of \$0\.0100"):
        sweep(
            "Hi",
            models=["a"],
            grid={"max_tokens": [1000]},
            repeats=10,
            client=client,
            prices=prices,
            budget=0.01,
            replays=Replays(Cache(tmp_path / "c.sqlite3")),
            progress=None,
        )
    with pytest.raises(ConfigError, match="no price for model 'b'"):
        sweep("Hi", models=["b"], client=client, prices=prices, budget=1.0, progress=None)
    assert gateway.requests == []


def test_budget_counts_n_and_max_completion_tokens(gateway):
    client = Client("sk-sweep-test-1234", base_url=gateway.base_url, model="a")
    prices = {"a": {"input": 0.0, "output": 10.0}}
    with pytest.raises(ConfigError, match=r"could cost up to \$0\.0400 "):  # 1 run × n=4 × 1000 × $10/1M
        sweep(
            "Hi",
            grid={"max_completion_tokens": [1000], "n": [4]},
            client=client,
            prices=prices,
            budget=0.01,
            progress=None,
        )
    assert gateway.requests == []


def test_sweep_honours_elk_replay_like_the_magics(gateway, tmp_path, monkeypatch):
    """One replay policy (cache.Replays.decide): without ``replay=`` a sweep follows $ELK_REPLAY."""
    client = Client("sk-sweep-test-1234", base_url=gateway.base_url, model="a")
    replays = Replays(Cache(tmp_path / "c.sqlite3"))
    monkeypatch.setenv("ELK_REPLAY", "only")
    with pytest.raises(ElkError, match="never recorded"):
        sweep("Hi", client=client, replays=replays, progress=None)
    assert gateway.requests == []
    monkeypatch.setenv("ELK_REPLAY", "auto")
    first = sweep("Hi", client=client, replays=replays, progress=None)
    monkeypatch.setenv("ELK_REPLAY", "only")
    again = sweep("Hi", client=client, replays=replays, progress=None)
    assert len(gateway.requests) == 1 and again.rows[0]["replayed"] and again.rows[0]["text"] == first.rows[0]["text"]
    monkeypatch.setenv("ELK_REPLAY", "sometimes")
    with pytest.raises(ConfigError, match="is not a replay mode"):
        sweep("Hi", client=client, replays=replays, progress=None)


def test_progress_false_is_no_progress_and_a_reply_with_line_breaks_stays_one_row(
    gateway, tmp_path, monkeypatch, capsys
):
    # experiment() takes progress=False: a sweep must too (it was an AttributeError, "a bug: please report it")
    monkeypatch.setenv("ELK_CACHE_DIR", str(tmp_path / "cache"))
    gateway.plan(text="two\n| fake | row")
    table = sweep("Hi", client=Client("sk-sweep-test-1234", base_url=gateway.base_url, model="a"), progress=False)
    assert capsys.readouterr() == ("", "")
    assert table.rows[0]["text"] == "two\n| fake | row"  # the data keeps it; the plain table shows one line per run
    assert repr(table).splitlines()[1].endswith(" | two | fake | row")
    assert len(repr(table).splitlines()) == 2
