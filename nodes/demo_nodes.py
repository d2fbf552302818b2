"""EvoSearch Demo Model: a tiny digit diffusion model, its VAE and a digit-classifier reward, all shipped, no downloads."""

from __future__ import annotations

import logging

from comfy_api.latest import io

from ..rewards.digits import REWARD_KINDS, DigitReward
from . import demo_model
from .reward_nodes import Reward

logger = logging.getLogger(__name__)

__all__ = ["NODES", "EvoSearchDemoModel"]


_KIND_HELP = (
    "digit: reward = log p(target digit) from the demo classifier (0 is best). "
    "digit_bold / digit_thin: the same, minus a penalty when the image's ink (stroke thickness) leaves the top / "
    "bottom decile of that digit's training images; the unconditional model rarely draws these, so search has more "
    "room to help."
)


class EvoSearchDemoModel(io.ComfyNode):
    """Loads the shipped demo: MODEL, VAE, CONDITIONING, an empty LATENT and the digit reward."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EvoSearchDemoModel",
            display_name="EvoSearch Demo Model",
            category="sampling/evosearch/demo",
            description=(
                "A complete, offline demo for EvoSearch that runs on a CPU in seconds. Loads a tiny SD1.5-architecture "
                "UNet (1.7 M parameters, ε-prediction) and a tiny VAE trained in this pack on scikit-learn's "
                "handwritten digits (32×32 images, 8×8×4 latents), together with a small CNN classifier trained on the "
                "same data as the reward. The model is unconditional (positive and negative are the same empty "
                "conditioning, so use cfg 1); the reward decides which digit you get. Recommended: 20 steps of "
                "dpmpp_2m_sde with the karras scheduler (about 3 in 4 samples are clear digits), or euler_ancestral with "
                "the beta scheduler for a single-step sampler. Use the LATENT output, not EmptyLatentImage: this VAE "
                "compresses 4×, not 8×."
            ),
            inputs=[
                io.Int.Input(
                    "batch_size",
                    default=1,
                    min=1,
                    max=4096,
                    tooltip="Images in the empty LATENT output (the population of a plain KSampler run). The "
                    "EvoSearch nodes size their own population from the schedule and only use the latent's shape.",
                ),
                io.Int.Input(
                    "target_digit",
                    default=3,
                    min=0,
                    max=9,
                    tooltip="The digit (0-9) the reward asks for.",
                ),
                io.Combo.Input(
                    "reward_kind",
                    options=list(REWARD_KINDS),
                    default="digit",
                    tooltip=_KIND_HELP,
                ),
            ],
            outputs=[
                io.Model.Output(tooltip="The demo UNet (SD1.5 architecture, ε-prediction) on ComfyUI's devices."),
                io.Vae.Output(tooltip="The demo VAE: 8×8×4 latents ↔ 32×32 RGB images."),
                io.Conditioning.Output(display_name="positive", tooltip="Empty conditioning (unconditional model)."),
                io.Conditioning.Output(display_name="negative", tooltip="Same as positive: use cfg = 1."),
                io.Latent.Output(tooltip="An empty latent batch of batch_size 32×32 images."),
                Reward.Output(
                    display_name="reward",
                    tooltip="The digit-classifier reward (higher is better) for the EvoSearch nodes.",
                ),
            ],
        )

    @classmethod
    def execute(cls, batch_size: int = 1, target_digit: int = 3, reward_kind: str = "digit") -> io.NodeOutput:
        name = "EvoSearch Demo Model"
        if reward_kind not in REWARD_KINDS:
            raise ValueError(f"{name}: reward_kind must be one of {', '.join(REWARD_KINDS)}, got {reward_kind!r}")
        if not 0 <= int(target_digit) <= 9:
            raise ValueError(f"{name}: target_digit must be 0..9, got {target_digit!r}")
        if int(batch_size) < 1:
            raise ValueError(f"{name}: batch_size must be at least 1, got {batch_size!r}")
        try:
            bundle = demo_model.load_demo()
            reward = DigitReward.load(target=int(target_digit), kind=reward_kind)
        except (FileNotFoundError, ValueError) as e:
            raise type(e)(f"{name}: {e}") from e
        logger.info("%s: loaded the demo model with reward %r", name, reward)
        return io.NodeOutput(
            bundle.model, bundle.vae, bundle.positive, bundle.negative, bundle.empty_latent(int(batch_size)), reward
        )


NODES: list[type[io.ComfyNode]] = [EvoSearchDemoModel]
