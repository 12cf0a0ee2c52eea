"""The experiment's own mime bundle (experiments/matrix.py) and the compare / diff views
(experiments/compare_view.py), from experiments run against the local gateway: what the JupyterLab
renderer gets, that every run points at its full record, that hostile values stay data, the size."""

from __future__ import annotations

import json

import nbformat
import pytest

from elk_jupyter import Client, experiment
from elk_jupyter.errors import ConfigError
from elk_jupyter.experiments import icontains, rubric
from elk_jupyter.experiments.matrix import EXPERIMENT_MIME, SOURCES_KEY, TEXT_CAP
from elk_jupyter.experiments.view import bundle
from elk_jupyter.records import experiment as records
from tests.markdown_html import corpus, markdown_it_html, mistune_html, problems

KEY = "sk-matrix-view-test-9012"
HOSTILE = "<img src=x onerror=alert(1)> <script>alert(2)</script> $\\href{javascript:alert(3)}{x}$ ![i](http://127.0.0.1:9/i.png)"
CASES = [{"country": "France", "capital": "Paris"}, {"country": HOSTILE, "capital": "Lima"}]


@pytest.fixture(autouse=True)
def fresh_kernel_state(tmp_path, monkeypatch):
    """Each test a fresh kernel: its own cache, nothing finished (outside IPython each call has its own state)."""
    monkeypatch.setenv("ELK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("ELK_REPLAY", raising=False)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)


def run(gateway, models=("m1", "m2"), cases=CASES, name="capitals", **kw):
    return experiment(
        "Capital of $country?",
        cases,
        list(models),
        scorers=[icontains("$capital")],
        name=name,
        client=Client(KEY, base_url=gateway.base_url, model="m1"),
        progress=False,
        concurrency=1,  # the gateway's plans answer in the order of the runs
        **kw,
    )


def test_the_bundle_holds_the_view_the_markdown_copy_and_the_records(gateway):
    gateway.plan(text="Paris it is")
    gateway.plan(text="maybe Lyon")
    gateway.plan(text=HOSTILE + " Lima")
    gateway.plan(text="x" * (TEXT_CAP + 50), status=500)
    result = run(gateway)
    data, metadata = bundle(result)
    assert set(data) == {EXPERIMENT_MIME, "text/markdown", "text/plain"}
    view = data[EXPERIMENT_MIME]
    json.dumps(view, allow_nan=False)  # strict JSON, as a notebook is
    assert (view["version"], view["mode"], view["live"]) == (1, "matrix", False)
    assert [c["label"] for c in view["columns"]] == ["m1", "m2"]
    assert view["cases"][1]["country"] == HOSTILE  # data, not markup: the renderer shows it as text
    record = metadata[records.EXPERIMENT_KEY]
    assert records.validate(record) == []
    assert len(view["runs"]) == len(result.runs) == 4
    for shown in view["runs"]:
        source, index = shown["record"]
        full = record["runs"][index]
        assert source == 0
        assert (full["case"], full["model"]) == (shown["case"], view["columns"][shown["column"]]["model"])
        assert full["reply"]["text"].startswith(shown["text"].rstrip("…"))
        usage = full["reply"]["usage"] or {}
        assert shown["tokens"] == [usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)]
    by_cell = {(r["case"], r["column"]): r for r in view["runs"]}
    assert (by_cell[0, 0]["passed"], by_cell[1, 0]["passed"]) == (True, False)
    assert by_cell[1, 0]["scores"]["icontains('$capital')"] == {"value": 0.0, "passed": False, "reason": ""}
    assert by_cell[1, 1]["status"] == "error" and by_cell[1, 1]["passed"] is False
    figures = view["summaries"][0]["columns"]
    assert figures[0]["pass_rate"]["value"] == result.aggregates()[result.spec.columns[0]].pass_rate


def test_a_long_output_is_clipped_in_the_view_and_whole_in_the_record(gateway):
    long = "word " * 2000
    gateway.plan(text=long)
    result = run(gateway, models=["m1"], cases=CASES[:1])
    data, metadata = bundle(result)
    (shown,) = data[EXPERIMENT_MIME]["runs"]
    assert shown["clipped"] and len(shown["text"]) == TEXT_CAP + 1
    assert metadata[records.EXPERIMENT_KEY]["runs"][0]["reply"]["text"] == long


def test_the_live_bundle_has_the_view_and_no_records(gateway):
    result = run(gateway, models=["m1"])
    partial = type(result)(result.spec, result.runs[:1], result.scorer_names, result.total)
    data, metadata = bundle(partial, final=False)
    assert data[EXPERIMENT_MIME]["live"] is True and metadata == {}
    assert data[EXPERIMENT_MIME]["sources"][0]["done"] == 1
    assert data[EXPERIMENT_MIME]["summaries"][0]["final"] is False


def test_view_bytes_per_run_stay_small(gateway, capsys):
    """The view adds a bounded amount per run beside the record (printed: the figure in the report)."""
    cases = [{"country": f"country {n}", "capital": f"capital {n}"} for n in range(20)]
    for _ in range(40):
        gateway.plan(text="a short answer of some ten words or so, nothing more")
    result = run(gateway, cases=cases)
    data, metadata = bundle(result)
    view_bytes = len(json.dumps(data[EXPERIMENT_MIME]))
    record_bytes = len(json.dumps(metadata))
    per_run = view_bytes / len(result.runs)
    with capsys.disabled():
        print(f"\nview {per_run:.0f} B/run, record {record_bytes / len(result.runs):.0f} B/run (40 runs)")
    assert per_run < 1_000


def test_compare_by_label_index_or_model_draws_the_pair(gateway):
    gateway.plan(text="Paris")
    gateway.plan(text="Lyon")
    result = run(gateway, models=["m1", "m2"], cases=CASES[:1])
    for ref in (("m1", "m2"), (0, 1), (0, -1)):
        shown = result.compare(*ref)
        data, metadata = shown._repr_mimebundle_()
        view = data[EXPERIMENT_MIME]
        assert (view["mode"], view["pair"]) == ("compare", [0, 1])
        assert records.EXPERIMENT_KEY not in metadata  # never indexed or listed twice
        assert metadata[SOURCES_KEY][0]["runs"][0]["reply"]["text"] == "Paris"
        assert "| m1 | m2 | changed |" in data["text/markdown"]
        assert "1 of 1 cases changed" in data["text/plain"]
    with pytest.raises(ConfigError, match="no single column 'm3'") as err:
        result.compare("m1", "m3")
    assert "\n" not in str(err.value)


def test_diff_matches_cases_by_fields_and_pairs_the_same_column(gateway):
    first = run(gateway, models=["m1", "m2"], cases=CASES[:1], name="before")
    gateway.plan(text="Lima")  # then France on m2: the gateway echoes it
    second = run(gateway, models=["m2"], cases=[CASES[1], CASES[0]], name="after")
    shown = first.diff(second)
    data, metadata = shown._repr_mimebundle_()
    view = data[EXPERIMENT_MIME]
    assert view["mode"] == "diff"
    assert [c["label"] for c in view["columns"]] == ["A: m1", "A: m2", "B: m2"]
    assert view["pair"] == [1, 2]  # m2 in both
    assert view["cases"][0]["country"] == "France" and len(view["cases"]) == 2
    b_runs = [r for r in view["runs"] if r["column"] == 2]
    assert {(r["case"], r["text"]) for r in b_runs} == {(1, "Lima"), (0, "echo: Capital of France?")}
    assert [len(s["runs"]) for s in metadata[SOURCES_KEY]] == [2, 2]
    assert "`before` → `after`" in data["text/markdown"]


def test_a_notebook_with_a_compare_output_lists_each_experiment_once(gateway, tmp_path):
    result = run(gateway, models=["m1", "m2"], cases=CASES[:1])
    outputs = []
    for shown in (result, result.compare("m1", "m2"), result.diff(result)):
        data, metadata = shown._repr_mimebundle_()
        outputs.append(nbformat.v4.new_output("display_data", data=data, metadata=metadata))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x", outputs=outputs)])
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, str(path))  # nbformat's own schema accepts every output
    assert len(list(records.iter_experiments(json.loads(path.read_text())))) == 1


def test_judge_runs_count_in_the_view(gateway):
    gateway.plan(text="Paris")
    gateway.plan(text="SCORE: 1 names Paris")
    result = experiment(
        "Capital of $country?",
        CASES[:1],
        scorers=[rubric("names the capital")],
        client=Client(KEY, base_url=gateway.base_url, model="m1"),
        progress=False,
    )
    data, metadata = bundle(result)
    (shown,) = data[EXPERIMENT_MIME]["runs"]
    assert shown["judged"] == 1
    judge = metadata[records.EXPERIMENT_KEY]["runs"][0]["judges"][0]
    assert judge["reply"]["text"] == "SCORE: 1 names Paris"


def test_the_compare_and_diff_markdown_stay_inert_with_the_hostile_corpus(gateway):
    texts = corpus(gateway.base_url.split(":")[2].split("/")[0])
    for text in list(texts.values()) * 2:
        gateway.plan(text=text)
    cases = [{"name": name, "capital": text} for name, text in texts.items()]
    result = experiment(
        "$name",
        cases,
        ["m1", "m<img src=x onerror=alert(1)>|2"],
        scorers=[icontains("$capital")],
        client=Client(KEY, base_url=gateway.base_url, model="m1"),
        progress=False,
        concurrency=1,
    )
    for shown in (result.compare(0, 1), result.diff(result)):
        table = shown._repr_mimebundle_()[0]["text/markdown"]
        for html in (markdown_it_html(table), mistune_html(table)):
            assert problems(html) == []
        assert all(line.count(" | ") <= 3 for line in table.splitlines() if line.startswith("| "))


def test_a_bidi_override_in_one_value_stays_out_of_the_markdown_copys_case_label(gateway):
    # the same rule as the view's caseLabel (tests/e2e/test_experiment_matrix_view.py): the other
    # field must not be reordered by an override left open in the first
    result = run(gateway, models=("m1",), cases=[{"capital": "\u202eSantiago", "country": "Chile"}])
    markdown = bundle(result)[0]["text/markdown"]
    assert "capital=Santiago, country=Chile" in markdown
    assert not any(control in markdown for control in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
    assert result.runs[0].case == 0 and result.spec.cases[0]["capital"] == "\u202eSantiago"  # the record keeps it


def test_the_compare_and_diff_markdown_label_a_case_as_the_matrix_does(gateway):
    # one label rule for every table: an override left open in one value must not reorder the other
    # field in a compare either, and a list or dict value reads as JSON there too (not Python's repr)
    cases = [{"capital": "\u202eSantiago", "country": "Chile"}, {"capital": "Lima", "country": {"names": ["Perú"]}}]
    result = run(gateway, cases=cases)
    rows = [line for line in bundle(result)[0]["text/markdown"].splitlines() if "capital=" in line]
    labels = [row.split(" | ")[0] for row in rows]
    for shown in (result.compare(0, 1), result.diff(result)):
        markdown = shown._repr_mimebundle_()[0]["text/markdown"]
        assert [line.split(" | ")[0] for line in markdown.splitlines() if "capital=" in line] == labels
        assert not any(control in markdown for control in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
    assert "capital=Santiago, country=Chile" in labels[0] and '"Perú"' in labels[1]
