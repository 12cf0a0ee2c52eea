"""What an experiment is: templates × cases × models × a parameter grid × repeats, and its runs. Pure.

Cases come from a list of dicts, a pandas DataFrame (anything with ``to_dict("records")``), or a
CSV / JSONL path. Grid keys that the experiment itself sets (the model, the stream, the prompt)
are refused with one line, before anything is sent: the old ``sweep()`` crashed on them with a
raw ``TypeError``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from elk_jupyter.conversation.options import field_path
from elk_jupyter.errors import ConfigError
from elk_jupyter.experiments import cases as case_files
from elk_jupyter.gateway.dialects import NAMES as ENDPOINTS

# Fields the experiment writes itself: a grid value for them would be overwritten or break the body.
RESERVED = frozenset(
    {"model", "stream", "stream_options", "messages", "input", "instructions", "previous_response_id", "elk_repeat"}
)


def case_identity(case: dict) -> str:
    """How two experiments' cases are matched (a diff): by their fields, in any order or file."""
    return json.dumps(case, sort_keys=True, default=str)


@dataclass(frozen=True)
class Column:
    """One column of the matrix: a template with a model and one combination of the grid."""

    template: int
    model: str
    params: tuple  # sorted (name, canonical JSON of the value) pairs: hashable whatever the value

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.template, self.model, self.params)))

    def __hash__(self) -> int:  # a column keys every run's lookup in a redraw: hashed once
        return self._hash

    @classmethod
    def of(cls, template: int, model: str, params: dict) -> Column:
        return cls(template, model, tuple(sorted((k, json.dumps(v, sort_keys=True)) for k, v in params.items())))

    @property
    def param_dict(self) -> dict:
        return {name: json.loads(value) for name, value in self.params}

    def label(self, templates: int) -> str:
        parts = [f"prompt {self.template + 1}"] if templates > 1 else []
        parts.append(self.model)
        parts += [f"{name}={value}" for name, value in self.params]
        return " · ".join(parts)


@dataclass(frozen=True)
class RunSpec:
    """One request of the experiment: a case in a column, one repeat."""

    case: int
    column: Column
    repeat: int


@dataclass(frozen=True)
class Spec:
    name: str
    templates: tuple[str, ...]
    cases: tuple[dict, ...]
    models: tuple[str, ...]
    grid: tuple = ()  # sorted (name, values) pairs
    repeats: int = 1
    endpoint: str = "chat"
    system: str | None = None
    columns: tuple[Column, ...] = field(init=False)

    def __post_init__(self) -> None:
        names = [name for name, _ in self.grid]
        combos = [dict(zip(names, values, strict=True)) for values in itertools.product(*(v for _, v in self.grid))]
        columns = tuple(
            Column.of(t, m, combo) for t in range(len(self.templates)) for m in self.models for combo in combos
        )
        object.__setattr__(self, "columns", columns)

    def runs(self) -> list[RunSpec]:
        """Every run, column by column, case by case, repeat by repeat."""
        return [
            RunSpec(case, column, repeat)
            for column in self.columns
            for case in range(len(self.cases))
            for repeat in range(self.repeats)
        ]

    @property
    def id(self) -> str:
        """A content hash: the same experiment in another kernel has the same id."""
        data = {
            "templates": self.templates,
            "cases": self.cases,
            "models": self.models,
            "grid": self.grid,
            "repeats": self.repeats,
            "endpoint": self.endpoint,
            "system": self.system,
        }
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "templates": list(self.templates),
            "cases": list(self.cases),
            "models": list(self.models),
            "grid": {name: list(values) for name, values in self.grid},
            "repeats": self.repeats,
            "endpoint": self.endpoint,
            "system": self.system,
        }


def build(
    templates, cases, models, grid: dict | None, repeats: int, endpoint: str, system: str | None, name: str | None
) -> Spec:
    """A checked Spec, or a ConfigError saying what to change."""
    templates = (templates,) if isinstance(templates, str) else tuple(templates)
    if not templates or not all(isinstance(t, str) and t.strip() for t in templates):
        raise ConfigError("an experiment needs at least one non-empty prompt template")
    if endpoint not in ENDPOINTS:
        raise ConfigError(f"endpoint must be one of {', '.join(map(repr, ENDPOINTS))}, not {endpoint!r}")
    if not isinstance(repeats, int) or isinstance(repeats, bool) or repeats < 1:
        raise ConfigError(f"repeats must be a whole number >= 1, not {repeats!r}")
    models = (models,) if isinstance(models, str) else tuple(models)
    if not models:
        raise ConfigError("an experiment needs at least one model")
    if not all(isinstance(m, str) and m.strip() for m in models):
        raise ConfigError(f"models must be model names, not {list(models)!r:.80}")
    twice = next((m for n, m in enumerate(models) if m in models[:n]), None)
    if twice is not None:  # two identical columns: the same requests twice, as two columns
        raise ConfigError(f"models names {twice!r} twice: one column per model (repeats=N asks again)")
    checked = check_grid(grid or {})
    rows = load_cases(cases)
    label = name or f"experiment-{hashlib.sha256(repr(templates).encode()).hexdigest()[:6]}"
    return Spec(label, templates, rows, models, checked, repeats, endpoint, system)


def with_params(grid: dict | None, params: dict | None) -> dict:
    """The grid with each fixed field a one-value entry (``experiment(params=...)``, ``-p``)."""
    if params is not None and not isinstance(params, dict):
        raise ConfigError(f"params must be a dict of field -> value, not {type(params).__name__}")
    if grid is not None and not isinstance(grid, dict):
        raise ConfigError(f"the grid must be a dict of field -> list of values, not {type(grid).__name__}")
    return {**(grid or {}), **{name: [value] for name, value in (params or {}).items()}}


def check_grid(grid: dict) -> tuple:
    """The grid as sorted (name, values) pairs; reserved and credential keys refused."""
    if not isinstance(grid, dict):
        raise ConfigError(f"the grid must be a dict of field -> list of values, not {type(grid).__name__}")
    pairs = []
    for name in sorted(grid):
        if not isinstance(name, str):
            raise ConfigError(f"grid key {name!r} is not a field name")
        if name.split(".")[0] in RESERVED:
            raise ConfigError(
                f"grid key {name!r} is set by the experiment itself: "
                + ("use models=[...] to compare models" if name == "model" else "it cannot be varied")
            )
        try:
            field_path(name)  # the one -p rule: dotted names nest, credentials are refused
        except ValueError as err:
            why = "an empty part" if "empty part" in str(err) else "the API key comes from the environment only"
            raise ConfigError(f"grid key {name!r}: {why}") from None
        values = grid[name]
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            raise ConfigError(f"grid key {name!r} needs a list of values, got {values!r}")
        values = tuple(_plain(v) for v in values)
        if not values:
            raise ConfigError(f"grid key {name!r} has no values")
        try:  # a value is sent and names its column as JSON: a set or an object would fail mid-way
            json.dumps(values)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"grid key {name!r}: a value JSON cannot carry ({err})") from None
        pairs.append((name, values))
    return tuple(pairs)


def load_cases(cases) -> tuple[dict, ...]:
    """Test cases as dicts: from a list of dicts, a DataFrame, or a .csv / .jsonl path (None: one empty case)."""
    if cases is None:
        return ({},)
    if isinstance(cases, (str, os.PathLike)):
        rows = case_files.read(Path(cases))
    elif hasattr(cases, "to_frame") and not hasattr(cases, "columns"):  # duck-typed: pandas is not imported
        raise ConfigError("the cases are a pandas Series (one column): pass series.to_frame('name') or a DataFrame")
    elif hasattr(cases, "to_dicts") and hasattr(cases, "columns"):
        rows = cases.to_dicts()  # a polars DataFrame
    elif hasattr(cases, "to_dict") and hasattr(cases, "columns"):
        rows = cases.to_dict("records")  # a pandas DataFrame
    elif isinstance(cases, dict):
        rows = [cases]
    elif hasattr(cases, "__iter__"):
        rows = list(cases)
    else:
        raise ConfigError(
            f"cases must be a list of dicts, a DataFrame or a .csv/.jsonl path, not {type(cases).__name__}"
        )
    if not rows:
        raise ConfigError("the experiment has no cases")
    found = []
    for number, row in enumerate(rows):
        if not isinstance(row, dict) or not all(isinstance(k, str) for k in row):
            raise ConfigError(f"case {number} is not a dict with string keys: {row!r:.80}")
        try:
            found.append({name: case_files.json_value(value) for name, value in row.items()})
        except ConfigError as err:
            raise ConfigError(f"case {number}: {err}") from None
    return tuple(found)


def check_limits(concurrency, budget, completion_estimate) -> None:
    """The run options a user types, refused in one line when they cannot mean anything."""
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ConfigError(f"concurrency must be a whole number >= 1, not {concurrency!r}")
    if budget is not None and (
        isinstance(budget, bool) or not isinstance(budget, (int, float)) or not math.isfinite(budget) or budget < 0
    ):
        raise ConfigError(f"budget must be a finite number of USD >= 0, not {budget!r}")
    if isinstance(completion_estimate, bool) or not isinstance(completion_estimate, int) or completion_estimate < 1:
        raise ConfigError(f"completion_estimate must be a whole number of tokens >= 1, not {completion_estimate!r}")


def _plain(value):
    """A numpy value as its Python one (``-g seed=@seeds`` of ``np.arange(3)``: int64 is no int)."""
    if type(value).__module__ == "numpy" and callable(getattr(value, "tolist", None)):
        return value.tolist()  # duck-typed: numpy is not imported
    return value
