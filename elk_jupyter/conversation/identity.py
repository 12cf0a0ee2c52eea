"""What names a turn and a request: content-addressed turn ids, their short form, replay keys.

Pure (hashlib, json, os.urandom). Ids are unique across kernels, notebooks and machines, so saved
histories merge by identity (docs/record.md, "Ids"); a request key is the identity replay uses.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import cached_property
from json.encoder import encode_basestring as _quoted

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


SHOWN_IDS = 8  # a note names at most this many turns: its size, saved with every turn, stays bounded


def short_ids(ids, empty: str = "no earlier turn") -> str:
    """Turn ids for a note; of a long list, the first 3 and the last 4 around a count of the others."""
    names = [short(i) for i in ids]
    if len(names) > SHOWN_IDS:
        names = [*names[:3], f"… {len(names) - 7} more …", *names[-4:]]
    return ", ".join(names) or empty


def request_key(body: dict, host: str | None) -> str:
    """Identity of a request for replay: its canonical JSON (sorted keys) and the host."""
    canonical = json.dumps(
        {"host": host or "", "body": body}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Where:
    """Where a request was asked, the part of its replay identity that is not the body.

    A turn: its conversation and position there (how many turns its context held before it) and
    its cell when the front-end names one; an experiment run: its case and repeat. A judge call,
    or a record from before this field (record v2 without ``position``), says nowhere: the body
    alone names it, as it always did. Two cells asking the same thing in two conversations, or
    ``--no-context`` twice, are then two requests, each replaying its own answer (issue 21).
    """

    conversation: str | None = None
    position: int | None = None
    cell: str | None = None
    case: int | None = None
    repeat: int | None = None

    def shared(self) -> dict:
        """The part every notebook on the machine shares (the cache's): never the cell id, which
        is one notebook's own."""
        parts = {"conversation": self.conversation, "position": self.position, "case": self.case}
        parts["repeat"] = self.repeat
        return {name: value for name, value in parts.items() if value is not None}

    def matches(self, asked: Where) -> bool:
        """Whether a record made here answers a request asked at ``asked``: the same cell, or the
        same conversation and position (or case and repeat); a record that says nowhere answers its
        body anywhere (old notebooks keep replaying). ``replays`` prefers a same-cell record."""
        same_cell = self.cell is not None and self.cell == asked.cell
        return same_cell or self.shared() == asked.shared() or not self.shared()


@dataclass(frozen=True)
class Identity:
    """A request's replay identity: the exact body, the host a record names, the cache's scope
    (host, path, account hash) and where it was asked."""

    body: dict
    host: str | None
    scope: str | None = None
    where: Where = Where()

    # The keys are hashes of canonical JSON, asked for several times per request (the replay
    # decision, the store, the budget): computed once (the body is never changed once asked).
    # Each holds the body's canonical JSON: written once (``body_json``) and spliced into the
    # three documents, which are byte for byte what ``request_key`` writes (sorted keys: "body"
    # comes before "host" and "where").
    @classmethod
    def written(cls, body: dict, body_json: str, host: str | None, scope: str | None = None, where: Where = Where()):
        """The identity of ``body`` whose canonical JSON the caller has already written
        (``strict_canonical(body)``): an experiment's plan writes it once for every check of the body."""
        identity = cls(body, host, scope, where)
        identity.__dict__["body_json"] = body_json  # where the cached property ``body_json`` keeps its value
        return identity

    @cached_property
    def body_json(self) -> str:
        """The body's canonical JSON (sorted keys, no spaces): what the keys hash, and the cache stores."""
        return _canonical(self.body)

    @cached_property
    def body_key(self) -> str:
        """The body and host only: how notebook records are grouped before ``Where.matches``."""
        return _key(self.body_json, self.host)

    @cached_property
    def key(self) -> str:
        """This request here, in this notebook (a re-run of it samples again in auto mode)."""
        where = {**self.where.shared(), "cell": self.where.cell}
        return _key(f'{{"body":{self.body_json},"where":{_canonical(where)}}}', self.host)

    @cached_property
    def cache_key(self) -> str:
        """The cache's key: body, scope and the shared part of where (a nowhere request keeps
        its old key, so the cache still serves judge calls stored before)."""
        shared = self.where.shared()
        asked = f'{{"body":{self.body_json},"where":{_canonical(shared)}}}' if shared else self.body_json
        return _key(asked, self.scope or self.host)


# ``json.dumps`` with these options builds a new encoder per call: built once here instead, as a
# key is written several times per request (an encoder holds only its options: safe across threads).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
_STRICT = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _canonical(value) -> str:
    """``json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``."""
    return _CANONICAL.encode(value)


def strict_canonical(body) -> str | None:
    """The canonical JSON the keys hold of ``body`` when it is strict JSON, else None: it holds a
    NaN or an infinity, a value JSON cannot carry, keys that cannot be sorted, or too deep a nesting."""
    try:
        return _STRICT.encode(body)
    except (TypeError, ValueError, RecursionError):
        return None


def _key(asked_json: str, host: str | None) -> str:
    """``request_key`` of the value whose canonical JSON is ``asked_json``."""
    host = host or ""
    quoted = _quoted(host) if type(host) is str else _canonical(host)  # what json.dumps writes for a str
    canonical = f'{{"body":{asked_json},"host":{quoted}}}'
    return hashlib.sha256(canonical.encode()).hexdigest()
