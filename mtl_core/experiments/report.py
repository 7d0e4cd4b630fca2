"""The ground-truth report: per-approach summaries, the comparison, the stdout table, the
long-form rows and the report file."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from mtl_core.errors import LabError
from mtl_core.experiments.spec import APPROACHES, EvalSpec
from mtl_core.jsonio import atomic_write_text, dumps

REPORT_KIND = "task-affinity-lab/evaluate"


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman rank correlation (``scipy.stats.spearmanr``); None with fewer than 3 points
    or a constant side, where it is undefined."""
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    from scipy.stats import spearmanr

    return float(spearmanr(x, y).statistic)


def spearman_sentence(rho: float | None, points: int) -> str:
    """``rho`` = Spearman(TAG's predicted value, measured total test loss) in words.

    TAG's predicted value is an affinity sum (higher = the grouping should be better) and the
    loss is lower-is-better, so a *negative* correlation is the right way round. Magnitude
    words follow the usual reading of |rho|: < 0.1 none, < 0.3 weak, < 0.6 moderate, else
    strong (a reading aid, not a test).
    """
    if rho is None:
        return (
            f"Spearman(predicted, test loss) is undefined over {points} trained groupings "
            "(fewer than 3, or a constant side)"
        )
    a = abs(rho)
    size = "no" if a < 0.1 else "a weak" if a < 0.3 else "a moderate" if a < 0.6 else "a strong"
    head = f"Spearman(predicted, test loss) = {rho:+.2f} over {points} trained groupings: "
    if a < 0.1:
        return head + "no relation between higher predicted affinity and test loss"
    if rho < 0:
        return (
            head + f"{size} tendency for higher predicted affinity to go with LOWER loss "
            "- the estimate ranked groupings the right way"
        )
    return (
        head + f"{size} tendency for higher predicted affinity to go with HIGHER loss "
        "- the estimate ranked groupings the wrong way"
    )


def versus_random(runs: list[dict[str, Any]], approach: str) -> dict[str, Any] | None:
    """Per seed, how many of that seed's random groupings ``approach`` beat (strictly lower
    total test loss), from the report's run records.

    Returns ``{"per_seed": [{"seed", "beat", "random", "loss"}], "beat": total beaten,
    "pairs": total compared, "seeds_beating_all": seeds where it beat every random grouping,
    "seeds": seeds compared}``; None when no seed has both the approach and a random run.
    """
    mine = {r["seed"]: r["total_test_loss"] for r in runs if r["approach"] == approach}
    rand: dict[int, list[float]] = {}
    for r in runs:
        if r["approach"] == "random":
            rand.setdefault(r["seed"], []).append(r["total_test_loss"])
    per_seed = []
    for seed in sorted(set(mine) & set(rand)):
        beat = sum(mine[seed] < x for x in rand[seed])
        per_seed.append(
            {"seed": seed, "beat": int(beat), "random": len(rand[seed]), "loss": mine[seed]}
        )
    if not per_seed:
        return None
    return {
        "per_seed": per_seed,
        "beat": sum(p["beat"] for p in per_seed),
        "pairs": sum(p["random"] for p in per_seed),
        "seeds_beating_all": sum(p["beat"] == p["random"] for p in per_seed),
        "seeds": len(per_seed),
    }


def finds_best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """How often each approach's grouping is exactly the seed's exhaustive best (same groups,
    order ignored), with a 95% Wilson interval (``scipy.stats.binomtest``).

    Returns ``{approach: {"found", "of", "ci95": [lo, hi]}}`` for tag, hoa and random (random
    counts every random grouping); empty without exhaustive runs.
    """
    from scipy.stats import binomtest

    def key(g: list[list[str]]) -> frozenset[frozenset[str]]:
        return frozenset(frozenset(x) for x in g)

    best = {r["seed"]: key(r["grouping"]) for r in runs if r["approach"] == "exhaustive"}
    out: dict[str, Any] = {}
    for a in ("tag", "hoa", "random"):
        hits = [
            key(r["grouping"]) == best[r["seed"]]
            for r in runs
            if r["approach"] == a and r["seed"] in best
        ]
        if hits:
            ci = binomtest(sum(hits), len(hits)).proportion_ci(method="wilson")
            out[a] = {"found": int(sum(hits)), "of": len(hits), "ci95": [ci.low, ci.high]}
    return out


def mean_std(values: Sequence[float | None]) -> dict[str, float | None]:
    """``{"mean", "std"}`` (sample std, 0 for one value); both None if any value is None."""
    if any(x is None for x in values):
        return {"mean": None, "std": None}
    v = np.asarray(values, dtype=np.float64)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0}


def summarize(
    spec: EvalSpec,
    runs: list[dict[str, Any]],
    affinity: dict[int, np.ndarray],
    exhaustive_rank: list[float | None],
    failures: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """The JSON-ready report from the per-run records (see :func:`format_report`).

    ``affinity[seed]``: the co-training's mean lookahead matrix ``(n, n)``, rows = source;
    ``exhaustive_rank``: per seed, the Spearman correlation over every partition (or None);
    ``failures``: the training runs that failed, ``{"phase", "label", "reason"}``.
    """
    approaches = _approach_summaries(list(spec.tasks), runs)
    # Rank correlation over every trained grouping (capacity-matched shares together's);
    # runs of a seed without co-training affinity have no predicted value.
    pts = [
        r for r in runs if r["approach"] != "together_capacity" and r["predicted_value"] is not None
    ]
    rho = spearman([r["predicted_value"] for r in pts], [r["total_test_loss"] for r in pts])
    valid_rank = [x for x in exhaustive_rank if x is not None]
    return {
        "kind": REPORT_KIND,
        "version": 1,
        "spec": {
            **{k: v for k, v in asdict(spec).items() if k not in ("model", "optim", "tasks")},
            "tasks": list(spec.tasks),
            "model": asdict(spec.model),
            "optim": asdict(spec.optim),
        },
        "approaches": approaches,
        "comparison": _comparison(approaches, runs),
        "spearman": {
            "predicted_value_vs_test_loss": rho,
            "points": len(pts),
            "exhaustive_partitions_mean": float(np.mean(valid_rank)) if valid_rank else None,
            "note": "negative = a higher predicted TAG value goes with a lower measured loss",
            "explained": spearman_sentence(rho, len(pts)),
        },
        "versus_random": {
            a: v for a in ("tag", "hoa") if (v := versus_random(runs, a)) is not None
        },
        "finds_exhaustive_best": finds_best(runs),
        "affinity": {str(s): A.tolist() for s, A in affinity.items()},
        "runs": runs,
        "failures": list(failures or []),
    }


def _approach_summaries(tasks: list[str], runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, title in APPROACHES.items():
        rs = [r for r in runs if r["approach"] == key]
        if not rs:
            continue
        out[key] = {
            "name": title,
            "runs": len(rs),
            "total_test_loss": mean_std([r["total_test_loss"] for r in rs]),
            "test_loss": {t: mean_std([r["test_loss"][t] for r in rs]) for t in tasks},
            "seconds": mean_std([r["seconds"] for r in rs]),
            "parameters": mean_std([r["parameters"] for r in rs]),
            "predicted_value": mean_std([r["predicted_value"] for r in rs]),
            "groupings": [r["grouping"] for r in rs],
        }
    return out


def _comparison(approaches: dict[str, Any], runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Relative total test loss of TAG against each baseline (positive = TAG lower); a
    baseline whose runs all failed has no entry."""
    loss = {k: v["total_test_loss"]["mean"] for k, v in approaches.items()}
    out: dict[str, Any] = {}
    for me in ("tag", "hoa"):
        if me not in loss:
            continue
        for base in ("together", "together_capacity", "single", "random"):
            if base in loss:
                out[f"{me}_vs_{base}"] = 1.0 - loss[me] / loss[base]
        if "exhaustive" in loss:
            cand = [
                r[f"{me}_from_candidates"]
                for r in runs
                if r["approach"] == "exhaustive" and f"{me}_from_candidates" in r
            ]
            out[f"{me}_over_exhaustive"] = loss[me] / loss["exhaustive"] - 1.0
            if cand:
                out[f"{me}_from_candidates_over_exhaustive"] = (
                    float(np.mean(cand)) / loss["exhaustive"] - 1.0
                )
            out[f"{me}_time_fraction_of_exhaustive"] = (
                approaches[me]["seconds"]["mean"] / approaches["exhaustive"]["seconds"]["mean"]
            )
    return out


def format_report(report: dict[str, Any]) -> str:
    """The stdout table: one row per approach, then the headline comparisons."""
    spec = report["spec"]
    knobs = ", ".join(f"{k}={v}" for k, v in spec["knobs"].items())
    lines = [
        f"evaluate {spec['scenario']} ({knobs})",
        f"k={spec['k']}, {spec['seeds']} seed(s), {spec['steps']} steps; total test loss is the "
        "sum over tasks (mean ± std over runs)",
        "",
    ]
    head = (
        f"{'approach':<28}{'total test loss':>22}{'vs together':>13}{'params':>9}"
        f"{'compute s':>16}{'pred. value':>13}"
    )
    lines += [head, "-" * len(head)]
    together = report["approaches"].get("together")
    base = together["total_test_loss"]["mean"] if together else None
    for key, a in report["approaches"].items():
        tl, sec = a["total_test_loss"], a["seconds"]
        name = a["name"] + (f" (x{a['runs']})" if key == "random" else "")
        params = f"{a['parameters']['mean']:.0f}" if a["parameters"]["mean"] else "-"
        vs = f"{(tl['mean'] / base - 1) * 100:>+12.1f}%" if base else f"{'-':>13}"
        pred = a["predicted_value"]["mean"]
        lines.append(
            f"{name:<28}{tl['mean']:>12.4f} ± {tl['std']:<7.4f}{vs}{params:>9}"
            f"{sec['mean']:>9.1f} ± {sec['std']:<4.1f}"
            + (f"{pred:>13.4f}" if pred is not None else f"{'-':>13}")
        )
    lines.append("")
    for key in ("tag", "hoa", "exhaustive"):
        if key in report["approaches"]:
            g = report["approaches"][key]["groupings"][0]
            lines.append(
                f"{APPROACHES[key]} (seed 0): " + "  ".join("{" + ",".join(x) + "}" for x in g)
            )
    return "\n".join(
        lines
        + _headlines(report["comparison"], report["spearman"])
        + _random_lines(report.get("versus_random") or {})
        + _best_lines(report.get("finds_exhaustive_best") or {})
        + _failure_lines(report.get("failures") or [])
    )


def _failure_lines(failures: list[dict[str, str]]) -> list[str]:
    if not failures:
        return []
    lines = ["", f"{len(failures)} training run(s) failed and are left out:"]
    return lines + [f"  {f['label']}: {f['reason']}" for f in failures]


def _random_lines(vs: dict[str, Any]) -> list[str]:
    lines = []
    for key, v in vs.items():
        name = "TAG" if key == "tag" else "HOA"
        seeds = ", ".join(f"seed {p['seed']}: {p['beat']}/{p['random']}" for p in v["per_seed"])
        lines.append(
            f"{name} beat {v['beat']} of {v['pairs']} random groupings of its seed ({seeds}); "
            f"every random grouping in {v['seeds_beating_all']} of {v['seeds']} seeds"
        )
    return lines


def _best_lines(fb: dict[str, Any]) -> list[str]:
    names = {"tag": "TAG", "hoa": "HOA", "random": "random groupings"}
    parts = [
        f"{names[a]} {v['found']}/{v['of']} (95% CI {v['ci95'][0]:.2f}-{v['ci95'][1]:.2f})"
        for a, v in fb.items()
    ]
    return ["found the exhaustive best grouping: " + "; ".join(parts)] if parts else []


def _lower(v: float) -> str:
    """A relative loss change in words: ``0.05`` -> "5.0% lower", ``-0.05`` -> "5.0% HIGHER"
    (a negative "lower" read as a gain; issue 20: say so when a method loses)."""
    return f"{v * 100:.1f}% lower" if v >= 0 else f"{-v * 100:.1f}% HIGHER"


def _headlines(c: dict[str, Any], sp: dict[str, Any]) -> list[str]:
    lines = []
    for me, name in (("tag", "TAG"), ("hoa", "HOA")):
        if f"{me}_vs_together" in c:
            v = c[f"{me}_vs_together"]
            lines.append(
                f"{name} vs all together: {_lower(v)} total test loss "
                f"({'meets' if v >= 0.10 else 'misses'} the 10% target)"
            )
        if f"{me}_vs_random" in c:
            lines.append(
                f"{name} vs random groups: {_lower(c[f'{me}_vs_random'])} total test "
                "loss (mean over runs)"
            )
        if f"{me}_over_exhaustive" in c:
            v = c[f"{me}_over_exhaustive"]
            cand = f"{me}_from_candidates_over_exhaustive"
            lines.append(
                f"{name} vs exhaustive best: {v * 100:+.1f}% loss "
                f"({'within' if v <= 0.02 else 'outside'} 2%); "
                + (f"on the same candidate networks {c[cand] * 100:+.1f}%; " if cand in c else "")
                + f"{name} took {c[f'{me}_time_fraction_of_exhaustive'] * 100:.0f}% of "
                "exhaustive's time"
            )
    if "explained" in sp:
        lines.append(sp["explained"])
    elif sp["predicted_value_vs_test_loss"] is not None:
        lines.append(
            f"Spearman(predicted value, test loss) = {sp['predicted_value_vs_test_loss']:+.2f} "
            f"over {sp['points']} trained groupings ({sp['note']})"
        )
    if sp["exhaustive_partitions_mean"] is not None:
        lines.append(
            f"Spearman over every partition into <= k groups (candidate networks): "
            f"{sp['exhaustive_partitions_mean']:+.2f} (mean over seeds)"
        )
    return lines


def report_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Long-form rows (one per run and task) for the CSV output and the app."""
    rows = []
    for r in report["runs"]:
        for t, loss in r["test_loss"].items():
            rows.append(
                {
                    "approach": r["approach"],
                    "seed": r["seed"],
                    "task": t,
                    "test_loss": loss,
                    "total_test_loss": r["total_test_loss"],
                    "predicted_value": r["predicted_value"],
                    "seconds": r["seconds"],
                    "parameters": r["parameters"],
                    "grouping": ";".join(",".join(g) for g in r["grouping"]),
                }
            )
    return rows


def write_report(report: dict[str, Any], path: str | Path) -> Path:
    """Write ``.json`` (the full report) or ``.csv`` (long-form rows) atomically.

    Raises LabError for any other extension.
    """
    p = Path(path)
    ext = p.suffix.lower()
    if ext not in (".json", ".csv"):
        raise LabError(f"--out must end in .json or .csv, got {p.name}")
    if ext == ".json":
        return atomic_write_text(p, dumps(report, indent=1))
    from mtl_core.runfile.formula_escape import escape_cell

    buf = io.StringIO()
    rows = report_rows(report)
    writer = csv.DictWriter(
        buf,
        fieldnames=list(rows[0]) if rows else ["approach"],
        quoting=csv.QUOTE_NONNUMERIC,  # text quoted, formula-like text escaped (OWASP)
    )
    writer.writeheader()
    writer.writerows(
        {k: escape_cell(v) if isinstance(v, str) else v for k, v in r.items()} for r in rows
    )
    return atomic_write_text(p, buf.getvalue())


__all__ = [
    "REPORT_KIND",
    "finds_best",
    "format_report",
    "mean_std",
    "report_rows",
    "spearman",
    "spearman_sentence",
    "summarize",
    "versus_random",
    "write_report",
]
