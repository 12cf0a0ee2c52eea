"""The records toolkit on hand-edited input: one schema checker for turn and experiment records
(inner types included), one walker of a notebook's metadata, deep nesting refused in one line."""

from __future__ import annotations

import copy
import json

import pytest

from elk_jupyter.cli.main import main as cli
from elk_jupyter.errors import ElkError
from elk_jupyter.experiments.results import ExperimentResult, RunResult, result_of
from elk_jupyter.experiments.scorers import Score
from elk_jupyter.experiments.spec import build
from elk_jupyter.records import experiment, metadata, notebooks, schema
from elk_jupyter.records import turn as record

REPLY = {
    "endpoint": "chat",
    "status": "completed",
    "text": "Paris",
    "reasoning": "",
    "tool_calls": [],
    "attempts": 1,
    "timing": {"ttfb": 0.1, "ttft": 0.2, "total": 0.3},
    "model": "m-served",
}


def experiment_record() -> dict:
    spec = build("Capital of $c?", [{"c": "France"}, {"c": "Peru"}], ["m"], None, 1, "chat", None, "capitals")
    runs = [
        RunResult(n, spec.columns[0], 0, f"k{n}", {"model": "m"}, dict(REPLY), scores={"ok": Score(1.0, True)})
        for n in range(2)
    ]
    return json.loads(json.dumps(experiment.record_of(ExperimentResult(spec, runs, ["ok"]))))


def turn_record() -> dict:
    turn = {
        "id": "a" * 32,
        "conversation": "default",
        "endpoint": "chat",
        "prompt": "hi",
        "request": {"model": "m", "messages": []},
        "reply": dict(REPLY),
        "status": "completed",
        "context": [],
        "created_at": 1.5,
    }
    return {"version": record.RECORD_VERSION, "package": "0", "turn": turn}


def nested(depth: int):
    value: object = "bottom"
    for level in range(depth):
        value = [value] if level % 2 else {"x": value}
    return value


def test_a_written_experiment_record_is_valid_and_reads_back():
    saved = experiment_record()
    assert experiment.validate(saved) == []
    back = result_of(saved)
    assert [r.text for r in back.runs] == ["Paris", "Paris"] and back.spec.name == "capitals"
    assert experiment.record_of(back) == saved


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda r: r["runs"][0].update(model=7), "runs[0].model should be str, got int"),
        (lambda r: r["experiment"]["models"].__setitem__(0, 7), "experiment.models[0] should be str, got int"),
        (
            lambda r: r["runs"][1]["scores"]["ok"].update(value=10**400),
            "runs[1].scores.ok.value should be number, got a number too large for a float",
        ),
        (
            lambda r: r["runs"][0]["reply"]["timing"].update(total="fast"),
            "runs[0].reply.timing.total should be number or NoneType, got str",
        ),
        (lambda r: r["runs"][0].update(cost="1$"), "runs[0].cost should be number or null, got str"),
        (lambda r: r["runs"][0]["judges"].append({"key": 1}), "runs[0].judges[0].key should be str, got int"),
        (lambda r: r["experiment"]["grid"].update(t=0.5), "experiment.grid.t should be list, got float"),
        (lambda r: r["experiment"].update(endpoint="x"), "experiment.endpoint is 'x'"),
        (lambda r: r["runs"][0]["scores"]["ok"].update(passed="yes"), "runs[0].scores.ok.passed should be bool"),
    ],
)
def test_a_hand_edited_experiment_record_is_refused_by_its_inner_types(edit, expected):
    saved = experiment_record()
    edit(saved)
    problems = experiment.validate(saved)
    assert any(p.startswith(expected) for p in problems), problems


def test_a_hand_edited_turn_record_is_refused_by_its_inner_types():
    saved = turn_record()
    assert record.validate(saved) == []
    saved["turn"]["created_at"] = 10**400
    saved["turn"]["reply"]["timing"]["ttfb"] = "soon"
    assert record.validate(saved) == [
        "turn.created_at should be number, got a number too large for a float",
        "turn.reply.timing.ttfb should be number or NoneType, got str",
    ]


def test_a_record_nested_600_deep_is_refused_in_one_line():
    for validate, saved in ((record.validate, turn_record()), (experiment.validate, experiment_record())):
        saved["deep"] = nested(600)
        assert validate(saved) == [f"record nests deeper than {schema.MAX_DEPTH} levels"]
    saved = turn_record()
    saved["turn"]["reply"]["timing"] = nested(600)
    assert record.validate(saved) == [f"record nests deeper than {schema.MAX_DEPTH} levels"]


def notebook_with(*outputs: dict) -> dict:
    cells = [{"cell_type": "code", "source": "", "metadata": {}, "outputs": [o], "execution_count": 1} for o in outputs]
    cells.insert(0, {"cell_type": "markdown", "source": "x", "metadata": {}, "outputs": [{"metadata": {"k": 1}}]})
    return {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def output(key: str, value) -> dict:
    return {"output_type": "display_data", "data": {}, "metadata": {key: value}}


def test_one_walker_finds_each_kind_of_record_in_code_cells_only():
    nb = notebook_with(
        output(record.RECORD_KEY, turn_record()),
        output(experiment.EXPERIMENT_KEY, experiment_record()),
        {"output_type": "stream", "text": "no metadata"},
        output(record.RECORD_KEY, {"turn": {"prompt": "\ud83d"}}),
    )
    nb["cells"].append("not a cell")
    found = list(metadata.outputs_holding(nb, record.RECORD_KEY))
    assert [o is c["outputs"][0] for (o, _), c in zip(found, [nb["cells"][1], nb["cells"][4]], strict=True)] == [
        True,
        True,
    ]
    turns = list(notebooks.iter_records(nb))
    assert turns[0] == turn_record() and turns[1] == {"turn": {"prompt": "\ufffd"}}  # a lone surrogate is replaced
    assert list(experiment.iter_experiments(nb)) == [experiment_record()]
    assert list(metadata.outputs_holding({"cells": "nope"}, "k")) == []


def test_a_saved_notebook_with_a_600_deep_record_reads_as_one_line(tmp_path, capsys):
    deep_turn, deep_run = turn_record(), experiment_record()
    deep_turn["turn"]["request"] = nested(600)
    deep_run["runs"][0]["request"] = nested(600)
    path = tmp_path / "deep.ipynb"
    path.write_text(
        json.dumps(notebook_with(output(record.RECORD_KEY, deep_turn), output(experiment.EXPERIMENT_KEY, deep_run)))
    )
    turns, unusable = notebooks.read_turns(path)
    assert turns == [] and unusable == [
        f"{path}: record 1 (turn aaaaaaaa) is invalid: record nests deeper than {schema.MAX_DEPTH} levels"
    ]
    assert cli(["experiments", "list", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nests deeper than" in err


def test_the_checker_never_recurses():
    deep = nested(100_000)  # far past Python's recursion limit
    assert schema.too_deep(deep, "x") == f"x nests deeper than {schema.MAX_DEPTH} levels"
    assert schema.check([deep], schema.ListOf(list), "x") == []
    assert list(schema.non_finite({"a": [1.0, float("nan")]}, "r")) == [
        ("r.a[1]", pytest.approx(float("nan"), nan_ok=True))
    ]
    assert copy.deepcopy(turn_record()) == turn_record()


def test_a_notebook_nested_too_deep_for_nbformat_is_one_line(tmp_path):
    path = tmp_path / "deep.ipynb"
    nb = notebook_with(output(record.RECORD_KEY, turn_record()))
    nb["cells"][1]["metadata"]["deep"] = nested(600)  # not a record of ours: nbformat's validator walks it
    path.write_text(json.dumps(nb))
    with pytest.raises(ElkError) as caught:
        notebooks.read_notebook(path)
    assert str(caught.value) == f"{path}: not a Jupyter notebook (nested too deep to read)"
    path.write_text("[" * 100_000 + "]" * 100_000)  # too deep for json itself
    with pytest.raises(ElkError) as caught:
        notebooks.read_json(path)
    assert str(caught.value) == f"{path}: not a Jupyter notebook (nested too deep to read)"
