"""The questions VQAScore asks about an image: the template, explicit question lists, and splitting a prompt.

VQAScore (Lin et al. 2024, "Evaluating Text-to-Visual Generation with Image-to-Text Generation", arXiv 2404.01291)
turns a prompt into one yes/no question with a template; t2v_metrics' default is :data:`DEFAULT_TEMPLATE`, whose
``{}`` slot takes the prompt. A compositional prompt can be checked part by part instead (the paper's discussion of
compositional prompts; DSG/TIFA-style decompositions), where every part must hold:

* ``questions``: an explicit list, one per line. A line ending in ``?`` is asked as written; any other line is a
  statement put into the template. Explicit questions replace the prompt's own question.
* ``split="conjunctions"``: the prompt is cut at commas, semicolons and the word "and" ("a red circle and a blue
  square" → "a red circle", "a blue square"); a piece of one word is joined back to its neighbour, so "black and white
  photo of a cat" stays whole. A heuristic: use explicit questions where it cuts badly.

The reward adds the log-probabilities of "Yes" over the questions (the log of their product), so one failed part
pulls the whole score down: "all must hold".
"""

from __future__ import annotations

import re

__all__ = ["DEFAULT_TEMPLATE", "DEFAULT_ANSWER", "SPLIT_MODES", "check_template", "split_conjunctions", "questions_for"]

#: t2v_metrics' question template for its Qwen2-VL / Qwen2.5-VL VQAScore models (the paper's "Does this figure show
#: '{text}'? Please answer yes or no.", capitalised as t2v_metrics asks it).
DEFAULT_TEMPLATE = 'Does this figure show "{}"? Please answer Yes or No.'
#: The answer whose probability is the score.
DEFAULT_ANSWER = "Yes"
SPLIT_MODES = ("none", "conjunctions")

_SPLIT = re.compile(r"\s*(?:[,;]\s*(?:and\s+)?|\band\b)\s*", re.IGNORECASE)


def check_template(template: str) -> str:
    """The template with its prompt slot as ``{}`` (``{prompt}`` is accepted too); exactly one slot is required."""
    text = str(template).replace("{prompt}", "{}")
    if text.count("{}") != 1:
        raise ValueError(
            f"VQAScore: the question template must contain the prompt slot {{}} exactly once, got {template!r} "
            f"(default: {DEFAULT_TEMPLATE!r})"
        )
    return text


def split_conjunctions(prompt: str) -> list[str]:
    """Cut ``prompt`` into its conjuncts (see the module docstring); one piece when there is nothing to cut."""
    pieces = [p.strip(" .") for p in _SPLIT.split(prompt.strip()) if p.strip(" .")]
    merged: list[str] = []
    for piece in pieces:
        if merged and (len(piece.split()) < 2 or len(merged[-1].split()) < 2):
            merged[-1] = f"{merged[-1]} and {piece}"
        else:
            merged.append(piece)
    return merged or [prompt.strip()]


def questions_for(
    prompt: str, *, template: str = DEFAULT_TEMPLATE, questions: str = "", split: str = "none"
) -> list[str]:
    """The questions asked for ``prompt``: explicit ``questions`` lines if any, else the prompt (split or whole) put
    into ``template``."""
    template = check_template(template)
    if split not in SPLIT_MODES:
        raise ValueError(f"VQAScore: split must be one of {SPLIT_MODES}, got {split!r}")
    lines = [line.strip() for line in str(questions or "").splitlines() if line.strip()]
    if lines:
        return [line if line.endswith("?") else template.replace("{}", line) for line in lines]
    parts = split_conjunctions(prompt) if split == "conjunctions" else [prompt.strip()]
    return [template.replace("{}", part) for part in parts]
