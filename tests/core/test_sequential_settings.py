"""Selective group updates: the paper's settings by default, the fast preset by name."""

from __future__ import annotations

import numpy as np
import pytest

from mtl_core.config import (
    SEQUENTIAL_PRESETS,
    AffinityConfig,
    RunConfig,
    TrainConfig,
    sequential_preset,
)
from mtl_core.errors import LabError
from mtl_core.train import loop as training


def test_sequential_defaults_are_the_official_codes_settings():
    cfg = RunConfig.for_scenario("synthetic", {}, {"train.mode": "sequential"})
    assert cfg.affinity.measure == "proximal"
    assert cfg.affinity.beta == 0.999  # EMA rate 0.001
    assert cfg.affinity.ema_start == "zero" and cfg.affinity.group_size_norm is True
    assert cfg.train.warmup == 100
    paper = cfg.with_overrides(sequential_preset("paper"))
    assert paper == cfg


def test_fast_preset_is_the_earlier_short_run_settings():
    cfg = RunConfig.for_scenario(
        "synthetic", {}, {"train.mode": "sequential", **sequential_preset("fast")}
    )
    assert (
        cfg.affinity.beta,
        cfg.affinity.ema_start,
        cfg.affinity.group_size_norm,
        cfg.train.warmup,
    ) == (0.9, "first", False, 10)
    assert set(SEQUENTIAL_PRESETS) == {"paper", "fast"}
    with pytest.raises(LabError, match="unknown sequential preset 'slow'"):
        sequential_preset("slow")
    with pytest.raises(LabError, match="unknown EMA start"):
        AffinityConfig(ema_start="last")


def _first_step_proximal(monkeypatch, normalise: bool) -> np.ndarray:
    # one fixed grouping, so both runs take identical steps: {t0, t1} then {t2}
    monkeypatch.setattr(training._Sequential, "groups", lambda self, tasks: [[0, 1], [2]])
    cfg = RunConfig(
        scenario="synthetic",
        knobs={"samples": 200, "tasks": 3},
        train=TrainConfig(mode="sequential", steps=1, warmup=0, eval_every=1),
        affinity=AffinityConfig(measure="proximal", group_size_norm=normalise),
    )
    events = []
    training.train(cfg, events.append)
    return events[0].affinity["proximal"]


def test_group_size_normalisation_divides_a_groups_loss_change_by_its_size(monkeypatch):
    plain = _first_step_proximal(monkeypatch, False)
    norm = _first_step_proximal(monkeypatch, True)
    np.testing.assert_allclose(norm[:2], plain[:2] / 2, rtol=1e-5)
    np.testing.assert_allclose(norm[2], plain[2], rtol=1e-5)


def test_cli_train_preset_and_explicit_flags(tmp_path):
    from mtl_core.commands.cli import build_parser
    from mtl_core.commands.train import config_from_args

    parse = build_parser().parse_args
    fast = config_from_args(
        parse(
            [
                "train",
                "--scenario",
                "synthetic",
                "--mode",
                "sequential",
                "--preset",
                "fast",
                "--warmup",
                "3",
                "--out",
                "x.csv",
            ]
        )
    )
    assert fast.affinity.beta == 0.9 and fast.train.warmup == 3
    paper = config_from_args(
        parse(
            [
                "train",
                "--scenario",
                "lesson",
                "--replicas",
                "4",
                "--head-scale",
                "0.2",
                "--linear-bottleneck",
            ]
        )
    )
    assert paper.affinity.beta == 0.999 and paper.train.replicas == 4
    assert paper.model.head_scale == 0.2 and paper.model.linear_bottleneck is True
