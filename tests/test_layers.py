"""The layering of STYLE.md, checked on the source: each third-party library lives in one module,
data flows one way, and nothing imports the magics."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "elk_jupyter"
# library -> the only modules allowed to import it
OWNERS = {
    "requests": {"client"},
    "urllib3": {"client"},
    "IPython": {"magics"},
    "anywidget": {"panel"},
    "ipywidgets": {"panel"},
    "nbformat": {"record"},
    "traitlets": {"magics", "panel"},
    "markdown_it": {"markdown_copy"},
    "mdit_py_plugins": {"markdown_copy"},
}
PURE = {
    "errors",
    "sse",
    "events",
    "frames",
    "chat",
    "endpoints",
    "responses",
    "reply",
    "session",
    "options",
    "render",
    "turn_output",
    "urls",
    "usage",
}
PURE |= {"markdown_copy", "markdown_inline"}  # the Markdown copy of a turn (issue 11)
PURE |= {"lineage", "context", "plan", "identity"}  # history checks, what a request carries, a planned turn


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            found.add(("." * node.level) + (node.module or ""))
    return found


def test_each_library_lives_in_one_module():
    for path in PACKAGE.glob("*.py"):
        for name in imports(path):
            top = name.split(".")[0]
            if top in OWNERS:
                assert path.stem in OWNERS[top], f"{path.name} imports {name}"


def test_pure_modules_do_no_io_and_nothing_imports_the_magics():
    for path in PACKAGE.glob("*.py"):
        names = imports(path)
        if path.stem != "__init__":
            assert ".magics" not in names, f"{path.name} imports the magics"
        if path.stem in PURE:
            assert not {n.split(".")[0] for n in names} & {
                "requests",
                "urllib3",
                "IPython",
                "anywidget",
                "nbformat",
                "sqlite3",
            }, path.name
            assert ".client" not in names and ".panel" not in names and ".record" not in names, path.name


def test_experiments_stay_below_the_magics_and_own_no_front_end_library():
    """elk_jupyter/experiments/: IPython, widgets and nbformat stay out (the magics hand over
    ``display``); its own optional libraries each live in one module."""
    own = {"jsonschema": {"scorers"}, "pandas": {"results"}}
    for path in (PACKAGE / "experiments").glob("*.py"):
        for name in imports(path):
            top = name.split(".")[0]
            assert top not in {"IPython", "anywidget", "ipywidgets", "traitlets", "nbformat"}, f"{path.name}: {name}"
            assert "magics" not in name, f"{path.name} imports the magics"
            if top in own:
                assert path.stem in own[top], f"{path.name} imports {name}"
