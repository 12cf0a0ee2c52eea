"""Text made safe for a terminal: control characters shown escaped, never acted on. Pure.

Model text, conversation and experiment names, a gateway's model ids and errors are hostile: a
terminal acts on ESC sequences (``ESC[2J`` clears the screen, OSC 0 sets the title, OSC 52
writes the clipboard), on BEL, on the 8-bit C1 controls (``\\x9b`` is CSI) and on a bare CR that
rewrites the line; bidirectional overrides reorder what is shown (CVE-2021-42574). Every
``elk-jupyter`` command's output and the ``--approve`` question go through ``safe``.
"""

from __future__ import annotations

import re

_BIDI = [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
# C0 (but newline and tab) as \xNN; DEL, C1 and bidi controls as \uNNNN, which is also valid
# inside a JSON string (``json.dumps`` already escapes C0 there), so exported JSON stays JSON.
_ESCAPES = {code: f"\\x{code:02x}" for code in range(0x20) if chr(code) not in "\n\t"}
_ESCAPES |= {code: f"\\u{code:04x}" for code in [0x7F, *range(0x80, 0xA0), *_BIDI]}
_LONG_SPACE = re.compile(r"[ \t]{8,}")


def safe(text: str) -> str:
    """``text`` with every control character a terminal would act on written as an escape."""
    return text.translate(_ESCAPES)


def visible(text: str) -> str:
    """``safe``, and each run of 8 or more spaces or tabs named (``⟨180 spaces⟩``), so nothing
    after it hides past the edge of the screen (a question must show all it asks about)."""
    return _LONG_SPACE.sub(lambda m: f"⟨{len(m.group())} spaces⟩", safe(text))


class SafeText:
    """A text stream that writes everything through ``safe`` (the CLI's stdout and stderr)."""

    def __init__(self, stream) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        return self.stream.write(safe(text))

    def __getattr__(self, name: str):
        return getattr(self.stream, name)
