"""The chat panel in a real kernel (jupyter_client over ZMQ, the fake gateway on 127.0.0.1): the kernel's
Interrupt stops a panel's reply and leaves no thread or connection; cells run while it streams; a
restart leaves no connection open."""

from __future__ import annotations

import time

import pytest

from tests.environment import kernel_env
from tests.kernel import Kernel

KEY = "sk-test-panel-kernel-0987654321"
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
OPEN = "%load_ext elk_jupyter\nfrom elk_jupyter import ChatPanel\npanel = ChatPanel(conversation='k')\n"


@pytest.fixture
def kernel(gateway, tmp_path):
    k = Kernel(kernel_env(gateway.base_url, KEY, tmp_path / "cache"), cwd=str(tmp_path))
    yield k
    k.close()


def wait_for(condition, seconds=20.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def test_kernel_interrupt_stops_the_panel_reply_and_leaves_no_thread_or_socket(kernel, gateway):
    gateway.plan(text=" ".join(f"w{i}" for i in range(600)), delay=0.02)
    assert kernel.execute(OPEN + "future = panel.send('talk')", cell_id="panel").status == "ok"
    wait_for(lambda: gateway.in_flight == 1)
    probe = kernel.execute("print(panel.busy, sum(range(10)))")  # the kernel is free meanwhile
    assert probe.stdout.strip() == "True 45"
    kernel.manager.interrupt_kernel()  # a real SIGINT while the kernel is idle, as the Interrupt button sends
    wait_for(lambda: gateway.in_flight == 0, seconds=10)
    check = kernel.execute(
        "import threading\n"
        "error = future.exception(timeout=10)\n"
        "turn = panel.runner.conversations.conversation('k').turns[-1]\n"
        "print(turn.status, len(turn.text.split()) < 600, type(error).__name__)\n"
        "workers = [t for t in threading.enumerate() if t.name.startswith('elk-panel')]\n"
        "[t.join(5) for t in workers]\n"
        "print([t.name for t in workers if t.is_alive()])\n"
        "print(panel.busy, repr(panel.live))"
    )
    assert check.stdout.splitlines() == ["interrupted True StreamError", "[]", "False ''"]
    # The next turn works.
    gateway.plan(text="after the interrupt")
    again = kernel.execute("print(panel.send('again').result(timeout=10).reply.text)")
    assert again.stdout.strip() == "after the interrupt"


def test_interrupting_a_cell_while_the_panel_streams_stops_both(kernel, gateway):
    gateway.plan(text=" ".join(f"w{i}" for i in range(600)), delay=0.02)
    kernel.execute(OPEN + "future = panel.send('talk')", cell_id="panel")
    wait_for(lambda: gateway.in_flight == 1)
    cell = kernel.execute("import time\ntime.sleep(30)", interrupt_after=0.5)
    assert cell.error["ename"] == "KeyboardInterrupt"
    wait_for(lambda: gateway.in_flight == 0, seconds=10)
    done = kernel.execute("print(type(future.exception(timeout=10)).__name__, panel.busy)")
    assert done.stdout.strip() == "StreamError False"


def test_a_restart_while_the_panel_streams_leaves_no_connection(kernel, gateway):
    gateway.plan(text=" ".join(f"w{i}" for i in range(600)), delay=0.02)
    kernel.execute(OPEN + "future = panel.send('talk')", cell_id="panel")
    wait_for(lambda: gateway.in_flight == 1)
    kernel.manager.restart_kernel(now=True)
    wait_for(lambda: gateway.in_flight == 0, seconds=10)
    kernel.client.wait_for_ready(timeout=60)
    fresh = kernel.execute("%load_ext elk_jupyter\n%elk list")
    assert fresh.stdout.strip() == "no conversations yet"  # nothing half-committed survives


def test_a_frozen_run_all_reproduces_the_panel_conversation(gateway, tmp_path):
    """Turns typed into the panel are kept in its cell; with the gateway gone, ELK_REPLAY=only and an
    empty cache, running the notebook again restores them there, and the cell after it replays."""
    import nbformat

    from tests.kernel import run_notebook

    path = tmp_path / "panel.ipynb"
    typed = (  # what typing two messages into the panel does, from code
        "%load_ext elk_jupyter\nfrom elk_jupyter import ChatPanel\npanel = ChatPanel(conversation='nb')\n"
        "for question in ('first question', 'second question'):\n    panel.send(question).result(timeout=30)\npanel"
    )
    cells = [nbformat.v4.new_code_cell(typed), nbformat.v4.new_code_cell("%%chat -c nb\nthird, from a cell")]
    nb = nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": KERNELSPEC})
    for text in ("answer one", "answer two", "answer three"):
        gateway.plan(text=text)
    live = kernel_env(gateway.base_url, KEY, tmp_path / "cache", replay="auto", JPY_SESSION_NAME=str(path))
    run_notebook(nb, live)
    messages = gateway.bodies()[-1]["messages"]
    assert [m["content"] for m in messages] == [
        "first question",
        "answer one",
        "second question",
        "answer two",
        "third, from a cell",
    ]
    assert records(nb, 0) == [("first question", "answer one", "live"), ("second question", "answer two", "live")]
    nb.cells[0].source = "%load_ext elk_jupyter\n%elk panel -c nb"  # the cell as a user who typed has it
    nbformat.write(nb, str(path))
    gateway.close()
    frozen = kernel_env(gateway.base_url, "", tmp_path / "empty", replay="only", JPY_SESSION_NAME=str(path))
    again = run_notebook(nbformat.read(str(path), as_version=4), frozen)
    assert records(again, 0) == [("first question", "answer one", "live"), ("second question", "answer two", "live")]
    assert records(again, 1) == [("third, from a cell", "answer three", "replayed")]
    kinds = [sorted(o.get("data", {})) for o in again.cells[0].outputs]
    assert kinds[0] == ["application/vnd.jupyter.widget-view+json", "text/plain"]  # the panel, then its turns


def records(nb, index):
    found = [o.metadata.get("elk_jupyter") for o in nb.cells[index].outputs if o.get("metadata", {}).get("elk_jupyter")]
    return [(r["turn"]["prompt"], r["turn"]["reply"]["text"], r["turn"]["origin"]) for r in found]
