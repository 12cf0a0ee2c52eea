"""Images and text files as content parts of the prompt: a path, a URL, a data URL, bytes, a PIL
image or a matplotlib figure -> (digest, media type, size) and a neutral content part (each
dialect writes it in its endpoint's shape). Pure but for reading the files it is given.

Records and replay keys hold a placeholder (``elk-attachment:sha256:<hex>``) where the body sent
holds the data URL, so a notebook stays small and replay is keyed by the image's digest; the bytes
stay in this kernel's ``Images`` store (``KernelState.images``; in the record too when small) and
are put back only when a body is sent (``Images.expand``, called by the client).
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from elk_jupyter.gateway.dialects import content

SCHEME = "elk-attachment:sha256:"
KEEP_BYTES = 16 * 1024  # an image this small keeps its bytes in the record (restore re-sends it)
MAX_IMAGE = 20 * 1024 * 1024  # OpenAI's limit per image
MAX_FILE_CHARS = 200_000
_SIGNATURES = [
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
]
_DATA_URL = re.compile(r"data:(image/[A-Za-z0-9.+-]+);base64,(.*)", re.S)


@dataclass(frozen=True)
class Image:
    digest: str  # sha256 hex of the bytes ("" for a URL the model's server fetches)
    media_type: str
    size: int
    source: str  # what the user named: a path, a variable, a URL
    url: str = ""  # an http(s) URL, sent as is
    data: bytes = field(default=b"", repr=False, compare=False)  # the bytes ("" for a URL)

    @property
    def reference(self) -> str:
        """What the body holds: the URL, or the placeholder ``expand`` replaces by a data URL."""
        return self.url or SCHEME + self.digest

    def entry(self, keep: bool = False) -> dict:
        """The record's entry: digest, media type and size; the bytes (base64) only when small or asked."""
        entry = {"digest": self.digest, "media_type": self.media_type, "size": self.size, "source": self.source}
        if self.url:
            entry["url"] = self.url
        elif keep or self.size <= KEEP_BYTES:
            entry["data"] = base64.b64encode(self.data).decode()
        return entry


def shown(images: list[Image]) -> list[dict]:
    """What the panel shows of the prompt's images: a label, and the image itself as a data URL
    when it is small enough to keep (bigger ones are named, not copied into the notebook again)."""
    views = []
    for each in images:
        label = f"{each.source} · {each.media_type or 'URL'}" + (f" · {each.size:,} bytes" if each.size else "")
        small = not each.url and each.size <= KEEP_BYTES and each.data
        src = f"data:{each.media_type};base64,{base64.b64encode(each.data).decode()}" if small else ""
        views.append({"label": label, "src": src})
    return views


def media_type(data: bytes) -> str:
    for signature, kind in _SIGNATURES:
        if data.startswith(signature):
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    raise ValueError("not a PNG, JPEG, GIF or WebP image")


def from_bytes(data: bytes, source: str) -> Image:
    if len(data) > MAX_IMAGE:
        raise ValueError(f"--image {source}: {len(data)} bytes, more than the {MAX_IMAGE} an image may have")
    try:
        kind = media_type(data)
    except ValueError as err:
        raise ValueError(f"--image {source}: {err}") from None
    return Image(hashlib.sha256(data).hexdigest(), kind, len(data), source, data=bytes(data))


def image(value, source: str) -> Image:
    """An image from what ``--image`` named: a variable's value or the text itself."""
    if isinstance(value, bytes | bytearray | memoryview):
        return from_bytes(bytes(value), source)
    if hasattr(value, "savefig"):  # a matplotlib figure
        buffer = io.BytesIO()
        value.savefig(buffer, format="png", bbox_inches="tight")
        return from_bytes(buffer.getvalue(), source)
    if hasattr(value, "save") and hasattr(value, "mode"):  # a PIL image
        buffer = io.BytesIO()
        value.save(buffer, format="PNG")
        return from_bytes(buffer.getvalue(), source)
    if isinstance(value, Path):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError(
            f"--image {source}: a path, URL, data URL, bytes, PIL image or figure, not {type(value).__name__}"
        )
    return _from_text(value.strip(), source)


def _from_text(text: str, source: str) -> Image:
    match = _DATA_URL.fullmatch(text)
    if match:
        try:
            return from_bytes(base64.b64decode(match.group(2), validate=True), source)
        except binascii.Error:
            raise ValueError(f"--image {source}: the data URL is not valid base64") from None
    if re.match(r"https?://", text, flags=re.I):
        # Sent as a URL: the model's server fetches it, this kernel does not.
        return Image("", "", 0, source, url=text)
    path = Path(text).expanduser()
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ValueError(f"--image {source}: cannot read {text!r} ({err.strerror or err})") from None
    return from_bytes(data, source)


def file_text(path: str) -> str:
    """A text file as a part of the prompt: its name, then its content in a fence."""
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"--file {path}: not UTF-8 text (images go in --image)") from None
    except OSError as err:
        raise ValueError(f"--file {path}: cannot read it ({err.strerror or err})") from None
    if len(text) > MAX_FILE_CHARS:
        raise ValueError(f"--file {path}: {len(text)} characters, more than {MAX_FILE_CHARS}")
    fence = "`" * max(3, 1 + max((len(m) for m in re.findall(r"`+", text)), default=0))
    return f"File {Path(path).name}:\n{fence}\n{text}\n{fence}"


def parts(files: list[str], images: list[Image]) -> tuple[dict, ...]:
    """The prompt's attachments as neutral content parts (each dialect writes them its own way)."""
    return tuple(content.text(f) for f in files) + tuple(content.image(i.reference) for i in images)


class Images:
    """One kernel's images by digest (media type and bytes): what a placeholder in a body stands
    for. Owned by ``KernelState`` and handed to its client; never a module global."""

    def __init__(self) -> None:
        self._by_digest: dict[str, tuple[str, bytes]] = {}

    def __contains__(self, digest: str) -> bool:
        return digest in self._by_digest

    def add(self, *images: Image) -> None:
        for each in images:
            if each.data:
                self._by_digest[each.digest] = (each.media_type, each.data)

    def remember(self, entries) -> None:
        """Put a record's kept bytes back (a restored notebook can re-send them)."""
        for entry in entries or ():
            if isinstance(entry, dict) and isinstance(entry.get("data"), str) and entry.get("digest") not in self:
                try:
                    data = base64.b64decode(entry["data"], validate=True)
                except binascii.Error:
                    continue
                try:
                    kind = media_type(data)
                except ValueError:  # a hand-edited record: not an image, so nothing to re-send
                    continue
                if hashlib.sha256(data).hexdigest() == entry.get("digest"):
                    self._by_digest[entry["digest"]] = (kind, data)

    def expand(self, body: dict) -> dict:
        """The body to send: each placeholder replaced by its data URL; an image this kernel no
        longer has (a restored notebook that did not keep its bytes) becomes a note saying so."""
        if SCHEME not in str(body):
            return body
        return self._expanded(copy.deepcopy(body))

    def _expanded(self, value):
        if isinstance(value, list):
            return [self._expanded(v) for v in value]
        if not isinstance(value, dict):
            return value
        url = value.get("image_url")
        url = url.get("url") if isinstance(url, dict) else url
        if isinstance(url, str) and url.startswith(SCHEME):
            digest = url[len(SCHEME) :]
            if digest not in self:
                text_type = "text" if value.get("type") == "image_url" else "input_text"
                return {"type": text_type, "text": f"[an image (sha256 {digest[:12]}) that is no longer available]"}
            kind, data = self._by_digest[digest]
            data_url = f"data:{kind};base64,{base64.b64encode(data).decode()}"
            image_url = value["image_url"]
            return {**value, "image_url": {**image_url, "url": data_url} if isinstance(image_url, dict) else data_url}
        return {k: self._expanded(v) for k, v in value.items()}
