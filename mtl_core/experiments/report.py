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
        },
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
    if "tag" not in loss:
        return out
    for base in ("together", "together_capacity", "single", "random"):
        if base in loss:
            out[f"tag_vs_{base}"] = 1.0 - loss["tag"] / loss[base]
    if "exhaustive" in loss:
        cand = [
            r["tag_from_candidates"]
            for r in runs
            if r["approach"] == "exhaustive" and "tag_from_candidates" in r
        ]
        out["tag_over_exhaustive"] = loss["tag"] / loss["exhaustive"] - 1.0
        if cand:
            out["tag_from_candidates_over_exhaustive"] = (
                float(np.mean(cand)) / loss["exhaustive"] - 1.0
            )
        out["tag_time_fraction_of_exhaustive"] = (
            approaches["tag"]["seconds"]["mean"] / approaches["exhaustive"]["seconds"]["mean"]
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
    for key in ("tag", "exhaustive"):
        if key in report["approaches"]:
            g = report["approaches"][key]["groupings"][0]
            lines.append(
                f"{APPROACHES[key]} (seed 0): " + "  ".join("{" + ",".join(x) + "}" for x in g)
            )
    return "\n".join(
        lines
        + _headlines(report["comparison"], report["spearman"])
        + _failure_lines(report.get("failures") or [])
    )


def _failure_lines(failures: list[dict[str, str]]) -> list[str]:
    if not failures:
        return []
    lines = ["", f"{len(failures)} training run(s) failed and are left out:"]
    return lines + [f"  {f['label']}: {f['reason']}" for f in failures]


def _headlines(c: dict[str, Any], sp: dict[str, Any]) -> list[str]:
    lines = []
    if "tag_vs_together" in c:
        lines.append(
            f"TAG vs all together: {c['tag_vs_together'] * 100:.1f}% lower total test loss "
            f"({'meets' if c['tag_vs_together'] >= 0.10 else 'misses'} the 10% target)"
        )
    if "tag_over_exhaustive" in c:
        lines.append(
            f"TAG vs exhaustive best: {c['tag_over_exhaustive'] * 100:+.1f}% loss "
            f"({'within' if c['tag_over_exhaustive'] <= 0.02 else 'outside'} 2%); "
            + (
                f"on the same candidate networks "
                f"{c['tag_from_candidates_over_exhaustive'] * 100:+.1f}%; "
                if "tag_from_candidates_over_exhaustive" in c
                else ""
            )
            + f"TAG took {c['tag_time_fraction_of_exhaustive'] * 100:.0f}% of exhaustive's time"
        )
    if sp["predicted_value_vs_test_loss"] is not None:
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
    "format_report",
    "mean_std",
    "report_rows",
    "spearman",
    "summarize",
    "write_report",
]
