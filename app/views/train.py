"""Train: a form over every config field, and the queue of runs (progress, ETA, Cancel).

Submitting builds a ``RunConfig`` (every mistake is a LabError shown as a message) and hands
it to the runner; the worker process trains and writes into the store, which the queue table
polls while anything is active.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from app import auth, data, layout, lesson_words, machine, nav, session, words
from app.escape import md
from app.views import train_queue, train_table
from mtl_core import measures
from mtl_core.accounts.quota import Limits
from mtl_core.config import (
    ARCHS,
    MODES,
    NORMS,
    OPTIMIZERS,
    SEQUENTIAL_PRESETS,
    RunConfig,
    default_model_config,
    sequential_preset,
    setting_default,
)
from mtl_core.errors import LabError
from mtl_core.scenarios import list_scenarios

MODE_HELP = {
    "together": "one network, all tasks (measures affinity)",
    "groups": "one network per group you list below",
    "single": "one network per task",
    "sequential": "selective group updates (Jeong & Yoon 2025), proximal affinity",
}
#: A mode as its select shows it: short enough for a 240 px field (the whole sentence of
#: ``MODE_HELP`` is in the field's help).
MODE_LABELS = {
    "together": "together (affinity)",
    "groups": "groups (listed below)",
    "single": "single (one per task)",
    "sequential": "sequential (proximal)",
}
MODE_WORDS = "\n".join(f"- **{m}**: {h}" for m, h in MODE_HELP.items())
#: Number inputs show 4 significant digits: ``%.4f`` drew a learning rate of 2e-05 as 0.0000.
NUMBER_FORMAT = "%.4g"


def render() -> None:
    st.title("Train a run")
    st.caption(
        "Runs train in background worker processes; you can leave this page, the run "
        "keeps going. Every run is kept in the run store."
    )
    _form()
    st.divider()
    st.subheader("Runs")
    train_queue.show()


# ----------------------------------------------------------------------------- the form


def _knob_widget(name: str, spec: dict[str, Any], key: str) -> Any:
    kind = spec.get("type", "str")
    default = spec.get("default")
    label = name.replace("_", " ")
    help_ = spec.get("help")
    lo, hi = spec.get("min"), spec.get("max")
    if kind == "int":
        return st.number_input(
            label, min_value=lo, max_value=hi, value=int(default or 0), step=1, key=key, help=help_
        )
    if kind == "float":
        if lo is not None and hi is not None and hi - lo <= 1.0:
            return st.slider(
                label, float(lo), float(hi), float(default or 0.0), step=0.05, key=key, help=help_
            )
        return st.number_input(
            label,
            min_value=None if lo is None else float(lo),
            max_value=None if hi is None else float(hi),
            value=float(default or 0.0),
            format=NUMBER_FORMAT,
            key=key,
            help=help_,
        )
    if kind == "choice":
        choices = list(spec.get("choices") or [])
        index = choices.index(default) if default in choices else 0
        return st.selectbox(label, choices, index=index, key=key, help=help_)
    if kind == "list":
        choices = spec.get("choices")
        if choices:
            return st.multiselect(
                label, list(choices), default=list(default or []), key=key, help=help_
            )
        return st.text_input(label, ",".join(map(str, default or [])), key=key, help=help_)
    return st.text_input(label, "" if default is None else str(default), key=key, help=help_)


def build_config(values: dict[str, Any]) -> RunConfig:
    """The form's values as a validated ``RunConfig`` (LabError on any mistake): ``scenario``,
    ``knobs`` and dotted settings (``"train.steps"``, ...) for ``RunConfig.with_overrides``."""
    settings = {k: v for k, v in values.items() if k not in ("scenario", "knobs")}
    return RunConfig.for_scenario(values["scenario"], values["knobs"], settings)


def capped(name: str, spec: dict[str, Any], lim: Limits) -> dict[str, Any]:
    """A knob's spec with its maximum lowered to this server's limit (tasks, samples,
    features); the core checks the same limits when the run is queued."""
    cap = {"tasks": lim.tasks, "samples": lim.samples, "features": lim.features}.get(name)
    if cap is None or spec.get("type") != "int":
        return spec
    hi = spec.get("max")
    out = {**spec, "max": cap if hi is None else min(int(hi), cap)}
    if out.get("default") is not None and int(out["default"]) > out["max"]:
        out["default"] = out["max"]
    return out


def limit_help(limit: int | None) -> str | None:
    return f"At most {limit} on this server (its admin sets the limits)." if limit else None


#: Fields whose meaning depends on the scenario: a scenario change resets them (a digits run
#: name or its groups must not carry over to a synthetic run).
SCENARIO_FIELDS = ("train_name", "train_mode", "train_measure", "train_groups", "train_warmup")


def reset_scenario_fields() -> None:
    """``on_change`` of the scenario: the scenario-dependent fields go back to defaults."""
    for key in SCENARIO_FIELDS:
        st.session_state.pop(key, None)


#: Fields that describe one run, not a way of working: emptied once the run is queued (four
#: runs in a row named "digits seq prox" otherwise). The other settings stay for the next run.
RUN_FIELDS = ("train_name", "train_groups")
_QUEUED = "_train_queued"  # (run id, name) of the run just queued, said on the next draw


def run_summary(cfg: RunConfig) -> str:
    """The run as it will be queued: its name and the settings that tell runs apart."""
    name = cfg.name or f"{cfg.scenario} {cfg.train.mode}"
    # an uploaded table's reference is a hash: the page lists the table's columns instead
    shown = {k: v for k, v in dict(cfg.knobs).items() if k != "table" and v not in ("", [])}
    knobs = ", ".join(f"{k}={v}" for k, v in sorted(shown.items()))
    groups = f" · groups {md(words.format_grouping(cfg.train.groups))}" if cfg.train.groups else ""
    return (
        f"**{md(name)}** · scenario {md(cfg.scenario)}"
        + (f" ({md(knobs)})" if knobs else "")
        + f" · mode {cfg.train.mode}{groups} · affinity {cfg.affinity.measure}"
        + f" every {cfg.affinity.every} step(s) · {cfg.train.steps} steps · batch "
        f"{cfg.train.batch_size} · seed {cfg.train.seed} · {cfg.optim.name} · device "
        f"{cfg.train.device}"
    )


def _form() -> None:
    lim = auth.deployment().limits
    queued = st.session_state.pop(_QUEUED, None)
    if queued is not None:  # before the widgets exist: a drawn widget's value is fixed
        for key in RUN_FIELDS:
            st.session_state.pop(key, None)
    scenarios = {
        name: s
        for name, s in list_scenarios().items()
        if lim.scenarios is None or name in lim.scenarios
    }
    names = sorted(scenarios, key=lambda n: (n != "synthetic", n))
    scen = st.selectbox(
        "Scenario",
        names,
        key="train_scenario",
        on_change=reset_scenario_fields,
        help="What the run trains on; its description is below",
    )
    # the name alone in the select (a description cut at 90 characters did not fit either)
    st.caption(md(scenarios[scen].description))
    gpu = machine.gpu_name()
    # Not an st.form: Enter in a field only commits that field (a form queued a run on every
    # Enter), and the run about to be queued is shown, live, above the button.
    with st.container(border=True):
        values: dict[str, Any] = {
            "scenario": scen,
            "knobs": train_table.table_knobs(lim)
            if scen == "csv"  # your table: an upload, never a path on the server
            else _knob_inputs(scen, scenarios[scen].knobs, lim),
        }
        values |= _training_inputs(gpu, lim)
        values |= _affinity_inputs()
        values |= _model_inputs(scen)
        values["name"] = st.text_input("run name (optional)", "", key="train_name")
        _preview(values)
        submitted = st.button(
            "Queue run", type="primary", icon=":material/play_arrow:", key="train_queue"
        )
    if gpu:
        st.caption(f":material/memory: GPU found: **{gpu}** — device *auto* trains on it.")
    else:
        st.caption(":material/memory: No GPU found: runs train on the CPU.")
    if submitted:
        _submit(values)
    if queued is not None:
        rid, name = queued
        st.success(f"Queued run #{rid} ({md(name)}).")
        nav.link("explore", f"Watch run #{rid} live in Explore", icon=":material/grid_on:", run=rid)


def _knob_inputs(scen: str, specs: dict[str, dict[str, Any]], lim: Limits) -> dict[str, Any]:
    st.markdown("**Scenario knobs**")
    knobs: dict[str, Any] = {}
    # short values (numbers, sliders, one-word choices): three columns stay at 1024 px
    cols = layout.field_columns(3, "train_knobs", min_px=140)
    for i, (name, kspec) in enumerate(specs.items()):
        with cols[i % 3]:
            knobs[name] = _knob_widget(
                name, capped(name, kspec, lim), key=f"train_knob_{scen}_{name}"
            )
    return knobs


def _training_inputs(gpu: str | None, lim: Limits) -> dict[str, Any]:
    st.markdown("**Training**")
    c1, c2, c3, c4 = layout.field_columns(4, "train_training_1")
    out: dict[str, Any] = {}
    out["train.mode"] = c1.selectbox(
        "mode", MODES, key="train_mode", format_func=MODE_LABELS.get, help=MODE_WORDS
    )
    steps_max, bs_max = lim.steps or 1_000_000, lim.batch_size or 100_000
    out["train.steps"] = c2.number_input(
        "steps",
        1,
        steps_max,
        min(setting_default("train.steps"), steps_max),
        step=50,
        key="train_steps",
        help=limit_help(lim.steps),
    )
    out["train.batch_size"] = c3.number_input(
        "batch size",
        1,
        bs_max,
        min(setting_default("train.batch_size"), bs_max),
        key="train_bs",
        help=limit_help(lim.batch_size),
    )
    out["train.eval_every"] = c4.number_input(
        "evaluate every (steps)",
        1,
        100_000,
        setting_default("train.eval_every"),
        key="train_eval",
    )
    c1, c2, c3, c4 = layout.field_columns(4, "train_training_2")
    out["train.seed"] = c1.number_input(
        "seed", 0, 2**31 - 1, setting_default("train.seed"), key="train_seed"
    )
    out["train.device"] = c2.selectbox(
        "device",
        ["auto", "cpu", "cuda"],
        key="train_device",
        format_func=lambda d: {
            "auto": f"auto ({'GPU: ' + gpu if gpu else 'CPU'})",
            "cpu": "CPU",
            "cuda": f"GPU{': ' + gpu if gpu else ''}",
        }[d],
        help="auto uses the GPU when the machine has one",
    )
    out["train.groups"] = c3.text_input(
        "groups (mode groups)", "", key="train_groups", placeholder="t0,t1,t2; t3,t4,t5"
    )
    preset = c4.selectbox(
        "sequential settings",
        tuple(SEQUENTIAL_PRESETS),
        key="train_seq_preset",
        format_func=lambda p: lesson_words.SEQUENTIAL_PRESET_LABELS.get(p, p),
        help=lesson_words.SEQUENTIAL_PRESET_HELP,
    )
    out.update(sequential_preset(preset))
    return out


def _affinity_inputs() -> dict[str, Any]:
    st.markdown("**Affinity**")
    c1, c2, c3 = layout.field_columns(3, "train_affinity")
    return {
        "affinity.measure": c1.selectbox(
            "measure",
            (measures.AUTO, *measures.config_choices()),
            key="train_measure",
            help=f"auto: {measures.auto_words()}",
        ),
        "affinity.every": c2.number_input(
            "measure every (steps)",
            1,
            100_000,
            setting_default("affinity.every"),
            key="train_every",
        ),
        "train.replicas": c3.number_input(
            "replicas",
            1,
            64,
            setting_default("train.replicas"),
            key="train_replicas",
            help="independent copies of every network, trained as one batched model: "
            "losses become means with a spread (MLP trunks only)",
        ),
    }


def _model_inputs(scen: str) -> dict[str, Any]:
    st.markdown("**Model and optimizer**")
    model0 = default_model_config(scen)
    c1, c2, c3, c4 = layout.field_columns(4, "train_model_1")
    out: dict[str, Any] = {}
    out["model.arch"] = c1.selectbox(
        "architecture", ARCHS, index=ARCHS.index(model0.arch), key=f"train_arch_{scen}"
    )
    out["model.hidden"] = c2.text_input(
        "hidden widths", ",".join(map(str, model0.hidden)), key=f"train_hidden_{scen}"
    )
    out["model.channels"] = c3.text_input(
        "CNN channels", ",".join(map(str, model0.channels)), key=f"train_channels_{scen}"
    )
    out["model.norm"] = c4.selectbox("normalization", NORMS, key="train_norm")
    c1, c2 = layout.field_columns(2, "train_model_2")
    out["model.linear_bottleneck"] = c1.checkbox(
        "linear bottleneck",
        model0.linear_bottleneck,
        key=f"train_linear_{scen}",
        help="no ReLU after the trunk's last layer",
    )
    out["model.head_scale"] = c2.number_input(
        "head init scale",
        0.001,
        10.0,
        float(model0.head_scale),
        format="%.3f",
        key=f"train_head_scale_{scen}",
        help="1 = PyTorch's default initialisation",
    )
    c1, c2, c3, c4 = layout.field_columns(4, "train_optim")
    out["optim.name"] = c1.selectbox(
        "optimizer",
        OPTIMIZERS,
        index=OPTIMIZERS.index(setting_default("optim.name")),
        key="train_opt",
    )
    lr = c2.number_input(
        "learning rate",
        0.0,
        10.0,
        0.0,
        format=NUMBER_FORMAT,
        key="train_lr",
        help="0 = the optimizer's default",
    )
    out["optim.lr"] = float(lr) if lr > 0 else None
    out["optim.momentum"] = c3.number_input(
        "momentum (SGD)",
        0.0,
        0.999,
        setting_default("optim.momentum"),
        format=NUMBER_FORMAT,
        key="train_momentum",
    )
    out["optim.weight_decay"] = c4.number_input(
        "weight decay",
        0.0,
        1.0,
        setting_default("optim.weight_decay"),
        format=NUMBER_FORMAT,
        key="train_wd",
    )
    return out


def _preview(values: dict[str, Any]) -> None:
    """Show the run the fields describe now (name and settings), or what is wrong with them."""
    try:
        cfg = build_config(values)
    except LabError as exc:
        st.caption(f":material/error: Not ready to queue: {exc}")
        return
    st.markdown(":material/playlist_add: Will queue: " + run_summary(cfg))


def _submit(values: dict[str, Any]) -> None:
    try:
        cfg = build_config(values)
        check_groups(cfg)
        if cfg.scenario == "csv":
            train_table.save_upload(dict(cfg.knobs), auth.deployment().limits)
        rid = data.get_runner().submit(cfg)
    except LabError as exc:
        st.error(md(exc))
        return
    session.remember(rid)
    st.session_state[_QUEUED] = (rid, cfg.name or f"{cfg.scenario} {cfg.train.mode}")
    st.rerun()  # draws the form again with the run's name and groups emptied


def check_groups(cfg: Any) -> None:
    """Fixed groups must name the scenario's tasks: say so now, not in a failed run later."""
    if cfg.train.mode != "groups":
        return
    from mtl_core.config import group_indices
    from mtl_core.scenarios import load_dataset

    if cfg.scenario == "csv":  # a table's tasks are its targets (the table is not saved yet)
        tasks = [str(t) for t in cfg.knobs.get("targets") or []]
    else:
        tasks = list(load_dataset(cfg.scenario, dict(cfg.knobs)).tasks)
    group_indices(cfg.train.groups, tasks)
