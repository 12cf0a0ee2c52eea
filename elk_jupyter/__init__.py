"""elk-jupyter: stream LLM replies into notebooks through an OpenAI-compatible gateway.

The public surface is small: ``Client`` and ``Reply`` for Python, the error classes, and the
IPython extension hooks. Heavy modules (requests, IPython, anywidget) load only when needed, so
``%load_ext elk_jupyter`` stays fast.
"""

from __future__ import annotations

__all__ = [
    "Client",
    "Reply",
    "ChatPanel",
    "sweep",
    "experiment",
    "ElkError",
    "ConfigError",
    "APIError",
    "StreamError",
    "__version__",
]

from elk_jupyter.errors import APIError, ConfigError, ElkError, StreamError
from elk_jupyter.version import __version__


def __getattr__(name: str):
    # Lazy: importing requests costs ~100 ms, which %load_ext should not pay.
    if name == "Client":
        from elk_jupyter.gateway.client import Client

        return Client
    if name == "sweep":
        from elk_jupyter.experiments.sweeps import sweep

        return sweep
    if name == "experiment":
        from elk_jupyter.experiments import experiment

        return experiment
    if name == "ChatPanel":
        from elk_jupyter.front.chat_panel import ChatPanel

        return ChatPanel
    if name == "Reply":
        from elk_jupyter.gateway.reply import Reply

        return Reply
    raise AttributeError(f"module 'elk_jupyter' has no attribute {name!r}")


def load_ipython_extension(ipython) -> None:
    from elk_jupyter.front.magics import ElkMagics

    ipython.register_magics(ElkMagics(ipython))


def unload_ipython_extension(ipython) -> None:  # magics stay until the kernel restarts
    pass
