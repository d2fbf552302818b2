"""A tiny VideoReward in VideoAlign's release layout (transformers 4.45 key names, PEFT LoRA adapter, non-LoRA dict).

Written under ``<root>/videoreward/``: ``Qwen2-VL-2B-Instruct/`` (config.json, model.safetensors, tokenizer.json of a
tiny byte-level BPE with Qwen's special tokens) and ``VideoReward/`` (model_config.json, ``checkpoint-7/`` with
``adapter_model.safetensors``, ``adapter_config.json`` and ``non_lora_state_dict.pth``). ``reference`` returns the
merged transformers-5 model the loader must rebuild, assembled here independently of the loader.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

SPECIALS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
LORA_R, LORA_ALPHA = 4, 8
NORM = {"VQ_mean": 3.6757, "VQ_std": 2.2476, "MQ_mean": 1.1646, "MQ_std": 1.3811, "TA_mean": 2.8105, "TA_std": 2.5121}


#: A stand-in for VideoAlign's template (the real text is not shipped): the prompt slot and the three reward tokens.
TEMPLATE = (
    "Please evaluate the generated video for the prompt: {text_prompt}. Visual quality: <|VQ_reward|>. "
    "Motion quality: <|MQ_reward|>. Text alignment: <|TA_reward|>."
)


def tiny_tokenizer():
    """Byte-level BPE trained on the stand-in template (so prompts stay short), with Qwen2-VL's specials."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=700,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([TEMPLATE] * 4, trainer)
    return tok


def tiny_config(tok):
    from transformers import Qwen2VLConfig

    ids = {s: tok.token_to_id(s) for s in SPECIALS}
    return Qwen2VLConfig(
        text_config=dict(
            vocab_size=tok.get_vocab_size(),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            max_position_embeddings=4096,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [4, 6, 6]},
            tie_word_embeddings=True,
            bos_token_id=ids["<|endoftext|>"],
            eos_token_id=ids["<|im_end|>"],
            pad_token_id=ids["<|endoftext|>"],
        ),
        vision_config=dict(
            depth=1,
            embed_dim=32,
            hidden_size=64,
            num_heads=2,
            mlp_ratio=2,
            in_channels=3,
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
        ),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )


def _to_445(key: str) -> str:
    """transformers 5 key of Qwen2VLForConditionalGeneration → 4.45 release key."""
    if key.startswith("model.language_model."):
        return "model." + key[len("model.language_model.") :]
    if key.startswith("model.visual."):
        return key[len("model.") :]
    return key


def build(root: Path, gen: torch.Generator) -> dict:
    """Write the tiny release under ``root/videoreward``; return what the test needs to rebuild the reference."""
    from safetensors.torch import save_file
    from transformers import Qwen2VLForConditionalGeneration

    from .reward_fixtures import randomise

    folder = root / "videoreward"
    base, rm = folder / "Qwen2-VL-2B-Instruct", folder / "VideoReward"
    ckpt = rm / "checkpoint-7"
    for d in (base, ckpt):
        d.mkdir(parents=True, exist_ok=True)
    tok = tiny_tokenizer()
    tok.save(str(base / "tokenizer.json"))
    config = tiny_config(tok)
    (base / "config.json").write_text(json.dumps(config.to_dict(), default=str))
    model = Qwen2VLForConditionalGeneration(config)
    randomise(model, gen, scale=0.05)
    base_sd = {_to_445(k): v.clone().contiguous() for k, v in model.state_dict().items()}
    base_sd.pop("lm_head.weight", None)  # tied to the embeddings, as in the Hub file
    save_file(base_sd, str(base / "model.safetensors"))

    hidden = config.text_config.hidden_size
    vocab = tok.get_vocab_size() + 3  # + <|VQ_reward|> <|MQ_reward|> <|TA_reward|>
    lora, non_lora = {}, {}
    for i in range(config.text_config.num_hidden_layers):
        for proj, (out_f, in_f) in {"q_proj": (64, 64), "v_proj": (32, 64), "down_proj": (64, 128)}.items():
            part = "mlp" if proj == "down_proj" else "self_attn"
            key = f"base_model.model.model.layers.{i}.{part}.{proj}"
            lora[f"{key}.lora_A.weight"] = torch.randn(LORA_R, in_f, generator=gen) * 0.05
            lora[f"{key}.lora_B.weight"] = torch.randn(out_f, LORA_R, generator=gen) * 0.05
    for k, v in base_sd.items():
        if k.startswith("visual."):  # stored in bf16, as a bf16 training run saves them
            non_lora[f"base_model.model.{k}"] = (v + torch.randn(v.shape, generator=gen) * 0.01).to(torch.bfloat16)
    non_lora["base_model.model.model.embed_tokens.weight"] = torch.randn(vocab, hidden, generator=gen) * 0.05
    non_lora["base_model.model.rm_head.weight"] = torch.randn(3, hidden, generator=gen) * 0.5
    save_file(lora, str(ckpt / "adapter_model.safetensors"))
    torch.save(non_lora, ckpt / "non_lora_state_dict.pth")
    (rm / "prompt_template.txt").write_text(TEMPLATE)
    (ckpt / "adapter_config.json").write_text(json.dumps({"r": LORA_R, "lora_alpha": LORA_ALPHA, "use_rslora": False}))
    (rm / "model_config.json").write_text(
        json.dumps(
            {
                "data_config": {
                    "fps": 2.0,
                    "num_frames": None,
                    "max_frame_pixels": 56 * 56,
                    "prompt_template_type": "detailed_special",
                    "eval_dim": ["VQ", "MQ", "TA"],
                    "sample_type": "uniform",
                },
                "model_config": {
                    "model_name_or_path": "Qwen/Qwen2-VL-2B-Instruct",
                    "output_dim": 3,
                    "use_special_tokens": True,
                    "reward_token": "special",
                },
                "peft_lora_config": {"lora_enable": True, "lora_r": LORA_R, "lora_alpha": LORA_ALPHA},
                "inference_config": NORM,
            }
        )
    )
    return {"config": config, "base": base_sd, "lora": lora, "non_lora": non_lora, "folder": rm}


def reference(parts: dict):
    """The merged ``Qwen2VLModel`` and ``rm_head`` (fp32), assembled without the loader's code."""
    from transformers import Qwen2VLModel

    config = parts["config"]
    sd = {}
    for k, v in parts["base"].items():
        sd[("language_model." + k[len("model.") :]) if k.startswith("model.") else k] = v.float()
    for k, v in parts["non_lora"].items():
        k = k[len("base_model.model.") :]
        if k.startswith("model."):
            sd["language_model." + k[len("model.") :]] = v.float()
        elif k.startswith("visual."):
            sd[k] = v.float()
    scale = LORA_ALPHA / LORA_R
    for k, a in parts["lora"].items():
        if ".lora_A." in k:
            b = parts["lora"][k.replace("lora_A", "lora_B")]
            target = "language_model." + k[len("base_model.model.model.") :].replace(".lora_A.weight", ".weight")
            sd[target] = sd[target] + scale * (b @ a)
    config.text_config.vocab_size = sd["language_model.embed_tokens.weight"].shape[0]
    model = Qwen2VLModel(config)
    model.load_state_dict(sd, strict=True)
    head = torch.nn.Linear(config.text_config.hidden_size, 3, bias=False)
    head.weight.data.copy_(parts["non_lora"]["base_model.model.rm_head.weight"])
    return model.eval(), head
