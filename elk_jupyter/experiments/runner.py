"""Runs an experiment: each run, and each judge call, on the one run path (``conversation.run``:
replayed from this kernel, the notebook's records or the cache, or sent by ``sender`` with bounded
concurrency and one shared backoff), then scored.

Only the runs that are missing are sent: a re-run resumes an interrupted experiment, and failed
runs are kept as failed unless ``retry_failed``. The budget is checked on the runs still to send,
before the first request.
"""

from __future__ import annotations

import concurrent.futures as futures
import dataclasses
import os
import threading
import time
from dataclasses import dataclass

from elk_jupyter.conversation import run as runs
from elk_jupyter.conversation.identity import Identity, Where, strict_canonical
from elk_jupyter.conversation.kernel import KernelState
from elk_jupyter.conversation.options import non_finite
from elk_jupyter.errors import ConfigError, ElkError, unexpected
from elk_jupyter.experiments import budget, templates
from elk_jupyter.experiments.finished import Finished, keep_late
from elk_jupyter.experiments.results import ExperimentResult, RunResult
from elk_jupyter.experiments.scorers import Sample, Score, Scorer
from elk_jupyter.experiments.sender import Sender
from elk_jupyter.experiments.spec import RunSpec, Spec
from elk_jupyter.gateway.client import Client
from elk_jupyter.gateway.dialects import dialect
from elk_jupyter.gateway.reply import Reply
from elk_jupyter.gateway.usage import Usage


class ExperimentInterrupted(ElkError):
    """The kernel was interrupted: ``result`` holds the finished runs (kept for a re-run to resume)."""

    def __init__(self, message: str, result: ExperimentResult):
        super().__init__(message)
        self.result = result


PROGRESS_EVERY = 0.1  # seconds between partial results handed to the progress callback


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
    identity: Identity  # the body, and where: the case and the repeat
    kept: RunResult | None = None  # this kernel's run, its reply scored again with other scorers

    @property
    def body(self) -> dict:
        return self.identity.body

    @property
    def key(self) -> str:
        return self.identity.key


class Runner:
    def __init__(
        self, spec: Spec, scorers: list[Scorer], client: Client, state: KernelState, options: Options, namespace=None
    ):
        self.spec, self.scorers, self.client, self.options = spec, scorers, client, options
        self.replays = state.replays
        # What this kernel already ran of this experiment against this gateway and account.
        self.kept = state.finished_runs(client.cache_scope(), spec.id)
        self.namespace = namespace
        self._stop = threading.Event()
        self.speaker = dialect(spec.endpoint)
        self.sender = Sender(
            client, spec.endpoint, options.max_attempts, options.max_retry_after, self._stop, options.concurrency
        )
        self.judge_model = options.judge_model or spec.models[0]
        self._judge_locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()

    def run(self, on_progress=None) -> ExperimentResult:
        with self.replays.batched():  # cache writes off the workers' path, one transaction a batch
            return self._run(on_progress)

    def _run(self, on_progress=None) -> ExperimentResult:
        planned = self._plan()
        kept = self.kept
        names = [s.name for s in self.scorers]
        done, todo = self._partition(planned, kept, names)
        if self.options.replay != "off":  # one read of the cache for every run to send, not one per run
            self.replays.prefetch(i.identity for i in todo if i.kept is None)
        self._check_budget(todo)

        def result() -> ExperimentResult:
            return ExperimentResult(self.spec, [done[i] for i in sorted(done)], names, len(planned))

        if on_progress is not None:
            on_progress(result())
        pool = futures.ThreadPoolExecutor(max_workers=max(1, self.options.concurrency))
        finished = Finished(len(todo))
        pending = {}
        for item in todo:
            future = pool.submit(self._one, item)
            pending[future] = item
            future.add_done_callback(finished.add)
        shown = time.monotonic()
        wait = PROGRESS_EVERY if on_progress is not None else 0.2  # an interrupt gets through within 0.2 s
        try:
            while pending:
                for future in finished.take(wait):
                    item = pending.pop(future)
                    done[item.index] = kept[item.key] = future.result()
                # a partial result costs O(runs): built a bounded number of times a second, not per run
                if on_progress is not None and pending and time.monotonic() - shown >= PROGRESS_EVERY:
                    shown = time.monotonic()
                    on_progress(result())
        except BaseException as err:  # an interrupt, or any failure: stop at once, keep what finished
            self._stop.set()
            pool.shutdown(wait=False, cancel_futures=True)  # pending runs never start: nothing more is billed
            keep_late(pending, kept)
            raise stopped(err, result()) from None
        pool.shutdown(wait=False)  # every run is done: its idle threads end on their own (joining them cost ~1.5 ms)
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
                item.kept = previous  # other scorers now: score the same reply again
                todo.append(item)
            elif previous is not None and (previous.ok or not self.options.retry_failed):
                done[item.index] = previous
            else:
                todo.append(item)
        return done, todo

    def _plan(self) -> list[_Planned]:
        host, scope = self.client.host, self.client.cache_scope()
        return [_Planned(index, run, self._identity(run, host, scope)) for index, run in enumerate(self.spec.runs())]

    def _identity(self, run: RunSpec, host: str | None, scope: str) -> Identity:
        """A run's replay identity: its exact body, redacted (``${expr}`` may quote the key), strict JSON."""
        asked = templates.body(self.spec, run, self.namespace)
        # For speed (the plan is all before the first request): the body's canonical JSON, written
        # once in C, serves the key scan, the NaN check and the replay keys. A body that is not
        # strict JSON, or was cut, is checked as it always was: the walk names the bad field.
        written = strict_canonical(asked)
        body, cut = self.client.guard(asked, written)
        where = Where(case=run.case, repeat=run.repeat)
        if written is not None and not cut:
            return Identity.written(body, written, host, scope, where)
        bad = non_finite(body)
        if bad is not None:
            raise ConfigError(f"{bad}: JSON cannot carry NaN or Infinity (nothing was sent)")
        return Identity(body, host, scope, where)

    def _check_budget(self, todo: list[_Planned]) -> None:
        mode = self.options.replay
        if self.options.budget is None or mode == "only":  # nothing to check: no replay look-up per run
            return
        live = [i.body for i in todo if i.kept is None and self.replays.decide(mode, i.identity).recorded is None]
        if live:
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
        reply, replayed, sent = self._reply(item)
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
            scores = {scorer.name: self._score(scorer, sample) for scorer in self.scorers}
        return RunResult(
            item.run.case,
            item.run.column,
            item.run.repeat,
            item.key,
            item.body,
            reply.to_dict(),
            self.client.host,
            replayed,
            scores,
            tuple(judged),
            cost,
            sent,
        )

    def _score(self, scorer: Scorer, sample: Sample) -> Score:
        """The scorer's score, its reason redacted: an error or a reason of the user's may quote the key."""
        score = scorer(sample)
        reason = self.client.redact(score.reason)
        return score if reason == score.reason else dataclasses.replace(score, reason=reason)

    def _reply(self, item: _Planned) -> tuple[Reply, bool, bool]:
        """(the run's reply, whether it was replayed, whether it was sent or replayed at all): kept
        from this kernel, or on the run path."""
        if item.kept is not None:  # as it came the first time: a live run stays billed once in the totals
            return Reply.from_dict(item.kept.reply, item.body), item.kept.replayed, item.kept.sent
        try:
            ran = runs.run(
                self.replays,
                item.identity,
                self.options.replay,
                self._send,
                refusal="replay is 'only' and this run was never recorded: set replay='auto' to send it",
            )
        except runs.NotRecorded as err:  # a run that cannot be served is a failed run, not a failed experiment
            reply = Reply(self.spec.endpoint, item.body)
            reply.fail("error", err.message)
            return reply, False, False
        return ran.reply, ran.replayed, True

    def _send(self, body: dict) -> tuple[Reply, None]:
        if self._stop.is_set():  # interrupted: what is still queued is not sent
            reply = Reply(self.spec.endpoint, body)
            reply.fail("error", "the experiment was interrupted before this run was sent")
            return reply, None
        return self.sender.send(body), None

    def _judge(self, prompt: str, model: str | None, cap: int, judged: list) -> str:
        params = self.speaker.fields({"temperature": 0, "max_tokens": cap}, "max_tokens")
        request = templates.request(self.spec.endpoint, prompt, model or self.judge_model, None, params)
        request = self.client.guard(request)[0]  # the judge prompt quotes the case and the output
        identity = Identity(request, self.client.host, self.client.cache_scope())  # a verdict: named by its prompt
        with self._locks_lock:
            lock = self._judge_locks.setdefault(identity.key, threading.Lock())
        with lock:  # the same verdict asked by two workers at once (repeats with one output) is sent once
            refusal = "replay is 'only' and this judge call was never recorded"
            ran = runs.run(self.replays, identity, self.options.replay, self._send, refusal=refusal)
        reply = ran.reply  # the same verdict for two repeats is sent once: the totals bill it once
        cost = self._cost(request["model"], reply.usage)
        judged.append(
            {"key": identity.key, "request": request, "reply": reply.to_dict(), "replayed": ran.replayed, "cost": cost}
        )
        if not reply.ok:
            raise ElkError(f"the judge failed: {reply.error}")
        return reply.text

    def _cost(self, model: str, usage) -> float | None:
        price = (self.options.prices or {}).get(model)
        if not isinstance(price, dict):  # no price: the usage need not be read
            return None
        numbers = Usage.of(usage)
        if not numbers.known:
            return None
        return ((numbers.prompt or 0) * price["input"] + (numbers.completion or 0) * price["output"]) / 1e6
