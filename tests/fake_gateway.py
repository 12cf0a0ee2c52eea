"""A small OpenAI-compatible gateway on 127.0.0.1 that *generates* real SSE for each request.

The byte-exact replays of captured streams live in ``scripted_server``; this one answers any
prompt (for the magics, kernels and browsers) and records every request body it received.
Each reply can be shaped with a ``Plan`` queued before the request: text, reasoning, usage,
a delay between chunks (to watch a stream in a browser), an HTTP error, or a cut mid-stream.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Plan:
    text: str | None = None  # default: "echo: <last user text>"
    reasoning: str = ""
    words_per_chunk: int = 1
    delay: float = 0.0  # seconds between chunks
    status: int = 200  # >= 400: answer with this error instead
    error_body: dict | str | None = None  # sent with ``status`` (a 200 + error body too); a str is HTML
    headers: dict = field(default_factory=dict)
    cut_after: int | None = None  # stop after this many content chunks, then ``ending``
    ending: str = "close"  # after cut_after: "close" (hang up), "reset" (TCP RST), "stall", "clean" (end the body)
    frames: list = field(default_factory=list)  # raw SSE text sent at the cut, before the ending
    usage: dict | None = None  # default: counted words; {} sends no usage at all
    tool_calls: list = field(default_factory=list)  # [(name, arguments JSON text)] streamed after the text
    model: str | None = None  # the model id the server reports; default: "<asked>-served"
    # Tool-call mode: call ids are "call_<request number>_<position>", so every step of a tool
    # loop has its own ids and a test can name them before the request is made.


class _Server(ThreadingHTTPServer):
    request_queue_size = 64  # socketserver's 5 holds a burst of connects back by a SYN retransmit (1 s)


class FakeGateway:
    def __init__(self) -> None:
        self.requests: list[dict] = []  # {"path", "headers", "body", "peer": the connection's address}
        self.plans: list[Plan] = []
        self.responses: dict[str, list] = {}  # response id -> full input history
        self.in_flight = 0
        self.max_in_flight = 0  # the most requests served at once
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._server.handle_error = lambda request, address: None  # clients hang up on purpose
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def plan(self, **kwargs) -> None:
        self.plans.append(Plan(**kwargs))

    def bodies(self, path_end: str = "") -> list[dict]:
        return [r["body"] for r in self.requests if r["path"].endswith(path_end)]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _last_user_text(body: dict) -> str:
    if "messages" in body:
        for message in reversed(body["messages"]):
            if message.get("role") == "user":
                return str(message.get("content"))
    items = body.get("input")
    if isinstance(items, str):
        return items
    for item in reversed(items or []):
        if item.get("role") == "user":
            return str(item.get("content"))
    return ""


def _words(text: str, per_chunk: int) -> list[str]:
    pieces = text.split(" ")
    words = [p + " " for p in pieces[:-1]] + [pieces[-1]]
    return ["".join(words[i : i + per_chunk]) for i in range(0, len(words), per_chunk)]


def _handler(gateway: FakeGateway):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # keep test output clean
            pass

        def do_GET(self):
            if self.path.endswith("/models"):
                self._json(
                    200,
                    {
                        "object": "list",
                        "data": [{"id": "fake-small", "object": "model"}, {"id": "fake-large", "object": "model"}],
                    },
                )
            else:
                self._json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})

        def do_POST(self):
            with gateway._lock:
                gateway.in_flight += 1
                gateway.max_in_flight = max(gateway.max_in_flight, gateway.in_flight)
            try:
                self._post()
            finally:
                with gateway._lock:
                    gateway.in_flight -= 1

        def _post(self):
            length = int(self.headers.get("content-length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            gateway.requests.append(
                {"path": self.path, "headers": dict(self.headers), "body": body, "peer": self.client_address}
            )
            self.number = len(gateway.requests)
            plan = gateway.plans.pop(0) if gateway.plans else Plan()
            if plan.status >= 400 or plan.error_body is not None:
                error = plan.error_body or {
                    "error": {"message": f"planned {plan.status}", "type": "test_error", "code": str(plan.status)}
                }
                return self._json(plan.status, error, plan.headers)
            responses = self.path.endswith("/responses")
            if responses and body.get("previous_response_id") and body["previous_response_id"] not in gateway.responses:
                return self._json(
                    400,
                    {
                        "error": {
                            "message": "previous response not found",
                            "type": "invalid_request_error",
                            "code": "previous_response_not_found",
                        }
                    },
                )
            text = plan.text if plan.text is not None else "echo: " + _last_user_text(body)
            prompt_tokens = len(json.dumps(body.get("messages") or body.get("input"))) // 4
            stored = gateway.responses.get(body.get("previous_response_id"), []) if responses else []
            if stored:  # like OpenAI's, a chained request's input tokens count the stored conversation
                prompt_tokens += len(json.dumps(stored)) // 4
            usage = plan.usage
            if usage is None:
                completion = len(text.split()) + len(plan.reasoning.split())
                usage = (
                    {
                        "input_tokens": prompt_tokens,
                        "input_tokens_details": {"cached_tokens": 0},
                        "output_tokens": completion,
                        "output_tokens_details": {"reasoning_tokens": len(plan.reasoning.split())},
                        "total_tokens": prompt_tokens + completion,
                    }
                    if responses
                    else {
                        "prompt_tokens": prompt_tokens,
                        "completion_tokens": completion,
                        "total_tokens": prompt_tokens + completion,
                        "prompt_tokens_details": {"cached_tokens": 0},
                        "completion_tokens_details": {"reasoning_tokens": len(plan.reasoning.split())},
                    }
                )
            model = plan.model if plan.model is not None else body.get("model", "fake") + "-served"
            if responses:
                rid = "resp_" + uuid.uuid4().hex[:12]
                history = list(gateway.responses.get(body.get("previous_response_id"), []))
                history += [body.get("input"), text]
                gateway.responses[rid] = history
                return self._responses(body, plan, text, usage, model, rid)
            return self._chat(body, plan, text, usage, model)

        def _call_id(self, position: int) -> str:
            return f"call_{self.number}_{position}"

        # -- bodies
        def _json(self, status, obj, headers=None):
            data = json.dumps(obj).encode() if not isinstance(obj, str) else obj.encode()
            self.send_response(status)
            self.send_header("content-type", "application/json" if not isinstance(obj, str) else "text/html")
            self.send_header("content-length", str(len(data)))
            self.send_header("x-request-id", "req_" + uuid.uuid4().hex[:8])
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def _start_stream(self, headers=None):
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("transfer-encoding", "chunked")
            self.send_header("x-request-id", "req_" + uuid.uuid4().hex[:8])
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()

        def _send(self, text: str):
            data = text.encode()
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def _end(self):
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

        def _cut(self, plan):
            for frame in plan.frames:
                self._send(frame)
            if plan.ending == "clean":
                return self._end()
            if plan.ending == "stall":
                time.sleep(30)
            if plan.ending == "reset":
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True

        def _chat(self, body, plan, text, usage, model):
            cid = "chatcmpl-" + uuid.uuid4().hex[:12]
            if not body.get("stream"):
                message = {"role": "assistant", "content": text}
                if plan.tool_calls:
                    message["tool_calls"] = [
                        {"id": self._call_id(n), "type": "function", "function": {"name": name, "arguments": arguments}}
                        for n, (name, arguments) in enumerate(plan.tool_calls)
                    ]
                if plan.reasoning:
                    message["reasoning_content"] = plan.reasoning
                return self._json(
                    200,
                    {
                        "id": cid,
                        "object": "chat.completion",
                        "model": model,
                        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                        "usage": usage,
                    },
                )
            n = body.get("n") or 1
            self._start_stream(plan.headers)

            def chunk(delta, finish=None, index=0):
                return (
                    "data: "
                    + json.dumps(
                        {
                            "id": cid,
                            "object": "chat.completion.chunk",
                            "model": model,
                            "choices": [{"index": index, "delta": delta, "finish_reason": finish}],
                        }
                    )
                    + "\n\n"
                )

            for index in range(n):
                self._send(chunk({"role": "assistant", "content": ""}, index=index))
            for piece in _words(plan.reasoning, plan.words_per_chunk) if plan.reasoning else []:
                self._send(chunk({"content": None, "reasoning_content": piece}))
                time.sleep(plan.delay)
            for count, piece in enumerate(_words(text, plan.words_per_chunk)):
                if plan.cut_after is not None and count >= plan.cut_after:
                    return self._cut(plan)
                for index in range(n):
                    self._send(chunk({"content": piece if index == 0 else f"[{index}] {piece}"}, index=index))
                time.sleep(plan.delay)
            for number, (name, arguments) in enumerate(plan.tool_calls):
                call = {"index": number, "id": self._call_id(number), "type": "function"}
                self._send(chunk({"tool_calls": [{**call, "function": {"name": name, "arguments": ""}}]}))
                for piece in _words(arguments, 1):
                    self._send(chunk({"tool_calls": [{"index": number, "function": {"arguments": piece}}]}))
                    time.sleep(plan.delay)
            for index in range(n):
                self._send(chunk({}, "tool_calls" if plan.tool_calls else "stop", index))
            if usage and (body.get("stream_options") or {}).get("include_usage"):
                self._send(
                    "data: "
                    + json.dumps(
                        {"id": cid, "object": "chat.completion.chunk", "model": model, "choices": [], "usage": usage}
                    )
                    + "\n\n"
                )
            self._send("data: [DONE]\n\n")
            self._end()

        def _responses(self, body, plan, text, usage, model, rid):
            response = {
                "id": rid,
                "object": "response",
                "status": "completed",
                "model": model,
                "output": [
                    {
                        "type": "message",
                        "id": "msg_1",
                        "role": "assistant",
                        "content": [{"type": "output_text", "text": text}],
                    }
                ],
                "usage": usage or None,
            }
            calls = [
                {"type": "function_call", "id": f"fc_{n}", "call_id": self._call_id(n), "name": name}
                for n, (name, _) in enumerate(plan.tool_calls)
            ]
            if not body.get("stream"):
                response["output"] += [{**c, "arguments": a} for c, (_, a) in zip(calls, plan.tool_calls, strict=True)]
                return self._json(200, response)
            self._start_stream(plan.headers)
            seq = iter(range(10**6))

            def event(kind, **fields):
                self._send(
                    f"event: {kind}\ndata: "
                    + json.dumps({"type": kind, "sequence_number": next(seq), **fields})
                    + "\n\n"
                )

            event("response.created", response={**response, "status": "in_progress", "output": [], "usage": None})
            for piece in _words(plan.reasoning, plan.words_per_chunk) if plan.reasoning else []:
                event(
                    "response.reasoning_summary_text.delta",
                    item_id="rs_1",
                    output_index=0,
                    summary_index=0,
                    delta=piece,
                )
                time.sleep(plan.delay)
            for count, piece in enumerate(_words(text, plan.words_per_chunk)):
                if plan.cut_after is not None and count >= plan.cut_after:
                    return self._cut(plan)
                event("response.output_text.delta", item_id="msg_1", output_index=1, content_index=0, delta=piece)
                time.sleep(plan.delay)
            for number, (item, (_, arguments)) in enumerate(zip(calls, plan.tool_calls, strict=True)):
                event("response.output_item.added", output_index=2 + number, item={**item, "arguments": ""})
                for piece in _words(arguments, 1):
                    event(
                        "response.function_call_arguments.delta",
                        item_id=item["id"],
                        output_index=2 + number,
                        delta=piece,
                    )
                    time.sleep(plan.delay)
                response["output"].append({**item, "arguments": arguments})
            event("response.completed", response=response)
            self._end()

    return Handler
