"""bench.ranking: the rank-agreement statistics the scoring-VAE benchmark reports (torch only, no ComfyUI)."""

from __future__ import annotations

import math

import pytest
import torch

from bench.ranking import average_ranks, spearman, top1_hit, top_k_overlap


def test_average_ranks_share_ties():
    assert average_ranks(torch.tensor([3.0, 1.0, 3.0, 2.0])).tolist() == [2.5, 0.0, 2.5, 1.0]


def test_spearman_is_rank_based_and_signed():
    a = torch.tensor([0.1, 0.5, 0.2, 0.9, 0.3])
    assert spearman(a, a.exp() * 7 - 3) == pytest.approx(1.0)  # any increasing map: same ranks
    assert spearman(a, -a) == pytest.approx(-1.0)
    # textbook value: ranks (1,2,3,4,5) vs (2,1,4,3,5): 1 − 6·Σd²/(n(n²−1)) = 1 − 6·4/120 = 0.8
    assert spearman(torch.tensor([1.0, 2, 3, 4, 5]), torch.tensor([2.0, 1, 4, 3, 5])) == pytest.approx(0.8)
    assert math.isnan(spearman(torch.ones(4), torch.arange(4.0)))
    with pytest.raises(ValueError, match="same length"):
        spearman(torch.ones(3), torch.ones(4))


def test_top_k_overlap_and_top1():
    ref = torch.arange(10.0)  # best is index 9
    other = ref.clone()
    other[9], other[0] = -1.0, 100.0  # the other scoring prefers the reference's worst
    assert top_k_overlap(ref, ref, 0.3) == 1.0
    assert top_k_overlap(ref, other, 0.3) == pytest.approx(2 / 3)  # top-3 {9, 8, 7} vs {0, 8, 7}
    assert top1_hit(ref, ref) == (True, 0)
    assert top1_hit(ref, other) == (False, 9)  # its pick is the reference's rank-9 (last) candidate
