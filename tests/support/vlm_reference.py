"""The official recipes of VQAScore (t2v_metrics' Qwen2-VL models) and HPSv3 re-expressed with transformers' own
classes, one image at a time, as references for the pack's batched implementations.

* VQAScore: ``AutoProcessor.from_pretrained(folder, local_files_only=True)`` renders the chat (user turn: image, then
  the question; generation prompt) and cuts the patches; ``Qwen2*VLForConditionalGeneration.from_pretrained`` (its
  own key conversion of the Hub layout) gives the full next-token logits; the score is ``log_softmax(logits[-1])`` at
  the answer token, i.e. log P("Yes").
* HPSv3: the same processor from the base folder with ``<|Reward|>`` added as a special token (as the official
  ``create_model_and_processor`` does), the backbone loaded by ``from_pretrained`` from a folder holding the
  checkpoint's backbone tensors, the hidden state at ``<|Reward|>`` through a RankNet head assembled here; μ is
  output 0.

Images are passed already at the size the reward resizes them to (sides multiples of 28 inside the pixel bounds) and
quantised to 8 bits, so that both sides see the same pixels.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from torch import nn


def _u8(image: torch.Tensor) -> torch.Tensor:
    return (image * 255).round().clamp(0, 255).to(torch.uint8).permute(2, 0, 1)


def _model_class(folder: Path):
    import transformers

    family = json.loads((folder / "config.json").read_text())["model_type"]
    name = {"qwen2_vl": "Qwen2VLForConditionalGeneration", "qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration"}
    return getattr(transformers, name[family])


def vqascore_reference(folder: Path, image: torch.Tensor, question: str, answer: str = "Yes") -> float:
    """log P(first answer token) for one image ``[H,W,3]`` and one question, the t2v_metrics way."""
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(folder, local_files_only=True)
    model = _model_class(folder).from_pretrained(folder, local_files_only=True, dtype=torch.float32).eval()
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    inputs = processor(text=[text], images=[_u8(image)], return_tensors="pt", do_resize=False)
    with torch.no_grad():
        logits = model(**inputs).logits[0, -1].float()
    token = processor.tokenizer.encode(answer, add_special_tokens=False)[0]
    return float(logits.log_softmax(-1)[token])


def hpsv3_reference(parts: dict, images: torch.Tensor, prompts: list[str], work: Path) -> torch.Tensor:
    """HPSv3's μ for each image and prompt, the official way (see the module docstring)."""
    from safetensors.torch import save_file
    from transformers import AutoProcessor, Qwen2VLForConditionalGeneration

    base, state = parts["base"], parts["state"]
    folder = work / "hpsv3-reference"
    shutil.copytree(base, folder)
    backbone = {k: v.float() for k, v in state.items() if not k.startswith("rm_head.")}
    config = json.loads((base / "config.json").read_text())
    config["vocab_size"] = backbone["model.embed_tokens.weight"].shape[0]  # resize_token_embeddings
    (folder / "config.json").write_text(json.dumps(config))
    save_file(backbone, str(folder / "model.safetensors"))
    model = Qwen2VLForConditionalGeneration.from_pretrained(folder, local_files_only=True, dtype=torch.float32).eval()
    processor = AutoProcessor.from_pretrained(base, local_files_only=True)
    processor.tokenizer.add_special_tokens({"additional_special_tokens": ["<|Reward|>"]})
    reward_id = processor.tokenizer.convert_tokens_to_ids("<|Reward|>")
    template = (parts["folder"] / "prompt_template.txt").read_text()
    hidden = model.config.text_config.hidden_size
    widths = [state[f"rm_head.{i}.weight"].shape[0] for i in (0, 3, 5)]
    head = nn.Sequential(
        nn.Linear(hidden, widths[0]),
        nn.ReLU(),
        nn.Dropout(0.05),
        nn.Linear(widths[0], widths[1]),
        nn.ReLU(),
        nn.Linear(widths[1], widths[2]),
    )
    head.load_state_dict({k[len("rm_head.") :]: v.float() for k, v in state.items() if k.startswith("rm_head.")})
    head.eval()
    mus = []
    for image, prompt in zip(images, prompts):
        text = template.replace("{text_prompt}", prompt)
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
        rendered = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        batch = processor(text=[rendered], images=[_u8(image)], return_tensors="pt", padding=True)
        with torch.no_grad():
            states = model.model(**batch).last_hidden_state
            mus.append(head(states[batch["input_ids"] == reward_id])[0, 0])
    return torch.stack(mus)
