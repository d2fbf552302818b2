"""Weight-file reading: wrappers, prefixes, Hugging Face shards, TorchScript archives, meta builds."""

from __future__ import annotations

import json
import warnings

import torch

from rewards.weights import load_into, meta_module, read_state_dict


def test_unwraps_dicts_and_module_prefix(tmp_path):
    sd = {"a.weight": torch.ones(2), "b": torch.zeros(1)}
    for i, obj in enumerate([{"state_dict": sd}, {"model": {"module." + k: v for k, v in sd.items()}}, sd]):
        path = tmp_path / f"f{i}.pth"
        torch.save(obj, path)
        assert sorted(read_state_dict(path)) == ["a.weight", "b"]


def test_sharded_hf_folder(tmp_path):
    from safetensors.torch import save_file

    save_file({"x": torch.ones(2)}, str(tmp_path / "model-00001-of-00002.safetensors"))
    save_file({"y": torch.zeros(3)}, str(tmp_path / "model-00002-of-00002.safetensors"))
    index = {"weight_map": {"x": "model-00001-of-00002.safetensors", "y": "model-00002-of-00002.safetensors"}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    sd = read_state_dict(tmp_path)
    assert sorted(sd) == ["x", "y"] and sd["y"].shape == (3,)


def test_torchscript_archive_without_running_it(tmp_path):
    """A scripted module (typed lists, dicts, fp16 parameter) reads like jit.load(...).state_dict()."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "_scripted_module", __file__.replace("test_weights.py", "_scripted_module.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    Scripted = module.Scripted

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scripted = torch.jit.script(Scripted())
        scripted.save(str(tmp_path / "m.pt"))
        reference = torch.jit.load(str(tmp_path / "m.pt")).state_dict()
    ours = read_state_dict(tmp_path / "m.pt")
    assert sorted(ours) == sorted(reference)
    for key, value in reference.items():
        assert ours[key].dtype == value.dtype and torch.equal(ours[key], value)


def test_meta_build_recreates_position_ids():
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(hidden_size=16, intermediate_size=32, num_attention_heads=2, num_hidden_layers=1)
    model = meta_module(lambda: CLIPTextModel(config))
    sd = {k: torch.randn(v.shape) for k, v in model.state_dict().items()}
    load_into(model, sd, who="test", expected="", dtype=torch.bfloat16)
    ids = next(b for name, b in model.named_buffers() if name.endswith("position_ids"))
    assert not ids.is_meta and torch.equal(ids[0, :5], torch.arange(5))
    assert next(model.parameters()).dtype == torch.bfloat16 and not next(model.parameters()).requires_grad
