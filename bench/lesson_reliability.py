"""Does the landing lesson show the intended picture every time, and does its knob mean it?

For conflict 0, 0.25, 0.5, 0.75 and 1 and seeds 100..109 by default (the seed sets the data
and the training; the tests use other seeds), it prints the knob curve (:func:`curve`): per
position the mean cross-cluster affinity and all-together/grouped loss ratio with 95%
intervals over seeds, the verdict counts and the intended picture at the ends, and per
adjacent pair in how many seeds the affinity fell and the ratio rose. Two arms:

- **lesson**: the lesson as the Learn page and ``python -m mtl_core lesson`` run it
  (:func:`mtl_core.lesson.headless.run_lesson`: 16 replicas per run as one batched model,
  the grouped run on TAG's selection from the all-together run's affinity, losses with 95%
  intervals, the verdict from the paired together-minus-groups/alone difference over the
  replicas, :func:`mtl_core.lesson.report.verdict`; every row also carries the old
  non-overlap rule's verdict, :func:`mtl_core.lesson.report.overlap_verdict`, and both
  tables count both, over the same lessons);
- **today**: the lesson before issue 11, kept callable here (its scenario settings and
  model: rank 2, 1200 examples, noise 0.1, a 32 -> 2 ReLU trunk, default heads, Adam 3e-3,
  one run per approach, the planted clusters as groups), judged by the same rule with its
  single-run numbers and the old page's 3% threshold in place of intervals.

Both run in this process, interleaved lesson by lesson so they share the machine's load.
The intended picture (:func:`mtl_core.lesson.report.intended_picture`): at conflict 1,
negative transfer, cross-cluster affinity < 0 and TAG's groups equal to the planted
clusters; at conflict 0, positive transfer (all-together's interval below the groups' and
each-alone's) and cross-cluster affinity > 0; in between there is no single right picture
(verdicts are counted: near the knob's crossing "no clear difference" is the honest one).
Targets: >= 95% at conflict 0 and at 1, time per lesson no slower than today's; every
adjacent pair monotone in the means and in >= 9 of 10 seeds.

    python -m bench.lesson_reliability [--seeds 10] [--first-seed 100] [--baseline-seeds 0]
    python -m bench.lesson_reliability --seeds 40 --first-seed 500 --conflicts 0.25,0.75 \
        --out a.json --merge b.json     # the README's table: 500-539 at every position
    python -m bench.lesson_reliability --from-results --out bench/results/lesson_knob_curve.json
    (rows that store their intervals are judged again by today's verdict rule)
    python -m bench.lesson_reliability --seeds 0 --merge a.json b.json   # one table of runs
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np

from mtl_core.config import RunConfig
from mtl_core.lesson import workflow as lesson
from mtl_core.lesson.headless import run_lesson
from mtl_core.lesson.report import (
    NEGATIVE,
    POSITIVE,
    UNCLEAR,
    Interval,
    LessonResult,
    block_means,
    differences,
    intended_picture,
    overlap_verdict,
    picture,
    verdict,
)

RESULTS = Path(__file__).resolve().parent / "results" / "lesson_reliability.json"
#: Today's lesson (before issue 11): knobs over the lesson scenario and its model and optimizer.
TODAY_KNOBS = {"rank": 2, "noise": 0.1, "samples": 1200}
TODAY_OVERRIDES = {
    "model.hidden": "32,2",
    "model.linear_bottleneck": False,
    "model.head_scale": 1.0,
    "optim.lr": None,
    "train.replicas": 1,
    "train.eval_every": 10,
    "affinity.every": 1,
}
OLD_THRESHOLD = 0.03  # the old page's "within 3%" rule


def today_lesson(conflict: float, seed: int) -> LessonResult:
    """Today's lesson: three single runs (planted groups), judged with point values."""
    from mtl_core.train.loop import train

    t0 = time.perf_counter()
    knobs = {**TODAY_KNOBS, "conflict": conflict, "data_seed": seed}
    planted = lesson.planted_groups(knobs)
    res = {}
    for mode in lesson.APPROACHES:
        cfg = RunConfig.for_scenario(
            "lesson",
            knobs,
            {
                **TODAY_OVERRIDES,
                "train.mode": mode,
                "train.seed": seed,
                "train.groups": [sorted(g) for g in planted] if mode == "groups" else None,
            },
        )
        res[mode] = train(cfg)
    A = res["together"].mean_affinity["lookahead"]
    tasks = res["together"].tasks
    tag, _, _ = lesson.select_groups(A, tasks, len(planted))
    within, cross = block_means(A, tasks, planted)
    loss = {m: float(np.mean(list(r.loss("test").values()))) for m, r in res.items()}
    out = LessonResult(
        conflict=conflict,
        seed=seed,
        seconds=time.perf_counter() - t0,
        loss={m: Interval(v, v, v, 1) for m, v in loss.items()},
        within=within,
        cross=cross,
        tag_groups=tag,
        planted=planted,
    )
    return out


def point_verdict(loss: dict[str, Interval]) -> str:
    """The old page's reading of single-run numbers: a gap of more than 3% counts."""
    tog, grp, sgl = (loss[k].mean for k in ("together", "groups", "single"))
    if tog > (1 + OLD_THRESHOLD) * min(grp, sgl):
        return NEGATIVE
    if tog < (1 - OLD_THRESHOLD) * sgl:
        return POSITIVE
    return UNCLEAR


def today_picture(r: LessonResult) -> bool | None:
    v = point_verdict(r.loss)
    if r.conflict >= 0.75:
        return v == NEGATIVE and r.cross < 0 and r.tag_matches_planted
    if r.conflict <= 0.25:
        return v == POSITIVE and r.cross > 0
    return None


def _row(r: LessonResult, arm: str) -> dict:
    pic = intended_picture(r) if arm == "lesson" else today_picture(r)
    verdict_ = r.verdict if arm == "lesson" else point_verdict(r.loss)
    d = r.diff
    return {
        "arm": arm,
        "conflict": r.conflict,
        "seed": r.seed,
        "seconds": r.seconds,
        "picture": pic,
        "verdict": verdict_,
        "verdict_overlap": overlap_verdict(r.loss),
        "cross": r.cross,
        "within": r.within,
        "tag_matches": r.tag_matches_planted,
        "loss": {k: v.mean for k, v in r.loss.items()},
        # the 95% intervals over replicas and the replicas' own losses, so --from-results
        # can judge the rows again under either rule
        "loss_iv": {k: [v.low, v.high] for k, v in r.loss.items()},
        "loss_replicas": {k: {str(i): x for i, x in v.items()} for k, v in r.replica_loss.items()},
        "difference": {k: [v.mean, v.low, v.high] for k, v in d.items()},
    }


def rejudge(rows: list[dict]) -> list[dict]:
    """The lesson arm's rows with their verdicts recomputed by today's rules from what they
    stored: ``verdict`` (paired, :func:`mtl_core.lesson.report.verdict`) from the replicas'
    losses, ``verdict_overlap`` (:func:`mtl_core.lesson.report.overlap_verdict`) from the
    intervals, and ``picture`` / ``picture_overlap`` from them. Rows without replicas keep
    their verdict (``"rejudged": False``; their paired verdict is unknown)."""
    out = []
    for r in rows:
        r = dict(r)
        if r["arm"] != "lesson":
            out.append(r)
            continue
        if r.get("loss_iv"):
            loss = {
                k: Interval(float(r["loss"][k]), float(lo), float(hi), 16)
                for k, (lo, hi) in r["loss_iv"].items()
            }
            r["verdict_overlap"] = overlap_verdict(loss)
        reps = r.get("loss_replicas")
        r["rejudged"] = bool(reps)
        if reps:
            d = differences({k: {int(i): x for i, x in v.items()} for k, v in reps.items()})
            r["verdict"] = verdict(d)
            r["difference"] = {k: [v.mean, v.low, v.high] for k, v in d.items()}
        r["picture"] = picture(r["conflict"], r["verdict"], r["cross"], r["tag_matches"])
        if "verdict_overlap" in r:
            r["picture_overlap"] = picture(
                r["conflict"], r["verdict_overlap"], r["cross"], r["tag_matches"]
            )
        out.append(r)
    return out


def _ratio(r: dict) -> float:
    """All-together over grouped held-out loss (mean over replicas and tasks)."""
    return float(r["loss"]["together"]) / float(r["loss"]["groups"])


def _counts(rs: list[dict], key: str) -> str:
    """``neg/pos/unclear`` counts of the verdicts under ``key`` ("–" when a row lacks it)."""
    got = [r.get(key) for r in rs]
    if any(v is None for v in got):
        return "–"
    return "/".join(str(got.count(v)) for v in (NEGATIVE, POSITIVE, UNCLEAR))


def _frac(rs: list[dict], c: float, key: str) -> str:
    """``k of n`` rows showing the intended picture under ``key``; "–" off the knob's ends."""
    pic = [r.get(key) for r in rs]
    if c not in (0.0, 1.0) or any(p is None for p in pic):
        return "–"
    return f"{sum(map(bool, pic))} of {len(pic)}"


def curve(rows: list[dict], conflicts: list[float]) -> str:
    """The knob curve of the lesson arm: per knob position, the mean over seeds of the
    cross-cluster affinity and of the all-together/grouped loss ratio with 95% t-intervals
    over seeds, the verdict counts and the intended picture; per adjacent pair, in how many
    seeds (run at both positions) the affinity fell and the ratio rose, and whether the means
    did."""
    from mtl_core.lesson.report import interval

    by = {
        c: {r["seed"]: r for r in rows if r["arm"] == "lesson" and r["conflict"] == c}
        for c in conflicts
    }
    lines = [
        "| conflict | seeds | cross-cluster affinity, mean [95% interval] | "
        "together/grouped loss, mean [95% interval] | together - grouped loss (paired "
        "over replicas), mean [95% interval] | verdicts, paired rule (neg/pos/unclear) | "
        "intended picture, paired | verdicts, non-overlap rule | intended picture, non-overlap |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    means = {}
    for c in conflicts:
        rs = list(by[c].values())
        if not rs:
            continue
        a = interval(100 * r["cross"] for r in rs)
        q = interval(_ratio(r) for r in rs)
        means[c] = (a.mean, q.mean)
        diffs = [r["difference"]["groups"] for r in rs if (r.get("difference") or {}).get("groups")]
        if diffs:
            dm = interval(d[0] for d in diffs)
            paired = f"{dm.mean:+.4f} [{dm.low:+.4f}, {dm.high:+.4f}]"
        else:
            paired = "–"
        lines.append(
            f"| {c:g} | {len(rs)} | {a.mean:+.2f}% [{a.low:+.2f}, {a.high:+.2f}] | "
            f"{q.mean:.2f} [{q.low:.2f}, {q.high:.2f}] | {paired} | {_counts(rs, 'verdict')} | "
            f"{_frac(rs, c, 'picture')} | {_counts(rs, 'verdict_overlap')} | "
            f"{_frac(rs, c, 'picture_overlap')} |"
        )
    lines += [
        "",
        "| pair | seeds where affinity fell | seeds where the loss ratio rose | means monotone |",
        "|---|---|---|---|",
    ]
    for lo, hi in zip(conflicts, conflicts[1:]):
        seeds = sorted(set(by[lo]) & set(by[hi]))
        if not seeds:
            continue
        fell = sum(by[hi][s]["cross"] < by[lo][s]["cross"] for s in seeds)
        rose = sum(_ratio(by[hi][s]) > _ratio(by[lo][s]) for s in seeds)
        mono = means[hi][0] < means[lo][0] and means[hi][1] > means[lo][1]
        lines.append(
            f"| {lo:g} -> {hi:g} | {fell} of {len(seeds)} | {rose} of {len(seeds)} | "
            f"{'yes' if mono else 'no'} |"
        )
    return "\n".join(lines)


def summarize(rows: list[dict], conflicts: list[float]) -> str:
    lines = [
        "| conflict | lesson: intended picture | lesson verdicts (neg/pos/unclear) | "
        "lesson s/lesson (median) | today: intended picture | today s/lesson (median) "
        "| time ratio lesson/today |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in conflicts:
        new = [r for r in rows if r["arm"] == "lesson" and r["conflict"] == c]
        old = [r for r in rows if r["arm"] == "today" and r["conflict"] == c]
        if not new:
            continue

        def frac(rs: list[dict]) -> str:
            if not rs or rs[0]["picture"] is None:
                return "–"
            k = sum(bool(r["picture"]) for r in rs)
            return f"{k} of {len(rs)} ({100 * k / len(rs):.0f}%)"

        counts = "/".join(
            str(sum(r["verdict"] == v for r in new)) for v in (NEGATIVE, POSITIVE, UNCLEAR)
        )
        t_new = statistics.median(r["seconds"] for r in new)
        t_old = statistics.median(r["seconds"] for r in old) if old else float("nan")
        lines.append(
            f"| {c:g} | {frac(new)} | {counts} | {t_new:.2f} | {frac(old)} | "
            f"{t_old:.2f} | {t_new / t_old:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument(
        "--first-seed",
        type=int,
        default=100,
        help="start at this seed (to continue a run stopped by its time limit)",
    )
    ap.add_argument(
        "--baseline-seeds",
        type=int,
        default=0,
        help="seeds on which today's lesson is run too (the first ones)",
    )
    ap.add_argument("--conflicts", default="0,0.25,0.5,0.75,1")
    ap.add_argument(
        "--time-limit", type=float, default=5400.0, help="start no new seed after this many seconds"
    )
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument(
        "--merge",
        nargs="*",
        type=Path,
        default=[],
        help="result files of earlier runs whose rows join this table",
    )
    ap.add_argument(
        "--from-results",
        action="store_true",
        help="train nothing: print the tables of the rows already in --out (and --merge)",
    )
    args = ap.parse_args()
    conflicts = [float(c) for c in args.conflicts.split(",")]
    if args.from_results:
        rows = json.loads(args.out.read_text())["rows"]
        for extra in args.merge:
            rows += json.loads(Path(extra).read_text())["rows"]
        rows = rejudge(rows)
        print(summarize(rows, conflicts))
        print()
        print(curve(rows, conflicts))
        return
    import torch

    torch.set_num_threads(1)  # one core per process: the measurement, not the scheduler
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    if args.seeds > 0:
        run_lesson(1.0, 0, steps=5, replicas=2)  # warm torch's lazy imports for both arms
        if args.baseline_seeds > 0:
            today_lesson(1.0, 0)
    rows: list[dict] = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        if time.perf_counter() - t0 > args.time_limit:
            print(f"time limit reached before seed {seed}", flush=True)
            break
        for c in conflicts:
            rows.append(_row(run_lesson(c, seed), "lesson"))
            if seed - args.first_seed < args.baseline_seeds:
                rows.append(_row(today_lesson(c, seed), "today"))
        print(f"seed {seed} done, {time.perf_counter() - t0:.0f}s", flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"rows": rows}, indent=1))  # partial results survive
    for extra in args.merge:
        rows += json.loads(Path(extra).read_text())["rows"]
    rows = rejudge(rows)
    table = summarize(rows, conflicts) + "\n\n" + curve(rows, conflicts)
    load = (
        f"load average {load0[0]:.1f} at start, {os.getloadavg()[0]:.1f} at end "
        f"on {os.cpu_count()} cores"
    )
    print(table)
    print(load)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": rows, "table": table, "load": load}, indent=1))


if __name__ == "__main__":
    main()
