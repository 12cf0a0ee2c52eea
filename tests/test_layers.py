"""The layout of docs/architecture.md, checked on the source by folder: each folder imports only the
folders below it (the few crossings are named, with why), no import cycle, nothing imports ``front/``,
pure folders do no I/O but for their named I/O modules, each third-party library lives in one module
or folder, nothing outside ``gateway/dialects`` branches on an endpoint's name, modules stay small.

See the layers yourself: ``python -m tests.test_layers`` prints each folder's imports by layer."""

from __future__ import annotations

import ast
from collections import defaultdict
from functools import cache
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "elk_jupyter"
# Bottom to top: a module imports its own folder and the folders before it. ``__init__`` (the lazy
# public surface) is above everything. How the order was found: docs/architecture.md "Layers".
LAYERS = (
    "redaction",  # the one redaction rule: the key in every spelling it knows (errors use it too)
    "errors",
    "version",
    "media",  # audio clips, images and files, notebook values: what a prompt or a reply carries
    "gateway",  # the wire: HTTP, SSE, the endpoints' bodies and streams, Reply, Usage, Client
    "tools",  # python functions as tools and the loop over a reply's calls
    "records",  # record formats, the one schema checker and walker, notebook files, the cache
    "conversation",  # Ask, Settings, the -p parser, sessions, context, plan, the run path (TurnRunner)
    "display",  # the copies, the finished bundle, the panel widget
    "experiments",
    "front",  # the magics, %elk commands, views, cell inputs: IPython's side
    "cli",
)
# Known imports against the order: module -> the lower-layer-breaking imports it may keep, and why.
# Each must still exist (a crossing that is gone fails below, so this list cannot rot).
CROSSINGS = {
    "gateway.client": {
        "conversation.settings": "Client checks timeouts and retries with the magics' own rule",
        "tools.loop": "Client.chat(tools=...) runs the tool loop for Python callers",
    },
    "gateway.dialects.chat": {
        "conversation.identity": "the body names earlier turns by their short ids",
        "conversation.options": "-p extras are merged into the body the dialect writes",
    },
    "gateway.dialects.responses": {
        "conversation.identity": "the body names earlier turns by their short ids",
        "conversation.options": "-p extras are merged into the body the dialect writes",
    },
    "media.attachments": {"gateway.dialects.content": "an attachment becomes the neutral content part"},
    "records.turn": {"conversation.session": "a turn record is a Turn's dict (Turn.from_dict reads it back)"},
    "records.notebooks": {"conversation.session": "read_turns returns the Turns a notebook holds"},
    "records.request_history": {
        "conversation.session": "rebuilds a Turn's request from the Turns it names",
        "conversation.identity": "a rebuilt body is checked against its replay key (request_key)",
    },
    "records.cache": {
        "conversation.identity": "the replay index is keyed by a request's Identity (body, scope, where)"
    },
}
# Library -> the folders or modules allowed to import it.
OWNERS = {
    "requests": {"gateway.transport", "gateway.keepalive", "gateway.body"},
    "urllib3": {"gateway.transport", "gateway.keepalive", "gateway.body"},
    "IPython": {"front"},
    "traitlets": {"front.magics", "display.panel", "display.chat_widget"},
    "anywidget": {"display.panel", "display.chat_widget"},
    "ipywidgets": {"display.panel"},
    "nbformat": {"records.notebooks"},
    "sqlite3": {"records.cache", "records.cache_file"},
    "markdown_it": {"display.markdown_copy"},
    "mdit_py_plugins": {"display.markdown_copy"},
    "jsonschema": {"experiments.scorers"},
    "pandas": {"experiments.results"},
    "argparse": {"front", "cli", "experiments.cell"},  # experiments.cell parses the %%experiment line
}
# Pure folders do no I/O; these modules of theirs are where it happens.
IO_FOLDERS = {"front", "cli"}
IO_MODULES = {
    "gateway.client": "sends requests",
    "gateway.transport": "HTTP",
    "gateway.keepalive": "HTTP connections kept alive",
    "gateway.body": "HTTP bodies on the wire",
    "media.attachments": "reads the image and text files a cell names",
    "records.notebooks": "reads and writes .ipynb files",
    "records.audio_files": "audio clips beside the notebook",
    "records.cache": "the replay cache (its errors are SQLite's)",
    "records.cache_file": "the SQLite replay cache",
    "conversation.turns": "a conversation turn: plan, run, commit",
    "conversation.run": "the one run path: replay or send, then store",
    "conversation.kernel": "the kernel's state: reads the notebook's records into the replay index",
    "display.panel": "the live widget",
    "display.chat_widget": "the chat panel's live widget",
    "experiments": "the package's lazy experiment() entry (reads the notebook it replays)",
    "experiments.runner": "sends an experiment's runs",
    "experiments.sender": "sends one run",
    "experiments.sweeps": "sends a sweep's runs",
    "experiments.cases": "reads and writes CSV and JSONL case files",
    "experiments.results": "writes CSV and JSONL",
    "experiments.cell": "prints progress of %%experiment",
}
IO_LIBRARIES = {"requests", "urllib3", "IPython", "anywidget", "ipywidgets", "nbformat", "sqlite3", "traitlets"}
IO_LIBRARIES |= {"socket", "subprocess", "http", "urllib.request", "shutil", "tempfile"}
IO_CALLS = {"open", "print", "input"}
ENDPOINT_NAMES = {"chat", "responses"}
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 50
# A cohesive module may pass the cap (STYLE.md: a cap is a prompt to look, not a rule to split).
LONG_MODULES: dict[str, str] = {
    "experiments.results": "the result type: runs, aggregates, exports, and the entry points of the statistics and views",
}


@cache
def modules() -> dict[str, Path]:
    """Every module by its dotted name inside the package ("gateway.client", "gateway.dialects.chat";
    a package's ``__init__`` by the package's name, the root's as "__init__")."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


@cache
def imports(name: str, path: Path) -> frozenset[str]:
    """Imported names (function-level ones too; ``if TYPE_CHECKING:`` blocks left out), the
    package's own without the "elk_jupyter." prefix; ``from pkg import module`` names the module."""
    tree = ast.parse(path.read_text())
    skipped = {id(n) for block in ast.walk(tree) if _type_checking(block) for n in ast.walk(block)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {_own(alias.name) for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{name}: imports are absolute (from elk_jupyter.<folder>.<module>)"
            module = _own(node.module or "")
            for alias in node.names:
                candidate = f"{module}.{alias.name}" if module != "." else alias.name
                found.add(candidate if candidate in modules() else module)
    return frozenset(n for n in found if n != ".")


def _type_checking(node) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _own(name: str) -> str:
    if name == "elk_jupyter":
        return "."
    return name.removeprefix("elk_jupyter.") if name.startswith("elk_jupyter.") else name


def folder(name: str) -> str:
    return name.split(".")[0]


def layer(name: str) -> int:
    return len(LAYERS) if name == "__init__" else LAYERS.index(folder(name))


def own_imports() -> dict[str, set[str]]:
    """module -> the package modules it imports."""
    everything = modules()
    return {name: {i for i in imports(name, path) if i in everything} for name, path in everything.items()}


def test_every_module_sits_in_a_layer():
    for name in modules():
        assert name == "__init__" or folder(name) in LAYERS, f"{name}: add its folder to LAYERS"


def test_each_folder_imports_only_the_folders_below_it():
    crossings_seen = set()
    for name, found in own_imports().items():
        for imported in found:
            if layer(imported) <= layer(name):
                continue
            assert imported in CROSSINGS.get(name, {}), (
                f"{name} (layer {folder(name)}) imports {imported} from the layer above ({folder(imported)})"
            )
            crossings_seen.add((name, imported))
    listed = {(module, imported) for module, allowed in CROSSINGS.items() for imported in allowed}
    assert listed == crossings_seen, f"crossings no longer made (remove them): {listed - crossings_seen}"


def test_no_import_cycle():
    graph = own_imports()
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(start):  # an explicit stack: the graph is small, but the rule is the rule
        stack = [(start, iter(sorted(graph[start])))]
        path = [start]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
                path.pop()
            elif state.get(child) == 1:
                raise AssertionError("import cycle: " + " → ".join([*path[path.index(child) :], child]))
            elif child not in state:
                state[child] = 1
                stack.append((child, iter(sorted(graph[child]))))
                path.append(child)

    for name in sorted(graph):
        if name not in state:
            visit(name)


def test_nothing_imports_the_front_end_but_the_package_root():
    for name, found in own_imports().items():
        if name != "__init__" and folder(name) != "front":
            assert not {i for i in found if folder(i) == "front"}, f"{name} imports front/"


def test_each_library_lives_in_one_module_or_folder():
    for name, path in modules().items():
        for imported in imports(name, path):
            top = imported.split(".")[0]
            if top in OWNERS:
                assert any(name == o or name.startswith(o + ".") for o in OWNERS[top]), f"{name} imports {imported}"


def test_pure_modules_do_no_io():
    for name, path in modules().items():
        if folder(name) in IO_FOLDERS or name in IO_MODULES or name == "__init__":
            continue
        found = imports(name, path)
        libraries = {i for i in found if i in IO_LIBRARIES or i.split(".")[0] in IO_LIBRARIES}
        assert not libraries, f"{name} is pure but imports {libraries}"
        io = {i for i in found if (i in IO_MODULES or folder(i) in IO_FOLDERS) and folder(i) != folder(name)}
        assert not io, f"{name} is pure but imports the I/O modules {io}"  # its own folder's values are fine
        calls = {
            node.func.id
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in IO_CALLS
        }
        assert not calls, f"{name} is pure but calls {calls}"
    assert set(IO_MODULES) <= set(modules()), set(IO_MODULES) - set(modules())


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
    """``from elk_jupyter import x`` names a module or folder, never the lazy root's own names."""
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "elk_jupyter" and name != "__init__":
                for alias in node.names:
                    assert alias.name in modules(), f"{name} imports {alias.name} from the package root"


def test_modules_and_functions_stay_small():
    for name, path in modules().items():
        source = path.read_text()
        if name not in LONG_MODULES:
            assert source.count("\n") <= MAX_MODULE_LINES, f"{name} has {source.count(chr(10))} lines"
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                assert length <= MAX_FUNCTION_LINES, f"{name}.{node.name} has {length} lines"
    assert set(LONG_MODULES) <= set(modules())


def test_every_module_says_what_it_owns():
    for name, path in modules().items():
        docstring = ast.get_docstring(ast.parse(path.read_text()))
        assert docstring and docstring.strip(), f"{name} has no docstring saying what it owns"


def main() -> None:
    """Each folder, bottom to top, and the folders it imports."""
    uses = defaultdict(set)
    for name, found in own_imports().items():
        uses[folder(name) if name != "__init__" else "(package root)"] |= {folder(i) for i in found} - {folder(name)}
    for name in (*LAYERS, "(package root)"):
        below = sorted(uses[name], key=lambda f: LAYERS.index(f))
        print(f"{name:14} imports {', '.join(below) or '-'}")
    for module, allowed in CROSSINGS.items():
        for imported, why in allowed.items():
            print(f"  crossing: {module} -> {imported}: {why}")


if __name__ == "__main__":
    main()
