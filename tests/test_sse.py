"""The SSE decoder over bytes: one test per edge case of the WHATWG rules, then properties.

https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from elk_jupyter.gateway.sse import ServerSentEvent as Event
from elk_jupyter.gateway.sse import SSEDecoder, iter_events


def decode(*chunks: bytes) -> list[Event]:
    return list(iter_events(chunks))


def cut(stream: bytes, cuts: list[int]) -> list[bytes]:
    edges = [0, *sorted(cuts), len(stream)]
    return [stream[a:b] for a, b in zip(edges, edges[1:], strict=False)]


def every_split(stream: bytes) -> list[list[Event]]:
    """The events for the stream cut in two at every byte, and fed one byte at a time."""
    results = [decode(stream[:i], stream[i:]) for i in range(len(stream) + 1)]
    results.append(decode(*(stream[i : i + 1] for i in range(len(stream)))))
    return results


def test_lf_lines():
    assert decode(b"data: a\n\ndata: b\n\n") == [Event("a"), Event("b")]


def test_cr_lines():
    assert decode(b"event: x\rdata: a\r\rdata: b\r\r") == [Event("a", "x"), Event("b")]


def test_crlf_lines():
    assert decode(b"event: x\r\ndata: a\r\n\r\ndata: b\r\n\r\n") == [Event("a", "x"), Event("b")]


def test_mixed_line_endings():
    assert decode(b"event: x\rdata: a\r\n\ndata: b\n\r") == [Event("a", "x"), Event("b")]


def test_crlf_split_across_reads_is_one_line_end():
    # requests' iter_lines yields a spurious blank line here and dispatches "x" with no data.
    assert decode(b"event: x\r", b"\ndata: y\r\n\r\n") == [Event("y", "x")]
    # The blank line itself split: CR ends one read, its LF starts the next.
    assert decode(b"data: a\r\n\r", b"\ndata: b\r\n\r\n") == [Event("a"), Event("b")]
    assert all(r == [Event("a"), Event("b")] for r in every_split(b"data: a\r\n\r\ndata: b\r\n\r\n"))
    # An empty read between the CR and its LF changes nothing.
    assert decode(b"data: a\r\n\r", b"", b"\ndata: b\r\n\r\n") == [Event("a"), Event("b")]


def test_utf8_split_mid_character_japanese_and_chinese():
    stream = "data: こんにちは、世界\n\ndata: 你好，世界 🐘\n\n".encode()
    expected = [Event("こんにちは、世界"), Event("你好，世界 🐘")]
    assert all(result == expected for result in every_split(stream))


def test_invalid_utf8_is_replaced_not_raised():
    assert decode(b"data: caf\xc3\n\n") == [Event("caf\ufffd")]


def test_u2028_is_not_a_line_break():
    assert decode("data: a\u2028b\u0085c\n\n".encode()) == [Event("a\u2028b\u0085c")]


def test_comments_and_keep_alives_are_ignored():
    stream = b": keep-alive\n\n: OPENROUTER PROCESSING\n\ndata: a\n: ping - 2026-11-22 11:39:36\ndata: b\n\n:\n\n"
    assert decode(stream) == [Event("a\nb")]


def test_multi_line_data_is_joined_with_lf():
    assert decode(b"data: one\ndata:two\ndata:  three\ndata\n\n") == [Event("one\ntwo\n three\n")]


def test_one_space_after_the_colon_is_stripped():
    assert decode(b"data:x\n\ndata: x\n\ndata:  x\n\n") == [Event("x"), Event("x"), Event(" x")]


def test_bom_at_stream_start_is_stripped_even_split():
    assert decode(b"\xef\xbb\xbfdata: x\n\n") == [Event("x")]
    assert decode(b"\xef", b"\xbb", b"\xbfdata: x\n\n") == [Event("x")]


def test_bom_later_in_the_stream_is_part_of_the_line():
    # Only the stream's first BOM is stripped; "\ufeffdata" is then an unknown field.
    assert decode(b"data: a\n\n\xef\xbb\xbfdata: b\n\n") == [Event("a")]


def test_id_persists_across_events():
    stream = b"id: 7\ndata: a\n\ndata: b\n\nid: 8\ndata: c\n\nid\ndata: d\n\n"
    assert decode(stream) == [Event("a", id="7"), Event("b", id="7"), Event("c", id="8"), Event("d", id="")]


def test_id_with_nul_is_ignored():
    assert decode(b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n") == [Event("a", id="1"), Event("b", id="1")]


def test_id_of_an_event_without_data_still_persists():
    assert decode(b"id: 5\n\ndata: a\n\n") == [Event("a", id="5")]


def test_retry_field():
    stream = b"retry: 3000\ndata: a\n\nretry: soon\ndata: b\n\nretry: \xc2\xb2\ndata: c\n\n"
    assert decode(stream) == [Event("a", retry=3000), Event("b"), Event("c")]


def test_event_type_resets_after_dispatch():
    assert decode(b"event: x\ndata: a\n\ndata: b\n\n") == [Event("a", "x"), Event("b")]


def test_unknown_fields_are_ignored():
    assert decode(b"foo: bar\ndata: a\nevent\n\n") == [Event("a", "")]


def test_unterminated_last_event_is_dispatched_at_eof():
    # Deliberately not the spec: servers that close right after "data: [DONE]" exist (sse.py).
    assert decode(b"data: a\n\ndata: [DONE]") == [Event("a"), Event("[DONE]")]
    assert decode(b"data: a\n\ndata: b\n") == [Event("a"), Event("b")]
    assert decode(b"data: a\n\ndata: b\r") == [Event("a"), Event("b")]


def test_empty_data_is_an_event_but_no_data_is_none():
    # The spec dispatches "data:" with empty data; the dialects skip it (test_endpoints).
    assert decode(b"data:\n\nevent: ping\n\n\n\n\n") == [Event("")]


def test_events_arrive_as_soon_as_their_chunk_does():
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n") == []
    assert decoder.feed(b"\ndata: b") == [Event("a")]
    assert decoder.feed(b"\n") == []
    assert decoder.finish() == [Event("b")]


# -- properties

_TEXT = st.text(st.characters(exclude_characters="\r\n", exclude_categories=("Cs",)), max_size=12)
_FIELD = st.one_of(
    st.tuples(st.just("data"), _TEXT),
    st.tuples(st.just("event"), _TEXT),
    st.tuples(st.just("id"), _TEXT.filter(lambda s: "\0" not in s)),
    st.tuples(st.just("retry"), st.integers(0, 10**6).map(str)),
    st.tuples(st.just(""), _TEXT),  # a comment
)
_EVENTS = st.lists(st.lists(_FIELD, max_size=5), max_size=6)
_ENDINGS = st.lists(st.sampled_from(["\n", "\r", "\r\n"]), min_size=64, max_size=64)


def _serialise(events: list, endings: list) -> tuple[bytes, list[Event]]:
    """The stream for ``events`` (with mixed line endings) and what a decoder must yield."""
    lines, expected, last_id = [], [], None
    for fields in events:
        data, kind, retry = [], None, None
        for name, value in fields:
            lines.append(f"{name}: {value}")
            if name == "data":
                data.append(value)
            elif name == "event":
                kind = value
            elif name == "id":
                last_id = value
            elif name == "retry":
                retry = int(value)
        lines.append("")
        if data:
            expected.append(Event("\n".join(data), kind, last_id, retry))
    text, previous = "", "\n"
    for i, line in enumerate(lines):
        ending = endings[i % len(endings)]
        if not line and previous == "\r" and ending == "\n":
            ending = "\r\n"  # a lone LF right after a CR would join it into one CRLF
        text += line + ending
        previous = ending
    return text.encode(), expected


@pytest.mark.kernel  # the slow tier: a long sweep (pytest -m unit stays under a minute)
@given(_EVENTS, _ENDINGS, st.data())
def test_every_chunking_gives_the_same_events(events, endings, data):
    stream, expected = _serialise(events, endings)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=12))
    assert decode(*cut(stream, cuts)) == expected
    assert decode(stream) == expected
    assert decode(*(stream[i : i + 1] for i in range(len(stream)))) == expected


@given(st.binary(max_size=300), st.data())
def test_arbitrary_bytes_never_raise_and_chunking_never_matters(stream, data):
    events = decode(*cut(stream, data.draw(st.lists(st.integers(0, len(stream)), max_size=12))))
    assert events == decode(stream) == decode(*(stream[i : i + 1] for i in range(len(stream))))
    assert all(isinstance(e.data, str) for e in events)


@given(
    st.lists(
        st.sampled_from(
            [
                b"data: ",
                b"id:",
                b"retry: ",
                b"\xc2\xb2",
                b"1",
                b":",
                b"\r",
                b"\n",
                b"\xef\xbb\xbf",
                b"\xe4\xbd",
                b"\xa0",
                b"x",
            ]
        ),
        max_size=40,
    ),
    st.data(),
)
def test_stream_shaped_bytes_never_raise_and_chunking_never_matters(pieces, data):
    stream = b"".join(pieces)
    assert decode(*cut(stream, data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))) == decode(stream)


# The decoder takes whole ``data:`` / ``event:`` + ``data:`` blocks in one split when it holds
# nothing (issue 25); these check that shortcut against the line-by-line rules it stands in for.
_LF_BLOCK = st.lists(
    st.sampled_from(
        [b"data: x", b"data: ", b"data:y", b"event: e", b"event:", b"id: 4", b"retry: 9", b": c", b"", b"\xe4\xbd"]
    ),
    max_size=4,
)


@given(st.lists(_LF_BLOCK, max_size=8), st.data())
def test_lf_streams_decode_the_same_in_blocks_and_byte_by_byte(blocks, data):
    stream = b"".join(b"\n".join(lines) + b"\n\n" for lines in blocks)
    one_by_one = decode(*(stream[i : i + 1] for i in range(len(stream))))
    # A first comment line, read on its own: the stream's first line is always read line by line.
    assert decode(b":\n", stream) == one_by_one
    assert decode(b":\n", *cut(stream, data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))) == one_by_one


def test_whole_blocks_keep_the_id_and_retry_that_came_before_them():
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n\nid: 3\nretry: 70\n") == [Event("a")]
    assert decoder.feed(b"data: b\n\nevent: t\ndata: c\n\ndata: d\n\nevent: u\ndata") == [
        Event("b", id="3", retry=70),
        Event("c", "t", "3"),
        Event("d", id="3"),
    ]
    assert decoder.finish() == [Event("", "u", "3")]


@given(st.lists(_LF_BLOCK, max_size=8), st.data())
def test_crlf_streams_decode_as_their_lf_twins_in_any_chunking(blocks, data):
    # CRLF-ended chunks are read as LF ones (issue 25); a CR at a chunk's end still waits for its LF.
    lf = b"".join(b"\n".join(lines) + b"\n\n" for lines in blocks)
    crlf = lf.replace(b"\n", b"\r\n")
    expected = decode(b":\n", lf)
    assert decode(b":\r\n", crlf) == expected
    assert decode(b":\r\n", *cut(crlf, data.draw(st.lists(st.integers(0, len(crlf)), max_size=6)))) == expected
    assert decode(b":\r\n", *(crlf[i : i + 1] for i in range(len(crlf)))) == expected
