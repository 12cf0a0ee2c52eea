"""The audio part of a turn record: its schema, and where its bytes live (in the notebook below a size
limit, else in a file beside it named by the SHA-256 of the bytes, read back for replay).

A hand-edited notebook is hostile: a file name is a digest and an extension, never a path or a URL,
and bytes read back must match the digest the record gives.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from pathlib import Path

from .audio import FORMATS, file_name
from .errors import ElkError


def check_types(data, required: dict, optional: dict, where: str) -> list[str]:
    problems = []
    for key, kind in {**required, **optional}.items():
        value = data.get(key)
        if value is None and key in optional:
            continue
        if not isinstance(value, kind) or isinstance(value, bool):
            problems.append(f"{where}.{key} should be {kind.__name__ if isinstance(kind, type) else 'number'}")
    return problems


AUDIO_SCHEMA = {"format": str, "size": int, "digest": str}
AUDIO_OPTIONAL = {"id": str, "mime": str, "expires_at": int, "duration": (int, float), "data": str, "file": str}
AUDIO_FILE = re.compile(r"[0-9a-f]{64}\.[a-z0-9]{1,5}")  # a digest and an extension: never a path or a URL


def check_audio(audio) -> list[str]:
    """An audio reply: its bytes inline (base64 whose SHA-256 is ``digest``) or a file named by the digest."""
    if not isinstance(audio, dict):
        return []  # null, or a type problem the reply's schema already names
    where = "turn.reply.audio"
    problems = check_types(audio, AUDIO_SCHEMA, AUDIO_OPTIONAL, where)
    if problems:
        return problems
    if audio["format"] not in FORMATS:
        problems.append(f"{where}.format is {audio['format'][:20]!r}, expected one of {', '.join(FORMATS)}")
    if not re.fullmatch(r"[0-9a-f]{64}", audio["digest"]):
        problems.append(f"{where}.digest should be 64 hex digits (SHA-256)")
    data, file = audio.get("data"), audio.get("file")
    if (data is None) == (file is None):
        problems.append(f"{where} should hold exactly one of data (base64) and file (beside the notebook)")
    elif file is not None and not (AUDIO_FILE.fullmatch(file) and file.startswith(audio["digest"])):
        problems.append(f"{where}.file should be the digest and an extension, beside the notebook")
    elif data is not None and _digest_of(data) != (audio["digest"], audio["size"]):
        problems.append(f"{where}.data does not match its digest and size")
    return problems


def _digest_of(data: str) -> tuple[str, int] | None:
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None
    return hashlib.sha256(raw).hexdigest(), len(raw)


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
