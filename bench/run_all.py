"""Run every benchmark (CI passes --small so they never rot; no timing is asserted anywhere)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = [
    "stream_consumption.py",
    "load_time.py",
    "first_turn.py",
    "frontend_traffic.py",
    "long_conversations.py",
    "long_replies.py",
    "markdown_copy.py",
    "panel_render.py",
    "locked_cache.py",
    "notebook_context.py",
    "experiment_throughput.py",
    "experiment_view.py",
    "audio_stream.py",
    "saved_notebook.py",
]

if __name__ == "__main__":
    for script in SCRIPTS:
        print(f"\n== {script}", flush=True)
        subprocess.run([sys.executable, str(HERE / script), *sys.argv[1:]], check=True)
