"""What names a turn and a request: content-addressed turn ids, their short form, replay keys.

Pure (hashlib, json, os.urandom). Ids are unique across kernels, notebooks and machines, so saved
histories merge by identity (docs/record.md, "Ids"); a request key is the identity replay uses.
"""

from __future__ import annotations

import hashlib
import json
import os

SHORT_ID = 8  # hex digits shown in the UI; the record keeps the full id


def new_turn_id(parent: str | None, conversation: str, request: dict, created_at: float) -> str:
    """A turn's id: a hash of its content and its parent (like simonw/llm 0.32), salted with the
    time and 64 random bits so that two identical re-runs, kernels or machines never share one."""
    content = {
        "parent": parent,
        "conversation": conversation,
        "request": request,
        "created_at": created_at,
        "salt": os.urandom(8).hex(),
    }
    canonical = json.dumps(content, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def short(turn_id: str | None) -> str:
    """The id as the UI shows it (old records' ``t1``-style ids stay as they are)."""
    return (turn_id or "")[:SHORT_ID]


def short_ids(ids, empty: str = "no earlier turn") -> str:
    return ", ".join(short(i) for i in ids) or empty


def request_key(body: dict, host: str | None) -> str:
    """Identity of a request for replay: its canonical JSON (sorted keys) and the host."""
    canonical = json.dumps(
        {"host": host or "", "body": body}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()
