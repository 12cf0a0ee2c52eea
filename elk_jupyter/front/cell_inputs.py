"""What a cell takes from the notebook besides its text: the tools it offers, its images and
files, the previous cells, the last error. Reads the shell it is handed; imports no IPython.

Each bad option is a ValueError (the magics make it one UsageError line) raised before anything
is sent.
"""

from __future__ import annotations

import sys
from collections import ChainMap
from dataclasses import dataclass, field

# The modules a cell's inputs need are imported by the functions that use them: %load_ext reads
# only OPTIONS, and its time is measured (issue 25, bench/load_time.py).

# The magics' options for what a cell takes from the notebook (argparse names and settings).
OPTIONS = [
    (("--tools",), {"metavar": "F,G", "help": "notebook functions the model may call (run in the kernel)"}),
    (("--approve",), {"action": "store_true", "help": "ask before each tool call"}),
    (("--max-steps",), {"type": int, "metavar": "N", "help": "model requests per tool turn (default 5)"}),
    (("--image",), {"action": "append", "default": [], "metavar": "SRC", "help": "path, URL or variable (repeatable)"}),
    (("--keep-images",), {"action": "store_true", "help": "keep the images' bytes in the record"}),
    (("--file",), {"action": "append", "default": [], "metavar": "PATH", "help": "a text file (repeatable)"}),
    (("--cells",), {"type": int, "metavar": "N", "help": "include the sources of the previous N cells"}),
    (("--code",), {"action": "store_true", "help": "put the reply's first code block into the next cell"}),
]


@dataclass
class Inputs:
    prompt: str
    tools: dict = field(default_factory=dict)  # name -> tools.Tool
    images: list = field(default_factory=list)  # attachments.Image
    parts: tuple = ()  # files and images as neutral content parts (dialects.content)


def gather(shell, args, cell: str, evaluate) -> Inputs:
    from elk_jupyter.conversation import options
    from elk_jupyter.media import attachments, notebook_context

    prompt = cell.strip("\n")
    if args.interpolate:
        prompt = options.interpolate(prompt, _namespace(shell, prompt), evaluate)
    if getattr(args, "cells", None):
        before = notebook_context.previous_cells(_previous_sources(shell), args.cells)
        prompt = f"{before}\n\n{prompt}" if before else prompt
    inputs = Inputs(prompt, toolset(shell.user_ns, args.tools) if getattr(args, "tools", None) else {})
    inputs.images = [attachments.image(_value(shell.user_ns, source), source) for source in args.image or ()]
    files = [attachments.file_text(path) for path in args.file or ()]
    inputs.parts = attachments.parts(files, inputs.images)
    return inputs


def ask_fields(inputs: Inputs, args, approve) -> dict:
    """The ``Ask`` fields of these inputs and options (the prompt too); ``approve`` asks before a
    call (``--approve``)."""
    from elk_jupyter.tools import loop as tool_loop

    steps = tool_loop.DEFAULT_STEPS if args.max_steps is None else args.max_steps
    if steps < 1:
        raise ValueError("--max-steps must be at least 1")
    return {
        "prompt": inputs.prompt,
        "attachments": inputs.parts,
        "images": tuple(inputs.images),
        "keep_images": args.keep_images,
        "tools": tuple(inputs.tools.values()),
        "approve": approve if args.approve else None,
        "max_steps": steps,
    }


def toolset(namespace, names) -> dict:
    """``--tools f,g`` (or a variable holding a list of functions) -> {name: Tool}."""
    from elk_jupyter.tools import functions as tools

    found = {}
    for name in [n.strip() for n in str(names).split(",") if n.strip()]:
        if name not in namespace:
            raise ValueError(f"--tools: {name!r} is not defined in the notebook")
        value = namespace[name]
        for func in value if isinstance(value, list | tuple) else [value]:
            tool = tools.tool_of(func)
            found[tool.name] = tool
    return found


def _value(namespace, source: str):
    """``--image NAME`` takes the variable when one is defined, else the text is a path or URL."""
    return namespace[source] if source.isidentifier() and source in namespace else source


def _namespace(shell, prompt: str):
    """The user's namespace, plus ``_error`` (the last traceback) when the prompt names it."""
    if "_error" not in prompt:
        return shell.user_ns
    return ChainMap({"_error": last_error(shell)}, shell.user_ns)


def last_error(shell) -> str:
    from elk_jupyter.media import notebook_context

    cells = getattr(getattr(shell, "compile", None), "_filename_map", {}) or {}
    error = (getattr(sys, "last_type", None), getattr(sys, "last_value", None), getattr(sys, "last_traceback", None))
    return notebook_context.last_error(*error, cells)


def _previous_sources(shell) -> list[str]:
    """The raw sources of the cells run before this one (execution order), this one left out."""
    history = list(getattr(getattr(shell, "history_manager", None), "input_hist_raw", None) or [])
    # Entry 0 is empty; a cell run with store_history (every kernel cell) is stored under its
    # execution count before it runs, so the cells before it end just below that number.
    return history[1 : getattr(shell, "execution_count", len(history))]
