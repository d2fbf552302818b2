"""Missing, truncated and wrong files get errors that name the file, the folder, the source and the mismatch."""

from __future__ import annotations

import pickle

import pytest
import torch
from support import reward_fixtures as rf

from rewards import BadRewardFile, MissingRewardFile, RewardFileError, find_weights, get_kind, load_reward
from rewards.weights import parse_dtype, read_state_dict


@pytest.mark.parametrize("kind", ["imagereward", "clipscore", "hpsv2", "pickscore", "aesthetic", "videoreward"])
def test_missing_file_names_expected_folder_and_source(kind, tmp_path):
    spec = get_kind(kind)
    with pytest.raises(MissingRewardFile) as info:
        load_reward(kind, roots=[tmp_path])
    message = str(info.value)
    assert spec.files[0] in message and str(tmp_path / spec.folder) in message
    assert spec.source.split()[0] in message and "nothing is downloaded" in message
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, RewardFileError)


def test_missing_named_file(tmp_path):
    with pytest.raises(MissingRewardFile, match="my_weights.pt"):
        find_weights("imagereward", [tmp_path], "my_weights.pt")


def test_only_file_in_folder_is_used(tmp_path, gen):
    path = tmp_path / "hpsv2" / "my_hps_copy.safetensors"
    rf.save_openclip(rf.tiny_openclip(gen, quick_gelu=False), path)
    assert find_weights("hpsv2", [tmp_path]) == path


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_truncated_file(suffix, tmp_path, gen):
    path = tmp_path / "hpsv2" / f"HPS_v2.1_compressed{suffix}"
    rf.save_openclip(rf.tiny_openclip(gen, quick_gelu=False), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(BadRewardFile) as info:
        load_reward("hpsv2", path.name, roots=[tmp_path], heads=rf.TINY_HEADS)
    message = str(info.value)
    assert str(path) in message and "truncated" in message and " MB)" in message
    assert "HPS_v2.1_compressed.pt" in message and "huggingface.co/xswu/HPSv2" in message


def test_wrong_architecture_lists_keys_and_shapes(tmp_path, gen):
    """A CLIP file in the ImageReward folder, and an ImageReward file with a resized layer."""
    rf.save_openclip(rf.tiny_openclip(gen, quick_gelu=True), tmp_path / "imagereward" / "ImageReward.pt")
    with pytest.raises(BadRewardFile, match=r"not an ImageReward checkpoint.*ImageReward.pt.*huggingface.co/THUDM"):
        load_reward("imagereward", roots=[tmp_path])
    sd = rf.imagereward_state(gen)
    sd["blip.text_encoder.encoder.layer.0.intermediate.dense.weight"] = torch.zeros(80, 48)
    del sd["blip.visual_encoder.blocks.1.mlp.fc2.bias"]
    sd["blip.extra.weight"] = torch.zeros(1)
    torch.save(sd, tmp_path / "imagereward" / "ImageReward.pt")
    from rewards.imagereward import ImageRewardArch

    with pytest.raises(BadRewardFile) as info:
        load_reward("imagereward", roots=[tmp_path], arch=ImageRewardArch(**rf.TINY_IMAGEREWARD_ARCH))
    message = str(info.value)
    assert "missing keys (1): vision.encoder.layers.1.mlp.fc2.bias" in message
    assert "text.encoder.layer.0.intermediate.dense.weight file (80, 48) vs model (96, 48)" in message
    assert "Expected ImageReward.pt" in message


def test_not_a_clip_file(tmp_path):
    (tmp_path / "clipscore").mkdir()
    torch.save({"foo.weight": torch.zeros(2)}, tmp_path / "clipscore" / "ViT-L-14.pt")
    with pytest.raises(BadRewardFile, match="not a CLIP state dict.*foo.weight"):
        load_reward("clipscore", roots=[tmp_path])


class Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_arbitrary_pickle_is_refused(tmp_path, capsys):
    path = tmp_path / "aesthetic" / "sac+logos+ava1-l14-linearMSE.pth"
    path.parent.mkdir()
    torch.save({"layers.0.weight": torch.zeros(2, 2), "hook": Evil()}, path)
    with pytest.raises(BadRewardFile, match="weights_only"):
        read_state_dict(path)
    assert "must never run" not in capsys.readouterr().out


def test_torchscript_reader_refuses_foreign_globals(tmp_path):
    """A TorchScript-looking zip whose data.pkl names a non-tensor global is refused, not executed."""
    import zipfile

    path = tmp_path / "evil.pt"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("evil/data.pkl", pickle.dumps(Evil(), protocol=2))
        zf.writestr("evil/constants.pkl", pickle.dumps((), protocol=2))
        zf.writestr("evil/code/__torch__.py", "")
    with pytest.raises(BadRewardFile, match=r"refusing to load .*builtin__\.print"):
        read_state_dict(path)


def test_unknown_kind_and_dtype():
    with pytest.raises(ValueError, match="known kinds: imagereward"):
        get_kind("imagereward_v2")
    with pytest.raises(ValueError, match="fp32, bf16, fp16"):
        parse_dtype("int8")
    assert parse_dtype("bf16") is torch.bfloat16 and parse_dtype(None) is torch.float32


def test_unknown_loader_option_is_an_error(tmp_path):
    with pytest.raises(TypeError, match="frobnicate"):
        load_reward("colorfulness", roots=[tmp_path], frobnicate=True)
