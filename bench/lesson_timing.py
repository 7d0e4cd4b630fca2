"""The lesson's promise, measured: first heatmap within 5 s of Train, the whole lesson in 60 s.

App: ``streamlit run`` on a free port over an empty store, headless Chromium opens the Learn
page, clicks Train, and times the first affinity heatmap (the "Affinity so far" caption) and
the end of the lesson (all three runs finished: the "At the end," explanation).

Baseline, same run: the same three lesson configs trained by ``mtl_core.train.loop.train`` in a
fresh Python process (torch import included, as a worker pays it), one after another, timing
the first logged matrix and the end. The ratio app / baseline is what the app adds (process
start, store writes, polling) minus what its two workers win by training runs side by side.

    python -m bench.lesson_timing [--repeats 2]

Needs Chromium at /usr/bin/chromium and the playwright package.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.helpers.app_server import running_app  # the shared app-server helper

ROOT = Path(__file__).resolve().parent.parent

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
TARGET_FIRST_S, TARGET_TOTAL_S = 5.0, 60.0

BASELINE = r"""
import json, sys, time
t0 = time.perf_counter()
from mtl_core.lesson import workflow as lesson
from mtl_core.train.loop import train
first = None
def on_step(e):
    global first
    if first is None and e.affinity:
        first = time.perf_counter() - t0
knobs = {}
groups = lesson.planted_groups(knobs)
for mode in ("together", "groups", "single"):
    cfg = lesson.base_config(mode, knobs, label="bench",
                             **({"groups": groups} if mode == "groups" else {}))
    train(cfg, on_step)
print(json.dumps({"first": first, "total": time.perf_counter() - t0}))
"""


def baseline() -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", BASELINE], capture_output=True, text=True, check=True, cwd=str(ROOT)
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def app_once(timeout_s: float, settle_s: float) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    folder = Path(tempfile.mkdtemp(prefix="lesson_timing_"))
    env = {**os.environ, "MTL_LAB_STORE": str(folder / "store.sqlite")}
    env.pop("MTL_LAB_TRAIN_FN", None)
    env["MTL_LAB_LESSON_AHEAD"] = "off"  # one lesson trained on the press, not replayed
    with running_app(env, folder / "server.log", timeout_s=timeout_s) as url:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1300, "height": 1200})
            page.goto(url + "/")
            button = page.get_by_role("button", name="Train")
            button.wait_for(timeout=timeout_s * 1000)
            time.sleep(settle_s)  # a learner reads the page before pressing Train
            button.click()
            t0 = time.perf_counter()
            page.get_by_text("Affinity so far: step", exact=False).wait_for(
                timeout=timeout_s * 1000
            )
            first = time.perf_counter() - t0
            page.get_by_text("At the end,", exact=False).first.wait_for(timeout=timeout_s * 1000)
            total = time.perf_counter() - t0
            errors = page.locator("[data-testid='stException']").count()
            browser.close()
        return {"first": first, "total": total, "errors": errors}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=180.0)
    ap.add_argument(
        "--settle",
        type=float,
        default=10.0,
        help="seconds between the page showing and the click on Train",
    )
    args = ap.parse_args()
    if not Path(CHROMIUM).exists():
        print(f"needs Chromium at {CHROMIUM}", file=sys.stderr)
        return 2
    base = [baseline() for _ in range(args.repeats)]
    app = [app_once(args.timeout, args.settle) for _ in range(args.repeats)]
    print(f"Lesson timing, {args.repeats} repeat(s), median ({os.cpu_count()} CPUs)")
    print(f"{'':<36}{'baseline s':>12}{'app s':>10}{'app/base':>10}{'target s':>10}{'met':>6}")
    for key, label, target in (
        ("first", "Train -> first heatmap", TARGET_FIRST_S),
        ("total", "Train -> lesson finished", TARGET_TOTAL_S),
    ):
        b = statistics.median(r[key] for r in base)
        a = statistics.median(r[key] for r in app)
        print(
            f"{label:<36}{b:>12.2f}{a:>10.2f}{a / b:>10.2f}{target:>10.0f}"
            f"{'yes' if a <= target else 'no':>6}"
        )
    errors = sum(r["errors"] for r in app)
    print(f"app exceptions shown: {errors}")
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
