"""A test-only ComfyUI node pack: loaders that return tiny random-weight models instead of reading files.

Workflow tests swap the class of each model loader in an API graph for the matching loader here (keeping its
inputs, plus ``arch``), so the rest of the workflow runs unchanged through ComfyUI's real executor or server.
"""

from __future__ import annotations

import sys
from pathlib import Path

from comfy_api.latest import ComfyExtension, io

_TESTS = str(Path(__file__).resolve().parents[2])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)  # makes tests/support importable when ComfyUI loads this pack in a server

import torch  # noqa: E402

from support.tiny_models import TinyClip, build  # noqa: E402

torch.backends.mkldnn.enabled = False  # as in tests/support/comfy.py: no per-shape kernel compilation for tiny models

_CACHE: dict[str, object] = {}


def _bundle(arch: str, seed: int = 0):
    key = f"{arch}:{seed}"
    if key not in _CACHE:
        _CACHE[key] = build(arch, seed=seed)
    return _CACHE[key]


def _seed_of(name: str) -> int:
    """Different file names give different tiny weights (a workflow with two experts gets two models)."""
    import hashlib

    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:2], "little") if name else 0


def _any(name: str) -> io.String.Input:
    return io.String.Input(name, optional=True, default="", tooltip=f"accepted and ignored ({name} of the real loader)")


class TinyCheckpointLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(node_id="EvoSearchTestCheckpointLoader", category="_for_testing",
                         inputs=[io.String.Input("arch"), _any("ckpt_name")],
                         outputs=[io.Model.Output(), io.Clip.Output(), io.Vae.Output()])  # fmt: skip

    @classmethod
    def execute(cls, arch, ckpt_name=""):
        b = _bundle(arch)
        return io.NodeOutput(b.model, TinyClip(arch), b.vae)


class TinyUNETLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(node_id="EvoSearchTestUNETLoader", category="_for_testing",
                         inputs=[io.String.Input("arch"), _any("unet_name"), _any("weight_dtype")],
                         outputs=[io.Model.Output()])  # fmt: skip

    @classmethod
    def execute(cls, arch, unet_name="", weight_dtype=""):
        return io.NodeOutput(_bundle(arch, _seed_of(unet_name)).model)


class TinyCLIPLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(node_id="EvoSearchTestCLIPLoader", category="_for_testing",
                         inputs=[io.String.Input("arch"), _any("clip_name"), _any("clip_name1"), _any("clip_name2"),
                                 _any("type"), _any("device")],
                         outputs=[io.Clip.Output()])  # fmt: skip

    @classmethod
    def execute(cls, arch, **ignored):
        return io.NodeOutput(TinyClip(arch))


class TinyVAELoader(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="EvoSearchTestVAELoader",
            category="_for_testing",
            inputs=[io.String.Input("arch"), _any("vae_name")],
            outputs=[io.Vae.Output()],
        )

    @classmethod
    def execute(cls, arch, vae_name=""):
        return io.NodeOutput(_bundle(arch).vae)


class TinyReward:
    """Weight-free stand-in for a loaded reward model: saturation, for stills and videos alike."""

    accepts_video = True

    def __init__(self, prompt: str) -> None:
        self.prompt = prompt

    def score(self, images, prompts):  # noqa: ANN001 - the reward protocol
        frames = images.reshape(images.shape[0], -1, 3)
        return (frames.max(dim=-1).values - frames.min(dim=-1).values).mean(dim=1)


class TinyRewardLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(node_id="EvoSearchTestRewardLoader", category="_for_testing",
                         inputs=[io.String.Input("arch"), _any("kind"), _any("model"), _any("dtype"), _any("prompt"),
                                 _any("clip_model"), io.Int.Input("video_frames", optional=True, default=8),
                                 _any("frame_policy"), _any("video_aggregate"),
                                 io.Float.Input("std_weight", optional=True, default=0.5),
                                 io.Float.Input("source_fps", optional=True, default=16.0)],
                         outputs=[io.Custom("EVOSEARCH_REWARD").Output()])  # fmt: skip

    @classmethod
    def execute(cls, arch, prompt="", **ignored):
        return io.NodeOutput(TinyReward(prompt))


class TinyPack(ComfyExtension):
    async def get_node_list(self):
        return [TinyCheckpointLoader, TinyUNETLoader, TinyCLIPLoader, TinyVAELoader, TinyRewardLoader]


async def comfy_entrypoint():
    return TinyPack()
