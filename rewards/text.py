"""Offline tokenizers built from vocabulary files shipped in ``rewards/assets`` (see the README there).

* :class:`ClipTokenizer`: OpenAI CLIP's byte-level BPE (49,408 tokens; ``<|startoftext|>`` 49406, ``<|endoftext|>``
  49407; context 77; lower-cased, whitespace collapsed, HTML entities unescaped). Long prompts are cut to 75 tokens
  between the start and end tokens, as open_clip and Hugging Face do. Padding is 0 (the ids after the end token do not
  matter: CLIP's text encoder is causal and reads the end token).
* :class:`BertTokenizer`: bert-base-uncased WordPiece for ImageReward (``[CLS] … [SEP]``, padding and truncation to
  35 tokens, ``[DEC]`` = 30522 and ``[ENC]`` = 30523 added as in the ImageReward package).

Both use the ``tokenizers`` library (a dependency of transformers) directly, so nothing is fetched from a hub and the
ids do not depend on the transformers version.
"""

from __future__ import annotations

import gzip
import html
import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import torch

__all__ = ["ASSETS", "ClipTokenizer", "BertTokenizer", "clip_tokenizer", "bert_tokenizer"]

ASSETS = Path(__file__).resolve().parent / "assets"
CLIP_BPE = ASSETS / "bpe_simple_vocab_16e6.txt.gz"
BERT_VOCAB = ASSETS / "bert-base-uncased-vocab.txt"

_CLIP_SPLIT = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte → printable character table (the alphabet of byte-level BPE)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in printable}  # printable bytes first: the vocabulary's order
    for extra, b in enumerate(b for b in range(256) if b not in table):
        table[b] = chr(256 + extra)
    return table


class ClipTokenizer:
    """CLIP BPE tokenizer: ``tokenizer(["a cat", …]) -> LongTensor[B, 77]``."""

    sot_id = 49406
    eot_id = 49407

    def __init__(self, bpe_path: Path = CLIP_BPE, context_length: int = 77) -> None:
        from tokenizers import Regex, Tokenizer, models, pre_tokenizers

        merges_text = gzip.open(bpe_path, "rt", encoding="utf-8").read().split("\n")
        merges = [tuple(line.split()) for line in merges_text[1 : 49152 - 256 - 2 + 1]]
        alphabet = list(_bytes_to_unicode().values())
        vocab_list = alphabet + [c + "</w>" for c in alphabet] + ["".join(m) for m in merges]
        vocab_list += ["<|startoftext|>", "<|endoftext|>"]
        vocab = {tok: i for i, tok in enumerate(vocab_list)}
        model = models.BPE(
            vocab=vocab, merges=merges, end_of_word_suffix="</w>", unk_token="<|endoftext|>", fuse_unk=False
        )
        tok = Tokenizer(model)
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(_CLIP_SPLIT), behavior="removed", invert=True),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
        self._tok = tok
        self.context_length = context_length
        self.vocab_size = len(vocab)
        assert vocab["<|startoftext|>"] == self.sot_id and vocab["<|endoftext|>"] == self.eot_id

    @staticmethod
    def clean(text: str) -> str:
        """HTML-unescape twice, NFC-normalise, collapse whitespace, lower-case (open_clip's cleaning without ftfy)."""
        text = html.unescape(html.unescape(text))
        text = unicodedata.normalize("NFC", text)
        return re.sub(r"\s+", " ", text).strip().lower()

    def encode(self, text: str) -> list[int]:
        """Token ids of one prompt without start/end tokens."""
        return self._tok.encode(self.clean(text), add_special_tokens=False).ids

    def __call__(self, prompts: Sequence[str]) -> torch.Tensor:
        out = torch.zeros(len(prompts), self.context_length, dtype=torch.long)
        for i, prompt in enumerate(prompts):
            ids = [self.sot_id, *self.encode(prompt)[: self.context_length - 2], self.eot_id]
            out[i, : len(ids)] = torch.tensor(ids)
        return out


class BertTokenizer:
    """bert-base-uncased WordPiece as ImageReward uses it: ``(input_ids, attention_mask)``, both ``[B, max_length]``."""

    def __init__(self, vocab_path: Path = BERT_VOCAB, max_length: int = 35) -> None:
        from tokenizers import BertWordPieceTokenizer
        from tokenizers.models import WordPiece

        vocab = WordPiece.read_file(str(vocab_path))
        tok = BertWordPieceTokenizer(vocab, lowercase=True, clean_text=True, handle_chinese_chars=True)
        tok.add_special_tokens(["[DEC]", "[ENC]"])
        tok.enable_truncation(max_length=max_length)
        tok.enable_padding(length=max_length, pad_id=0, pad_token="[PAD]")
        self._tok = tok
        self.max_length = max_length
        self.dec_id = tok.token_to_id("[DEC]")
        self.enc_id = tok.token_to_id("[ENC]")

    def __call__(self, prompts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        encodings = self._tok.encode_batch([str(p) for p in prompts])
        ids = torch.tensor([e.ids for e in encodings], dtype=torch.long)
        mask = torch.tensor([e.attention_mask for e in encodings], dtype=torch.long)
        return ids, mask


@lru_cache(maxsize=1)
def clip_tokenizer() -> ClipTokenizer:
    """The shared CLIP tokenizer (built once; about 0.3 s)."""
    return ClipTokenizer()


@lru_cache(maxsize=1)
def bert_tokenizer() -> BertTokenizer:
    """The shared ImageReward tokenizer."""
    return BertTokenizer()
