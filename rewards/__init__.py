"""Reward models for EvoSearch behind one protocol (:mod:`rewards.protocol`); no ComfyUI imports here.

Heavy backends (transformers, open_clip) are imported only when a reward that needs them is built.

* :func:`load_reward` / :func:`reward_kinds` / :func:`get_kind` — the registry of reward kinds (:mod:`.registry`):
  ImageReward, CLIPScore, HPSv2.1, PickScore, LAION aesthetic, VideoReward, Colorfulness, VQAScore, HPSv3 and the
  SigLIP aesthetic predictor v2.5.
* :class:`FrameSampled` — any image reward as a video reward; :class:`CombinedReward` — weighted combinations.
* :class:`Colorfulness`, :class:`ImageSimilarity` — cheap rewards without weights.
"""

from .combine import NORMALISATIONS, CombinedReward
from .errors import BadRewardFile, MissingRewardFile, RewardFileError
from .protocol import Reward, RewardTraits, check_images, check_scores, prompt_list, reward_traits
from .registry import RewardKind, find_weights, get_kind, list_weights, load_reward, register_kind, reward_kinds
from .simple import Colorfulness, ImageSimilarity
from .video import AGGREGATES, FRAME_POLICIES, FrameSampled

__all__ = [
    "AGGREGATES",
    "BadRewardFile",
    "Colorfulness",
    "CombinedReward",
    "FRAME_POLICIES",
    "FrameSampled",
    "ImageSimilarity",
    "MissingRewardFile",
    "NORMALISATIONS",
    "Reward",
    "RewardFileError",
    "RewardKind",
    "RewardTraits",
    "check_images",
    "check_scores",
    "find_weights",
    "get_kind",
    "list_weights",
    "load_reward",
    "prompt_list",
    "register_kind",
    "reward_kinds",
    "reward_traits",
]
