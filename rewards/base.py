"""A base for rewards backed by one ``torch.nn.Module``: the protocol's ``device``, ``dtype`` and ``modules()``."""

from __future__ import annotations

import torch
from torch import nn

from .weights import module_device_dtype

__all__ = ["ModelReward"]


class ModelReward:
    """``device`` and ``dtype`` follow ``self.model`` wherever ComfyUI's model management moves it."""

    model: nn.Module
    accepts_video = False

    @property
    def device(self) -> torch.device:
        return module_device_dtype(self.model)[0]

    @property
    def dtype(self) -> torch.dtype:
        return module_device_dtype(self.model)[1]

    def modules(self) -> list[nn.Module]:
        return [self.model]
