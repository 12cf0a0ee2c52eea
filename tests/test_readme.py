"""README's usage examples run: every ```ipython and ```python block, in order, in one real shell."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from IPython import get_ipython
from IPython.testing.globalipapp import start_ipython

from elk_jupyter.magics import ElkMagics
from tests.fake_gateway import FakeGateway

README = Path(__file__).resolve().parent.parent / "README.md"


def blocks(language: str | None = None) -> list[tuple[str, str]]:
    found = re.findall(r"```(\w+)\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    return [(lang, code) for lang, code in found if language is None or lang == language]


@pytest.fixture
def shell(monkeypatch, tmp_path):
    gateway = FakeGateway()
    monkeypatch.setenv("ELK_API_KEY", "sk-readme-test-0000")
    monkeypatch.setenv("ELK_BASE_URL", gateway.base_url)
    monkeypatch.setenv("ELK_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("ELK_REPLAY", "off")
    ip = start_ipython() or get_ipython()
    ip.run_line_magic("load_ext", "elk_jupyter")
    ip.register_magics(ElkMagics(ip))
    yield ip, gateway
    gateway.close()


def test_readme_examples_run(shell):
    ip, gateway = shell
    runnable = [(lang, code) for lang, code in blocks() if lang in ("ipython", "python")]
    assert len(runnable) >= 6
    for _, code in runnable:
        result = ip.run_cell(code)
        assert result.success, f"README block failed:\n{code}\n{result.error_before_exec or result.error_in_exec!r}"
    bodies = gateway.bodies()
    assert any(b.get("seed") == 7 and b.get("temperature") == 0 for b in bodies)


def test_readme_gives_the_two_commands_and_ci_runs_the_test_one():
    commands = [code.strip() for lang, code in blocks("bash")]
    assert "bash .ci/quickstart" in commands and "bash .ci/test" in commands
    assert "bash .ci/test" in (README.parent / ".ci" / "run").read_text()
