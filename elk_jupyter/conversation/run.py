"""The one run path of a request: decide (``Replays.decide``) → replay | send keeping the partial
reply → store.

Every request the package makes goes through ``run``: a cell's turn and a chat-panel message
(``turns.TurnRunner``), an experiment run and a judge call (``experiments.runner``) and
``elk-jupyter rerun`` (``cli.main``). It lives beside the conversation because a request's identity
(``identity.Identity``: body, host, scope and where it was asked) is planned there, and it sits
above both things it joins: the replay index (``records.cache``) and the gateway (``send``).
It touches no IPython and no thread-bound state, so callers run it from worker threads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from elk_jupyter.conversation.identity import Identity
from elk_jupyter.errors import ElkError
from elk_jupyter.gateway.reply import Reply
from elk_jupyter.records.cache import Decision, Replays

Send = Callable[[dict], tuple[Reply, "ElkError | None"]]


class NotRecorded(ElkError):
    """Replay is "only" and no record answers the request: nothing was sent."""


@dataclass(frozen=True)
class Ran:
    reply: Reply
    error: ElkError | None  # why a live reply failed (its partial text is in ``reply``)
    origin: str  # replayed | live | regenerated

    @property
    def replayed(self) -> bool:
        return self.origin == "replayed"


def run(
    replays: Replays,
    identity: Identity,
    mode: str,
    send: Send,
    *,
    refusal: str | Callable[[], str],
    forced: bool = False,
    opened: Callable[[Decision], None] | None = None,
    resample: bool = False,
    keep: bool = True,
) -> Ran:
    """Replay the recorded reply of ``identity`` or send it with ``send``, and remember a success.

    ``refusal``: the message (or what makes it, once the records are read) of the ``NotRecorded``
    raised when ``mode`` is only and nothing answers; ``forced``: the mode was given for this one request; ``opened``: told the decision
    before anything streams (a view opens there); ``resample``: a later run of the same request
    here samples again (turns: re-running a cell regenerates; experiment runs resume instead);
    ``keep``: store a live success in the cache too (``rerun --replay off`` leaves it as it was).
    """
    decision = replays.decide(mode, identity, forced=forced)
    if decision.refused:
        raise NotRecorded(refusal() if callable(refusal) else refusal)
    if opened is not None:
        opened(decision)
    if decision.recorded is not None:
        reply, error = Reply.from_dict(decision.recorded, identity.body), None
    else:
        reply, error = send(identity.body)
        if reply.ok:  # only a success is kept: a replay never reproduces a failure
            replays.store(identity, reply.to_dict(), keep)
    if resample:
        replays.answered(identity)
    return Ran(reply, error, decision.origin)


def sender(client, endpoint: str) -> Send:
    """The plain way to send: one request, the partial reply kept on a failure."""
    from elk_jupyter.gateway.client import send_keeping_partial  # requests loads only when something is sent

    return lambda body: send_keeping_partial(client, endpoint, body)
