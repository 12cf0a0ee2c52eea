"""``%%experiment``: from parsed magic arguments to a run whose matrix fills in as runs finish.

IPython stays in the magics: they hand over ``display`` (``IPython.display.display``). The live
view is the same inert bundle as the saved one, updated in place (a few times a second) through a
display handle, so there is no widget to go stale in a saved notebook ("model not found") and the
last update, with every run's record in its metadata, is what the .ipynb keeps.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Callable, Mapping

from elk_jupyter import experiments
from elk_jupyter.conversation.options import parse_param
from elk_jupyter.conversation.settings import REPLAY_MODES
from elk_jupyter.errors import ConfigError, ElkError, detached
from elk_jupyter.experiments.runner import ExperimentInterrupted
from elk_jupyter.experiments.view import bundle, progress_line
from elk_jupyter.gateway.dialects import NAMES

UPDATES_PER_SECOND = 4
ARGUMENTS = (
    (
        ("--cases",),
        {"metavar": "VAR|PATH", "help": "test cases: a list of dicts or a DataFrame, or a .csv/.jsonl path"},
    ),
    (("-m", "--model"), {"action": "append", "default": [], "help": "model id (repeatable, or comma-separated)"}),
    (("--grid",), {"metavar": "VAR", "help": "a dict variable: request field -> list of values"}),
    (("-p", "--param"), {"action": "append", "default": [], "metavar": "KEY=VALUE", "help": "a fixed request field"}),
    (("--repeats",), {"type": int, "default": 1, "help": "runs per cell of the matrix"}),
    (("--endpoint",), {"choices": NAMES, "default": "chat", "help": "which endpoint to call"}),
    (("--score",), {"action": "append", "default": [], "metavar": "VAR", "help": "a scorer (or a list) variable"}),
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

    def update(self, result) -> None:
        now = time.monotonic()
        if self.handle is not None and result.missing and now - self._shown < 1 / UPDATES_PER_SECOND:
            return
        self._shown = now
        data, _ = bundle(result, final=False)
        if self.handle is None:
            self.handle = self._display(data, raw=True, display_id=True)
        else:
            self.handle.update(data, raw=True)

    def finish(self, result) -> None:
        data, metadata = bundle(result)
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


def _scorers(namespace: Mapping, names: list[str]) -> list:
    found = []
    for name in names:
        value = _variable(namespace, name, "--score")
        found += list(value) if isinstance(value, (list, tuple)) else [value]
    return found


def _params(args, namespace: Mapping) -> dict:
    """``-p`` as ``experiment(params=...)`` takes it: the one parser (``options.parse_param``), its
    dotted path kept as the field's name, nested when the body is built."""
    params = {}
    for item in args.param:
        try:
            path, value = parse_param(item, namespace)
        except ValueError as err:
            raise ConfigError(str(err)) from None
        params[".".join(path)] = value
    return params


def run_cell(args, template: str, namespace: Mapping, display: Callable, in_kernel: bool, client=None, state=None):
    """Run the cell's experiment; the result is displayed and stored in ``-o NAME``."""
    cases = args.cases
    if cases is not None and cases in namespace:
        cases = namespace[cases]  # else a .csv / .jsonl path
    models = [m.strip() for item in args.model for m in item.split(",") if m.strip()] or None
    view = (LiveMatrix if in_kernel else TerminalMatrix)(display)
    try:
        result = experiments.experiment(
            template,
            cases,
            models,
            _variable(namespace, args.grid, "--grid") if args.grid else None,
            args.repeats,
            args.endpoint,
            params=_params(args, namespace),
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
