"""The shipped vocabularies give the same ids as the reference tokenizers, offline."""

from __future__ import annotations

import hashlib

import pytest
import torch

from rewards.text import BERT_VOCAB, CLIP_BPE, BertTokenizer, ClipTokenizer

PROMPTS = [
    "a photo of a cat",
    "A Photo OF a  Cat!!",
    "an astronaut riding a horse on mars, 4k, trending on artstation, highly detailed",
    "don't stop   believing's",
    "café naïve résumé",
    "中文 テスト 한국어",
    "emoji 🐱🚀 test",
    "numbers 12345 3.14",
    "x" * 300,
    " ".join(["word"] * 100),
    "&amp; &lt;tag&gt; html",
    "",
    "hello-world_foo/bar",
    "it's 'quoted' \"double\"",
]


def test_assets_are_the_published_files():
    """bert-base-uncased vocab.txt and OpenAI CLIP's bpe_simple_vocab_16e6.txt.gz, byte for byte (assets/README.md)."""
    assert BERT_VOCAB.stat().st_size == 231508
    assert hashlib.sha256(BERT_VOCAB.read_bytes()).hexdigest().startswith("07eced375cec144d")
    assert hashlib.sha256(CLIP_BPE.read_bytes()).hexdigest().startswith("924691ac288e5440")


def test_clip_matches_open_clip():
    open_clip = pytest.importorskip("open_clip")
    ref = open_clip.get_tokenizer("ViT-L-14")(PROMPTS)
    assert torch.equal(ClipTokenizer()(PROMPTS), ref)


def test_clip_truncates_to_77_with_end_token():
    ids = ClipTokenizer()(["word " * 200])
    assert ids.shape == (1, 77) and ids[0, 0] == 49406 and ids[0, -1] == 49407


def test_bert_matches_transformers(tmp_path):
    """ImageReward's tokenizer: [CLS] … [SEP], padded and truncated to 35 ([DEC]/[ENC] added at 30522/30523)."""
    from transformers import AutoTokenizer

    (tmp_path / "vocab.txt").write_bytes(BERT_VOCAB.read_bytes())
    (tmp_path / "tokenizer_config.json").write_text('{"do_lower_case": true, "tokenizer_class": "BertTokenizer"}')
    ref = AutoTokenizer.from_pretrained(str(tmp_path), local_files_only=True)
    out = ref(PROMPTS, padding="max_length", truncation=True, max_length=35, return_tensors="pt")
    tok = BertTokenizer()
    ids, mask = tok(PROMPTS)
    assert torch.equal(ids, out.input_ids) and torch.equal(mask, out.attention_mask)
    assert (tok.dec_id, tok.enc_id) == (30522, 30523)
    assert ids[0, :7].tolist() == [101, 1037, 6302, 1997, 1037, 4937, 102]  # a photo of a cat
