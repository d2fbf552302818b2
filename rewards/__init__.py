"""Reward models for EvoSearch behind one protocol (:mod:`rewards.protocol`); no ComfyUI imports here.

Heavy backends (transformers, open_clip) are imported only when a reward that needs them is built.
"""

from .protocol import Reward, RewardTraits, check_images, check_scores, prompt_list, reward_traits
from .simple import Colorfulness, ImageSimilarity

__all__ = [
    "Colorfulness",
    "ImageSimilarity",
    "Reward",
    "RewardTraits",
    "check_images",
    "check_scores",
    "prompt_list",
    "reward_traits",
]
