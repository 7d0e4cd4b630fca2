"""The measure registry (mtl_core.measures) is THE list: config validation, the CLI, units,
the logger's allowed measures, the impossible-value check and the loops read it, so adding
a measure is one registry entry (the app's selects are checked in tests/app)."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from mtl_core import measures
from mtl_core.commands.cli import build_parser
from mtl_core.commands.train import config_from_args
from mtl_core.config import (
    AffinityConfig,
    OptimConfig,
    RunConfig,
    TrainConfig,
    default_measure,
    sequential_preset,
    setting_default,
)
from mtl_core.errors import LabError
from mtl_core.runfile.units import impossible_count
from mtl_core.text import units
from tests.helpers.measures import GRADNORM


@pytest.fixture
def with_gradnorm(monkeypatch):
    monkeypatch.setattr(measures, "REGISTRY", (*measures.REGISTRY, GRADNORM))


def test_names_are_unique_across_names_and_aliases():
    keys = [k.casefold() for m in measures.REGISTRY for k in (m.name, *m.aliases)]
    assert len(keys) == len(set(keys))
    assert measures.NO_MEASURE not in keys and measures.AUTO not in keys
    assert measures.DEFAULT_MEASURE in measures.names()


@pytest.mark.parametrize(
    "alias, name",
    [("TAG", "lookahead"), ("tag", "lookahead"), (" lookahead_affinity ", "lookahead")]
    + [("Proximal_Affinity", "proximal"), ("COS", "cosine"), ("gradient cosine", "cosine")],
)
def test_aliases_resolve_to_the_canonical_name(alias, name):
    assert measures.canonical(alias) == name
    assert measures.get(alias).name == name
    assert AffinityConfig(measure=alias).measure == name  # stored canonical


def test_unknown_names_are_kept_by_canonical_and_refused_by_get_and_config():
    assert measures.canonical("  grad   sim ") == "grad sim"
    assert measures.find("none") is None and measures.find(None) is None
    with pytest.raises(LabError, match="^unknown affinity 'sim'; choose one of: lookahead, "):
        measures.get("sim")
    with pytest.raises(
        LabError,
        match=r"unknown affinity 'auto'; choose one of: lookahead, proximal, cosine, none$",
    ):
        AffinityConfig(measure="auto")


def test_mode_rules_follow_each_measures_modes():
    for m in measures.REGISTRY:
        for mode in ("together", "groups", "single", "sequential"):
            groups = {"train.groups": "t0,t1;t2,t3"} if mode == "groups" else {}
            overrides = {"train.mode": mode, "affinity.measure": m.name, **groups}
            if mode in m.modes:
                cfg = RunConfig.for_scenario("synthetic", {"tasks": 4}, overrides)
                assert cfg.affinity.measure == m.name
            else:
                with pytest.raises(LabError, match=f"^{m.name} affinity is measured"):
                    RunConfig.for_scenario("synthetic", {"tasks": 4}, overrides)
    with pytest.raises(LabError, match="inside sequential group updates: use --mode sequential"):
        RunConfig.for_scenario("synthetic", None, {"affinity.measure": "proximal"})


def test_default_measure_per_mode_is_the_registrys_default_in():
    assert [default_measure(m) for m in ("together", "groups", "single", "sequential")] == [
        "lookahead",
        "none",
        "none",
        "proximal",
    ]
    assert measures.auto_words() == (
        "lookahead for together, proximal for sequential, none otherwise"
    )


def test_units_follow_the_registry():
    for m in measures.REGISTRY:
        assert units.is_percent(m.name) is (m.unit == measures.FRACTION)
        assert units.unit_name(m.name) == m.unit_words
    assert units.format_value(0.0092, "TAG") == "+0.92%"  # an alias has its measure's unit
    assert units.format_value(0.31, "cosine") == "+0.31"
    assert units.unit_name("grad sim") == "affinity units"


def test_impossible_values_are_the_registry_bounds():
    aff = pd.DataFrame(
        {
            "measure": ["lookahead", "lookahead", "proximal", "cosine", "cosine", "other"],
            "affinity": [1.5, -3.0, 2.0, -1.2, 0.9, 50.0],
        }
    )
    n, text = impossible_count(aff)
    assert n == 3  # lookahead 1.5, proximal 2.0, cosine -1.2; "other" is not checked
    assert text.startswith("3 values are impossible for their measure")
    # each measure's own bound in words: a cosine of -1.2 is not "over 100% loss fall"
    assert "(lookahead above 1 = over 100% loss fall; proximal above 1 = over 100% loss " in text
    assert "fall; cosine outside [-1, 1])" in text
    # the Upload page's own label, not a CLI-only word
    assert text.endswith('or pick percent as the "Unit of the file\'s values" on Upload)')
    n, text = impossible_count(pd.DataFrame({"measure": ["cosine"] * 2, "affinity": [0.5, 1.5]}))
    assert n == 1 and "(cosine outside [-1, 1])" in text and "loss fall" not in text


def test_adding_a_measure_is_one_registry_entry(with_gradnorm):
    # config: accepted in its modes (an alias too), refused elsewhere, listed when unknown
    cfg = RunConfig.for_scenario("synthetic", None, {"affinity.measure": "GN"})
    assert cfg.affinity.measure == "gradnorm"
    with pytest.raises(LabError, match="^gradnorm affinity is measured between tasks that share"):
        RunConfig.for_scenario(
            "synthetic", None, {"train.mode": "single", "affinity.measure": "gn"}
        )
    with pytest.raises(LabError, match="lookahead, proximal, cosine, gradnorm, none$"):
        AffinityConfig(measure="x")
    # the CLI's --affinity lists it and passes it through
    assert "{lookahead,proximal,cosine,gradnorm,none}" in _train_help()
    args = build_parser().parse_args(["train", "--scenario", "synthetic", "--affinity", "gradnorm"])
    assert config_from_args(args).affinity.measure == "gradnorm"
    # units, the logger's allowed list, the impossible-value check
    assert not units.is_percent("gradnorm") and units.unit_name("gradnorm") == "norm ratio"
    assert measures.logger_names() == ("lookahead", "cosine", "gradnorm")
    bad = pd.DataFrame({"measure": ["gradnorm", "gradnorm"], "affinity": [-0.5, 7.0]})
    assert impossible_count(bad)[0] == 1


def test_a_loop_says_when_a_registered_measure_has_no_computation(with_gradnorm):
    from mtl_core.train.loop import train

    cfg = RunConfig.for_scenario(
        "synthetic",
        {"tasks": 2, "samples": 60, "features": 4},
        {"train.steps": 1, "train.batch_size": 8, "affinity.measure": "gradnorm"},
    )
    with pytest.raises(LabError, match="^the training loop cannot compute gradnorm affinity yet$"):
        train(cfg)


def test_the_logger_takes_aliases_and_refuses_the_group_update_measure():
    torch = pytest.importorskip("torch")
    from mtl_core.train.logger import AffinityLogger

    model = torch.nn.Sequential(torch.nn.Linear(3, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    kw = {"task_losses_fn": lambda m, b: m(b).mean(0), "optimizer": opt, "shared": "0"}
    log = AffinityLogger(model, ["a", "b"], measures=["TAG", "cos"], **kw)
    assert log.measure_names == ("lookahead", "cosine")
    with pytest.raises(LabError, match=r"^measures must be among lookahead, cosine, got \['prox"):
        AffinityLogger(model, ["a", "b"], measures=["proximal"], **kw)


# ----------------------------------------------------------------------------- defaults


def _train_help() -> str:
    parser = build_parser()
    sub = next(a for a in parser._actions if getattr(a, "choices", None) and "train" in a.choices)
    return sub.choices["train"].format_help()


def test_training_defaults_live_in_the_dataclasses():
    assert setting_default("train.steps") == TrainConfig().steps
    assert setting_default("train.batch_size") == TrainConfig().batch_size
    assert setting_default("train.eval_every") == TrainConfig().eval_every
    assert setting_default("optim.momentum") == OptimConfig().momentum
    with pytest.raises(LabError, match="^unknown setting 'train.stepz'; train has: "):
        setting_default("train.stepz")
    # the CLI passes nothing it was not given: no flags = the builder's own defaults
    args = build_parser().parse_args(["train", "--scenario", "lesson"])
    assert config_from_args(args) == RunConfig.for_scenario("lesson")
    # --preset paper (applied by the form, and by the CLI only when given) = the dataclasses
    for key, value in sequential_preset("paper").items():
        assert setting_default(key) == value, key


def test_cli_help_shows_the_dataclass_defaults(monkeypatch):
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    monkeypatch.setattr(fields["steps"], "default", 123)
    monkeypatch.setattr(fields["batch_size"], "default", 17)
    momentum = {f.name: f for f in dataclasses.fields(OptimConfig)}["momentum"]
    monkeypatch.setattr(momentum, "default", 0.8)
    text = " ".join(_train_help().split())
    assert "--steps STEPS (default: 123)" in text
    assert "--batch-size BATCH_SIZE (default: 17)" in text
    assert "SGD momentum (default: 0.8)" in text
    assert "--eval-every EVAL_EVERY (default: 10)" in text


def test_a_few_impossible_cells_among_fractions_are_not_called_percent():
    """One 5.0 among fractions (new-user finding): the warning names the count out of the
    checked values and says to check those cells, not to declare percent (which would turn
    every good value into a hundredth)."""
    aff = pd.DataFrame({"measure": ["lookahead"] * 12, "affinity": [0.01] * 11 + [5.0]})
    n, text = impossible_count(aff)
    assert n == 1
    assert text.startswith("1 value is impossible for their measure (lookahead above 1")
    assert "(only 1 of 12: check those cells;" in text
    assert "--unit percent" not in text
