"""Named scenarios: plain JSON definitions under ``data/scenarios`` plus the builders that turn
them into deterministic, standardized train/validation/test arrays (numpy only, no torch).
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from mtl_core.errors import LabError

SCENARIO_DIR = Path(__file__).resolve().parent.parent / "data" / "scenarios"
SPLIT_FRACTIONS = (0.6, 0.2, 0.2)  # train / validation / test


@dataclass(frozen=True)
class Scenario:
    """A scenario definition as read from its JSON file."""

    name: str
    builder: str
    description: str
    knobs: dict[str, dict[str, Any]]
    image: bool = False
    model: dict[str, Any] = field(default_factory=dict)  # ModelConfig defaults for this scenario

    def defaults(self) -> dict[str, Any]:
        return {k: spec.get("default") for k, spec in self.knobs.items()}


@dataclass
class Dataset:
    """Standardized arrays for one scenario.

    ``Y`` arrays are ``(N, n_tasks)`` float32 with NaN where a label is missing; binary tasks
    hold 0/1. ``input_shape`` is ``(features,)`` or ``(1, 8, 8)`` for images.
    ``info`` holds scenario facts such as the planted cluster of each task.
    """

    tasks: list[str]
    task_types: list[str]
    X_train: np.ndarray
    Y_train: np.ndarray
    X_val: np.ndarray
    Y_val: np.ndarray
    X_test: np.ndarray
    Y_test: np.ndarray
    input_shape: tuple[int, ...]
    info: dict[str, Any] = field(default_factory=dict)


@cache
def _load_all(directory: str) -> dict[str, Scenario]:
    out = {}
    for f in sorted(Path(directory).glob("*.json")):
        d = json.loads(f.read_text())
        out[d["name"]] = Scenario(
            name=d["name"],
            builder=d["builder"],
            description=d.get("description", ""),
            knobs=d.get("knobs", {}),
            image=bool(d.get("image", False)),
            model=dict(d.get("model", {})),
        )
    return out


def list_scenarios() -> dict[str, Scenario]:
    """All shipped scenarios by name."""
    return dict(_load_all(str(SCENARIO_DIR)))


def get_scenario(name: str) -> Scenario:
    scenarios = list_scenarios()
    if name not in scenarios:
        hint = difflib.get_close_matches(name, scenarios, n=1)
        extra = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise LabError(
            f"unknown scenario {name!r}{extra}; available: {', '.join(sorted(scenarios))}"
        )
    return scenarios[name]


def default_model_config(name: str):
    """The scenario's ``ModelConfig`` (its JSON ``model`` section over the global defaults)."""
    from mtl_core.config import ModelConfig

    m = dict(get_scenario(name).model)
    for key in ("hidden", "channels"):
        if key in m:
            m[key] = tuple(int(v) for v in m[key])
    return ModelConfig(**m)


def resolve_knobs(scenario: Scenario, overrides: dict[str, Any]) -> dict[str, Any]:
    """Defaults merged with ``overrides``, each value coerced to its knob's type and checked."""
    knobs = scenario.defaults()
    for key, raw in overrides.items():
        if key not in scenario.knobs:
            hint = difflib.get_close_matches(key, scenario.knobs, n=1)
            extra = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise LabError(
                f"unknown knob {key!r} for scenario {scenario.name!r}{extra}; "
                f"knobs: {', '.join(scenario.knobs)}"
            )
        knobs[key] = _coerce(key, raw, scenario.knobs[key])
    for key, spec in scenario.knobs.items():
        if spec.get("required") and not knobs.get(key):
            raise LabError(
                f"scenario {scenario.name!r} needs a value for {key!r} "
                f"({spec.get('help', '')}; on the command line: --set {key}=...)"
            )
    return knobs


def _coerce(key: str, raw: Any, spec: dict[str, Any]) -> Any:
    kind = spec.get("type", "str")
    try:
        if kind == "int":
            value: Any = int(raw) if not isinstance(raw, str) else int(float(raw))
            if isinstance(raw, float) and not float(raw).is_integer():
                raise ValueError
        elif kind == "float":
            value = float(raw)
            if not np.isfinite(value):
                raise ValueError
        elif kind == "list":
            if isinstance(raw, str):
                value = [s.strip() for s in raw.split(",") if s.strip()]
            else:
                value = [str(s) for s in raw]
        else:
            value = str(raw)
    except (TypeError, ValueError):
        raise LabError(f"knob {key}={raw!r}: expected {kind}") from None
    if kind in ("int", "float"):
        lo, hi = spec.get("min"), spec.get("max")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise LabError(f"knob {key}={value} is out of range [{lo}, {hi}]")
    choices = spec.get("choices")
    if choices:
        items = value if kind == "list" else [value]
        bad = [v for v in items if v not in choices]
        if bad:
            raise LabError(
                f"knob {key}: {', '.join(map(str, bad))} not one of {', '.join(choices)}"
            )
    return value


def load_dataset(name: str, knobs: dict[str, Any] | None = None) -> Dataset:
    """Build a scenario's dataset; deterministic given the knobs (``data_seed`` included)."""
    scenario = get_scenario(name)
    k = resolve_knobs(scenario, knobs or {})
    builder = _BUILDERS[scenario.builder]
    return builder(k)


# ----------------------------------------------------------------------------------- splits


def _split_standardize(
    X: np.ndarray,
    Y: np.ndarray,
    task_types: list[str],
    seed: int,
) -> tuple[np.ndarray, ...]:
    """Shuffle into train/val/test; standardize features (and regression targets) on train only."""
    n = len(X)
    rng = np.random.default_rng(seed + 7919)
    perm = rng.permutation(n)
    n_tr = int(round(SPLIT_FRACTIONS[0] * n))
    n_va = int(round(SPLIT_FRACTIONS[1] * n))
    idx = (perm[:n_tr], perm[n_tr : n_tr + n_va], perm[n_tr + n_va :])
    Xs = [X[i].astype(np.float64) for i in idx]
    Ys = [Y[i].astype(np.float64) for i in idx]
    mu = np.nanmean(Xs[0], axis=0)
    mu = np.where(np.isfinite(mu), mu, 0.0)
    sd = np.nanstd(Xs[0], axis=0)
    sd = np.where(np.isfinite(sd) & (sd > 1e-12), sd, 1.0)
    # Missing features become the train mean (0 after standardizing).
    Xs = [np.nan_to_num((x - mu) / sd, nan=0.0) for x in Xs]
    for t, kind in enumerate(task_types):
        if kind == "regression":
            m = np.nanmean(Ys[0][:, t])
            s = np.nanstd(Ys[0][:, t])
            s = s if np.isfinite(s) and s > 1e-12 else 1.0
            for y in Ys:
                y[:, t] = (y[:, t] - m) / s
    out = []
    for x, y in zip(Xs, Ys):
        out += [x.astype(np.float32), y.astype(np.float32)]
    return tuple(out)


# ----------------------------------------------------------------------------------- synthetic


def _simplex(c: int) -> np.ndarray:
    """``c`` unit vectors in R^(c-1) with pairwise cosine -1/(c-1) (maximally opposed)."""
    if c == 1:
        return np.zeros((1, 1))
    e = np.eye(c) - 1.0 / c
    u, s, _ = np.linalg.svd(e)
    v = u[:, : c - 1] * s[: c - 1]
    return v / np.linalg.norm(v, axis=1, keepdims=True)


RESPONSE = lambda Z: np.maximum(Z, 0.0)


def _build_synthetic(k: dict[str, Any]) -> Dataset:
    n_tasks, c = int(k["tasks"]), int(k["clusters"])
    if c > n_tasks:
        raise LabError(f"clusters ({c}) cannot exceed tasks ({n_tasks})")
    d, N = int(k["features"]), int(k["samples"])
    rel, gamma, noise = float(k["relatedness"]), float(k["conflict"]), float(k["noise"])
    rank = 2  # latent directions per cluster
    need = rank * (1 + c + n_tasks)
    if d < 2 * rank:
        raise LabError(f"features must be at least {2 * rank} for the synthetic scenario")
    rng = np.random.default_rng(int(k["data_seed"]))
    # Orthonormal directions; when the input is too small to keep every block orthogonal, the
    # extra blocks are random (nearly orthogonal in high dimension anyway).
    q, _ = np.linalg.qr(rng.standard_normal((d, min(d, need))))
    basis = list(q.T)
    while len(basis) < need:
        v = rng.standard_normal(d)
        basis.append(v / np.linalg.norm(v))
    blocks = [np.stack(basis[i * rank : (i + 1) * rank]) for i in range(1 + c + n_tasks)]
    shared, full = blocks[0], blocks[1 : 1 + c]
    own = blocks[1 + c :]
    if k["conflict_type"] == "opposing":
        s = _simplex(c)  # (c, c-1)
        targets = [sum(s[ci, j] * full[j] for j in range(max(c - 1, 1))) for ci in range(c)]
        if c == 1:
            targets = [full[0]]
    else:
        targets = list(full)
    protos = [(1 - gamma) * shared + gamma * t for t in targets]
    protos = [p / np.linalg.norm(p, axis=1, keepdims=True) for p in protos]
    cluster_of = [t * c // n_tasks for t in range(n_tasks)]  # contiguous, balanced clusters
    W = []
    for t in range(n_tasks):
        w = np.sqrt(rel) * protos[cluster_of[t]] + np.sqrt(1 - rel) * own[t]
        W.append(w / np.linalg.norm(w, axis=1, keepdims=True))
    W = np.stack(W)  # (tasks, rank, d)
    X = rng.standard_normal((N, d))
    Z = np.einsum("nd,trd->ntr", X, W)
    # A one-sided response: a task and its opposite need different features (relu(z) vs
    # relu(-z)), so opposing clusters compete for the shared trunk instead of sharing it.
    signal = RESPONSE(Z).sum(axis=2)
    signal = (signal - signal.mean(0)) / signal.std(0)
    if k["task_type"] == "regression":
        Y = signal + noise * rng.standard_normal(signal.shape)
        types = ["regression"] * n_tasks
    else:
        Y = (signal > 0).astype(np.float64)
        flip = rng.random(Y.shape) < noise
        Y = np.where(flip, 1.0 - Y, Y)
        types = ["binary"] * n_tasks
    tasks = [f"t{t}" for t in range(n_tasks)]
    arrays = _split_standardize(X, Y, types, int(k["data_seed"]))
    info = {"clusters": {tasks[t]: cluster_of[t] for t in range(n_tasks)}}
    return Dataset(tasks, types, *arrays, input_shape=(d,), info=info)


# ----------------------------------------------------------------------------------- digits

_DIGIT_ATTRIBUTES: dict[str, set[int]] = {
    "even": {0, 2, 4, 6, 8},
    "ge5": {5, 6, 7, 8, 9},
    "prime": {2, 3, 5, 7},
    "loop": {0, 4, 6, 8, 9},  # has a closed loop
    "one_or_seven": {1, 7},
    "mult3": {0, 3, 6, 9},
    "zero_one_eight": {0, 1, 8},  # vertically symmetric shapes
    "lt3": {0, 1, 2},
    "four_or_nine": {4, 9},
    "straight": {1, 4, 7},  # drawn with straight strokes only
}


def _build_digits(k: dict[str, Any]) -> Dataset:
    from sklearn.datasets import load_digits

    digits = load_digits()
    X, labels = digits.data.astype(np.float64), digits.target
    rng = np.random.default_rng(int(k["data_seed"]))
    attrs = list(k["attributes"])
    if len(attrs) + int(k["random_tasks"]) < 2:
        raise LabError("the digits scenario needs at least two tasks")
    cols, tasks = [], []
    for a in attrs:
        cols.append(np.isin(labels, list(_DIGIT_ATTRIBUTES[a])).astype(np.float64))
        tasks.append(a)
    for r in range(int(k["random_tasks"])):
        proj = X @ rng.standard_normal(X.shape[1])
        cols.append((proj > np.median(proj)).astype(np.float64))
        tasks.append(f"random{r}")
    Y = np.stack(cols, axis=1)
    noise = float(k["noise"])
    if noise > 0:
        flip = rng.random(Y.shape) < noise
        Y = np.where(flip, 1.0 - Y, Y)
    types = ["binary"] * len(tasks)
    arrays = list(_split_standardize(X, Y, types, int(k["data_seed"])))
    for i in (0, 2, 4):
        arrays[i] = arrays[i].reshape(-1, 1, 8, 8)
    info = {"clusters": {t: (1 if t.startswith("random") else 0) for t in tasks}}
    return Dataset(tasks, types, *arrays, input_shape=(1, 8, 8), info=info)


# ----------------------------------------------------------------------------------- csv


def _build_csv(k: dict[str, Any]) -> Dataset:
    import pandas as pd

    path = Path(str(k["path"])).expanduser()
    if not path.exists():
        raise LabError(f"csv scenario: file not found: {path}")
    try:
        if path.suffix.lower() == ".parquet":
            df = pd.read_parquet(path)
        else:
            df = pd.read_csv(path)
    except Exception as exc:  # pandas raises many types for unreadable tables
        raise LabError(f"csv scenario: cannot read {path.name}: {exc}") from None
    if df.empty:
        raise LabError(f"csv scenario: {path.name} has no rows")
    targets = list(k["targets"])
    missing = [t for t in targets if t not in df.columns]
    if missing:
        raise LabError(
            f"csv scenario: target column(s) {', '.join(missing)} not in {path.name}; "
            f"columns are: {', '.join(map(str, df.columns))}"
        )
    if len(set(targets)) < 2:
        raise LabError("csv scenario: multi-task learning needs at least two distinct targets")
    overrides: dict[str, str] = {}
    for item in k.get("task_types") or []:
        col, _, kind = item.partition("=")
        if col not in targets or kind not in ("binary", "regression"):
            raise LabError(
                f"csv scenario: bad task_types entry {item!r}; "
                "use target=binary or target=regression"
            )
        overrides[col] = kind
    if k.get("features"):
        feats = list(k["features"])
        bad = [f for f in feats if f not in df.columns]
        if bad:
            raise LabError(f"csv scenario: feature column(s) {', '.join(bad)} not in {path.name}")
        nonnum = [f for f in feats if not pd.api.types.is_numeric_dtype(df[f])]
        if nonnum:
            raise LabError(f"csv scenario: feature column(s) {', '.join(nonnum)} are not numeric")
        if set(feats) & set(targets):
            raise LabError("csv scenario: a column cannot be both a feature and a target")
    else:
        feats = [
            c for c in df.columns if c not in targets and pd.api.types.is_numeric_dtype(df[c])
        ]
    if not feats:
        raise LabError(
            f"csv scenario: {path.name} has no numeric feature column besides the targets"
        )
    X = df[feats].to_numpy(dtype=np.float64)
    ycols, types = [], []
    for t in targets:
        col = df[t]
        values = col.dropna().unique()
        kind = overrides.get(t) or ("binary" if len(values) == 2 else "regression")
        if kind == "binary":
            if len(values) != 2:
                raise LabError(
                    f"csv scenario: target {t!r} has {len(values)} distinct values; "
                    "binary needs exactly two"
                )
            lo = sorted(values, key=str)[0]
            y = np.where(col.isna(), np.nan, (col != lo).astype(np.float64))
        else:
            if not pd.api.types.is_numeric_dtype(col):
                raise LabError(
                    f"csv scenario: target {t!r} is not numeric and has {len(values)} classes; "
                    "only regression and binary targets are supported"
                )
            y = col.to_numpy(dtype=np.float64)
        if np.isfinite(y).sum() == 0:
            raise LabError(f"csv scenario: target {t!r} has no values")
        ycols.append(y)
        types.append(kind)
    Y = np.stack(ycols, axis=1)
    keep = np.isfinite(Y).any(axis=1)
    X, Y = X[keep], Y[keep]
    if len(X) < 20:
        raise LabError(f"csv scenario: {path.name} has {len(X)} usable rows; at least 20 needed")
    arrays = _split_standardize(X, Y, types, int(k["data_seed"]))
    info = {"features": feats, "rows": int(len(X))}
    return Dataset(list(map(str, targets)), types, *arrays, input_shape=(len(feats),), info=info)


_BUILDERS = {"synthetic": _build_synthetic, "digits": _build_digits, "csv": _build_csv}
