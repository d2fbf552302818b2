"""bench/results/scoring_vae.md is the rendering of the measurements in scoring_vae.json (nothing typed by hand)."""

from __future__ import annotations

import json
from pathlib import Path

from bench.scoring_vae import markdown

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results"


def test_results_markdown_renders_the_json():
    results = json.loads((RESULTS / "scoring_vae.json").read_text())
    assert {"timing", "ranking", "e2e"} <= results.keys()
    assert (RESULTS / "scoring_vae.md").read_text() == markdown(results) + "\n"


def test_every_e2e_cell_has_a_full_vae_twin():
    cells = json.loads((RESULTS / "scoring_vae.json").read_text())["e2e"]["cells"]
    keys = {(c["reward"], c["fitness"], c["budget"], c["scoring"]) for c in cells}
    for reward, fitness, budget, _ in keys:
        assert {(reward, fitness, budget, "full VAE"), (reward, fitness, budget, "scoring VAE")} <= keys
