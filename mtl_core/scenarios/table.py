"""The ``csv`` builder: the user's own table (CSV or Parquet) with several target columns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mtl_core.errors import LabError
from mtl_core.scenarios.dataset import Dataset, split_standardize


def build(k: dict[str, Any]) -> Dataset:
    """The dataset for resolved knobs ``k`` (``path``, ``targets``, optional ``features`` and
    ``task_types``). Raises ``LabError`` naming the file and column for anything unusable."""
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
        feats = [c for c in df.columns if c not in targets and pd.api.types.is_numeric_dtype(df[c])]
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
    arrays = split_standardize(X, Y, types, int(k["data_seed"]))
    info = {"features": feats, "rows": int(len(X))}
    return Dataset(list(map(str, targets)), types, *arrays, input_shape=(len(feats),), info=info)
