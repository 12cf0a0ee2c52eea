"""The layout of docs/architecture.md, checked on the source: each third-party library lives in one
module, data flows one way, nothing imports the magics, the runner knows no IPython, nothing outside
``dialects`` branches on an endpoint's name, and modules and functions stay small."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "elk_jupyter"
# library -> the only modules allowed to import it
OWNERS = {
    "requests": {"gateway.transport", "gateway.body"},
    "urllib3": {"gateway.transport", "gateway.body"},
    "IPython": {"front.magics", "front.views", "front.chat_panel"},
    "anywidget": {"display.panel", "display.chat_widget"},
    "ipywidgets": {"display.panel"},
    "nbformat": {"records.notebooks"},
    "traitlets": {"front.magics", "display.panel", "display.chat_widget"},
    "markdown_it": {"display.markdown_copy"},
    "mdit_py_plugins": {"display.markdown_copy"},
}
PURE = {
    "errors",
    "gateway.sse",
    "gateway.events",
    "gateway.frames",
    "gateway.reply",
    "conversation.session",
    "conversation.options",
    "display.render",
    "display.turn_output",
    "gateway.urls",
    "gateway.usage",
    "records.turn",
    "conversation.ask",
    "conversation.settings",
    "version",
    "display.markdown_copy",
    "display.markdown_inline",
    "conversation.lineage",
    "conversation.context",
    "conversation.plan",
    "conversation.identity",
    "media.audio",
    "records.audio",
}
PURE |= {"tools.functions", "tools.loop", "front.notebook_context"}  # tools and notebook context (issue 17)
PURE |= {f"gateway.dialects.{p.stem}" for p in (PACKAGE / "gateway" / "dialects").glob("*.py")}
IO = {
    ".gateway.client",
    ".gateway.transport",
    ".gateway.body",
    ".display.panel",
    ".records.notebooks",
    ".records.audio_files",
    ".front.views",
    ".records.cache",
    ".front.magics",
    ".front.commands",
}
ENDPOINT_NAMES = {"chat", "responses"}
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 50


def modules() -> dict[str, Path]:
    """Every module by its dotted name inside the package ("gateway.client", "gateway.dialects.chat")."""
    return {".".join(p.relative_to(PACKAGE).with_suffix("").parts): p for p in PACKAGE.rglob("*.py")}


def imports(name: str, path: Path) -> set[str]:
    """Imported names, the package's own as ".module" (relative or absolute, from any depth)."""
    package = name.rsplit(".", 1)[0] if "." in name else ""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {_own(alias.name) for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                found.add(_own(node.module or ""))
            else:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)] if package else []
                found.add("." + ".".join([*filter(None, base), *filter(None, [node.module])]))
    return found


def _own(name: str) -> str:
    return name.removeprefix("elk_jupyter") if name.startswith("elk_jupyter") else name


def test_each_library_lives_in_one_module():
    for name, path in modules().items():
        for imported in imports(name, path):
            top = imported.split(".")[0]
            if top in OWNERS:
                assert name in OWNERS[top], f"{name} imports {imported}"


def test_pure_modules_do_no_io_and_nothing_imports_the_magics():
    for name, path in modules().items():
        names = imports(name, path)
        if name != "__init__":
            assert ".front.magics" not in names, f"{name} imports the magics"
        if name in PURE:
            assert not {n.split(".")[0] for n in names} & {
                "requests",
                "urllib3",
                "IPython",
                "anywidget",
                "nbformat",
                "sqlite3",
                "traitlets",
            }, name
            assert not names & IO, f"{name} is pure but imports {names & IO}"


def test_the_runner_knows_no_ipython_and_no_argparse():
    for name in ("conversation.turns", "conversation.plan", "front.commands", "experiments.sweeps", "records.cache"):
        names = imports(name, modules()[name])
        assert not {n.split(".")[0] for n in names} & {"IPython", "traitlets", "anywidget"}, name
        assert not names & {".front.magics", ".front.views", ".display.panel"}, name
    assert "argparse" not in imports("conversation.turns", modules()["conversation.turns"])


def test_nothing_outside_the_dialects_branches_on_an_endpoint_name():
    for name, path in modules().items():
        if name.startswith("gateway.dialects"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):
                operands = [node.left, *node.comparators]
                named = {o.value for o in operands if isinstance(o, ast.Constant)} & ENDPOINT_NAMES
                assert not named, f"{name}:{node.lineno} compares with {named}"
            elif isinstance(node, ast.Dict):
                keys = {k.value for k in node.keys if isinstance(k, ast.Constant)} & ENDPOINT_NAMES
                assert not keys, f"{name}:{node.lineno} keys a table by endpoint name {keys}"


def test_no_module_imports_the_package_root():
    """``from elk_jupyter import x`` / ``from . import x`` name modules, never the lazy root's (or a
    sub-package's ``__init__``'s) own names; in a sub-package ``from . import x`` is its sibling."""
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom) or node.module not in (None, "elk_jupyter"):
                continue
            base = PACKAGE if node.level == 0 else path.parents[node.level - 1]
            if path.name == "__init__.py" and base == path.parent:
                continue  # a package's __init__ gathers its own modules
            for alias in node.names:
                assert (base / f"{alias.name}.py").exists() or (base / alias.name).is_dir(), (
                    f"{name} imports {alias.name} from the package root"
                )


def test_modules_and_functions_stay_small():
    for name, path in modules().items():
        source = path.read_text()
        assert source.count("\n") <= MAX_MODULE_LINES, f"{name} has {source.count(chr(10))} lines"
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                assert length <= MAX_FUNCTION_LINES, f"{name}.{node.name} has {length} lines"


def test_experiments_stay_below_the_magics_and_own_no_front_end_library():
    """elk_jupyter/experiments/: IPython, widgets and nbformat stay out (the magics hand over
    ``display``); its own optional libraries each live in one module."""
    own = {"jsonschema": {"experiments.scorers"}, "pandas": {"experiments.results"}}
    for name, path in modules().items():
        if not name.startswith("experiments"):
            continue
        for imported in imports(name, path):
            top = imported.split(".")[0]
            assert top not in {"IPython", "anywidget", "ipywidgets", "traitlets", "nbformat"}, f"{name}: {imported}"
            assert imported not in {".front.magics", ".front.views", ".display.panel"}, f"{name} imports {imported}"
            if top in own:
                assert name in own[top], f"{name} imports {imported}"
