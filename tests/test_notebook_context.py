"""What the notebook tells the model: a bounded DataFrame preview, the last error without ANSI
codes and with its cell, the previous cells, code put into the next cell. Real IPython shell."""

from __future__ import annotations

import numpy as np
import pandas as pd

from elk_jupyter.media import notebook_context
from tests.test_magics import run

CHAT = "/chat/completions"


def last_prompt(gateway) -> str:
    return gateway.bodies(CHAT)[-1]["messages"][-1]["content"]


def test_a_million_row_dataframe_interpolates_as_a_bounded_preview(ip, gateway):
    rows = 1_000_000
    ip.user_ns["df"] = pd.DataFrame({"id": np.arange(rows), "price": np.arange(rows) * 0.5, "name": ["x|y"] * rows})
    assert run(ip, "%%chat -i\nSummarise ${df}").success
    assert last_prompt(gateway) == (
        "Summarise DataFrame: 1000000 rows × 3 columns\n"
        "dtypes: id: int64, price: float64, name: str\n"
        "\n"
        "|  | id | price | name |\n"
        "|---|---|---|---|\n"
        "| 0 | 0 | 0.0 | x\\|y |\n"
        "| 1 | 1 | 0.5 | x\\|y |\n"
        "| 2 | 2 | 1.0 | x\\|y |\n"
        "| 3 | 3 | 1.5 | x\\|y |\n"
        "| 4 | 4 | 2.0 | x\\|y |\n"
        "(999995 more rows not shown)"
    )


def test_wide_frames_and_long_cells_stay_bounded():
    frame = pd.DataFrame({f"c{i}": ["long " * 100] for i in range(500)})
    preview = notebook_context.prompt_text(frame)
    assert preview.startswith("DataFrame: 1 rows × 500 columns (first 20 shown)")
    assert len(preview) < 3_000
    assert notebook_context.prompt_text(pd.Series([1, 2], name="s")).startswith("DataFrame: 2 rows × 1 columns")
    assert notebook_context.prompt_text(7) == "7"


def test_elk_explain_sends_the_last_traceback_without_ansi_and_the_failing_cell(ip, gateway):
    run(ip, "def check(x):\n    raise ValueError('\\x1b[31mred\\x1b[0m is not allowed')\n")
    failing = "value = 3\ncheck(value)"
    assert not run(ip, failing).success
    assert run(ip, "%elk explain").success
    prompt = last_prompt(gateway)
    assert prompt.startswith("Explain this error from my notebook and how to fix it.\n\nThe failing cell:\n")
    assert f"```python\n{failing}\n```" in prompt
    assert "ValueError: red is not allowed" in prompt and "\x1b" not in prompt
    assert "check(value)" in prompt.split("The traceback:")[1]  # the frames name the cell's lines


def test_dollar_error_in_an_interpolated_cell_is_the_same_text(ip, gateway):
    assert not run(ip, "1 / 0").success
    assert run(ip, "%%chat -i\nWhy? $_error").success
    assert "ZeroDivisionError: division by zero" in last_prompt(gateway)
    assert "```python\n1 / 0\n```" in last_prompt(gateway)


def test_cells_includes_the_previous_code_cells(ip, gateway):
    ip.run_cell("a = 1", store_history=True)  # as a kernel runs every cell
    ip.run_cell("b = a + 1", store_history=True)
    assert run(ip, "%%chat --cells 2\nWhat do these do?").success
    assert last_prompt(gateway) == (
        "The 2 notebook cells run before this one, oldest first:\n\n"
        "```python\na = 1\n```\n\n```python\nb = a + 1\n```\n\nWhat do these do?"
    )


def test_code_puts_the_first_code_block_into_the_next_input(ip, gateway, capsys):
    gateway.plan(text="Try:\n\n```python\nprint('hi')\nx = 2\n```\n\nor\n\n```python\nother()\n```")
    ip.rl_next_input = None
    assert run(ip, "%%chat --code\nShow me code").success
    assert ip.rl_next_input == "print('hi')\nx = 2"
    assert "--code: 2 lines put into the next prompt" in capsys.readouterr().out
    gateway.plan(text="no code here")
    assert run(ip, "%%chat --code\nAgain").success
    assert "--code: the reply has no code block" in capsys.readouterr().out


def test_dry_run_shows_the_context_that_would_be_sent(ip, gateway, capsys):
    import json

    ip.user_ns["df"] = pd.DataFrame({"a": [1]})
    ip.run_cell("x = 1", store_history=True)
    assert run(ip, "%%chat -i --cells 1 --dry-run\nLook at ${df}").success
    body = json.loads(capsys.readouterr().out)
    assert body["messages"][-1]["content"] == (
        "The 1 notebook cells run before this one, oldest first:\n\n```python\nx = 1\n```\n\n"
        "Look at DataFrame: 1 rows × 1 columns\ndtypes: a: int64\n\n|  | a |\n|---|---|\n| 0 | 1 |"
    )
    assert gateway.requests == []
