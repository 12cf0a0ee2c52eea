"""Usage objects of any shape: one normalisation rule, one written form, and a record that stays valid.

The property test streams arbitrary JSON values as ``usage`` from a real local gateway through the
real magics in a real IPython shell, then validates the written record and runs the next turn.
"""

from __future__ import annotations

import itertools
import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from elk_jupyter.display.render import usage_line
from elk_jupyter.gateway.reply import Reply
from elk_jupyter.gateway.usage import Usage, count, raw_usage
from elk_jupyter.records import turn as record
from tests.environment import elk_env, fresh_shell, turns, use_env

CHAT_USAGE = {
    "prompt_tokens": 12,
    "completion_tokens": 5,
    "total_tokens": 17,
    "prompt_tokens_details": {"cached_tokens": 4},
    "completion_tokens_details": {"reasoning_tokens": 3},
}


@pytest.mark.parametrize(
    "value,expected",
    [
        (7, 7),
        ("12", 12),
        (" 12 ", 12),
        ("4.6", 5),
        (3.0, 3),
        (2.5e3, 2500),
        (math.nan, None),
        (math.inf, None),
        ("1e999", None),
        ("nan", None),
        (-1, None),
        ("-3", None),
        (True, None),
        (False, None),
        (None, None),
        ("twelve", None),
        ({"n": 1}, None),
        ([1], None),
        (2**80, None),
        ("9" * 5000, None),  # too many digits for int(): still no crash
    ],
)
def test_one_rule_for_every_count(value, expected):
    assert count(value) == expected


def test_either_endpoints_names_and_odd_shapes():
    assert Usage.of(CHAT_USAGE) == Usage(12, 5, 17, 4, 3)
    responses = {"input_tokens": "9", "output_tokens": 2.0, "output_tokens_details": {"reasoning_tokens": "1"}}
    assert Usage.of(responses) == Usage(9, 2, 11, None, 1)
    assert Usage.of({"prompt_tokens": None, "input_tokens": 4}) == Usage(4, None, 4, None, None)
    assert Usage.of({"prompt_tokens_details": "lots", "completion_tokens": math.nan}) == Usage()
    assert Usage.of("12 tokens") == Usage() and Usage.of(None) == Usage() and Usage.of([1, 2]) == Usage()


def test_the_raw_object_is_kept_json_safe():
    raw = {"prompt_tokens": math.nan, "x": [math.inf, {"y": -math.inf}], 3: "three"}
    assert raw_usage(raw) == {"prompt_tokens": None, "x": [None, {"y": None}], "3": "three"}
    assert raw_usage("12 tokens") == {"raw": "12 tokens"} and raw_usage(None) is None
    deep: object = 1
    for _ in range(1000):
        deep = [deep]
    assert json.dumps(raw_usage({"deep": deep}), allow_nan=False)  # cut, not a RecursionError


def test_one_written_form_for_the_footer_the_terminal_and_totals():
    usage = Usage.of(CHAT_USAGE)
    assert usage.describe() == "12 prompt (4 cached) · 5 completion (3 reasoning)"
    assert (
        Usage(24, 10, 34, 8, 6).describe(total=True) == "24 prompt (8 cached) · 10 completion (6 reasoning) · 34 total"
    )
    assert Usage().describe() == "" and Usage().wire() is None
    assert usage.wire() == CHAT_USAGE  # what the panel's front-end reads
    reply = Reply("chat")
    reply.usage = {"prompt_tokens": "3", "completion_tokens": -1}
    assert usage_line(reply) == "3 prompt · 0 completion"


# -- the real path: a gateway streams the usage, the magics record the turn, the next turn runs

NAMES = [
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "input_tokens",
    "output_tokens",
    "prompt_tokens_details",
    "completion_tokens_details",
    "input_tokens_details",
    "output_tokens_details",
    "cached_tokens",
    "reasoning_tokens",
]
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=6)
    | st.sampled_from(["12", " 7 ", "1e999", "nan", "-3", "4.5", "Infinity"])
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(NAMES) | st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=10,
)
USAGES = VALUES | st.dictionaries(st.sampled_from(NAMES), VALUES, max_size=7)


@pytest.fixture
def shell(module_gateway, monkeypatch, tmp_path):
    use_env(monkeypatch, elk_env(module_gateway.base_url, "sk-elk-usage-test-8812", tmp_path / "cache"))
    # an in-process shell has no cell ids: each turn is its own cell
    return fresh_shell(replay="off")


NUMBER = itertools.count()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(usage=USAGES, magic=st.sampled_from(["chat", "respond"]))
def test_any_usage_object_through_the_real_path_leaves_a_valid_record(shell, module_gateway, usage, magic):
    ip, magics = shell
    name = f"u{next(NUMBER)}"
    module_gateway.plan(usage=usage)
    first = ip.run_cell(f"%%{magic} -c {name}\nhello")
    assert first.success, first.error_in_exec
    turn = turns(ip, name)[-1]
    written = record.record_of(turn)
    assert record.validate(written) == []
    json.dumps(written, allow_nan=False)  # a notebook is strict JSON
    assert turn.status == "completed"
    second = ip.run_cell(f"%%{magic} -c {name}\nnext")  # its context cost reads the first turn's usage
    assert second.success, second.error_in_exec
    assert turns(ip, name)[-1].status == "completed"
    for command in ("usage", "list", f"history {name}"):
        assert ip.run_line_magic("elk", command) is None
