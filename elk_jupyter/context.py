"""What earlier turns a request carries: chat messages, Responses input items, what they cost,
and where a Responses request can chain (``previous_response_id``) without changing that history.

Pure. The rule for chaining: a stored response holds exactly the turns its record says were sent
with it, plus itself; so a request may chain from a turn only if that turn's recorded context is
exactly the turns before it in the history to send. Anything else would make the model see a
history the record does not show (issue 14).
"""

from __future__ import annotations

import time

from .session import Turn, estimate_tokens, short, short_ids, usage_numbers


def chat_messages(system: str | None, history: list[Turn], prompt: str, now: float | None = None) -> list[dict]:
    """Chat messages: the system prompt, each earlier turn as user + assistant, the new prompt.

    Earlier tool calls are not replayed (they would need their tool results); their text is. An
    earlier audio reply goes back as ``audio: {id}`` while the server still holds it, else as its
    transcript (https://platform.openai.com/docs/guides/audio, multi-turn conversations).
    """
    now = time.time() if now is None else now
    messages = [{"role": "system", "content": system}] if system else []
    for turn in history:
        messages.append({"role": "user", "content": turn.prompt})
        audio_id = audio_reference(turn, now)
        if audio_id is not None:
            messages.append({"role": "assistant", "audio": {"id": audio_id}})
        else:
            messages.append({"role": "assistant", "content": turn.text})
    messages.append({"role": "user", "content": prompt})
    return messages


def audio_reference(turn: Turn, now: float) -> str | None:
    """The id of ``turn``'s audio reply while the server holds it (before ``expires_at``), else None."""
    audio = turn.reply.get("audio")
    if not isinstance(audio, dict) or not isinstance(audio.get("id"), str) or not audio["id"]:
        return None
    expires = audio.get("expires_at")
    if not isinstance(expires, int | float) or isinstance(expires, bool) or expires <= now:
        return None
    return audio["id"]


def audio_note(history: list[Turn], now: float) -> str:
    """How earlier audio replies go back, for the context note ('' when there are none)."""
    spoken = [t for t in history if isinstance(t.reply.get("audio"), dict)]
    if not spoken:
        return ""
    by_id = [t for t in spoken if audio_reference(t, now) is not None]
    text = [t for t in spoken if t not in by_id]
    parts = [f"audio {short_ids(t.id for t in by_id)} sent back by id"] if by_id else []
    if text:
        parts.append(f"audio {short_ids(t.id for t in text)} sent as its transcript (expired or no id)")
    return " · ".join(parts)


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
    last = history[-1]
    numbers = usage_numbers(last.reply.get("usage"))
    # The last turn's usage counts exactly these turns only if it was sent with the ones before it.
    exact = list(last.context) == [t.id for t in history[:-1]]
    if exact and (numbers["prompt"] or numbers["completion"]):
        return numbers["prompt"] + numbers["completion"]
    return sum(estimate_tokens(t.prompt) + estimate_tokens(t.text) for t in history)


def chain_point(history: list[Turn], host: str | None) -> tuple[int | None, str | None]:
    """(the index of the latest turn in ``history`` a request can chain from, or None; why the
    turns after it, if any, cannot be chained and must be re-sent)."""
    reason = None
    for position in range(len(history) - 1, -1, -1):
        problem = unchainable(history[position], [t.id for t in history[:position]], host)
        if problem is None:
            return position, reason
        reason = reason or problem
    return None, reason


def unchainable(turn: Turn, before: list[str], host: str | None) -> str | None:
    """Why ``turn``'s stored response cannot stand for ``before`` + itself (None: it can)."""
    name = short(turn.id)
    if turn.endpoint != "responses":
        return f"{name} ran on the chat endpoint"
    if not turn.reply.get("id") or turn.reply.get("status") not in ("completed", "incomplete"):
        return f"{name} has no complete stored response"
    if turn.request.get("store") is False:
        return f"{name} was sent with store=false"
    if turn.host != host:
        return f"{name} was answered by another host"
    if list(turn.context) != before:
        return f"{name}'s stored response holds {short_ids(turn.context)} before it, this context {short_ids(before)}"
    return None
