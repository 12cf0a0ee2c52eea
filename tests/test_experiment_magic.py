"""``%%experiment`` inline: -g grids, --score expressions, --case one-offs, and its ``?`` help, in a real IPython shell."""

from __future__ import annotations

import pytest

from elk_jupyter.experiments.cell import ARGUMENTS
from tests.environment import elk_env, fresh_shell, use_env

KEY = "sk-experiment-magic-2468"


@pytest.fixture
def ip(gateway, monkeypatch, tmp_path):
    use_env(monkeypatch, elk_env(gateway.base_url, KEY, tmp_path / "cache"), unset=("ELK_REPLAY",))
    shell, _ = fresh_shell(replay="off")
    yield shell
    shell.parent_header = {}


def test_an_inline_grid_cases_and_scorer_expression(ip, gateway):
    line = (
        "%%experiment -m m1 -g temperature=0,0.5 -g response_format.type=json_object,text "
        "--case country=France capital=Paris --case country=Peru capital=Lima "
        "--score 'icontains(\"$capital\")' --score 'equals(\"nope\")' -o res\n"
    )
    outcome = ip.run_cell(line + "Capital of $country?")
    assert outcome.success, outcome.error_in_exec
    bodies = gateway.bodies()
    assert len(bodies) == 8
    assert sorted({(b["temperature"], b["response_format"]["type"]) for b in bodies}) == [
        (0, "json_object"),
        (0, "text"),
        (0.5, "json_object"),
        (0.5, "text"),
    ]
    assert {b["messages"][-1]["content"] for b in bodies} == {"Capital of France?", "Capital of Peru?"}
    result = ip.user_ns["res"]
    assert result.scorer_names == ["icontains('$capital')", "equals('nope')"]
    assert result.spec.cases == ({"country": "France", "capital": "Paris"}, {"country": "Peru", "capital": "Lima"})


def test_grid_values_are_json_when_they_parse_and_text_otherwise(ip, gateway):
    ip.user_ns["seeds"] = [1, 2]
    outcome = ip.run_cell('%%experiment -g stop=\'"a,b","c"\' -g user=alice,bob -g seed=@seeds -g n=1 -o res\nhi')
    assert outcome.success, outcome.error_in_exec
    bodies = gateway.bodies()
    assert {b["stop"] for b in bodies} == {"a,b", "c"} and {b["user"] for b in bodies} == {"alice", "bob"}
    assert {b["seed"] for b in bodies} == {1, 2} and {b["n"] for b in bodies} == {1}
    assert len(bodies) == 8


def test_score_accepts_a_variable_a_list_and_a_users_own_function(ip, gateway):
    ip.run_cell(
        "from elk_jupyter.experiments import contains\nchecks = [contains('echo')]\ndef mine(out, case): return 0.5"
    )
    outcome = ip.run_cell("%%experiment --score checks --score mine --score 'regex(r\"^echo\")' -o res\nhi")
    assert outcome.success, outcome.error_in_exec
    (run,) = ip.user_ns["res"].runs
    assert sorted(run.scores) == ["contains('echo')", "mine", "regex('^echo')"]
    assert run.scores["contains('echo')"].passed and run.scores["mine"].value == 0.5


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("--score nope", "--score: variable 'nope' is not defined"),
        ("--score 'icontains('", "not a Python expression"),
        ("--score 'icontains(1, 2, 3)'", "TypeError"),
        ("--score 'icontains(\"$capitol\")' --case capital=Paris", "no case has the field 'capitol'"),
        ("-g temperature=0,1 -p temperature=1", "'temperature' is given twice"),
        ("-g temperature", "-g expects FIELD=V1,V2"),
        ("-g api_key=a,b", "the API key"),
        ("-g messages=a,b", "set by the experiment itself"),
        ("--case api_key=x", "the API key"),
        ("--concurrency 0", "concurrency must be a whole number >= 1"),
        ("--budget nan", "budget must be a finite number"),
    ],
)
def test_bad_inline_options_are_one_line_and_send_nothing(ip, gateway, capsys, line, words):
    outcome = ip.run_cell(f"%%experiment {line}\nCapital of France?")
    assert not outcome.success
    error = str(outcome.error_in_exec)
    assert words in error and "\n" not in error
    assert gateway.requests == []


def test_the_magics_help_shows_every_option_and_the_inline_syntax(ip):
    text = ip.object_inspect_text("%%experiment")
    for names, _ in ARGUMENTS:
        assert any(name in text for name in names), names
    assert "-g FIELD=V1,V2" in text and "--score 'icontains(\"$capital\")'" in text and "--case country=France" in text


def test_a_score_lambda_and_comprehension_see_the_notebooks_names(ip, gateway):
    ip.run_cell("import numpy as np\nlimit = 100\nwords = ['echo']")
    line = (
        "%%experiment --score 'lambda out, case: np.bool_(len(out) < limit)' "
        "--score '[contains(w) for w in words if len(w) < limit]' -o res\nhi"
    )
    outcome = ip.run_cell(line)
    assert outcome.success, outcome.error_in_exec
    (run,) = ip.user_ns["res"].runs
    assert {name: (s.passed, s.reason) for name, s in run.scores.items()} == {
        "<lambda>": (True, ""),
        "contains('echo')": (True, ""),
    }


def test_numpy_grid_values_and_empty_values_are_sent(ip, gateway):
    ip.run_cell("import numpy as np\nseeds = np.arange(2)")
    outcome = ip.run_cell("%%experiment --models m1 -g seed=@seeds -g stop=a,,b -p user= --case q= -o res\n[$q]")
    assert outcome.success, outcome.error_in_exec
    bodies = gateway.bodies()
    assert sorted((b["seed"], b["stop"]) for b in bodies) == [(s, t) for s in (0, 1) for t in ("", "a", "b")]
    assert {b["user"] for b in bodies} == {""} and {b["model"] for b in bodies} == {"m1"}
    assert {b["messages"][-1]["content"] for b in bodies} == {"[]"}


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("--grid not_a_dict", "the grid must be a dict of field -> list of values, not list"),
        ("--cases a_number --case n=1", "cases must be a list of dicts, a DataFrame or a .csv/.jsonl path, not int"),
        ("--cases a_number", "cases must be a list of dicts, a DataFrame or a .csv/.jsonl path, not int"),
        ("--cases my_casse", "--cases: variable 'my_casse' is not defined"),
        ("-p temperature=@a_set", "a value JSON cannot carry"),
        ("-g =1,2", "-g expects FIELD=V1,V2, got '=1,2'"),
        ("-g a..b=1,2", "-g a..b: a field name has an empty part"),
        ("--score None", "not a scorer: None"),
    ],
)
@pytest.mark.parametrize("mode", ["Plain", "Context", "Verbose", "Minimal"])
def test_bad_variables_are_one_line_in_every_xmode(ip, gateway, line, words, mode):
    from IPython.utils.capture import capture_output

    ip.run_cell("not_a_dict = [1, 2]\na_number = 5\na_set = object()")
    ip.run_line_magic("xmode", mode)
    try:
        with capture_output() as shown:
            outcome = ip.run_cell(f"%%experiment {line}\nCapital of France?")
    finally:
        ip.run_line_magic("xmode", "Context")
    assert not outcome.success and words in str(outcome.error_in_exec)
    assert len(shown.stdout.strip().splitlines()) == 1, shown.stdout
    assert gateway.requests == [] and KEY not in shown.stdout
    assert ip.run_cell("1 + 1").success  # the next cell works
