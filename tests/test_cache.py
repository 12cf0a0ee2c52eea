"""The replay cache through the real magics: whose reply it replays, and that no problem with it
(a file where its directory should be, an unwritable home, a damaged or locked database) fails a
turn. Also the replay mode read from ``ELK_REPLAY``."""

from __future__ import annotations

import sqlite3

import pytest

from elk_jupyter.errors import ConfigError
from elk_jupyter.records.cache_file import BUSY_TIMEOUT, Cache
from tests.environment import elk_env, fresh_shell, turns, use_env

KEY = "sk-elk-cache-test-A1B2-distinctive"
OTHER_KEY = "sk-elk-cache-test-C3D4-another-account"


@pytest.fixture
def env(gateway, monkeypatch, tmp_path):
    use_env(monkeypatch, elk_env(gateway.base_url, KEY, tmp_path / "cache", replay="auto"))
    return monkeypatch


def kernel_state():
    """A fresh ElkMagics, as a new kernel would have (same cache on disk, no notebook state)."""
    return fresh_shell()


def turn(ip, text="Same question"):
    result = ip.run_cell(f"%%chat\n{text}")
    assert result.success, result.error_in_exec
    return turns(ip)[-1]


def test_a_reply_is_replayed_only_for_the_same_gateway_path_and_account(env, gateway, tmp_path):
    ip, _ = kernel_state()
    assert not turn(ip).replayed
    ip, _ = kernel_state()
    assert turn(ip).replayed  # same body, host, path and key: from the cache, no request
    assert len(gateway.requests) == 1
    env.setenv("ELK_BASE_URL", gateway.base_url + "/other-tenant")  # same host, another path
    ip, _ = kernel_state()
    assert not turn(ip).replayed
    env.setenv("ELK_BASE_URL", gateway.base_url)
    env.setenv("ELK_API_KEY", OTHER_KEY)  # same gateway, another account
    ip, _ = kernel_state()
    assert not turn(ip).replayed
    assert len(gateway.requests) == 3
    stored = (tmp_path / "cache" / "cache.sqlite3").read_bytes()
    for key in (KEY, OTHER_KEY):
        assert key.encode() not in stored and key[-12:].encode() not in stored


def unusable_file(tmp_path, env):
    (tmp_path / "a-file").write_text("not a directory")
    env.setenv("ELK_CACHE_DIR", str(tmp_path / "a-file"))


def unwritable_home(tmp_path, env):
    env.delenv("ELK_CACHE_DIR")
    env.delenv("XDG_CACHE_HOME", raising=False)
    env.setenv("HOME", "/sys")  # no one, root included, may create a directory there


@pytest.mark.parametrize("breakage", [unusable_file, unwritable_home])
def test_an_unusable_cache_is_a_miss_with_one_warning(env, gateway, tmp_path, capsys, breakage):
    breakage(tmp_path, env)
    ip, magics = kernel_state()
    first, second = turn(ip, "one"), turn(ip, "two")
    assert (first.status, second.status, first.text, second.text) == (
        "completed",
        "completed",
        "echo: one",
        "echo: two",
    )
    warnings = [line for line in capsys.readouterr().err.splitlines() if "elk-jupyter:" in line]
    assert len(warnings) == 1 and "the replay cache" in warnings[0] and "is unusable" in warnings[0]
    assert magics.runner.replays.unusable is not None
    assert len(gateway.requests) == 2


def not_a_database(path):
    path.write_bytes(b"this is not an sqlite database" * 100)


def damaged_database(path):
    """A real cache whose pages were overwritten (a machine crash while writing, with no fsync)."""
    data = bytearray(path.read_bytes())
    data[100:] = b"\xff" * (len(data) - 100)  # everything after the header: the schema and the rows
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [not_a_database, damaged_database])
def test_a_damaged_cache_is_set_aside_and_a_new_one_started(env, gateway, tmp_path, capsys, damage):
    path = tmp_path / "cache" / "cache.sqlite3"
    ip, _ = kernel_state()
    turn(ip, "before")  # creates the database
    damage(path)
    ip, magics = kernel_state()
    first = turn(ip, "one")  # the damaged file is found and moved aside: a miss, sent live
    ip, _ = kernel_state()
    again = turn(ip, "one")  # the new cache kept it
    assert (first.status, first.replayed, again.replayed) == ("completed", False, True)
    warnings = [line for line in capsys.readouterr().err.splitlines() if "elk-jupyter:" in line]
    assert len(warnings) == 1 and "the replay cache" in warnings[0] and "was damaged" in warnings[0]
    assert magics.runner.replays.unusable is None
    (aside,) = path.parent.glob("cache.sqlite3.damaged-*")
    assert aside.read_bytes()[100:200] == b"\xff" * 100 or aside.read_bytes().startswith(b"this is not")
    assert len(gateway.requests) == 2


def test_a_locked_cache_is_skipped_with_a_warning_not_waited_for(env, gateway, tmp_path, capsys):
    ip, magics = kernel_state()
    turn(ip, "warm up")  # creates the database
    holder = sqlite3.connect(tmp_path / "cache" / "cache.sqlite3", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another kernel in the middle of a write
    try:
        ip, magics = kernel_state()
        first, second = turn(ip, "warm up"), turn(ip, "later")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert (first.replayed, first.status, second.status) == (False, "completed", "completed")
    warnings = [line for line in capsys.readouterr().err.splitlines() if "elk-jupyter:" in line]
    assert len(warnings) == 1 and "is locked by another process: skipped" in warnings[0]
    assert magics.runner.replays.unusable is None  # a lock passes: the cache stays on
    busy_ms = magics.runner.replays.cache._connect().execute("PRAGMA busy_timeout").fetchone()[0]
    assert busy_ms == BUSY_TIMEOUT * 1000 <= 250  # sqlite3.connect waits 5000 ms per statement by default


def test_the_cache_file_has_no_key_even_when_a_header_echoes_it(env, gateway, tmp_path):
    gateway.plan(headers={"x-request-id": f"echo-{KEY}"})
    ip, _ = kernel_state()
    assert turn(ip).reply["request_id"].endswith("echo-[redacted key]")
    assert KEY.encode() not in Cache(tmp_path / "cache" / "cache.sqlite3").path.read_bytes()


@pytest.mark.parametrize("value", ["onyl", "ON", " only", "replay"])
def test_an_unknown_elk_replay_is_a_config_error_naming_the_modes(env, gateway, value):
    env.setenv("ELK_REPLAY", value)
    ip, _ = kernel_state()
    result = ip.run_cell("%%chat\nhello")
    assert isinstance(result.error_in_exec, ConfigError)
    assert str(result.error_in_exec) == f"ELK_REPLAY={value!r} is not a replay mode: use one of auto, off, only"
    assert gateway.requests == []  # never silently live, and billed


def test_a_sweep_over_a_damaged_cache_runs_live(gateway, tmp_path, capsys):
    from elk_jupyter import Client, sweep
    from elk_jupyter.records.cache import Replays

    path = tmp_path / "corrupt.sqlite3"
    path.write_bytes(b"not sqlite at all" * 100)
    warnings = []
    replays = Replays(Cache(path), warn=warnings.append)  # opening it must not raise either
    client = Client(KEY, base_url=gateway.base_url, model="a")
    table = sweep("Hi", models=["a"], repeats=2, client=client, replays=replays, progress=None)
    assert [r["status"] for r in table.rows] == ["completed", "completed"]
    assert len(warnings) == 1 and "was damaged" in warnings[0] and len(gateway.requests) == 2
