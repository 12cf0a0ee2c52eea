"""Regenerate the committed notebooks from a real model, in today's output format: `python notebooks/regenerate.py`.

It starts llama.cpp's llama-server with SmolLM2-135M on 127.0.0.1:8080 (the address the committed records name, so
`bash .ci/quickstart` and the tests replay them offline), executes every notebook here in a real kernel (nbclient)
with this checkout's package, live (`ELK_REPLAY=off`, an empty cache), writes it back, stops the server, and runs
tests/test_notebooks.py, the test that fails whenever a committed notebook is not what the current code writes.

Where the server and the model are: `--llama-server PATH` / `$LLAMA_SERVER`, else `llama-server` on PATH, else
`llama/build/bin/llama-server` in a folder above this checkout; `--model PATH` / `$LLAMA_MODEL`, else
`llama/MODELS/SmolLM2-135M-Instruct.Q4_1.gguf` likewise. How to get both: ../shared/recipes/local-model.md (CONTRIBUTING.md).
If 8080 already serves `smollm2` (a llama-server someone started), that one is used. Anything missing is one line
and exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = ["quickstart.ipynb", "experiments.ipynb"]
HOST, PORT, ALIAS = "127.0.0.1", 8080, "smollm2"
BASE_URL = f"http://{HOST}:{PORT}/v1"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


class Refused(Exception):
    """Something the regeneration needs is missing: one line for the user."""


def _found_above(*parts: str) -> Path | None:
    for folder in [REPO, *REPO.parents]:
        candidate = folder.joinpath(*parts)
        if candidate.exists():
            return candidate
    return None


def locate(given: str | None, env: str, fallback: Path | None, what: str) -> Path:
    path = given or os.environ.get(env) or (str(fallback) if fallback else None)
    if not path or not Path(path).is_file():
        raise Refused(f"{what} not found ({path or 'nowhere'}): pass it or set ${env}; see CONTRIBUTING.md")
    return Path(path)


def _models() -> list[str] | None:
    """The ids 127.0.0.1:8080 serves, or None when nothing answers there."""
    try:
        with urllib.request.urlopen(f"{BASE_URL}/models", timeout=2) as response:
            return [m.get("id") for m in json.load(response).get("data", [])]
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def llama_server(binary: Path, model: Path, log_path: Path):
    """llama-server as the recipe starts it; yields once it answers, stops it at the end."""
    served = _models()
    if served is not None:
        if ALIAS not in served:
            raise Refused(f"{HOST}:{PORT} is in use by a server that does not serve {ALIAS!r} ({served}); stop it")
        print(f"using the llama-server already on {HOST}:{PORT}")
        yield
        return
    command = [str(binary), "-m", str(model), "--alias", ALIAS, "--host", HOST, "--port", str(PORT)]
    command += ["-c", "4096", "-n", "512", "-t", "2", "--jinja", "--seed", "7"]  # -n: the tiny model can loop
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while _models() is None:
            if process.poll() is not None or time.monotonic() > deadline:
                raise Refused(f"llama-server did not start (exit {process.poll()}); see {log_path}")
            time.sleep(0.3)
        yield
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def execute(path: Path, cache: Path, recorded: Path | None = None) -> int:
    """Run ``path`` afresh (outputs cleared) against the live server, or with ``recorded`` (a copy of the notebook as
    it was) replaying its own records; write it back. Returns its code cells."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    original = path.read_bytes()
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cell.metadata.pop("execution", None)
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, path)  # nothing of the old outputs is left for a cell to read back (restore, resume)
    env = {
        "ELK_BASE_URL": BASE_URL,
        "ELK_MODEL": ALIAS,
        # live: a fresh recording, nothing replays from the old outputs or a cache; --replay: only the old records
        "ELK_REPLAY": "only" if recorded else "off",
        "ELK_CACHE_DIR": str(cache),
        "JPY_SESSION_NAME": str(recorded or path),
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    }
    os.environ.pop("ELK_API_KEY", None)  # a server on 127.0.0.1 needs none, and none may reach a notebook
    os.environ.update(env)
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=900,
        store_widget_state=False,  # a saved turn needs no widget state (docs/record.md)
        record_timing=False,  # no timestamps in the committed file
        resources={"metadata": {"path": str(path.parent)}},
    )
    try:
        client.execute()
    except (CellExecutionError, TimeoutError, RuntimeError) as error:
        path.write_bytes(original)  # the committed notebook stays as it was
        last = [line for line in str(error).splitlines() if line.strip()][-1:] or [type(error).__name__]
        raise Refused(f"{path.name}: a cell failed, notebook left unchanged: {last[0]}") from None
    nbformat.write(nb, path)
    return sum(cell.cell_type == "code" for cell in nb.cells)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", default=NOTEBOOKS, help="names under notebooks/ (default: all)")
    parser.add_argument("--llama-server", help="the llama-server binary")
    parser.add_argument("--model", help=f"the GGUF file ({MODEL_FILE})")
    parser.add_argument("--no-check", action="store_true", help="skip tests/test_notebooks.py afterwards")
    parser.add_argument(
        "--replay",
        action="store_true",
        help="no server: re-execute with ELK_REPLAY=only, so the recorded replies are written in today's format",
    )
    args = parser.parse_args(argv)
    try:
        if args.replay:
            return _replay_all(args) or (0 if args.no_check else _check())
        on_path = shutil.which("llama-server")
        binary = locate(
            args.llama_server,
            "LLAMA_SERVER",
            Path(on_path) if on_path else _found_above("llama", "build", "bin", "llama-server"),
            "llama-server",
        )
        model = locate(args.model, "LLAMA_MODEL", _found_above("llama", "MODELS", MODEL_FILE), "the SmolLM2 model")
        paths = [REPO / "notebooks" / name for name in args.notebooks]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise Refused(f"no such notebook: {', '.join(missing)}")
        with tempfile.TemporaryDirectory(prefix="elk-regenerate-") as scratch:
            with llama_server(binary, model, Path(scratch) / "llama-server.log"):
                for path in paths:
                    started = time.monotonic()
                    cells = execute(path, Path(scratch) / "cache")
                    print(f"{path.relative_to(REPO)}: {cells} code cells in {time.monotonic() - started:.0f} s")
    except Refused as refused:
        print(f"regenerate: {refused}", file=sys.stderr)
        return 2
    return 0 if args.no_check else _check()


def _replay_all(args) -> int:
    """``--replay``: each notebook re-executed from its own records (the replies a real model gave when it was last
    recorded live), so a change of output format needs no model; the records say ``replayed``."""
    with tempfile.TemporaryDirectory(prefix="elk-regenerate-") as scratch:
        for name in args.notebooks:
            path = REPO / "notebooks" / name
            recorded = Path(scratch) / name
            shutil.copyfile(path, recorded)
            try:
                cells = execute(path, Path(scratch) / "cache", recorded)
            except Refused as refused:
                print(f"regenerate: {refused}", file=sys.stderr)
                return 2
            print(f"{path.relative_to(REPO)}: {cells} code cells replayed")
    return 0


def _check() -> int:
    test = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_notebooks.py"]
    return subprocess.run(test, cwd=REPO).returncode


if __name__ == "__main__":
    sys.exit(main())
