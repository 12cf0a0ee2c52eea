"""The chat panel's widget: its synced state (controls, transcript, the live turn) and its front-end
(js/chat.js). Behaviour is ``front.chat_panel``'s; this module only declares what crosses the comm.

The live turn is a ``LiveTurn``: the cell panel's widget (``panel.Panel``, its delta/offset rule and
its ≤ 25 updates a second) with no front-end code of its own, drawn inside the chat panel by the
same view code; ``live`` names it (an anywidget reference) while a reply streams.
"""

from __future__ import annotations

import anywidget
import traitlets as t

from elk_jupyter.display.panel import STATIC, Panel


class LiveTurn(Panel):
    """One streaming turn inside a chat panel: no ESM of its own (chat.js draws it), so a turn's
    comm costs no front-end code."""

    _esm = "export default {};"
    _css = ""


def reference(widget) -> str:
    """How chat.js finds a child widget (anywidget's ``host.getModel``)."""
    return f"anywidget:{widget.model_id}"


class ChatWidget(anywidget.AnyWidget):
    _esm = STATIC / "chat.js"
    _css = STATIC / "chat.css"

    # The controls, as the user set them (sent as the magics' options: front.chat_panel.cell_line).
    conversation = t.Unicode("default").tag(sync=True)
    endpoint = t.Unicode("chat").tag(sync=True)
    model = t.Unicode("").tag(sync=True)  # "" : the configured default
    temperature = t.Unicode("").tag(sync=True)  # text, as typed: "" is unset, "0" is sent
    max_tokens = t.Unicode("").tag(sync=True)
    reasoning_effort = t.Unicode("").tag(sync=True)
    system = t.Unicode("").tag(sync=True)
    tools = t.Unicode("").tag(sync=True)  # notebook functions the model may call, "f, g" (each call asks first)
    attach_images = t.Unicode("").tag(sync=True)  # paths, URLs or variables, comma-separated (--image)
    attach_files = t.Unicode("").tag(sync=True)  # text files, comma-separated (--file)
    # What the kernel offers.
    conversations = t.List([]).tag(sync=True)  # the kernel's named conversations
    models = t.List([]).tag(sync=True)  # from /v1/models when the gateway lists them
    efforts = t.List([]).tag(sync=True)
    endpoints = t.List([]).tag(sync=True)
    # The conversation as shown: finished turns ({id, prompt, view, cell, branch}), then the live one.
    transcript = t.List([]).tag(sync=True)
    live = t.Unicode("").tag(sync=True)  # reference() of the LiveTurn streaming now, or ""
    live_prompt = t.Unicode("").tag(sync=True)
    busy = t.Bool(False).tag(sync=True)
    notice = t.Unicode("").tag(sync=True)  # one line: a refusal, an error, what "to cell" did
    last_prompt = t.Unicode("").tag(sync=True)  # what Up recalls
    approval = t.Dict(allow_none=True, default_value=None).tag(sync=True)  # a tool call waiting: {name, arguments}
    panel_id = t.Unicode("").tag(sync=True)  # this widget's model id: chat.js keeps its view out of saved files
    # Set by a page that found the panel's cell in its notebook (JupyterLab, Notebook 7): it writes
    # finished turns into that cell's outputs (front.chat_panel.ChatPanel.keep).
    keeper = t.Bool(False).tag(sync=True)

    def __init__(self, **traits):
        super().__init__(**traits)
        self.panel_id = self.model_id

    def post(self, content: dict) -> None:
        """A custom message to the page (``ChatPanel.send`` sends a chat message instead)."""
        anywidget.AnyWidget.send(self, content)
