"""Runs an experiment: each run replayed (this kernel, the notebook's records, the cache) or sent,
with bounded concurrency and one backoff shared by every worker, then scored.

Only the runs that are missing are sent: a re-run resumes an interrupted experiment, and failed
runs are kept as failed unless ``retry_failed``. A 429 (or a 5xx asking to retry) pauses *all*
workers until its ``Retry-After``: each worker retrying on its own turns one slowdown into a
thundering herd (https://platform.openai.com/docs/guides/rate-limits#retrying-with-exponential-backoff).
"""

from __future__ import annotations

import concurrent.futures as futures
import threading
import time
from dataclasses import dataclass

from elk_jupyter.client import Client, collect
from elk_jupyter.errors import APIError, ConfigError, ElkError, unexpected
from elk_jupyter.options import non_finite
from elk_jupyter.reply import Reply
from elk_jupyter.usage import Usage

from . import budget, templates
from .results import ExperimentResult, RunResult
from .scorers import Sample, Scorer
from .spec import RunSpec, Spec

# spec id -> run key -> result: what this kernel already ran, so a re-run resumes instead of resending.
FINISHED: dict[str, dict[str, RunResult]] = {}
RETRY_STATUSES = frozenset({429, 502, 503, 504})


class ExperimentInterrupted(ElkError):
    """The kernel was interrupted: ``result`` holds the finished runs (kept for a re-run to resume)."""

    def __init__(self, message: str, result: ExperimentResult):
        super().__init__(message)
        self.result = result


class Backoff:
    """One pause for every worker of an experiment."""

    def __init__(self) -> None:
        self._until = 0.0
        self._lock = threading.Lock()
        self.pauses = 0  # how many slow-downs were asked for (for the bench and the summary)

    def wait(self) -> None:
        while (left := self._until - time.monotonic()) > 0:
            time.sleep(min(left, 0.25))

    def slow_down(self, seconds: float) -> None:
        with self._lock:
            self.pauses += 1
            self._until = max(self._until, time.monotonic() + seconds)


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
        self.backoff = Backoff()
        self.judge_model = options.judge_model or spec.models[0]
        self._local = threading.local()
        self._stop = threading.Event()
        self._judge_locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()

    def run(self, on_progress=None) -> ExperimentResult:
        planned = self._plan()
        kept = FINISHED.setdefault(self.spec.id, {})
        done: dict[int, RunResult] = {}
        todo = []
        names = [s.name for s in self.scorers]
        for item in planned:
            previous = kept.get(item.key) if self.options.replay != "off" else None
            if previous is not None and previous.ok and sorted(previous.scores) != sorted(names):
                item.recorded = previous.reply  # other scorers now: score the same reply again
                todo.append(item)
            elif previous is not None and (previous.ok or not self.options.retry_failed):
                done[item.index] = previous
            else:
                todo.append(item)
        self._check_budget(todo)

        def result() -> ExperimentResult:
            return ExperimentResult(self.spec, [done[i] for i in sorted(done)], names, len(planned))

        if on_progress is not None:
            on_progress(result())
        pool = futures.ThreadPoolExecutor(max_workers=max(1, self.options.concurrency))
        pending = {pool.submit(self._one, item): item for item in todo}
        try:
            while pending:
                finished, _ = futures.wait(pending, timeout=0.2, return_when=futures.FIRST_COMPLETED)
                for future in finished:
                    item = pending.pop(future)
                    done[item.index] = kept[item.key] = future.result()
                if finished and on_progress is not None:
                    on_progress(result())
        except KeyboardInterrupt:
            self._stop.set()
            pool.shutdown(wait=False, cancel_futures=True)
            partial = result()
            raise ExperimentInterrupted(
                f"interrupted: {len(partial.runs)} of {partial.total} runs finished and are kept; "
                f"re-run the cell to send only the {partial.missing} missing",
                partial,
            ) from None
        pool.shutdown(wait=True)
        return result()

    # -- planning
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
        if self.options.replay != "off":
            for item in todo:
                item.recorded = item.recorded or self.replays.lookup(item.key, item.cache_key)
        live = [item.body for item in todo if item.recorded is None]
        if self.options.budget is not None and live and self.options.replay != "only":
            judges = [s for s in self.scorers if s.judge]
            budget.check(
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
            reply = self._send(item.body)
            if reply.ok:
                self.replays.store(item.key, self.client.host, item.body, reply.to_dict(), item.cache_key)
        cost = self._cost(item.run.column.model, reply.usage)
        judged: list[dict] = []
        scores = {}
        if reply.ok:
            sample = Sample(
                reply.text, self.spec.cases[item.run.case], reply.total, cost, lambda body: self._judge(body, judged)
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

    def _judge(self, request: dict, judged: list) -> str:
        request = {**request, "model": request.get("model") or self.judge_model}
        host, scope = self.client.host, self.client.cache_scope()
        key, cache_key = templates.run_key(request, 0, host), templates.run_key(request, 0, scope)
        with self._locks_lock:
            lock = self._judge_locks.setdefault(key, threading.Lock())
        with lock:  # the same verdict asked by two workers at once (repeats with one output) is sent once
            recorded = self.replays.lookup(key, cache_key) if self.options.replay != "off" else None
            if recorded is not None:
                reply = Reply.from_dict(recorded, request)
            elif self.options.replay == "only":
                raise ElkError("replay is 'only' and this judge call was never recorded")
            else:
                reply = self._send(request)
                if reply.ok:
                    self.replays.store(key, host, request, reply.to_dict(), cache_key)
        judged.append({"key": key, "request": request, "reply": reply.to_dict()})
        if not reply.ok:
            raise ElkError(f"the judge failed: {reply.error}")
        return reply.text

    def _send(self, body: dict) -> Reply:
        """Send one request; a retryable status pauses every worker, then this one tries again."""
        client = self._thread_client()
        error: ElkError | None = None
        for attempt in range(1, self.options.max_attempts + 1):
            self.backoff.wait()
            reply = Reply(self.spec.endpoint, body)
            try:
                collect(client.iter_send(self.spec.endpoint, body), reply)
                return reply
            except APIError as err:
                error = err
                delay = err.retry_after if err.retry_after is not None else 0.5 * 2 ** (attempt - 1)
                retry = err.status in RETRY_STATUSES and not reply.text and delay <= self.options.max_retry_after
                if retry and attempt < self.options.max_attempts and not self._stop.is_set():
                    self.backoff.slow_down(delay)
                    continue
            except ElkError as err:
                error = err
            except Exception as err:  # a bug or a library's surprise: this run fails, the others go on
                error = unexpected(err, client.api_key())
            break
        if reply.status == "streaming":
            reply.fail("error", error.message if error else "failed")
        return reply

    def _thread_client(self) -> Client:
        """A client (an HTTP session) per worker thread; its own retries are off: the backoff is shared."""
        if not hasattr(self._local, "client"):
            base = self.client
            self._local.client = Client(
                base._api_key,
                base_url=base.base_url,
                model=base.model,
                api_key_env=base.api_key_env,
                timeout=base.timeout,
                max_retries=0,
            )
        return self._local.client

    def _cost(self, model: str, usage) -> float | None:
        price = (self.options.prices or {}).get(model)
        numbers = Usage.of(usage)
        if not isinstance(price, dict) or not numbers.known:
            return None
        return ((numbers.prompt or 0) * price["input"] + (numbers.completion or 0) * price["output"]) / 1e6
