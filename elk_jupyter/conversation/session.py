"""Conversation state of one notebook: turns (frozen records), named conversations, their context.

Pure: no I/O. The rules users rely on live here:
- transactional: only a completed turn joins the context; a failed one is kept, shown, not sent;
- cell-aware: re-running a cell replaces its turn, and the turns after it leave the context;
- visible: every turn knows which earlier turns were sent and roughly what they cost;
- identified: a turn id is unique across kernels and machines, so histories merge by id and parent.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace

from elk_jupyter.conversation.identity import new_turn_id, request_key, short, short_ids  # noqa: F401 - one import for callers
from elk_jupyter.errors import HistoryError
from elk_jupyter.gateway.usage import Usage


@dataclass(frozen=True)
class Turn:
    id: str
    conversation: str
    endpoint: str  # "chat" | "responses"
    prompt: str  # the user text as sent (after any interpolation)
    request: dict  # the exact JSON body sent (no key: the key is a header, never recorded)
    reply: dict  # Reply.to_dict()
    status: str  # completed | incomplete | interrupted | error | replayed
    parent: str | None = None  # the turn this one continues
    context: tuple[str, ...] = ()  # ids of the earlier turns sent with it
    context_tokens: int | None = None  # what sending them cost, as far as we know
    cell_id: str | None = None
    execution_count: int | None = None
    system: str | None = None
    mode: str | None = None  # responses: "chain" (previous_response_id) or "stateless"
    host: str | None = None
    replayed: bool = False
    created_at: float = field(default_factory=time.time)
    mode_reason: str | None = None  # responses: why the turn was not (fully) chained
    origin: str | None = None  # live | replayed | regenerated (a re-run in the same kernel)
    attachments: list | None = None  # images sent: digest, media type, size (bytes only when small)
    position: int | None = None  # turns in the conversation's context before it: where it was asked

    @property
    def ok(self) -> bool:
        return self.status in ("completed", "incomplete")

    @property
    def text(self) -> str:
        text = self.reply.get("text")
        return text if isinstance(text, str) else ""

    @property
    def short_id(self) -> str:
        return short(self.id)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["context"] = list(self.context)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Turn:
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in known}
        values["context"] = tuple(values.get("context") or ())
        return cls(**values)


def estimate_tokens(text: str) -> int:
    """A rough count (4 characters a token) for when the server did not say."""
    return (len(text) + 3) // 4


@dataclass
class Conversation:
    name: str
    system: str | None = None
    turns: list[Turn] = field(default_factory=list)  # this conversation's own turns, failed ones included
    active: list[str] = field(default_factory=list)  # ids of the turns that form the context
    # Every turn of the notebook by id, shared by its conversations: a fork's context and parents
    # reach into the conversation it was forked from. Also keeps long conversations linear.
    index: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        for turn in self.turns:
            self.index.setdefault(turn.id, turn)

    def turn(self, turn_id: str) -> Turn:
        return self.index[turn_id]

    def __contains__(self, turn_id: str) -> bool:
        return turn_id in self.index

    def context_for(self, cell_id: str | None) -> tuple[list[Turn], list[Turn]]:
        """(the turns to send, the turns a re-run of ``cell_id`` drops from the context)."""
        chain = [self.turn(t) for t in self.active]
        if cell_id is not None:
            for position, turn in enumerate(chain):
                if turn.cell_id == cell_id:
                    return chain[:position], chain[position:]
        return chain, []

    def chain_to(self, turn_id: str | None) -> list[str]:
        """The ids from the first turn to ``turn_id``, following parent links (never loops)."""
        chain: list[str] = []
        seen: set[str] = set()
        while turn_id is not None:
            if turn_id in seen:
                raise HistoryError(f"turn {short(turn_id)}: its parents form a cycle")
            if turn_id not in self.index:
                child = f"turn {short(chain[-1])}: its parent " if chain else "turn "
                raise HistoryError(f"{child}{short(turn_id)} is not in this notebook")
            seen.add(turn_id)
            chain.append(turn_id)
            turn_id = self.index[turn_id].parent
        return chain[::-1]

    def add(self, turn: Turn) -> None:
        """Keep a turn without touching the context (restore adds, then settles)."""
        self.turns.append(turn)
        self.index[turn.id] = turn

    def commit(self, turn: Turn) -> None:
        """Add a finished turn; only a successful one joins the context (after its parent)."""
        self.add(turn)
        if not turn.ok:
            return
        if turn.parent is not None and self.active and self.active[-1] == turn.parent:
            self.active.append(turn.id)  # the usual case: it continues the current context
        else:
            self.active = [*self.chain_to(turn.parent), turn.id]

    def accept(self, turn_id: str) -> tuple[list[str], list[str]]:
        """Make the context the chain that ends at ``turn_id``: a failed or interrupted turn (its
        partial reply) joins after its parent; a completed one is gone back to.

        Returns (the ids that join, the ids that leave). Turns not on that chain were asked
        without it, so they leave: the context stays a history that happened.
        """
        turn = self.turn(turn_id)
        before = list(self.active)
        if not turn.ok:
            turn = accepted(turn)
            self.turns[self.turns.index(self.index[turn_id])] = turn
            self.index[turn_id] = turn
        self.active = self.chain_to(turn_id)
        return [t for t in self.active if t not in before], [t for t in before if t not in self.active]

    def settle(self) -> None:
        """After a restore: the context is the chain of the most recent successful own turn."""
        done = [t for t in self.turns if t.ok]
        self.active = self.chain_to(max(done, key=lambda t: t.created_at).id) if done else []

    def usage_totals(self) -> dict:
        totals = {"turns": 0, **Usage().numbers()}
        for turn in self.turns:
            if turn.replayed:
                continue  # replays cost nothing
            totals["turns"] += 1
            steps = turn.reply.get("steps")
            # A tool turn made one request per step: each was billed.
            earlier = [s.get("usage") for s in steps if isinstance(s, dict)] if isinstance(steps, list) else []
            for usage in [turn.reply.get("usage"), *earlier]:
                for key, value in Usage.of(usage).numbers().items():
                    totals[key] += value
        return totals


def accepted(turn: Turn) -> Turn:
    """The turn as ``%elk accept`` leaves it: its partial reply counts as completed."""
    if turn.ok:
        return turn
    return replace(turn, status="completed", reply={**turn.reply, "status": "accepted"})


class Conversations:
    """The named conversations of one kernel (one kernel serves one notebook), and every turn by id."""

    def __init__(self) -> None:
        self.conversations: dict[str, Conversation] = {}
        self.index: dict[str, Turn] = {}  # every turn by id, whichever conversation owns it

    def conversation(self, name: str) -> Conversation:
        if name not in self.conversations:
            self.conversations[name] = Conversation(name, index=self.index)
        return self.conversations[name]

    def resolve(self, ref: str) -> str:
        """The full id of the turn ``ref`` names: the id itself or an unambiguous prefix of it."""
        if ref in self.index:
            return ref
        matches = [i for i in self.index if i.startswith(ref)] if len(ref) >= 4 else []
        if len(matches) > 1:
            raise ValueError(f"turn {ref!r} is ambiguous: {', '.join(m[: len(ref) + 4] for m in matches)}")
        if not matches:
            raise ValueError(f"no turn {ref!r} in this notebook")
        return matches[0]

    def find(self, ref: str) -> tuple[Conversation, Turn]:
        turn = self.index[self.resolve(ref)]
        return self.conversation(turn.conversation), turn

    def fork(self, source: str, target: str, upto: str | None = None) -> Conversation:
        """A new conversation whose context is ``source``'s, or the history up to turn ``upto``."""
        origin = self.conversations[source]
        if target in self.conversations and self.conversations[target].turns:
            raise ValueError(f"conversation {target!r} already exists")
        active = list(origin.active)
        if upto is not None:
            upto = self.resolve(upto)
            active = active[: active.index(upto) + 1] if upto in active else origin.chain_to(upto)
        forked = Conversation(target, origin.system, active=active, index=self.index)
        self.conversations[target] = forked
        return forked

    def reset(self, name: str | None = None) -> list[str]:
        names = list(self.conversations) if name is None else [name]
        for each in names:
            self.conversations.pop(each, None)  # its turns stay in the index: forks may build on them
        return names

    def usage_totals(self) -> dict:
        totals: dict = {}
        for conversation in self.conversations.values():
            for key, value in conversation.usage_totals().items():
                totals[key] = totals.get(key, 0) + value
        return totals


Notebook = Conversations  # the old name, kept while the round-2 branches merge
