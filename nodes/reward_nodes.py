"""Reward nodes: load a reward model, combine rewards, score an IMAGE batch (the "Reward Scorer").

All three share one socket type, ``EVOSEARCH_REWARD``: any object following :mod:`rewards.protocol`. The search
sampler nodes take it too and call :func:`nodes.reward_runtime.score_images`.
"""

from __future__ import annotations

import logging

import torch
from comfy_api.latest import io, ui

from ..rewards import AGGREGATES, FRAME_POLICIES, NORMALISATIONS, CombinedReward, FrameSampled, get_kind, load_reward
from ..rewards.protocol import reward_traits
from ..rewards.registry import reward_kinds
from ..rewards.vqa_questions import DEFAULT_TEMPLATE as VQA_TEMPLATE
from ..rewards.vqa_questions import SPLIT_MODES as VQA_SPLIT_MODES
from . import reward_runtime as rt
from .types import REWARD

__all__ = ["NODES", "Reward", "EvoSearchLoadReward", "EvoSearchCombineRewards", "EvoSearchScoreImages"]

log = logging.getLogger("evosearch")

CATEGORY = "sampling/evosearch/rewards"
Reward = io.Custom(REWARD)
DTYPES = ["auto", "fp32", "bf16", "fp16"]


def _kind_help() -> str:
    return "; ".join(f"{name}: {get_kind(name).description}" for name in reward_kinds())


def _with_node(error: Exception, node: str) -> Exception:
    """The same kind of error (missing file, bad value, missing package) with the node's name in front."""
    for kind in (FileNotFoundError, ImportError, TypeError):
        if isinstance(error, kind):
            return kind(f"{node}: {error}")
    return ValueError(f"{node}: {error}")


class EvoSearchLoadReward(io.ComfyNode):
    """Load a reward model from models/rewards/<kind>/ (never downloads)."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        clip_choices = rt.model_choices(["clipscore"])
        return io.Schema(
            node_id="EvoSearchLoadReward",
            display_name="EvoSearch Load Reward",
            category=CATEGORY,
            description=(
                "Loads a reward model that scores images (or videos) against a prompt: ImageReward, CLIPScore, HPS "
                "v2.1, PickScore, LAION aesthetic, VideoReward, or the weight-free colourfulness. Weights are read "
                "from models/rewards/<kind>/ (or any 'rewards:' path in extra_model_paths.yaml) and nothing is "
                "downloaded; a missing file gives an error naming the expected file and where to get it. The model "
                "is managed by ComfyUI like any other (moved to the GPU only while scoring). Image rewards score "
                "videos by sampling frames."
            ),
            inputs=[
                io.Combo.Input(
                    "kind", options=reward_kinds(), default="imagereward", tooltip="Which reward. " + _kind_help()
                ),
                io.Combo.Input(
                    "model",
                    options=rt.model_choices(),
                    default=rt.AUTO,
                    tooltip="Weights inside models/rewards/<kind>/. 'auto' takes the official file name "
                    "(e.g. imagereward/ImageReward.pt, hpsv2/HPS_v2.1_compressed.pt). The official names are "
                    "listed even when not installed; running with a missing one says where to get it.",
                ),
                io.Combo.Input(
                    "dtype",
                    options=DTYPES,
                    default="auto",
                    tooltip="Compute precision. auto: bf16 (or fp16) on a GPU that supports it, fp32 on the "
                    "CPU. bf16 changes scores by about 1e-2 relative, rarely the ranking.",
                ),
                io.String.Input(
                    "prompt",
                    multiline=True,
                    default="",
                    tooltip="The text the reward scores against (use the same prompt as the generation). "
                    "Ignored by aesthetic and colorfulness. The search nodes read it from here "
                    "because they only see CONDITIONING.",
                ),
                io.Combo.Input(
                    "clip_model",
                    options=clip_choices,
                    default=rt.AUTO,
                    optional=True,
                    tooltip="aesthetic only: the CLIP ViT-L/14 from models/rewards/clipscore/ that feeds "
                    "the aesthetic head (shared with a CLIPScore reward on the same file).",
                ),
                io.Int.Input(
                    "video_frames",
                    default=8,
                    min=0,
                    max=256,
                    optional=True,
                    tooltip="Videos with an image reward: frames scored per video, spread uniformly (0 = "
                    "every frame). Ignored for stills and for VideoReward.",
                ),
                io.Combo.Input(
                    "frame_policy",
                    options=list(FRAME_POLICIES),
                    default="uniform",
                    optional=True,
                    tooltip="Videos with an image reward: 'uniform' takes video_frames evenly spaced "
                    "frames; 'first_middle_last' takes three.",
                ),
                io.Combo.Input(
                    "video_aggregate",
                    options=list(AGGREGATES),
                    default="mean",
                    optional=True,
                    tooltip="Videos with an image reward: the mean frame score, or mean − λ·std, which also "
                    "rewards consistency across frames.",
                ),
                io.Float.Input(
                    "std_weight",
                    default=0.5,
                    min=0.0,
                    max=10.0,
                    step=0.05,
                    optional=True,
                    tooltip="λ of mean − λ·std (video_aggregate = mean_minus_std).",
                ),
                io.Float.Input(
                    "source_fps",
                    default=16.0,
                    min=1.0,
                    max=120.0,
                    step=1.0,
                    optional=True,
                    tooltip="VideoReward only: frame rate of the scored videos (Wan 2.1: 16); VideoReward "
                    "samples them at 2 fps as it was trained.",
                ),
                io.String.Input(
                    "vqa_template",
                    default=VQA_TEMPLATE,
                    optional=True,
                    tooltip="vqascore only: the yes/no question asked about the image; {} (or {prompt}) is replaced "
                    'by the prompt. Default: t2v_metrics\' VQAScore template. Score = log P("Yes").',
                ),
                io.String.Input(
                    "vqa_questions",
                    multiline=True,
                    default="",
                    optional=True,
                    tooltip="vqascore only: optional parts that must all hold, one per line, instead of the prompt "
                    "(a line ending in ? is asked as written, others go into the template). The score is "
                    'the sum of their log P("Yes"), the log of the product. Empty = ask about the prompt.',
                ),
                io.Combo.Input(
                    "vqa_split",
                    options=list(VQA_SPLIT_MODES),
                    default="none",
                    optional=True,
                    tooltip="vqascore only: 'conjunctions' asks one question per part of the prompt split at "
                    "commas and 'and' (\"a red circle and a blue square\" → two questions that must both "
                    "hold); 'none' asks about the whole prompt.",
                ),
            ],
            outputs=[
                Reward.Output(
                    "reward",
                    display_name="reward",
                    tooltip="The reward, for EvoSearch samplers, Combine Rewards or Score Images.",
                )
            ],
        )

    @classmethod
    def execute(
        cls,
        kind: str,
        model: str,
        dtype: str,
        prompt: str,
        clip_model: str = rt.AUTO,
        video_frames: int = 8,
        frame_policy: str = "uniform",
        video_aggregate: str = "mean",
        std_weight: float = 0.5,
        source_fps: float = 16.0,
        vqa_template: str = VQA_TEMPLATE,
        vqa_questions: str = "",
        vqa_split: str = "none",
    ) -> io.NodeOutput:
        node = "EvoSearch Load Reward"
        name = rt.resolve_model(kind, model, node)
        options: dict = {}
        if kind == "aesthetic":
            options["backbone"] = rt.resolve_model("clipscore", clip_model, node + " (clip_model)")
        if kind == "videoreward":
            options["source_fps"] = source_fps
        if kind == "vqascore":
            options.update(template=vqa_template or VQA_TEMPLATE, questions=vqa_questions, split=vqa_split)
        try:
            reward = load_reward(
                kind, name, roots=rt.reward_roots(), dtype=rt.resolve_dtype(dtype), prompt=prompt or None, **options
            )
        except (OSError, ValueError, ImportError) as e:
            raise _with_node(e, node) from e
        if not reward_traits(reward).accepts_video:
            reward = FrameSampled(
                reward, frames=video_frames, policy=frame_policy, aggregate=video_aggregate, lam=std_weight
            )
        return io.NodeOutput(reward)


class EvoSearchCombineRewards(io.ComfyNode):
    """Weighted combination of up to four rewards, with an optional floor on a guard reward."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        inputs: list = []
        for i in range(1, 5):
            inputs.append(
                Reward.Input(f"reward_{i}", optional=i > 1, tooltip=f"Reward {i}" + (" (optional)." if i > 1 else "."))
            )
            inputs.append(
                io.Float.Input(
                    f"weight_{i}",
                    default=1.0,
                    min=-100.0,
                    max=100.0,
                    step=0.05,
                    tooltip=f"Weight of reward {i}; weights are divided by the sum of their "
                    "absolute values. Negative weights penalise.",
                )
            )
        inputs += [
            io.Combo.Input(
                "normalization",
                options=list(NORMALISATIONS),
                default="raw",
                tooltip="How scores of different scales are made comparable before weighting. raw: as "
                "returned (batch-invariant; the right choice inside a search, which compares "
                "scores across batches). rank: rank within the scored batch, 0..1 (average rank "
                "across rewards). zscore: standardised within the scored batch. rank and zscore "
                "only compare images scored together: use them with Score Images.",
            ),
            Reward.Input(
                "guard",
                optional=True,
                tooltip="Optional guard against reward hacking, e.g. CLIPScore so images stay on-prompt "
                "while an aesthetic reward is maximised.",
            ),
            io.Float.Input(
                "guard_floor",
                default=0.2,
                min=-1000.0,
                max=1000.0,
                step=0.01,
                tooltip="Samples whose guard score is below this rank below every sample that passes "
                "(penalty 1000 × (1 + shortfall)). CLIPScore: 0.2–0.25 is a typical floor.",
            ),
            io.String.Input(
                "prompt",
                default="",
                optional=True,
                tooltip="Prompt for every member; empty = the first member's prompt.",
            ),
        ]
        return io.Schema(
            node_id="EvoSearchCombineRewards",
            display_name="EvoSearch Combine Rewards",
            category=CATEGORY,
            description=(
                "Combines rewards into one: Σ wᵢ·normalise(rewardᵢ) with rank, z-score or raw normalisation, plus an "
                "optional guard reward with a floor that demotes samples falling below it (a guard against reward "
                "hacking such as over-saturated, off-prompt images). Members sharing a CLIP model (CLIPScore and "
                "aesthetic) share its image forward."
            ),
            inputs=inputs,
            outputs=[Reward.Output("reward", display_name="reward", tooltip="The combined reward.")],
        )

    @classmethod
    def execute(
        cls,
        reward_1,
        weight_1: float,
        weight_2: float,
        weight_3: float,
        weight_4: float,
        normalization: str,
        guard_floor: float,
        reward_2=None,
        reward_3=None,
        reward_4=None,
        guard=None,
        prompt: str = "",
    ) -> io.NodeOutput:
        pairs = [
            (r, w)
            for r, w in ((reward_1, weight_1), (reward_2, weight_2), (reward_3, weight_3), (reward_4, weight_4))
            if r is not None
        ]
        try:
            combined = CombinedReward(
                [r for r, _ in pairs],
                [w for _, w in pairs],
                normalization,
                guard=guard,
                floor=guard_floor if guard is not None else None,
                prompt=prompt or None,
            )
        except ValueError as e:
            raise ValueError(f"EvoSearch Combine Rewards: {e}") from e
        return io.NodeOutput(combined)


def _as_videos(images: torch.Tensor, video_length: int) -> torch.Tensor:
    if video_length <= 0:
        return images
    if images.shape[0] % video_length:
        raise ValueError(
            f"EvoSearch Score Images: {images.shape[0]} frames are not a whole number of videos of video_length="
            f"{video_length}; set video_length to the frames per video (0 = score stills)."
        )
    return images.reshape(images.shape[0] // video_length, video_length, *images.shape[1:])


def _table(scores: torch.Tensor, order: torch.Tensor, name: str, top_k: int) -> str:
    lines = [f"reward: {name}", f"{'rank':>4}  {'index':>5}  {'score':>10}"]
    for rank, i in enumerate(order.tolist(), start=1):
        mark = " *" if rank <= top_k else ""
        lines.append(f"{rank:>4}  {i:>5}  {scores[i].item():>10.4f}{mark}")
    finite = scores[torch.isfinite(scores)]
    if finite.numel():
        lines.append(
            f"mean {finite.mean().item():.4f}  std {finite.std(unbiased=False).item():.4f}  "
            f"best {finite.max().item():.4f}  worst {finite.min().item():.4f}"
        )
    return "\n".join(lines)


class EvoSearchScoreImages(io.ComfyNode):
    """The Reward Scorer: score a batch, sort it best first, keep the top k."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EvoSearchScoreImages",
            display_name="EvoSearch Score Images (Reward Scorer)",
            category=CATEGORY,
            description=(
                "Scores every image of an IMAGE batch with a reward in one forward pass and returns the scores (in "
                "input order), the batch sorted best first, the top k, and a text table. Use it for Best-of-N by hand, "
                "or to check a search's winner with a held-out reward (one the search did not optimise)."
            ),
            inputs=[
                io.Image.Input("images", tooltip="The images to score (a batch)."),
                Reward.Input("reward", tooltip="The reward (EvoSearch Load Reward or Combine Rewards)."),
                io.Int.Input(
                    "top_k",
                    default=4,
                    min=0,
                    max=4096,
                    tooltip="How many of the best images go to the top_k output (0 = all).",
                ),
                io.String.Input(
                    "prompt",
                    default="",
                    optional=True,
                    multiline=True,
                    tooltip="Prompt to score against; empty = the reward's own prompt.",
                ),
                io.Int.Input(
                    "video_length",
                    default=0,
                    min=0,
                    max=4096,
                    optional=True,
                    tooltip="0: the batch holds stills. N > 0: the batch holds videos of N frames each, "
                    "back to back (as VAE Decode outputs them), scored per video.",
                ),
            ],
            outputs=[
                io.Float.Output(
                    "scores",
                    display_name="scores",
                    is_output_list=True,
                    tooltip="One score per image (per video), input order.",
                ),
                io.Image.Output(
                    "sorted_images",
                    display_name="sorted_images",
                    tooltip="The batch sorted best first (whole videos stay together).",
                ),
                io.Image.Output("top_images", display_name="top_images", tooltip="The top_k best images (or videos)."),
                io.String.Output("table", display_name="table", tooltip="Rank, input index and score, best first."),
            ],
            is_output_node=True,
        )

    @classmethod
    def execute(
        cls, images: torch.Tensor, reward, top_k: int, prompt: str = "", video_length: int = 0
    ) -> io.NodeOutput:
        batch = _as_videos(images, video_length)
        traits = reward_traits(reward)
        if batch.dim() == 5 and not traits.accepts_video:
            raise ValueError(
                "EvoSearch Score Images: this reward scores stills only; load it with EvoSearch Load "
                "Reward (which adds frame sampling) or set video_length to 0."
            )
        n = batch.shape[0]
        prompts = [prompt] * n if prompt else None
        scores = rt.score_images(reward, batch, prompts)
        key = torch.nan_to_num(scores, nan=float("-inf"))
        order = torch.argsort(key, descending=True, stable=True)
        k = n if top_k <= 0 else min(top_k, n)
        ranked = batch[order.to(batch.device)]
        flat = (lambda x: x.reshape(-1, *x.shape[2:])) if batch.dim() == 5 else (lambda x: x)
        table = _table(scores, order, traits.name, k)
        log.info("EvoSearch Score Images:\n%s", table)
        return io.NodeOutput(scores.tolist(), flat(ranked), flat(ranked[:k]), table, ui=ui.PreviewText(table))


NODES: list[type[io.ComfyNode]] = [EvoSearchLoadReward, EvoSearchCombineRewards, EvoSearchScoreImages]
