"""A real ipykernel driven over ZMQ, as a notebook front-end drives it (for end-to-end tests)."""

from __future__ import annotations

import queue
import time
from dataclasses import dataclass, field

from jupyter_client import KernelManager


@dataclass
class Execution:
    status: str = ""  # "ok" | "error" | "aborted"
    error: dict | None = None  # {"ename", "evalue", "traceback"}
    stdout: str = ""
    stderr: str = ""
    outputs: list = field(default_factory=list)  # display_data / execute_result / update_display_data
    comm_msgs: int = 0  # updates after the widget exists
    comm_bytes: int = 0
    comm_data: list = field(default_factory=list)  # each update's data, in order
    comm_open_bytes: int = 0  # widget creation: initial state, front-end code included
    prompts: list = field(default_factory=list)  # input() prompts the kernel sent on stdin
    payload: list = field(default_factory=list)  # the execute_reply's payloads (set_next_input, ...)

    @property
    def error_text(self) -> str:
        return "\n".join(self.error["traceback"]) if self.error else ""

    def last_bundle(self) -> dict:
        """The final state of the (last) displayed output, updates applied."""
        bundles = [
            o for o in self.outputs if o["msg_type"] in ("display_data", "update_display_data", "execute_result")
        ]
        return bundles[-1]["content"] if bundles else {}


class Kernel:
    def __init__(self, env: dict, cwd: str | None = None):
        self.manager = KernelManager(kernel_name="python3")
        self.manager.start_kernel(env=env, cwd=cwd)
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)

    def execute(
        self,
        code: str,
        timeout: float = 60,
        cell_id: str | None = None,
        interrupt_after: float | None = None,
        answers: list[str] | None = None,
    ) -> Execution:
        """Run ``code`` like a notebook cell and collect what the front-end would receive.

        ``answers``: reply to the kernel's input requests in turn, as JupyterLab's and Notebook 7's
        input box does (the request then allows stdin); without it, stdin is not allowed, as in nbclient.
        """
        import json

        content = {
            "code": code,
            "silent": False,
            "store_history": True,
            "user_expressions": {},
            "allow_stdin": answers is not None,
            "stop_on_error": True,
        }
        # JupyterLab sends the cell id in the request's metadata; so do we.
        request = self.client.session.msg("execute_request", content, metadata={"cellId": cell_id} if cell_id else {})
        self.client.shell_channel.send(request)
        msg_id = request["header"]["msg_id"]
        result = Execution()
        deadline = time.monotonic() + timeout
        interrupt_at = time.monotonic() + interrupt_after if interrupt_after is not None else None
        while True:
            if interrupt_at is not None and time.monotonic() >= interrupt_at:
                self.manager.interrupt_kernel()  # a real SIGINT, as the Interrupt button sends
                interrupt_at = None
            if time.monotonic() > deadline:
                raise TimeoutError(f"cell did not finish in {timeout} s: {code[:60]!r}")
            if answers is not None:
                self._answer_stdin(answers, result)
            try:
                msg = self.client.get_iopub_msg(timeout=0.05)
            except queue.Empty:
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                setattr(result, content["name"], getattr(result, content["name"]) + content["text"])
            elif kind in ("display_data", "update_display_data", "execute_result"):
                result.outputs.append({"msg_type": kind, "content": content})
            elif kind == "error":
                result.error = content
            elif kind == "comm_msg":
                result.comm_msgs += 1
                result.comm_bytes += len(json.dumps(content["data"]))
                result.comm_data.append(content["data"])
            elif kind == "comm_open":
                result.comm_open_bytes += len(json.dumps(content["data"]))
            elif kind == "status" and content["execution_state"] == "idle":
                break
        # Match the reply to this request: under load wait_for_ready may leave a second
        # kernel_info_reply queued, which would shift every later status by one cell.
        while (reply := self.client.get_shell_msg(timeout=10))["parent_header"].get("msg_id") != msg_id:
            pass
        result.status = reply["content"]["status"]
        result.payload = reply["content"].get("payload") or []
        return result

    def _answer_stdin(self, answers: list[str], result: Execution) -> None:
        try:
            request = self.client.get_stdin_msg(timeout=0.01)
        except queue.Empty:
            return
        if request["msg_type"] == "input_request":
            result.prompts.append(request["content"]["prompt"])
            self.client.input(answers.pop(0) if answers else "")

    def close(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


def run_notebook(nb, env: dict, timeout: float = 60, **options):
    """Execute ``nb`` headless (nbclient) in a kernel whose environment adds ``env``."""
    import os

    from nbclient import NotebookClient

    NotebookClient(nb, kernel_name="python3", timeout=timeout, **options).execute(env={**os.environ, **env})
    return nb
