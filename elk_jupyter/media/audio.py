"""Audio replies: the streamed base64 decoder, the finished clip (format, duration, digest) and its
record form. Pure: the bytes go to a file beside the notebook in ``record``, never here.

Chat Completions with ``modalities: ["text", "audio"]`` answers in ``message.audio`` (``id``,
``data``, ``transcript``, ``expires_at``) or, streamed, in ``delta.audio`` pieces
(https://platform.openai.com/docs/guides/audio). The transcript is the reply's text; the sound
arrives as base64 in chunks that may each carry their own padding, or split one quantum.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import re
import struct
import wave
from dataclasses import dataclass
from functools import cached_property

from elk_jupyter.errors import StreamError

FORMATS = ("wav", "mp3", "flac", "opus", "aac", "pcm16")
MIME = {
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "flac": "audio/flac",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "pcm16": "audio/wav",  # stored wrapped in a WAV header so a browser can play it (see ``playable``)
}
EXTENSION = {"wav": "wav", "mp3": "mp3", "flac": "flac", "opus": "ogg", "aac": "aac", "pcm16": "wav"}
# pcm16 is raw 16-bit little-endian mono at 24 kHz (the audio guide's "pcm16" format).
PCM16_RATE = 24_000
MAX_AUDIO_BYTES = 64 * 1024 * 1024  # a hostile server could stream forever: stop the turn with a line
_BASE64 = re.compile(rb"[A-Za-z0-9+/]*={0,2}")


def parse_voice(value: str, stream: bool) -> dict:
    """``--audio VOICE[:FORMAT]`` -> the request's ``audio`` field. ValueError when it is wrong.

    Without a format: ``pcm16`` when streaming (OpenAI streams audio output only as pcm16), else ``wav``.
    """
    voice, _, fmt = value.partition(":")
    voice, fmt = voice.strip(), fmt.strip().lower()
    if not voice:
        raise ValueError("--audio expects VOICE[:FORMAT], e.g. --audio alloy or --audio alloy:wav")
    if fmt and fmt not in FORMATS:
        raise ValueError(f"--audio {value}: format must be one of {', '.join(FORMATS)}")
    return {"voice": voice, "format": fmt or ("pcm16" if stream else "wav")}


class Base64Stream:
    """Bytes from base64 that arrives in pieces: whole quanta are decoded as they come (O(delta)).

    A piece may end in padding (each chunk encoded on its own) or stop mid-quantum (one encoding
    cut anywhere): both decode to the same bytes.
    """

    def __init__(self) -> None:
        self._rest = b""
        self.size = 0

    def feed(self, text: str) -> bytes:
        data = self._rest + text.encode("ascii", "replace").translate(None, b" \r\n\t")
        if not _BASE64.fullmatch(data):
            raise StreamError("the server sent audio data that is not base64")
        # a chunk that ends in padding closes its own encoding (unless the padding itself was cut)
        whole = len(data) if data.endswith(b"=") and len(data) % 4 == 0 else len(data) - len(data) % 4
        self._rest = data[whole:]
        try:
            decoded = base64.b64decode(data[:whole], validate=True)
        except (binascii.Error, ValueError):
            raise StreamError("the server sent audio data that is not base64") from None
        self.size += len(decoded)
        if self.size > MAX_AUDIO_BYTES:
            raise StreamError(f"the server sent more than {MAX_AUDIO_BYTES // 2**20} MB of audio; stopped")
        return decoded

    def end(self) -> None:
        if self._rest:
            raise StreamError("the server's audio data ended mid-way (truncated base64)")


@dataclass(frozen=True)
class Clip:
    """A finished audio reply: the bytes as a browser plays them, and what the record says of them."""

    data: bytes  # playable: pcm16 is wrapped in a WAV header
    format: str  # what was asked for (``audio.format`` of the request)
    id: str | None = None  # the server's id: later turns send it back until ``expires_at``
    expires_at: int | None = None  # Unix seconds

    @property
    def mime(self) -> str:
        return MIME.get(self.format, "application/octet-stream")

    @cached_property
    def digest(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @cached_property
    def duration(self) -> float | None:
        """Seconds, read from the WAV header (wav, pcm16); None for compressed formats."""
        return wav_duration(self.data) if self.mime == "audio/wav" else None

    def describe(self) -> str:
        length = f"{self.duration:.1f} s " if self.duration is not None else ""
        return f"audio: {length}{self.format}, {size_words(len(self.data))}"

    def to_dict(self) -> dict:
        """The record's form, the bytes in base64 (``record_audio.place_audio`` may move them to a file)."""
        return {
            "id": self.id,
            "format": self.format,
            "mime": self.mime,
            "expires_at": self.expires_at,
            "duration": None if self.duration is None else round(self.duration, 3),
            "size": len(self.data),
            "digest": self.digest,
            "data": base64.b64encode(self.data).decode("ascii"),
        }


class AudioPieces:
    """One choice's audio as it arrives: the decoded pieces (O(delta) each), the clip's id and expiry,
    and the clip made from them, joined and wrapped once per change rather than per read."""

    def __init__(self) -> None:
        self._pieces: list[bytes] = []
        self.id: str | None = None
        self.expires_at: int | None = None
        self.size = 0  # bytes received so far
        self._clip: Clip | None = None

    @classmethod
    def of_record(cls, saved: object) -> tuple[AudioPieces, dict | None]:
        """(the pieces, the record's audio when its bytes are not in it): a recorded clip is stored
        playable, so it is not wrapped again (its format is the record's); a clip whose file beside the
        notebook is missing keeps only what the record says of it."""
        pieces, clip = cls(), clip_of(saved)
        if clip is None:
            return pieces, saved if isinstance(saved, dict) else None
        pieces._pieces, pieces.size, pieces._clip = [clip.data], len(clip.data), clip
        pieces.id, pieces.expires_at = clip.id, clip.expires_at
        return pieces, None

    def add(self, data: bytes, clip_id: str | None, expires_at: int | None) -> None:
        if data:
            self._pieces.append(data)
            self.size += len(data)
        self._clip = None
        self.id = clip_id or self.id
        self.expires_at = expires_at if expires_at is not None else self.expires_at

    def clip(self, fmt: str) -> Clip | None:
        """The audio so far as a playable clip (``fmt``: the request's format), or None without any."""
        if self._clip is None and (self._pieces or self.id):
            data = b"".join(self._pieces)
            self._pieces[:] = [data] if data else []
            self._clip = Clip(playable(data, fmt), fmt, self.id, self.expires_at)
        return self._clip


def asked_format(request: dict | None) -> str:
    """The format a request's ``audio`` field asks for (``wav`` when it names none we know)."""
    asked = (request or {}).get("audio")
    fmt = asked.get("format") if isinstance(asked, dict) else None
    return fmt if fmt in FORMATS else "wav"


def file_name(digest: str, fmt: str) -> str:
    """A clip's name beside the notebook: its digest, so the same clip is one file and the name says what it holds."""
    return f"{digest}.{EXTENSION.get(fmt, 'bin')}"


def player_data(audio: object) -> dict | None:
    """What a player needs from a record's audio: the bytes (base64) or the file beside the notebook,
    never a URL (VIEW's ``audio``, the live panel's ``audio`` trait)."""
    if not isinstance(audio, dict):
        return None
    keep = ("format", "mime", "duration", "size", "data", "file")
    return {key: audio.get(key) for key in keep if audio.get(key) is not None}


def playable(data: bytes, fmt: str) -> bytes:
    """The clip as a player takes it: raw pcm16 (as received) gets a WAV header, other formats are kept."""
    if fmt != "pcm16":
        return data
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(PCM16_RATE)
        wav.writeframes(data[: len(data) - len(data) % 2])
    return out.getvalue()


def wav_duration(data: bytes) -> float | None:
    """Seconds of a WAV clip, or None when its header is not one (servers are hostile)."""
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            rate = wav.getframerate()
            return wav.getnframes() / rate if rate > 0 else None
    except (wave.Error, EOFError, struct.error, ValueError):
        return None


def size_words(size: int) -> str:
    return f"{size} bytes" if size < 1024 else f"{size / 1024:.0f} KB" if size < 2**20 else f"{size / 2**20:.1f} MB"


def clip_of(audio: object) -> Clip | None:
    """The clip a record (or a Reply's dict) describes, when it carries the bytes; None otherwise."""
    if not isinstance(audio, dict) or not isinstance(audio.get("data"), str):
        return None
    try:
        data = base64.b64decode(audio["data"], validate=True)
    except (binascii.Error, ValueError):
        return None
    fmt = audio.get("format") if audio.get("format") in FORMATS else "wav"
    expires = audio.get("expires_at")
    expires = expires if isinstance(expires, int) and not isinstance(expires, bool) else None
    clip_id = audio.get("id") if isinstance(audio.get("id"), str) else None
    return Clip(data, fmt, clip_id, expires)
