"""The caption tokenizer of MCMA's default text encoder: a WordPiece vocabulary built from the
training captions, run by the Hugging Face ``tokenizers`` library (seeds/002 §6 names no text encoder;
METHODS.md §15 "External inputs": a local tokenizer).

The vocabulary is a pure function of the captions: the special tokens, every character of the
training words (word-initial ``c`` and continuation ``##c``, sorted), then whole words by falling
frequency (ties in alphabetical order) up to ``vocab_size``. A word outside it is split by WordPiece's
greedy longest match into known pieces (a frequent word it starts with, then characters), so nothing
is ever ``[UNK]`` unless it holds a character never seen in training. The library's own
``WordPieceTrainer`` is not used: its merges break ties in Rust hash-map order, so the vocabulary and
the token ids changed from process to process (3 different vocabularies in 3 runs on the same
captions), and with them every run of a fixed seed.

Normalisation: Unicode NFD, lower case, accents stripped; pre-tokenisation on whitespace and
punctuation; special tokens ``[PAD]`` (id 0), ``[UNK]``, ``[CLS]``, ``[SEP]``, ``[MASK]``. An encoded
caption is ``[CLS] pieces... [SEP]`` padded with ``[PAD]`` to a fixed length; :meth:`decode` joins the
pieces back into words, so ``decode(encode(c))`` is the normalised caption (round trip).
The trained tokenizer is one JSON file (``tokenizer.json``), saved beside a run's checkpoint.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

from vireid.errors import ConfigError

SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
PAD_ID = 0


class CaptionTokenizer:
    """A trained ``tokenizers.Tokenizer`` with fixed-length encoding to tensors."""

    def __init__(self, tokenizer) -> None:  # tokenizers.Tokenizer
        self.tokenizer = tokenizer
        missing = [t for t in SPECIALS if tokenizer.token_to_id(t) is None]
        if missing or tokenizer.token_to_id("[PAD]") != PAD_ID:
            raise ConfigError(f"caption tokenizer: needs the special tokens {SPECIALS} with [PAD] = 0, missing {missing}")
        self.cls_id, self.sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
        self.mask_id = tokenizer.token_to_id("[MASK]")

    @classmethod
    def train(cls, captions: Iterable[str], *, vocab_size: int = 2000, min_frequency: int = 1) -> "CaptionTokenizer":
        """The WordPiece vocabulary of ``captions`` (the training split only: test captions never shape it),
        deterministic (module docstring). The characters are always kept, even past ``vocab_size``; words
        seen fewer than ``min_frequency`` times are left to be split into pieces."""
        from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers

        normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True, clean_text=True)
        pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        counts: Counter[str] = Counter()
        for caption in captions:
            counts.update(word for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(caption)))
        vocab = list(SPECIALS)
        vocab += sorted({c for word in counts for c in word})
        vocab += [f"##{c}" for c in sorted({c for word in counts for c in word[1:]})]
        known = set(vocab)
        for word, n in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
            if len(vocab) >= vocab_size or n < min_frequency:
                break
            if word not in known:
                vocab.append(word)
                known.add(word)
        tok = Tokenizer(models.WordPiece(vocab={t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"))
        tok.normalizer = normalizer
        tok.pre_tokenizer = pre_tokenizer
        tok.decoder = decoders.WordPiece()
        tok.add_special_tokens(list(SPECIALS))  # already in the vocabulary: marks them special (same ids)
        return cls(tok)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "CaptionTokenizer":
        from tokenizers import Tokenizer

        try:
            return cls(Tokenizer.from_file(str(path)))
        except Exception as exc:  # tokenizers raises a bare Exception on a bad file
            raise ConfigError(f"{path}: not a tokenizer JSON file ({exc})") from None

    def save(self, path: str | os.PathLike[str]) -> None:
        from vireid.utils.io import atomic_write_text

        atomic_write_text(Path(path), self.tokenizer.to_str())

    def __len__(self) -> int:
        return int(self.tokenizer.get_vocab_size())

    def encode(self, captions: Sequence[str], length: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
        """``(ids (N, length) int64, attention mask (N, length) bool)``: ``[CLS] ... [SEP]``, truncated, padded."""
        if length < 3:
            raise ValueError(f"caption length must be >= 3, got {length}")
        ids = torch.zeros(len(captions), length, dtype=torch.int64)  # (N, L), [PAD] = 0
        for i, enc in enumerate(self.tokenizer.encode_batch(list(captions), add_special_tokens=False)):
            pieces = [self.cls_id, *enc.ids[: length - 2], self.sep_id]
            ids[i, : len(pieces)] = torch.tensor(pieces)
        return ids, ids != PAD_ID

    def decode(self, ids: torch.Tensor) -> list[str]:
        """Captions of (N, L) ids, special tokens dropped."""
        return self.tokenizer.decode_batch([row[row != PAD_ID].tolist() for row in ids], skip_special_tokens=True)
