"""The one run path and replay identity without a kernel: ``conversation.run`` for turns, experiment
runs and judges; where a request was asked (conversation and position, cell, case and repeat); every
record kept; the finished runs keyed by the cache's scope; the one ``-p`` rule; the one budget rule;
``sweep()`` as a thin ``experiment()``. A real gateway on 127.0.0.1 answers; nothing is patched.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from elk_jupyter import Client, experiment, sweep
from elk_jupyter.conversation.ask import Ask
from elk_jupyter.conversation.identity import Identity, Where, request_key, strict_canonical
from elk_jupyter.conversation.kernel import KernelState, recorded_turn
from elk_jupyter.conversation.settings import Settings
from elk_jupyter.conversation.turns import TurnRunner
from elk_jupyter.errors import ConfigError, ElkError
from elk_jupyter.experiments import budget
from elk_jupyter.gateway.dialects import dialect
from elk_jupyter.records.cache import Recorded, Replays
from elk_jupyter.records.cache_file import Cache
from tests.test_turns import Frontend

KEY = "sk-elk-run-path-7TQX"
PACKAGE = Path(__file__).resolve().parent.parent / "elk_jupyter"


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("ELK_API_KEY", KEY)
    monkeypatch.setenv("ELK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("ELK_REPLAY", raising=False)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)


def runner(gateway, tmp_path, replay: str = "auto", cache: str = "cache.sqlite3") -> TurnRunner:
    settings = Settings(base_url=gateway.base_url, model="fake-small", retries=0, replay=replay)
    return TurnRunner(lambda: settings, cache=Cache(tmp_path / cache))


def ask(prompt: str, conversation: str | None = None, cell: str | None = None, **fields) -> Ask:
    return Ask("chat", prompt, conversation=conversation, cell=(cell, None), **fields)


# -- one run path
def test_replay_then_send_then_store_is_written_once():
    """Only ``conversation/run.py`` stores a reply for replay or marks a request answered: every
    other caller (turns, experiment runs and judges, rerun, the chat panel) goes through it."""
    writers = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                receiver = ast.unparse(node.func.value)
                if node.func.attr in ("store", "answered") and receiver.endswith("replays"):
                    writers.add(path.relative_to(PACKAGE).as_posix())
    assert writers == {"conversation/run.py"}


# -- replay identity of a turn
def test_the_same_prompt_in_two_conversations_and_no_context_twice_each_replays_its_own(gateway, tmp_path):
    for text in ("in x", "in y", "first alone", "second alone"):
        gateway.plan(text=text)
    live = runner(gateway, tmp_path)
    asks = [
        ask("Hi", "x"),
        ask("Hi", "y"),
        ask("Alone?", no_context=True),
        ask("Alone?", no_context=True),
    ]
    outcomes = [live.run(a, Frontend()) for a in asks]
    assert [o.reply.text for o in outcomes] == ["in x", "in y", "first alone", "second alone"]
    assert [o.turn.position for o in outcomes] == [0, 0, 0, 1]
    gateway.close()  # offline from here: a new kernel with the records only (a fresh cache)
    frozen = runner(gateway, tmp_path, replay="only", cache="fresh.sqlite3")
    frozen.state.index_turns(o.turn for o in outcomes)
    again = [frozen.run(a, Frontend()) for a in asks]
    assert [o.reply.text for o in again] == ["in x", "in y", "first alone", "second alone"]
    assert all(o.turn.replayed for o in again)


def test_the_cache_keeps_them_apart_too(gateway, tmp_path):
    gateway.plan(text="in x")
    gateway.plan(text="in y")
    live = runner(gateway, tmp_path)
    live.run(ask("Hi", "x"), Frontend())
    assert live.run(ask("Hi", "y"), Frontend()).reply.text == "in y"  # not x's answer, replayed
    frozen = runner(gateway, tmp_path, replay="only")  # the same cache file, a new kernel
    assert [frozen.run(ask("Hi", c), Frontend()).reply.text for c in "xy"] == ["in x", "in y"]


def test_the_same_cell_first_then_the_same_place_and_old_records_still_replay(tmp_path):
    body = {"model": "m", "messages": [{"role": "user", "content": "Hi"}]}
    replays = Replays(Cache(tmp_path / "c.sqlite3"))
    replays.remember(Recorded(Identity(body, "h", where=Where("default", 0, "cell-a")), {"text": "a"}))
    replays.remember(Recorded(Identity(body, "h", where=Where("default", 0, "cell-b")), {"text": "b"}))
    assert replays.lookup(Identity(body, "h", where=Where("default", 0, "cell-b"))) == {"text": "b"}
    assert replays.lookup(Identity(body, "h", where=Where("default", 0, "cell-a"))) == {"text": "a"}
    # a cell the records do not know (ids regenerated), at the same place: that place's record
    assert replays.lookup(Identity(body, "h", where=Where("default", 0, "cell-c"))) == {"text": "a"}
    assert replays.lookup(Identity(body, "h", where=Where("default", 1, "cell-c"))) is None
    assert replays.lookup(Identity(body, "h", where=Where("other", 0))) is None
    assert len(replays.recorded[Identity(body, "h").body_key]) == 2  # every record, not the first
    old = Replays(Cache(tmp_path / "old.sqlite3"))  # a record v2 without position: its cell, or anywhere
    old.remember(Recorded(Identity(body, "h", where=Where(cell="cell-a")), {"text": "old"}))
    assert old.lookup(Identity(body, "h", where=Where("default", 0, "cell-a"))) == {"text": "old"}
    assert old.lookup(Identity(body, "h", where=Where("default", 3))) == {"text": "old"}
    assert old.lookup(Identity(body, "h", where=Where("default", 0, "cell-z"))) == {"text": "old"}


def test_a_record_without_position_replays_from_an_old_notebook(gateway, tmp_path):
    gateway.plan(text="recorded long ago")
    live = runner(gateway, tmp_path)
    turn = live.run(ask("Hi"), Frontend()).turn
    old = turn.__class__.from_dict({k: v for k, v in turn.to_dict().items() if k != "position"})
    assert old.position is None and recorded_turn(old).identity.where == Where()
    frozen = runner(gateway, tmp_path, replay="only", cache="fresh.sqlite3")
    frozen.state.index_turns([old])
    assert frozen.run(ask("Hi"), Frontend()).reply.text == "recorded long ago"


def test_turns_run_from_worker_threads_at_once(gateway, tmp_path):
    """The chat panel calls ``TurnRunner.run`` from a worker thread while cells run: each turn
    joins its own conversation, whole."""
    import threading

    live, found = runner(gateway, tmp_path), {}

    def chat(name: str) -> None:
        for n in range(3):
            found.setdefault(name, []).append(live.run(ask(f"{name} {n}", name), Frontend()).reply.text)

    workers = [threading.Thread(target=chat, args=(name,)) for name in ("panel", "cell")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert found == {name: [f"echo: {name} {n}" for n in range(3)] for name in ("panel", "cell")}
    for name in ("panel", "cell"):
        conversation = live.conversations.conversation(name)
        assert [t.position for t in conversation.turns] == [0, 1, 2] and len(conversation.active) == 3


# -- experiments: where is the case and the repeat; finished runs by scope; one -p; one budget
def test_two_cases_rendering_the_same_prompt_keep_their_own_samples(gateway, tmp_path):
    for n in range(4):
        gateway.plan(text=f"sample {n + 1}")
    cases = [{"q": "same"}, {"q": "same"}]
    client = Client(KEY, base_url=gateway.base_url, model="m1")
    state = KernelState(cache=Cache(tmp_path / "c.sqlite3"))
    first = experiment("Say $q", cases, client=client, concurrency=1, progress=False, state=state)
    assert [r.text for r in first.runs] == ["sample 1", "sample 2"]
    rerun = experiment("Say $q", cases, client=client, concurrency=1, progress=False, state=state)
    assert [r.text for r in rerun.runs] == ["sample 1", "sample 2"] and len(gateway.requests) == 2
    gateway.close()
    offline = KernelState(cache=Cache(tmp_path / "c.sqlite3"))  # a new kernel: only the cache answers
    again = experiment("Say $q", cases, client=client, replay="only", progress=False, state=offline)
    assert [r.text for r in again.runs] == ["sample 1", "sample 2"] and all(r.replayed for r in again.runs)


def test_finished_runs_are_kept_per_gateway_path_and_account(gateway, tmp_path):
    for text in ("staging", "prod", "other account"):
        gateway.plan(text=text)
    root = gateway.base_url.removesuffix("/v1")
    state = KernelState(cache=Cache(tmp_path / "c.sqlite3"))
    texts = []
    for base, key in ((f"{root}/staging/v1", KEY), (f"{root}/prod/v1", KEY), (f"{root}/prod/v1", KEY + "-b")):
        client = Client(key, base_url=base, model="m1")
        result = experiment("Hello", client=client, progress=False, state=state)
        texts.append((result.runs[0].text, result.runs[0].replayed))
    assert texts == [("staging", False), ("prod", False), ("other account", False)]
    assert [r["path"] for r in gateway.requests] == [
        "/staging/v1/chat/completions",
        "/prod/v1/chat/completions",
        "/prod/v1/chat/completions",
    ]


def test_dotted_params_nest_as_chat_p_does(gateway):
    client = Client(KEY, base_url=gateway.base_url, model="m1")
    experiment(
        "Hi", params={"reasoning.effort": "low"}, grid={"metadata.tag": ["a"]}, endpoint="responses", client=client,
        progress=False,
    )  # fmt: skip
    (body,) = gateway.bodies()
    assert body["reasoning"] == {"effort": "low"} and body["metadata"] == {"tag": "a"}
    assert "reasoning.effort" not in body and "metadata.tag" not in body
    with pytest.raises(ConfigError, match="API key comes from the environment only"):
        experiment("Hi", params={"auth.api_key": "sk-x"}, client=client, progress=False)


def test_the_budget_counts_instructions_tools_and_images_on_either_endpoint(gateway):
    client = Client(KEY, base_url=gateway.base_url, model="m1")
    prices = {"m1": {"input": 2.0, "output": 0.0}}
    system = "x" * 470_000  # ~117,500 tokens at $2 per 1M: $0.235 a run, 5 runs
    for endpoint in ("chat", "responses"):
        with pytest.raises(ConfigError, match=r"could cost up to \$1\.17.*over the budget of \$1\.0000"):
            experiment(
                "Hi", endpoint=endpoint, system=system, repeats=5, prices=prices, budget=1.0, client=client,
                progress=False,
            )  # fmt: skip
    assert gateway.requests == []
    speaker = dialect("chat")
    tool = {"type": "function", "function": {"name": "f", "description": "d" * 4000, "parameters": {}}}
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 400_000}}
    plain = speaker.wire_body([{"role": "user", "content": "Hi"}], "m1", True)
    assert budget.prompt_tokens({**plain, "tools": [tool]}) > budget.prompt_tokens(plain) + 1000
    with_image = {**plain, "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}, image]}]}
    extra = budget.prompt_tokens(with_image) - budget.prompt_tokens(plain)
    assert budget.IMAGE_TOKENS <= extra < budget.IMAGE_TOKENS + 20  # the image, not its 400 KB of base64


# -- sweep: a thin experiment
def test_a_sweep_is_an_experiment_with_its_records(gateway, tmp_path):
    gateway.plan(text="costs $5")
    client = Client(KEY, base_url=gateway.base_url, model="m1")
    table = sweep("Price in $USD?", client=client, progress=None, state=KernelState(cache=Cache(tmp_path / "c")))
    assert gateway.bodies()[0]["messages"] == [{"role": "user", "content": "Price in $USD?"}]  # text, not a template
    assert table.rows[0]["text"] == "costs $5"
    data, metadata = table._repr_mimebundle_()
    saved = metadata["elk_jupyter_experiment"]
    assert saved["runs"][0]["reply"]["text"] == "costs $5" and KEY not in json.dumps(saved)
    assert "costs $5" in data["text/plain"]


@pytest.mark.parametrize("field", ["model", "stream"])
def test_a_sweep_refuses_a_grid_over_what_it_sets_in_one_line(gateway, field):
    client = Client(KEY, base_url=gateway.base_url, model="m1")
    with pytest.raises(ConfigError, match=f"grid key '{field}' is set by the experiment itself") as caught:
        sweep("Hi", grid={field: ["a", "b"]}, client=client, progress=None)
    assert "\n" not in str(caught.value) and gateway.requests == []


def test_no_module_global_holds_kernel_state():
    import elk_jupyter.experiments as experiments
    import elk_jupyter.experiments.runner as runner
    import elk_jupyter.media.attachments as attachments

    assert not hasattr(attachments, "STORE") and not hasattr(runner, "FINISHED")
    assert not hasattr(experiments, "_REPLAYS") and not hasattr(experiments, "_INDEXED")


def test_a_plain_experiment_outside_ipython_has_a_state_of_its_own(gateway, tmp_path):
    """A plain Python process (no IPython at all): each call a state of its own, the cache shared."""
    import os
    import subprocess
    import sys

    gateway.plan(text="from a script")
    script = (
        "from elk_jupyter import Client, experiment\n"
        "from elk_jupyter.experiments import kernel_state\n"
        "assert kernel_state() is not kernel_state()\n"
        f"client = Client({KEY!r}, base_url={gateway.base_url!r}, model='m1')\n"
        "first = experiment('Hi', client=client, progress=False)\n"
        "again = experiment('Hi', client=client, progress=False)\n"
        "print(first.runs[0].text, first.runs[0].replayed, again.runs[0].text, again.runs[0].replayed)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "ELK_CACHE_DIR": str(tmp_path / "script")}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["from", "a", "script", "False", "from", "a", "script", "True"]
    assert len(gateway.requests) == 1


def test_an_unrecorded_sweep_in_only_mode_says_so(gateway, tmp_path):
    client = Client(KEY, base_url=gateway.base_url, model="m1")
    with pytest.raises(ElkError, match="1 of 1 runs were never recorded"):
        sweep("Hi", client=client, replay="only", progress=None, replays=Replays(Cache(tmp_path / "c")))


def test_chat_and_experiment_share_the_kernel_state(gateway, monkeypatch):
    """In a shell with the extension loaded, ``%%experiment`` and ``experiment()`` run on the
    magics' ``KernelState``: the plain call resumes what the magic ran, sending nothing."""
    from tests.environment import fresh_shell

    monkeypatch.setenv("ELK_BASE_URL", gateway.base_url)
    monkeypatch.setenv("ELK_MODEL", "m1")
    shell, magics = fresh_shell(replay="auto")
    gateway.plan(text="once")
    assert shell.run_cell("%%experiment --name shared -o first\nOnly once").success
    assert shell.run_cell("from elk_jupyter import experiment\nagain = experiment('Only once', progress=False)").success
    (run,) = shell.user_ns["again"].runs
    assert (run.text, run.replayed, len(gateway.requests)) == ("once", False, 1)  # the kernel's run, not the cache
    assert magics.state.finished and shell.user_ns["first"].runs[0].key == shell.user_ns["again"].runs[0].key


def test_an_old_experiment_record_replays_by_its_fields_not_its_key(gateway, tmp_path):
    """Records written before the case joined the identity hold another ``key``: replay reads the
    request, host, case and repeat instead, so an old notebook's experiment still replays."""
    from elk_jupyter.conversation.kernel import recorded_runs
    from elk_jupyter.records.experiment import record_of

    gateway.plan(text="old sample")
    client = Client(KEY, base_url=gateway.base_url, model="m1")
    live = experiment("Hi", client=client, progress=False, state=KernelState(cache=Cache(tmp_path / "a")))
    saved = json.loads(json.dumps(record_of(live)))
    saved["runs"][0]["key"] = "sha256-of-body-and-repeat-only"  # as an older version wrote it
    frozen = KernelState(cache=Cache(tmp_path / "b"))
    for recorded in recorded_runs(saved):
        frozen.replays.remember(recorded)
    again = experiment("Hi", client=client, replay="only", progress=False, state=frozen)
    assert (again.runs[0].text, again.runs[0].replayed) == ("old sample", True)


def test_a_context_note_names_a_bounded_number_of_turns():
    """The note is saved with every turn: naming every earlier turn would make a long conversation's
    notebook grow with the square of its length."""
    from elk_jupyter.conversation.identity import short_ids

    ids = [f"{n:08x}" + "0" * 24 for n in range(100)]
    assert short_ids(ids[:8]) == ", ".join(i[:8] for i in ids[:8])
    assert short_ids(ids) == "00000000, 00000001, 00000002, … 93 more …, 00000060, 00000061, 00000062, 00000063"
    assert short_ids([]) == "no earlier turn"


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(
    body=st.dictionaries(st.text(max_size=8), _json, max_size=5),
    host=st.none() | st.text(max_size=10),
    scope=st.none() | st.text(max_size=10),
    where=st.builds(
        Where,
        st.none() | st.text(max_size=6),
        st.none() | st.integers(0, 9),
        st.none() | st.text(max_size=6),
        st.none() | st.integers(0, 9),
        st.none() | st.integers(0, 3),
    ),
)
def test_identity_keys_are_request_keys_of_their_documents(body, host, scope, where):
    # the keys splice one canonical JSON of the body into their documents: the same bytes, so the
    # same keys as always (cache rows and records written before keep replaying)
    identity = Identity(body, host, scope, where)
    assert identity.body_key == request_key(body, host)
    assert identity.key == request_key({"body": body, "where": {**where.shared(), "cell": where.cell}}, host)
    shared = where.shared()
    assert identity.cache_key == request_key({"body": body, "where": shared} if shared else body, scope or host)


@settings(max_examples=200, deadline=None)
@given(body=st.dictionaries(st.text(max_size=8), _json, max_size=5), where=st.builds(Where, case=st.integers(0, 9)))
def test_an_identity_written_by_the_plan_has_the_same_keys(body, where):
    # an experiment's plan writes the body's JSON once (``strict_canonical``) and hands it over
    written = strict_canonical(body)
    if written is None:  # an infinity: not strict JSON, the plan refuses the body
        return
    fresh, handed = Identity(body, "h", "s", where), Identity.written(body, written, "h", "s", where)
    assert (handed.body_key, handed.key, handed.cache_key) == (fresh.body_key, fresh.key, fresh.cache_key)


def test_strict_canonical_is_none_for_what_json_cannot_carry_strictly():
    assert strict_canonical({"b": [1.5, "é"], "a": None}) == '{"a":null,"b":[1.5,"é"]}'
    for bad in ({"t": float("nan")}, {"t": [float("-inf")]}, {"t": (1e999,)}, {"t": object()}, {1: 0, "a": 1}):
        assert strict_canonical(bad) is None


IMAGE = "data:image/png;base64,<image 1 omitted>"
HOST, SCOPE = "127.0.0.1:8000", "http://127.0.0.1:8000/v1 account abc"


@pytest.mark.parametrize(
    "body, where, keys",
    [
        (
            {
                "model": "m",
                "messages": [{"role": "user", "content": "run 0"}],
                "stream": True,
                "stream_options": {"include_usage": True},
            },
            Where(case=3, repeat=1),
            (
                "06324dcdf45f869bea60ec34e8b3a60b1beef887a0a694df4d6056ccfbbc4fd5",
                "cef1c8f921da36cec681c742e58714222ea9753be4c23d91f0385f95f73f1da3",
                "732cd07ff9d847088d0a8649e3df7c8a842ceb16dc8838a9b30a6e066f69e88f",
            ),
        ),
        (
            {
                "model": "gpt-é",
                "messages": [
                    {"role": "system", "content": 'Sé brève 🦌 \u2028 "q" \\ \n\t\x01'},
                    {"role": "user", "content": "日本語"},
                ],
                "temperature": 0.7,
                "top_p": 1e-7,
                "seed": 12345678901234567890,
            },
            Where("default", 2, "cell-1"),
            (
                "2065b9dafe959e4d506421250912e281b7646139552b33905df999b4af50dd8c",
                "378b21147cf0f2e38b26d78286f90dcfa5342c850f9fd8dfe2ee30c66ae10744",
                "9165319162e78f637cb4a97c83dc85687c1a17f74ad3bc5acbc1d6543d008821",
            ),
        ),
        (
            {
                "model": "m",
                "input": [
                    {
                        "role": "user",
                        "content": [{"type": "input_text", "text": "x"}, {"type": "input_image", "image_url": IMAGE}],
                    }
                ],
                "reasoning": {"effort": "low", "summary": None},
                "b": 1.5,
                "a": [0.1, -2.0, 1e300, False],
            },
            Where(),
            (
                "95c10112d3b06d176795b8d21af81abee4d3ea5ac6815f683b75300e551d35b6",
                "c9bd57472fc1013a31a6167cee65ce05cb07c7d925c837f0f76a5d28901205f8",
                "535c0bedaf9090cae5b4197fca812cef8baf4c8a24477d9d2af989817e912c97",
            ),
        ),
        (
            {"z": {"y": {"x": [[], {}, ""]}}, "ä": "ö", "A": "a"},
            Where("c", 0),
            (
                "ca91fae23a92cc84d68ee0d9f3f4ca99f897ec3ff85d0b4021ad641343ebfc28",
                "cdd930ff80c76865ba7bafa1dfb65ae622370fb4407102b0953213f098b40db1",
                "ad535c0d37a76b769df121567efe4813b2062d1265374533ced4df4f49b35565",
            ),
        ),
    ],
)
def test_replay_keys_stay_byte_identical(body, where, keys):
    # saved notebooks and cache files replay by these keys: (body_key, key, cache_key) as written
    # before the plan handed its JSON over, for unicode, escapes, big ints, floats, nesting, images
    for identity in (
        Identity(body, HOST, SCOPE, where),
        Identity.written(body, strict_canonical(body), HOST, SCOPE, where),
    ):
        assert (identity.body_key, identity.key, identity.cache_key) == keys
