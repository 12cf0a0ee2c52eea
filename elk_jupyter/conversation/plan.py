"""A turn about to be sent: its conversation, the earlier turns it carries (context policy,
``--no-context``, Responses chaining), the exact body, the note the panel shows, and its id.

Pure. What a record says was sent is what the model sees: ``history`` is exactly the turns in
the body, whether re-sent as messages or held by the stored response ``previous_response_id``
names (see ``context.chain_point``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from elk_jupyter.conversation import context, session
from elk_jupyter.conversation.identity import Where
from elk_jupyter.conversation.session import Conversation, Turn, short, short_ids
from elk_jupyter.gateway.dialects import dialect


@dataclass
class Plan:
    conversation: Conversation
    chain: list[Turn]  # the conversation's context before this turn
    dropped: list[Turn]  # turns a re-run of this cell takes out of the context
    history: list[Turn]  # the earlier turns actually sent (after the context policy)
    model: str
    body: dict
    mode: str | None  # responses: chain | stateless
    mode_reason: str | None  # responses: why (part of) the history is re-sent rather than chained
    cell: tuple  # (cell id, execution count)
    no_context: bool = False  # --no-context: nothing sent, by request
    created_at: float = field(default_factory=time.time)
    history_note: str = ""  # the dialect's word on how earlier turns went back (audio by id or as text)
    id: str = ""

    def __post_init__(self) -> None:
        # Known before the stream starts, so the panel and a failure's message can name the turn.
        self.id = session.new_turn_id(self.parent, self.conversation.name, self.body, self.created_at)

    @property
    def where(self) -> Where:
        """Where this turn is asked: its conversation, the turns its context held, its cell."""
        return Where(self.conversation.name, len(self.chain), self.cell[0])

    @property
    def parent(self) -> str | None:
        return self.chain[-1].id if self.chain else None

    @property
    def note(self) -> str:
        """What the panel says about the context: which turns, their cost, policy and chaining."""
        history = self.history
        note = f"turn {short(self.id)} · "
        if not history:
            note += "no earlier turns"
        else:
            plural = "s" if len(history) > 1 else ""
            note += f"{len(history)} earlier turn{plural} ({short_ids(t.id for t in history)})"
            note += f" · ~{context.context_cost(history)} tokens"
        if self.no_context and self.chain:
            note += f" · {len(self.chain)} left out by --no-context"
        elif len(history) < len(self.chain):
            note += f" · {len(self.chain) - len(history)} older left out by the context policy"
        if self.mode == "chain":
            previous = self.body.get("previous_response_id")
            source = next((t for t in history if t.reply.get("id") == previous), None)
            note += f" · previous_response_id of {short(source.id) if source else previous}"
            resent = history[history.index(source) + 1 :] if source else []
            if resent:
                note += f" + {short_ids(t.id for t in resent)} re-sent"
        elif self.mode == "stateless" and history:
            note += " · stateless resend"
        if self.mode_reason:
            note += f" ({self.mode_reason})"
        return note + (f" · {self.history_note}" if self.history_note else "")

    def turn(self, endpoint, prompt, reply, host, origin, attachments=None) -> Turn:
        """The turn this plan became; ``attachments``: the record's entries of the images sent."""
        return Turn(
            id=self.id,
            conversation=self.conversation.name,
            endpoint=endpoint,
            prompt=prompt,
            request=self.body,
            reply=reply.to_dict(),
            status=reply.status,
            parent=self.parent,
            context=tuple(t.id for t in self.history),
            context_tokens=context.context_cost(self.history),
            cell_id=self.cell[0],
            execution_count=self.cell[1],
            system=self.conversation.system,
            mode=self.mode,
            host=host,
            replayed=origin == "replayed",
            created_at=self.created_at,
            mode_reason=self.mode_reason,
            origin=origin,
            attachments=attachments or None,
            position=len(self.chain),
        )


def build(conversations, settings, ask, model: str, host: str | None, clock: float | None = None) -> Plan:
    """Which conversation, which earlier turns, and the exact body to send for ``ask``.

    ``settings`` (a ``Settings`` snapshot) gives the default conversation and the context policy;
    the body itself is the dialect's (``dialects``). ``clock``: plan the body as at that time (a
    replayed turn is planned as it was recorded: whether an earlier audio clip was still
    referable by id depends on the time); the turn itself is made now.
    """
    conversation = conversations.conversation(ask.conversation or settings.default_conversation)
    if ask.new:
        conversation.active = []
    if ask.system is not None:
        conversation.system = ask.system
    chain, dropped = conversation.context_for(ask.cell[0])
    history = [] if ask.no_context else context.apply_policy(chain, settings.context_turns, settings.context_tokens)
    model = ask.model or model
    now = time.time()  # one instant for the body, its note and the turn's id (an earlier audio reply may expire)
    request = dialect(ask.endpoint).request(
        ask, settings, history, conversation.system, model, host, now if clock is None else clock
    )
    return Plan(
        conversation,
        chain,
        dropped,
        history,
        model,
        request.body,
        request.mode,
        request.reason,
        ask.cell,
        ask.no_context,
        created_at=now,
        history_note=request.note,
    )
