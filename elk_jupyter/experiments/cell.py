"""``%%experiment``: from parsed magic arguments to a run whose matrix fills in as runs finish.

IPython stays in the magics: they hand over ``display`` (``IPython.display.display``). The live
view is the same inert bundle as the saved one, updated in place (a few times a second) through a
display handle, so there is no widget to go stale in a saved notebook ("model not found") and the
last update, with every run's record in its metadata, is what the .ipynb keeps.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping

from elk_jupyter import experiments
from elk_jupyter.errors import ConfigError, ElkError, detached
from elk_jupyter.options import parse_param

from .runner import ExperimentInterrupted
from .view import bundle, progress_line

UPDATES_PER_SECOND = 4


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


def _grid(args, namespace: Mapping) -> dict:
    grid = dict(_variable(namespace, args.grid, "--grid")) if args.grid else {}
    for item in args.param:
        try:
            path, value = parse_param(item, namespace)
        except ValueError as err:
            raise ConfigError(str(err)) from None
        grid[".".join(path)] = [value]  # a fixed field: a grid entry with one value
    return grid


def run_cell(args, template: str, namespace: Mapping, display: Callable, in_kernel: bool, client=None):
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
