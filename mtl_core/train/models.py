"""Multi-task networks: a shared trunk (MLP, or a small CNN for 8x8 images), one head per task."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mtl_core.config import ModelConfig

SHARED_PREFIX = "trunk."


def _norm(kind: str, width: int, conv: bool = False) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(width) if conv else nn.BatchNorm1d(width)
    if kind == "layer":
        return nn.GroupNorm(1, width) if conv else nn.LayerNorm(width)
    return nn.Identity()


def _mlp(
    in_dim: int, hidden: tuple[int, ...], norm: str, linear_last: bool = False
) -> nn.Sequential:
    """Linear -> norm -> ReLU per width; with ``linear_last`` the last layer is Linear only
    (a linear bottleneck)."""
    layers: list[nn.Module] = []
    for k, h in enumerate(hidden):
        if linear_last and k == len(hidden) - 1:
            layers.append(nn.Linear(in_dim, h))
        else:
            layers += [nn.Linear(in_dim, h), _norm(norm, h), nn.ReLU()]
        in_dim = h
    return nn.Sequential(*layers)


class MultiTaskNet(nn.Module):
    """Shared trunk + one linear head per task; ``forward`` returns ``(batch, n_tasks)`` outputs.

    Parameters under ``trunk.`` are the shared parameters ``theta_s``; ``heads.<task>`` are the
    task-specific ``theta_t`` (kept as separate modules so a group update never moves the heads
    of tasks outside the group, even through optimizer momentum).
    """

    def __init__(self, tasks: list[str], input_shape: tuple[int, ...], cfg: ModelConfig) -> None:
        super().__init__()
        self.tasks = list(tasks)
        arch = cfg.arch
        if arch == "auto":
            arch = "cnn" if len(input_shape) == 3 else "mlp"
        if arch == "cnn":
            if len(input_shape) != 3:
                raise ValueError("the CNN trunk needs image inputs (channels, height, width)")
            c, h, w = input_shape
            convs: list[nn.Module] = []
            for ch in cfg.channels:
                convs += [nn.Conv2d(c, ch, 3, padding=1), _norm(cfg.norm, ch, conv=True), nn.ReLU()]
                c = ch
            convs += [nn.MaxPool2d(2), nn.Flatten()]
            flat = c * (h // 2) * (w // 2)
            self.trunk = nn.Sequential(
                *convs, _mlp(flat, cfg.hidden, cfg.norm, cfg.linear_bottleneck)
            )
        else:
            in_dim = 1
            for s in input_shape:
                in_dim *= s
            self.trunk = nn.Sequential(
                nn.Flatten(), _mlp(in_dim, cfg.hidden, cfg.norm, cfg.linear_bottleneck)
            )
        self.arch = arch
        width = cfg.hidden[-1]
        # ModuleDict keys cannot contain '.', so heads are indexed by position.
        self.heads = nn.ModuleList([nn.Linear(width, 1) for _ in tasks])
        if cfg.head_scale != 1.0:
            with torch.no_grad():
                for head in self.heads:
                    head.weight.mul_(cfg.head_scale)
                    head.bias.mul_(cfg.head_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.trunk(x)
        return torch.cat([head(h) for head in self.heads], dim=1)

    def shared_names(self) -> list[str]:
        return [n for n, _ in self.named_parameters() if n.startswith(SHARED_PREFIX)]


def task_losses(out: torch.Tensor, y: torch.Tensor, binary: torch.Tensor) -> torch.Tensor:
    """Per-task mean loss ``(n_tasks,)``: BCE-with-logits where ``binary`` else MSE.

    NaN labels are missing and masked out, so tables with sparse targets train as they are.
    """
    mask = ~torch.isnan(y)
    y0 = torch.nan_to_num(y)
    mse = (out - y0) ** 2
    bce = F.binary_cross_entropy_with_logits(out, y0, reduction="none")
    per = torch.where(binary, bce, mse) * mask
    return per.sum(0) / mask.sum(0).clamp_min(1)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
