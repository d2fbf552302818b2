"""Tiny random-weight reward models written in the official file layouts (key names, wrappers, fp16 storage).

Every builder takes a seeded ``torch.Generator`` and writes under a caller-given folder (``tmp_path``), so nothing
large is committed and every test is reproducible.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

# ------------------------------------------------------------------------------------------------ generic helpers


def randomise(module: torch.nn.Module, gen: torch.Generator, scale: float = 0.2) -> torch.nn.Module:
    """Fill every parameter with N(0, scale²) (LayerNorm weights around 1) so outputs are not degenerate."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            noise = torch.randn(p.shape, generator=gen) * scale
            p.copy_(1.0 + noise if ("ln" in name or "norm" in name.lower()) and name.endswith("weight") else noise)
    return module


def images(gen: torch.Generator, b: int = 3, h: int = 40, w: int = 56, t: int | None = None) -> torch.Tensor:
    """Random IMAGE batch ``[B,H,W,3]`` (or video ``[B,T,H,W,3]``) in 0..1 with some structure."""
    shape = (b, h, w, 3) if t is None else (b, t, h, w, 3)
    base = torch.rand(shape, generator=gen)
    ramp = torch.linspace(0, 1, w).view(*([1] * (len(shape) - 2)), w, 1)
    return (0.6 * base + 0.4 * ramp).clamp(0, 1)


def natural_image(gen: torch.Generator, h: int, w: int) -> torch.Tensor:
    """One photo-like IMAGE ``[H,W,3]``: smooth colour regions, mild noise, one sharp edge, 8-bit quantised.

    Pure noise is the worst case for resampling (PIL rounds to 8 bits between its two filter passes) and says little
    about real images; the §3 tolerances were measured on images like this one.
    """
    import torch.nn.functional as F

    low = torch.rand(1, 3, max(2, h // 16), max(2, w // 16), generator=gen)
    x = F.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)
    x = x + 0.03 * torch.randn(1, 3, h, w, generator=gen)
    x[..., h // 3 : h // 3 + 3, :] = 1.0
    return (x.clamp(0, 1)[0].permute(1, 2, 0) * 255).round() / 255


# ------------------------------------------------------------------------------------------------ CLIP (open_clip)

TINY_HEADS = (2, 2)  # (vision, text) attention heads of the tiny CLIPs below


def tiny_openclip(gen: torch.Generator, quick_gelu: bool, embed: int = 32, image_size: int = 32):
    """A tiny open_clip ``CLIP`` (ViT, 2+2 layers, 2 heads each) with seeded random weights."""
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    vision = CLIPVisionCfg(layers=2, width=64, head_width=32, patch_size=8, image_size=image_size)
    text = CLIPTextCfg(context_length=77, vocab_size=49408, width=48, heads=2, layers=2)
    model = CLIP(embed, vision, text, quick_gelu=quick_gelu)
    randomise(model, gen)
    with torch.no_grad():
        model.logit_scale.fill_(math.log(100.0))
    return model.eval()


def save_openclip(model, path: Path, *, wrapper: str | None = "state_dict", fp16: bool = True) -> dict:
    """Write an open_clip state dict like HPS_v2.1_compressed.pt (``{"state_dict": fp16 tensors}``); returns it."""
    sd = {k: (v.half() if fp16 and v.is_floating_point() else v).clone() for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(sd, str(path))
    else:
        torch.save({wrapper: sd} if wrapper else sd, path)
    return sd


def save_openai_jit(model, path: Path, fp16: bool = True) -> None:
    """Write a TorchScript archive of an open_clip model, like OpenAI's JIT ``ViT-L-14.pt`` (fp16 tensors)."""
    model = model.half() if fp16 else model
    image = torch.zeros(
        1, 3, model.visual.image_size[0], model.visual.image_size[1], dtype=next(model.parameters()).dtype
    )
    text = torch.zeros(1, 77, dtype=torch.long)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, (image, text), check_trace=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    traced.save(str(path))


def as_fp16_reference(model):
    """The fp32 model whose weights equal the fp16-stored ones (what a loader of an fp16 file must reproduce)."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())
    return model


# ------------------------------------------------------------------------------------------------ CLIP (HF folder)


def tiny_hf_clip(gen: torch.Generator, hidden_act: str = "quick_gelu", projection: int = 32):
    """A tiny transformers ``CLIPModel`` with seeded random weights."""
    from transformers import CLIPConfig, CLIPModel

    config = CLIPConfig(
        text_config=dict(
            hidden_size=48,
            intermediate_size=96,
            num_attention_heads=2,
            num_hidden_layers=2,
            hidden_act=hidden_act,
            max_position_embeddings=77,
            vocab_size=49408,
        ),
        vision_config=dict(
            hidden_size=64,
            intermediate_size=128,
            num_attention_heads=2,
            num_hidden_layers=2,
            image_size=32,
            patch_size=8,
            hidden_act=hidden_act,
        ),
        projection_dim=projection,
    )
    model = CLIPModel(config)
    randomise(model, gen)
    with torch.no_grad():
        model.logit_scale.fill_(math.log(100.0))
    return model.eval()


def save_hf_folder(model, folder: Path) -> None:
    """``config.json`` + ``model.safetensors``, as on the Hub (written by hand: no hub code involved)."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(model.config.to_dict(), default=str))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))


# ------------------------------------------------------------------------------------------------ aesthetic head


def aesthetic_head_state(gen: torch.Generator, dims=(32, 24, 16, 8, 4, 1)) -> dict[str, torch.Tensor]:
    """A LAION-style head state dict ``layers.{0,2,4,6,7}`` with the given widths."""
    linear_idx = [0, 2, 4, 6, 7] if len(dims) == 6 else None
    assert linear_idx is not None, "the published head has five linear layers"
    sd = {}
    for i, (a, b) in zip(linear_idx, zip(dims[:-1], dims[1:])):
        sd[f"layers.{i}.weight"] = torch.randn(b, a, generator=gen) / math.sqrt(a)
        sd[f"layers.{i}.bias"] = torch.randn(b, generator=gen) * 0.1
    return sd


# ------------------------------------------------------------------------------------------------ ImageReward

TINY_BLIP = dict(
    v_width=64,
    v_layers=2,
    v_heads=2,
    v_mlp=128,
    image=32,
    patch=8,
    t_width=48,
    t_layers=2,
    t_heads=2,
    t_mlp=96,
    vocab=30524,
    positions=40,
    head=(48, 64, 32, 16, 8, 1),
)


def imagereward_state(gen: torch.Generator | None, cfg: dict = TINY_BLIP) -> dict[str, torch.Tensor]:
    """A random ImageReward checkpoint in the official key layout (plus the unused keys the real file has).

    ``gen=None`` gives shapes only (meta tensors), e.g. for the full-size layout."""
    sd: dict[str, torch.Tensor] = {}

    def put(key: str, *shape: int, scale: float = 0.2, one: bool = False) -> None:
        if gen is None:
            sd[key] = torch.empty(*shape, device="meta")
        else:
            sd[key] = (1.0 if one else 0.0) + torch.randn(*shape, generator=gen) * scale

    vw, tw, n = cfg["v_width"], cfg["t_width"], (cfg["image"] // cfg["patch"]) ** 2
    v = "blip.visual_encoder."
    put(v + "cls_token", 1, 1, vw)
    put(v + "pos_embed", 1, n + 1, vw)
    put(v + "patch_embed.proj.weight", vw, 3, cfg["patch"], cfg["patch"], scale=0.05)
    put(v + "patch_embed.proj.bias", vw)
    for i in range(cfg["v_layers"]):
        b = f"{v}blocks.{i}."
        for ln in ("norm1", "norm2"):
            put(b + ln + ".weight", vw, one=True), put(b + ln + ".bias", vw, scale=0.05)
        put(b + "attn.qkv.weight", 3 * vw, vw, scale=0.1), put(b + "attn.qkv.bias", 3 * vw, scale=0.05)
        put(b + "attn.proj.weight", vw, vw, scale=0.1), put(b + "attn.proj.bias", vw, scale=0.05)
        put(b + "mlp.fc1.weight", cfg["v_mlp"], vw, scale=0.1), put(b + "mlp.fc1.bias", cfg["v_mlp"], scale=0.05)
        put(b + "mlp.fc2.weight", vw, cfg["v_mlp"], scale=0.1), put(b + "mlp.fc2.bias", vw, scale=0.05)
    put(v + "norm.weight", vw, one=True), put(v + "norm.bias", vw, scale=0.05)
    t = "blip.text_encoder."
    put(t + "embeddings.word_embeddings.weight", cfg["vocab"], tw)
    put(t + "embeddings.position_embeddings.weight", cfg["positions"], tw)
    sd[t + "embeddings.position_ids"] = torch.arange(cfg["positions"]).view(1, -1)
    put(t + "embeddings.LayerNorm.weight", tw, one=True), put(t + "embeddings.LayerNorm.bias", tw, scale=0.05)
    for i in range(cfg["t_layers"]):
        b = f"{t}encoder.layer.{i}."
        for att, kv in (("attention", tw), ("crossattention", vw)):
            put(b + f"{att}.self.query.weight", tw, tw, scale=0.1), put(b + f"{att}.self.query.bias", tw, scale=0.05)
            for proj in ("key", "value"):
                put(b + f"{att}.self.{proj}.weight", tw, kv, scale=0.1)
                put(b + f"{att}.self.{proj}.bias", tw, scale=0.05)
            (
                put(b + f"{att}.output.dense.weight", tw, tw, scale=0.1),
                put(b + f"{att}.output.dense.bias", tw, scale=0.05),
            )
            (
                put(b + f"{att}.output.LayerNorm.weight", tw, one=True),
                put(b + f"{att}.output.LayerNorm.bias", tw, scale=0.05),
            )
        put(b + "intermediate.dense.weight", cfg["t_mlp"], tw, scale=0.1)
        put(b + "intermediate.dense.bias", cfg["t_mlp"], scale=0.05)
        put(b + "output.dense.weight", tw, cfg["t_mlp"], scale=0.1), put(b + "output.dense.bias", tw, scale=0.05)
        put(b + "output.LayerNorm.weight", tw, one=True), put(b + "output.LayerNorm.bias", tw, scale=0.05)
    # unused by the reward, present in the official file
    put("blip.vision_proj.weight", 16, vw), put("blip.vision_proj.bias", 16)
    put("blip.text_proj.weight", 16, tw), put("blip.text_proj.bias", 16)
    # the MLP head, widened (the package's init makes every reward ≈ −0.16; docs/rewards.md §2)
    dims = cfg["head"]
    for i, (a, b) in zip([0, 2, 4, 6, 7], zip(dims[:-1], dims[1:])):
        put(f"mlp.layers.{i}.weight", b, a, scale=2.0 / math.sqrt(a))
        put(f"mlp.layers.{i}.bias", b, scale=0.1)
    return sd


TINY_IMAGEREWARD_ARCH = dict(
    vision_width=64,
    vision_layers=2,
    vision_heads=2,
    vision_mlp=128,
    image_size=32,
    patch_size=8,
    text_width=48,
    text_layers=2,
    text_heads=2,
    text_mlp=96,
    max_positions=40,
)


def tiny_options(kind: str) -> dict:
    """Loader options the tiny fixtures need: head counts (not inferable from tiny widths), small video frames."""
    if kind == "imagereward":
        from rewards.imagereward import ImageRewardArch

        return {"arch": ImageRewardArch(**TINY_IMAGEREWARD_ARCH)}
    if kind in ("clipscore", "hpsv2", "aesthetic"):
        return {"heads": TINY_HEADS}
    if kind == "videoreward":
        return {"min_pixels": 56 * 56}
    if kind == "hpsv3":
        return {"pixels": 56 * 56}  # the official 448×448 works too, but is 16× more tokens
    return {}


def unavailable(kind: str) -> str | None:
    """Why a kind cannot run in this environment (the Qwen2-VL rewards need transformers >= 5), or None."""
    if kind in ("videoreward", "vqascore", "hpsv3"):
        import transformers

        if int(transformers.__version__.split(".")[0]) < 5:
            return f"{kind} needs transformers >= 5 (found {transformers.__version__})"
    return None


#: The shared reward tests' generic prompts, as prompts of the ``shapes`` verifier's grammar (it refuses others).
_SHAPES_PROMPTS = {
    "a red apple on a table": "a red circle",
    "a blue car": "a blue square",
    "a dog": "two green triangles",
    "a cat": "a yellow circle left of a red square",
}


def kind_prompt(kind: str, prompt: str) -> str:
    """``prompt`` for reward ``kind``: unchanged, except for kinds whose prompts follow a grammar (``shapes``)."""
    return _SHAPES_PROMPTS[prompt] if kind == "shapes" else prompt
