"""``train``: train one scenario headless and write its long-form affinity log."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from mtl_core import measures
from mtl_core.config import (
    DEVICES,
    MODES,
    NORMS,
    OPTIMIZERS,
    SEQUENTIAL_PRESETS,
    OptimConfig,
    RunConfig,
    sequential_preset,
    setting_default,
)
from mtl_core.errors import LabError
from mtl_core.text import units
from mtl_core.text.labels import column_label, short_labels

#: Each option's ``dest`` -> the ``RunConfig`` setting it sets. Every one defaults to None
#: and only the options given are passed on, so a default lives once, in the config
#: dataclasses (:func:`mtl_core.config.setting_default`), and a scenario's own model
#: settings are not overwritten by a default nobody asked for.
SETTINGS = {
    "mode": "train.mode",
    "steps": "train.steps",
    "batch_size": "train.batch_size",
    "eval_every": "train.eval_every",
    "seed": "train.seed",
    "device": "train.device",
    "groups": "train.groups",
    "replicas": "train.replicas",
    "warmup": "train.warmup",
    "hidden": "model.hidden",
    "norm": "model.norm",
    "head_scale": "model.head_scale",
    "linear_bottleneck": "model.linear_bottleneck",
    "optimizer": "optim.name",
    "lr": "optim.lr",
    "momentum": "optim.momentum",
    "affinity": "affinity.measure",
    "every": "affinity.every",
    "beta": "affinity.beta",
    "name": "name",
}


def _default(dest: str) -> str:
    """``(default: 300)``, read from the config dataclass."""
    return f"(default: {setting_default(SETTINGS[dest])})"


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a scenario and log inter-task affinity")
    p.add_argument("--scenario", required=True, help="scenario name (see `scenarios`)")
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="scenario knob, repeatable",
    )
    p.add_argument("--mode", choices=MODES, default=None, help=_default("mode"))
    p.add_argument(
        "--affinity",
        default=None,
        metavar="{" + ",".join(measures.config_choices()) + "}",
        help=f"measure to log (default: {measures.auto_words()}); aliases such as TAG work",
    )
    p.add_argument(
        "--every",
        type=int,
        default=None,
        help=f"measure affinity every K steps {_default('every')}",
    )
    p.add_argument("--steps", type=int, default=None, help=_default("steps"))
    p.add_argument("--seed", type=int, default=None, help=_default("seed"))
    p.add_argument("--device", choices=DEVICES, default=None, help=_default("device"))
    p.add_argument("--out", help="affinity log to write (.csv, .parquet or .jsonl)")
    p.add_argument("--groups", help="fixed groups for --mode groups, e.g. 't0,t1;t2,t3'")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=None, help=_default("optimizer"))
    p.add_argument(
        "--lr",
        type=float,
        default=None,
        help=f"learning rate (default: {OptimConfig(name='sgd').learning_rate:g} for sgd, "
        f"{OptimConfig(name='adam').learning_rate:g} for adam)",
    )
    p.add_argument(
        "--momentum", type=float, default=None, help=f"SGD momentum {_default('momentum')}"
    )
    p.add_argument("--batch-size", type=int, default=None, help=_default("batch_size"))
    p.add_argument(
        "--hidden", default=None, help="trunk widths, e.g. 64,32 (default: the scenario's)"
    )
    p.add_argument("--norm", choices=NORMS, default=None, help="(default: the scenario's)")
    p.add_argument("--eval-every", type=int, default=None, help=_default("eval_every"))
    p.add_argument(
        "--preset",
        choices=tuple(SEQUENTIAL_PRESETS),
        default=None,
        help="sequential: proximal-affinity settings; paper (default) = the official "
        "code's (EMA rate 0.001, 100 warm-up steps, group-size normalisation), "
        "fast = EMA weight 0.9 from the first matrix, 10 warm-up steps, for "
        "short runs",
    )
    p.add_argument(
        "--beta",
        type=float,
        default=None,
        help="proximal affinity EMA weight of history (overrides --preset)",
    )
    p.add_argument(
        "--warmup",
        type=int,
        default=None,
        help="sequential: steps with tasks alone (overrides --preset)",
    )
    p.add_argument(
        "--replicas",
        type=int,
        default=None,
        help=f"train N independent replicas as one batched model (MLP trunks) "
        f"{_default('replicas')}",
    )
    p.add_argument(
        "--head-scale",
        type=float,
        default=None,
        help="scale of the heads' initial weights (1 = PyTorch's default)",
    )
    p.add_argument(
        "--linear-bottleneck",
        action="store_true",
        default=None,
        help="no ReLU after the trunk's last layer",
    )
    p.add_argument("--name", default=None, help="run name")
    p.add_argument(
        "--store",
        default=None,
        help="record the run in this run store, through the runner (default, "
        "when --out is not given: $MTL_LAB_STORE, else ./.lab/store.sqlite, "
        "the store the app shows)",
    )
    p.set_defaults(func=run)


def parse_sets(items: list[str]) -> dict[str, str]:
    """``["key=value", ...]`` (repeated ``--set``) -> ``{key: value}``; LabError if malformed."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise LabError(f"--set expects KEY=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """Validate the arguments into a ``RunConfig`` (every error is a ``LabError``).

    Only the options given are passed on (:data:`SETTINGS`): ``--preset`` first, then the
    explicit flags over it; everything else keeps its dataclass (or scenario) default.
    """
    overrides: dict[str, object] = {}
    if getattr(args, "preset", None) is not None:
        overrides.update(sequential_preset(args.preset))
    for dest, key in SETTINGS.items():
        value = getattr(args, dest, None)
        if value is not None:
            overrides[key] = value
    return RunConfig.for_scenario(args.scenario, parse_sets(args.sets), overrides)


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    if args.out is None and args.store is None:
        from mtl_core.store import default_store_path

        args.store = str(default_store_path())  # where the app will show it
    if args.out is not None:
        from mtl_core.commands import out_path
        from mtl_core.runfile import TABLE_EXTENSIONS

        if Path(args.out).suffix.lower() not in TABLE_EXTENSIONS:
            raise LabError(
                f"--out {args.out}: use one of the extensions {', '.join(TABLE_EXTENSIONS)}"
            )
        out_path(args.out)  # before any training: one missing folder level at most
    from mtl_core.train.loop import resolve_device

    resolve_device(cfg.train.device)  # fail before any work when CUDA is asked for but absent
    if cfg.scenario == "csv":
        check_table(cfg)
    if args.store is not None:
        return _run_in_store(cfg, args)
    return _run_local(cfg, Path(args.out))


def _run_local(cfg: RunConfig, out: Path) -> int:
    import pandas as pd

    from mtl_core.commands.progress import ProgressBar
    from mtl_core.errors import DivergedError
    from mtl_core.runfile import affinity_rows, write_table
    from mtl_core.train.loop import train

    frames: list[pd.DataFrame] = []
    bar = ProgressBar(cfg.train.steps, label="train")

    def on_step(ev) -> None:
        for measure, mat in ev.affinity.items():
            frames.append(affinity_rows(ev.step, ev.tasks, mat, measure))
        mean = np.nanmean(list(ev.train_loss.values()))
        bar.update(ev.step, f"loss {mean:.4f}")

    def save() -> None:
        if frames:
            write_table(pd.concat(frames, ignore_index=True), out)
            sys.stderr.write(f"wrote {len(frames)} affinity matrices to {out}\n")

    try:
        result = train(cfg, on_step)
    except (DivergedError, KeyboardInterrupt):
        bar.close()
        save()  # keep every step logged before the failure
        raise
    save()
    print(summary(result))
    return 0


def summary(result) -> str:
    """One screen: final per-task losses and the averaged affinity matrix."""
    lines = [
        f"trained {result.steps} steps in {result.seconds:.1f}s on {result.device}, "
        f"{result.parameters:,} parameters"
    ]
    val, test = result.loss("val"), result.loss("test")
    acc = {m.task: m.value for m in result.metrics if m.split == "test" and m.metric == "accuracy"}
    lines += table_lines(getattr(result, "info", None) or {})
    names = short_labels(result.tasks, 24)
    w = max(14, *map(len, names))
    lines.append(f"{'task':>{w}} {'val loss':>9} {'test loss':>9} {'test acc':>8}")
    for t, name in zip(result.tasks, names):
        a = f"{acc[t]:8.3f}" if t in acc else f"{'':8}"
        v, te = val.get(t, float("nan")), test.get(t, float("nan"))
        lines.append(f"{name:>{w}} {v:9.4f} {te:9.4f} {a}")
    for measure, A in result.mean_affinity.items():
        # in the unit the app, the exports and --tau use (mtl_core.text.units): % for
        # loss-change measures, a plain number for cosine
        unit = units.unit_name(measure)
        digits = 3 if units.is_percent(measure) else 4
        lines.append(
            f"\nmean {measure} affinity, in {unit} (row = source, column = target; >0 helps):"
        )
        short = short_labels(result.tasks, 7)
        lines.append(" " * 8 + "".join(f"{s:>8}" for s in short))
        for s, row in zip(short, A):
            shown = (units.to_display(v, measure) for v in row)
            lines.append(f"{s:>8}" + "".join(f"{v:8.{digits}f}" for v in shown))
    return "\n".join(lines)


def table_lines(info: dict) -> list[str]:
    """A table run's features and left-out columns (its dataset ``info``), one line each;
    nothing for other scenarios."""
    if not info.get("features"):
        return []
    feats = info["features"]
    out = [f"features ({len(feats)}): " + ", ".join(map(column_label, feats))]
    for col, why in (info.get("left_out") or {}).items():
        out.append(f"left out {column_label(col)}: {why}")
    return out


def check_table(cfg: RunConfig) -> None:
    """The csv scenario's table, read here before any training: the reader's own messages
    (the table's columns when a name is wrong) go to this terminal only, and stderr says
    which features the run uses and which columns it leaves out."""
    from mtl_core.scenarios.table import MissingColumns, plan_table, read_source

    k = dict(cfg.knobs)
    table, label = read_source(k, detail=True)
    try:
        plan = plan_table(table, k["targets"], k.get("features") or (), k.get("task_types"), label)
    except MissingColumns as exc:
        cols = ", ".join(map(column_label, exc.columns))
        raise LabError(f"{exc}; its columns: {cols}") from None
    for line in (*plan.notes, *table_lines(plan.info())):
        sys.stderr.write(f"{label}: {line}\n")


def _run_in_store(cfg: RunConfig, args: argparse.Namespace) -> int:
    """Submit through the runner (a background worker writes into the store) and follow it."""
    from mtl_core.commands.progress import ProgressBar
    from mtl_core.runfile import matrices_to_long, write_table
    from mtl_core.runner import Runner

    runner = Runner(args.store, report_store_faults=False)  # wait() says it, in one line
    try:
        run_id = runner.submit(cfg)
        sys.stderr.write(f"run {run_id} queued in {runner.store.path}\n")
        bar = ProgressBar(cfg.train.steps, label=f"run {run_id}")

        def progress(info) -> None:
            losses = list(info.losses.values())
            extra = f"loss {np.nanmean(losses):.4f}" if losses else info.status
            bar.update(min(info.steps_done, cfg.train.steps - 1), extra)

        try:
            info = runner.wait(run_id, progress)
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: wait() cancelled the run
            bar.close()
            done = runner.status(run_id)
            sys.stderr.write(
                f"run {run_id} {done.status} after {done.steps_done} steps (kept in the store)\n"
            )
            raise
        if info.status == "finished":
            bar.update(cfg.train.steps)
        else:
            bar.close()
        if args.out is not None:
            frames = []
            for measure in runner.store.measures(run_id):
                steps, tasks, mats = runner.store.affinity_steps(run_id, measure)
                frames.append(matrices_to_long(steps, tasks, mats, measure))
            if frames:
                import pandas as pd

                write_table(pd.concat(frames, ignore_index=True), Path(args.out))
                sys.stderr.write(f"wrote the affinity log to {args.out}\n")
    finally:
        runner.shutdown(interrupt_running=False)
    if info.status != "finished":
        raise LabError(f"run {run_id} {info.status}: {info.error or 'no reason recorded'}")
    print(
        f"run {run_id} finished: {info.steps_done} steps; see `python -m mtl_core runs "
        f"--store {args.store}`"
    )
    return 0
