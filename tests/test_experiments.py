"""Experiments against a real local gateway: the matrix, templates, scorers, budget, backoff,
resume, records and the inert saved table."""

from __future__ import annotations

import csv
import json
import logging
import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from elk_jupyter import Client, experiment
from elk_jupyter.conversation.identity import Identity, Where, request_key
from elk_jupyter.conversation.kernel import KernelState
from elk_jupyter.display.tex import BACKSLASH, DOLLAR
from elk_jupyter.errors import ConfigError, ElkError
from elk_jupyter.experiments import (
    contains,
    cost_below,
    equals,
    icontains,
    is_json,
    json_schema,
    latency_below,
    regex,
    rubric,
)
from elk_jupyter.experiments.scorers import Sample, scorer
from elk_jupyter.records import experiment as records
from tests.markdown_html import Page, corpus, markdown_it_html, mistune_html, problems

KEY = "sk-experiment-test-5678"
HOSTILE = "<img src=x onerror=alert(1)> | [a](javascript:alert(1)) ![t](http://evil.example/t.png)\nline two"


@pytest.fixture(autouse=True)
def fresh_kernel_state(tmp_path, monkeypatch):
    """Each test is a fresh kernel: its own cache file, nothing finished or indexed yet (outside
    IPython each ``experiment()`` call has a state of its own unless given one)."""
    monkeypatch.setenv("ELK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("ELK_REPLAY", raising=False)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)


def client(gateway) -> Client:
    return Client(KEY, base_url=gateway.base_url, model="m1")


CASES = [{"country": "France", "capital": "Paris"}, {"country": "Peru", "capital": "Lima"}]


def test_cases_by_models_by_grid_by_repeats(gateway):
    result = experiment(
        "Capital of $country? {json: ${len(country)}}",
        CASES,
        ["m1", "m2"],
        {"temperature": [0, 1]},
        repeats=2,
        scorers=[icontains("$country"), equals("nope")],
        client=client(gateway),
        prices={"m1": {"input": 1.0, "output": 2.0}},
        progress=False,
    )
    sent = sorted((b["model"], b["temperature"], b["messages"][-1]["content"]) for b in gateway.bodies())
    prompts = ["Capital of France? {json: 6}", "Capital of Peru? {json: 4}"]
    assert sent == sorted((m, t, p) for m in ("m1", "m2") for t in (0, 1) for p in prompts for _ in range(2))
    assert len(result.runs) == result.total == 16 and result.errors == 0
    aggregates = result.aggregates()
    assert [c.label(1) for c in result.spec.columns] == [
        "m1 · temperature=0",
        "m1 · temperature=1",
        "m2 · temperature=0",
        "m2 · temperature=1",
    ]
    for column, figures in aggregates.items():
        assert figures.pass_rate == 0.0 and figures.mean_score == 0.5 and figures.spread == 0.0
        assert figures.runs == 4 and figures.tokens > 0 and figures.latency_p50 <= figures.latency_p95
        assert (figures.cost is not None) == (column.model == "m1")
    rows = result.to_records()
    assert rows[0]["case.country"] == "France" and rows[0]["output"] == "echo: " + prompts[0]
    assert rows[0]["score.icontains('$country')"] == 1.0 and rows[0]["passed"] is False
    frame = result.to_pandas()
    assert list(frame["model"]).count("m2") == 8


def test_the_responses_endpoint_with_instructions_and_its_own_cap(gateway):
    result = experiment(
        "Say $word",
        [{"word": "hi"}],
        endpoint="responses",
        system="Be brief.",
        grid={"max_output_tokens": [8]},
        client=client(gateway),
        progress=False,
    )
    (body,) = gateway.bodies("/responses")
    assert body["input"] == "Say hi" and body["instructions"] == "Be brief." and body["max_output_tokens"] == 8
    assert result.runs[0].text == "echo: Say hi" and result.runs[0].usage.total


def test_exports_csv_and_jsonl(gateway, tmp_path):
    result = experiment("Say $word", [{"word": "a,b"}], client=client(gateway), progress=False)
    result.to_csv(tmp_path / "r.csv")
    result.to_jsonl(tmp_path / "r.jsonl")
    with open(tmp_path / "r.csv", newline="") as file:
        (row,) = list(csv.DictReader(file))
    assert row["output"] == "echo: Say a,b" and row["case.word"] == "a,b"
    (line,) = (tmp_path / "r.jsonl").read_text().splitlines()
    assert json.loads(line)["output"] == "echo: Say a,b"


def test_cases_from_csv_and_jsonl_files(gateway, tmp_path):
    (tmp_path / "c.csv").write_text("q\nfirst\nsecond\n")
    (tmp_path / "c.jsonl").write_text('{"q": "third"}\n\n{"q": "fourth"}\n')
    for path, expected in (("c.csv", ["first", "second"]), ("c.jsonl", ["third", "fourth"])):
        result = experiment("$q", str(tmp_path / path), client=client(gateway), progress=False)
        assert [r.text for r in result.runs] == [f"echo: {q}" for q in expected]
    with pytest.raises(ConfigError, match="use .csv or .jsonl"):
        experiment("$q", str(tmp_path / "c.txt"), client=client(gateway), progress=False)


def test_the_saved_table_is_inert_and_exact(gateway):
    gateway.plan(text=HOSTILE + "x" * 100)
    result = experiment("hi", client=client(gateway), progress=False)
    data, metadata = result._repr_mimebundle_()
    table = data["text/markdown"]
    assert "\\<img src=x onerror=alert&#40;1&#41;\\> \\|" in table  # every character shown, nothing live
    assert "<details><summary>" in table and "line two" in table
    for html in (markdown_it_html(table), mistune_html(table)):
        assert problems(html) == [] and html.count("<tr>") == 1 + 1 + 7  # header, the case, the aggregates
    saved = metadata["elk_jupyter_experiment"]
    assert records.validate(saved) == [] and saved["runs"][0]["reply"]["text"] == HOSTILE + "x" * 100
    assert KEY not in json.dumps(data) + json.dumps(metadata)


def test_the_hostile_corpus_stays_inert_in_the_table(gateway):
    texts = corpus(gateway.base_url.split(":")[2].split("/")[0])
    for text in texts.values():
        gateway.plan(text=text)
    result = experiment("$name", [{"name": n} for n in texts], client=client(gateway), concurrency=1, progress=False)
    assert [r.text for r in result.runs] == list(texts.values())
    table = result._repr_mimebundle_()[0]["text/markdown"]
    for html in (markdown_it_html(table), mistune_html(table)):
        assert problems(html) == []


def test_the_table_with_prices_keeps_every_dollar_away_from_math(gateway):
    # Each cell's cost and the model's own `$` and `\` are isolated (tex.DOLLAR): JupyterLab's MathJax
    # pairs any two `$` in one run of text, across cells and rows, once Markdown is done.
    texts = corpus(9)
    texts = [texts["math-hostile"], texts["prices"], "costs $5 or $6 \\(x\\) \\begin{align}y\\end{align}"]
    for text in texts:
        gateway.plan(text=text)
    prices = {"m1": {"input": 1.0, "output": 2.0}}
    result = experiment(
        "$t", [{"t": t} for t in texts], client=client(gateway), prices=prices, concurrency=1, progress=False
    )
    table = result._repr_mimebundle_()[0]["text/markdown"]
    text = table.replace(DOLLAR, "").replace(BACKSLASH, "")
    assert "$" not in text and not re.search(r"\\\\|\\[A-Za-z]", text)  # (a `\{` is Markdown's escape)
    shown = "".join(Page(markdown_it_html(table)).text)
    assert "costs $5 or $6 \\(x\\) \\begin{align}y\\end{align}" in shown
    costs = [f"${r.cost:.4g}" for r in result.runs]
    assert len(costs) == 3 and all(cost in shown for cost in costs)
    assert f"${result.cost:.4g}" in shown


def test_templates_are_brace_safe_and_strict(gateway):
    with pytest.raises(ConfigError, match=r"template: \$missing is not defined"):
        experiment('{"a": $missing}', [{"x": 1}], client=client(gateway), progress=False)
    result = experiment('{"a": $x, "b": "$$5"}', [{"x": 1}], client=client(gateway), progress=False)
    assert gateway.bodies()[0]["messages"][0]["content"] == '{"a": 1, "b": "$5"}' and result.errors == 0


def test_an_expression_is_evaluated_in_every_run_and_its_errors_say_the_same(gateway):
    # each ${expr} is compiled once per text (for speed), still evaluated in each run's own scope
    calls = []
    result = experiment(
        "${ n * 2 } ${tick()}",
        [{"n": 1}, {"n": 2}],
        repeats=2,
        client=client(gateway),
        progress=False,
        namespace={"tick": lambda: calls.append(1) or len(calls)},
    )
    assert sorted(r.request["messages"][0]["content"] for r in result.runs) == ["2 1", "2 2", "4 3", "4 4"]
    for template, said in [
        ("${n +}", "template: ${n +} failed: SyntaxError: invalid syntax (<string>, line 1)"),
        ("${1/0}", "template: ${1/0} failed: ZeroDivisionError: division by zero"),
        ("${missing}", "template: ${missing} failed: NameError: name 'missing' is not defined"),
    ]:
        with pytest.raises(ConfigError) as caught:
            experiment(template, [{"n": 1}], client=client(gateway), progress=False)
        assert str(caught.value) == said


@pytest.mark.parametrize("key", ["model", "stream", "messages", "input", "stream_options"])
def test_reserved_grid_keys_are_refused_before_any_request(gateway, key):
    with pytest.raises(ConfigError, match=f"grid key '{key}' is set by the experiment itself"):
        experiment("hi", grid={key: [1, 2]}, client=client(gateway), progress=False)
    with pytest.raises(ConfigError, match="API key comes from the environment"):
        experiment("hi", grid={"api_key": ["x"]}, client=client(gateway), progress=False)
    assert gateway.requests == []


@pytest.mark.parametrize(
    "grid, said",
    [
        ({"temperature": [float("nan")]}, "temperature=nan"),
        ({"logit_bias": [{"50256": float("-inf")}]}, "logit_bias.50256=-inf"),
        ({"stop": [["a", 1e999]]}, "stop.1=inf"),
    ],
)
def test_a_non_finite_value_is_named_before_any_request(gateway, grid, said):
    # the plan writes each body's JSON once, strict: a NaN fails it, then the walk names the field
    with pytest.raises(ConfigError) as caught:
        experiment("hi", grid=grid, client=client(gateway), progress=False)
    assert str(caught.value) == f"{said}: JSON cannot carry NaN or Infinity (nothing was sent)"
    assert gateway.requests == []


def test_a_key_quoted_by_an_expression_is_cut_from_the_body_and_its_replay_key(gateway):
    # the body's JSON written once for the key scan and the replay keys: a cut body's keys are
    # those of the body as sent, never of the body as asked
    result = experiment(
        "say ${secret} ${n}", [{"n": "é🦌"}], client=client(gateway), namespace={"secret": KEY}, progress=False
    )
    (run,) = result.runs
    sent = gateway.bodies()[0]
    assert sent["messages"][0]["content"] == "say [redacted key] é🦌" and run.request == sent
    asked = Identity(sent, run.host, client(gateway).cache_scope(), Where(case=0, repeat=0))
    assert (
        run.key == asked.key == request_key({"body": sent, "where": {"case": 0, "repeat": 0, "cell": None}}, run.host)
    )


def test_budget_counts_every_cap_n_repeats_and_judge_calls(gateway):
    prices = {"m1": {"input": 0.0, "output": 10.0}}
    # 3 repeats × n=4 × 1000 max_completion_tokens × $10/1M = $0.12, plus 3 judge calls × 256 × $10/1M
    with pytest.raises(ConfigError, match=r"could cost up to \$0\.1277 \(6 requests still to send\)"):
        experiment(
            "hi",
            grid={"max_completion_tokens": [1000], "n": [4]},
            repeats=3,
            scorers=[rubric("polite")],
            client=client(gateway),
            prices=prices,
            budget=0.10,
            progress=False,
        )
    with pytest.raises(ConfigError, match="no price for model 'm2'"):
        experiment("hi", models=["m2"], client=client(gateway), prices=prices, budget=1.0, progress=False)
    assert gateway.requests == []
    ok = experiment("hi", grid={"max_tokens": [10]}, client=client(gateway), prices=prices, budget=1.0, progress=False)
    assert ok.errors == 0 and len(gateway.requests) == 1


def test_a_429_slows_every_worker_down_then_all_runs_finish(gateway):
    for _ in range(4):
        gateway.plan(status=429, headers={"Retry-After": "0.2"}, error_body={"error": {"message": "slow down"}})
    result = experiment("$n", [{"n": i} for i in range(4)], client=client(gateway), concurrency=4, progress=False)
    assert result.errors == 0 and len(gateway.requests) == 8
    assert sorted(r.text for r in result.runs) == [f"echo: {i}" for i in range(4)]


def test_the_workers_share_one_pool_of_kept_alive_connections_as_large_as_the_concurrency(gateway, caplog):
    """More workers than requests' default pool (10): every connection is kept and reused, none is
    opened and dropped per run (urllib3 would log "Connection pool is full, discarding connection")."""
    for _ in range(36):
        gateway.plan(words_per_chunk=1, delay=0.05)
    with caplog.at_level(logging.WARNING, logger="urllib3"):
        result = experiment("$n", [{"n": i} for i in range(36)], client=client(gateway), concurrency=12, progress=False)
    assert result.errors == 0 and gateway.max_in_flight == 12
    assert len({r["peer"] for r in gateway.requests}) == 12  # 36 requests on 12 connections
    assert not [r for r in caplog.records if "pool is full" in r.getMessage()]


def test_a_retry_after_beyond_the_limit_fails_that_run_in_one_line(gateway):
    gateway.plan(status=429, headers={"Retry-After": "3600"}, error_body={"error": {"message": "quota"}})
    result = experiment("$n", [{"n": 0}, {"n": 1}], client=client(gateway), concurrency=1, progress=False)
    (failed,) = [r for r in result.runs if not r.ok]
    assert "429" in failed.error and "quota" in failed.error and "\n" not in failed.error
    assert result.errors == 1 and len(gateway.requests) == 2


def test_rerun_resumes_and_retries_failed_runs_only_when_asked(gateway):
    gateway.plan(status=500, error_body={"error": {"message": "boom"}}, headers={"x-should-retry": "false"})
    args = dict(client=client(gateway), concurrency=1, progress=False, state=KernelState())  # one kernel
    first = experiment("$n", [{"n": 0}, {"n": 1}, {"n": 2}], **args)
    assert first.errors == 1 and len(gateway.requests) == 3
    again = experiment("$n", [{"n": 0}, {"n": 1}, {"n": 2}], **args)
    assert again.errors == 1 and len(gateway.requests) == 3  # nothing missing: nothing sent
    fixed = experiment("$n", [{"n": 0}, {"n": 1}, {"n": 2}], retry_failed=True, **args)
    assert fixed.errors == 0 and len(gateway.requests) == 4  # only the failed run went again


def test_a_rerun_with_other_scorers_scores_the_same_replies_again(gateway):
    args = dict(client=client(gateway), progress=False, state=KernelState())  # one kernel
    first = experiment("$n", [{"n": 1}], scorers=[contains("1")], **args)
    second = experiment("$n", [{"n": 1}], scorers=[contains("2")], **args)
    assert first.runs[0].passed and not second.runs[0].passed and second.scorer_names == ["contains('2')"]
    assert len(gateway.requests) == 1


def test_replay_only_refuses_unrecorded_runs_without_a_request(gateway):
    result = experiment("hi", client=client(gateway), replay="only", progress=False)
    assert result.errors == 1 and "never recorded" in result.runs[0].error
    assert gateway.requests == []


def test_rubric_judge_is_recorded_and_replayed(gateway):
    gateway.plan(text="Paris")
    gateway.plan(text="SCORE: 0.8 - correct and short")
    result = experiment(
        "Capital of $country?",
        [CASES[0]],
        scorers=[rubric("names the capital", model="judge-1")],
        client=client(gateway),
        progress=False,
    )
    (run,) = result.runs
    (judge,) = run.judges
    assert judge["request"]["model"] == "judge-1" and "names the capital" in judge["request"]["messages"][0]["content"]
    assert judge["reply"]["text"].startswith("SCORE: 0.8")
    assert run.scores["rubric('names the capital')"].value == 0.8 and run.passed
    saved = records.record_of(result)
    assert records.validate(saved) == [] and [k for k, _ in records.replies(saved)] == [run.key, judge["key"]]


def test_scorers_one_by_one():
    from pydantic import BaseModel

    class Answer(BaseModel):
        city: str

    case = {"capital": "Paris"}
    sample = Sample('{"city": "Paris"}', case, latency=0.5, cost=0.002)
    schema = {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}
    checks = {
        equals('{"city": "Paris"}'): True,
        equals("$capital"): False,
        contains("$capital"): True,
        icontains("PARIS"): True,
        regex(r'"city":\s*"P'): True,
        is_json(): True,
        json_schema(schema): True,
        json_schema({"type": "array"}): False,
        json_schema(Answer): True,
        latency_below(1): True,
        latency_below(0.1): False,
        cost_below(0.001): False,
        scorer(lambda output, case: case["capital"] in output): True,
        scorer(lambda output, case: 0.25): False,
    }
    for check, expected in checks.items():
        assert check(sample).passed is expected, check.name
    broken = scorer(lambda output, case: 1 / 0, name="broken")(sample)
    assert broken.value == 0.0 and not broken.passed and "ZeroDivisionError" in broken.reason
    assert not json_schema(Answer)(Sample("not json", case)).passed


def test_bad_records_are_named_not_trusted():
    assert records.validate({"version": 1, "experiment": {}, "runs": [{}]})[:2] == [
        "experiment.id should be str, got NoneType",
        "experiment.name should be str, got NoneType",
    ]
    assert records.validate({"version": 9}) == ["version is 9, expected 1", "experiment is missing"]


def test_errors_leave_as_one_line_without_frames(gateway):
    with pytest.raises(ElkError) as caught:
        experiment("hi", repeats=0, client=client(gateway), progress=False)
    assert caught.value.__traceback__.tb_next is None or "repeats must be" in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__context__ is None


@pytest.mark.kernel  # the slow tier: a long sweep (pytest -m unit stays under a minute)
@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=200), case=st.text(max_size=40))
def test_any_output_and_case_value_stay_one_inert_row(text, case):
    """Pure: any model text and case value, through the saved table, keep the table's shape and run nothing."""
    from elk_jupyter.experiments.results import ExperimentResult, RunResult
    from elk_jupyter.experiments.spec import build

    spec = build("$v", [{"v": case}], ["m"], None, 1, "chat", None, "p")
    reply = {"status": "completed", "text": text, "timing": {"total": 0.1}, "usage": {"total_tokens": 3}}
    run = RunResult(0, spec.columns[0], 0, "k", {}, reply)
    table = ExperimentResult(spec, [run], [])._repr_mimebundle_()[0]["text/markdown"]
    for html in (markdown_it_html(table), mistune_html(table)):
        assert problems(html) == [] and html.count("<tr>") == 1 + 1 + 7


def test_a_run_in_flight_at_an_interrupt_is_kept_live_not_sent_again_nor_unbilled(gateway):
    """A run already sent when the kernel is interrupted lands after it: the re-run keeps it as this
    kernel's live run (billed once), neither sending it again nor calling it replayed from the cache."""
    from elk_jupyter.experiments.runner import ExperimentInterrupted
    from elk_jupyter.experiments.totals import totals

    gateway.plan(delay=0.1)
    for _ in range(2):  # in flight when the first run's progress interrupts; the last run never starts
        gateway.plan(delay=0.6)
    cases = [{"n": i} for i in range(4)]
    state = KernelState()

    def interrupt(partial):
        if partial.runs:
            raise KeyboardInterrupt

    with pytest.raises(ExperimentInterrupted) as stopped:
        experiment("$n", cases, concurrency=2, client=client(gateway), progress=interrupt, state=state)
    assert len(stopped.value.result.runs) == 1
    while gateway.in_flight or len(gateway.requests) < 3:
        time.sleep(0.02)
    time.sleep(0.2)  # the late run's worker keeps its result
    again = experiment("$n", cases, concurrency=2, scorers=[contains("$n")], client=client(gateway), state=state)
    assert len(gateway.requests) == 4 and again.errors == 0  # each run sent once
    assert [r.replayed for r in again.runs] == [False] * 4 and all(r.passed for r in again.runs)
    assert totals([again.runs]).live == 4
