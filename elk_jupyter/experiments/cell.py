"""``%%experiment``: from parsed magic arguments to a run whose matrix fills in as runs finish.

IPython stays in the magics: they hand over ``display`` (``IPython.display.display``). The live
view is the same inert bundle as the saved one, updated in place (a few times a second) through a
display handle, so there is no widget to go stale in a saved notebook ("model not found") and the
last update, with every run's record in its metadata, is what the .ipynb keeps.
"""

from __future__ import annotations

import argparse
import builtins
import json
import keyword
import shlex
import sys
import time
from collections.abc import Callable, Mapping

from elk_jupyter import experiments
from elk_jupyter.conversation.options import parse_param
from elk_jupyter.conversation.settings import REPLAY_MODES
from elk_jupyter.errors import ConfigError, ElkError, detached
from elk_jupyter.experiments.redraw import RedrawMemo
from elk_jupyter.experiments.runner import ExperimentInterrupted
from elk_jupyter.experiments.spec import load_cases, with_params
from elk_jupyter.experiments.view import bundle, progress_line
from elk_jupyter.gateway.dialects import NAMES

UPDATES_PER_SECOND = 4
ARGUMENTS = (
    (
        ("--cases",),
        {"metavar": "VAR|PATH", "help": "test cases: a list of dicts or a DataFrame, or a .csv/.jsonl path"},
    ),
    (
        ("-m", "--model", "--models"),  # --models: the name experiment() gives it
        {"action": "append", "default": [], "help": "model id (repeatable, or comma-separated)"},
    ),
    (("--grid",), {"metavar": "VAR", "help": "a dict variable: request field -> list of values"}),
    (
        ("-g", "--vary"),
        {
            "action": "append",
            "default": [],
            "metavar": "FIELD=V1,V2",
            "help": "a grid field inline (repeatable): JSON values, a.b nests, FIELD=@VAR takes a list variable",
        },
    ),
    (("-p", "--param"), {"action": "append", "default": [], "metavar": "KEY=VALUE", "help": "a fixed request field"}),
    (("--repeats",), {"type": int, "default": 1, "help": "runs per cell of the matrix"}),
    (("--endpoint",), {"choices": NAMES, "default": "chat", "help": "which endpoint to call"}),
    (
        ("--score",),
        {
            "action": "append",
            "default": [],
            "metavar": "EXPR",
            "help": "a scorer, a list of them, or a call like 'icontains(\"$capital\")' (repeatable)",
        },
    ),
    (
        ("--case",),
        {
            "action": "append",
            "nargs": "+",
            "default": [],
            "metavar": "FIELD=VALUE",
            "help": "a one-off case from its fields (repeatable: one case each); added to --cases",
        },
    ),
    (("-s", "--system"), {"help": "system prompt (chat) or instructions (responses)"}),
    (("--name",), {"help": "the experiment's name (for the CLI's list and diff)"}),
    (("--judge",), {"metavar": "MODEL", "help": "judge model of rubric scorers (default: the first model)"}),
    (("--concurrency",), {"type": int, "default": 4, "help": "requests at once"}),
    (("--prices",), {"metavar": "VAR", "help": "a dict variable: model -> {input, output} USD per 1M tokens"}),
    (("--budget",), {"type": float, "help": "refuse to start if the worst case costs more (USD)"}),
    (("--replay",), {"choices": REPLAY_MODES, "help": "replay mode for this cell"}),
    (("--retry-failed",), {"action": "store_true", "help": "on a re-run, send the failed runs again"}),
    (("-o", "--output"), {"metavar": "NAME", "help": "store the ExperimentResult in NAME"}),
)


class BadLine(Exception):
    """A ``%%experiment`` line that cannot be parsed: the magics show it as IPython's UsageError."""


class _HelpShown(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage and exiting the kernel."""

    def error(self, message):
        raise BadLine(f"%%experiment: {message}; see %%experiment --help")

    def exit(self, status=0, message=None):
        raise _HelpShown  # only --help exits without an error


def _parser() -> _Parser:
    parser = _Parser(prog="%%experiment", description="The cell is the prompt template: $field, ${expr}.")
    for names, options in ARGUMENTS:
        parser.add_argument(*names, **options)
    return parser


def parse_line(line: str) -> argparse.Namespace | None:
    """The magic line's options (None after ``--help``, which prints them)."""
    try:
        return _parser().parse_args(shlex.split(line))
    except ValueError as err:  # unbalanced quotes
        raise BadLine(f"bad quoting in the magic line: {err}") from None
    except _HelpShown:
        return None


class LiveMatrix:
    """The matrix in a notebook output, refreshed as runs finish, then final with the records."""

    def __init__(self, display: Callable) -> None:
        self._display = display
        self.handle = None
        self._shown = 0.0
        self._memo = RedrawMemo()  # a redraw renders only the cells whose runs changed
        self._cost = 0.0  # seconds the last redraw took

    def update(self, result) -> None:
        now = time.monotonic()
        # A redraw costs time linear in runs: past a few thousand, wait longer between them, so
        # redrawing never takes more than a fifth of the experiment's time.
        wait = max(1 / UPDATES_PER_SECOND, 4 * self._cost)
        if self.handle is not None and result.missing and now - self._shown < wait:
            return
        self._shown = now
        data, _ = bundle(result, final=False, memo=self._memo)
        if self.handle is None:
            self.handle = self._display(data, raw=True, display_id=True)
        else:
            self.handle.update(data, raw=True)
        self._cost = time.monotonic() - now

    def finish(self, result) -> None:
        data, metadata = bundle(result, memo=self._memo)
        if self.handle is None:
            self._display(data, metadata=metadata, raw=True)
        else:
            self.handle.update(data, metadata=metadata, raw=True)


class TerminalMatrix(LiveMatrix):
    """Terminal IPython: one progress line, rewritten in place, then the table once."""

    def update(self, result) -> None:
        sys.stderr.write(progress_line(result) + ("" if result.missing else "\n"))
        sys.stderr.flush()

    def finish(self, result) -> None:
        data, metadata = bundle(result)
        self._display(data, metadata=metadata, raw=True)


def _variable(namespace: Mapping, name: str, option: str):
    if name not in namespace:
        raise ConfigError(f"{option}: variable {name!r} is not defined")
    return namespace[name]


def _scorer_scope() -> dict:
    """The built-in scorers, for ``--score`` expressions: the notebook's own names come first."""
    from elk_jupyter.experiments import scorers

    names = ("contains", "cost_below", "equals", "icontains", "is_json", "json_schema", "latency_below", "regex")
    return {"__builtins__": builtins, "rubric": scorers.rubric, **{n: getattr(scorers, n) for n in names}}


def _scorers(namespace: Mapping, expressions: list[str]) -> list:
    """Each ``--score EXPR`` evaluated in the notebook: a scorer, a list of them, or a call."""
    found = []
    for expr in expressions:
        named = expr.isidentifier() and not keyword.iskeyword(expr)  # None, True: values, not variables
        if named and expr not in namespace and expr not in _scorer_scope():
            raise ConfigError(f"--score: variable {expr!r} is not defined")
        # One dict as the globals: a lambda's or a comprehension's body looks names up there, not
        # in the locals, and must see the notebook's names (``lambda out, case: len(out) < limit``).
        scope = {**_scorer_scope(), **namespace}
        try:
            value = eval(expr, scope)  # noqa: S307 - the user's own notebook, as a cell would
        except SyntaxError as err:
            raise ConfigError(f"--score {expr!r}: not a Python expression ({err.msg})") from None
        except Exception as err:  # the user's expression failed: its error, in one line
            raise ConfigError(f"--score {expr!r}: {type(err).__name__}: {err}"[:300]) from None
        found += list(value) if isinstance(value, (list, tuple)) else [value]
    return found


def _values(item: str, namespace: Mapping) -> tuple[str, list]:
    """``-g FIELD=V1,V2``: the field's path through the one ``-p`` parser, and its values (JSON
    when the whole list parses as JSON, else each comma-separated value as ``-p`` reads it)."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"-g expects FIELD=V1,V2, got {item!r}")
    path, value = parse_param(f"{key}={raw}", namespace) if raw.startswith("@") else parse_param(f"{key}=0", {})
    if raw.startswith("@"):
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            raise ConfigError(f"-g {key}: {raw} is not a list of values")
        return ".".join(path), list(value)
    try:
        values = json.loads(f"[{raw}]")
    except ValueError:
        values = [parse_param(f"{key}={part}", namespace)[1] for part in raw.split(",")]
    return ".".join(path), values


def _grid(args, namespace: Mapping) -> dict:
    grid = with_params(_variable(namespace, args.grid, "--grid"), None) if args.grid else {}
    try:
        inline = [_values(item, namespace) for item in args.vary]
    except ValueError as err:  # the -p parser's words: name the option the user typed
        raise ConfigError(str(err).replace("--param", "-g")) from None
    try:
        fixed = [parse_param(item, namespace) for item in args.param]
    except ValueError as err:
        raise ConfigError(str(err)) from None
    for name, values in inline + [(".".join(path), [value]) for path, value in fixed]:
        if name in grid:  # the same field from --grid, -g and -p: which one was meant?
            raise ConfigError(f"{name!r} is given twice (in --grid, -g or -p): give it once")
        grid[name] = values  # a fixed field (-p) is a grid entry with one value
    return grid


def _cases(args, namespace: Mapping):
    """``--cases`` (a variable, else a .csv/.jsonl path), then each ``--case FIELD=VALUE ...``."""
    cases = args.cases
    if cases is not None and cases in namespace:
        cases = namespace[cases]
    elif cases is not None and cases.isidentifier():  # no suffix: a variable's name, mistyped or not run yet
        raise ConfigError(f"--cases: variable {cases!r} is not defined (a file needs its .csv or .jsonl suffix)")
    if not args.case:
        return cases
    extra = []
    for fields in args.case:
        case = {}
        for item in fields:
            try:
                path, value = parse_param(item, namespace)
            except ValueError as err:
                raise ConfigError(str(err).replace("--param", "--case")) from None
            case[".".join(path)] = value
        extra.append(case)
    return [*(load_cases(cases) if cases is not None else ()), *extra]


def run_cell(args, template: str, namespace: Mapping, display: Callable, in_kernel: bool, client=None, state=None):
    """Run the cell's experiment; the result is displayed and stored in ``-o NAME``."""
    cases = _cases(args, namespace)
    models = [m.strip() for item in args.model for m in item.split(",") if m.strip()] or None
    view = (LiveMatrix if in_kernel else TerminalMatrix)(display)
    try:
        result = experiments.experiment(
            template,
            cases,
            models,
            _grid(args, namespace),
            args.repeats,
            args.endpoint,
            scorers=_scorers(namespace, args.score),
            system=args.system,
            name=args.name,
            judge_model=args.judge,
            concurrency=args.concurrency,
            prices=_variable(namespace, args.prices, "--prices") if args.prices else None,
            budget=args.budget,
            replay=args.replay,
            retry_failed=args.retry_failed,
            namespace=namespace,
            client=client,
            progress=view.update,
            state=state,
        )
    except ExperimentInterrupted as err:
        view.finish(err.result)  # the finished runs are saved with the notebook too
        failure = detached(err)
    except ElkError as err:
        failure = detached(err)
    else:
        view.finish(result)
        if args.output:
            namespace[args.output] = result
        return result
    raise failure
