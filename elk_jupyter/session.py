"""Conversation state of one notebook: turns (frozen records), named conversations, their context.

Pure: no I/O. The rules users rely on live here:
- transactional: only a completed turn joins the context; a failed one is kept, shown, not sent;
- cell-aware: re-running a cell replaces its turn, and the turns after it leave the context;
- visible: every turn knows which earlier turns were sent and roughly what they cost.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace

from .usage import Usage

RECORD_VERSION = 1
RECORD_KEY = "elk_jupyter"  # the output-metadata key that holds a turn's record


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

    @property
    def ok(self) -> bool:
        return self.status in ("completed", "incomplete")

    @property
    def text(self) -> str:
        return self.reply.get("text") or ""

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


def usage_numbers(usage: object) -> dict:
    """Prompt/completion/total/cached/reasoning tokens (0 if unknown), normalised by ``Usage.of``."""
    return Usage.of(usage).numbers()


@dataclass
class Conversation:
    name: str
    system: str | None = None
    turns: list[Turn] = field(default_factory=list)  # every turn ever, failed ones included
    active: list[str] = field(default_factory=list)  # ids of the turns that form the context
    _by_id: dict = field(init=False, repr=False, compare=False)  # keeps long conversations linear

    def __post_init__(self) -> None:
        self._by_id = {turn.id: turn for turn in self.turns}

    def turn(self, turn_id: str) -> Turn:
        return self._by_id[turn_id]

    def __contains__(self, turn_id: str) -> bool:
        return turn_id in self._by_id

    def context_for(self, cell_id: str | None) -> tuple[list[Turn], list[Turn]]:
        """(the turns to send, the turns a re-run of ``cell_id`` drops from the context)."""
        chain = [self.turn(t) for t in self.active]
        if cell_id is not None:
            for position, turn in enumerate(chain):
                if turn.cell_id == cell_id:
                    return chain[:position], chain[position:]
        return chain, []

    def chain_to(self, turn_id: str | None) -> list[str]:
        """The ids from the first turn to ``turn_id``, following parent links."""
        chain: list[str] = []
        while turn_id is not None:
            chain.append(turn_id)
            turn_id = self.turn(turn_id).parent
        return chain[::-1]

    def commit(self, turn: Turn) -> None:
        """Add a finished turn; only a successful one joins the context (after its parent)."""
        self.turns.append(turn)
        self._by_id[turn.id] = turn
        if not turn.ok:
            return
        if turn.parent is not None and self.active and self.active[-1] == turn.parent:
            self.active.append(turn.id)  # the usual case: it continues the current context
        else:
            self.active = [*self.chain_to(turn.parent), turn.id]

    def accept(self, turn_id: str) -> Turn:
        """Let a failed or interrupted turn (its partial reply) join the context after all."""
        turn = self.turn(turn_id)
        if turn.ok:
            return turn
        accepted = replace(turn, status="completed", reply={**turn.reply, "status": "accepted"})
        self.turns[self.turns.index(turn)] = accepted
        self._by_id[turn_id] = accepted
        self.active = [*self.chain_to(turn.parent), turn.id]
        return accepted

    def usage_totals(self) -> dict:
        totals = {"turns": 0, "prompt": 0, "completion": 0, "total": 0, "cached": 0, "reasoning": 0}
        for turn in self.turns:
            if turn.replayed:
                continue  # replays cost nothing
            totals["turns"] += 1
            for key, value in usage_numbers(turn.reply.get("usage")).items():
                totals[key] += value
        return totals


class Notebook:
    """The conversations of one kernel (one kernel serves one notebook)."""

    def __init__(self) -> None:
        self.conversations: dict[str, Conversation] = {}
        self._counter = 0

    def conversation(self, name: str) -> Conversation:
        if name not in self.conversations:
            self.conversations[name] = Conversation(name)
        return self.conversations[name]

    def new_turn_id(self) -> str:
        self._counter += 1
        return f"t{self._counter}"

    def find(self, turn_id: str) -> tuple[Conversation, Turn]:
        for conversation in self.conversations.values():
            for turn in conversation.turns:
                if turn.id == turn_id:
                    return conversation, turn
        raise KeyError(turn_id)

    def fork(self, source: str, target: str, upto: str | None = None) -> Conversation:
        """A new conversation whose context is ``source``'s, up to and including turn ``upto``."""
        origin = self.conversations[source]
        if target in self.conversations and self.conversations[target].turns:
            raise ValueError(f"conversation {target!r} already exists")
        active = list(origin.active)
        if upto is not None:
            if upto not in active:
                raise KeyError(upto)
            active = active[: active.index(upto) + 1]
        forked = Conversation(target, origin.system, [origin.turn(t) for t in active], active)
        self.conversations[target] = forked
        return forked

    def reset(self, name: str | None = None) -> list[str]:
        names = list(self.conversations) if name is None else [name]
        for each in names:
            self.conversations.pop(each, None)
        return names

    def add_restored(self, turn: Turn) -> None:
        """Rebuild state from a saved record (``%elk restore``): same ids, same context."""
        conversation = self.conversation(turn.conversation)
        if turn.id in conversation:
            return
        conversation.system = turn.system or conversation.system
        conversation.commit(turn)
        number = turn.id[1:]
        if number.isdigit():
            self._counter = max(self._counter, int(number))

    def usage_totals(self) -> dict:
        totals: dict = {}
        for conversation in self.conversations.values():
            for key, value in conversation.usage_totals().items():
                totals[key] = totals.get(key, 0) + value
        return totals


def chat_messages(system: str | None, history: list[Turn], prompt: str) -> list[dict]:
    """Chat messages: the system prompt, each earlier turn as user + assistant, the new prompt.

    Earlier tool calls are not replayed (they would need their tool results); their text is.
    """
    messages = [{"role": "system", "content": system}] if system else []
    for turn in history:
        messages.append({"role": "user", "content": turn.prompt})
        messages.append({"role": "assistant", "content": turn.text})
    messages.append({"role": "user", "content": prompt})
    return messages


def responses_input(history: list[Turn], prompt: str) -> list[dict] | str:
    """Stateless Responses input: the earlier turns re-sent as messages (or just the prompt)."""
    if not history:
        return prompt
    # "type": "message" is optional in OpenAI's spec but required by llama-server.
    items: list[dict] = []
    for turn in history:
        items.append({"type": "message", "role": "user", "content": turn.prompt})
        items.append({"type": "message", "role": "assistant", "content": turn.text})
    items.append({"type": "message", "role": "user", "content": prompt})
    return items


def context_cost(history: list[Turn]) -> int:
    """Tokens the earlier turns add to a request: the last one's prompt + completion, when known.

    A chat turn's prompt already holds everything before it, so the last turn's usage counts
    the whole history exactly; without usage we estimate from the text.
    """
    if not history:
        return 0
    numbers = usage_numbers(history[-1].reply.get("usage"))
    if numbers["prompt"] or numbers["completion"]:
        return numbers["prompt"] + numbers["completion"]
    return sum(estimate_tokens(t.prompt) + estimate_tokens(t.text) for t in history)


def record_of(turn: Turn) -> dict:
    """The versioned record a turn leaves in its output's metadata (see docs/record.md)."""
    from . import __version__

    return {"version": RECORD_VERSION, "package": __version__, "turn": turn.to_dict()}


def request_key(body: dict, host: str | None) -> str:
    """Identity of a request for replay: its canonical JSON (sorted keys) and the host."""
    import hashlib
    import json

    canonical = json.dumps(
        {"host": host or "", "body": body}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()
