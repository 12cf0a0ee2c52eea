"""Audio replies (issue 18): ``%%chat --audio`` against a real local server streaming transcript and base64
audio, both shapes (streamed ``delta.audio`` and non-streamed ``message.audio``), a real WAV decoded back
from the bytes received, the clip in the record and the saved output, later turns, replay offline.
"""

from __future__ import annotations

import base64
import io
import json
import math
import struct
import wave

import pytest
from hypothesis import given
from hypothesis import strategies as st

from elk_jupyter.conversation import session
from elk_jupyter.display.header import TurnHeader
from elk_jupyter.display.render import footer_items
from elk_jupyter.display.turn_output import TURN_MIME, turn_bundle
from elk_jupyter.errors import StreamError
from elk_jupyter.front.magics import ElkMagics
from elk_jupyter.gateway.dialects.chat_stream import chat_events_from_body
from elk_jupyter.gateway.events import AudioDelta
from elk_jupyter.gateway.reply import Reply
from elk_jupyter.gateway.usage import Usage
from elk_jupyter.media.audio import Base64Stream, parse_voice
from elk_jupyter.records import notebooks
from elk_jupyter.records import turn as record
from tests.environment import fresh_shell, turns
from tests.markdown_html import markdown_it_html, mistune_html, problems
from tests.scripted_server import Script

FAR = 4_102_444_800  # 2100-01-01: a clip the server still holds
PAST = 1_000_000_000  # 2001: an expired clip
USAGE = {
    "prompt_tokens": 17,
    "completion_tokens": 96,
    "total_tokens": 113,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 80},
}


def wav_bytes(seconds: float = 0.75, rate: int = 16_000) -> bytes:
    """A real WAV: a 440 Hz tone, mono 16-bit, made with the stdlib ``wave`` module."""
    frames = b"".join(
        struct.pack("<h", int(12_000 * math.sin(2 * math.pi * 440 * n / rate))) for n in range(int(seconds * rate))
    )
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(frames)
    return out.getvalue()


def wav_info(data: bytes) -> tuple[int, int, int, float]:
    """(channels, sample width, rate, seconds) read back from the bytes' own header."""
    with wave.open(io.BytesIO(data), "rb") as wav:
        return wav.getnchannels(), wav.getsampwidth(), wav.getframerate(), wav.getnframes() / wav.getframerate()


def chunk(delta: dict, finish=None, usage=None) -> str:
    frame = {"id": "chatcmpl-a1", "object": "chat.completion.chunk", "model": "gpt-audio-test", "usage": usage}
    frame["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish}] if delta is not None else []
    return f"data: {json.dumps(frame)}\n\n"


def streamed(sound: bytes, words=("Hello ", "from ", "a ", "tone."), piece=999, padded=False, expires_at=FAR):
    """The SSE a server streams for an audio reply: transcript pieces, then the sound in base64 chunks.

    ``padded``: each chunk encodes its own slice (so each ends in padding); otherwise one encoding
    cut every ``piece`` characters, mid-quantum.
    """
    frames = [chunk({"role": "assistant", "content": None, "audio": {"id": "audio_abc123", "transcript": ""}})]
    frames += [chunk({"audio": {"transcript": word}}) for word in words]
    if padded:
        pieces = [base64.b64encode(sound[i : i + piece]).decode() for i in range(0, len(sound), piece)]
    else:
        text = base64.b64encode(sound).decode()
        pieces = [text[i : i + piece] for i in range(0, len(text), piece)]
    frames += [chunk({"audio": {"data": data}}) for data in pieces]
    frames += [chunk({"audio": {"expires_at": expires_at}}, finish="stop"), chunk(None, usage=USAGE)]
    return "".join(frames) + "data: [DONE]\n\n"


def message_body(sound: bytes, transcript="Hello from a tone.", expires_at=FAR) -> dict:
    """The non-streamed ``chat.completion``: ``message.audio`` with id, data, transcript, expires_at."""
    audio = {"id": "audio_abc123", "data": base64.b64encode(sound).decode(), "expires_at": expires_at}
    message = {"role": "assistant", "content": None, "refusal": None, "audio": {**audio, "transcript": transcript}}
    return {
        "id": "chatcmpl-a2",
        "object": "chat.completion",
        "model": "gpt-audio-test",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": USAGE,
    }


def fresh_magics(shell, replay: str) -> ElkMagics:
    """A new kernel's state (no turns, nothing produced yet), as after a restart."""
    return fresh_shell(replay=replay)[1]


def saved_record(magics: ElkMagics, turn) -> dict:
    """The record the turn's output keeps (its audio inline or moved beside the notebook)."""
    return magics.runner._record(turn, magics.settings().audio_inline_bytes)[0]


def run(audio_ip, source: str):
    result = audio_ip.run_cell(source)
    assert result.success, result.error_in_exec or result.error_before_exec
    return audio_ip.user_ns["r"]


def test_streamed_audio_reply_is_read_as_transcript_and_a_real_wav(audio_ip, scripted):
    sound = wav_bytes()
    scripted.queue(Script.sse(streamed(sound)))
    reply = run(audio_ip, "%%chat --audio alloy:wav -o r\nSay hello.")
    assert scripted.requests[0].body == {
        "model": "gpt-audio-test",
        "messages": [{"role": "user", "content": "Say hello."}],
        "modalities": ["text", "audio"],
        "audio": {"voice": "alloy", "format": "wav"},
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    assert reply.status == "completed" and reply.text == "Hello from a tone."
    clip = reply.audio
    assert clip.data == sound  # every byte, through SSE, JSON and base64 pieces cut mid-quantum
    assert (clip.format, clip.mime, clip.id, clip.expires_at) == ("wav", "audio/wav", "audio_abc123", FAR)
    assert wav_info(clip.data) == (1, 2, 16_000, 0.75)
    assert clip.duration == 0.75
    assert Usage.of(reply.usage).describe() == "17 prompt · 96 completion (80 audio)"


def test_the_footer_counts_audio_tokens_on_both_sides():
    usage = {
        "prompt_tokens": 120,
        "completion_tokens": 90,
        "prompt_tokens_details": {"cached_tokens": 4, "audio_tokens": 30},
        "completion_tokens_details": {"audio_tokens": 70},
    }
    assert footer_items(usage, {}, "")[:2] == [["prompt", "120 (4 cached, 30 audio)"], ["completion", "90 (70 audio)"]]
    assert footer_items(USAGE, {}, "")[:2] == [["prompt", "17"], ["completion", "96 (80 audio)"]]


def test_each_chunk_padded_on_its_own_and_cut_across_network_reads_gives_the_same_bytes(audio_ip, scripted):
    sound = wav_bytes(0.3, 8_000)
    body = streamed(sound, piece=1000, padded=True).encode()
    scripted.queue(Script(body=[body[i : i + 777] for i in range(0, len(body), 777)]))  # reads split frames
    reply = run(audio_ip, "%%chat --audio verse:wav -o r\nSay hello.")
    assert reply.audio.data == sound
    assert wav_info(reply.audio.data)[2:] == (8_000, 0.3)


def test_non_streamed_message_audio_and_the_default_formats(audio_ip, scripted):
    sound = wav_bytes(0.5)
    scripted.queue(Script.json(message_body(sound)))
    reply = run(audio_ip, "%%chat --audio alloy --no-stream -o r\nSay hello.")
    body = scripted.requests[0].body
    assert body["audio"] == {"voice": "alloy", "format": "wav"} and body["stream"] is False
    assert "stream_options" not in body
    assert reply.text == "Hello from a tone." and reply.audio.data == sound and reply.audio.duration == 0.5
    # streamed without a format: pcm16, raw 24 kHz samples, kept wrapped in a WAV header so it plays
    samples = struct.pack("<4800h", *range(4800))
    scripted.queue(Script.sse(streamed(samples)))
    reply = run(audio_ip, "%%chat --audio alloy -o r\nAgain.")
    assert scripted.requests[1].body["audio"] == {"voice": "alloy", "format": "pcm16"}
    assert reply.audio.format == "pcm16" and reply.audio.mime == "audio/wav"
    assert wav_info(reply.audio.data) == (1, 2, 24_000, 0.2)
    assert reply.audio.data.endswith(samples)


def test_later_turns_send_the_audio_id_back_until_it_expires_then_the_transcript(audio_ip, scripted, capsys):
    sound = wav_bytes(0.2)
    scripted.queue(Script.sse(streamed(sound, expires_at=FAR)), Script.sse(streamed(sound, expires_at=PAST)))
    scripted.queue(Script.sse(chunk({"content": "ok"}, finish="stop") + "data: [DONE]\n\n"))
    run(audio_ip, "%%chat --audio alloy:wav -o r\nOne.")
    run(audio_ip, "%%chat --audio alloy:wav -o r\nTwo.")
    capsys.readouterr()
    run(audio_ip, "%%chat -o r\nThree.")
    second, third = scripted.requests[1].body["messages"], scripted.requests[2].body["messages"]
    assert second == [
        {"role": "user", "content": "One."},
        {"role": "assistant", "audio": {"id": "audio_abc123"}},
        {"role": "user", "content": "Two."},
    ]
    assert third[1] == {"role": "assistant", "audio": {"id": "audio_abc123"}}
    assert third[3] == {"role": "assistant", "content": "Hello from a tone."}  # expired: its transcript
    one, two = (t.short_id for t in turns(audio_ip)[:2])
    header = capsys.readouterr().out.splitlines()[0]
    assert f"audio {one} sent back by id" in header
    assert f"audio {two} sent as its transcript (expired or no id)" in header


def test_replay_with_the_server_stopped_plays_the_same_clip(audio_ip, scripted):
    sound = wav_bytes(0.4)
    scripted.queue(Script.sse(streamed(sound)))
    cell = "%%chat --audio alloy:wav -o r\nSay hello."
    live = run(audio_ip, cell)
    scripted.close()
    fresh_magics(audio_ip, "only")  # a restarted kernel: nothing but the cache to answer from
    replayed = run(audio_ip, cell)
    assert len(scripted.requests) == 1
    assert replayed.audio.data == live.audio.data == sound
    assert (replayed.text, replayed.audio.id, replayed.audio.format) == ("Hello from a tone.", "audio_abc123", "wav")


def test_the_record_keeps_small_clips_inline_and_big_ones_in_a_file_named_by_the_digest(audio_ip, scripted, tmp_path):
    small, big = wav_bytes(0.05), wav_bytes(1.0)
    magics = audio_ip.magics_manager.registry["ElkMagics"]
    magics.audio_inline_bytes = 10_000
    scripted.queue(Script.sse(streamed(small)), Script.sse(streamed(big)))
    run(audio_ip, "%%chat --audio alloy:wav -o r\nShort.")
    run(audio_ip, "%%chat --audio alloy:wav -o r\nLong.")
    records = [saved_record(magics, turn) for turn in turns(audio_ip)]
    inline, moved = (r["turn"]["reply"]["audio"] for r in records)
    assert base64.b64decode(inline["data"]) == small and "file" not in inline
    assert set(moved) == {"id", "format", "mime", "expires_at", "duration", "size", "digest", "file"}
    assert moved["file"] == f"{moved['digest']}.wav" and moved["size"] == len(big) and moved["duration"] == 1.0
    assert (tmp_path / moved["file"]).read_bytes() == big
    assert [record.validate(r) for r in records] == [[], []]
    # a saved notebook holding the small record: its bytes; the big one: the name only
    saved = json.dumps(records)
    assert base64.b64encode(big).decode()[:200] not in saved and inline["data"] in saved


def test_a_saved_notebook_replays_the_clip_from_the_file_beside_it(audio_ip, scripted, tmp_path):
    import nbformat

    sound = wav_bytes(1.0)
    magics = audio_ip.magics_manager.registry["ElkMagics"]
    magics.audio_inline_bytes = 1_000
    scripted.queue(Script.sse(streamed(sound)))
    cell = "%%chat --audio alloy:wav -o r\nSay hello."
    live = run(audio_ip, cell)
    saved = saved_record(magics, turns(audio_ip)[0])
    data, metadata = turn_bundle(live, TurnHeader(endpoint="chat", conversation="default"), saved)
    notebook = nbformat.v4.new_notebook()
    output = nbformat.v4.new_output("display_data", data=data, metadata=metadata)
    notebook.cells.append(nbformat.v4.new_code_cell(cell, outputs=[output]))
    path = tmp_path / "spoken.ipynb"
    nbformat.write(notebook, str(path))
    assert path.stat().st_size < len(sound)  # the clip is beside it, not in it
    (turn,), unusable = notebooks.read_turns(path)
    assert unusable == [] and base64.b64decode(turn.reply["audio"]["data"]) == sound
    scripted.close()
    (tmp_path / "cache").rename(tmp_path / "old-cache")  # only the notebook and its file can answer
    audio_ip.user_ns["__vsc_ipynb_file__"] = str(path)
    try:
        fresh_magics(audio_ip, "only")
        assert run(audio_ip, cell).audio.data == sound
    finally:
        del audio_ip.user_ns["__vsc_ipynb_file__"]


def test_the_saved_output_has_a_player_view_and_inert_copies():
    sound = wav_bytes(0.5)
    reply = Reply("chat", {"audio": {"voice": "alloy", "format": "wav"}})
    for event in chat_events_from_body(message_body(sound, transcript="<img src=x onerror=alert(1)> hi")):
        reply.add(event)
    data, _ = turn_bundle(reply, TurnHeader(endpoint="chat", conversation="default"), None)
    view = data[TURN_MIME]["audio"]
    assert view == {
        "format": "wav",
        "mime": "audio/wav",
        "duration": 0.5,
        "size": len(sound),
        "data": base64.b64encode(sound).decode(),
    }
    markdown = data["text/markdown"]
    assert problems(markdown_it_html(markdown)) == [] and problems(mistune_html(markdown)) == []
    assert "<audio" not in markdown_it_html(markdown) and "data:" not in markdown
    assert "*audio: 0.5 s wav clip, 16 KB &#40;in the notebook&#41;; the transcript is the text above*" in (
        markdown.replace("\\", "")
    )
    assert "[audio: 0.5 s wav clip" in data["text/plain"]
    moved = {**view, "file": "ab" * 32 + ".wav"}
    del moved["data"]
    data, _ = turn_bundle(reply, TurnHeader("", ""), {"turn": {"reply": {"audio": moved}}})
    assert "data" not in data[TURN_MIME]["audio"] and data[TURN_MIME]["audio"]["file"] == moved["file"]
    assert f"file {moved['file']} beside the notebook" in data["text/plain"]


@given(st.binary(max_size=400), st.lists(st.integers(0, 600), max_size=12), st.booleans())
def test_any_cutting_of_the_base64_decodes_to_the_same_bytes(sound, cuts, each_padded):
    if each_padded:  # every chunk its own encoding (of slices cut anywhere)
        edges = [0, *sorted(c for c in cuts if c < len(sound)), len(sound)]
        pieces = [base64.b64encode(sound[a:b]).decode() for a, b in zip(edges, edges[1:], strict=False)]
    else:  # one encoding cut anywhere, padding included
        text = base64.b64encode(sound).decode()
        edges = [0, *sorted(c for c in cuts if c < len(text)), len(text)]
        pieces = [text[a:b] for a, b in zip(edges, edges[1:], strict=False)]
    decoder = Base64Stream()
    assert b"".join(decoder.feed(piece) for piece in pieces) == sound
    decoder.end()


def test_hostile_audio_is_one_line_and_hostile_records_are_refused():
    with pytest.raises(StreamError, match="not base64"):
        Base64Stream().feed("<script>")
    cut = Base64Stream()  # padding cut between its two "=": still one quantum
    assert cut.feed("QUJDRA=") + cut.feed("=") == b"ABCD"
    cut.end()
    decoder = Base64Stream()
    decoder.feed("QUJD" + "RA")  # "ABC" and half a quantum
    with pytest.raises(StreamError, match="ended mid-way"):
        decoder.end()
    with pytest.raises(ValueError, match="format must be one of"):
        parse_voice("alloy:exe", True)
    with pytest.raises(ValueError, match="VOICE"):
        parse_voice(":wav", True)
    good = Reply("chat", {"audio": {"format": "wav"}})
    good.add(AudioDelta(wav_bytes(0.01), "audio_1"))
    turn = session.Turn("a" * 32, "default", "chat", "hi", {}, good.to_dict(), "completed")
    base = record.record_of(turn)
    assert record.validate(base) == []
    audio = base["turn"]["reply"]["audio"]
    bad = {
        "../etc/passwd": {**audio, "data": None, "file": "../etc/passwd"},
        "a URL": {**audio, "data": None, "file": "https://example.com/x.wav"},
        "another digest": {**audio, "data": None, "file": "f" * 64 + ".wav"},
        "both": {**audio, "file": audio["digest"] + ".wav"},
        "wrong bytes": {**audio, "data": base64.b64encode(b"other").decode()},
        "a format": {**audio, "format": "exe"},
        "a size": {**audio, "size": "12"},
    }
    for name, value in bad.items():
        hostile = {**base, "turn": {**base["turn"], "reply": {**base["turn"]["reply"], "audio": value}}}
        assert record.validate(hostile), name


def test_a_saved_audio_conversation_replays_after_the_clip_expired(audio_ip, scripted, tmp_path):
    """The second turn referred to the first clip by ``audio.id`` (not yet expired); replayed
    after expiry it must be planned as recorded, not with the transcript today's clock picks."""
    import time

    import nbformat

    ip = audio_ip
    expires = int(time.time()) + 2
    scripted.queue(Script.sse(streamed(wav_bytes(0.1), expires_at=expires)))
    scripted.queue(Script.sse(chunk({"content": "heard it"}, finish="stop") + "data: [DONE]\n\n"))
    cells = ["%%chat --audio alloy:wav -o r\nSay something.", "%%chat -o r\nWhat did you say?"]
    live = [run(ip, cell) for cell in cells]
    assert scripted.requests[1].body["messages"][1] == {"role": "assistant", "audio": {"id": "audio_abc123"}}
    magics = ip.magics_manager.registry["ElkMagics"]
    notebook = nbformat.v4.new_notebook()
    for cell, reply, turn in zip(cells, live, turns(ip), strict=True):
        data, metadata = turn_bundle(reply, TurnHeader("chat", "default"), saved_record(magics, turn))
        output = nbformat.v4.new_output("display_data", data=data, metadata=metadata)
        notebook.cells.append(nbformat.v4.new_code_cell(cell, outputs=[output]))
    path = tmp_path / "spoken.ipynb"
    nbformat.write(notebook, str(path))
    scripted.close()
    (tmp_path / "cache").rename(tmp_path / "old-cache")  # only the notebook can answer
    while time.time() <= expires + 1:  # the clip has expired by now
        time.sleep(0.2)
    ip.user_ns["__vsc_ipynb_file__"] = str(path)
    try:
        fresh_magics(ip, "only")
        assert [run(ip, cell).text for cell in cells] == ["Hello from a tone.", "heard it"]
    finally:
        del ip.user_ns["__vsc_ipynb_file__"]
    assert len(scripted.requests) == 2
