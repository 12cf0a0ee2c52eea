"""The chat panel in a real kernel (jupyter_client over ZMQ, the fake gateway on 127.0.0.1): the kernel's
Interrupt stops a panel's reply and leaves no thread or connection; cells run while it streams; a
restart leaves no connection open."""

from __future__ import annotations

import json
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


def test_the_transcript_crosses_the_comm_once_and_a_reloaded_page_still_gets_all_of_it(kernel, gateway):
    """Each turn sends the panel's page that turn, not the whole conversation again (bytes linear in
    the conversation); a page that asks for the widget's state (a reload) gets every turn."""
    kernel.execute(OPEN + "panel", cell_id="panel")
    sizes = []
    for k in range(8):
        gateway.plan(text=f"answer {k} " + "x" * 600)
        sent = kernel.execute(f"panel.send('question {k}').result(timeout=30)").comm_data
        # The transcript's own part (the live stream's updates depend on the machine's speed: throttled by time):
        # the first turn sets the trait, each later one sends its end as a custom message.
        transcript = [
            m["content"] if m.get("method") == "custom" else m["state"]["transcript"]
            for m in sent
            if m.get("content", {}).get("kind") == "transcript" or "transcript" in m.get("state", {})
        ]
        assert len(transcript) == 1, transcript
        sizes.append(len(json.dumps(transcript)))
    assert sizes[-1] < 1.3 * sizes[1], sizes  # the old whole-transcript update grew by a turn each time
    comm_id = kernel.execute("print(panel.model_id)").stdout.strip()
    state = request_state(kernel, comm_id)
    assert [e["prompt"] for e in state["transcript"]] == [f"question {k}" for k in range(8)]
    assert state["transcript"][-1]["view"]["text"].startswith("answer 7 ")


def request_state(kernel, comm_id):
    """What a reloaded page's widget manager asks a live widget for (ipywidgets' ``request_state``)."""
    client = kernel.client
    msg = client.session.msg("comm_msg", {"comm_id": comm_id, "data": {"method": "request_state"}})
    client.shell_channel.send(msg)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        reply = client.get_iopub_msg(timeout=20)
        data = reply["content"].get("data") or {}
        if (
            reply["msg_type"] == "comm_msg"
            and reply["content"]["comm_id"] == comm_id
            and data.get("method") == "update"
        ):
            if "transcript" in data.get("state", {}):
                return data["state"]
    raise AssertionError("no state came back")


def test_a_chat_cell_in_the_panels_conversation_streams_live_in_the_panel(kernel, gateway):
    kernel.execute(OPEN + "panel", cell_id="panel")
    watch = (
        "import threading, time\nseen = set()\n"
        "def watch():\n"
        "    for _ in range(600):\n"
        "        seen.add((panel.live.startswith('anywidget:'), panel.live_prompt, panel.busy))\n"
        "        time.sleep(0.005)\n"
        "watcher = threading.Thread(target=watch)\nwatcher.start()"
    )
    kernel.execute(watch)
    gateway.plan(text=" ".join(f"c{i}" for i in range(60)), delay=0.02)
    cell = kernel.execute("%%chat -c k\nasked in a cell", cell_id="cell")
    assert cell.status == "ok"
    after = kernel.execute("watcher.join()\nprint(sorted(seen))\nprint(repr(panel.live), panel.busy)")
    seen, last = after.stdout.splitlines()
    assert "(True, 'asked in a cell', True)" in seen  # the cell's live turn, drawn in the panel meanwhile
    assert last == "'' False"
    listed = kernel.execute("print([e['prompt'] for e in panel.transcript])")
    assert listed.stdout.strip() == "['asked in a cell']"


def test_a_chat_cell_waits_for_the_panel_reply_in_its_conversation(kernel, gateway):
    gateway.plan(text=" ".join(f"p{i}" for i in range(40)), delay=0.02)
    gateway.plan(text="the cell's answer")
    kernel.execute(OPEN + "future = panel.send('from the panel')", cell_id="panel")
    wait_for(lambda: gateway.in_flight == 1)
    cell = kernel.execute("%%chat -c k\nfrom a cell", cell_id="cell")
    assert "this cell waits for it" in cell.stdout
    sent = gateway.bodies()[-1]["messages"]
    assert [m["content"] for m in sent][:3] == ["from the panel", " ".join(f"p{i}" for i in range(40)), "from a cell"]
    refused = kernel.execute("print(future.result(timeout=5).reply.text[:2])")
    assert refused.stdout.strip() == "p0"
