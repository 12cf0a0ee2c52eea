"""The experiment statistics against independent computations: scipy and published tables."""

from __future__ import annotations

import math
import random

import pytest
import scipy.special
import scipy.stats
from hypothesis import given
from hypothesis import strategies as st

from elk_jupyter.experiments import statistics as stats
from elk_jupyter.experiments.results import ExperimentResult, RunResult
from elk_jupyter.experiments.scorers import Score
from elk_jupyter.experiments.spec import build

# Newcombe (1998), "Two-sided confidence intervals for the single proportion", Stat Med 17:857-872,
# Table II, method 3 (Wilson score interval without continuity correction), 95%.
NEWCOMBE = [
    ((81, 263), (0.2553, 0.3662)),
    ((15, 148), (0.0624, 0.1605)),
    ((0, 20), (0.0, 0.1611)),
    ((1, 29), (0.0061, 0.1718)),
]


@pytest.mark.parametrize(("counts", "published"), NEWCOMBE)
def test_wilson_matches_newcombes_published_table(counts, published):
    low, high = stats.wilson(*counts)
    assert (round(low, 4), round(high, 4)) == published


@given(st.integers(1, 400).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_matches_scipy(counts):
    successes, n = counts
    expected = scipy.stats.binomtest(successes, n).proportion_ci(0.95, method="wilson")
    low, high = stats.wilson(successes, n)
    assert low == pytest.approx(expected.low, abs=1e-9) and high == pytest.approx(expected.high, abs=1e-9)


def test_wilson_of_nothing_is_none():
    assert stats.wilson(0, 0) is None


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_bootstrap_interval_agrees_with_scipy_and_is_reproducible(seed):
    rng = random.Random(seed)
    values = [rng.choice([0.0, 0.25, 0.5, 1.0]) for _ in range(40)]
    mine = stats.bootstrap_interval(values)
    assert mine == stats.bootstrap_interval(values)  # seeded: the same runs, the same interval
    theirs = scipy.stats.bootstrap(
        (values,), lambda x, axis: x.mean(axis=axis), method="percentile", n_resamples=20000, random_state=seed
    ).confidence_interval
    # Monte Carlo error of a percentile endpoint from 2000 resamples is about 0.01 here
    assert mine[0] == pytest.approx(theirs.low, abs=0.035) and mine[1] == pytest.approx(theirs.high, abs=0.035)


def test_bootstrap_of_constant_and_large_samples():
    assert stats.bootstrap_interval([0.5] * 7) == (0.5, 0.5)
    assert stats.bootstrap_interval([]) is None
    rng = random.Random(4)
    big = [rng.random() for _ in range(stats.NORMAL_FROM * 2)]
    sem = scipy.stats.sem(big)
    low, high = stats.bootstrap_interval(big)
    mean = sum(big) / len(big)
    z = scipy.stats.norm.ppf(0.975)
    assert low == pytest.approx(mean - z * sem) and high == pytest.approx(mean + z * sem)


@given(st.integers(1, 60).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(1, n))))
def test_pass_at_k_is_chens_estimator(nck):
    n, c, k = nck
    expected = 1 - scipy.special.comb(n - c, k, exact=True) / scipy.special.comb(n, k, exact=True)
    assert stats.pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


@given(st.integers(1, 60).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(1, n))))
def test_pass_hat_k_is_tau_bench(nck):
    n, c, k = nck
    expected = scipy.special.comb(c, k, exact=True) / scipy.special.comb(n, k, exact=True)
    assert stats.pass_hat_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_hat_k_at_n_is_all_pass_and_pass_at_1_is_the_rate():
    assert stats.pass_hat_k(5, 5, 5) == 1.0 and stats.pass_hat_k(5, 4, 5) == 0.0
    assert stats.pass_at_k(4, 1, 1) == pytest.approx(0.25) == stats.pass_hat_k(4, 1, 1)
    with pytest.raises(ValueError):
        stats.pass_at_k(2, 1, 3)


@given(st.integers(0, 40).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_exact_binomial_matches_scipy(counts):
    k, n = counts
    expected = scipy.stats.binomtest(k, n, 0.5).pvalue if n else 1.0
    assert stats.binomial_two_sided(k, n) == pytest.approx(expected, rel=1e-9)


def test_minimum_pairs_is_computed_from_the_exact_test():
    assert stats.minimum_pairs(0.05) == 6  # 2/2^5 = 0.0625, 2/2^6 = 0.031
    assert stats.minimum_pairs(0.01) == 8  # 2/2^7 = 0.0156, 2/2^8 = 0.0078
    m = stats.minimum_pairs(0.05)
    assert scipy.stats.binomtest(m, m).pvalue < 0.05 <= scipy.stats.binomtest(m - 1, m - 1).pvalue


def test_mcnemar_on_a_two_by_two_table_matches_scipy():
    # one repeat: 11 cases pass in A only, 3 in B only, 20 agree
    rates = [(1.0, 0.0)] * 11 + [(0.0, 1.0)] * 3 + [(1.0, 1.0)] * 12 + [(0.0, 0.0)] * 8
    test = stats.mcnemar(rates)
    assert test.p_value == pytest.approx(scipy.stats.binomtest(11, 14, 0.5).pvalue)
    assert test.effect == pytest.approx((11 - 3) / 34)
    assert (test.a_better, test.b_better, test.cases) == (11, 3, 34)
    assert test.verdict == "no_difference"  # p = 0.057


def test_too_few_cases_to_tell():
    test = stats.mcnemar([(1.0, 0.0), (1.0, 0.0), (0.0, 1.0)])
    assert test.p_value is None and test.verdict == "too_few"
    assert "too few cases to tell" in test.text() and "at least 6" in test.text()


def test_paired_bootstrap_interval_matches_scipy():
    rng = random.Random(7)
    pairs = [(rng.random(), rng.random() * 0.8) for _ in range(30)]
    test = stats.paired_bootstrap(pairs)
    differences = [a - b for a, b in pairs]
    theirs = scipy.stats.bootstrap(
        (differences,), lambda x, axis: x.mean(axis=axis), method="percentile", n_resamples=20000, random_state=7
    ).confidence_interval
    assert test.low == pytest.approx(theirs.low, abs=0.03) and test.high == pytest.approx(theirs.high, abs=0.03)
    assert test.effect == pytest.approx(sum(differences) / 30)
    # the p-value against a t-test on the same differences: both small, or both not
    assert (test.p_value < 0.05) == (scipy.stats.ttest_1samp(differences, 0).pvalue < 0.05)


def test_paired_bootstrap_of_equal_columns_shows_no_difference():
    rng = random.Random(8)
    pairs = [(v + 0.01 * rng.choice([-1, 1]), v) for v in (rng.random() for _ in range(40))]
    assert stats.paired_bootstrap(pairs).verdict == "no_difference"


def _result(cases: int, repeats: int, rate_a: float, rate_b: float, seed: int = 0) -> ExperimentResult:
    spec = build("q $n", [{"n": i} for i in range(cases)], ["a", "b"], None, repeats, "chat", None, "t")
    rng = random.Random(seed)
    runs = []
    for run in spec.runs():
        passed = rng.random() < (rate_a if run.column.model == "a" else rate_b)
        reply = {"status": "completed", "text": "x"}
        score = {"s": Score(float(passed), passed)}
        runs.append(RunResult(run.case, run.column, run.repeat, f"{run}", {}, reply, scores=score))
    return ExperimentResult(spec, runs, ["s"])


def test_summary_data_agrees_with_the_formulas():
    result = _result(12, 3, 0.8, 0.3)
    data = result.summary_data()
    first = data["columns"][0]
    runs = [r for r in result.runs if r.column.model == "a"]
    passed = sum(bool(r.passed) for r in runs)
    expected = scipy.stats.binomtest(passed, len(runs)).proportion_ci(method="wilson")
    assert first["pass_rate"]["low"] == pytest.approx(expected.low)
    per_case = [[r.passed for r in runs if r.case == c] for c in range(12)]
    for k in (1, 2, 3):
        hat = sum(math.comb(sum(p), k) / math.comb(3, k) for p in per_case) / 12
        assert first["pass_hat_k"][str(k)] == pytest.approx(hat)
        at = sum(1 - math.comb(3 - sum(p), k) / math.comb(3, k) for p in per_case) / 12
        assert first["pass_at_k"][str(k)] == pytest.approx(at)
    assert data["comparisons"][0]["a"] == 0 and data["comparisons"][0]["pass"]["verdict"] in ("a_better", "too_few")
    assert result.summary_data() == data  # reproducible
    live = result.summary_data(intervals=False)
    assert live["comparisons"] == [] and live["columns"][0]["mean_score"]["low"] is None


def test_compare_by_model_and_label():
    result = _result(3, 1, 1.0, 0.0)
    text = str(result.compare("a", "b"))
    assert "too few cases to tell" in text and "A = a" in text
    assert result.compare(0, 1).to_dict() == result.compare("a", 1).to_dict()


def _shuffled(cases: list[dict], passes: dict[str, bool], name: str) -> ExperimentResult:
    """One column, model "a", over ``cases`` (in the order given): each passes as ``passes`` says."""
    spec = build("q $n", cases, ["a"], None, 1, "chat", None, name)
    runs = []
    for run in spec.runs():
        passed = passes[spec.cases[run.case]["n"]]
        scores = {"s": Score(float(passed), passed)}
        runs.append(RunResult(run.case, run.column, 0, f"{name}{run}", {}, {"status": "completed"}, scores=scores))
    return ExperimentResult(spec, runs, ["s"])


def test_diff_pairs_two_experiments_by_case_fields_and_tests_them_like_scipy():
    names = [f"c{i}" for i in range(30)]
    before = {n: i % 3 != 0 for i, n in enumerate(names)}  # 20 of 30 pass
    after = {n: True for n in names}  # every case passes now: 10 discordant cases, all for B
    first = _shuffled([{"n": n} for n in names[:28]], before, "before")  # c28, c29: only in the second
    second = _shuffled([{"n": n} for n in reversed(names[2:])], after, "after")  # c0, c1: only in the first
    shown = first.diff(second)
    shared = names[2:28]
    discordant = sum(not before[n] for n in shared)
    expected = scipy.stats.binomtest(0, discordant, 0.5).pvalue
    test = shown.comparison["pass"]
    assert (shown.comparison["cases"], test["a_better"], test["b_better"]) == (len(shared), 0, discordant)
    assert test["p_value"] == pytest.approx(expected) and test["verdict"] == "b_better"
    assert test["effect"] == pytest.approx(-discordant / len(shared))
    view = shown._repr_mimebundle_()[0]["application/vnd.elk-jupyter.experiment.v1+json"]
    assert view["comparison"] == shown.comparison and view["between"][0] == {"a": 0, "b": 1, **shown.comparison}
    assert "exact McNemar" in shown.plain_text() and "B is better" in shown.markdown()


def test_diff_of_three_shared_cases_is_too_few_to_tell():
    names = ["x", "y", "z"]
    first = _shuffled([{"n": n} for n in names], dict.fromkeys(names, False), "one")
    second = _shuffled([{"n": n} for n in names], dict.fromkeys(names, True), "two")
    shown = first.diff(second)
    assert shown.comparison["pass"]["verdict"] == "too_few" and shown.comparison["pass"]["p_value"] is None
    assert "too few cases to tell" in shown.plain_text()


def _graded(cases: int, repeats: int, outcome) -> ExperimentResult:
    """Columns "a" and "b": ``outcome(model, case, repeat)`` is a (score, passed) pair, or None for a
    run whose request failed (as the runner keeps it: its reply's status, no scores)."""
    spec = build("q $n", [{"n": i} for i in range(cases)], ["a", "b"], None, repeats, "chat", None, "t")
    runs = []
    for run in spec.runs():
        found = outcome(run.column.model, run.case, run.repeat)
        if found is None:
            reply, scores = {"status": "failed", "error": "HTTP 500"}, {}
        else:
            reply, scores = {"status": "completed", "text": "x"}, {"s": Score(*found)}
        runs.append(RunResult(run.case, run.column, run.repeat, f"{run}", {}, reply, scores=scores))
    return ExperimentResult(spec, runs, ["s"])


def test_the_sign_test_verdict_names_the_side_that_wins_more_cases():
    # 5 repeats: A passes 2 of 5 where B passes 1 of 5 (15 cases), B passes 5 of 5 where A passes none
    # (4 cases): A wins 15 cases, B 4, while the mean pass-rate difference is -1/19
    def outcome(model, case, repeat):
        wins = (2 if model == "a" else 1) if case < 15 else (0 if model == "a" else 5)
        return (1.0, True) if repeat < wins else (0.0, False)

    test = _graded(19, 5, outcome).compare("a", "b").passing
    assert (test.a_better, test.b_better) == (15, 4) and test.effect == pytest.approx(-1 / 19)
    assert test.p_value == pytest.approx(scipy.stats.binomtest(15, 19, 0.5).pvalue)  # 0.019
    assert test.verdict == "a_better"  # the test rejected "each side wins half the cases" for A, not B


def test_identical_differences_over_many_cases_are_a_difference():
    # from NORMAL_FROM cases on the score test is a normal limit; every case differing by the same
    # amount has no spread, and the sign test is then the evidence: all 150 cases for A
    result = _graded(150, 1, lambda model, case, repeat: (1.0, True) if model == "a" else (0.5, False))
    test = result.compare("a", "b").scoring
    assert test.effect == pytest.approx(0.5) and test.verdict == "a_better"
    assert test.p_value == pytest.approx(scipy.stats.binomtest(150, 150, 0.5).pvalue)


def test_the_mean_score_is_the_per_case_mean_its_interval_is_about():
    # cases 0-2 score 1 in all 3 repeats; cases 3-29 have two failed requests and one 0: a mean over
    # runs (9/36) would weigh the cases without errors three times and sit outside the interval
    def outcome(model, case, repeat):
        if case < 3:
            return (1.0, True)
        return None if repeat < 2 else (0.0, False)

    column = _graded(30, 3, outcome).summary_data()["columns"][0]
    score = column["mean_score"]
    assert score["value"] == pytest.approx(3 / 30) and score["low"] <= score["value"] <= score["high"]
    per_case = [1.0] * 3 + [0.0] * 27
    theirs = scipy.stats.bootstrap(
        (per_case,), lambda x, axis: x.mean(axis=axis), method="percentile", n_resamples=20000, random_state=1
    ).confidence_interval
    assert score["low"] == pytest.approx(theirs.low, abs=0.035) and score["high"] == pytest.approx(
        theirs.high, abs=0.035
    )


def test_a_failed_request_is_no_pass_rate_without_scorers_and_a_fail_with_them(gateway, tmp_path, monkeypatch):
    from elk_jupyter import Client, experiment
    from elk_jupyter.conversation.kernel import KernelState
    from elk_jupyter.experiments import contains

    monkeypatch.setenv("ELK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("ELK_REPLAY", raising=False)
    client = Client("sk-statistics-test-1", base_url=gateway.base_url, model="m1")
    failed = {"status": 500, "error_body": {"error": {"message": "boom"}}, "headers": {"x-should-retry": "false"}}
    cases = [{"n": 0}, {"n": 1}, {"n": 2}]
    gateway.plan(**failed)
    bare = experiment("$n", cases, client=client, concurrency=1, progress=False, state=KernelState())
    column = bare.summary_data()["columns"][0]
    assert bare.errors == 1 and column["errors"] == 1
    # docs/experiments-data.md: pass_rate is null without scorers (it was 0% [0%, 79%] over the failed run)
    assert column["pass_rate"] is None and column["pass_at_k"] == {} and column["pass_hat_k"] == {}
    assert "pass rate –" in repr(bare)
    gateway.plan(**failed)
    scored = experiment(
        "$n", cases, scorers=[contains("")], client=client, concurrency=1, progress=False, state=KernelState()
    )
    rate = scored.summary_data()["columns"][0]["pass_rate"]
    assert (rate["passed"], rate["n"]) == (2, 3)  # with scorers a failed request is a failed run
