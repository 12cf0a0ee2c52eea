"""The magics: %%chat, %%respond, %%experiment and %elk, and their configuration (traits).

Parsing lives here: a cell becomes a frozen ``Ask`` and the traits a ``Settings`` snapshot; the
turn itself (plan, stream or replay, commit) is run by ``turns``, shown through ``views``.
"""

from __future__ import annotations

import os
import shlex

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments
from IPython.display import display
from traitlets import Enum, Float, Int, TraitError, Unicode, default, validate

from elk_jupyter.conversation import options, settings
from elk_jupyter.conversation.ask import Ask
from elk_jupyter.conversation.kernel import KernelState
from elk_jupyter.conversation.turns import TurnRunner
from elk_jupyter.errors import ConfigError
from elk_jupyter.front import cell_inputs
from elk_jupyter.front.commands import BadCommand, Commands
from elk_jupyter.front.experiment_help import EXPERIMENT_HELP
from elk_jupyter.front.views import IPythonFrontend, approve, cell_of, code_into_next_cell
from elk_jupyter.gateway.dialects import dialect
from elk_jupyter.records.notebooks import current_notebook

_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")


def _common(func):
    """Options shared by %%chat and %%respond (applied bottom-up by magic_arguments)."""
    for decorator in reversed(
        [
            argument("-m", "--model", help="model id (default: ElkMagics.model, $ELK_MODEL, gpt-5.5)"),
            argument("-c", "--conversation", help="conversation name (default: 'default')"),
            argument("--new", action="store_true", help="start the conversation afresh (history is kept, not sent)"),
            argument("-t", "--temperature", type=float, help="sampling temperature (0 is sent, not dropped)"),
            argument("--top-p", type=float, help="nucleus sampling"),
            argument("--max-tokens", type=int, help="cap on generated tokens (the endpoint's own field)"),
            argument("-r", "--reasoning-effort", choices=_EFFORTS, help="reasoning effort"),
            argument("--seed", type=int, help="sampling seed"),
            argument("--json", action="store_true", help="JSON mode; the parsed object is the cell's value"),
            argument("--schema", metavar="VAR", help="structured output: a dict JSON schema or pydantic class"),
            argument("-o", "--output", metavar="NAME", help="store the Reply (or the parsed JSON) in NAME"),
            argument("--no-stream", action="store_true", help="ask for one JSON body instead of a stream"),
            argument("--dry-run", action="store_true", help="show the exact request body; send nothing"),
            argument("-i", "--interpolate", action="store_true", help="substitute $name and ${expr} in the cell"),
            argument("--no-context", action="store_true", help="send no earlier turns (the turn still joins)"),
            argument("--replay", choices=("auto", "off", "only"), help="replay mode for this cell"),
            *(argument(*names, **spec) for names, spec in cell_inputs.OPTIONS),  # tools, images, files, cells
            argument(
                "-p",
                "--param",
                action="append",
                default=[],
                metavar="KEY=VALUE",
                help="any other request field, JSON value (a.b=1 nests, key=@var takes a variable)",
            ),
        ]
    ):
        func = decorator(func)
    return func


@magics_class
class ElkMagics(Magics):
    """elk-jupyter magics. Configure with ``%config ElkMagics.<name> = value``."""

    base_url = Unicode(None, allow_none=True, help="gateway base URL ($ELK_BASE_URL or elkapi)").tag(config=True)
    model = Unicode(None, allow_none=True, help="default model (default $ELK_MODEL or gpt-5.5)").tag(config=True)
    api_key_env = Unicode("ELK_API_KEY", help="NAME of the environment variable holding the key").tag(config=True)
    timeout = Float(600.0, help="read timeout in seconds (time allowed between two chunks)").tag(config=True)
    retries = Int(2, help="retries before the first byte (connect errors, 408/409/429/5xx)").tag(config=True)
    default_conversation = Unicode("default", help="conversation used without -c").tag(config=True)
    context_turns = Int(0, help="send at most this many earlier turns (0: all)").tag(config=True)
    context_tokens = Int(0, help="drop the oldest turns beyond this many context tokens (0: no cap)").tag(config=True)
    respond_mode = Enum(["chain", "stateless"], "chain", help="%%respond context: previous_response_id or resend").tag(
        config=True
    )
    max_tokens_field = Enum(
        ["max_tokens", "max_completion_tokens"], "max_tokens", help="chat field for --max-tokens"
    ).tag(config=True)
    replay = Enum(
        ["auto", "off", "only"], "auto", help="serve identical requests from records: auto, off, only ($ELK_REPLAY)"
    ).tag(config=True)
    audio_inline_bytes = Int(
        256 * 1024, help="audio replies up to this size are kept in the notebook; larger ones in a file beside it"
    ).tag(config=True)

    @default("replay")
    def _replay_from_env(self):
        # The main job runs offline with ELK_REPLAY=only; a typo of "only" is a ConfigError, not a bill.
        return settings.replay_mode(os.environ.get("ELK_REPLAY") or "auto")  # set but empty: the default

    # Checked when set (%config, ipython_config.py, attribute): a bad value is one line there.
    @validate("timeout")
    def _check_timeout(self, proposal):
        return _checked(settings.seconds, "ElkMagics.timeout", proposal.value)

    @validate("retries")
    def _check_retries(self, proposal):
        return _checked(settings.retries, proposal.value)

    @validate("base_url")
    def _check_base_url(self, proposal):
        return _checked(settings.base_url, proposal.value)

    @validate("context_turns", "context_tokens", "audio_inline_bytes")
    def _check_context(self, proposal):
        return _checked(settings.at_least_zero, f"ElkMagics.{proposal.trait.name}", proposal.value)

    def __init__(self, shell=None, **kwargs):
        super().__init__(shell, **kwargs)
        self.state = KernelState(self._notebook_path)  # the kernel's state: every magic shares it
        self.runner = TurnRunner(self.settings, self.state)
        self.commands = Commands(self.runner, self.settings, self._notebook_path, shell)

    @property
    def conversations(self):
        return self.state.conversations  # this notebook's conversations and turns, to read

    def settings(self) -> settings.Settings:
        """The configuration now, as a value the runner and the commands read."""
        return settings.Settings(**{name: getattr(self, name) for name in settings.Settings.names()})

    def _notebook_path(self):
        return current_notebook(self.shell.user_ns)

    @magic_arguments()
    @_common
    @argument("-s", "--system", help="system prompt for this conversation (kept for later turns)")
    @argument("-n", type=int, help="number of choices")
    @argument("--stop", action="append", help="stop sequence (repeatable)")
    @argument(
        "--audio",
        metavar="VOICE[:FORMAT]",
        help="also answer in sound: sets modalities and audio (format: wav, mp3, flac, opus, aac, pcm16; "
        "default pcm16 when streaming, else wav)",
    )
    @cell_magic
    def chat(self, line, cell):
        """Send the cell to POST /chat/completions and stream the reply.

        Examples::

            %%chat
            Explain SSE in one sentence.

            %%chat -m gpt-5.5 -t 0 --seed 7 -c review -s "You are terse."
            Review this: ${code}

            %%chat --json -o data
            Three primes as {"primes": [...]}

            %%chat --param logit_bias='{"50256": -100}' --dry-run
            Hello

            %%chat --audio alloy -m gpt-4o-audio-preview
            Say hello in one short sentence.
        """
        return self._run("chat", line, cell)

    @magic_arguments()
    @_common
    @argument("-s", "--instructions", dest="system", help="instructions (re-sent with every turn)")
    @argument("--summary", choices=("auto", "concise", "detailed"), help="reasoning summary")
    @argument("--stateless", action="store_true", help="resend the history instead of previous_response_id")
    @argument("--truncation", choices=("auto", "disabled"), help="truncation strategy")
    @cell_magic
    def respond(self, line, cell):
        """Send the cell to POST /responses and stream the reply.

        By default earlier turns are chained with ``previous_response_id``; ``--stateless``
        (or ``%config ElkMagics.respond_mode = "stateless"``) re-sends them as input.

        Examples::

            %%respond -r low --summary auto
            Why is the sky blue?

            %%respond --stateless -c local
            And at sunset?
        """
        return self._run("responses", line, cell)

    def ask_for(self, endpoint, line, cell) -> tuple[Ask, object]:
        """(``Ask``, options) of the cell ``%%<magic> line`` + ``cell`` (the chat panel's turns too)."""
        magic = dialect(endpoint).magic
        try:  # POSIX quoting (shlex), so -p key='{"a": 1}' is one word; IPython's own split is not POSIX
            args = getattr(self, magic).parser.parse_args(shlex.split(line))
            ask = self._ask(endpoint, args, cell.strip("\n"))
        except ValueError as err:  # it may quote a value, a file or an expression's error: redacted
            raise UsageError(self.runner.client.redact(str(err))) from None
        if not ask.prompt.strip():
            raise UsageError(f"%%{magic}: the cell is empty; write the prompt below the magic line")
        return ask, args

    def _run(self, endpoint, line, cell):
        ask, args = self.ask_for(endpoint, line, cell)
        name = self.runner.conversation_of(ask)
        if self.runner.state.turn_lock(name).locked():  # a chat panel's reply: the runner waits for it
            print(f"elk: a reply is streaming in conversation {name!r} (a chat panel): this cell waits for it")
        outcome = self.runner.run(ask, IPythonFrontend(self.shell))
        if outcome is not None and args.code:  # None: a dry run
            code_into_next_cell(self.shell, outcome.reply.text)
        if outcome is not None and args.output:
            self.shell.user_ns[args.output] = outcome.value if ask.structured else outcome.reply
        return outcome.value if outcome is not None and ask.structured else None

    def _ask(self, endpoint, args, prompt) -> Ask:
        """The cell as a value: options -> the endpoint's fields (its dialect's); inputs -> ``cell_inputs``."""
        schema = self._variable(args.schema, "--schema") if args.schema else None
        speaker = dialect(endpoint)
        params = {**speaker.fields(vars(args), self.max_tokens_field), **speaker.structured(args.json, schema)}
        return Ask(
            endpoint,
            params=params,
            extra=tuple(options.parse_param(item, self.shell.user_ns) for item in args.param),
            conversation=args.conversation,
            model=args.model,
            system=args.system,
            new=args.new,
            no_context=args.no_context,
            stateless=getattr(args, "stateless", False),  # a %%respond option only
            stream=not args.no_stream,
            dry_run=args.dry_run,
            replay=args.replay,
            json=args.json,
            schema=schema,
            cell=cell_of(self.shell),
            **cell_inputs.ask_fields(cell_inputs.gather(self.shell, args, prompt, self._evaluate), args, approve),
        )

    def _variable(self, name, option):
        if name not in self.shell.user_ns:
            raise ValueError(f"{option}: variable {name!r} is not defined")
        return self.shell.user_ns[name]

    def _evaluate(self, expr):
        return eval(expr, self.shell.user_global_ns, self.shell.user_ns)  # noqa: S307 - the user's own notebook

    @cell_magic
    def experiment(self, line, cell):
        """Run the cell as an experiment (the help ``%%experiment?`` shows: front/experiment_help.py)."""
        from elk_jupyter.experiments.cell import BadLine, parse_line, run_cell  # the parser, with its options, is there

        try:
            args = parse_line(line)
        except BadLine as err:
            raise UsageError(str(err)) from None
        if args is None:  # --help was shown
            return
        if not cell.strip():
            raise UsageError("%%experiment: the cell is empty; write the prompt template below the magic line")
        args.replay = args.replay or self.replay  # %config ElkMagics.replay / $ELK_REPLAY, and the turns' client
        in_kernel = getattr(self.shell, "kernel", None) is not None  # the kernel's state: one replay index
        run_cell(args, cell.strip("\n"), self.shell.user_ns, display, in_kernel, self.runner.client, self.state)

    experiment.__doc__ = EXPERIMENT_HELP  # what %%experiment? shows: every option and the inline syntax

    @line_magic
    def elk(self, line):
        """Manage elk-jupyter.

        Subcommands::

            %elk config                      base URL, model, where the key comes from (fingerprint only)
            %elk list                        conversations with turn counts and usage
            %elk history [NAME]              a conversation's turns (status, context sent, tokens)
            %elk reset [NAME | --all]        forget a conversation (or all)
            %elk fork SOURCE NEW [TURN]      a new conversation continuing SOURCE up to TURN (any turn:
                                             its ancestry); TURN is an id or a 4+ digit prefix
            %elk accept TURN                 let an interrupted turn's partial reply join the context
                                             (says what joins and what leaves)
            %elk models                      GET /models
            %elk usage                       token totals per conversation and for the notebook
            %elk restore [PATH]              rebuild conversations from a saved notebook's records
            %elk explain [CHAT OPTIONS]      the last error and its cell to %%chat ($_error with -i)
            %elk panel [-c NAME] [-m MODEL] [--endpoint E]  the chat panel over a conversation
        """
        try:
            words = shlex.split(line)
        except ValueError as err:  # unbalanced quotes
            raise UsageError(f"%elk: bad quoting ({err})") from None
        try:
            return self.commands.run(words)
        except BadCommand as err:
            raise UsageError(str(err)) from None


def _checked(check, *args):
    try:
        return check(*args)
    except ConfigError as err:
        raise TraitError(str(err)) from None
