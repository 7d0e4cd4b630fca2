"""One run-config builder for the CLI, the Train form, the lesson and evaluate:
``RunConfig.for_scenario`` and ``RunConfig.with_overrides``."""

from __future__ import annotations

import argparse

import pytest

from mtl_core.commands.train import add_parser, config_from_args
from mtl_core.config import ModelConfig, RunConfig, default_model_config, parse_groups, parse_ints
from mtl_core.errors import LabError


def test_scenario_defaults_then_overrides():
    cfg = RunConfig.for_scenario("lesson", {"conflict": "0.5"})
    assert cfg.knobs["conflict"] == 0.5 and cfg.knobs["tasks"] == 6  # resolved, coerced
    assert cfg.model == default_model_config("lesson")
    assert cfg.affinity.measure == "lookahead"  # the mode's default measure
    single = cfg.with_overrides({"train.mode": "single", "affinity.measure": "auto"})
    assert single.affinity.measure == "none" and single.knobs == cfg.knobs
    seq = RunConfig.for_scenario("synthetic", None, {"train.mode": "sequential"})
    assert seq.affinity.measure == "proximal"
    assert cfg.with_overrides({}) == cfg


def test_text_from_forms_and_the_cli_is_parsed_once():
    cfg = RunConfig.for_scenario(
        "synthetic",
        {"tasks": 4},
        {
            "model.hidden": "16, 8",
            "model.channels": [4, 8],
            "train.steps": "30",
            "train.mode": "groups",
            "train.groups": "t0,t1; t2,t3 ;",
            "optim.lr": "0.01",
            "optim.betas": "0.8,0.9",
            "knobs.conflict": 0.0,
            "name": "  mine ",
        },
    )
    assert cfg.model.hidden == (16, 8) and cfg.model.channels == (4, 8)
    assert cfg.train.steps == 30 and cfg.optim.lr == 0.01 and cfg.optim.betas == (0.8, 0.9)
    assert cfg.train.groups == (("t0", "t1"), ("t2", "t3")) and cfg.name == "mine"
    assert cfg.knobs["conflict"] == 0.0 and cfg.knobs["tasks"] == 4
    assert cfg.affinity.measure == "none"
    whole = cfg.with_overrides({"model": ModelConfig(hidden=(3,)), "optim": {"name": "sgd"}})
    assert whole.model == ModelConfig(hidden=(3,)) and whole.optim.name == "sgd"
    assert whole.optim.lr == 0.01  # a section mapping changes only the fields it names
    assert RunConfig.from_dict(cfg.to_dict()) == cfg
    assert parse_groups("") is None and parse_groups([["b", "a"], "c"]) == (("b", "a"), ("c",))
    assert parse_ints("64,32") == (64, 32)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"model.hidden": "64,abc"}, "hidden widths must be comma-separated whole numbers"),
        ({"model.hidden": ""}, "hidden widths needs at least one number"),
        ({"train.steps": "lots"}, "train.steps must be a number"),
        ({"train.steps": 2.5}, "train.steps must be a whole number"),
        ({"train.steps": 0}, "steps must be a positive integer"),
        ({"train.colour": 1}, "unknown setting 'train.colour'; train has: batch_size"),
        ({"colour": 1}, "unknown setting 'colour'"),
        ({"optim": 3}, "needs a OptimConfig or a mapping"),
        ({"knobs.colour": "red"}, "unknown knob 'colour'"),
        ({"train.mode": "groups"}, "mode 'groups' needs the groups"),
        ({"train.mode": "single", "affinity.measure": "lookahead"}, "share one network"),
    ],
)
def test_bad_overrides_name_the_problem(overrides, message):
    with pytest.raises(LabError, match=message):
        RunConfig.for_scenario("synthetic", None, overrides)


def test_cli_train_arguments_build_the_same_config():
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    args = parser.parse_args(
        [
            "train",
            "--scenario",
            "synthetic",
            "--set",
            "tasks=4",
            "--mode",
            "groups",
            "--groups",
            "t0,t1;t2,t3",
            "--steps",
            "20",
            "--hidden",
            "8,4",
            "--optimizer",
            "sgd",
            "--lr",
            "0.1",
            "--norm",
            "layer",
            "--out",
            "x.csv",
        ]
    )
    cfg = config_from_args(args)
    want = RunConfig.for_scenario(
        "synthetic",
        {"tasks": 4},
        {
            "train.mode": "groups",
            "train.groups": (("t0", "t1"), ("t2", "t3")),
            "train.steps": 20,
            "model.hidden": (8, 4),
            "model.norm": "layer",
            "optim.name": "sgd",
            "optim.lr": 0.1,
        },
    )
    assert cfg == want
