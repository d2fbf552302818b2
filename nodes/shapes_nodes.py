"""EvoSearch Shapes Model: a tiny text-to-image model of shape scenes (UNet, CLIP, VAE), shipped, no downloads."""

from __future__ import annotations

import logging

from comfy_api.latest import io

from ..rewards.shapes.grammar import accepted_forms
from . import shapes_model

logger = logging.getLogger(__name__)

__all__ = ["NODES", "EvoSearchShapesModel"]

NAME = "EvoSearch Shapes Model"


class EvoSearchShapesModel(io.ComfyNode):
    """Loads the shipped shapes model: MODEL, CLIP (for CLIP Text Encode), VAE and an empty LATENT."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EvoSearchShapesModel",
            display_name=NAME,
            category="sampling/evosearch/demo",
            description=(
                "An offline text-to-image demo that runs on a CPU: a tiny SD1.5-architecture UNet, a small CLIP text "
                "encoder (ComfyUI's SD1 CLIP tokenizer) and a small VAE, trained in this pack on procedurally "
                "rendered 32×32 scenes of circles, squares and triangles in red, green, blue and yellow. Type the "
                "prompt in a CLIP Text Encode node (connect this node's CLIP), e.g. 'a red circle', 'three blue "
                "squares', 'a yellow circle and a blue square', 'a green triangle left of a yellow circle'; the "
                "negative is a CLIP Text Encode of the empty prompt. Recommended: KSampler, 20 steps, dpmpp_2m_sde, "
                "karras, cfg 4. Like real models on GenEval, it draws single objects mostly right and counting, "
                "positions and colour attribution often wrong, so the 'shapes' reward (EvoSearch Load Reward, same "
                "prompt) gives search room to help. Use this node's LATENT, not EmptyLatentImage: the VAE "
                f"compresses 4×, not 8×. Grammar: {accepted_forms()}."
            ),
            inputs=[
                io.Int.Input(
                    "batch_size",
                    display_name="batch size",
                    default=1,
                    min=1,
                    max=4096,
                    tooltip="Images in the empty LATENT output (32×32 each, 8×8×4 latents). The EvoSearch nodes size "
                    "their own population from the schedule and only use the latent's shape.",
                ),
            ],
            outputs=[
                io.Model.Output(
                    display_name="MODEL",
                    tooltip="The shapes UNet (SD1.5 architecture, ε-prediction, 1.7 M parameters) on ComfyUI's "
                    "devices.",
                ),
                io.Clip.Output(
                    display_name="CLIP",
                    tooltip="The shapes text encoder (SD1 CLIP text model, 2 layers, width 64) for CLIP Text Encode; "
                    "encode the empty prompt for the negative.",
                ),
                io.Vae.Output(display_name="VAE", tooltip="The shapes VAE: 8×8×4 latents ↔ 32×32 RGB images."),
                io.Latent.Output(
                    display_name="LATENT", tooltip="An empty latent batch of batch_size 32×32 images (8×8×4)."
                ),
            ],
        )

    @classmethod
    def execute(cls, batch_size: int = 1) -> io.NodeOutput:
        if int(batch_size) < 1:
            raise ValueError(f"{NAME}: batch_size must be at least 1, got {batch_size!r}")
        try:
            bundle = shapes_model.load_shapes()
        except (FileNotFoundError, ValueError) as e:
            raise type(e)(f"{NAME}: {e}") from e
        logger.info("%s: loaded the shapes model", NAME)
        return io.NodeOutput(bundle.model, bundle.clip, bundle.vae, bundle.empty_latent(int(batch_size)))


NODES: list[type[io.ComfyNode]] = [EvoSearchShapesModel]
