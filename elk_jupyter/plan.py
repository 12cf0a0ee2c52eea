"""A turn about to be sent: its conversation, the earlier turns it carries (context policy,
``--no-context``, Responses chaining), the exact body, the note the panel shows, and its id.

Pure. What a record says was sent is what the model sees: ``history`` is exactly the turns in
the body, whether re-sent as messages or held by the stored response ``previous_response_id``
names (see ``context.chain_point``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from . import context, endpoints, options, session
from .session import Conversation, Turn, short, short_ids


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
    id: str = ""

    def __post_init__(self) -> None:
        # Known before the stream starts, so the panel and a failure's message can name the turn.
        self.id = session.new_turn_id(self.parent, self.conversation.name, self.body, self.created_at)

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
        spoken = context.audio_note(history, self.created_at) if self.body.get("messages") else ""
        return note + (f" · {spoken}" if spoken else "")

    def turn(self, endpoint, prompt, reply, host, origin) -> Turn:
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
        )


def build(notebook, settings, default_model, host, endpoint, args, prompt, params, extra, cell) -> Plan:
    """Which conversation, which earlier turns, and the exact body to send.

    ``settings`` carries the magics' configuration (conversation, context policy, respond mode).
    """
    conversation = notebook.conversation(args.conversation or settings.default_conversation)
    if args.new:
        conversation.active = []
    if args.system is not None:
        conversation.system = args.system
    chain, dropped = conversation.context_for(cell[0])
    history = [] if args.no_context else apply_policy(chain, settings.context_turns, settings.context_tokens)
    model = args.model or default_model
    stream = not args.no_stream
    now = time.time()  # one instant for the body and its note (an earlier audio reply may expire)
    if endpoint == endpoints.CHAT:
        messages = context.chat_messages(conversation.system, history, prompt, now)
        body, mode, reason = endpoints.chat_body(messages, model, stream, **params), None, None
    else:
        stateless = getattr(args, "stateless", False) or settings.respond_mode == "stateless"
        params = dict(params, instructions=conversation.system)
        body, mode, reason = responses_body(history, prompt, model, stream, params, stateless, host)
    for path, value in extra:
        options.set_path(body, path, value)
    if mode == "stateless" and body.get("previous_response_id"):
        mode, reason = "chain", "previous_response_id set by --param: the server's history is not in the record"
    return Plan(conversation, chain, dropped, history, model, body, mode, reason, cell, args.no_context, now)


def apply_policy(chain: list[Turn], turns: int, tokens: int) -> list[Turn]:
    """The most recent ``turns`` turns (0: all), then the oldest dropped past ``tokens`` (0: no cap)."""
    history = chain[-turns:] if turns > 0 else list(chain)
    if tokens > 0:
        while history and context.context_cost(history) > tokens:
            history = history[1:]
    return history


def responses_body(history, prompt, model, stream, params, stateless, host) -> tuple[dict, str, str | None]:
    """(body, mode, reason): chain from the latest response that holds exactly the history before
    it, re-sending the turns after it; stateless when none does (or when asked)."""
    position, reason = (None, None) if stateless or not history else context.chain_point(history, host)
    if position is None:
        body = endpoints.responses_body(context.responses_input(history, prompt), model, stream, **params)
        return body, "stateless", reason
    params = dict(params, previous_response_id=history[position].reply["id"])
    body = endpoints.responses_body(context.responses_input(history[position + 1 :], prompt), model, stream, **params)
    return body, "chain", reason
