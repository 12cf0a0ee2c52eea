"""Images and files as content parts: exact bodies on both endpoints, records that keep a digest
(not megabytes), replay keyed by the digest, re-sends in later turns. Real shell, real HTTP."""

from __future__ import annotations

import base64
import hashlib
import io
import json

from PIL import Image as PILImage

from elk_jupyter.media import attachments
from elk_jupyter.records import turn as record
from elk_jupyter.records.turn import record_of
from tests.environment import shell_at
from tests.test_magics import run
from tests.test_tools import last_turn

CHAT, RESPONSES = "/chat/completions", "/responses"


def png(size=(4, 3), colour=(255, 0, 0)) -> bytes:
    buffer = io.BytesIO()
    PILImage.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def data_url(data: bytes, kind="image/png") -> str:
    return f"data:{kind};base64,{base64.b64encode(data).decode()}"


def test_chat_body_carries_the_prompt_a_file_and_each_kind_of_image(ip, gateway, tmp_path):
    red, blue = png(), png(colour=(0, 0, 255))
    (tmp_path / "red.png").write_bytes(red)
    (tmp_path / "notes.txt").write_text("a ```fence``` inside\n")
    picture = PILImage.new("RGB", (2, 2), (0, 255, 0))
    ip.user_ns.update(picture=picture, raw=blue, inline=data_url(red))
    source = (
        "%%chat --file notes.txt --image red.png --image picture --image raw --image inline "
        "--image https://example.com/cat.jpg\nWhat do you see?"
    )
    assert run(ip, source).success
    (body,) = gateway.bodies(CHAT)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What do you see?"},
                {"type": "text", "text": "File notes.txt:\n````\na ```fence``` inside\n\n````"},
                {"type": "image_url", "image_url": {"url": data_url(red)}},
                {"type": "image_url", "image_url": {"url": data_url(buffer.getvalue())}},
                {"type": "image_url", "image_url": {"url": data_url(blue)}},
                {"type": "image_url", "image_url": {"url": data_url(red)}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
            ],
        }
    ]
    turn = last_turn(ip)
    placeholder = attachments.SCHEME + hashlib.sha256(red).hexdigest()
    assert turn.request["messages"][0]["content"][2] == {"type": "image_url", "image_url": {"url": placeholder}}
    assert "base64" not in json.dumps(turn.request)
    assert [(a["source"], a["media_type"], a["size"]) for a in turn.attachments] == [
        ("red.png", "image/png", len(red)),
        ("picture", "image/png", len(buffer.getvalue())),
        ("raw", "image/png", len(blue)),
        ("inline", "image/png", len(red)),
        ("https://example.com/cat.jpg", "", 0),
    ]
    assert turn.attachments[0]["data"] == base64.b64encode(red).decode()  # small: kept
    assert record.validate(record_of(turn)) == []


def test_responses_body_uses_input_image_and_input_text(ip, gateway):
    red = png()
    ip.user_ns["raw"] = red
    assert run(ip, "%%respond --image raw\nDescribe it.").success
    (body,) = gateway.bodies(RESPONSES)
    assert body["input"] == [
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "Describe it."},
                {"type": "input_image", "image_url": data_url(red)},
            ],
        }
    ]


def test_a_big_image_keeps_only_its_digest_in_the_record(ip, gateway):
    import os

    big = PILImage.frombytes("RGB", (256, 256), os.urandom(256 * 256 * 3))  # noise: PNG cannot shrink it
    ip.user_ns["big"] = big
    assert run(ip, "%%chat --image big\nLook.").success
    (entry,) = last_turn(ip).attachments
    assert entry["size"] > attachments.KEEP_BYTES and "data" not in entry
    assert run(ip, "%%chat --image big --keep-images\nLook again.").success
    (entry,) = last_turn(ip).attachments
    images = ip.magics_manager.registry["ElkMagics"].state.images
    assert entry["digest"] in images and hashlib.sha256(base64.b64decode(entry["data"])).hexdigest() == entry["digest"]


def test_replay_is_keyed_by_the_image_digest(gateway, monkeypatch, tmp_path):
    ip, _ = shell_at(monkeypatch, tmp_path, gateway.base_url)
    ip.user_ns.update(red=png(), blue=png(colour=(0, 0, 255)))
    gateway.plan(text="red square")
    assert run(ip, "%%chat --image red\nColour?").success
    ip, _ = shell_at(monkeypatch, tmp_path, gateway.base_url, replay="auto")  # a fresh notebook state
    ip.user_ns.update(red=png(), blue=png(colour=(0, 0, 255)))
    assert run(ip, "%%chat --image red\nColour?").success
    assert (last_turn(ip).origin, last_turn(ip).text) == ("replayed", "red square")
    assert len(gateway.requests) == 1
    assert run(ip, "%%chat --image blue\nColour?").success  # another image: another request
    assert last_turn(ip).origin == "live" and len(gateway.requests) == 2


def test_a_later_turn_resends_the_image(ip, gateway):
    red = png()
    ip.user_ns["red"] = red
    assert run(ip, "%%chat --image red\nColour?").success
    assert run(ip, "%%respond --stateless\nAnd its shape?").success  # the other endpoint's shape
    later = gateway.bodies(RESPONSES)[-1]
    assert later["input"][0] == {
        "type": "message",
        "role": "user",
        "content": [
            {"type": "input_text", "text": "Colour?"},
            {"type": "input_image", "image_url": data_url(red)},
        ],
    }


def test_an_image_no_longer_in_the_kernel_is_a_note_not_a_crash():
    body = {
        "messages": [
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": attachments.SCHEME + "0" * 64}}]}
        ]
    }
    assert attachments.Images().expand(body)["messages"][0]["content"] == [
        {"type": "text", "text": "[an image (sha256 000000000000) that is no longer available]"}
    ]


def test_bad_images_and_files_are_one_usage_line(ip, gateway, tmp_path):
    (tmp_path / "notes.txt").write_bytes(b"\xff\xfe binary")
    for option, message in [
        ("--image missing.png", "--image missing.png: cannot read 'missing.png'"),
        ("--image notes.txt", "not a PNG, JPEG, GIF or WebP image"),
        ("--file notes.txt", "--file notes.txt: not UTF-8 text"),
        ("--image data:image/png;base64,@@", "the data URL is not valid base64"),
    ]:
        result = run(ip, f"%%chat {option}\nHi")
        assert not result.success and message in str(result.error_in_exec), option
    assert gateway.requests == []


def test_dry_run_shows_the_parts_with_the_digest_not_the_bytes(ip, gateway, capsys):
    ip.user_ns["red"] = png()
    assert run(ip, "%%chat --image red --dry-run\nColour?").success
    body = json.loads(capsys.readouterr().out)
    assert (
        body["messages"][0]["content"][1]["image_url"]["url"] == attachments.SCHEME + hashlib.sha256(png()).hexdigest()
    )
    assert gateway.requests == []


def test_a_matplotlib_figure_is_sent_as_its_png(ip, gateway):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(1, 1))
    figure.add_subplot().plot([0, 1], [1, 0])
    ip.user_ns["fig"] = figure
    assert run(ip, "%%respond --image fig\nWhat is plotted?").success
    (body,) = gateway.bodies(RESPONSES)
    url = body["input"][0]["content"][1]["image_url"]
    data = base64.b64decode(url.removeprefix("data:image/png;base64,"))
    assert data.startswith(b"\x89PNG") and PILImage.open(io.BytesIO(data)).size[0] > 10
    (entry,) = last_turn(ip).attachments
    assert (entry["source"], entry["media_type"], entry["digest"]) == (
        "fig",
        "image/png",
        hashlib.sha256(data).hexdigest(),
    )
