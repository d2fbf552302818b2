"""Reading weight files safely and loading them into modules built on the ``meta`` device (docs/rewards.md §5).

* :func:`read_state_dict` reads ``.safetensors``, ``.pt``/``.pth``/``.bin``/``.ckpt`` through
  ``torch.load(weights_only=True)`` (never arbitrary pickle), TorchScript archives through the code-free reader in
  :mod:`rewards.torchscript`, and Hugging Face model folders (single or sharded files). Dict wrappers
  (``{"state_dict": …}``, ``{"model": …}``) and ``module.`` prefixes are removed.
* :func:`load_into` checks every key and shape against the module, names what does not match, casts to the requested
  dtype and loads with ``assign=True``, so no time is spent on random initialisation.

Unreadable or wrong files raise :class:`~rewards.errors.BadRewardFile` with the path, size and the fix.
"""

from __future__ import annotations

import json
import logging
import pickle
import re
import zipfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import torch

from .errors import BadRewardFile, describe_mismatch, human_size
from .torchscript import is_torchscript_archive, read_torchscript_tensors

__all__ = [
    "DTYPES",
    "parse_dtype",
    "read_state_dict",
    "read_hf_folder",
    "load_into",
    "meta_module",
    "module_device_dtype",
]

log = logging.getLogger("evosearch.rewards")

#: Names accepted wherever a dtype is chosen (node widgets, ``load_reward(dtype=…)``).
DTYPES: dict[str, torch.dtype] = {
    "fp32": torch.float32,
    "float32": torch.float32,
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
    "fp16": torch.float16,
    "float16": torch.float16,
}

_WRAPPERS = ("state_dict", "model", "module", "model_state_dict", "weights")
_TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
_HF_FILES = ("model.safetensors", "pytorch_model.bin")


def parse_dtype(dtype: torch.dtype | str | None) -> torch.dtype:
    """``"bf16"`` / ``torch.bfloat16`` / ``None`` (fp32) → a torch dtype; anything else is a ``ValueError``."""
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        if dtype in DTYPES.values():
            return dtype
    elif str(dtype).lower() in DTYPES:
        return DTYPES[str(dtype).lower()]
    raise ValueError(f"dtype must be one of fp32, bf16, fp16 (got {dtype!r})")


def _unwrap(obj: object, path: Path) -> dict[str, torch.Tensor]:
    for _ in range(3):
        if isinstance(obj, Mapping) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
            inner = next((obj[k] for k in _WRAPPERS if isinstance(obj.get(k), Mapping)), None)
            if inner is None:
                break
            obj = inner
    if not isinstance(obj, Mapping):
        raise BadRewardFile(f"{path} holds a {type(obj).__name__}, not a dict of tensors (a state dict)")
    sd = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not sd:
        raise BadRewardFile(f"{path} holds no tensors (keys: {', '.join(list(map(str, obj))[:8])})")
    if all(k.startswith("module.") for k in sd):
        sd = {k[len("module.") :]: v for k, v in sd.items()}
    return sd


def _unreadable(path: Path, error: BaseException, hint: str = "") -> BadRewardFile:
    size = path.stat().st_size if path.exists() else 0
    detail = str(error).strip().splitlines()[0].rstrip(".") if str(error).strip() else ""
    return BadRewardFile(
        f"cannot read {path} ({human_size(size)}): {type(error).__name__}: {detail}. The file is truncated "
        f"(an interrupted download?) or not a weight file{hint}; download it again."
    )


def _read_torch_file(path: Path) -> object:
    try:
        if is_torchscript_archive(path):
            return read_torchscript_tensors(path)
        return torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except pickle.UnpicklingError as e:
        raise BadRewardFile(
            f"refusing to load {path}: it holds Python objects besides tensors, which weights_only loading rejects "
            f"({str(e).splitlines()[0]}). Only plain state dicts are loaded, never arbitrary pickle; use the "
            "official file or convert it to .safetensors."
        ) from e


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """All tensors of one weight file (or a Hugging Face folder), on the CPU, keys unwrapped."""
    path = Path(path)
    if path.is_dir():
        return read_hf_folder(path)
    if not path.is_file():
        raise BadRewardFile(f"{path} does not exist or is not a file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            obj: object = load_file(str(path), device="cpu")
        elif path.suffix in _TORCH_SUFFIXES:
            obj = _read_torch_file(path)
        else:
            raise BadRewardFile(
                f"{path}: unsupported file type {path.suffix!r}; use .safetensors, .pt, .pth, .bin or .ckpt"
            )
    except BadRewardFile:
        raise
    except Exception as e:  # noqa: BLE001 - every reader error means "unreadable file"; re-raised with context
        raise _unreadable(path, e) from e
    return _unwrap(obj, path)


def read_hf_folder(folder: Path) -> dict[str, torch.Tensor]:
    """The weights of a Hugging Face model folder: ``model.safetensors``, ``pytorch_model.bin`` or their shards."""
    for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        index = folder / index_name
        if index.is_file():
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            sd: dict[str, torch.Tensor] = {}
            for shard in shards:
                if not (folder / shard).is_file():
                    raise BadRewardFile(f"{folder}: shard {shard} listed in {index_name} is missing")
                sd.update(read_state_dict(folder / shard))
            return sd
    for name in _HF_FILES:
        if (folder / name).is_file():
            return read_state_dict(folder / name)
    raise BadRewardFile(
        f"{folder} has no weights: expected {' or '.join(_HF_FILES)} (or sharded files with an index.json)"
    )


def meta_module(factory: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    """Build a module on the ``meta`` device: shapes only, no memory, no random initialisation."""
    with torch.device("meta"):
        return factory()


def _fix_meta_buffers(module: torch.nn.Module, who: str) -> None:
    """Non-persistent buffers are not in checkpoints; recreate the ones a meta build leaves empty."""
    for name, buf in list(module.named_buffers()):
        if buf is None or not buf.is_meta:
            continue
        owner_name, _, attr = name.rpartition(".")
        owner = module.get_submodule(owner_name) if owner_name else module
        if attr == "position_ids":
            value = torch.arange(buf.shape[-1]).expand(buf.shape).clone()
        elif hasattr(owner, "config") and next(owner.parameters(recurse=False), None) is None:
            # transformers' rotary embeddings: computed from the config, rebuilt on the CPU
            value = getattr(type(owner)(owner.config), attr)
        else:
            raise RuntimeError(f"{who}: buffer {name} was not in the checkpoint and cannot be recreated")
        owner._buffers[attr] = value.to(buf.dtype)


def load_into(
    module: torch.nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    *,
    who: str,
    expected: str,
    dtype: torch.dtype = torch.float32,
    ignore: Iterable[str] = (),
    keep_fp32: Callable[[str], bool] | None = None,
) -> torch.nn.Module:
    """Load ``state_dict`` into ``module`` (usually built by :func:`meta_module`) after checking keys and shapes.

    ``ignore`` holds regular expressions of file keys that are dropped (unused heads, old buffers). ``expected``
    completes the error message ("expected ImageReward.pt from …"). Floating tensors become ``dtype`` unless
    ``keep_fp32(key)`` says otherwise. Returns the module in eval mode with gradients off.
    """
    patterns = [re.compile(p) for p in ignore]
    state = {k: v for k, v in state_dict.items() if not any(p.search(k) for p in patterns)}
    wanted = module.state_dict(keep_vars=True)
    missing = [k for k in wanted if k not in state]
    unexpected = [k for k in state if k not in wanted]
    shapes = [
        (k, tuple(state[k].shape), tuple(v.shape))
        for k, v in wanted.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or shapes:
        raise BadRewardFile(
            f"{who}: the file does not match the model — {describe_mismatch(missing, unexpected, shapes)}. {expected}"
        )
    loaded = {}
    for key, value in state.items():
        target = wanted[key].dtype
        if value.is_floating_point():
            target = torch.float32 if keep_fp32 is not None and keep_fp32(key) else dtype
        loaded[key] = value.to(dtype=target).contiguous()
    module.load_state_dict(loaded, strict=True, assign=True)
    _fix_meta_buffers(module, who)
    module.eval()
    module.requires_grad_(False)
    return module


def module_device_dtype(module: torch.nn.Module) -> tuple[torch.device, torch.dtype]:
    """Device and floating dtype of a module's first floating parameter (CPU/fp32 when it has none)."""
    for p in module.parameters():
        if p.is_floating_point():
            return p.device, p.dtype
    return torch.device("cpu"), torch.float32
