"""The VIEW fields, declared once: what a turn's view shows, live (the Panel's synced traits) and saved
(the ``TURN_MIME`` data of a finished output), and the list the front-end reads. Pure.

``display/panel`` makes a trait of each field, ``turn_output.view_data`` writes exactly these keys,
and the front-end's list is generated from here::

    python -m elk_jupyter.display.view_fields > js/view-fields.generated.js

``tests/test_view_fields.py`` fails when the committed file differs from what this module prints.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

# Versioned: a renderer that meets a version it does not know falls back to the Markdown copy.
TURN_MIME = "application/vnd.elk-jupyter.turn.v1+json"
VIEW_VERSION = 1
GENERATED = "js/view-fields.generated.js"


@dataclass(frozen=True)
class Field:
    name: str
    kind: type  # str, bool, int, dict, list
    default: object = None  # None: the kind's empty value
    nullable: bool = False
    delta: str = ""  # streamed: the live trait that carries each new piece (the field is the checkpoint)
    comment: str = ""

    @property
    def empty(self):
        return self.default if self.default is not None or self.nullable else self.kind()


FIELDS = (
    Field("endpoint", str),
    Field("conversation", str),
    Field("model_asked", str),
    Field("model", str, comment="the model that answers, as the server says"),
    Field("status", str, "streaming"),
    Field("badge", str, "streaming", comment="the status shown (render.shown_status: 'replayed')"),
    Field("replayed", bool),
    Field("error", str),
    Field("note", str),
    Field("attempts", int),
    Field("context", str),
    Field("text", str, delta="delta", comment="checkpoint of the answer"),
    Field("reasoning", str, delta="reasoning_delta", comment="checkpoint of the reasoning"),
    Field("usage", dict, nullable=True, comment="normalised (Usage.wire): the raw object stays in the record"),
    Field("timing", dict),
    Field("tool_calls", list),
    Field("choices", list),
    Field("audio", dict, nullable=True, comment="{size, streaming} while streaming, then the player's data"),
    Field("footer", list, comment="[label, value] pairs (render.footer_items): drawn, not recomputed"),
    Field("images", list, comment="the prompt's images: a label and a small thumbnail (attachments.shown)"),
)
NAMES = tuple(field.name for field in FIELDS)


def javascript() -> str:
    """The front-end's module: the names, the streamed ones and their delta traits, the mime type."""
    plain = [f.name for f in FIELDS if not f.delta]
    streamed = {f.name: f.delta for f in FIELDS if f.delta}
    return "\n".join(
        [
            "// Generated from elk_jupyter/display/view_fields.py by",
            f"// `python -m elk_jupyter.display.view_fields > {GENERATED}`: do not edit (tests/test_view_fields.py).",
            f"export const VIEW_MIME = {json.dumps(TURN_MIME)};",
            f"export const VIEW_VERSION = {VIEW_VERSION};",
            "// The fields other than the streamed ones, in the order the Panel declares them.",
            f"export const VIEW_FIELDS = {json.dumps(plain)};",
            "// Streamed fields: the checkpoint's name -> the live trait carrying each new piece.",
            f"export const STREAMED_FIELDS = {json.dumps(streamed)};",
            "",
        ]
    )


if __name__ == "__main__":
    import sys

    sys.stdout.write(javascript())
