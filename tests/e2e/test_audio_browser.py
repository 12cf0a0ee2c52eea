"""Audio replies in JupyterLab (issue 18): ``%%chat --audio`` run from the Run menu against a local server
streaming a real WAV, saved with Ctrl+S, reopened with no kernel. The finished turn shows a player: a short clip
from the bytes in the bundle, a long one from the file beside the notebook that Jupyter serves under /files/.
Nothing is fetched before the user plays it, and no URL outside the Jupyter server is ever used."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil

import pytest

from tests.e2e.conftest import ARTIFACTS, lab_home, lab_server
from tests.e2e.lab import NB, run_all, save
from tests.e2e.test_saved_notebook import NO_KERNELS, TURN_MIME, fresh_page, open_saved
from tests.scripted_server import Script, ScriptedServer
from tests.test_audio import streamed, wav_bytes

PLAYERS = f"{NB} .elk-turn-output audio.elk-audio-player"
FETCH_BASE64 = """async (src) => {
  const bytes = new Uint8Array(await (await fetch(src)).arrayBuffer());
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text);
}"""


@pytest.fixture
def speaking():
    server = ScriptedServer()
    yield server
    server.close()


def players(page) -> list[dict]:
    return page.locator(PLAYERS).evaluate_all(
        "(nodes) => nodes.map((n) => ({src: n.getAttribute('src') || '', preload: n.preload, caption: "
        "n.previousElementSibling.textContent}))"
    )


def test_audio_turns_show_a_player_live_and_reopened_from_bytes_or_the_file_beside_the_notebook(
    browser, jupyter, speaking, tmp_path_factory
):
    import nbformat

    from tests.e2e.lab import KERNELSPEC

    short, long = wav_bytes(0.2), wav_bytes(1.0)  # 6 KB stays in the notebook, 32 KB goes beside it
    speaking.queue(Script.sse(streamed(short)), Script.sse(streamed(long)))
    name = "spoken.ipynb"
    setup = f'%load_ext elk_jupyter\nimport os\nos.environ["ELK_BASE_URL"] = "{speaking.base_url}"\n'
    setup += "%config ElkMagics.audio_inline_bytes = 20000"
    cells = [setup, "%%chat --audio alloy:wav\nShort.", "%%chat --audio alloy:wav\nLong."]
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(c) for c in cells], metadata={"kernelspec": KERNELSPEC}
    )
    nbformat.write(nb, str(jupyter["root"] / name))
    beside = f"{hashlib.sha256(long).hexdigest()}.wav"

    context, page = fresh_page(browser)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    try:
        run_all(page, jupyter["url"], "lab", name, len(cells))
        page.wait_for_function("(sel) => document.querySelectorAll(sel).length >= 2", arg=PLAYERS, timeout=60_000)
        live = players(page)
        assert live[0]["src"].startswith("blob:") and f"/files/{beside}" in live[1]["src"]
        assert [p["preload"] for p in live] == ["none", "none"]
        assert (
            live[0]["caption"] == "audio · 0.2 s · wav · 6 KB" and live[1]["caption"] == "audio · 1.0 s · wav · 31 KB"
        )
        assert not [url for url in requested if beside in url]  # nothing fetched before play
        assert all(url.startswith((jupyter["url"], "blob:", "data:")) for url in requested), requested
        # what the player would play is exactly the WAV the server streamed
        assert [page.evaluate(FETCH_BASE64, p["src"]) for p in live] == [
            base64.b64encode(x).decode() for x in (short, long)
        ]
        assert (jupyter["root"] / beside).read_bytes() == long
        saved = save(page, jupyter["root"] / name, 2)
    except Exception:
        page.screenshot(path=str(ARTIFACTS / "audio_failed.png"), full_page=True)
        raise
    finally:
        context.close()

    views = [
        o["data"][TURN_MIME] for c in saved["cells"] for o in c.get("outputs", []) if TURN_MIME in o.get("data", {})
    ]
    assert base64.b64decode(views[0]["audio"]["data"]) == short and views[1]["audio"]["file"] == beside
    assert "data" not in views[1]["audio"] and len(json.dumps(saved)) < len(long)
    outputs = [o for c in saved["cells"] for o in c.get("outputs", []) if TURN_MIME in o.get("data", {})]
    markdown = "".join("".join(o["data"]["text/markdown"]) for o in outputs)  # nbformat keeps lines as a list
    assert "<audio" not in markdown and "data:audio" not in markdown and "audio: 1.0 s wav clip" in markdown

    # Reopened elsewhere with no kernel: the notebook and the file beside it, nothing else.
    root = tmp_path_factory.mktemp("audio-view")
    for file in (name, beside):
        shutil.copy(jupyter["root"] / file, root / file)
    env = dict(jupyter["env"], **lab_home(tmp_path_factory.mktemp("audio-home"), jupyter["data"]))
    with lab_server(root, env, NO_KERNELS, log_name="jupyter-audio.log") as base:
        context, page = fresh_page(browser)
        requested.clear()
        page.on("request", lambda request: requested.append(request.url))
        try:
            open_saved(page, base, "lab", name, kernel_dialog=True)
            page.wait_for_function("(sel) => document.querySelectorAll(sel).length >= 2", arg=PLAYERS, timeout=60_000)
            page.wait_for_timeout(300)
            reopened = players(page)
            assert reopened[0]["src"].startswith("blob:") and f"/files/{beside}" in reopened[1]["src"]
            assert [p["caption"] for p in reopened] == [p["caption"] for p in live]
            assert not [url for url in requested if beside in url]
            assert page.evaluate(FETCH_BASE64, reopened[1]["src"]) == base64.b64encode(long).decode()
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "audio_reopened_failed.png"), full_page=True)
            raise
        finally:
            context.close()
