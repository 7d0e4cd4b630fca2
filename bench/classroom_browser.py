"""A class pressing Train at once, in browsers: N Chromium sessions on the real app.

Starts the app as a user does (``streamlit run``, via ``tests.helpers.app_server``) over a
temporary store, with real training (no fake train function), ``--workers`` training workers
and the app's standby workers. One headless Chromium holds N browser contexts (N Streamlit
sessions, N owners: login is off, so each context's cookie is its own user), each on the
Learn page. A first page opens the app (as a teacher would before class) and the bench waits
``--warm`` seconds for the standby workers to import torch. Then every page sets its knob as a
student does (the conflict slider by keyboard; in the ``distinct`` case the seed in Advanced
knobs), untimed, and the bench presses Train on page after page spread evenly over
``--spread`` seconds.

Per session, from its press (on the page's own timer): the first heatmap ``received`` (the
first websocket frame carrying its caption, seen at the browser's network layer through
Playwright: the server's part, without the browser's parsing), ``sent`` (its
caption "Affinity so far" in the page: what the server did) and ``drawn`` (plotly's heatmap
drawn: what this machine's browser then did), and the lesson finished (the verdict "At the
end," in the page: all three runs finished), all seen by a watcher inside the page every
0.2 s; errors (Streamlit exceptions
and error alerts drawn, page crashes, uncaught page errors) and the conflict the lesson page
says it shows, checked against the knob set. Cases:

- ``same``: half the sessions on the default knob (conflict 1), the rest spread over
  0, 0.25, 0.5 and 0.75 (5 distinct lessons, shared by the page's own rule);
- ``distinct``: every session its own lesson (seeds 0..N-1 at conflict 1);
- ``ahead``: the ``same`` class on the plain default server (``MTL_LAB_LESSON_AHEAD``
  unset: its idle runner holds the lessons at 1, 0, 0.25, 0.5, 0.75), the class starting once
  they are held (the time that took is reported); ``same`` and ``distinct`` run with
  ``MTL_LAB_LESSON_AHEAD=off`` (cold).

The browsers run at nice 19 (in a class they run on the students' laptops, not on the
server), the server at the bench's own priority. Server RSS is the largest sum over the
server process and its children (training workers), sampled while the class runs.

    nice python -m bench.classroom_browser [--sessions 30] [--case same,distinct]
        [--workers 2] [--spread 20] [--limit 600]

Prints a Markdown table (and writes ``bench/results/classroom_browser-<cases>.json``).
Needs Chromium at /usr/bin/chromium and the playwright package.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.helpers.app_server import running_app  # the same code path as the e2e tests
from tests.helpers.browser import ARGS, CHROMIUM, slider, wait_slider_value

RESULTS = Path(__file__).resolve().parent / "results"
LEVELS = (1.0, 0.0, 0.25, 0.5, 0.75)
KNOB = "How much do the two task clusters conflict?"
STEP = 0.05  # the knob's step (app/views/learn.py)

#: Run in every page before the class: clicks Train at ``due`` (ms since the epoch, on the
#: page's own timer, so a slow bench loop does not shift the presses) and records (browser
#: clock, ms since the epoch) the press, when the first heatmap reached the page (its
#: caption, sent with it, is in the page: the server's part), when plotly had drawn it (the
#: browser's part), when the finished verdict is in the page, and the most exceptions and
#: error alerts seen at once.
WATCH = """due => {
  const w = window.__bench = {press: null, sent: null, drawn: null, done: null, exc: 0,
                              alerts: 0, header: null};
  const tick = () => {
    const now = Date.now();
    if (w.sent === null && [...document.querySelectorAll('[data-testid=stCaptionContainer]')]
        .some(e => e.innerText.startsWith('Affinity so far'))) w.sent = now;
    if (w.drawn === null && w.sent !== null && [...document.querySelectorAll('.js-plotly-plot')]
        .some(g => g.data && g.data.some(d => d.type === 'heatmap')
                   && g.querySelector('.main-svg'))) w.drawn = now;
    if (w.done === null && [...document.querySelectorAll('[data-testid=stAlert]')]
        .some(e => e.innerText.includes('At the end,'))) w.done = now;
    w.exc = Math.max(w.exc, document.querySelectorAll('[data-testid=stException]').length);
    w.alerts = Math.max(w.alerts,
      document.querySelectorAll('[data-testid=stAlertContentError]').length);
    const h = [...document.querySelectorAll('[data-testid=stMarkdownContainer] p')]
      .find(p => p.innerText.startsWith('The lesson at conflict'));
    if (h) w.header = h.innerText;
    if (w.drawn !== null && w.done !== null) clearInterval(w.timer);
  };
  w.timer = setInterval(tick, 200);
  const b = document.querySelector('.st-key-learn_train button');
  if (!b) return false;
  setTimeout(() => { w.press = Date.now(); b.click(); }, Math.max(0, due - Date.now()));
  return true;
}"""


def knobs_of(case: str, i: int, n: int) -> tuple[float, int]:
    """Session ``i``'s (conflict, seed) of ``n``: see the module docstring's cases."""
    if case == "distinct":
        return 1.0, i
    if i < n // 2:
        return 1.0, 0
    return (0.0, 0.25, 0.5, 0.75)[i % 4], 0


def _tree(root: int) -> list[int]:
    """``root`` and its descendants (from /proc), for the server's RSS."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def _rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def _server_pid() -> int | None:
    """The ``streamlit run`` child of this process."""
    for pid in _tree(os.getpid())[1:]:
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"streamlit" in cmd and b"run" in cmd:
            return pid
    return None


def _renice_browsers(server: int | None) -> None:
    """Every thread of this process's children but the server's tree to nice 19 (Linux
    priorities are per thread; renderers forked later inherit their zygote's)."""
    keep = set(_tree(server)) if server else set()
    for pid in _tree(os.getpid())[1:]:
        if pid in keep:
            continue
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                os.setpriority(os.PRIO_PROCESS, int(task.name), 19)
            except (OSError, ValueError):
                pass


def _set_knobs(page, conflict: float, seed: int) -> None:
    """Move the conflict slider by keyboard (and type the seed), as a student does."""
    thumb = slider(page, KNOB, timeout=120000)
    k = round((1.0 - conflict) / STEP)
    if k:
        thumb.focus()
        if k <= 10:
            thumb.press("End")
            for _ in range(k):
                thumb.press("ArrowLeft")
        else:
            thumb.press("Home")
            for _ in range(round(conflict / STEP)):
                thumb.press("ArrowRight")
        wait_slider_value(page, KNOB, f"{conflict:g}", timeout=60000)
    if seed:
        page.get_by_text("Advanced knobs", exact=True).first.click()
        box = page.get_by_label("seed", exact=True)
        box.fill(str(seed))
        box.press("Enter")
        page.wait_for_function(
            "v => [...document.querySelectorAll('input')].some(e => e.ariaLabel === 'seed'"
            " && e.value === v)",
            arg=str(seed),
            timeout=60000,
        )
    page.wait_for_timeout(600)  # the widget values reach the server before Train


def _env(store: Path, workers: int, ahead: bool) -> dict[str, str]:
    env = {**os.environ, "MTL_LAB_STORE": str(store), "MTL_LAB_WORKERS": str(workers)}
    for name in ("MTL_LAB_TRAIN_FN", "MTL_LAB_WARM_WORKERS", "MTL_LAB_LESSON_AHEAD"):
        env.pop(name, None)  # real training, standby workers, as a user's app runs
    if not ahead:  # cold: no lessons held ahead (the app's default holds the class's five)
        env["MTL_LAB_LESSON_AHEAD"] = "off"
    return env


def run_case(case: str, n: int, workers: int, spread: float, limit: float, warm: float) -> dict:
    """One case on a fresh server and store; per-session records and a summary."""
    from playwright.sync_api import sync_playwright

    from mtl_core.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        store_path = folder / "class.sqlite"
        Store(store_path)  # created before the server opens it
        env = _env(store_path, workers, case == "ahead")
        with running_app(env, folder / "server.log", timeout_s=120) as url:
            server = _server_pid()
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                _renice_browsers(server)
                rec = _class(browser, url, store_path, case, n, spread, limit, warm, server)
                browser.close()
        rec["server_log_tail"] = (folder / "server.log").read_text()[-1500:]
        store = Store(store_path)
        rec["runs_trained"] = len(store.run_ids())
        rec["runs_not_finished"] = len(store.run_ids()) - len(store.run_ids("finished"))
    rec.update(case=case, sessions=n, workers=workers, spread_s=spread)
    return rec


def _class(browser, url, store_path, case, n, spread, limit, warm, server) -> dict:
    from mtl_core.store import Store

    store = Store(store_path)
    load0 = os.getloadavg()
    # the teacher opens the app: the runner and its standby workers start
    first = browser.new_context()
    fp = first.new_page()
    fp.goto(url + "/")
    slider(fp, KNOB, timeout=120000)
    t0 = time.monotonic()
    fp.wait_for_timeout(warm * 1000)
    prep = 0.0
    if case == "ahead":  # until the idle runner held the five lessons (15 runs finished)
        while time.monotonic() - t0 < limit and not (
            len(store.run_ids("finished")) >= 3 * len(LEVELS)
            and not store.run_ids("queued", "running")
        ):
            fp.wait_for_timeout(1000)
        prep = time.monotonic() - t0
    first.close()

    sessions: list[dict[str, Any]] = []
    crashes: list[int] = []
    page_errors: list[str] = []
    for i in range(n):
        conflict, seed = knobs_of(case, i, n)
        ctx = browser.new_context(viewport={"width": 1280, "height": 1400})
        # images and fonts blocked (only those URLs pass through the route handler)
        ctx.route("**/*.{png,jpg,jpeg,gif,ico,webp,woff,woff2,ttf}", lambda r: r.abort())
        page = ctx.new_page()
        net: list[float] = []  # when a frame with the first heatmap's caption arrived
        page.on("websocket", lambda ws, net=net: _watch_frames(ws, net))
        page.on("crash", lambda _p, i=i: crashes.append(i))
        page.on("pageerror", lambda e, i=i: page_errors.append(f"{i}: {e}"))
        page.goto(url + "/")
        _set_knobs(page, conflict, seed)
        sessions.append(
            {
                "session": i,
                "conflict": conflict,
                "seed": seed,
                "page": page,
                "press": None,
                "net": net,
            }
        )
    _renice_browsers(server)  # the renderers opened since
    rss = _rss_mb(_tree(server)) if server else 0.0
    load1 = os.getloadavg()

    # the class presses Train, spread evenly over ``spread`` s from ``start``
    start = time.time() + 2.0 + 0.2 * n  # time to arm every page
    for i, s in enumerate(sessions):
        due = start + spread * i / max(1, n - 1)
        if not s["page"].evaluate(WATCH, due * 1000):
            s["error"] = "no Train button"
    # round-robin: read each page's watcher until every lesson is drawn finished (or limit)
    open_ = list(sessions)
    while open_ and time.time() - start < limit:
        for s in list(open_):
            try:
                w = s["page"].evaluate("window.__bench")
            except Exception as exc:  # noqa: BLE001 - a closed or crashed page is an error
                s["error"] = repr(exc)[:200]
                open_.remove(s)
                continue
            s["watch"] = w
            if w and w["drawn"] is not None and w["done"] is not None:
                open_.remove(s)
        if server:
            rss = max(rss, _rss_mb(_tree(server)))
        sessions[0]["page"].wait_for_timeout(500)
    load2 = os.getloadavg()
    records = []
    for s in sessions:
        w = s.get("watch") or {}
        header = w.get("header") or ""
        shown = header.removeprefix("The lesson at conflict ").strip(" *.")

        def since(key: str, w: dict = w) -> float | None:
            return None if w.get(key) is None or not w.get("press") else (w[key] - w["press"]) / 1e3

        press = w["press"] / 1e3 if w.get("press") else None
        got = [t for t in s["net"] if press is not None and t >= press]
        records.append(
            {
                "session": s["session"],
                "conflict": s["conflict"],
                "seed": s["seed"],
                "pressed_at_s": None if press is None else press - start,
                "net_s": min(got) - press if got else None,
                "sent_s": since("sent"),
                "drawn_s": since("drawn"),
                "done_s": since("done"),
                "exceptions": int(w.get("exc") or 0),
                "error_alerts": int(w.get("alerts") or 0),
                "knob_shown": shown,
                "knob_wrong": bool(shown) and abs(float(shown) - s["conflict"]) > 1e-9,
                "error": s.get("error"),
            }
        )
        s["page"].context.close()
    out: dict[str, Any] = {}
    for key in ("net", "sent", "drawn", "done"):
        got = [r[f"{key}_s"] for r in records if r[f"{key}_s"] is not None]
        out[f"{key}_median_s"] = statistics.median(got) if got else None
        out[f"{key}_max_s"] = max(got) if len(got) == n else None
    presses = [r["pressed_at_s"] for r in records if r["pressed_at_s"] is not None]
    return {
        **out,
        "unfinished": sum(r["done_s"] is None for r in records),
        "exceptions": sum(r["exceptions"] for r in records),
        "error_alerts": sum(r["error_alerts"] for r in records),
        "knob_wrong": sum(r["knob_wrong"] for r in records),
        "crashes": len(crashes),
        "page_errors": page_errors[:20],
        "page_error_count": len(page_errors),
        "session_errors": sum(r["error"] is not None for r in records),
        "server_rss_mb": rss,
        "pressed_in_s": max(presses) - min(presses) if presses else None,
        "prep_s": prep,
        "load_before": load0,
        "load_at_press": load1,
        "load_after": load2,
        "records": records,
    }


#: Bytes of the first heatmap's message: its caption travels in the same delta as the figure.
CAPTION = b"Affinity so far"


def _watch_frames(ws: Any, net: list[float]) -> None:
    """Record (bench clock, epoch s) each websocket frame from the server that carries the
    heatmap's caption: the server's part of "first heatmap", before the browser parses or
    draws anything. Timed when Playwright hands the event to this process (it does while the
    bench's loop waits in a Playwright call: within ~0.5 s), not by the browser's renderer."""

    def frame(payload: Any) -> None:
        data = payload if isinstance(payload, bytes) else str(payload).encode("utf-8", "replace")
        if len(net) < 50 and CAPTION in data:
            net.append(time.time())

    ws.on("framereceived", frame)


def errors_of(r: dict) -> int:
    """Every error a session saw: exceptions and error alerts drawn, crashes, page errors,
    lost pages and lessons drawn at another knob than set."""
    return (
        r["exceptions"]
        + r["error_alerts"]
        + r["crashes"]
        + r["page_error_count"]
        + r["session_errors"]
        + r["knob_wrong"]
    )


def _fmt(v: float | None) -> str:
    return "–" if v is None else f"{v:.1f}"


def table(rows: list[dict]) -> str:
    """The Markdown table of the cases (``–`` where a session never got there)."""
    out = [
        "| case | sessions | workers | runs trained | presses within s "
        "| first heatmap received (network) median / max s "
        "| sent (in the DOM) median / max s | drawn median / max s "
        "| lesson finished median / max s | unfinished | errors | server RSS MB "
        "| load at press / after |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        name = r["case"] + (f" (held in {r['prep_s']:.0f} s)" if r["case"] == "ahead" else "")
        out.append(
            f"| {name} | {r['sessions']} | {r['workers']} | {r['runs_trained']} "
            f"| {_fmt(r['pressed_in_s'])} "
            f"| {_fmt(r.get('net_median_s'))} / {_fmt(r.get('net_max_s'))} "
            f"| {_fmt(r['sent_median_s'])} / {_fmt(r['sent_max_s'])} "
            f"| {_fmt(r['drawn_median_s'])} / {_fmt(r['drawn_max_s'])} "
            f"| {_fmt(r['done_median_s'])} / {_fmt(r['done_max_s'])} "
            f"| {r['unfinished']} | {errors_of(r)} | {r['server_rss_mb']:.0f} "
            f"| {r['load_at_press'][0]:.1f} / {r['load_after'][0]:.1f} |"
        )
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=30)
    ap.add_argument("--case", default="same,distinct", help="same, distinct, ahead (comma list)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--spread", type=float, default=20.0, help="presses over this many s")
    ap.add_argument("--limit", type=float, default=600.0, help="give up after s from the first")
    ap.add_argument("--warm", type=float, default=10.0, help="s for standby workers to start")
    a = ap.parse_args()
    if not Path(CHROMIUM).exists():
        print(f"needs Chromium at {CHROMIUM}", file=sys.stderr)
        return 2
    cases = [c.strip() for c in a.case.split(",") if c.strip()]
    bad = [c for c in cases if c not in ("same", "distinct", "ahead")]
    if bad or a.sessions < 1:
        print(f"unknown case {bad[0]!r}" if bad else "--sessions must be >= 1", file=sys.stderr)
        return 2
    rows = []
    for c in cases:
        rows.append(run_case(c, a.sessions, a.workers, a.spread, a.limit, a.warm))
        print(table(rows[-1:]).splitlines()[-1], flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"classroom_browser-{'-'.join(cases)}-w{a.workers}.json"
    out.write_text(json.dumps(rows, indent=1))
    print(table(rows))
    print(f"(cpus {os.cpu_count()}; records in {out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
