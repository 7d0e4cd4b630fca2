"""Log inter-task affinity from your own training loop with ``AffinityLogger``.

A model the lab does not ship: a tiny attention encoder over token sequences (embedding ->
self-attention block -> mean pool) shared by four task heads, trained on random data:

- ``count3``  : how many times token 3 occurs (regression)
- ``has3``    : whether token 3 occurs at all (binary) — closely related to ``count3``
- ``first_hi``: whether the first token is >= 8 (binary) — unrelated to token 3
- ``noise``   : a random target (regression) — related to nothing

Every 10 steps the logger measures TAG lookahead affinity with the lab's vectorized code; at the
end the run is written to ``.lab/examples/attention_run.zip`` (or the path given as the first
argument), which the lab imports with ``python -m mtl_core import .lab/examples/attention_run.zip``
or through the app's upload page.
Runs in a few seconds on a CPU:  ``python examples/log_affinity_own_model.py``
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from mtl_core.train.logger import AffinityLogger

TASKS = ["count3", "has3", "first_hi", "noise"]
BINARY = torch.tensor([False, True, True, False])
VOCAB, LENGTH, WIDTH = 16, 12, 32


class AttentionEncoder(nn.Module):
    """Token embedding + one pre-norm single-head self-attention block + mean pooling.

    Attention is written out with matmuls (rather than ``nn.MultiheadAttention``) so the
    lab's ``vmap``-ed lookahead runs it batched over tasks.
    """

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, WIDTH)
        self.pos = nn.Parameter(torch.randn(LENGTH, WIDTH) * 0.02)
        self.norm1 = nn.LayerNorm(WIDTH)
        self.qkv = nn.Linear(WIDTH, 3 * WIDTH)
        self.proj = nn.Linear(WIDTH, WIDTH)
        self.norm2 = nn.LayerNorm(WIDTH)
        self.mlp = nn.Sequential(
            nn.Linear(WIDTH, 2 * WIDTH), nn.GELU(), nn.Linear(2 * WIDTH, WIDTH)
        )

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.embed(tokens) + self.pos
        q, k, v = self.qkv(self.norm1(h)).chunk(3, dim=-1)
        att = torch.softmax(q @ k.transpose(1, 2) / WIDTH**0.5, dim=-1)
        h = h + self.proj(att @ v)
        h = h + self.mlp(self.norm2(h))
        return h.mean(dim=1)


class MultiTaskAttention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = AttentionEncoder()  # shared by every task
        self.heads = nn.ModuleList([nn.Linear(WIDTH, 1) for _ in TASKS])

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.encoder(tokens)
        return torch.cat([head(h) for head in self.heads], dim=1)


def per_task_losses(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Tensor[n_tasks]: BCE-with-logits for binary tasks, MSE for the others."""
    tokens, y = batch
    out = model(tokens)
    bce = F.binary_cross_entropy_with_logits(out, y, reduction="none").mean(0)
    mse = ((out - y) ** 2).mean(0)
    return torch.where(BINARY, bce, mse)


def make_data(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    tokens = torch.randint(0, VOCAB, (n, LENGTH), generator=gen)
    count3 = (tokens == 3).sum(1).float()
    y = torch.stack(
        [
            (count3 - 0.75) / 0.8,
            (count3 > 0).float(),
            (tokens[:, 0] >= 8).float(),
            torch.randn(n, generator=gen),
        ],
        dim=1,
    )
    return tokens, y


def main(steps: int = 150, every: int = 10, out: str | None = None) -> Path:
    torch.manual_seed(0)
    torch.set_num_threads(1)  # a model this small runs fastest on one thread
    gen = torch.Generator().manual_seed(0)
    tokens, y = make_data(4096, gen)
    model = MultiTaskAttention()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    logger = AffinityLogger(
        model,
        TASKS,
        per_task_losses,
        opt,
        shared="encoder",
        every=every,
        task_types={
            "count3": "regression",
            "has3": "binary",
            "first_hi": "binary",
            "noise": "regression",
        },
        config={
            "model": "attention encoder",
            "optimizer": "adam",
            "lr": 1e-3,
            "steps": steps,
            "batch": 128,
        },
        notes="examples/log_affinity_own_model.py",
        name="attention example",
    )
    for step in range(1, steps + 1):
        idx = torch.randint(0, len(tokens), (128,), generator=gen)
        batch = (tokens[idx], y[idx])
        losses = per_task_losses(model, batch)
        logger.measure(step, batch, losses)  # before the optimizer step, same batch
        opt.zero_grad()
        losses.sum().backward()
        opt.step()
        logger.log_losses(step, losses)
    path = logger.save(out or Path(".lab") / "examples" / "attention_run.zip")
    A = logger.mean()
    print(
        f"mean lookahead affinity over {len(logger.matrices()[0])} measurements "
        "(row = source, column = target; in %: how much one step on the source lowers the "
        "target's loss, > 0 helps):"
    )
    print(" " * 10 + "".join(f"{t:>10}" for t in TASKS))
    for t, row in zip(TASKS, A):
        print(f"{t:>10}" + "".join(f"{v * 100:+9.2f}%" for v in row))
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    main(out=sys.argv[1] if len(sys.argv) > 1 else None)
