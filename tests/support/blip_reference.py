"""An independent ImageReward forward written from the published BLIP architecture, on the official key names.

BLIP (Li et al. 2022; github.com/salesforce/BLIP ``models/vit.py`` and ``models/med.py``): a timm-style ViT
(pre-norm blocks, fused qkv, LayerNorm eps 1e-6, final norm) and a BERT encoder whose layers run self-attention,
cross-attention to every image token, then the feed-forward block (post-norm, LayerNorm eps 1e-12). ImageReward reads
the text encoder's [CLS] state through its MLP and normalises with the published mean/std. Nothing here uses
transformers, so agreement with :mod:`rewards.imagereward` checks the key mapping and the architecture.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

MEAN, STD = 0.16717362830052426, 1.0333394966054072


def _attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, mask: torch.Tensor | None = None):
    b, n, c = q.shape
    m = k.shape[1]
    d = c // heads
    q = q.view(b, n, heads, d).transpose(1, 2)
    k = k.view(b, m, heads, d).transpose(1, 2)
    v = v.view(b, m, heads, d).transpose(1, 2)
    scores = q @ k.transpose(-1, -2) / d**0.5
    if mask is not None:
        scores = scores + mask
    return (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, n, c)


def _lin(sd, key, x):
    return F.linear(x, sd[key + ".weight"], sd[key + ".bias"])


def _ln(sd, key, x, eps):
    return F.layer_norm(x, x.shape[-1:], sd[key + ".weight"], sd[key + ".bias"], eps)


def vision(sd: dict, pixels: torch.Tensor, heads: int) -> torch.Tensor:
    p = "blip.visual_encoder."
    w = sd[p + "patch_embed.proj.weight"]
    x = F.conv2d(pixels, w, sd[p + "patch_embed.proj.bias"], stride=w.shape[-1]).flatten(2).transpose(1, 2)
    x = torch.cat([sd[p + "cls_token"].expand(x.shape[0], -1, -1), x], dim=1) + sd[p + "pos_embed"]
    i = 0
    while f"{p}blocks.{i}.norm1.weight" in sd:
        b = f"{p}blocks.{i}."
        h = _ln(sd, b + "norm1", x, 1e-6)
        q, k, v = _lin(sd, b + "attn.qkv", h).chunk(3, dim=-1)
        x = x + _lin(sd, b + "attn.proj", _attention(q, k, v, heads))
        h = _ln(sd, b + "norm2", x, 1e-6)
        x = x + _lin(sd, b + "mlp.fc2", F.gelu(_lin(sd, b + "mlp.fc1", h)))
        i += 1
    return _ln(sd, p + "norm", x, 1e-6)


def text(sd: dict, ids: torch.Tensor, mask: torch.Tensor, image: torch.Tensor, heads: int) -> torch.Tensor:
    p = "blip.text_encoder."
    pos = torch.arange(ids.shape[1])
    x = sd[p + "embeddings.word_embeddings.weight"][ids] + sd[p + "embeddings.position_embeddings.weight"][pos]
    x = _ln(sd, p + "embeddings.LayerNorm", x, 1e-12)
    ext = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
    i = 0
    while f"{p}encoder.layer.{i}.attention.self.query.weight" in sd:
        b = f"{p}encoder.layer.{i}."
        for att, src, m in (("attention", None, ext), ("crossattention", image, None)):
            kv = x if src is None else src
            ctx = _attention(
                _lin(sd, b + att + ".self.query", x),
                _lin(sd, b + att + ".self.key", kv),
                _lin(sd, b + att + ".self.value", kv),
                heads,
                m,
            )
            x = _ln(sd, b + att + ".output.LayerNorm", x + _lin(sd, b + att + ".output.dense", ctx), 1e-12)
        h = F.gelu(_lin(sd, b + "intermediate.dense", x))
        x = _ln(sd, b + "output.LayerNorm", x + _lin(sd, b + "output.dense", h), 1e-12)
        i += 1
    return x


def imagereward(sd: dict, pixels: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor, v_heads: int, t_heads: int):
    """Normalised ImageReward scores ``[B]`` from the official state dict (fp32, no transformers)."""
    sd = {k: v.float() for k, v in sd.items()}
    image = vision(sd, pixels, v_heads)
    h = text(sd, ids, mask, image, t_heads)[:, 0]
    for i in (0, 2, 4, 6, 7):
        h = _lin(sd, f"mlp.layers.{i}", h)
    return (h.squeeze(-1) - MEAN) / STD
