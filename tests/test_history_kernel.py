"""History across kernel restarts, forks and Responses chains, in real kernels (jupyter_client).

Each test plays what a user does in JupyterLab: cells run in a kernel (with their cell ids), the
notebook is saved with the outputs the front-end received, the kernel restarts, and the saved file
is restored, exported or re-run. The gateway is the generating local one (its Responses store
threads ``previous_response_id``); the chains under the context policy also run against llmock.
"""

from __future__ import annotations

import contextlib
import json
import math

import nbformat
import pytest

from elk_jupyter.records import notebooks
from tests.conftest import LLMOCK, llmock_server
from tests.environment import kernel_env
from tests.kernel import Kernel, run_notebook
from tests.test_cli import cli

KEY = "sk-elk-history-kernel-55PW"


@pytest.fixture
def env(module_gateway, tmp_path):
    return kernel_env(module_gateway.base_url, KEY, tmp_path / "cache")


class Session:
    """One kernel's life: the cells it ran and what the front-end received, savable as .ipynb."""

    def __init__(self, env: dict):
        self.kernel = Kernel(env)
        self.cells: list[tuple[str, dict | None]] = []
        self.run("%load_ext elk_jupyter")

    def run(self, code: str, cell_id: str | None = None, ok: bool = True):
        result = self.kernel.execute(code, cell_id=cell_id)
        assert (result.status == "ok") == ok, result.error_text or result.stdout
        bundle = result.last_bundle()
        self.cells.append((code, bundle if bundle.get("metadata", {}).get("elk_jupyter") else None))
        return result

    def state(self, conversation: str = "default") -> dict:
        code = (
            "import json\n"
            "_n = get_ipython().magics_manager.registry['ElkMagics'].conversations\n"
            f"_c = _n.conversation({conversation!r})\n"
            "print(json.dumps({'active': _c.active, 'turns': [t.id for t in _c.turns],"
            " 'parents': {i: t.parent for i, t in _n.index.items()}}))"
        )
        return json.loads(self.kernel.execute(code).stdout)

    def notebook(self) -> nbformat.NotebookNode:
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        for code, bundle in self.cells:
            outputs = []
            if bundle is not None:
                outputs.append(nbformat.v4.new_output("display_data", data=bundle["data"], metadata=bundle["metadata"]))
            nb.cells.append(nbformat.v4.new_code_cell(code, outputs=outputs))
        return nb

    def close(self) -> None:
        self.kernel.close()


@contextlib.contextmanager
def session(env):
    s = Session(env)
    try:
        yield s
    finally:
        s.close()


def rec(result) -> dict:
    """The turn record the front-end saves with this cell's output."""
    return result.last_bundle()["metadata"]["elk_jupyter"]["turn"]


def context_ids(turn: dict, *known: dict) -> list[str]:
    """A record's ``context`` as ids: a saved ``{"parents": k}`` followed through the ``known``
    records' parent links (docs/record.md, "Earlier turns in `request`")."""
    saved = turn["context"]
    if isinstance(saved, list):
        return saved
    by_id, ids, parent = {k["id"]: k for k in known}, [], turn["parent"]
    for _ in range(saved["parents"]):
        ids.append(parent)
        parent = by_id[parent].get("parent") if parent in by_id else None
    return ids[::-1]


def save(nb, path) -> None:
    nbformat.write(nb, path)


def user_texts(body) -> list[str]:
    return [m["content"] for m in body["messages"] if m["role"] == "user"]


def test_restart_then_restore_never_chains_saved_turns_onto_a_new_one(env, module_gateway, tmp_path):
    path = tmp_path / "work.ipynb"
    with session(env) as before:
        first, second = rec(before.run("%%chat\nFirst")), rec(before.run("%%chat\nSecond"))
        save(before.notebook(), path)
    with session(env) as after:  # the restart; one cell runs before the restore
        fresh = rec(after.run("%%chat\nFresh"))
        out = after.run(f"%elk restore {path}").stdout
        assert f"restored 2 turns in 1 conversations from {path}: default (context {fresh['id'][:8]})" in out
        state = after.state()
        assert state["parents"][second["id"]] == first["id"] and state["parents"][fresh["id"]] is None
        assert state["turns"] == [fresh["id"], first["id"], second["id"]]
        assert state["active"] == [fresh["id"]]  # the most recent turn, and said so
        accepted = after.run(f"%elk accept {second['id'][:8]}").stdout
        assert f"leaves {fresh['id'][:8]}" in accepted
        third = rec(after.run("%%chat\nThird"))
        assert context_ids(third, first, second) == [first["id"], second["id"]] and third["parent"] == second["id"]
        assert user_texts(module_gateway.bodies()[-1]) == ["First", "Second", "Third"]


def test_continue_after_restart_then_restore_rebuilds_both_kernels_turns(env, module_gateway, tmp_path):
    path = tmp_path / "continued.ipynb"
    with session(env) as one:
        one.run("%%chat\nOne")
        one.run("%%chat\nTwo")
        cells = one.cells
    with session(env) as two:  # restarted, not restored: the notebook goes on from scratch
        three, four = rec(two.run("%%chat\nThree")), rec(two.run("%%chat\nFour"))
        two.cells[:0] = cells
        save(two.notebook(), path)
    with session(env) as third_kernel:
        out = third_kernel.run(f"%elk restore {path}").stdout
        assert "restored 4 turns in 1 conversations" in out
        state = third_kernel.state()
        assert len(state["turns"]) == 4 and state["active"] == [three["id"], four["id"]]
        five = rec(third_kernel.run("%%chat\nFive"))
        assert context_ids(five, three, four) == [three["id"], four["id"]]
        assert user_texts(module_gateway.bodies()[-1]) == ["Three", "Four", "Five"]
    exported = json.loads(cli("export", path, "-f", "json").stdout)
    assert [m["content"] for m in exported] == ["Three", "echo: Three", "Four", "echo: Four"]


def test_a_fork_is_restored_and_exported_with_its_ancestry(env, module_gateway, tmp_path):
    path = tmp_path / "forked.ipynb"
    with session(env) as before:
        a = rec(before.run("%%chat\nA"))
        assert "forked 'default' into 'side' with 1 turns" in before.run("%elk fork default side").stdout
        before.run("%%chat\nB")
        s1 = rec(before.run("%%chat -c side\nS1"))
        assert s1["parent"] == a["id"] and s1["conversation"] == "side"
        save(before.notebook(), path)
    with session(env) as after:
        out = after.run(f"%elk restore {path}").stdout
        assert "restored 3 turns in 2 conversations" in out
        assert after.state("side")["active"] == [a["id"], s1["id"]]
        history = after.run("%elk history side").stdout
        assert f"*{a['id'][:8]}" in history and "(from default)" in history
        after.run("%%chat -c side\nS2")
        assert user_texts(module_gateway.bodies()[-1]) == ["A", "S1", "S2"]
    exported = json.loads(cli("export", path, "-c", "side", "-f", "json").stdout)
    assert [m["content"] for m in exported] == ["A", "echo: A", "S1", "echo: S1"]
    markdown = cli("export", path, "-c", "side", "-f", "markdown").stdout
    assert f"## {a['id'][:8]} · user" in markdown


def edited(path, target, change) -> None:
    """``path``'s notebook with its records changed by ``change(turns)`` (a hand edit)."""
    nb = notebooks.read_notebook(path)
    outputs = [o for cell in nb.cells for o in cell.get("outputs", [])]
    turns = [o["metadata"]["elk_jupyter"]["turn"] for o in outputs if "elk_jupyter" in o.get("metadata", {})]
    change(turns)  # in place: iter_records yields cleaned copies
    save(nb, target)


def test_impossible_histories_are_one_line_errors_and_restore_nothing(env, module_gateway, tmp_path):
    path = tmp_path / "good.ipynb"
    with session(env) as before:
        for prompt in ("First", "Second", "Third"):
            before.run(f"%%chat\n{prompt}")
        save(before.notebook(), path)
    ids = [r["turn"]["id"] for r in notebooks.iter_records(notebooks.read_notebook(path))]
    cases = {
        "self-parent": (
            lambda t: t[1].update(parent=t[1]["id"]),
            f"turn {ids[1][:8]}) is invalid: turn.parent is the turn itself",
        ),
        "cycle": (lambda t: t[0].update(parent=t[2]["id"]), "its parents form a cycle"),
        "dangling": (
            lambda t: t[1].update(parent="feedbeef" * 4),
            f"turn {ids[1][:8]}) cannot be rebuilt: its parent feedbeef is not in",
        ),
        "duplicate": (lambda t: t[2].update(t[1], prompt="edited"), f"turn {ids[1][:8]}: two different records carry"),
    }
    with session(env) as after:
        for name, (change, message) in cases.items():
            target = tmp_path / f"{name}.ipynb"
            edited(path, target, change)
            result = after.run(f"%elk restore {target}", ok=False)
            assert len(result.error["traceback"]) == 1 and message in result.error["traceback"][0], name
            assert "no conversations yet" in after.run("%elk list").stdout  # nothing half-restored
            exported = cli("export", target)
            assert exported.returncode == 2 and message in exported.stderr, name
            assert len(exported.stderr.strip().splitlines()) == 1
        after.run("%%chat\nStill works")


def test_accept_is_stated_and_survives_a_restart(env, module_gateway, tmp_path):
    path = tmp_path / "accepted.ipynb"
    with session(env) as before:
        a = rec(before.run("%%chat\nA"))
        module_gateway.plan(text="half of an answer", cut_after=2)
        b = rec(before.run("%%chat\nB", ok=False))
        c = rec(before.run("%%chat\nC"))
        out = before.run(f"%elk accept {b['id'][:8]}").stdout
        assert f"joins {b['id'][:8]} (after {a['id'][:8]}); leaves {c['id'][:8]}" in out
        d = rec(before.run("%%chat\nD"))
        assert context_ids(d, a, b) == [a["id"], b["id"]]
        save(before.notebook(), path)
    with session(env) as after:
        out = after.run(f"%elk restore {path}").stdout
        assert f"accepted earlier: {b['id'][:8]}" in out  # D was built on it
        assert after.state()["active"] == [a["id"], b["id"], d["id"]]
        after.run("%%chat\nE")
        assert [m["content"] for m in module_gateway.bodies()[-1]["messages"]][:4] == ["A", "echo: A", "B", "half of "]


def test_rerun_regenerates_and_run_all_of_a_reopened_notebook_replays(env, module_gateway, tmp_path):
    path = tmp_path / "jokes.ipynb"
    live = dict(env, ELK_REPLAY="auto")
    with session(live) as before:
        sent = len(module_gateway.requests)
        assert rec(before.run("%%chat -t 1\nA joke", cell_id="joke"))["origin"] == "live"
        again = before.run("%%chat -t 1\nA joke", cell_id="joke")  # the user re-runs for another one
        assert rec(again)["origin"] == "regenerated" and len(module_gateway.requests) == sent + 2
        assert "regenerated" in again.last_bundle()["data"]["text/markdown"].splitlines()[0]
        before.cells[1:2] = []  # re-run in place: the cell keeps its last output only
        save(before.notebook(), path)
    reopened = dict(live, JPY_SESSION_NAME=str(path), ELK_CACHE_DIR=str(tmp_path / "other-machine"))
    with session(reopened) as after:
        sent = len(module_gateway.requests)
        first = after.run("%%chat -t 1\nA joke", cell_id="joke")  # Run All
        assert rec(first)["origin"] == "replayed" and len(module_gateway.requests) == sent
        assert "replayed" in first.last_bundle()["data"]["text/markdown"].splitlines()[0]
        assert rec(after.run("%%chat -t 1\nA joke", cell_id="joke"))["origin"] == "regenerated"
        assert len(module_gateway.requests) == sent + 1
        forced = after.run("%%chat -t 1 --replay auto\nA joke", cell_id="joke")
        assert rec(forced)["origin"] == "replayed" and len(module_gateway.requests) == sent + 1


def strict_json(text: str):
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_records_with_odd_replies_validate_in_the_saved_notebook(env, module_gateway, tmp_path):
    odd = [
        dict(usage={"prompt_tokens": math.nan, "completion_tokens": 2.5, "total_tokens": "7"}),
        dict(usage={"input_tokens": "x", "output_tokens": math.inf, "input_tokens_details": []}),
        dict(tool_calls=[("lookup", '{"q": "elk"}'), ("now", "{}")], usage={"prompt_tokens": -3}),
        dict(text="cut in the middle of this", cut_after=2),
    ]
    cells = ["%load_ext elk_jupyter", "%%chat\nOne", "%%respond\nTwo", "%%chat -n 2\nThree", "%%respond\nFour"]
    for plan in odd:
        module_gateway.plan(**plan)
    path = tmp_path / "odd.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    run_notebook(nb, env, allow_errors=True)
    save(nb, path)
    strict_json(path.read_text())  # no NaN or Infinity anywhere in the file
    turns = notebooks.load_turns(path)  # every record validates (load_turns refuses any that does not)
    assert [t.status for t in turns] == ["completed", "completed", "completed", "interrupted"]
    assert all(type(t.context_tokens) is int for t in turns)
    assert turns[2].reply["tool_calls"][1]["function"]["name"] == "now"


@pytest.mark.skipif(not LLMOCK.exists(), reason="llmock is not installed")
def test_chains_under_the_context_policy_against_llmock(env, tmp_path):
    """llmock answers "Hello! You said: <every text it was sent>", so its answer is its view.

    llmock 0.2.2 keeps no Responses store (it echoes previous_response_id back and nothing more),
    so here the model's own report covers what is re-sent; the chained part is checked against
    the local gateway's store in tests/test_history.py.
    """
    with llmock_server() as base_url, session(dict(env, ELK_BASE_URL=base_url, ELK_MODEL="gpt-4o")) as k:
        k.run("%config ElkMagics.context_turns = 1")
        a, b = rec(k.run("%%respond\nA")), rec(k.run("%%respond\nB"))
        assert b["mode"] == "chain" and b["request"]["previous_response_id"] == a["reply"]["id"]
        c_run = k.run("%%respond\nC")
        c = rec(c_run)
        assert (
            context_ids(c, a, b) == [b["id"]]
            and c["mode"] == "stateless"
            and "previous_response_id" not in c["request"]
        )
        assert c["mode_reason"].startswith(f"{b['id'][:8]}'s stored response holds {a['id'][:8]}")
        assert c["reply"]["text"] == "Hello! You said: " + " ".join([b["prompt"], b["reply"]["text"], "C"])
        k.run("%config ElkMagics.context_turns = 0")
        p1 = rec(k.run("%%respond -c nc\nP1"))
        p2 = rec(k.run("%%respond -c nc --no-context\nP2"))
        p3 = rec(k.run("%%respond -c nc\nP3"))
        assert (
            context_ids(p3, p1, p2) == [p1["id"], p2["id"]]
            and p3["request"]["previous_response_id"] == p1["reply"]["id"]
        )
        assert p3["reply"]["text"] == "Hello! You said: " + " ".join(["P2", p2["reply"]["text"], "P3"])
