"""Audio bytes beside a notebook: a reply's clip moved out of its record past a size limit (into a
file named by its SHA-256), and read back into the record for replay.

A hand-edited record is hostile: ``record_audio.check_audio`` has already made sure the file name is a
digest and an extension (never a path or a URL); bytes read back must match that digest.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from elk_jupyter.errors import ElkError
from elk_jupyter.media.audio import file_name


def place_audio(record: dict, directory: str | os.PathLike, limit: int) -> dict:
    """The record with its audio bytes moved to ``directory/<digest>.<ext>`` when they pass ``limit``
    bytes, so a notebook stays small; the same clip is the same file (written once)."""
    audio = record["turn"]["reply"].get("audio")
    if not isinstance(audio, dict) or audio.get("data") is None or audio["size"] <= limit:
        return record
    name = file_name(audio["digest"], audio["format"])
    target = Path(directory) / name
    try:
        if not target.is_file() or target.stat().st_size != audio["size"]:
            temporary = target.with_suffix(".partial")
            temporary.write_bytes(base64.b64decode(audio["data"]))
            os.replace(temporary, target)  # never a half-written clip under the digest's name
    except OSError as err:
        raise ElkError(f"could not save the audio reply beside the notebook as {target} ({err.strerror})") from None
    moved = {k: v for k, v in audio.items() if k != "data"}
    reply = {**record["turn"]["reply"], "audio": {**moved, "file": name}}
    return {**record, "turn": {**record["turn"], "reply": reply}}


def inline_audio(record: dict, directory: Path) -> dict:
    """The record with the bytes of its audio file read back (when the file is there and matches its
    digest), so replay plays the clip; otherwise unchanged (the file reference stays)."""
    audio = record["turn"]["reply"].get("audio")
    if not isinstance(audio, dict) or not isinstance(audio.get("file"), str):
        return record
    try:
        raw = (directory / audio["file"]).read_bytes()
    except OSError:
        return record
    if hashlib.sha256(raw).hexdigest() != audio["digest"]:
        return record
    restored = {**{k: v for k, v in audio.items() if k != "file"}, "data": base64.b64encode(raw).decode("ascii")}
    return {**record, "turn": {**record["turn"], "reply": {**record["turn"]["reply"], "audio": restored}}}
