"""The options %%chat and %%respond share, as IPython ``magic_arguments`` (what ``%%chat?`` shows)."""

from __future__ import annotations

from IPython.core.magic_arguments import argument

from elk_jupyter.front import cell_inputs

_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")


def common(func):
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
