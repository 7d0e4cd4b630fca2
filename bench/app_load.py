"""Load: 10 headless browser pages on one app while 2 runs train.

Starts ``streamlit run`` on a free port over a temporary store, measures a baseline (one page,
nothing training), then queues two real training runs, which the app's own runner trains in
its worker processes, and, while both train, opens ``--pages`` pages at once (each in its own
browser context, i.e. its own Streamlit session) on Explore for the training runs. Reports
time to the first heatmap (median, p95, max), the server-side page-run times (from the app's
``MTL_LAB_TIMING_LOG``) and every error seen (app exceptions, browser console errors,
timeouts).

The browsers share the machine with the server here (in a classroom they run on the
students' laptops), so they run at the lowest CPU priority (nice 19): ``delivered`` then
measures the server, and ``drawn`` shows what is left for 10 browsers on the same cores.

    python -m bench.app_load [--pages 10] [--steps 3000]

Needs Chromium at /usr/bin/chromium and the playwright package.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tests.helpers.app_server import running_app  # the shared app-server helper

ROOT = Path(__file__).resolve().parent.parent

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
HEATMAP = "document.querySelectorAll('.js-plotly-plot .main-svg').length > 0"


async def open_page(browser, url: str, timeout_s: float) -> tuple[dict, list[str]]:
    """Seconds until the first heatmap reached the page over its websocket (``delivered``:
    the server's part) and until the browser drew it (``drawn``), and the errors seen."""
    ctx = await browser.new_context(viewport={"width": 1300, "height": 1000})
    page = await ctx.new_page()
    errors: list[str] = []
    out: dict = {"delivered": None, "drawn": None}
    t0 = time.perf_counter()

    def on_frame(payload) -> None:
        data = payload if isinstance(payload, bytes) else str(payload).encode()
        if out["delivered"] is None and b'"heatmap"' in data:
            out["delivered"] = time.perf_counter() - t0

    page.on("websocket", lambda ws: ws.on("framereceived", on_frame))

    def on_console(m) -> None:
        if m.type != "error":
            return
        where = (m.location or {}).get("url", "")
        # Streamlit's frontend probes /<page>/_stcore/... before the root path (404, benign);
        # offline machines cannot reach Google Fonts. Neither is an app error.
        if "Failed to load resource" in m.text and (
            "/_stcore/" in where or "127.0.0.1" not in where
        ):
            return
        errors.append(f"console: {m.text[:120]}")

    page.on("console", on_console)
    page.on("pageerror", lambda e: errors.append(f"page error: {str(e)[:120]}"))
    try:
        await page.goto(url, timeout=timeout_s * 1000)
        await page.wait_for_function(HEATMAP, timeout=timeout_s * 1000)
        out["drawn"] = time.perf_counter() - t0
        n_exc = await page.locator("[data-testid='stException']").count()
        if n_exc:
            errors.append(f"{n_exc} app exception(s) shown")
    except Exception as exc:  # timeouts are results here
        what = "not drawn" if out["delivered"] is not None else "not delivered"
        errors.append(f"{what} within {timeout_s:.0f} s ({type(exc).__name__})")
    await ctx.close()
    return out, errors


async def load(url_of, n: int, timeout_s: float) -> list[tuple[dict, list[str]]]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        results = await asyncio.gather(
            *(open_page(browser, url_of(i), timeout_s) for i in range(n))
        )
        await browser.close()
    return list(results)


def _stats(values: list[float]) -> tuple[float, float, float] | None:
    if not values:
        return None
    v = sorted(values)
    return statistics.median(v), v[max(0, int(round(0.95 * len(v))) - 1)], v[-1]


def summary(name: str, results, base: dict | None) -> list[str]:
    """Two table rows (delivered, drawn) for one scenario."""
    rows = []
    errs = sum(len(es) for _, es in results)
    for key in ("delivered", "drawn"):
        st_ = _stats([r[key] for r, _ in results if r[key] is not None])
        got = sum(r[key] is not None for r, _ in results)
        label = f"{name}: {key}"
        if st_ is None:
            rows.append(
                f"{label:<52}{'-':>8}{'-':>8}{'-':>8}{'-':>8}{got:>5}/{len(results)}"
                f"{errs if key == 'drawn' else '':>8}"
            )
            continue
        med, p95, mx = st_
        ratio = f"{med / base[key]:.2f}" if base and base.get(key) else "1.00"
        rows.append(
            f"{label:<52}{med:>8.2f}{p95:>8.2f}{mx:>8.2f}{ratio:>8}{got:>5}/"
            f"{len(results)}{errs if key == 'drawn' else '':>8}"
        )
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=10)
    ap.add_argument("--steps", type=int, default=3000, help="steps of each training run")
    ap.add_argument("--timeout", type=float, default=120.0)
    args = ap.parse_args()
    if not Path(CHROMIUM).exists():
        print(f"needs Chromium at {CHROMIUM}", file=sys.stderr)
        return 2

    from mtl_core.store import Store
    from tests.helpers.app_fixtures import config_dict, seed_run

    folder = Path(tempfile.mkdtemp(prefix="app_load_"))
    store = Store(folder / "store.sqlite")
    seeded = seed_run(
        store, name="finished", n_tasks=8, steps=500, config=config_dict(knobs={"tasks": 8})
    )
    timing = folder / "page_runs.csv"
    env = {
        **os.environ,
        "MTL_LAB_STORE": str(store.path),
        "MTL_LAB_WORKERS": "2",
        "MTL_LAB_TIMING_LOG": str(timing),
        "MTL_LAB_LESSON_AHEAD": "off",  # only the bench's own runs train
    }
    ids: list[int] = []
    with running_app(env, folder / "server.log") as url:
        # The browsers started from here run at the lowest priority: in real use they run on
        # the users' machines, so the server and its training workers get this machine's CPUs.
        os.nice(19)
        try:
            return _measure(url, store, seeded, ids, timing, args)
        finally:
            for rid in ids:
                store.request_cancel(rid)
            time.sleep(1.0)  # the app's runner stops its workers


def _measure(url: str, store, seeded: int, ids: list[int], timing: Path, args) -> int:
    """The three load scenarios against the running app; prints the table."""
    from mtl_core.config import RunConfig, TrainConfig

    rows = []
    # warm the server (first import of the pages), then the baseline: one page, idle
    asyncio.run(load(lambda i: f"{url}/explore?run={seeded}", 1, args.timeout))
    base_res = asyncio.run(load(lambda i: f"{url}/explore?run={seeded}", 1, args.timeout))
    base = base_res[0][0]
    rows += summary("1 page, idle (baseline)", base_res, None)
    idle = asyncio.run(load(lambda i: f"{url}/explore?run={seeded}", args.pages, args.timeout))
    rows += summary(f"{args.pages} pages, idle", idle, base)

    # Queue the runs in the store; the app's runner (started by the first page) trains them.
    for s in (0, 1):
        cfg = RunConfig(
            scenario="synthetic",
            knobs={"tasks": 8},
            train=TrainConfig(steps=args.steps, seed=s),
            name=f"load {s}",
        )
        ids.append(
            store.create_run(
                name=cfg.name,
                origin="trained",
                status="queued",
                config=cfg.to_dict(),
                steps_total=args.steps,
            )
        )
    t0 = time.time()
    while any(store.get_run(i).steps_done < 5 for i in ids):
        if time.time() - t0 > 120:
            raise SystemExit("training runs did not start")
        time.sleep(0.2)
    t_load = time.time()
    res = asyncio.run(load(lambda i: f"{url}/explore?run={ids[i % 2]}", args.pages, args.timeout))
    still = [store.get_run(i).status for i in ids]
    rows += summary(f"{args.pages} pages, 2 runs training", res, base)
    errors = [e for _, es in [*base_res, *idle, *res] for e in es]
    print(
        f"App load: time to first heatmap in seconds ({os.cpu_count()} CPUs; "
        f"runs still {', '.join(still)} at the end)"
    )
    print(
        "delivered = the heatmap reached the page (server side + network); drawn = the "
        "browser drew it (the browsers share these CPUs)"
    )
    print(
        f"{'scenario':<52}{'median':>8}{'p95':>8}{'max':>8}{'x base':>8}{'pages':>7}{'errors':>8}"
    )
    for r in rows:
        print(r)
    for e in sorted(set(errors)):
        print(f"  error ({errors.count(e)}x): {e}")
    runs_ms = (
        [
            float(ms)
            for t, page, ms in (line.split(",") for line in timing.read_text().splitlines())
            if float(t) >= t_load and page == "explore"
        ]
        if timing.exists()
        else []
    )
    if runs_ms:
        runs_ms.sort()
        print(
            f"server side, Explore page runs during the load: n={len(runs_ms)}, "
            f"median {statistics.median(runs_ms):.0f} ms, "
            f"p95 {runs_ms[max(0, int(round(0.95 * len(runs_ms))) - 1)]:.0f} ms "
            "(the rest of the time to first heatmap is the browsers, which share the "
            "same CPUs here)"
        )
    undelivered = [e for e in errors if "not delivered" in e or "exception" in e]
    return 0 if not undelivered else 1


if __name__ == "__main__":
    raise SystemExit(main())
