"""Experiments take hostile inputs: case files, options, price tables and scorers that cannot sink a run."""

from __future__ import annotations

import csv
import decimal
import fractions
import json
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from elk_jupyter import Client, experiment
from elk_jupyter.conversation.kernel import KernelState
from elk_jupyter.errors import ConfigError
from elk_jupyter.experiments import ExperimentFailed, cases, contains, icontains, rubric
from elk_jupyter.experiments.scorers import verdict

KEY = "sk-experiment-inputs-4321"
# Characters that str.splitlines() splits on but that are data inside a CSV or JSON field.
SEPARATORS = "\u2028\u2029\x85\x0c\x0b\x1c\x1d\x1e"


@pytest.fixture(autouse=True)
def fresh_kernel_state(tmp_path, monkeypatch):
    """A fresh kernel: its own cache (outside IPython each ``experiment()`` call has its own state)."""
    monkeypatch.setenv("ELK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("ELK_REPLAY", raising=False)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)


def client(gateway) -> Client:
    return Client(KEY, base_url=gateway.base_url, model="m1")


ROWS = [
    {"question": "line one\nline two", "answer": "a, b"},
    {"question": 'say "hi"', "answer": "x\r\ny"},
    {"question": f"sep{SEPARATORS}arators", "answer": ""},
    {"question": "plain", "answer": "ünïcödé ✓"},
]


def test_a_csv_written_by_csv_writer_reads_back_exactly(tmp_path):
    path = tmp_path / "cases.csv"
    with open(path, "w", encoding="utf-8", newline="") as file:
        writer = csv.DictWriter(file, ["question", "answer"])
        writer.writeheader()
        writer.writerows(ROWS)
    assert cases.read(path) == ROWS  # 4 cases, not 7; no None values; every separator kept


def test_excels_bom_is_not_part_of_the_first_field_name(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufeffcountry,capital\r\nFrance,Paris\r\n".encode())
    assert cases.read(path) == [{"country": "France", "capital": "Paris"}]


def test_jsonl_splits_on_newline_only(tmp_path):
    path = tmp_path / "cases.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in ROWS) + "\n\n", encoding="utf-8", newline="")
    assert cases.read(path) == ROWS


def test_an_undecodable_file_is_one_line_naming_the_file_and_the_encoding(tmp_path):
    path = tmp_path / "windows.csv"
    path.write_bytes("country,capital\nCôte d’Ivoire,Yamoussoukro\n".encode("cp1252"))
    with pytest.raises(ConfigError) as caught:
        cases.read(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message and "'cp1252'" in message and "bug" not in message


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_with_no_bom_is_named_not_read_as_one_field(tmp_path, encoding):
    # ASCII text in UTF-16 with no BOM is valid UTF-8 (a NUL in every other byte): it read as rows
    # of one field each, 'where the header has 2'
    path = tmp_path / "exported.csv"
    path.write_bytes("country,capital\nPeru,Lima\n".encode(encoding))
    with pytest.raises(ConfigError, match=f"it looks like {encoding}; save it as UTF-8") as caught:
        cases.read(path)
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("a,b\n1,2,3\n", "3 fields where the header has 2"),
        ("a,a\n1,2\n", "names a column twice"),
        ('{"a": 1}\n[1, 2]\n', "must be a JSON object"),
        ('{"a": 1}\n{oops\n', ":2: not JSON"),
    ],
)
def test_malformed_case_files_are_one_line(tmp_path, content, words):
    path = tmp_path / ("c.jsonl" if content.startswith("{") else "c.csv")
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=words):
        cases.read(path)


TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30)
KEYS = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=10)


@pytest.mark.kernel  # a long property sweep: kept out of the quick unit loop
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(KEYS, min_size=1, max_size=4, unique=True).flatmap(
        lambda keys: st.lists(st.fixed_dictionaries({k: TEXT for k in keys}), min_size=1, max_size=5)
    )
)
def test_write_csv_reads_back_identically(tmp_path, rows):
    path = tmp_path / "round.csv"
    cases.write_csv(rows, path)
    assert cases.read(path) == rows


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)


@pytest.mark.kernel  # a long property sweep: kept out of the quick unit loop
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.dictionaries(KEYS, JSON, max_size=4), min_size=1, max_size=5))
def test_write_jsonl_reads_back_identically(tmp_path, rows):
    path = tmp_path / "round.jsonl"
    cases.write_jsonl(rows, path)
    assert cases.read(path) == rows


def test_a_results_csv_and_jsonl_read_back_as_its_records(gateway, tmp_path):
    result = experiment("Say $question", ROWS, scorers=[icontains("$answer")], client=client(gateway), progress=False)
    result.to_csv(tmp_path / "r.csv")
    result.to_jsonl(tmp_path / "r.jsonl")
    records = result.to_records()
    assert cases.read(tmp_path / "r.jsonl") == json.loads(json.dumps(records))
    assert cases.read(tmp_path / "r.csv") == [{k: cases.csv_text(v) for k, v in row.items()} for row in records]
    again = experiment("Again: $output", tmp_path / "r.jsonl", client=client(gateway), progress=False)
    assert len(again.spec.cases) == 4


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"models": []}, "at least one model"),
        ({"budget": float("nan")}, "budget must be a finite number"),
        ({"budget": float("inf")}, "budget must be a finite number"),
        ({"budget": -1}, "budget must be a finite number"),
        ({"repeats": 0}, "repeats must be a whole number >= 1"),
        ({"concurrency": 0}, "concurrency must be a whole number >= 1"),
        ({"concurrency": 2.5}, "concurrency must be a whole number >= 1"),
        ({"prices": {"m1": {"input": 1.0}}}, r"prices\['m1'\]\['output'\] must be a number"),
        ({"prices": {"m1": {"input": 1.0, "output": float("nan")}}}, "must be a number"),
        ({"scorers": [icontains("$capitol")]}, r"no case has the field 'capitol' \(did you mean \$capital\?\)"),
        ({"scorers": [42]}, "not a scorer"),
    ],
)
def test_meaningless_options_are_refused_before_any_request(gateway, options, words):
    with pytest.raises(ConfigError, match=words) as caught:
        experiment(
            "Capital of $country?",
            [{"country": "France", "capital": "Paris"}],
            client=client(gateway),
            progress=False,
            **options,
        )
    assert "\n" not in str(caught.value)
    assert gateway.requests == []


def test_a_case_without_the_field_fails_with_the_reason(gateway):
    result = experiment(
        "$q",
        [{"q": "a", "want": "echo"}, {"q": "b"}],
        scorers=[contains("$want")],
        client=client(gateway),
        progress=False,
    )
    first, second = sorted(result.runs, key=lambda r: r.case)
    assert first.passed is True
    assert second.passed is False and "no field 'want'" in second.scores["contains('$want')"].reason


def test_numpy_and_other_number_likes_are_scores_and_bad_values_fail_with_a_reason(gateway):
    returns = {
        "np_bool": lambda out, case: np.isclose(1.0, 1.0),
        "np_false": lambda out, case: np.bool_(False),
        "np_float": lambda out, case: np.float32(0.75),
        "np_int": lambda out, case: np.int64(1),
        "np_0d": lambda out, case: np.array(0.6),
        "decimal": lambda out, case: decimal.Decimal("0.5"),
        "fraction": lambda out, case: fractions.Fraction(1, 4),
        "array": lambda out, case: np.array([1, 2]),
        "nan": lambda out, case: float("nan"),
        "text": lambda out, case: "yes",
        "none": lambda out, case: None,
        "raises": lambda out, case: 1 / 0,
    }
    scorers = []
    for name, function in returns.items():
        function.__name__ = name
        scorers.append(function)
    result = experiment("hi", scorers=scorers, client=client(gateway), progress=False)
    (run,) = result.runs
    scores = run.scores
    assert (scores["np_bool"].value, scores["np_bool"].passed) == (1.0, True)
    assert (scores["np_false"].value, scores["np_false"].passed) == (0.0, False)
    assert scores["np_float"].value == 0.75 and scores["np_float"].passed
    assert scores["np_int"].value == 1.0 and scores["np_0d"].value == pytest.approx(0.6)
    assert scores["decimal"].value == 0.5 and scores["fraction"].value == 0.25
    for bad in ("array", "nan", "text", "none", "raises"):
        assert scores[bad].value == 0.0 and not scores[bad].passed and scores[bad].reason, bad
    assert "ZeroDivisionError" in scores["raises"].reason and "None" in scores["none"].reason
    assert result.errors == 0 and run.passed is False


@pytest.mark.parametrize(
    ("answer", "value"),
    [
        ("The answer does not pass the rubric.\nSCORE: 0", 0.0),
        ("It passes. SCORE: 0.25 because ...", 0.25),
        ("**Score**: 4/5 — mostly right", 0.8),
        ("score = 75%", 0.75),
        ("It does not fail; it passes.", 1.0),
        ("This fails to be polite.", 0.0),
    ],
)
def test_rubric_reads_score_first_and_skips_negated_words(answer, value):
    found, reason = verdict(answer)
    assert found == value and reason == answer.strip()


def test_rubric_without_a_verdict_fails_the_run_with_the_judges_words(gateway):
    gateway.plan(text="Paris")
    gateway.plan(text="The answer does not pass the rubric, I think.")
    result = experiment("Capital?", scorers=[rubric("names Paris")], client=client(gateway), progress=False)
    (score,) = result.runs[0].scores.values()
    assert not score.passed and "no SCORE" in score.reason
    gateway.plan(text="Paris")
    gateway.plan(text="It names Paris, which does not fail the rubric.\nSCORE: 1")
    good = experiment("Capital!", scorers=[rubric("names the city Paris")], client=client(gateway), progress=False)
    (score,) = good.runs[0].scores.values()
    assert score.passed and score.reason.startswith("It names Paris") and "SCORE: 1" in score.reason


def test_a_failure_shuts_the_pool_down_at_once_and_keeps_the_finished_runs(gateway):
    for _ in range(20):
        gateway.plan(text="ok", delay=0.05)
    seen = []

    def progress(result):
        seen.append(len(result.runs))
        if len(result.runs) >= 2:
            raise RuntimeError("the display went away")

    with pytest.raises(ExperimentFailed) as caught:
        experiment("$n", [{"n": i} for i in range(20)], client=client(gateway), concurrency=2, progress=progress)
    failure = caught.value
    time.sleep(1.5)  # without the shutdown, the pool would send all 20 by now
    # what was in flight when it failed (one run per worker at most) may finish; nothing new starts
    assert len(gateway.requests) <= len(failure.result.runs) + 2 < 20
    assert "\n" not in str(failure) and "the display went away" in str(failure)
    assert len(failure.result.runs) >= 2 and failure.result.missing > 0
    assert f"{len(failure.result.runs)} of 20 runs finished and are kept" in str(failure)


def test_a_dataframe_with_missing_and_numpy_values_leaves_a_valid_record(gateway):
    import pandas as pd

    from elk_jupyter.records.experiment import record_of, validate

    frame = pd.DataFrame({"q": ["a", "b"], "x": [1.5, float("nan")], "n": np.array([1, 2], dtype=np.int64)})
    result = experiment("Say $q $n", frame, client=client(gateway), progress=False)
    assert validate(record_of(result)) == []
    assert result.spec.cases == ({"q": "a", "x": 1.5, "n": 1}, {"q": "b", "x": None, "n": 2})
    assert sorted(b["messages"][-1]["content"] for b in gateway.bodies()) == ["Say a 1", "Say b 2"]


def test_batched_cache_writes_are_all_on_disk_when_the_experiment_returns(gateway):
    cases_ = [{"n": i} for i in range(12)]
    first = experiment("Count $n", cases_, client=client(gateway), concurrency=6, progress=False, state=KernelState())
    assert first.errors == 0 and len(gateway.requests) == 12
    # a state of its own (a new kernel, whatever shell an earlier test left): only the SQLite cache can answer
    again = experiment("Count $n", cases_, client=client(gateway), replay="only", progress=False, state=KernelState())
    assert again.errors == 0 and all(r.replayed for r in again.runs) and len(gateway.requests) == 12
    assert [r.text for r in again.runs] == [r.text for r in first.runs]


def test_runs_the_cache_holds_are_replayed_and_only_the_others_sent_in_a_new_kernel(gateway):
    # the experiment asks the cache once for all its runs: a hit is still replayed, a miss sent
    first = experiment(
        "Count $n", [{"n": i} for i in range(3)], client=client(gateway), progress=False, state=KernelState()
    )
    assert first.errors == 0 and len(gateway.requests) == 3
    wider = [{"n": i} for i in range(8)]
    again = experiment("Count $n", wider, client=client(gateway), concurrency=4, progress=False, state=KernelState())
    assert again.errors == 0 and len(gateway.requests) == 3 + 5
    assert [r.replayed for r in again.runs] == [True] * 3 + [False] * 5
    assert [r.text for r in again.runs[:3]] == [r.text for r in first.runs]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # Excel where the decimal mark is a comma saves "CSV" with `;`, with its BOM and CRLF
        (
            '\ufeffquestion;answer\r\n"What is 1,5 + 1?";"2,5"\r\n"line\r\nbreak";x\r\n',
            [{"question": "What is 1,5 + 1?", "answer": "2,5"}, {"question": "line\r\nbreak", "answer": "x"}],
        ),
        ("q\ta\nx\ty\n", [{"q": "x", "a": "y"}]),  # a sheet saved as text: tabs
        ("q,a,,\r\nx,y,,\r\nz,w,,\r\n", [{"q": "x", "a": "y"}, {"q": "z", "a": "w"}]),  # formatted empty columns
        ('"a;b"\r\nx;y\r\n', [{"a;b": "x;y"}]),  # one quoted column: its `;` is data
    ],
)
def test_csv_from_excel_in_other_locales_and_with_empty_columns(tmp_path, raw, expected):
    path = tmp_path / "excel.csv"
    path.write_bytes(raw.encode("utf-8"))
    assert cases.read(path) == expected
    cases.write_csv(expected, path)  # and what we write reads back the same
    assert cases.read(path) == expected


def test_an_unnamed_column_that_holds_values_is_one_line(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("q,,a\nx,lost,y\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="column 2 has values but no name"):
        cases.read(path)


def test_jsonl_keeps_raw_control_characters_and_separators_inside_strings(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_bytes('\ufeff{"q": "tab\there\x0cform\u2028ls\x85nel"}\r\n\r\n{"q": "é"}\n'.encode())
    assert cases.read(path) == [{"q": "tab\there\x0cform\u2028ls\x85nel"}, {"q": "é"}]


def test_a_scorers_own_score_is_held_to_the_rules_of_a_bare_value(gateway):
    from elk_jupyter.experiments import Score
    from elk_jupyter.experiments.view import bundle
    from elk_jupyter.records.experiment import record_of, validate

    returns = {
        "nan": lambda out, case: Score(float("nan"), True),
        "inf": lambda out, case: Score(float("inf"), False),
        "words": lambda out, case: Score("0.5", "yes", 3),
        "numpy": lambda out, case: Score(np.float64(0.25), np.bool_(True), "ok"),
    }
    scorers = []
    for name, function in returns.items():
        function.__name__ = name
        scorers.append(function)
    result = experiment("hi", scorers=scorers, client=client(gateway), progress=False)
    scores = result.runs[0].scores
    for bad in ("nan", "inf", "words"):
        assert scores[bad].value == 0.0 and not scores[bad].passed and "UnusableScore" in scores[bad].reason
    assert scores["numpy"] == Score(0.25, True, "ok") and type(scores["numpy"].value) is float
    assert validate(record_of(result)) == []
    data, metadata = bundle(result)
    json.dumps([data, metadata, result.summary_data()], allow_nan=False)  # strict JSON: a notebook can hold it


@pytest.mark.parametrize(
    "answer", ["The response fails to pass the rubric.", "It passes the format check but fails the rubric."]
)
def test_a_judge_that_says_both_pass_and_fail_passes_nothing(answer):
    with pytest.raises(ValueError, match="both pass and fail"):
        verdict(answer)


def test_a_pandas_series_or_a_multiindex_frame_is_one_line_before_any_request(gateway):
    import pandas as pd

    series = pd.Series(["a", "b"], name="q")
    with pytest.raises(ConfigError, match=r"a pandas Series \(one column\): pass series.to_frame"):
        experiment("Say $q", series, client=client(gateway), progress=False)
    wide = pd.DataFrame([[1, 2]], columns=pd.MultiIndex.from_tuples([("a", "x"), ("a", "y")]))
    with pytest.raises(ConfigError, match="not a dict with string keys"):
        experiment("Say $q", wide, client=client(gateway), progress=False)
    assert gateway.requests == []
    result = experiment("Say $q", series.to_frame(), client=client(gateway), progress=False)
    assert [c["q"] for c in result.spec.cases] == ["a", "b"]


def test_a_case_missing_a_template_field_and_a_model_named_twice_are_one_line(gateway):
    with pytest.raises(ConfigError, match="case 2 has no field 'q', which the template uses and other cases have"):
        experiment("Say $q", [{"q": "a"}, {"x": "b"}], client=client(gateway), progress=False)
    with pytest.raises(ConfigError, match="models names 'm1' twice"):
        experiment("Say hi", models=["m1", "m2", "m1"], client=client(gateway), progress=False)
    with pytest.raises(ConfigError, match="models must be model names"):
        experiment("Say hi", models=["m1", None], client=client(gateway), progress=False)
    assert gateway.requests == []


def test_a_scorers_name_reason_and_error_never_carry_the_key(gateway):
    def quoting(output, case):
        raise RuntimeError(f"could not score with {KEY}")

    def explaining(output, case):
        return 0.5, f"checked against {KEY}"

    result = experiment(
        "$q", [{"q": "a"}], scorers=[quoting, explaining, contains(KEY)], client=client(gateway), progress=False
    )
    saved = json.dumps([result.to_records(), result.summary_data()], default=str)
    (run,) = result.runs
    assert KEY not in saved and KEY not in repr(run.scores)
    assert "could not score with [redacted key]" in run.scores["quoting"].reason
    assert run.scores["explaining"].reason == "checked against [redacted key]"


def test_a_braced_field_in_a_scorer_is_the_case_field(gateway):
    result = experiment(
        "$q", [{"q": "a", "want": "echo"}], scorers=[contains("${want}")], client=client(gateway), progress=False
    )
    assert result.runs[0].passed is True
    with pytest.raises(ConfigError, match="no case has the field 'capitol'"):
        experiment("$q", [{"q": "a"}], scorers=[icontains("${capitol}")], client=client(gateway), progress=False)


@pytest.mark.parametrize(
    ("content", "line"),
    [
        ('q,a\n1,"2\n3,4\n5,6\n', 2),  # read leniently, rows 3 and 4 became part of the field that opens on line 2
        ('"q,a\n1,2\n', 1),
        ('q,a\n1,"two\r\nlines"\n3,"4\n', 4),  # a closed multi-line field before it: the line is still right
    ],
)
def test_a_quote_never_closed_is_one_line_naming_where_it_opens(tmp_path, content, line):
    path = tmp_path / "c.csv"
    path.write_bytes(content.encode())
    with pytest.raises(ConfigError) as caught:
        cases.read(path)
    assert str(caught.value) == f"{path}:{line}: a quoted field starts here and is never closed"


def test_own_text_that_starts_like_the_formula_guard_reads_as_the_readme_says(tmp_path):
    path = tmp_path / "sql.csv"
    with open(path, "w", encoding="utf-8", newline="") as file:
        csv.writer(file).writerows([["query"], ["''-1' OR 1=1"], ["'-1' OR 1=1"], ["'plain"]])
    assert [row["query"] for row in cases.read(path)] == ["'-1' OR 1=1", "-1' OR 1=1", "'plain"]


def test_jsonl_nested_deeper_than_the_parser_is_one_line(tmp_path):
    path = tmp_path / "deep.jsonl"
    path.write_text('{"a": 1}\n{"a": ' + "[" * 100_000 + "]" * 100_000 + "}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"deep\.jsonl:2: nested too deeply for JSON to read$"):
        cases.read(path)


def test_a_case_nested_deeper_than_a_record_keeps_is_refused_not_cut(tmp_path):
    path = tmp_path / "nested.jsonl"
    path.write_text('{"a": 1}\n{"a": ' + "[" * 40 + "1" + "]" * 40 + "}\n", encoding="utf-8")
    assert cases.read(path)[1]["a"] == json.loads("[" * 40 + "1" + "]" * 40)
    with pytest.raises(ConfigError, match=r"^case 1: a case value is nested more than 32 levels deep"):
        experiment("$a", str(path), client=Client(KEY, base_url="http://127.0.0.1:9/v1"), progress=False)
    looped: list = []
    looped.append(looped)
    with pytest.raises(ConfigError, match="holds itself"):
        experiment("$a", [{"a": looped}], client=Client(KEY, base_url="http://127.0.0.1:9/v1"), progress=False)


def test_a_dataframe_with_missing_times_and_array_cells_gives_values_not_reprs(gateway):
    import pandas as pd

    frame = pd.DataFrame(
        {
            "q": ["a", "b"],
            "when": pd.to_datetime(["2024-01-02", None]),  # the missing one is pd.NaT, whose str() is "NaT"
            "tags": [np.array(["x", "y"]), np.array([], dtype=object)],  # a list column as parquet reads it
            "n": pd.array([1, None], dtype="Int64"),
        }
    )
    result = experiment("Say $q $tags", frame, client=client(gateway), progress=False)
    assert result.spec.cases == (
        {"q": "a", "when": "2024-01-02 00:00:00", "tags": ["x", "y"], "n": 1},
        {"q": "b", "when": None, "tags": [], "n": None},
    )
    sent = sorted(b["messages"][-1]["content"] for b in gateway.bodies())
    assert "'x' 'y'" not in " ".join(sent) and "NaT" not in " ".join(sent)
