"""Read the tensors of a TorchScript archive (e.g. OpenAI's JIT ``ViT-L-14.pt``) without running any code from it.

``torch.load(weights_only=True)`` refuses TorchScript archives and ``torch.jit.load`` would deserialise modules and
their TorchScript code. A TorchScript archive is a zip holding ``<name>/data.pkl`` (the module tree, pickled) and one
file per tensor storage under ``<name>/data/``. This reader unpickles ``data.pkl`` with an unpickler that knows only
inert placeholders: ``__torch__.*`` module classes become attribute bags, storages are read from the zip as raw bytes,
and tensors are rebuilt with ``as_strided``. Every other global is refused, so nothing in the file can execute.
The result is the flat ``{"a.b.weight": tensor}`` dict that ``module.state_dict()`` would give (parameters and buffers
alike; plain tensor attributes such as OpenAI CLIP's ``attn_mask`` appear too and are filtered by the caller).
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

__all__ = ["is_torchscript_archive", "read_torchscript_tensors"]

_STORAGE_DTYPES = {
    "FloatStorage": torch.float32,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "DoubleStorage": torch.float64,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}


def _archive_prefix(zf: zipfile.ZipFile) -> str | None:
    for name in zf.namelist():
        if name.endswith("/data.pkl") and name.count("/") == 1:
            return name[: -len("data.pkl")]
    return None


def is_torchscript_archive(path: str | Path) -> bool:
    """True for a zip written by ``torch.jit.save`` (it has a ``code/`` folder or ``constants.pkl``)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        prefix = _archive_prefix(zf)
        if prefix is None:
            return False
        names = zf.namelist()
        return any(n.startswith(prefix + "code/") for n in names) or (prefix + "constants.pkl") in names


class _Object:
    """Placeholder for a pickled TorchScript object: keeps its attributes and nothing else."""

    def __init__(self, *args: Any) -> None:
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state


class _StorageType:
    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype


def _rebuild_tensor(storage: torch.Tensor, offset: int, size: tuple, stride: tuple, *unused: Any) -> torch.Tensor:
    if len(size) == 0:
        return storage[offset : offset + 1].reshape(())
    return torch.as_strided(storage, tuple(size), tuple(stride), offset)


def _ordered_dict(*args: Any) -> dict:
    return dict(*args)


def _as_list(data: Any) -> list:
    return list(data)


def _untagged(value: Any, type_str: str = "") -> Any:
    return value


#: TorchScript's container helpers (``torch.jit._pickle``): typed lists and type tags, replaced by plain values.
_JIT_PICKLE = {
    "build_intlist": _as_list,
    "build_tensorlist": _as_list,
    "build_doublelist": _as_list,
    "build_boollist": _as_list,
    "restore_type_tag": _untagged,
}


class _SafeUnpickler(pickle.Unpickler):
    def __init__(self, file: Any, zf: zipfile.ZipFile, prefix: str) -> None:
        super().__init__(file)
        self._zf = zf
        self._prefix = prefix
        self._storages: dict[str, torch.Tensor] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module == "__torch__" or module.startswith("__torch__."):
            return _Object
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        if module == "collections" and name == "OrderedDict":
            return _ordered_dict
        if module == "torch.jit._pickle" and name in _JIT_PICKLE:
            return _JIT_PICKLE[name]
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a TorchScript archive")

    def persistent_load(self, pid: Any) -> torch.Tensor:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        _, storage_type, key, _location, numel = pid[:5]
        if key not in self._storages:
            dtype = storage_type.dtype if isinstance(storage_type, _StorageType) else torch.float32
            raw = bytearray(self._zf.read(f"{self._prefix}data/{key}"))
            data = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
            self._storages[key] = data[:numel]
        return self._storages[key]


def _collect(obj: Any, prefix: str, out: dict[str, torch.Tensor], seen: set[int]) -> None:
    if isinstance(obj, torch.Tensor):
        out[prefix[:-1]] = obj
        return
    if isinstance(obj, _Object):
        if id(obj) in seen:
            return
        seen.add(id(obj))
        _collect(obj.state, prefix, out, seen)
        return
    if isinstance(obj, dict):
        for key, value in obj.items():
            if isinstance(key, str) and not key.startswith("_"):
                _collect(value, f"{prefix}{key}.", out, seen)


def read_torchscript_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """Every tensor attribute of a TorchScript archive, keyed like ``state_dict()``; no code is run."""
    with zipfile.ZipFile(path) as zf:
        prefix = _archive_prefix(zf)
        if prefix is None:
            raise ValueError(f"{path} is not a TorchScript archive (no data.pkl)")
        with zf.open(prefix + "data.pkl") as fh:
            root = _SafeUnpickler(fh, zf, prefix).load()
        out: dict[str, torch.Tensor] = {}
        _collect(root, "", out, set())
    return {k: v.clone() for k, v in out.items()}
