"""Experiments in real kernels: the saved notebook replays offline to the identical table (issue 16's
"done when"), an interrupt keeps the finished runs and a re-run sends only the missing ones."""

from __future__ import annotations

import os
import shutil
import socket
import sys
import time

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from elk_jupyter.records.experiment import EXPERIMENT_KEY, validate
from tests.fake_gateway import FakeGateway
from tests.kernel import Kernel, run_notebook

KEY = "sk-elk-EXPERIMENT-kernel-31cc"

CELLS = [
    "%load_ext elk_jupyter",
    "from elk_jupyter.experiments import contains, rubric\n"
    "cases = [{'country': 'France', 'capital': 'Paris'}, {'country': 'Peru', 'capital': 'Lima'}]\n"
    "checks = [contains('$country'), rubric('names the capital', model='judge')]",
    "%%experiment --cases cases -m m1,m2 -p max_tokens=32 --repeats 2 --score checks --name capitals -o capitals\n"
    "Capital of $country? One word.",
    "from elk_jupyter import experiment\n"
    "experiment('Spell $country backwards', cases, models=['m1'], name='spelling', scorers=[contains('$capital')])",
    "a = capitals.aggregates()[capitals.spec.columns[0]]\nprint(a.pass_rate, a.mean_score)",
]


def _tables(nb) -> list[str]:
    return [
        o["data"]["text/markdown"]
        for c in nb.cells
        for o in c.get("outputs", [])
        if EXPERIMENT_KEY in o.get("metadata", {})
    ]


def _records(nb) -> list[dict]:
    return [
        o["metadata"][EXPERIMENT_KEY]
        for c in nb.cells
        for o in c.get("outputs", [])
        if EXPERIMENT_KEY in o.get("metadata", {})
    ]


def test_a_saved_experiment_replays_offline_to_the_identical_table(tmp_path):
    gateway = FakeGateway()
    base = {"ELK_BASE_URL": gateway.base_url, "ELK_MODEL": "m1", "PYTHONPATH": os.pathsep.join(sys.path)}
    nb = new_notebook(cells=[new_code_cell(source) for source in CELLS])
    try:
        run_notebook(nb, {**base, "ELK_API_KEY": KEY, "ELK_CACHE_DIR": str(tmp_path / "cache"), "ELK_REPLAY": "auto"})
    finally:
        gateway.close()  # stopped: from here on nothing answers on that address
    saved = tmp_path / "saved.ipynb"
    nbformat.write(nb, saved)
    first_tables, first_records = _tables(nb), _records(nb)
    assert len(first_tables) == 2 and all(validate(r) == [] for r in first_records)
    assert len(first_records[0]["runs"]) == 8 and all(r["judges"] for r in first_records[0]["runs"])
    # 8 runs + 2 distinct judge calls per distinct output, + 2 spelling runs: all were sent once
    assert len(gateway.requests) == 8 + len({(r["reply"]["text"]) for r in first_records[0]["runs"]}) + 2
    assert nb.cells[4].outputs[0]["text"] == "0.0 0.5\n"  # contains($country) passes, the echoing judge fails
    assert KEY not in saved.read_text()
    shutil.rmtree(tmp_path / "cache")  # a fresh machine: no cache at all
    # Listen on the stopped gateway's port, accepting nothing: any request would connect here.
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", int(gateway.base_url.rsplit(":", 1)[1].split("/")[0])))
    listener.listen(16)
    listener.setblocking(False)

    again = nbformat.read(saved, as_version=4)
    offline = {**base, "ELK_REPLAY": "only", "JPY_SESSION_NAME": str(saved), "ELK_CACHE_DIR": str(tmp_path / "new")}
    assert "ELK_API_KEY" not in os.environ  # (conftest) and not in the offline kernel either
    run_notebook(again, offline)
    assert _tables(again) == first_tables  # the very same matrix, scores, tokens, latency and cost
    replayed = _records(again)
    assert [[r["reply"] for r in e["runs"]] for e in replayed] == [
        [r["reply"] for r in e["runs"]] for e in first_records
    ]
    assert all(r["replayed"] for e in replayed for r in e["runs"])
    assert again.cells[4].outputs[0]["text"] == nb.cells[4].outputs[0]["text"]
    with pytest.raises(BlockingIOError):  # zero network: nobody connected
        listener.accept()
    listener.close()


@pytest.fixture
def kernel_and_gateway(tmp_path):
    gateway = FakeGateway()
    env = {
        **os.environ,
        "ELK_API_KEY": KEY,
        "ELK_BASE_URL": gateway.base_url,
        "ELK_MODEL": "m1",
        "ELK_CACHE_DIR": str(tmp_path / "cache"),
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    kernel = Kernel(env)
    yield kernel, gateway
    kernel.close()
    gateway.close()


def test_an_interrupt_keeps_finished_runs_and_a_rerun_sends_only_the_missing(kernel_and_gateway):
    kernel, gateway = kernel_and_gateway
    assert kernel.execute("%load_ext elk_jupyter\ncases = [{'n': i} for i in range(10)]").status == "ok"
    for _ in range(10):
        gateway.plan(delay=0.2)
    cell = "%%experiment --cases cases --concurrency 1 --name slow\nCount $n"
    stopped = kernel.execute(cell, interrupt_after=2.0, timeout=120)
    assert stopped.status == "error" and stopped.error["ename"] == "ExperimentInterrupted", stopped.error_text
    assert "re-run the cell to send only the" in stopped.error["evalue"] and len(stopped.error["traceback"]) == 1
    assert any(o["msg_type"] == "update_display_data" for o in stopped.outputs)  # the matrix filled in live
    kept = stopped.last_bundle()["metadata"][EXPERIMENT_KEY]["runs"]
    assert 0 < len(kept) < 10
    while gateway.in_flight:  # the run in flight at the interrupt finishes in the background
        time.sleep(0.05)
    sent_before = len(gateway.requests)
    resumed = kernel.execute(cell, timeout=120)
    assert resumed.status == "ok", resumed.error_text
    runs = resumed.last_bundle()["metadata"][EXPERIMENT_KEY]["runs"]
    assert [r["reply"]["text"] for r in runs] == [f"echo: Count {i}" for i in range(10)]
    assert len(gateway.requests) == 10 and sent_before < 10  # nothing was sent twice


def test_bad_experiment_arguments_are_one_line(kernel_and_gateway):
    kernel, gateway = kernel_and_gateway
    kernel.execute("%load_ext elk_jupyter\ng = {'model': ['a', 'b']}")
    bad = kernel.execute("%%experiment --grid g\nhi")
    assert bad.error["ename"] == "ConfigError" and "use models=[...]" in bad.error["evalue"]
    assert len(bad.error["traceback"]) == 1
    missing = kernel.execute("%%experiment --score nope\nhi")
    assert "--score: variable 'nope' is not defined" in missing.error["evalue"]
    unknown = kernel.execute("%%experiment --nope\nhi")  # its own parser: one UsageError line, the cell fails
    assert unknown.status == "error" and unknown.stderr.startswith("UsageError: %%experiment: unrecognized")
    assert "--nope" in unknown.stderr and unknown.stderr.count("\n") <= 1
    shown = kernel.execute("%%experiment --help\nhi")
    assert shown.status == "ok" and "--retry-failed" in shown.stdout and "--endpoint {chat,responses}" in shown.stdout
    assert gateway.requests == []
