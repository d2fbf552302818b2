"""Calling the pack's V3 nodes directly (docs/comfyui.md §2) and small helpers for host tests."""

from __future__ import annotations

import importlib
from types import ModuleType

import torch

from .comfy import PACK_NAME


def module(name: str) -> ModuleType:
    """A module of the pack loaded as ``evosearch_pack`` (e.g. ``module("nodes.sampler_nodes")``)."""
    return importlib.import_module(f"{PACK_NAME}.{name}")


def clone_node(node_cls: type, unique_id: str = "1") -> type:
    """The class clone ComfyUI executes a V3 node on, with its hidden ``UNIQUE_ID`` set (through the pack's compat
    layer, so the old and the newer ``PREPARE_CLASS_CLONE`` both work)."""
    return module("nodes.compat").prepare_node_clone(node_cls, {"UNIQUE_ID": unique_id})


def run_node(node_cls: type, **inputs: object) -> tuple:
    """Execute a V3 node the way ComfyUI does (a prepared class clone) and return its outputs tuple."""
    out = clone_node(node_cls).execute(**inputs)
    return out.result


def per_row_model(model: object) -> object:
    """A clone of ``model`` whose UNet runs one batch row at a time.

    CPU (and GPU) kernels round differently for different batch sizes, so a model is not bit-for-bit
    batch-invariant; this wrapper makes it so, to test that the pack itself adds no batch dependence.
    """
    clone = model.clone()

    def one_row_at_a_time(apply_model, args):  # noqa: ANN001 - ComfyUI's unet wrapper signature
        x, t, c = args["input"], args["timestep"], args["c"]
        rows = []
        for i in range(x.shape[0]):
            ci = {
                k: (v[i : i + 1] if isinstance(v, torch.Tensor) and v.shape[:1] == x.shape[:1] else v)
                for k, v in c.items()
            }
            rows.append(apply_model(x[i : i + 1], t[i : i + 1], **ci))
        return torch.cat(rows)

    clone.set_model_unet_function_wrapper(one_row_at_a_time)
    return clone
