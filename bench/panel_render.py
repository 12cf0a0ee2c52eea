"""The panel at any length: a reply streamed into the real front-end bundle in a real browser (Debian's
Chromium via Playwright, no Jupyter), 200-character deltas at 25 updates a second (the kernel's cadence).

Prints, per reply size, the long tasks (> 50 ms, from the browser's PerformanceObserver) and the main-thread
milliseconds our code takes per update (early in the stream and late in it: a flat cost means O(delta)), side
by side with the baseline: the same render policy drawing the whole Markdown on every update (the panel before
issue 15). The baseline is bundled from js/render.js with esbuild (node_modules, from `npm ci`).

    .venv/bin/python bench/panel_render.py [--small] [--sizes 10000,50000,200000] [--before REF]

First, the first paint (issue 25): a fresh page loads the bundle of this checkout and of REF (main before
issue 25), draws an empty panel, and gets its first delta; the longest task of each phase, side by side.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import machine, table  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ORIGIN = "http://bench.invalid"  # every request is answered by the route below: nothing leaves the machine
DELTA_CHARS = 200
PER_SECOND = 25
BASELINE_TAIL = 25_000


def reply_text(size: int) -> str:
    """A long answer as models write them: headings, prose with emphasis and code spans, lists, code, math."""
    parts = []
    n = 0
    while sum(map(len, parts)) < size:
        n += 1
        parts.append(
            f"## Step {n}\n\nThe **{n}th** point: call `solve({n})` and read the result; with $x_{n} = x^2$ "
            "the loop ends early, as the *second* test shows. Each pass keeps its own state.\n\n"
            f"- item {n}.1 with a [link](https://example.com/{n})\n- item {n}.2\n- item {n}.3\n\n"
        )
        if n % 2:
            parts.append(
                f"```python\ndef step_{n}(x):\n    total = sum(i * x for i in range({n}))\n    return total\n```\n\n"
            )
    return "".join(parts)[:size]


def baseline_bundle() -> str:
    entry = 'export { createRenderPolicy } from "./js/render.js";'
    esbuild = ROOT / "node_modules" / ".bin" / "esbuild"
    out = subprocess.run(
        [str(esbuild), "--bundle", "--format=esm", "--minify", "--target=es2020"],
        input=entry,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    return out.stdout


def metrics(cdp) -> dict:
    return {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}


def run(page, cdp, mode: str, size: int, start_at: int = 0) -> dict:
    text = reply_text(size)
    before = metrics(cdp)
    result = page.evaluate(
        "(args) => window.benchStream(args)",
        {"mode": mode, "text": text, "deltaChars": DELTA_CHARS, "perSecond": PER_SECOND, "startAt": start_at},
    )
    after = metrics(cdp)
    spent = {k: after[k] - before[k] for k in ("ScriptDuration", "LayoutDuration", "RecalcStyleDuration")}
    work = result["work"]
    tenth = max(1, len(work) // 10)
    return {
        "long": len(result["longTasks"]),
        "longest": max(result["longTasks"], default=0),
        "blocked": sum(result["longTasks"]) / 1000,
        "early": statistics.median(work[:tenth]),
        "late": statistics.median(work[-tenth:]),
        "max": max(work),
        "worst_at": result["worstAt"],
        "updates": len(work),
        "seconds": result["seconds"],
        "split": "/".join(f"{spent[k]:.1f}" for k in ("ScriptDuration", "RecalcStyleDuration", "LayoutDuration")),
    }


BEFORE = "36925a2"  # main before issue 25: highlight.js and its grammars evaluated with the bundle
FIRST_PAGE = (
    b"<!DOCTYPE html><meta charset=utf-8><script>window.longTasks = []; new PerformanceObserver((l) => "
    b"window.longTasks.push(...l.getEntries().map((e) => [e.startTime, e.duration])))"
    b".observe({type: 'longtask', buffered: true});</script><body></body>"
)
FIRST_TEXT = "Here is the **answer**: call `f(x)`, then\n\n```python\nprint(1)\n```\n\nand that is all.\n\nThe end.\n"


def bundle_at(ref: str) -> bytes | None:
    out = subprocess.run(["git", "show", f"{ref}:elk_jupyter/static/panel.js"], capture_output=True, cwd=ROOT)
    return out.stdout if out.returncode == 0 else None


def serving(files: dict):
    def fulfil(route):
        content_type, body = files[route.request.url[len(ORIGIN) :]]
        route.fulfill(status=200, content_type=content_type, body=body)

    return fulfil


def first_paint(browser, bundles: dict, rounds: int, first_delta_after: int) -> list:
    """Rows: per bundle, the longest task in each phase of a fresh page's first paint (medians over rounds)."""
    css = (ROOT / "elk_jupyter/static/panel.css").read_bytes()
    script = (ROOT / "bench/panel_render.js").read_bytes()
    results = {name: [] for name in bundles}
    for _ in range(rounds):  # interleaved, a fresh browser context each time (nothing cached or compiled)
        for name, bundle in bundles.items():
            files = {"/": ("text/html", FIRST_PAGE), "/static/panel.js": ("text/javascript", bundle)}
            files |= {"/static/panel.css": ("text/css", css), "/bench.js": ("text/javascript", script)}
            context = browser.new_context()
            page = context.new_page()
            page.route(f"{ORIGIN}/**", serving(files))
            page.goto(ORIGIN + "/")
            page.add_style_tag(url=ORIGIN + "/static/panel.css")
            page.add_script_tag(url=ORIGIN + "/bench.js")
            args = {"src": ORIGIN + "/static/panel.js", "firstDeltaAfter": first_delta_after, "text": FIRST_TEXT}
            results[name].append(page.evaluate("(args) => window.benchFirstPaint(args)", args))
            context.close()
    rows = []
    for name, runs in results.items():
        med = lambda key: statistics.median(r[key] for r in runs)  # noqa: E731
        clean = sum(1 for r in runs if max(r["load"], r["firstDelta"]) <= 50)
        rows.append(
            [
                name,
                f"{len(bundles[name]):,}",
                f"{med('load'):.0f} ms",
                f"{med('idle'):.0f} ms",
                f"{med('firstDelta'):.0f} ms",
                f"{clean} of {len(runs)}",
                f"{med('toPanel'):.0f} / {med('toFirstDelta'):.0f} ms",
                f"{min(r['highlighted'] for r in runs)}",
            ]
        )
    return rows


FIRST_HEADER = [
    "bundle",
    "bytes",
    "longest task: load + empty panel",
    "idle before 1st delta",
    "1st delta's frame",
    "rounds with none > 50 ms",
    "to panel / to 1st delta",
    "code highlighted",
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", action="store_true", help="one small size (CI: keeps the script from rotting)")
    parser.add_argument("--sizes", default="10000,50000,200000")
    parser.add_argument("--only", choices=["full", "panel"], help="run one renderer")
    parser.add_argument("--before", default=BEFORE, help="the git ref whose bundle is the first paint's baseline")
    parser.add_argument("--first-rounds", type=int, default=15, help="fresh pages per bundle for the first paint")
    parser.add_argument("--first-delta-after", type=int, default=250, help="ms from the panel to the first delta")
    args = parser.parse_args()
    sizes = [4000] if args.small else [int(s) for s in args.sizes.split(",")]
    from playwright.sync_api import sync_playwright

    files = {
        "/": ("text/html", b"<!DOCTYPE html><meta charset=utf-8><body></body>"),
        "/static/panel.js": ("text/javascript", (ROOT / "elk_jupyter/static/panel.js").read_bytes()),
        "/static/panel.css": ("text/css", (ROOT / "elk_jupyter/static/panel.css").read_bytes()),
        "/bench.js": ("text/javascript", (ROOT / "bench/panel_render.js").read_bytes()),
        "/baseline.js": ("text/javascript", baseline_bundle().encode()),
    }
    print(f"machine: {machine()}")
    print(f"panel.js {len(files['/static/panel.js'][1]):,} bytes; {DELTA_CHARS}-char deltas at {PER_SECOND}/s\n")
    rows = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        bundles = {"after (this checkout)": files["/static/panel.js"][1]}
        before = bundle_at(args.before)
        if before is None:
            print(f"first paint: no baseline ({args.before} is not in this clone's history); this bundle alone")
        else:
            bundles = {f"before ({args.before})": before, **bundles}
        rounds = 2 if args.small else args.first_rounds
        first = first_paint(browser, bundles, rounds, args.first_delta_after)
        print(
            f"first paint: a fresh page per round, {rounds} rounds, the first delta {args.first_delta_after} ms after"
        )
        print("the panel is drawn; medians of each phase's longest task (0: none over 50 ms)")
        print(table(first, FIRST_HEADER) + "\n", flush=True)
        page = browser.new_page()
        page.route(
            f"{ORIGIN}/**",
            lambda route: route.fulfill(
                status=200,
                content_type=files[route.request.url[len(ORIGIN) :]][0],
                body=files[route.request.url[len(ORIGIN) :]][1],
            ),
        )
        cdp = page.context.new_cdp_session(page)
        cdp.send("Performance.enable")
        page.goto(ORIGIN + "/")
        page.add_style_tag(url=ORIGIN + "/static/panel.css")
        page.add_script_tag(url=ORIGIN + "/bench.js")
        for size in sizes:
            # Past BASELINE_TAIL the baseline would take minutes (each update redraws everything): it streams
            # only the reply's last BASELINE_TAIL characters, the part where its cost is highest.
            start_at = max(0, size - BASELINE_TAIL)
            full = "full re-render (before)" + (f", last {BASELINE_TAIL // 1000}k" if start_at else "")
            for mode, label, start in [("full", full, start_at), ("panel", "incremental (panel.js)", 0)]:
                if args.only and mode != args.only:
                    continue
                r = run(page, cdp, mode, size, start)
                rows.append(
                    [
                        f"{size:,}",
                        label,
                        r["long"],
                        f"{r['longest']:.0f} ms",
                        f"{r['blocked']:.1f} s of {r['seconds']:.1f} s",
                        f"{r['early']:.2f} ms",
                        f"{r['late']:.2f} ms",
                        f"{r['max']:.1f} ms (#{r['worst_at']} of {r['updates']})",
                        r["split"],
                    ]
                )
                print(table(rows[-1:], HEADER) if len(rows) == 1 else "  ".join(map(str, rows[-1])), flush=True)
        browser.close()
    print()
    print(table(rows, HEADER))


HEADER = [
    "chars",
    "renderer",
    "long tasks",
    "longest",
    "blocked",
    "ms/update early",
    "ms/update late",
    "worst update",
    "script/style/layout s",
]

if __name__ == "__main__":
    main()
