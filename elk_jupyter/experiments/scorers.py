"""Scorers: what a run's output is checked against. Each returns a Score (a value in [0, 1], pass or not).

A scorer is called with a ``Sample`` (the output, the case, latency, cost, and ``judge`` for a
model-graded rubric). Any callable ``(output, case) -> bool | float`` is a scorer too. A scorer
that raises scores 0 with the error as its reason: a user's bug fails a cell, not the experiment.
The judge's request and reply are recorded with the run, and replayed like any other request.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from elk_jupyter.errors import ConfigError


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
    fields: tuple = ()  # the case fields it reads (``$field``): checked against the cases before any request

    def __call__(self, sample: Sample) -> Score:
        """Never raises: an exception or a value that is not a score fails this run, with the reason."""
        try:
            return _as_score(self.check(sample), self.pass_at)
        except Exception as err:  # the user's scorer, their schema, or a judge that failed
            return Score(0.0, False, f"{type(err).__name__}: {err}"[:300])


class UnusableScore(TypeError):
    """A scorer returned something that is neither a bool, a number nor a Score."""


def _as_score(result, pass_at: float) -> Score:
    """Any bool-like or number-like value as a Score, duck-typed: numpy's ``bool_`` (what
    ``np.isclose`` returns), ``int64``, ``float32`` and 0-d arrays work with no numpy import."""
    if isinstance(result, Score):  # the scorer's own Score: held to the same rules as a bare value
        if not _bool_like(result.passed):
            raise UnusableScore(f"Score.passed is {type(result.passed).__name__}: use True or False")
        reason = result.reason if isinstance(result.reason, str) else str(result.reason or "")
        return Score(_finite(result.value), bool(result.passed), reason[:REASON_CHARS])
    if isinstance(result, tuple) and len(result) == 2:  # (value, reason)
        score = _as_score(result[0], pass_at)
        return Score(score.value, score.passed, str(result[1])[:REASON_CHARS])
    if result is None:
        raise UnusableScore("the scorer returned None: return a bool, a number or a Score")
    if _bool_like(result):
        passed = bool(result)
        return Score(1.0 if passed else 0.0, passed)
    value = _finite(result)
    return Score(value, value >= pass_at)


def _bool_like(value) -> bool:
    return isinstance(value, bool) or getattr(getattr(value, "dtype", None), "kind", None) == "b"


def _finite(value) -> float:
    """A score's number: int, float, Decimal, Fraction, numpy scalars (a larger array raises)."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__float__"):
        raise UnusableScore(f"the scorer returned {type(value).__name__}: return a bool, a number or a Score")
    number = float(value)
    if not math.isfinite(number):
        raise UnusableScore(f"the scorer returned {number}: a score must be a finite number")
    return number


def scorer(value, name: str | None = None) -> Scorer:
    """``value`` as a Scorer: a Scorer stays itself; a callable ``(output, case)`` is wrapped."""
    if isinstance(value, Scorer):
        return value
    if callable(value):
        label = name or getattr(value, "__name__", None) or type(value).__name__
        return Scorer(label, lambda sample: value(sample.output, sample.case), pass_at=0.5)
    raise ConfigError(f"not a scorer: {value!r:.60} (use a Scorer, or a function (output, case) -> bool | float)")


def _field(template: str, case: dict) -> str:
    """``expected`` may name a case field with ``$field``: the case's value is used (``$$`` is a
    literal ``$``). A case without the field fails the run with that reason, never compares the
    literal text (every run would fail with no reason)."""
    name = _field_name(template)
    if name is None:
        return template[1:] if template.startswith("$$") else template
    if name not in case:
        raise KeyError(f"this case has no field {name!r}")
    return str(case[name])


def _field_name(template: str) -> str | None:
    """The field ``$name`` or ``${name}`` names (templates write both), or None for plain text."""
    if template.startswith("$") and not template.startswith("$$") and len(template) > 1:
        braced = _BRACED.fullmatch(template)
        return braced.group(1) if braced else template[1:]
    return None


_BRACED = re.compile(r"\$\{\s*([^{}]*?)\s*\}")


def _fields(*templates: str) -> tuple:
    return tuple(name for name in map(_field_name, templates) if name is not None)


def check_fields(scorers: list[Scorer], cases) -> None:
    """A scorer's ``$field`` that no case has is a typo: one line before any request is sent."""
    known = {name for case in cases for name in case}
    for item in scorers:
        for name in item.fields:
            if name not in known:
                close = difflib.get_close_matches(name, sorted(known), n=1)
                hint = f" (did you mean ${close[0]}?)" if close else f" (the cases have: {', '.join(sorted(known))})"
                raise ConfigError(f"scorer {item.name}: no case has the field {name!r}{hint}"[:300])


def equals(expected: str, *, strip: bool = True) -> Scorer:
    def check(s: Sample) -> bool:
        want = _field(expected, s.case)
        return (s.output.strip() == want.strip()) if strip else s.output == want

    return Scorer(f"equals({expected!r})", check, fields=_fields(expected))


def contains(needle: str) -> Scorer:
    return Scorer(f"contains({needle!r})", lambda s: _field(needle, s.case) in s.output, fields=_fields(needle))


def icontains(needle: str) -> Scorer:
    return Scorer(
        f"icontains({needle!r})",
        lambda s: _field(needle, s.case).casefold() in s.output.casefold(),
        fields=_fields(needle),
    )


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
REASON_CHARS = 2000  # of the judge's reply kept as the score's reason (the whole reply is in the run's record)
# "SCORE: 0.8", "**Score**: 4/5", "score = 75%": the judge's explicit verdict comes first.
_SCORE = re.compile(
    r"(?i)\bscore\b[\s*_]*[:=][\s*_]*(\d+(?:\.\d+)?|\.\d+)(?:\s*(?:/|out of)\s*(\d+(?:\.\d+)?)|\s*(%))?"
)
_WORD = re.compile(r"(?i)\b(pass(?:es|ed)?|fail(?:s|ed)?)\b")
# A pass/fail word right after one of these is negated ("does not pass", "didn't fail"): skipped.
_NEGATION = re.compile(r"(?i)(?:\bnot|n't|\bnever|\bno|\bnor|\bcannot|\bwithout)\W+(?:\w+\W+)?$")


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
    """(score, reasoning) from a judge's reply: the last ``SCORE:`` line first (in [0, 1], ``x/y`` or
    ``%``); else its pass/fail words that no negation comes just before, when they agree; else a
    ValueError (the run fails with the judge's words as the reason)."""
    answer = answer or ""
    reason = answer.strip()[:REASON_CHARS]
    scores = list(_SCORE.finditer(answer))
    if scores:
        number, out_of, percent = scores[-1].groups()
        scale = float(out_of) if out_of else 100.0 if percent else 1.0
        value = float(number) / scale if scale else math.inf
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"the judge's score {scores[-1].group(0)!r} is not between 0 and 1")
        return value, reason
    words = [m for m in _WORD.finditer(answer) if not _NEGATION.search(answer[max(0, m.start() - 40) : m.start()])]
    if not words:
        raise ValueError(f"the judge gave no SCORE: {answer[:80]!r}")
    said = {m.group(1).lower().startswith("pass") for m in words}
    if len(said) > 1:  # "it fails to pass": which word wins is a guess, and a guess must not pass a run
        raise ValueError(f"the judge gave no SCORE and says both pass and fail: {answer[:80]!r}")
    return (1.0 if said.pop() else 0.0), reason
