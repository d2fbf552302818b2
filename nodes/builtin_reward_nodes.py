"""A weight-free reward node, so the sampler nodes work (and can be tested) without any reward model installed."""

from __future__ import annotations

from comfy_api.latest import io

from ..rewards import Colorfulness, ImageSimilarity
from .search_sampler import NodeError
from .types import REWARD


class EvoSearchSimpleReward(io.ComfyNode):
    """Colourfulness, or similarity to a target image: cheap rewards that need no downloads."""

    DISPLAY = "EvoSearch Simple Reward"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EvoSearchSimpleReward",
            display_name=cls.DISPLAY,
            category="sampling/evosearch/rewards",
            description=(
                "Rewards that need no model files: 'colorfulness' (Hasler & Süsstrunk 2003; higher = more colourful) "
                "or 'image_similarity' to a target IMAGE (−MSE or cosine). Handy for a first run, for tests, and as a "
                "guard term in EvoSearch Combine Rewards. Videos are scored as the mean over frames."
            ),
            inputs=[
                io.Combo.Input(
                    "kind",
                    options=["colorfulness", "image_similarity"],
                    default="colorfulness",
                    tooltip="colorfulness: no other input needed. image_similarity: needs 'target'.",
                ),
                io.Image.Input(
                    "target",
                    optional=True,
                    tooltip="image_similarity only: the image to resemble (the first of the batch is used).",
                ),  # fmt: skip
                io.Combo.Input(
                    "metric",
                    options=["mse", "cosine"],
                    default="mse",
                    tooltip="image_similarity only: −mean squared error, or cosine of centred pixels.",
                ),
            ],
            outputs=[io.Custom(REWARD).Output(display_name="reward")],
        )

    @classmethod
    def execute(cls, kind, metric, target=None) -> io.NodeOutput:
        if kind == "colorfulness":
            return io.NodeOutput(Colorfulness())
        if target is None:
            raise NodeError(
                cls.DISPLAY, "kind 'image_similarity' needs a target IMAGE; connect one or use colorfulness"
            )
        try:
            return io.NodeOutput(ImageSimilarity(target, metric=metric))
        except ValueError as e:
            raise NodeError(cls.DISPLAY, str(e)) from None


NODES = [EvoSearchSimpleReward]
