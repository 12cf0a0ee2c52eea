"""README's usage examples run: every ```ipython and ```python block, in order, in one real shell."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from IPython import get_ipython
from IPython.testing.globalipapp import start_ipython

from elk_jupyter.front.magics import ElkMagics
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


# The gateway plays the model in the tool examples: it calls the README's function, then answers.
TOOL_TURN = [{"tool_calls": [("word_count", '{"text": "to be or not to be"}')], "text": ""}, {"text": "Six."}]


def test_readme_examples_run(shell):
    ip, gateway = shell
    runnable = [(lang, code) for lang, code in blocks() if lang in ("ipython", "python")]
    assert len(runnable) >= 6
    for _, code in runnable:
        if "--tools word_count" in code or "tools=[word_count]" in code:
            for plan in TOOL_TURN:
                gateway.plan(**plan)
        result = ip.run_cell(code)
        assert result.success, f"README block failed:\n{code}\n{result.error_before_exec or result.error_in_exec!r}"
    bodies = gateway.bodies()
    assert any(b.get("seed") == 7 and b.get("temperature") == 0 for b in bodies)
    # The tool examples ran the function in this shell and sent its result back (twice: magic, Python).
    follow_ups = [b["messages"][-1] for b in bodies if b.get("messages") and b["messages"][-1]["role"] == "tool"]
    assert [m["content"] for m in follow_ups] == ["6", "6"]
    parts = [p for b in bodies for m in b.get("messages") or () if isinstance(m["content"], list) for p in m["content"]]
    assert any(p.get("image_url", {}).get("url", "").startswith("data:image/png;base64,iVBOR") for p in parts)


def test_readme_gives_the_two_commands_and_ci_runs_the_test_one():
    commands = [code.strip() for lang, code in blocks("bash")]
    assert "bash .ci/quickstart" in commands and "bash .ci/test" in commands
    assert "bash .ci/test" in (README.parent / ".ci" / "run").read_text()
