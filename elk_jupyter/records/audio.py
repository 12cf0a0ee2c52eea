"""The audio part of a turn record: its schema (checked by ``schema``) and its bytes' rules. Pure.

Its bytes live in the notebook below a size limit, else in a file beside it named by the SHA-256
of the bytes (``audio_files`` writes and reads those). A hand-edited notebook is hostile: a file
name is a digest and an extension, never a path or a URL, and inline bytes must match the digest.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

from elk_jupyter.media.audio import FORMATS
from elk_jupyter.records.schema import NUMBER, fields

AUDIO_SCHEMA = {"format": str, "size": int, "digest": str}
AUDIO_OPTIONAL = {"id": str, "mime": str, "expires_at": int, "duration": NUMBER, "data": str, "file": str}
AUDIO_FILE = re.compile(r"[0-9a-f]{64}\.[a-z0-9]{1,5}")  # a digest and an extension: never a path or a URL


def check_audio(audio) -> list[str]:
    """An audio reply: its bytes inline (base64 whose SHA-256 is ``digest``) or a file named by the digest."""
    if not isinstance(audio, dict):
        return []  # null, or a type problem the reply's schema already names
    where = "turn.reply.audio"
    problems = fields(audio, AUDIO_SCHEMA, AUDIO_OPTIONAL, where)
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
