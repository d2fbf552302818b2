"""The linear MLP head shared by ImageReward and the LAION improved aesthetic predictor.

Both publish ``layers.{0,2,4,6,7}``: Linear 768→1024, Dropout, Linear 1024→128, Dropout, Linear 128→64, Dropout,
Linear 64→16, Linear 16→1, with no activations (ImageReward ``mlp``; christophschuhmann/improved-aesthetic-predictor
``MLP``). The layer widths are read from the file, so tiny test heads load through the same code.
"""

from __future__ import annotations

import re

import torch
from torch import nn

from .errors import BadRewardFile

__all__ = ["LinearStack", "linear_stack_dims"]


class LinearStack(nn.Module):
    """Linear layers ``dims[0]→…→dims[-1]``, Dropout after all but the last two (keys ``layers.N``), no activations."""

    def __init__(self, dims: tuple[int, ...] = (768, 1024, 128, 64, 16, 1)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        n = len(dims) - 1
        for i in range(n):
            layers.append(nn.Linear(dims[i], dims[i + 1]))
            if i < n - 2:
                layers.append(nn.Dropout(0.0))
        self.layers = nn.Sequential(*layers)
        self.dims = tuple(dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def linear_stack_dims(sd: dict[str, torch.Tensor], prefix: str, who: str, expected: str) -> tuple[int, ...]:
    """Layer widths of a :class:`LinearStack` stored under ``prefix`` (e.g. ``"mlp."``), checked for consistency."""
    pattern = re.compile(re.escape(prefix) + r"layers\.(\d+)\.weight$")
    weights = sorted((int(m.group(1)), v) for k, v in sd.items() if (m := pattern.match(k)))
    if not weights:
        raise BadRewardFile(f"{who}: no {prefix}layers.N.weight keys in the file. {expected}")
    dims = [weights[0][1].shape[1]] + [w.shape[0] for _, w in weights]
    probe = LinearStack(tuple(dims)) if len(dims) >= 2 else None
    wanted = [f"{prefix}{k}" for k in (probe.state_dict() if probe is not None else {})]
    if sorted(wanted) != sorted(k for k in sd if k.startswith(prefix + "layers.")):
        raise BadRewardFile(
            f"{who}: the head's layers {[i for i, _ in weights]} do not follow the published layout "
            f"layers.{{0,2,4,6,7}} (Linear, Dropout, …, no activations). {expected}"
        )
    return tuple(dims)
