"""Cost of measuring TAG lookahead affinity, against a plain training step measured in the same run.

For n = 4, 9, 16 tasks on the MLP (synthetic) and the digits CNN, times one training step:
plain (sum of losses), with vectorized lookahead, and with the per-task reference loop; then a
whole run with ``--every 10`` lookahead against the same run without affinity.

    python -m bench.affinity_overhead [--device auto|cpu|cuda] [--repeats 30]

Targets (CPU, n = 9): vectorized >= 2x faster than the reference loop and <= 0.6 x (n + 1)
plain steps; a whole run with ``--every 10`` <= 1.6x the run without affinity.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from mtl_core.config import (
    AffinityConfig,
    ModelConfig,
    OptimConfig,
    RunConfig,
    TrainConfig,
)
from mtl_core.scenarios import load_dataset
from mtl_core.train.affinity import (
    lookahead_affinity_reference,
    lookahead_from_grads,
    per_task_grads,
)
from mtl_core.train.loop import make_optimizer, resolve_device, train
from mtl_core.train.models import MultiTaskNet, task_losses

ATTRS = [
    "even",
    "ge5",
    "prime",
    "loop",
    "one_or_seven",
    "mult3",
    "zero_one_eight",
    "lt3",
    "four_or_nine",
    "straight",
]


def scenario(arch: str, n: int) -> tuple[str, dict]:
    if arch == "mlp":
        return "synthetic", {"tasks": n, "clusters": min(3, n), "samples": 4000}
    k = min(n, len(ATTRS))
    return "digits", {"attributes": ATTRS[:k], "random_tasks": n - k}


def time_steps(arch: str, n: int, device: torch.device, repeats: int, batch: int) -> dict:
    name, knobs = scenario(arch, n)
    ds = load_dataset(name, knobs)
    torch.manual_seed(0)
    model = MultiTaskNet(ds.tasks, ds.input_shape, ModelConfig()).to(device)
    opt = make_optimizer(model.parameters(), OptimConfig(name="adam"))
    x = torch.as_tensor(ds.X_train[:batch], device=device)
    y = torch.as_tensor(ds.Y_train[:batch], device=device)
    binary = torch.tensor([t == "binary" for t in ds.task_types], device=device)
    names = model.shared_names()
    params = dict(model.named_parameters())
    shared = [params[k] for k in names]

    def fn(m, b):
        return task_losses(m(b[0]), b[1], binary)

    def plain():
        losses = fn(model, (x, y))
        opt.zero_grad(set_to_none=True)
        losses.sum().backward()
        opt.step()

    def vectorized():
        losses = fn(model, (x, y))
        grads = per_task_grads(losses, shared)
        lookahead_from_grads(model, names, fn, (x, y), opt, losses, grads)
        opt.zero_grad(set_to_none=True)
        losses.sum().backward()
        opt.step()

    def reference():
        lookahead_affinity_reference(model, names, fn, (x, y), opt)
        plain()

    def timed(f, reps):
        for _ in range(3):
            f()
        out = []
        for _ in range(reps):
            if device.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            f()
            if device.type == "cuda":
                torch.cuda.synchronize()
            out.append(time.perf_counter() - t)
        return statistics.median(out)

    # Interleave the three so background load hits them alike.
    res = {"plain": [], "vectorized": [], "reference": []}
    for _ in range(3):
        res["plain"].append(timed(plain, repeats))
        res["vectorized"].append(timed(vectorized, repeats))
        res["reference"].append(timed(reference, max(3, repeats // 5)))
    return {k: min(v) for k, v in res.items()}


def whole_run(device: str, steps: int, n: int) -> tuple[float, float]:
    def cfg(measure: str) -> RunConfig:
        return RunConfig(
            scenario="synthetic",
            knobs={"tasks": n, "clusters": 3},
            train=TrainConfig(steps=steps, eval_every=50, device=device),
            affinity=AffinityConfig(measure=measure, every=10),
        )

    best = {"none": float("inf"), "lookahead": float("inf")}
    for _ in range(3):
        for m in best:
            t = time.perf_counter()
            train(cfg(m))
            best[m] = min(best[m], time.perf_counter() - t)
    return best["none"], best["lookahead"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--tasks", default="4,9,16")
    ap.add_argument("--run-steps", type=int, default=300)
    args = ap.parse_args()
    device = resolve_device(args.device)
    torch.set_num_threads(torch.get_num_threads())
    print(
        f"device: {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"batch {args.batch}, Adam, median step time\n"
    )
    hdr = (
        f"{'model':6} {'n':>3} {'plain ms':>9} {'lookahead ms':>12} {'reference ms':>12} "
        f"{'look/plain':>10} {'target<=':>8} {'ref/look':>8}"
    )
    print(hdr)
    print("-" * len(hdr))
    for arch in ("mlp", "cnn"):
        for n in (int(s) for s in args.tasks.split(",")):
            t = time_steps(arch, n, device, args.repeats, args.batch)
            ratio = t["vectorized"] / t["plain"]
            print(
                f"{arch:6} {n:3d} {t['plain'] * 1e3:9.2f} {t['vectorized'] * 1e3:12.2f} "
                f"{t['reference'] * 1e3:12.2f} {ratio:10.2f} {0.6 * (n + 1):8.1f} "
                f"{t['reference'] / t['vectorized']:8.2f}"
            )
    none, look = whole_run(args.device, args.run_steps, 9)
    print(
        f"\nwhole run, synthetic n=9, {args.run_steps} steps (incl. evaluation): "
        f"no affinity {none:.2f}s, lookahead --every 10 {look:.2f}s, ratio {look / none:.2f} "
        f"(target <= 1.6)"
    )


if __name__ == "__main__":
    main()
