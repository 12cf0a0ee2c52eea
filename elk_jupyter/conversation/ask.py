"""What one cell asks for, as a frozen value: the magics build an ``Ask``, the runner runs it. Pure.

Nothing below the magics sees an argparse namespace: every option a turn depends on is a field
here, so a turn can be built and run from a terminal, a test or another front-end alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Ask:
    endpoint: str  # a dialect's name: "chat" | "responses"
    prompt: str  # the user text as it will be sent (after any interpolation)
    params: dict = field(default_factory=dict)  # request fields from the options (the dialect's names)
    extra: tuple = ()  # (path, value) pairs from --param, set last
    conversation: str | None = None  # None: Settings.default_conversation
    model: str | None = None  # None: the client's model
    system: str | None = None  # a new system prompt / instructions for the conversation
    new: bool = False  # start the conversation afresh (history kept, not sent)
    no_context: bool = False  # send no earlier turns
    stateless: bool = False  # Responses: re-send the history instead of chaining
    stream: bool = True
    dry_run: bool = False  # show the exact body; send nothing
    replay: str | None = None  # this cell's replay mode (None: Settings.replay)
    json: bool = False  # JSON mode: the parsed object is the outcome's value
    schema: object = None  # structured output: a dict JSON schema or a pydantic class
    cell: tuple = (None, None)  # (cell id, execution count)
    # What the cell takes from the notebook (issue 17):
    attachments: tuple = ()  # files and images as neutral content parts (dialects.content)
    images: tuple = ()  # attachments.Image: the record's entries and the panel's thumbnails
    keep_images: bool = False  # keep the images' bytes in the record whatever their size
    tools: tuple = ()  # tools.Tool: notebook functions the model may call
    approve: Callable | None = None  # asked before each tool call (--approve); None: run them
    max_steps: int = 5  # model requests per tool turn

    @property
    def structured(self) -> bool:
        return self.json or self.schema is not None
