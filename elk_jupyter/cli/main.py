"""``elk-jupyter``: inspect, export and re-run the turns recorded in saved notebooks.

Input notebooks are only read. Every failure is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

from elk_jupyter.conversation import lineage, settings
from elk_jupyter.conversation.options import set_path
from elk_jupyter.conversation.session import Conversation, Conversations, Turn
from elk_jupyter.display.terminal import SafeText
from elk_jupyter.errors import ElkError, unexpected
from elk_jupyter.gateway.dialects import dialect
from elk_jupyter.gateway.usage import Usage
from elk_jupyter.records import notebooks
from elk_jupyter.records import turn as record
from elk_jupyter.records.metadata import outputs_holding


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="elk-jupyter", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    inspect = commands.add_parser("inspect", help="conversations, turns and usage totals of a notebook")
    inspect.add_argument("notebook")
    export = commands.add_parser("export", help="a conversation as OpenAI messages (json), turns (jsonl) or Markdown")
    export.add_argument("notebook")
    export.add_argument("-c", "--conversation", default="default")
    export.add_argument("-f", "--format", choices=("json", "jsonl", "markdown"), default="json")
    export.add_argument("-o", "--output", help="write here instead of stdout")
    # "replay" was its first name; it re-runs live (replaying is what the magics do offline).
    rerun = commands.add_parser(
        "rerun", aliases=["replay"], help="re-run a notebook's prompts live and write a new notebook"
    )
    rerun.add_argument("notebook")
    rerun.add_argument("-o", "--output", required=True, help="the new notebook (never the input)")
    rerun.add_argument("-m", "--model", help="send every turn to this model instead")
    rerun.add_argument(
        "-p", "--param", action="append", default=[], metavar="KEY=VALUE", help="override a request field (JSON value)"
    )
    rerun.add_argument(
        "--replay",
        choices=settings.REPLAY_MODES,
        default="off",
        help="off (default): every turn live; auto: identical requests from the replay cache; only: offline",
    )
    from elk_jupyter.cli import experiments as experiments_cli

    experiments_cli.add_parser(commands)
    streams = sys.stdout, sys.stderr
    # Everything printed (model text, names, a gateway's model ids and errors) reaches a terminal:
    # written through terminal.safe, whatever the command (argparse's own messages too).
    sys.stdout, sys.stderr = SafeText(sys.stdout), SafeText(sys.stderr)
    try:
        return _run(parser, argv)
    finally:
        sys.stdout, sys.stderr = streams


def _run(parser, argv) -> int:
    args = parser.parse_args(argv)
    from elk_jupyter.cli import experiments as experiments_cli

    commands_run = {"inspect": run_inspect, "export": run_export, "rerun": run_rerun, "replay": run_rerun}
    commands_run["experiments"] = experiments_cli.run
    try:
        return commands_run[args.command](args) or 0
    except (ElkError, ValueError) as err:
        failure = str(err)
    except RecursionError:  # a hand-edited record nested too deep for a recursive reader
        failure = "a record is nested too deeply to read (hand-edited?)"
    except Exception as err:  # a bug or a library's surprise: still one line, no traceback
        failure = str(unexpected(err, os.environ.get("ELK_API_KEY")))
    print(f"elk-jupyter: error: {failure}", file=sys.stderr)
    return 2


def _turns(path: str) -> list[Turn]:
    turns = notebooks.load_turns(path)
    if not turns:
        raise ElkError(f"{path}: no elk-jupyter records in this notebook")
    return turns


def run_inspect(args) -> None:
    turns = notebooks.load_turns(args.notebook)
    from elk_jupyter.cli.experiments import print_totals, results_in

    experiments, skipped = results_in(args.notebook)
    if not turns and not experiments and not skipped:
        raise ElkError(f"{args.notebook}: no elk-jupyter records in this notebook")
    conversations: dict[str, list[Turn]] = {}
    for turn in turns:
        conversations.setdefault(turn.conversation, []).append(turn)
    print(f"{args.notebook}: {len(turns)} turns in {len(conversations)} conversations")
    totals = dict.fromkeys(("prompt", "cached", "completion", "reasoning", "total"), 0)
    for name, items in conversations.items():
        print(f"\n[{name}]")
        for turn in items:
            numbers = Usage.of(turn.reply.get("usage")).numbers()
            for key in totals:
                totals[key] += numbers[key]
            flag = " (replayed)" if turn.replayed else ""
            print(
                f"  {turn.short_id:<8} {turn.endpoint:<9} {turn.status:<11} {turn.reply.get('model') or '?':<24} "
                f"{numbers['total']:>6} tok  {_short(turn.prompt)!r} -> {_short(turn.text)!r}{flag}"
            )
    print(f"\nusage: {Usage(**totals).describe(total=True)}")  # the one written form of usage
    print_totals(experiments, Conversation("", turns=turns).usage_totals(), skipped)  # billed: replays are not


def _short(text: str, width: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def conversation_chain(turns: list[Turn], name: str) -> list[Turn]:
    """The conversation's context as it ended, with a fork's ancestry in the conversation it
    was forked from: restored by the same rules as ``%elk restore`` (docs/record.md)."""
    notebook = Conversations()
    lineage.merge(notebook, turns)
    if name not in notebook.conversations:
        known = ", ".join(sorted(notebook.conversations))
        raise ElkError(f"no conversation named {name!r} (the notebook has: {known})")
    chain = [notebook.index[i] for i in notebook.conversations[name].active]
    if not chain:
        raise ElkError(f"conversation {name!r} has no completed turn to export")
    return chain


def run_export(args) -> None:
    turns = _turns(args.notebook)
    chain = conversation_chain(turns, args.conversation)
    if args.format == "json":
        system = next((t.system for t in reversed(chain) if t.system), None)
        text = json.dumps(
            dialect("chat").messages(system, chain[:-1], chain[-1].prompt)
            + [{"role": "assistant", "content": chain[-1].text}],
            indent=2,
            ensure_ascii=False,
        )
    elif args.format == "jsonl":
        text = "\n".join(
            json.dumps(t.to_dict(), ensure_ascii=False) for t in turns if t.conversation == args.conversation
        )
    else:
        parts = [f"# Conversation `{args.conversation}`"]
        for turn in chain:
            parts += [
                f"\n## {turn.short_id} · user\n",
                turn.prompt,
                f"\n## {turn.short_id} · assistant ({turn.reply.get('model') or '?'})\n",
                turn.text,
            ]
        text = "\n".join(parts)
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
    else:
        print(text)


def rebuilt_request(turn: Turn, new: dict[str, dict], overrides: dict, replies: dict[str, str]) -> dict:
    """The turn's recorded body with earlier replies swapped for their re-run versions.

    ``new`` maps old turn ids to re-run replies; ``replies`` maps old response ids to turn ids.
    """
    body = copy.deepcopy(turn.request)
    assistants = [
        m
        for m in body.get("messages") or (body["input"] if isinstance(body.get("input"), list) else [])
        if isinstance(m, dict) and m.get("role") == "assistant"
    ]
    # The re-sent turns are the last ones of the context (the earlier ones, if any, are chained).
    resent = list(turn.context)[len(turn.context) - len(assistants) :] if assistants else []
    for message, turn_id in zip(assistants, resent, strict=False):
        if turn_id in new:
            message["content"] = new[turn_id]["text"]
    chained = replies.get(body.get("previous_response_id"))
    if chained in new and new[chained].get("id"):
        body["previous_response_id"] = new[chained]["id"]
    for path, value in overrides.items():
        set_path(body, path.split("."), value)
    return body


def run_rerun(args) -> int:
    """Re-run every turn live; exit status 1 (after writing the notebook) when any turn failed."""
    from elk_jupyter.conversation.options import parse_param
    from elk_jupyter.gateway.client import Client
    from elk_jupyter.records.cache import Replays

    source, target = Path(args.notebook), Path(args.output)
    if target.resolve() == source.resolve():
        raise ElkError("the output must be a new file: the input notebook is never modified")
    nb = notebooks.read_notebook(source)
    turns = lineage.ordered(_turns(args.notebook), {})  # each after the turn it builds on
    replies = {t.reply["id"]: t.id for t in turns if t.reply.get("id")}
    overrides = {".".join(path): value for path, value in (parse_param(item, {}) for item in args.param)}
    if args.model:
        overrides["model"] = args.model
    client, replays = Client(), Replays()
    new: dict[str, dict] = {}
    rows = []
    for turn in turns:
        client.images.remember(turn.attachments)  # the images whose bytes the record kept go again
        body = client.guard(rebuilt_request(turn, new, overrides, replies))[0]  # a hand-edited record may quote the key
        reply = _rerun_one(client, replays, args.replay, turn, body)  # a failure is a row too
        new[turn.id] = reply.to_dict()
        rows.append((turn, reply))
    _write_replayed(nb, turns, rows, client.host, target)
    print(f"{'turn':<8} {'old model':<22} {'new model':<22} {'old tok':>7} {'new tok':>7}  old -> new")
    for turn, reply in rows:
        old_total = Usage.of(turn.reply.get("usage")).numbers()["total"]
        new_total = reply.tokens.numbers()["total"]
        same = "=" if reply.text == turn.text else "≠"
        print(
            f"{turn.short_id:<8} {str(turn.reply.get('model'))[:22]:<22} {str(reply.model)[:22]:<22} {old_total:>7} {new_total:>7}  "
            f"{_short(turn.text, 30)!r} {same} {_short(reply.text, 30)!r}" + ("" if reply.ok else f" [{reply.status}]")
        )
    print(f"wrote {target}")
    failed = [(turn, reply) for turn, reply in rows if not reply.ok]
    if failed:
        turn, reply = failed[0]
        print(
            f"elk-jupyter: {len(failed)} of {len(rows)} turns failed (first: turn {turn.short_id}, "
            f"{reply.status}: {_short(str(reply.error or 'no reply'), 120)})",
            file=sys.stderr,
        )
        return 1
    print(f"all {len(rows)} turns re-ran")
    return 0


def _rerun_one(client, replays, mode: str, turn: Turn, body: dict):
    """One turn again, on the one run path, asked where the notebook asked it."""
    from elk_jupyter.conversation import run as runs
    from elk_jupyter.conversation.identity import Identity
    from elk_jupyter.conversation.kernel import where_of

    identity = Identity(body, client.host, client.cache_scope(), where_of(turn))
    refusal = f"replay is 'only' and turn {turn.short_id}'s request was never recorded"
    # off: the user's replay cache is left as it was
    ran = runs.run(replays, identity, mode, runs.sender(client, turn.endpoint), refusal=refusal, keep=mode != "off")
    return ran.reply


def _write_replayed(nb, turns: list[Turn], rows, host: str, target: Path) -> None:
    from elk_jupyter.display.header import header_of
    from elk_jupyter.display.turn_output import turn_bundle

    fresh = {
        old.id: replace(
            old,
            request=reply.request,
            reply=reply.to_dict(),
            status=reply.status,
            host=host,
            replayed=False,
            origin="live",
        )
        for old, reply in rows
    }
    replies = {old.id: reply for old, reply in rows}
    for output, rec in outputs_holding(nb, record.RECORD_KEY):
        turn_id = (rec.get("turn") or {}).get("id") if isinstance(rec, dict) else None
        if turn_id not in fresh:
            continue
        saved = record.record_of(fresh[turn_id], fresh.get)  # earlier turns named: the re-run ones
        output["data"], output["metadata"] = turn_bundle(replies[turn_id], header_of(saved["turn"]), saved)
    notebooks.write_notebook(nb, target)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
