"""Full-size rows of ``bench/rewards_speed.py`` for the SigLIP aesthetic v2.5, VQAScore and HPSv3 (random weights).

Each architecture is built on the ``meta`` device from its official config and filled with seeded random weights
through the production loader, then scored through the reward class (its own preprocessing and batching). No
tokenizer files exist here, so a byte-level BPE with Qwen's special tokens is trained on the texts it must encode
(token ids are small; the embedding tables have the full vocabulary). What runs:

* ``aesthetic_v25``: SigLIP so400m-patch14-384 vision tower (428 M) + the 1152→…→1 head, 384×384 input.
* ``vqascore``: Qwen2-VL-2B-Instruct (2.2 B, tied embeddings); a 512×512 image becomes 504×504 (324 image tokens);
  one question of the default template. The t2v_metrics default, Qwen2.5-VL-7B (8.3 B), needs 33 GB in fp32 and
  17 GB in bf16 and is not run here.
* ``hpsv3``: HPSv3's architecture (Qwen2-VL-7B width, full 32-block vision tower, 151658-row embeddings, RankNet
  head) with only ``HPSV3_LAYERS`` of its 28 language-model layers: the whole model needs 31 GB in fp32 and 15.5 GB
  in bf16, more than this machine can spare. The image is resized to the official 448×448 (256 tokens); a stand-in
  instruction of ``HPS_WORDS`` one-token words stands for HPSv3's (≈ 520 tokens by CLIP's BPE), so the
  sequence length is about right.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import torch

from rewards.aesthetic_v25 import AestheticV25, ScoringHead
from rewards.hpsv3 import HPSv3, HPSv3Model
from rewards.vqascore import VQAScore, VQAScoreModel

HPSV3_LAYERS = 2
#: Words of the stand-in instruction: each becomes one token, so the text is about as long as HPSv3's (≈ 520 tokens).
HPS_WORDS = 490
_WORDS = ("image", "quality", "detail", "prompt", "subject", "style", "colour", "light", "scene", "rating")
SPECIALS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
#: Qwen2-VL-7B-Instruct's config.json (legacy flat layout); the 2B differs in the fields of :data:`QWEN2_VL_2B`.
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
    "vision_config": {"depth": 32, "embed_dim": 1280, "mlp_ratio": 4, "num_heads": 16, "hidden_size": 3584},
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


def _tokenizer(texts: list[str], special: tuple[str, ...] = ()):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=4000,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([*texts, "Yes", "No"] * 4, trainer)
    if special:
        tok.add_special_tokens(list(special))
    return tok


def _config(base: dict, tok, **changes):
    from transformers import Qwen2VLConfig

    ids = {
        "image_token_id": tok.token_to_id("<|image_pad|>"),
        "video_token_id": tok.token_to_id("<|video_pad|>"),
        "vision_start_token_id": tok.token_to_id("<|vision_start|>"),
        "vision_end_token_id": tok.token_to_id("<|vision_end|>"),
    }
    return Qwen2VLConfig.from_dict({**base, **ids, **changes})


def aesthetic_v25(dtype: torch.dtype, materialise) -> tuple[AestheticV25, str]:
    from transformers import SiglipVisionConfig, SiglipVisionModel

    config = SiglipVisionConfig(
        hidden_size=1152,
        intermediate_size=4304,
        num_hidden_layers=27,
        num_attention_heads=16,
        image_size=384,
        patch_size=14,
    )
    model = materialise(lambda: SiglipVisionModel(config), dtype, seed=1)
    head = materialise(lambda: ScoringHead(), torch.float32, seed=2, heads=("scoring_head.",))
    return AestheticV25(model, head), "384×384"


def vqascore(dtype: torch.dtype, materialise, prompt: str) -> tuple[VQAScore, str]:
    question = f'Does this figure show "{prompt}"? Please answer Yes or No.'
    tok = _tokenizer([question, "You are a helpful assistant.", "system user assistant"])
    config = _config(QWEN2_VL_2B, tok)
    model = materialise(lambda: VQAScoreModel(config, tied=True), dtype, seed=3)
    reward = VQAScore(model, tok, prompt=prompt)
    return reward, "Qwen2-VL-2B, 504×504 → 324 image tokens"


def hpsv3(dtype: torch.dtype, materialise, prompt: str) -> tuple[HPSv3, str]:
    words = " ".join(_WORDS[i % len(_WORDS)] for i in range(HPS_WORDS))
    template = f"\nRate this image. {words}\nTextual prompt - {{text_prompt}}\n\nRatings: <|Reward|>\n\nEND\n"
    tok = _tokenizer([template, prompt, "You are a helpful assistant."], special=("<|Reward|>",))
    config = _config(QWEN2_VL_7B, tok, num_hidden_layers=HPSV3_LAYERS, vocab_size=151658)
    model = materialise(lambda: HPSv3Model(config), dtype, seed=4, heads=("rm_head.",))
    reward = HPSv3(model, tok, template)
    ids = reward.inputs(torch.zeros(1, 64, 64, 3), [prompt])["input_ids"][0]
    text = int((ids != reward.image_id).sum())
    note = f"{HPSV3_LAYERS} of 28 LM layers, 448×448 → 256 image tokens + {text} text tokens"
    return reward, note


def bench_vlm(x: torch.Tensor, rows: list[str], materialise, timed, prompt: str) -> Iterator[tuple]:
    """``(label, threads, dtype, ms/image, notes)`` for each requested row in fp32 then bf16 (batch = ``x``)."""
    builders = {
        "aesthetic_v25": ("Aesthetic v2.5 (SigLIP so400m)", lambda d: aesthetic_v25(d, materialise)),
        "vqascore": ("VQAScore (Qwen2-VL-2B)", lambda d: vqascore(d, materialise, prompt)),
        "hpsv3": (f"HPSv3 ({HPSV3_LAYERS}/28 LM layers)", lambda d: hpsv3(d, materialise, prompt)),
    }
    warm = x[:1, :64, :64].contiguous()  # kernels warm up on a small image: the full one costs minutes here
    for name in rows:
        label, build = builders[name]
        results = {}
        for dtype in (torch.float32, torch.bfloat16):
            start = time.perf_counter()
            reward, what = build(dtype)
            built = time.perf_counter() - start
            params = sum(p.numel() for m in reward.modules() for p in m.parameters()) / 1e6
            seconds, scores = timed(reward, x, warmup=warm)
            results[dtype] = scores
            note = f"{params:.0f} M params, built in {built:.0f} s; {what}"
            if dtype == torch.bfloat16:
                diff = (scores - results[torch.float32]).abs()
                note = f"|Δ| to fp32 max {diff.max():.2e} (scores ≈{results[torch.float32].abs().mean():.3f}); {what}"
            yield (
                label,
                f"{torch.get_num_threads()} thread(s)",
                str(dtype).removeprefix("torch."),
                seconds / len(x) * 1e3,
                note,
            )
            del reward
