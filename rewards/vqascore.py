"""VQAScore (Lin et al. 2024, "Evaluating Text-to-Visual Generation with Image-to-Text Generation", arXiv 2404.01291)
on a Qwen2-VL or Qwen2.5-VL instruct checkpoint, rebuilt on transformers 5.

VQAScore asks a vision-language model a yes/no question built from the prompt and reads the probability of the
answer "Yes" as the next token:

    VQAScore(image, prompt) = P("Yes" | image, question(prompt))

t2v_metrics (github.com/linzhiqiu/t2v_metrics, Apache-2.0; its ``qwen2.5-vl-*`` models) renders the question with the
Qwen chat template (one user turn: the image, then the question; generation prompt ``<|im_start|>assistant\\n``)
and takes the softmax of the first generated token's logits at the token of "Yes". This reward returns the
**log** of that probability (≤ 0, higher is better): the same ranking, and sums of logs are products of probabilities.
With several questions (explicit lines, or the prompt split at its conjunctions; :mod:`rewards.vqa_questions`) the
score is Σ log P("Yes"), the log of the product, so every part must hold. An answer of several tokens is scored by
teacher forcing (the sum of each token's log-probability given the ones before); "Yes" is one token for Qwen.

On disk: ``models/rewards/vqascore/<folder>/``, a Hugging Face instruct folder (``config.json``, ``model.safetensors``
or shards with their index, ``tokenizer.json``, ``preprocessor_config.json``), e.g. Qwen2.5-VL-7B-Instruct (the
t2v_metrics default), Qwen2.5-VL-3B-Instruct, Qwen2-VL-2B/7B-Instruct. The backbone is built on the ``meta`` device
and loaded key by key (:mod:`rewards.qwen2vl_model`); only the answer positions go through the LM head. Images follow
qwen-vl-utils' resizing (:mod:`rewards.qwen2vl_image`); each image is encoded once however many questions it gets.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .base import ModelReward
from .errors import BadRewardFile, MissingRewardFile
from .model_cache import shared_model
from .protocol import check_images, prompt_list
from .qwen2vl_image import IMAGE_MAX_PIXELS, IMAGE_MIN_PIXELS, image_batch
from .qwen2vl_model import (
    IMAGE_PAD,
    chat_ids,
    image_norm,
    load_tokenizer,
    pad_rows,
    read_vlm_config,
    require_transformers_5,
    token_id,
    vlm_model,
    vlm_state,
)
from .vqa_questions import DEFAULT_ANSWER, DEFAULT_TEMPLATE, check_template, questions_for
from .weights import load_into, meta_module, module_device_dtype, read_hf_folder

__all__ = ["VQAScore", "VQAScoreModel", "load_vqascore", "SOURCE"]

log = logging.getLogger("evosearch.rewards")

SOURCE = (
    "https://huggingface.co/Qwen/Qwen2.5-VL-7B-Instruct (the whole folder; or another Qwen2-VL / Qwen2.5-VL "
    "*-Instruct folder)"
)
WHO = "VQAScore"
_IGNORED = (r"position_ids$", r"rotary_emb\.inv_freq$")


class VQAScoreModel(nn.Module):
    """A Qwen2-VL / Qwen2.5-VL backbone (``vlm``) and its LM head (``lm_head``, or the input embeddings if tied)."""

    def __init__(self, config: Any, tied: bool) -> None:
        super().__init__()
        self.vlm = vlm_model(config)
        text = config.text_config
        self.lm_head = None if tied else nn.Linear(text.hidden_size, text.vocab_size, bias=False)
        self.image_token_id = int(config.image_token_id)

    def output_weight(self) -> torch.Tensor:
        return self.vlm.language_model.embed_tokens.weight if self.lm_head is None else self.lm_head.weight

    def image_features(self, pixel_values: torch.Tensor, grids: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The merged vision tokens of each image (one tensor ``[tokens_i, hidden]`` per image)."""
        out = self.vlm.get_image_features(pixel_values, grids)
        return tuple(out.pooler_output)

    def forward(
        self,
        batch: dict[str, torch.Tensor],
        features: Sequence[torch.Tensor],
        grids: torch.Tensor,
        positions: torch.Tensor,
        targets: torch.Tensor,
    ) -> torch.Tensor:
        """Σ_j log P(targets[s, j] | sequence s up to positions[s, j]) for each sequence ``s`` → ``[S]`` float32.

        ``features[s]`` are the vision tokens placed at sequence ``s``'s image tokens, ``grids[s]`` their grid.
        """
        ids = batch["input_ids"]
        embeds = self.vlm.get_input_embeddings()(ids)
        image_mask = (ids == self.image_token_id)[..., None].expand_as(embeds)
        embeds = embeds.masked_scatter(image_mask, torch.cat(list(features)).to(embeds.dtype))
        hidden = self.vlm(
            input_ids=ids,
            inputs_embeds=embeds,
            attention_mask=batch["attention_mask"],
            mm_token_type_ids=batch["mm_token_type_ids"],
            image_grid_thw=grids,
            use_cache=False,
        ).last_hidden_state
        rows = torch.arange(ids.shape[0], device=ids.device)[:, None]
        picked = hidden[rows, positions]  # [S, A, hidden]: only the answer positions go through the LM head
        weight = self.output_weight()
        logits = nn.functional.linear(picked.to(weight.dtype), weight).float()
        return logits.log_softmax(dim=-1).gather(-1, targets[..., None])[..., 0].sum(dim=-1)


def _build(folder: Path, dtype: torch.dtype) -> VQAScoreModel:
    config = read_vlm_config(folder, WHO, SOURCE)
    state = vlm_state(read_hf_folder(folder), "vlm.")
    embed = state.get("vlm.language_model.embed_tokens.weight")
    if embed is None:
        raise BadRewardFile(
            f"{WHO} ({folder}): no language-model embeddings (model.embed_tokens.weight) in the weights; expected a "
            f"Qwen2-VL / Qwen2.5-VL instruct folder from {SOURCE}."
        )
    config.text_config.vocab_size = embed.shape[0]
    tied = bool(getattr(config, "tie_word_embeddings", False))
    if tied:
        state.pop("lm_head.weight", None)
    log.info("loading VQAScore backbone %s (%s, %s)", folder, config.model_type, dtype)
    model = meta_module(lambda: VQAScoreModel(config, tied))
    return load_into(
        model,
        state,
        who=f"{WHO} ({folder})",
        expected=f"Expected a Qwen2-VL / Qwen2.5-VL instruct folder from {SOURCE}.",
        dtype=dtype,
        ignore=_IGNORED,
    )


def load_vqascore(
    path: str | Path,
    *,
    dtype: torch.dtype = torch.bfloat16,
    prompt: str | None = None,
    template: str = DEFAULT_TEMPLATE,
    answer: str = DEFAULT_ANSWER,
    questions: str = "",
    split: str = "none",
    min_pixels: int = IMAGE_MIN_PIXELS,
    max_pixels: int = IMAGE_MAX_PIXELS,
) -> VQAScore:
    """VQAScore from an instruct folder (see the module docstring); the options are :class:`VQAScore`'s."""
    require_transformers_5(WHO)
    folder = Path(path)
    if not folder.is_dir():
        raise MissingRewardFile(WHO, [f"{folder.name}/ (a Hugging Face folder)"], [folder.parent], SOURCE)
    tokenizer = load_tokenizer(folder, WHO, SOURCE)
    mean, std = image_norm(folder)
    model = shared_model("vqascore", folder, {"dtype": str(dtype)}, lambda: _build(folder, dtype))
    return VQAScore(
        model,
        tokenizer,
        prompt=prompt,
        template=template,
        answer=answer,
        questions=questions,
        split=split,
        min_pixels=min_pixels,
        max_pixels=max_pixels,
        mean=mean,
        std=std,
    )


class VQAScore(ModelReward):
    """log P("Yes" | image, question) summed over the prompt's questions (≤ 0; 0 = certainly yes).

    ``template`` has one ``{}`` slot for the prompt; ``questions`` (one per line) replace the prompt's question;
    ``split="conjunctions"`` asks one question per conjunct of the prompt; ``answer`` is the scored answer;
    ``min_pixels``/``max_pixels`` bound each image's resized area (qwen-vl-utils' defaults; a lower ``max_pixels``
    is faster on large images).
    """

    name = "vqascore"

    def __init__(
        self,
        model: VQAScoreModel,
        tokenizer: Any,
        *,
        prompt: str | None = None,
        template: str = DEFAULT_TEMPLATE,
        answer: str = DEFAULT_ANSWER,
        questions: str = "",
        split: str = "none",
        min_pixels: int = IMAGE_MIN_PIXELS,
        max_pixels: int = IMAGE_MAX_PIXELS,
        mean: Sequence[float] = (0.48145466, 0.4578275, 0.40821073),
        std: Sequence[float] = (0.26862954, 0.26130258, 0.27577711),
    ) -> None:
        if min_pixels > max_pixels:
            raise ValueError(f"VQAScore: min_pixels ({min_pixels}) must not exceed max_pixels ({max_pixels})")
        self.model, self.tokenizer, self.prompt = model, tokenizer, prompt
        self.template, self.questions_text, self.split = check_template(template), str(questions or ""), split
        questions_for("x", template=self.template, questions=self.questions_text, split=split)  # validates
        self.answer = answer
        self.answer_ids = tokenizer.encode(answer, add_special_tokens=False).ids
        if not self.answer_ids:
            raise ValueError(f"VQAScore: the answer {answer!r} has no tokens")
        self.min_pixels, self.max_pixels = int(min_pixels), int(max_pixels)
        self.mean, self.std = tuple(mean), tuple(std)
        self.image_id = token_id(tokenizer, IMAGE_PAD, WHO)
        self.pad_id = tokenizer.token_to_id("<|endoftext|>")
        if self.pad_id is None:
            self.pad_id = token_id(tokenizer, "<|im_end|>", WHO)

    def questions(self, prompt: str) -> list[str]:
        """The questions asked for ``prompt`` (see :mod:`rewards.vqa_questions`)."""
        return questions_for(prompt, template=self.template, questions=self.questions_text, split=self.split)

    def inputs(self, images: torch.Tensor, prompts: Sequence[str]) -> dict[str, Any]:
        """Everything the model needs: patches and grids per image, one right-padded sequence per (image, question)
        (the question followed by all but the last answer token), the answer positions and targets."""
        pixels, grids, tokens = image_batch(
            images, min_pixels=self.min_pixels, max_pixels=self.max_pixels, mean=self.mean, std=self.std
        )
        rows, owner, positions = [], [], []
        n = len(self.answer_ids)
        for i, prompt in enumerate(prompts):
            for question in self.questions(prompt):
                row = chat_ids(self.tokenizer, tokens[i], question)
                positions.append(list(range(len(row) - 1, len(row) - 1 + n)))
                rows.append(row + self.answer_ids[:-1])
                owner.append(i)
        batch = pad_rows(rows, self.pad_id, self.image_id)
        return {
            "batch": batch,
            "pixel_values": pixels,
            "image_grid_thw": grids,
            "owner": torch.tensor(owner, dtype=torch.long),
            "positions": torch.tensor(positions, dtype=torch.long),
            "targets": torch.tensor([self.answer_ids] * len(rows), dtype=torch.long),
        }

    def question_log_probs(
        self, images: torch.Tensor, prompts: Sequence[str] | str | None = None
    ) -> list[torch.Tensor]:
        """log P(answer) of each question, per image (a list of ``[Q_i]`` float32 tensors)."""
        check_images(images, accepts_video=False, who=self.name)
        prompts = prompt_list(prompts if prompts is not None else self.prompt, images.shape[0])
        if images.shape[0] == 0:
            return []
        device, dtype = module_device_dtype(self.model)
        data = self.inputs(images.to(device), prompts)
        batch = {k: v.to(device) for k, v in data["batch"].items()}
        owner = data["owner"].to(device)
        features = self.model.image_features(data["pixel_values"].to(device, dtype), data["image_grid_thw"].to(device))
        per_sequence = [features[i] for i in owner.tolist()]
        logp = self.model(
            batch,
            per_sequence,
            data["image_grid_thw"].to(device)[owner],
            data["positions"].to(device),
            data["targets"].to(device),
        )
        return [logp[owner == i] for i in range(images.shape[0])]

    def score(self, images: torch.Tensor, prompts: Sequence[str] | str | None = None) -> torch.Tensor:
        if images.shape[0] == 0:
            check_images(images, accepts_video=False, who=self.name)
            return torch.zeros(0)
        return torch.stack([lp.sum() for lp in self.question_log_probs(images, prompts)])
