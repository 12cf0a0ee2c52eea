"""Runs an experiment: each run replayed (this kernel, the notebook's records, the cache) or sent
(``sender``: bounded concurrency, one shared backoff), then scored.

Only the runs that are missing are sent: a re-run resumes an interrupted experiment, and failed
runs are kept as failed unless ``retry_failed``. The budget is checked on the runs still to send,
before the first request.
"""

from __future__ import annotations

import concurrent.futures as futures
import os
import queue
import threading
import time
from dataclasses import dataclass

from elk_jupyter.conversation.options import non_finite
from elk_jupyter.errors import ConfigError, ElkError, unexpected
from elk_jupyter.experiments import budget, templates
from elk_jupyter.experiments.results import ExperimentResult, RunResult
from elk_jupyter.experiments.scorers import Sample, Scorer
from elk_jupyter.experiments.sender import Sender
from elk_jupyter.experiments.spec import RunSpec, Spec
from elk_jupyter.experiments.writes import CacheWrites
from elk_jupyter.gateway.client import Client
from elk_jupyter.gateway.dialects import dialect
from elk_jupyter.gateway.reply import Reply
from elk_jupyter.gateway.usage import Usage

PROGRESS_EVERY = 0.1  # seconds between partial results handed to the progress callback

# spec id -> run key -> result: what this kernel already ran, so a re-run resumes instead of resending.
FINISHED: dict[str, dict[str, RunResult]] = {}


class ExperimentInterrupted(ElkError):
    """The kernel was interrupted: ``result`` holds the finished runs (kept for a re-run to resume)."""

    def __init__(self, message: str, result: ExperimentResult):
        super().__init__(message)
        self.result = result


def _drain(finishing: queue.SimpleQueue) -> list:
    """The futures that finished: waits up to 0.2 s for one (so an interrupt gets through), then takes all."""
    try:
        found = [finishing.get(timeout=0.2)]
    except queue.Empty:
        return []
    while True:
        try:
            found.append(finishing.get_nowait())
        except queue.Empty:
            return found


class ExperimentFailed(ExperimentInterrupted):
    """A failure stopped the experiment: the pool was shut down, ``result`` holds the finished runs."""


def stopped(err: BaseException, partial: ExperimentResult) -> ExperimentInterrupted:
    """The one-line error of an experiment stopped by ``err``, holding its finished runs."""
    kept = (
        f"{len(partial.runs)} of {partial.total} runs finished and are kept; "
        f"re-run the cell to send only the {partial.missing} missing"
    )
    if isinstance(err, KeyboardInterrupt):
        return ExperimentInterrupted(f"interrupted: {kept}", partial)
    reason = str(err) if isinstance(err, ElkError) else str(unexpected(err, os.environ.get("ELK_API_KEY")))
    return ExperimentFailed(f"the experiment stopped: {reason}; {kept}", partial)


@dataclass(frozen=True)
class Options:
    concurrency: int = 4
    prices: dict | None = None
    budget: float | None = None
    completion_estimate: int = 1024  # assumed completion tokens of a run whose body sets no cap
    replay: str = "auto"
    retry_failed: bool = False
    judge_model: str | None = None
    max_attempts: int = 4
    max_retry_after: float = 60.0


@dataclass
class _Planned:
    index: int
    run: RunSpec
    body: dict
    key: str
    cache_key: str
    recorded: dict | None = None


class Runner:
    def __init__(self, spec: Spec, scorers: list[Scorer], client: Client, replays, options: Options, namespace=None):
        self.spec, self.scorers, self.client, self.replays, self.options = spec, scorers, client, replays, options
        self.namespace = namespace
        self._stop = threading.Event()
        self.speaker = dialect(spec.endpoint)
        self.sender = Sender(client, spec.endpoint, options.max_attempts, options.max_retry_after, self._stop)
        self.writes = CacheWrites(replays)
        self.judge_model = options.judge_model or spec.models[0]
        self._judge_locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()

    def run(self, on_progress=None) -> ExperimentResult:
        planned = self._plan()
        kept = FINISHED.setdefault(self.spec.id, {})
        names = [s.name for s in self.scorers]
        done, todo = self._partition(planned, kept, names)
        self._check_budget(todo)

        def result() -> ExperimentResult:
            return ExperimentResult(self.spec, [done[i] for i in sorted(done)], names, len(planned))

        if on_progress is not None:
            on_progress(result())
        pool = futures.ThreadPoolExecutor(max_workers=max(1, self.options.concurrency))
        finishing: queue.SimpleQueue = queue.SimpleQueue()  # futures as they finish: no scan of the pending
        pending = {}
        for item in todo:
            future = pool.submit(self._one, item)
            pending[future] = item
            future.add_done_callback(finishing.put)
        shown = time.monotonic()
        try:
            while pending:
                for future in _drain(finishing):
                    item = pending.pop(future)
                    done[item.index] = kept[item.key] = future.result()
                # the partial result costs O(runs): built a bounded number of times a second, not per run
                if on_progress is not None and pending and time.monotonic() - shown >= PROGRESS_EVERY:
                    shown = time.monotonic()
                    on_progress(result())
        except BaseException as err:  # an interrupt, or any failure: stop at once, keep what finished
            self._stop.set()
            pool.shutdown(wait=False, cancel_futures=True)  # pending runs never start: nothing more is billed
            raise stopped(err, result()) from None
        finally:
            self.writes.close()  # what was sent is in the cache, whatever happened
        pool.shutdown(wait=True)
        final = result()
        if on_progress is not None and todo:
            on_progress(final)
        return final

    # -- planning
    def _partition(self, planned: list, kept: dict, names: list[str]) -> tuple[dict[int, RunResult], list]:
        """(what this kernel already has, what is still to run): a re-run resumes."""
        done, todo = {}, []
        for item in planned:
            previous = kept.get(item.key) if self.options.replay != "off" else None
            if previous is not None and previous.ok and sorted(previous.scores) != sorted(names):
                item.recorded = previous.reply  # other scorers now: score the same reply again
                todo.append(item)
            elif previous is not None and (previous.ok or not self.options.retry_failed):
                done[item.index] = previous
            else:
                todo.append(item)
        return done, todo

    def _plan(self) -> list[_Planned]:
        host, scope = self.client.host, self.client.cache_scope()
        planned = []
        for index, run in enumerate(self.spec.runs()):
            body = templates.body(self.spec, run, self.namespace)
            bad = non_finite(body)
            if bad is not None:
                raise ConfigError(f"{bad}: JSON cannot carry NaN or Infinity (nothing was sent)")
            item = _Planned(
                index, run, body, templates.run_key(body, run.repeat, host), templates.run_key(body, run.repeat, scope)
            )
            planned.append(item)
        return planned

    def _check_budget(self, todo: list[_Planned]) -> None:
        for item in todo:  # the one replay policy; nothing calls answered(), so a re-run resumes
            if item.recorded is None:
                item.recorded = self.replays.decide(self.options.replay, item.key, item.cache_key).recorded
        live = [item.body for item in todo if item.recorded is None]
        if self.options.budget is not None and live and self.options.replay != "only":
            judges = [s for s in self.scorers if s.judge]
            budget.check(
                self.speaker,
                live,
                judges,
                self.judge_model,
                self.options.prices or {},
                self.options.budget,
                self.options.completion_estimate,
            )

    # -- one run
    def _one(self, item: _Planned) -> RunResult:
        endpoint = self.spec.endpoint
        if item.recorded is not None:
            reply = Reply.from_dict(item.recorded, item.body)
        elif self.options.replay == "only" or self._stop.is_set():
            reply = Reply(endpoint, item.body)
            reply.fail("error", "replay is 'only' and this run was never recorded: set replay='auto' to send it")
        else:
            reply = self.sender.send(item.body)
            if reply.ok:
                self.writes.put(item.key, self.client.host, item.body, reply.to_dict(), item.cache_key)
        cost = self._cost(item.run.column.model, reply.usage)
        judged: list[dict] = []
        scores = {}
        if reply.ok:
            sample = Sample(
                reply.text,
                self.spec.cases[item.run.case],
                reply.total,
                cost,
                lambda prompt, model, cap: self._judge(prompt, model, cap, judged),
            )
            scores = {scorer.name: scorer(sample) for scorer in self.scorers}
        return RunResult(
            item.run.case,
            item.run.column,
            item.run.repeat,
            item.key,
            item.body,
            reply.to_dict(),
            self.client.host,
            item.recorded is not None,
            scores,
            tuple(judged),
            cost,
        )

    def _judge(self, prompt: str, model: str | None, cap: int, judged: list) -> str:
        params = self.speaker.fields({"temperature": 0, "max_tokens": cap}, "max_tokens")
        request = templates.request(self.spec.endpoint, prompt, model or self.judge_model, None, params)
        host, scope = self.client.host, self.client.cache_scope()
        key, cache_key = templates.run_key(request, 0, host), templates.run_key(request, 0, scope)
        with self._locks_lock:
            lock = self._judge_locks.setdefault(key, threading.Lock())
        with lock:  # the same verdict asked by two workers at once (repeats with one output) is sent once
            decision = self.replays.decide(self.options.replay, key, cache_key)
            if decision.recorded is not None:
                reply = Reply.from_dict(decision.recorded, request)
            elif decision.refused:
                raise ElkError("replay is 'only' and this judge call was never recorded")
            elif self._stop.is_set():
                raise ElkError("the experiment was stopped before this judge call was sent")
            else:
                reply = self.sender.send(request)
                if reply.ok:
                    self.writes.put(key, host, request, reply.to_dict(), cache_key)
        judged.append({"key": key, "request": request, "reply": reply.to_dict()})
        if not reply.ok:
            raise ElkError(f"the judge failed: {reply.error}")
        return reply.text

    def _cost(self, model: str, usage) -> float | None:
        price = (self.options.prices or {}).get(model)
        numbers = Usage.of(usage)
        if not isinstance(price, dict) or not numbers.known:
            return None
        return ((numbers.prompt or 0) * price["input"] + (numbers.completion or 0) * price["output"]) / 1e6
