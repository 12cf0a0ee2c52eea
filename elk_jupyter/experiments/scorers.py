"""Scorers: what a run's output is checked against. Each returns a Score (a value in [0, 1], pass or not).

A scorer is called with a ``Sample`` (the output, the case, latency, cost, and ``judge`` for a
model-graded rubric). Any callable ``(output, case) -> bool | float`` is a scorer too. A scorer
that raises scores 0 with the error as its reason: a user's bug fails a cell, not the experiment.
The judge's request and reply are recorded with the run, and replayed like any other request.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Score:
    value: float
    passed: bool
    reason: str = ""

    def to_dict(self) -> dict:
        return {"value": self.value, "passed": self.passed, "reason": self.reason}

    @classmethod
    def from_dict(cls, data: Mapping) -> Score:
        return cls(float(data.get("value") or 0.0), bool(data.get("passed")), str(data.get("reason") or ""))


@dataclass
class Sample:
    """What a scorer sees of one finished run."""

    output: str
    case: dict
    latency: float | None = None
    cost: float | None = None
    # (prompt, judge model or None for the experiment's, max tokens) -> the judge's reply text; the
    # runner sends it on the experiment's endpoint, in that endpoint's dialect
    judge: Callable[[str, str | None, int], str] | None = None


@dataclass(frozen=True)
class Scorer:
    name: str
    check: Callable[[Sample], object]
    pass_at: float = 1.0  # a float result passes at or above this
    judge: bool = False  # model-graded: one judge request per run (counted in the budget)
    judge_cap: int = 256  # the judge's max tokens (the endpoint's own cap field)

    def __call__(self, sample: Sample) -> Score:
        try:
            result = self.check(sample)
        except Exception as err:  # the user's scorer or their schema: its error is the reason
            return Score(0.0, False, f"{type(err).__name__}: {err}"[:200])
        return _as_score(result, self.pass_at)


def _as_score(result, pass_at: float) -> Score:
    if isinstance(result, Score):
        return result
    if isinstance(result, bool) or result is None:
        return Score(1.0 if result else 0.0, bool(result))
    if isinstance(result, (int, float)):
        value = float(result)
        return Score(value, value >= pass_at)
    if isinstance(result, tuple) and len(result) == 2:  # (value, reason)
        score = _as_score(result[0], pass_at)
        return Score(score.value, score.passed, str(result[1]))
    raise TypeError(f"a scorer returned {type(result).__name__}; return a bool, a number or a Score")


def scorer(value, name: str | None = None) -> Scorer:
    """``value`` as a Scorer: a Scorer stays itself; a callable ``(output, case)`` is wrapped."""
    if isinstance(value, Scorer):
        return value
    if callable(value):
        label = name or getattr(value, "__name__", None) or type(value).__name__
        return Scorer(label, lambda sample: value(sample.output, sample.case), pass_at=0.5)
    raise TypeError(f"not a scorer: {value!r:.60}")


def _field(template: str, case: dict) -> str:
    """``expected`` may name a case field with ``$field``: the case's value is used."""
    if template.startswith("$") and template[1:] in case:
        return str(case[template[1:]])
    return template


def equals(expected: str, *, strip: bool = True) -> Scorer:
    def check(s: Sample) -> bool:
        want = _field(expected, s.case)
        return (s.output.strip() == want.strip()) if strip else s.output == want

    return Scorer(f"equals({expected!r})", check)


def contains(needle: str) -> Scorer:
    return Scorer(f"contains({needle!r})", lambda s: _field(needle, s.case) in s.output)


def icontains(needle: str) -> Scorer:
    return Scorer(f"icontains({needle!r})", lambda s: _field(needle, s.case).casefold() in s.output.casefold())


def regex(pattern: str, flags: int = 0) -> Scorer:
    compiled = re.compile(pattern, flags)
    return Scorer(f"regex({pattern!r})", lambda s: compiled.search(s.output) is not None)


def is_json() -> Scorer:
    def check(s: Sample):
        try:
            json.loads(s.output)
        except ValueError as err:
            return False, f"not JSON: {err}"
        return True

    return Scorer("is_json", check)


def json_schema(schema) -> Scorer:
    """The output parses as JSON and matches a dict JSON schema (jsonschema) or a pydantic model class."""
    validate = getattr(schema, "model_validate_json", None)
    if callable(validate):
        return Scorer(f"schema({schema.__name__})", lambda s: validate(s.output) is not None)
    if not isinstance(schema, Mapping):
        raise TypeError("json_schema needs a dict JSON schema or a pydantic model class")

    def check(s: Sample):
        import jsonschema  # a dependency of nbformat, which the notebook already has

        try:
            jsonschema.validate(json.loads(s.output), dict(schema))
        except ValueError as err:
            return False, f"not JSON: {err}"
        except jsonschema.ValidationError as err:
            return False, err.message[:200]
        return True

    return Scorer(f"schema({schema.get('title') or 'dict'})", check)


def latency_below(seconds: float) -> Scorer:
    return Scorer(f"latency<{seconds:g}s", lambda s: s.latency is not None and s.latency < seconds)


def cost_below(usd: float) -> Scorer:
    return Scorer(f"cost<${usd:g}", lambda s: s.cost is not None and s.cost < usd)


JUDGE_PROMPT = """You are grading an answer against a rubric.

Rubric: $rubric

Input: $case

Answer:
$output

Reply with one line: SCORE: <a number from 0 to 1>, then one short reason."""
JUDGE_CAP = 256  # tokens: a score and one short reason
_VERDICT = re.compile(r"(?i)score\s*[:=]\s*([01](?:\.\d+)?|\.\d+)|\b(pass|fail)\b")


def rubric(criteria: str, *, model: str | None = None, pass_at: float = 0.5, prompt: str = JUDGE_PROMPT) -> Scorer:
    """Model-graded: a judge model reads the rubric, the case and the output, and answers a score."""
    from elk_jupyter.conversation.options import interpolate

    def check(s: Sample):
        if s.judge is None:
            raise RuntimeError("no judge available")
        fields = {"rubric": criteria, "case": json.dumps(s.case, ensure_ascii=False, default=str), "output": s.output}
        text = interpolate(prompt, fields, lambda expr: fields[expr])
        # no model: the experiment's judge model (or its first model), chosen by the runner
        return verdict(s.judge(text, model, JUDGE_CAP))

    return Scorer(f"rubric({criteria[:30]!r})", check, pass_at=pass_at, judge=True, judge_cap=JUDGE_CAP)


def verdict(answer: str) -> tuple[float, str]:
    match = _VERDICT.search(answer or "")
    if match is None:
        raise ValueError(f"the judge gave no SCORE: {answer[:80]!r}")
    if match.group(2):
        value = 1.0 if match.group(2).lower() == "pass" else 0.0
    else:
        value = min(1.0, float(match.group(1)))
    return value, " ".join(answer.split())[:160]
