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
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from elk_jupyter.gateway.dialects import content

SCHEME = "elk-attachment:sha256:"
KEEP_BYTES = 16 * 1024  # an image this small keeps its bytes in the record (restore re-sends it)
MAX_IMAGE = 20 * 1024 * 1024  # OpenAI's limit per image
MAX_FILE_CHARS = 200_000
MAX_FILE_BYTES = 4 * MAX_FILE_CHARS  # UTF-8: at most 4 bytes a character
_PNG_MODES = {"1", "L", "LA", "P", "RGB", "RGBA", "I;16"}  # what PIL writes as PNG as is
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
    if hasattr(value, "savefig") or (hasattr(value, "save") and hasattr(value, "mode")):
        return from_bytes(_png(value, source), source)
    if isinstance(value, Path):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError(
            f"--image {source}: a path, URL, data URL, bytes, PIL image or figure, not {type(value).__name__}"
        )
    return _from_text(value.strip(), source)


def _png(value, source: str) -> bytes:
    """A matplotlib figure or a PIL image as PNG bytes; a mode PNG cannot hold (CMYK, F, I, YCbCr,
    ...) is converted to RGB(A) first; any failure is one ValueError line."""
    buffer = io.BytesIO()
    try:
        if hasattr(value, "savefig"):
            value.savefig(buffer, format="png", bbox_inches="tight")
        else:
            if value.mode not in _PNG_MODES:
                value = value.convert("RGBA" if "A" in value.mode or "a" in value.mode else "RGB")
            value.save(buffer, format="PNG")
    except Exception as err:  # the user's object: PIL and matplotlib raise OSError, ValueError, ...
        raise ValueError(f"--image {source}: cannot be written as PNG ({type(err).__name__}: {err})") from None
    return buffer.getvalue()


def read_bounded(path: str, limit: int, option: str) -> bytes:
    """At most ``limit`` bytes of a regular file, or one ValueError line.

    Opened without blocking and checked (``fstat``) before anything is read, so a device
    (``/dev/zero``), a FIFO, a socket or a directory is refused and never read; a regular file
    is read to at most ``limit + 1`` bytes, so a huge (or growing) file never fills the kernel."""
    try:
        fd = os.open(Path(path).expanduser(), os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as err:
        raise ValueError(f"{option} {path}: cannot read {str(path)!r} ({err.strerror or err})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file (a device, FIFO or socket)"
            raise ValueError(f"{option} {path}: {kind}, refused: give a file")
        if info.st_size > limit:
            raise ValueError(f"{option} {path}: {info.st_size:,} bytes, more than the {limit:,} allowed")
        data = _read_upto(fd, limit + 1)
    except OSError as err:
        raise ValueError(f"{option} {path}: cannot read {str(path)!r} ({err.strerror or err})") from None
    finally:
        os.close(fd)
    if len(data) > limit:  # it grew, or it is a /proc-like file that reports no size
        raise ValueError(f"{option} {path}: more than the {limit:,} bytes allowed")
    return data


def _read_upto(fd: int, count: int) -> bytes:
    chunks, left = [], count
    while left > 0:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


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
    return from_bytes(read_bounded(text, MAX_IMAGE, "--image"), source)


def file_text(path: str) -> str:
    """A text file as a part of the prompt: its name, then its content in a fence."""
    try:
        text = read_bounded(path, MAX_FILE_BYTES, "--file").decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"--file {path}: not UTF-8 text (images go in --image)") from None
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
