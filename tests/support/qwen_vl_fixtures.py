"""Tiny Qwen2-VL / Qwen2.5-VL instruct folders and a tiny HPSv3 release, in the official file layouts.

Instruct folders are written as on the Hub: ``config.json`` in the legacy flat layout (text sizes at the top level,
``rope_scaling: {"type": "mrope", …}``), weights under transformers-4.4x keys (``model.embed_tokens``,
``model.layers.N``, ``visual.*``, ``lm_head.weight`` unless tied), optionally sharded with an index,
``tokenizer.json`` (a tiny byte-level BPE with Qwen's special tokens), ``tokenizer_config.json``,
``chat_template.json`` and ``preprocessor_config.json``, so that transformers' own ``AutoProcessor`` and
``from_pretrained`` read the same folder offline (the reference in the tests).

The HPSv3 release (``<root>/hpsv3/``): ``HPSv3.safetensors`` (the whole reward model's state dict: backbone with the
vocabulary grown by ``<|Reward|>``, ``lm_head.weight``, ``rm_head.{0,3,5}``), the base folder
``Qwen2-VL-7B-Instruct/`` with config and tokenizer only, and ``prompt_template.txt`` (a stand-in: the real
instruction is not shipped).

:func:`full_qwen2vl_layout` / :func:`full_qwen25vl_layout` give the key names and shapes of the full-size official
files, written from the published architectures (not from transformers), as ``meta`` tensors.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .reward_fixtures import randomise

SPECIALS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
#: Text the tiny BPE is trained on, so that questions, answers and prompts stay a few tokens long.
CORPUS = [
    'Does this figure show "a red apple on a table"? Please answer Yes or No.',
    "system You are a helpful assistant. user assistant Yes No Yes No Yes Yes No",
    "a red circle and a blue square, a cat, a dog and a bird in the snow on a sofa",
    "Rate this image for the prompt: Textual prompt - Please provide the overall ratings of this image: END",
    "Yes",
    "No",
]
HPS_TEMPLATE = (
    "\nRate the visual quality and the text alignment of this image.\nTextual prompt - {text_prompt}\n\n\n"
    "\nPlease provide the overall ratings of this image: <|Reward|>\n\nEND\n"
)
#: Qwen's chat format for the reference processor (written for these tests; same output as the Qwen templates for
#: one user turn with an image and a text).
CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}{% if part['type'] == 'image' %}"
    "<|vision_start|><|image_pad|><|vision_end|>{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def tiny_tokenizer():
    """A byte-level BPE trained on :data:`CORPUS` with Qwen's special tokens ("Yes" is one token, as for Qwen)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=900,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS * 8, trainer)
    assert len(tok.encode("Yes", add_special_tokens=False).ids) == 1
    return tok


def _token_ids(tok) -> dict:
    ids = {s: tok.token_to_id(s) for s in SPECIALS}
    return {
        "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"],
        "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"],
        "vision_token_id": ids["<|vision_pad|>"],
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
    }


def hub_config(tok, family: str = "qwen2_vl", tied: bool = True, hidden: int = 64) -> dict:
    """A tiny config.json in the Hub's legacy flat layout (text sizes at the top level)."""
    text = {
        "hidden_act": "silu",
        "hidden_size": hidden,
        "intermediate_size": 2 * hidden,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-6,
        "rope_theta": 10000.0,
        "rope_scaling": {"type": "mrope", "mrope_section": [4, 6, 6]},
        "vocab_size": tok.get_vocab_size() + 16,  # the Hub configs pad the vocabulary; the weights decide
        "tie_word_embeddings": tied,
        "use_sliding_window": False,
        "attention_dropout": 0.0,
    }
    if family == "qwen2_vl":
        vision = {
            "depth": 2,
            "embed_dim": 32,
            "hidden_size": hidden,
            "mlp_ratio": 2,
            "num_heads": 2,
            "in_chans": 3,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        }
        arch = "Qwen2VLForConditionalGeneration"
    else:
        vision = {
            "depth": 2,
            "hidden_act": "silu",
            "hidden_size": 32,
            "intermediate_size": 48,
            "num_heads": 2,
            "in_chans": 3,
            "out_hidden_size": hidden,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 56,
            "fullatt_block_indexes": [1],
            "tokens_per_second": 2,
        }
        arch = "Qwen2_5_VLForConditionalGeneration"
    return {"architectures": [arch], "model_type": family, **text, **_token_ids(tok), "vision_config": vision}


def to_hub_key(key: str) -> str:
    """transformers-5 key of ``Qwen2*VLForConditionalGeneration`` → the Hub (transformers 4.4x) key."""
    if key.startswith("model.language_model."):
        return "model." + key[len("model.language_model.") :]
    if key.startswith("model.visual."):
        return key[len("model.") :]
    return key


def tiny_model(config_dict: dict, gen: torch.Generator, vocab: int):
    """A ``Qwen2*VLForConditionalGeneration`` with seeded random weights and ``vocab`` embedding rows."""
    import transformers

    cls = {"qwen2_vl": "Qwen2VL", "qwen2_5_vl": "Qwen2_5_VL"}[config_dict["model_type"]]
    config = getattr(transformers, f"{cls}Config").from_dict({**config_dict, "vocab_size": vocab})
    model = getattr(transformers, f"{cls}ForConditionalGeneration")(config)
    randomise(model, gen, scale=0.05)
    if not config.tie_word_embeddings:
        with torch.no_grad():  # a wider LM head so that next-token probabilities spread
            model.lm_head.weight.mul_(8.0)
    return model.eval()


def _hub_state(model, tied: bool) -> dict[str, torch.Tensor]:
    sd = {to_hub_key(k): v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    if tied:
        sd.pop("lm_head.weight", None)
    return sd


def write_tokenizer_files(tok, folder: Path) -> None:
    """tokenizer.json, tokenizer_config.json, chat_template.json and preprocessor_config.json, as in the Qwen repos."""
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "Qwen2Tokenizer",
                "pad_token": "<|endoftext|>",
                "eos_token": "<|im_end|>",
                "unk_token": None,
                "bos_token": None,
                "model_max_length": 32768,
                "padding_side": "right",
            }
        )
    )
    (folder / "chat_template.json").write_text(json.dumps({"chat_template": CHAT_TEMPLATE}))
    (folder / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "image_processor_type": "Qwen2VLImageProcessor",
                "processor_class": "Qwen2VLProcessor",
                "do_rescale": True,
                "do_normalize": True,
                "do_convert_rgb": True,
                "rescale_factor": 1 / 255,
                "image_mean": [0.48145466, 0.4578275, 0.40821073],
                "image_std": [0.26862954, 0.26130258, 0.27577711],
                "min_pixels": 3136,
                "max_pixels": 12845056,
                "patch_size": 14,
                "temporal_patch_size": 2,
                "merge_size": 2,
            }
        )
    )


def write_instruct_folder(
    folder: Path, gen: torch.Generator, family: str = "qwen2_vl", tied: bool = False, shards: int = 1
) -> dict:
    """A tiny instruct folder as on the Hub; returns ``{"model", "tokenizer", "config"}``."""
    from safetensors.torch import save_file

    tok = tiny_tokenizer()
    write_tokenizer_files(tok, folder)
    config = hub_config(tok, family, tied)
    (folder / "config.json").write_text(json.dumps(config))
    model = tiny_model(config, gen, config["vocab_size"])  # the Hub weights keep the padded vocabulary
    sd = _hub_state(model, tied)
    if shards == 1:
        save_file(sd, str(folder / "model.safetensors"))
    else:
        keys = sorted(sd)
        names = [f"model-{i + 1:05d}-of-{shards:05d}.safetensors" for i in range(shards)]
        weight_map = {}
        for i, name in enumerate(names):
            part = {k: sd[k] for k in keys[i::shards]}
            save_file(part, str(folder / name))
            weight_map.update({k: name for k in part})
        (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return {"model": model, "tokenizer": tok, "config": config}


# ------------------------------------------------------------------------------------------------ HPSv3


def hpsv3_state(model, gen: torch.Generator, head=(24, 8, 2)) -> dict[str, torch.Tensor]:
    """The reward model's state dict in the released layout: backbone (Hub keys), lm_head, rm_head.{0,3,5}."""
    sd = {to_hub_key(k): v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    hidden = model.config.text_config.hidden_size
    dims = [hidden, *head]
    for index, (a, b) in zip((0, 3, 5), zip(dims[:-1], dims[1:])):
        sd[f"rm_head.{index}.weight"] = torch.randn(b, a, generator=gen) * (2.0 / a**0.5)
        sd[f"rm_head.{index}.bias"] = torch.randn(b, generator=gen) * 0.1
    return sd


def build_hpsv3(root: Path, gen: torch.Generator, dtype: torch.dtype = torch.bfloat16) -> dict:
    """Write ``root/hpsv3/`` (checkpoint, base folder without weights, stand-in template); return the parts."""
    from safetensors.torch import save_file

    folder = root / "hpsv3"
    base = folder / "Qwen2-VL-7B-Instruct"
    tok = tiny_tokenizer()
    write_tokenizer_files(tok, base)
    config = hub_config(tok, "qwen2_vl", tied=False)
    (base / "config.json").write_text(json.dumps(config))
    model = tiny_model(config, gen, tok.get_vocab_size() + 1)  # + <|Reward|>, as resize_token_embeddings does
    sd = hpsv3_state(model, gen)
    stored = {k: (v.to(dtype) if not k.startswith("rm_head.") else v) for k, v in sd.items()}
    save_file(stored, str(folder / "HPSv3.safetensors"))
    (folder / "prompt_template.txt").write_text(HPS_TEMPLATE)
    return {"folder": folder, "base": base, "state": stored, "tokenizer": tok, "config": config}


# ------------------------------------------------------------------------------------------------ full-size layouts


def _put(sd: dict, key: str, *shape: int) -> None:
    sd[key] = torch.empty(*shape, device="meta")


def _qwen2_lm(sd: dict, hidden: int, inter: int, layers: int, kv: int, head_dim: int, vocab: int, tied: bool) -> None:
    _put(sd, "model.embed_tokens.weight", vocab, hidden)
    for i in range(layers):
        b = f"model.layers.{i}."
        _put(sd, b + "self_attn.q_proj.weight", hidden, hidden), _put(sd, b + "self_attn.q_proj.bias", hidden)
        for p in ("k_proj", "v_proj"):
            (
                _put(sd, b + f"self_attn.{p}.weight", kv * head_dim, hidden),
                _put(sd, b + f"self_attn.{p}.bias", kv * head_dim),
            )
        _put(sd, b + "self_attn.o_proj.weight", hidden, hidden)
        _put(sd, b + "mlp.gate_proj.weight", inter, hidden), _put(sd, b + "mlp.up_proj.weight", inter, hidden)
        _put(sd, b + "mlp.down_proj.weight", hidden, inter)
        _put(sd, b + "input_layernorm.weight", hidden), _put(sd, b + "post_attention_layernorm.weight", hidden)
    _put(sd, "model.norm.weight", hidden)
    if not tied:
        _put(sd, "lm_head.weight", vocab, hidden)


def full_qwen2vl_layout(
    hidden: int = 3584,
    inter: int = 18944,
    layers: int = 28,
    kv: int = 4,
    heads: int = 28,
    vocab: int = 152064,
    tied: bool = False,
) -> dict[str, torch.Tensor]:
    """Keys and shapes of Qwen2-VL-7B-Instruct's Hub files (defaults; 2B: 1536/8960/28/2/12/151936, tied).

    Vision tower (both sizes): patch embedding Conv3d 3→1280 (2×14×14, no bias), 32 blocks (LayerNorm, fused qkv,
    MLP 1280→5120→1280 with QuickGELU), merger LayerNorm + MLP 5120→5120→hidden.
    """
    sd: dict[str, torch.Tensor] = {}
    width = 1280
    _put(sd, "visual.patch_embed.proj.weight", width, 3, 2, 14, 14)
    for i in range(32):
        b = f"visual.blocks.{i}."
        for n in ("norm1", "norm2"):
            _put(sd, b + n + ".weight", width), _put(sd, b + n + ".bias", width)
        _put(sd, b + "attn.qkv.weight", 3 * width, width), _put(sd, b + "attn.qkv.bias", 3 * width)
        _put(sd, b + "attn.proj.weight", width, width), _put(sd, b + "attn.proj.bias", width)
        _put(sd, b + "mlp.fc1.weight", 4 * width, width), _put(sd, b + "mlp.fc1.bias", 4 * width)
        _put(sd, b + "mlp.fc2.weight", width, 4 * width), _put(sd, b + "mlp.fc2.bias", width)
    _put(sd, "visual.merger.ln_q.weight", width), _put(sd, "visual.merger.ln_q.bias", width)
    _put(sd, "visual.merger.mlp.0.weight", 4 * width, 4 * width), _put(sd, "visual.merger.mlp.0.bias", 4 * width)
    _put(sd, "visual.merger.mlp.2.weight", hidden, 4 * width), _put(sd, "visual.merger.mlp.2.bias", hidden)
    _qwen2_lm(sd, hidden, inter, layers, kv, hidden // heads, vocab, tied)
    return sd


def full_qwen25vl_layout(
    hidden: int = 3584,
    inter: int = 18944,
    layers: int = 28,
    kv: int = 4,
    heads: int = 28,
    vocab: int = 152064,
    tied: bool = False,
) -> dict[str, torch.Tensor]:
    """Keys and shapes of Qwen2.5-VL-7B-Instruct's Hub files: vision blocks with RMSNorm and a SwiGLU MLP
    (1280→3420→1280, with biases), RMSNorm in the merger; the language model as Qwen2-VL's."""
    sd: dict[str, torch.Tensor] = {}
    width, mlp = 1280, 3420
    _put(sd, "visual.patch_embed.proj.weight", width, 3, 2, 14, 14)
    for i in range(32):
        b = f"visual.blocks.{i}."
        _put(sd, b + "norm1.weight", width), _put(sd, b + "norm2.weight", width)
        _put(sd, b + "attn.qkv.weight", 3 * width, width), _put(sd, b + "attn.qkv.bias", 3 * width)
        _put(sd, b + "attn.proj.weight", width, width), _put(sd, b + "attn.proj.bias", width)
        for p in ("gate_proj", "up_proj"):
            _put(sd, b + f"mlp.{p}.weight", mlp, width), _put(sd, b + f"mlp.{p}.bias", mlp)
        _put(sd, b + "mlp.down_proj.weight", width, mlp), _put(sd, b + "mlp.down_proj.bias", width)
    _put(sd, "visual.merger.ln_q.weight", width)
    _put(sd, "visual.merger.mlp.0.weight", 4 * width, 4 * width), _put(sd, "visual.merger.mlp.0.bias", 4 * width)
    _put(sd, "visual.merger.mlp.2.weight", hidden, 4 * width), _put(sd, "visual.merger.mlp.2.bias", hidden)
    _qwen2_lm(sd, hidden, inter, layers, kv, hidden // heads, vocab, tied)
    return sd


def full_hpsv3_layout() -> dict[str, torch.Tensor]:
    """HPSv3.safetensors: Qwen2-VL-7B with 151658 embedding rows (+ ``<|Reward|>``), its lm_head, and the RankNet head
    3584→1024→16→2 at ``rm_head.{0,3,5}``."""
    sd = full_qwen2vl_layout(vocab=151658)
    for index, (a, b) in zip((0, 3, 5), ((3584, 1024), (1024, 16), (16, 2))):
        _put(sd, f"rm_head.{index}.weight", b, a), _put(sd, f"rm_head.{index}.bias", b)
    return sd


#: The official configs (config.json of the Qwen repos), legacy flat layout, for the full-size meta builds.
QWEN2_VL_7B = {
    "model_type": "qwen2_vl",
    "hidden_size": 3584,
    "intermediate_size": 18944,
    "num_hidden_layers": 28,
    "num_attention_heads": 28,
    "num_key_value_heads": 4,
    "rms_norm_eps": 1e-6,
    "rope_theta": 1000000.0,
    "max_position_embeddings": 32768,
    "vocab_size": 152064,
    "tie_word_embeddings": False,
    "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
    "image_token_id": 151655,
    "video_token_id": 151656,
    "vision_start_token_id": 151652,
    "vision_end_token_id": 151653,
    "vision_config": {
        "depth": 32,
        "embed_dim": 1280,
        "mlp_ratio": 4,
        "num_heads": 16,
        "in_chans": 3,
        "hidden_size": 3584,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
    },
}
QWEN2_VL_2B = {
    **QWEN2_VL_7B,
    "hidden_size": 1536,
    "intermediate_size": 8960,
    "num_attention_heads": 12,
    "num_key_value_heads": 2,
    "vocab_size": 151936,
    "tie_word_embeddings": True,
    "vision_config": {**QWEN2_VL_7B["vision_config"], "hidden_size": 1536},
}
QWEN25_VL_7B = {
    **{k: v for k, v in QWEN2_VL_7B.items() if k != "vision_config"},
    "model_type": "qwen2_5_vl",
    "vision_config": {
        "depth": 32,
        "hidden_act": "silu",
        "hidden_size": 1280,
        "intermediate_size": 3420,
        "num_heads": 16,
        "in_chans": 3,
        "out_hidden_size": 3584,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "window_size": 112,
        "fullatt_block_indexes": [7, 15, 23, 31],
        "tokens_per_second": 2,
    },
}
