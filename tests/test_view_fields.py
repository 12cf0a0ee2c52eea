"""The VIEW fields are declared once (elk_jupyter/display/view_fields.py): the Panel's synced traits, the
saved view and the front-end's generated list all follow it, and a stale generated file fails here."""

from __future__ import annotations

from pathlib import Path

from elk_jupyter.display.header import TurnHeader, header_of
from elk_jupyter.display.panel import Panel
from elk_jupyter.display.turn_output import turn_bundle, view_data
from elk_jupyter.display.view_fields import FIELDS, GENERATED, NAMES, TURN_MIME, javascript
from elk_jupyter.gateway.events import Done, TextDelta
from elk_jupyter.gateway.reply import Reply

REPO = Path(__file__).resolve().parent.parent
WIDGET_TRAITS = set(Panel(endpoint="chat", conversation="c", model_asked="m").traits(sync=True)) - set(NAMES)


def test_the_committed_javascript_list_is_generated_from_the_python_one():
    committed = (REPO / GENERATED).read_text()
    assert committed == javascript(), f"regenerate it: python -m elk_jupyter.display.view_fields > {GENERATED}"
    assert '"model_asked"' in committed and '"delta"' in committed and TURN_MIME in committed


def test_the_panel_has_one_synced_trait_per_field_and_a_delta_per_streamed_one():
    panel = Panel(endpoint="chat", conversation="c", model_asked="m")
    own = [
        name
        for name in panel.traits(sync=True)
        if not name.startswith("_") and name in {*NAMES, "delta", "reasoning_delta"}
    ]
    assert set(own) == {*NAMES, *(f.delta for f in FIELDS if f.delta)}
    fresh = Panel(endpoint="", conversation="", model_asked="")
    for field in FIELDS:
        if field.name not in ("endpoint", "conversation", "model_asked"):
            assert getattr(fresh, field.name) == field.empty, field.name
    assert not {name for name in WIDGET_TRAITS if not name.startswith("_")} & {"text", "usage", "note"}


def test_the_saved_view_holds_exactly_the_fields():
    reply = Reply("chat")
    reply.add(TextDelta("Hello"))
    reply.add(Done())
    header = TurnHeader(endpoint="chat", conversation="c", model_asked="m", context="no earlier turns")
    view = view_data(reply, header)
    assert list(view) == ["version", *NAMES]
    assert (view["text"], view["model_asked"], view["context"]) == ("Hello", "m", "no earlier turns")


def test_one_header_builder_reads_a_turn_record():
    turn = {
        "id": "0123456789abcdef" * 2,
        "endpoint": "responses",
        "conversation": "ideas",
        "request": {"model": "gpt-x", "input": []},
        "replayed": True,
        "origin": "replayed",
    }
    header = header_of(turn, context="1 earlier turn", images=[{"label": "a.png", "src": ""}], note="n")
    assert header == TurnHeader(
        endpoint="responses",
        conversation="ideas",
        model_asked="gpt-x",
        context="1 earlier turn",
        replayed=True,
        images=({"label": "a.png", "src": ""},),
        note="n",
        turn="01234567",
        origin="replayed",
    )
    hostile = header_of({"id": 5, "request": "x", "replayed": "yes", "origin": 3})
    assert hostile == TurnHeader(endpoint="", conversation="")
    reply = Reply("responses")
    reply.add(TextDelta("ok"))
    reply.add(Done())
    data, _ = turn_bundle(reply, header, None)
    assert data["text/plain"].startswith("[responses · ideas · gpt-x · replayed · turn 01234567]")
