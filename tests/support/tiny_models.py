"""Tiny random-weight models of the real architectures, built with ComfyUI's own classes (docs/comfyui.md §7).

Each builder returns a :class:`Tiny` bundle: a MODEL (ModelPatcher), positive/negative CONDITIONING, an empty LATENT
maker and a tiny VAE whose decode gives IMAGE ``[B,H,W,3]`` (or video ``[B,T,H,W,3]`` for the video models). Weights
are re-initialised from a fixed seed (ComfyUI's ops skip ``reset_parameters``, leaving garbage otherwise), so every
model is deterministic and its outputs are finite and well scaled.

The newer families (:data:`NEW_ARCHITECTURES`) use ComfyUI's own ``supported_models`` classes too; their VAEs are
``comfy.sd.VAE`` objects set up by ComfyUI's own key detection (compression ratios, latent channels, memory
formulas), with a tiny module of the same compression inside. Every family v0.3.64's ``supported_models`` lists is
covered; none of the requested ones is missing there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

#: The families of the first host tests (issue 3).
CORE_ARCHITECTURES = ("sd15", "sd21v", "sdxl", "flux", "wan21")
#: Newer families: Wan 2.2 TI2V 5B (48 channels, 16× VAE), Qwen-Image (one-frame 5-D latent), HunyuanVideo, LTXV
#: (128 channels, 32× VAE), SD3.5-style MMDiT, Chroma, HiDream.
NEW_ARCHITECTURES = ("wan22_5b", "qwen_image", "hunyuan_video", "ltxv", "sd3", "chroma", "hidream")
ARCHITECTURES = CORE_ARCHITECTURES + NEW_ARCHITECTURES
#: Families whose latents are videos ([B, C, T, H, W] with T > 1).
VIDEO_ARCHITECTURES = ("wan21", "wan22_5b", "hunyuan_video", "ltxv")


@dataclass
class Tiny:
    name: str
    model: object  # comfy.model_patcher.ModelPatcher
    positive: list
    negative: list
    vae: object  # comfy.sd.VAE
    empty_latent: Callable[[int], dict]
    video: bool = False


def _reinit(module: torch.nn.Module, seed: int, scale: float = 0.02) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.numel() == 0:
                continue
            if p.dim() <= 1:
                if "norm" in name or "weight" in name and p.dim() == 1 and "bias" not in name:
                    p.copy_(torch.ones_like(p) + 0.01 * torch.randn(p.shape, generator=g))
                else:
                    p.copy_(0.01 * torch.randn(p.shape, generator=g))
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) * min(scale * 5, 1.0 / fan_in**0.5))
        for b in module.buffers():
            if not torch.isfinite(b).all():
                b.zero_()


def _patcher(model: torch.nn.Module) -> object:
    import comfy.model_management
    import comfy.model_patcher

    return comfy.model_patcher.ModelPatcher(
        model,
        load_device=comfy.model_management.get_torch_device(),
        offload_device=comfy.model_management.unet_offload_device(),
    )


def _model(config_cls: type, unet_config: dict, seed: int, model_type: object | None = None) -> object:
    import comfy.model_base

    config = config_cls(unet_config)
    config.set_inference_dtype(torch.float32, None)
    if model_type is not None:
        config.model_type = lambda *a, **k: model_type  # what model_detection would have decided
    model = config.get_model({}, "")
    if model_type is not None and model.model_type != model_type:
        model = type(model)(config, model_type=model_type)
    _reinit(model.diffusion_model, seed)
    assert isinstance(model, comfy.model_base.BaseModel)
    return _patcher(model)


def _kl_vae(z: int, seed: int, ch: int = 32) -> object:
    import comfy.sd

    ddconfig = {"double_z": True, "z_channels": z, "resolution": 64, "in_channels": 3, "out_ch": 3, "ch": ch,
                "ch_mult": [1, 2], "num_res_blocks": 1, "attn_resolutions": [], "dropout": 0.0}  # fmt: skip
    vae = comfy.sd.VAE(sd={}, config={"params": {"ddconfig": ddconfig, "embed_dim": z}})
    _reinit(vae.first_stage_model, seed, scale=0.2)
    return vae


def _wan_vae(seed: int) -> object:
    """A Wan 2.1 VAE object (selected by its key, as for real files) with a tiny WanVAE inside."""
    import comfy.ldm.wan.vae
    import comfy.model_patcher
    import comfy.sd

    vae = comfy.sd.VAE(
        sd={"decoder.middle.0.residual.0.gamma": torch.zeros(384, 1, 1, 1)}
    )  # the real key selects Wan 2.1
    small = comfy.ldm.wan.vae.WanVAE(dim=8, z_dim=16, dim_mult=[1, 2, 2, 2], num_res_blocks=1, attn_scales=[],
                                     temperal_downsample=[False, True, True], dropout=0.0).eval()  # fmt: skip
    _reinit(small, seed, scale=0.2)
    vae.first_stage_model = small.to(vae.vae_dtype)
    vae.patcher = comfy.model_patcher.ModelPatcher(
        small, load_device=vae.device, offload_device=vae.patcher.offload_device
    )
    return vae


def _detected_vae(
    sd: dict, small: torch.nn.Module, factory: tuple[object, str] | None = None, metadata: dict | None = None
) -> object:
    """A ``comfy.sd.VAE`` set up by ComfyUI's own detection of ``sd`` (``small``'s state dict), holding ``small``.

    ComfyUI builds some VAEs at a fixed full size (``factory`` = the module and class name it calls, e.g.
    ``(comfy.ldm.wan.vae2_2, "WanVAE")``); while the VAE is constructed that class hands back ``small`` instead, so
    every other attribute (compression ratios, latent channels, memory formulas, working dtypes) is what ComfyUI
    sets for a real file with these keys. VAEs configured from the file's metadata (LTXV) need no factory.
    """
    import contextlib
    from unittest import mock

    import comfy.sd

    patch = contextlib.nullcontext() if factory is None else mock.patch.object(*factory, lambda *a, **k: small)
    with patch:
        vae = comfy.sd.VAE(sd=sd, metadata=metadata)
    return vae


def _wan22_vae(seed: int) -> object:
    """The Wan 2.2 VAE (48 channels, 16× spatial, 4× temporal), selected by its keys as in ``comfy.sd.VAE``."""
    import comfy.ldm.wan.vae2_2

    small = comfy.ldm.wan.vae2_2.WanVAE(dim=8, dec_dim=8, z_dim=48, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                                        attn_scales=[], temperal_downsample=[False, True, True], dropout=0.0)  # fmt: skip
    _reinit(small, seed, scale=0.2)
    sd = small.state_dict()
    assert "decoder.middle.0.residual.0.gamma" in sd and "decoder.upsamples.0.upsamples.0.residual.2.weight" in sd
    return _detected_vae(sd, small, (comfy.ldm.wan.vae2_2, "WanVAE"))


def _hunyuan_video_vae(seed: int) -> object:
    """The HunyuanVideo VAE (16 channels, 8× spatial, 4× temporal, causal 3-D KL), selected by its conv_in key."""
    import comfy.ldm.models.autoencoder
    import comfy.sd

    ddconfig = {"double_z": True, "z_channels": 16, "resolution": 256, "in_channels": 3, "out_ch": 3, "ch": 32,
                "ch_mult": [1, 1, 1, 1], "num_res_blocks": 1, "attn_resolutions": [], "dropout": 0.0, "conv3d": True,
                "time_compress": 4}  # fmt: skip
    small = comfy.ldm.models.autoencoder.AutoencoderKL(ddconfig=ddconfig, embed_dim=16)
    _reinit(small, seed, scale=0.2)
    return _detected_vae(small.state_dict(), small, (comfy.sd, "AutoencoderKL"))


def _ltxv_vae(seed: int) -> object:
    """The LTXV VAE (128 channels, 32× spatial, 8× temporal), configured from the file's metadata like real files."""
    import json

    import comfy.ldm.lightricks.vae.causal_video_autoencoder as ltx_vae

    config = {"dims": 3, "in_channels": 3, "out_channels": 3, "latent_channels": 128, "patch_size": 4,
              "blocks": [["res_x", 1], ["compress_all", 1], ["compress_all", 1], ["compress_all", 1], ["res_x", 1]],
              "norm_layer": "pixel_norm", "latent_log_var": "uniform", "causal_decoder": False,
              "timestep_conditioning": False}  # fmt: skip
    small = ltx_vae.VideoVAE(config=config)
    _reinit(small, seed, scale=0.2)
    stats = small.per_channel_statistics  # latent statistics: buffers a real file holds, allocated empty
    with torch.no_grad():
        stats.get_buffer("std-of-means").fill_(1.0)
        stats.get_buffer("mean-of-means").zero_()
    sd = small.state_dict()
    return _detected_vae(sd, small, metadata={"config": json.dumps({"vae": config})})


def _cond(tensor: torch.Tensor, **extra: object) -> list:
    return [[tensor, dict(extra)]]


def _text(seed: int, length: int, dim: int) -> torch.Tensor:
    return torch.randn((1, length, dim), generator=torch.Generator().manual_seed(seed))


def _latent_maker(channels: int, size: int, frames: int | None = None) -> Callable[[int], dict]:
    def make(batch: int = 1) -> dict:
        shape = (batch, channels, size, size) if frames is None else (batch, channels, frames, size, size)
        return {"samples": torch.zeros(shape)}

    return make


def build(name: str, seed: int = 0) -> Tiny:
    """A tiny ``name`` model (one of :data:`ARCHITECTURES`)."""
    import comfy.model_base
    import comfy.supported_models as sm

    unet = {"use_checkpoint": False, "image_size": 32, "out_channels": 4, "use_spatial_transformer": True,
            "legacy": False, "in_channels": 4, "model_channels": 32, "num_res_blocks": [1, 1],
            "transformer_depth": [1, 1], "channel_mult": [1, 2], "transformer_depth_middle": 1,
            "transformer_depth_output": [1, 1, 1, 1], "context_dim": 64, "num_heads": 2, "num_head_channels": -1,
            "use_temporal_attention": False, "use_temporal_resblock": False, "adm_in_channels": None,
            "use_linear_in_transformer": False}  # fmt: skip
    if name == "sd15":
        model = _model(sm.SD15, unet, seed)
        return Tiny(name, model, _cond(_text(1, 7, 64)), _cond(_text(2, 7, 64)), _kl_vae(4, seed + 1),
                    _latent_maker(4, 8))  # fmt: skip
    if name == "sd21v":

        class TinySD20(sm.SD20):  # SD2's 64-channel heads do not fit a 32-channel UNet
            unet_extra_config = {"num_heads": -1, "num_head_channels": 16, "attn_precision": torch.float32}

        cfg = dict(unet, use_linear_in_transformer=True)
        model = _model(TinySD20, cfg, seed, comfy.model_base.ModelType.V_PREDICTION)
        return Tiny(name, model, _cond(_text(1, 7, 64)), _cond(_text(2, 7, 64)), _kl_vae(4, seed + 1),
                    _latent_maker(4, 8))  # fmt: skip
    if name == "sdxl":
        cfg = dict(unet, use_linear_in_transformer=True, adm_in_channels=2816, num_classes="sequential", transformer_depth=[0, 1],
                   transformer_depth_output=[0, 0, 1, 1], context_dim=64)  # fmt: skip
        model = _model(sm.SDXL, cfg, seed)
        pooled = torch.randn((1, 1280), generator=torch.Generator().manual_seed(3))
        return Tiny(name, model, _cond(_text(1, 7, 64), pooled_output=pooled, width=64, height=64),
                    _cond(_text(2, 7, 64), pooled_output=pooled * 0, width=64, height=64), _kl_vae(4, seed + 1),
                    _latent_maker(4, 8))  # fmt: skip
    if name == "flux":
        cfg = {"image_model": "flux", "guidance_embed": True, "in_channels": 16, "out_channels": 16, "vec_in_dim": 32,
               "context_in_dim": 32, "hidden_size": 64, "mlp_ratio": 2.0, "num_heads": 2, "depth": 1,
               "depth_single_blocks": 1, "axes_dim": [8, 12, 12], "theta": 10000, "patch_size": 2, "qkv_bias": True}  # fmt: skip
        model = _model(sm.Flux, cfg, seed)
        pooled = torch.randn((1, 32), generator=torch.Generator().manual_seed(3))
        return Tiny(name, model, _cond(_text(1, 5, 32), pooled_output=pooled, guidance=3.5),
                    _cond(_text(2, 5, 32), pooled_output=pooled, guidance=3.5), _kl_vae(16, seed + 1),
                    _latent_maker(16, 8))  # fmt: skip
    if name == "wan21":
        cfg = {"image_model": "wan2.1", "model_type": "t2v", "patch_size": (1, 2, 2), "text_len": 16, "in_dim": 16,
               "dim": 64, "ffn_dim": 128, "freq_dim": 32, "text_dim": 32, "out_dim": 16, "num_heads": 2,
               "num_layers": 1, "window_size": (-1, -1), "qk_norm": True, "cross_attn_norm": True, "eps": 1e-6}  # fmt: skip
        model = _model(sm.WAN21_T2V, cfg, seed)
        return Tiny(name, model, _cond(_text(1, 6, 32)), _cond(_text(2, 6, 32)), _wan_vae(seed + 1),
                    _latent_maker(16, 4, frames=2), video=True)  # fmt: skip
    if name in NEW_ARCHITECTURES:
        return _build_new(name, seed)
    raise ValueError(f"unknown tiny architecture {name!r}; one of {ARCHITECTURES}")


def _build_new(name: str, seed: int) -> Tiny:
    """The newer families (see :data:`NEW_ARCHITECTURES`)."""
    import comfy.supported_models as sm

    wan = {"image_model": "wan2.1", "model_type": "t2v", "patch_size": (1, 2, 2), "text_len": 16, "dim": 64,
           "ffn_dim": 128, "freq_dim": 32, "text_dim": 32, "num_heads": 2, "num_layers": 1, "window_size": (-1, -1),
           "qk_norm": True, "cross_attn_norm": True, "eps": 1e-6}  # fmt: skip
    flux_like = {"hidden_size": 64, "mlp_ratio": 2.0, "num_heads": 2, "depth": 1, "depth_single_blocks": 1,
                 "axes_dim": [8, 12, 12], "qkv_bias": True}  # fmt: skip
    if name == "wan22_5b":  # TI2V 5B: 48-channel latents of the 16× Wan 2.2 VAE, [B, 48, T, H/16, W/16]
        model = _model(sm.WAN22_T2V, dict(wan, in_dim=48, out_dim=48), seed)
        return Tiny(name, model, _cond(_text(1, 6, 32)), _cond(_text(2, 6, 32)), _wan22_vae(seed + 1),
                    _latent_maker(48, 2, frames=2), video=True)  # fmt: skip
    if name == "qwen_image":  # an image model with Wan 2.1's video latent format: [B, 16, 1, H/8, W/8]
        cfg = {"image_model": "qwen_image", "patch_size": 2, "in_channels": 64, "out_channels": 16, "num_layers": 1,
               "attention_head_dim": 16, "num_attention_heads": 2, "joint_attention_dim": 32,
               "axes_dims_rope": (4, 6, 6)}  # fmt: skip
        model = _model(sm.QwenImage, cfg, seed)
        return Tiny(name, model, _cond(_text(1, 6, 32)), _cond(_text(2, 6, 32)), _wan_vae(seed + 1),
                    _latent_maker(16, 4, frames=1))  # fmt: skip
    if name == "hunyuan_video":
        cfg = dict(flux_like, image_model="hunyuan_video", in_channels=16, out_channels=16, vec_in_dim=32,
                   context_in_dim=32, theta=256, patch_size=[1, 2, 2], guidance_embed=True, byt5=False, meanflow=False)  # fmt: skip
        model = _model(sm.HunyuanVideo, cfg, seed)
        pooled = torch.randn((1, 32), generator=torch.Generator().manual_seed(3))
        return Tiny(name, model, _cond(_text(1, 6, 32), pooled_output=pooled, guidance=6.0),
                    _cond(_text(2, 6, 32), pooled_output=pooled, guidance=6.0), _hunyuan_video_vae(seed + 1),
                    _latent_maker(16, 4, frames=2), video=True)  # fmt: skip
    if name == "ltxv":  # 128-channel latents of the 32× LTXV VAE
        cfg = {"image_model": "ltxv", "in_channels": 128, "cross_attention_dim": 32, "attention_head_dim": 16,
               "num_attention_heads": 2, "caption_channels": 32, "num_layers": 1}  # fmt: skip
        model = _model(sm.LTXV, cfg, seed)
        mask = torch.ones((1, 6), dtype=torch.int64)  # the T5 token mask its text encoder returns
        return Tiny(name, model, _cond(_text(1, 6, 32), attention_mask=mask),
                    _cond(_text(2, 6, 32), attention_mask=mask), _ltxv_vae(seed + 1),
                    _latent_maker(128, 2, frames=2), video=True)  # fmt: skip
    if name == "sd3":  # SD3.5-style MMDiT: RMS q/k norm and an x-block self-attention layer (3.5 Medium)
        cfg = {"in_channels": 16, "out_channels": 16, "patch_size": 2, "depth": 1, "input_size": None,
               "adm_in_channels": 32, "num_patches": 256, "pos_embed_max_size": 16, "qk_norm": "rms",
               "x_block_self_attn_layers": [0], "pos_embed_scaling_factor": None,
               "context_embedder_config": {"target": "torch.nn.Linear", "params": {"in_features": 32, "out_features": 64}}}  # fmt: skip
        model = _model(sm.SD3, cfg, seed)
        pos_embed = model.model.diffusion_model.pos_embed  # a buffer real files hold, allocated empty
        pos_embed.copy_(0.02 * torch.randn(pos_embed.shape, generator=torch.Generator().manual_seed(seed + 7)))
        pooled = torch.randn((1, 32), generator=torch.Generator().manual_seed(3))
        return Tiny(name, model, _cond(_text(1, 6, 32), pooled_output=pooled),
                    _cond(_text(2, 6, 32), pooled_output=pooled * 0), _kl_vae(16, seed + 1), _latent_maker(16, 8))  # fmt: skip
    if name == "chroma":
        cfg = dict(flux_like, image_model="chroma", in_channels=64, out_channels=64, context_in_dim=32, theta=10000,
                   patch_size=2, in_dim=64, out_dim=64, hidden_dim=32, n_layers=1)  # fmt: skip
        model = _model(sm.Chroma, cfg, seed)  # its T5 encoder gives no pooled vector: pooled_output is None
        return Tiny(name, model, _cond(_text(1, 6, 32), pooled_output=None),
                    _cond(_text(2, 6, 32), pooled_output=None), _kl_vae(16, seed + 1),
                    _latent_maker(16, 8))  # fmt: skip
    if name == "hidream":  # T5 context, pooled CLIP, and per-layer Llama hidden states ([1, layers, tokens, width])
        cfg = {"image_model": "hidream", "patch_size": 2, "in_channels": 16, "out_channels": 16, "num_layers": 1,
               "num_single_layers": 1, "attention_head_dim": 16, "num_attention_heads": 2, "caption_channels": [32, 24],
               "text_emb_dim": 32, "num_routed_experts": 2, "num_activated_experts": 1, "axes_dims_rope": [8, 4, 4],
               "max_resolution": [32, 32], "llama_layers": [0, 1]}  # fmt: skip
        model = _model(sm.HiDream, cfg, seed)
        pooled = torch.randn((1, 32), generator=torch.Generator().manual_seed(3))
        llama = torch.randn((1, 2, 5, 24), generator=torch.Generator().manual_seed(4))
        return Tiny(name, model, _cond(_text(1, 6, 32), pooled_output=pooled, conditioning_llama3=llama),
                    _cond(_text(2, 6, 32), pooled_output=pooled, conditioning_llama3=llama * 0), _kl_vae(16, seed + 1),
                    _latent_maker(16, 8))  # fmt: skip
    raise ValueError(f"unknown tiny architecture {name!r}; one of {ARCHITECTURES}")


#: Text-conditioning sizes the tiny models expect: (tokens, width, pooled width or None).
TEXT_SHAPES = {
    "sd15": (7, 64, None),
    "sd21v": (7, 64, None),
    "sdxl": (7, 64, 1280),
    "flux": (5, 32, 32),
    "wan21": (6, 32, None),
}


class TinyClip:
    """Stands in for a CLIP/T5 text encoder: CLIPTextEncode's two calls, deterministic in the text."""

    def __init__(self, arch: str) -> None:
        self.arch = arch

    def tokenize(self, text: str, **kwargs: object) -> dict:
        return {"text": str(text)}

    def encode_from_tokens(self, tokens: dict, return_pooled: bool = False, return_dict: bool = False) -> object:
        import hashlib

        length, width, pooled_width = TEXT_SHAPES[self.arch]
        seed = int.from_bytes(hashlib.sha256(tokens["text"].encode()).digest()[:4], "little")
        g = torch.Generator().manual_seed(seed)
        cond = torch.randn((1, length, width), generator=g)
        pooled = torch.randn((1, pooled_width), generator=g) if pooled_width else None
        if return_dict:
            return {"cond": cond, "pooled_output": pooled} if pooled is not None else {"cond": cond}
        return (cond, pooled) if return_pooled else cond

    def encode_from_tokens_scheduled(self, tokens: dict, unprojected: bool = False, add_dict: dict | None = None,
                                     show_pbar: bool = True) -> list:  # fmt: skip
        out = self.encode_from_tokens(tokens, return_dict=True)
        cond = out.pop("cond")
        out.update(add_dict or {})
        return [[cond, out]]

    def clone(self) -> TinyClip:
        return TinyClip(self.arch)
