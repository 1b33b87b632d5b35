"""MCMA's caption tokenizer (``tokenizers`` WordPiece trained on the training captions)."""

import pytest
import torch

from vireid.errors import ConfigError
from vireid.methods.mcma.tokenizer import PAD_ID, CaptionTokenizer

CAPTIONS = ["A man wearing a red shirt and blue jeans.", "The woman carries a black bag, with white shoes.",
            "a person in a green jacket walking", "He wears grey trousers and a yellow hat."]


def test_round_trip_save_load_and_padding(tmp_path):
    tok = CaptionTokenizer.train(CAPTIONS * 3, vocab_size=200)
    ids, mask = tok.encode(CAPTIONS, length=24)
    assert ids.shape == (4, 24) and ids.dtype == torch.int64 and bool((ids[:, 0] == tok.cls_id).all())
    assert torch.equal(mask, ids != PAD_ID)
    assert tok.decode(ids) == ["a man wearing a red shirt and blue jeans.", "the woman carries a black bag, with white shoes.",
                               "a person in a green jacket walking", "he wears grey trousers and a yellow hat."]
    tok.save(tmp_path / "tokenizer.json")
    again = CaptionTokenizer.load(tmp_path / "tokenizer.json")
    assert torch.equal(again.encode(CAPTIONS, 24)[0], ids)
    # an unseen word is split into known pieces or [UNK], never dropped; truncation keeps [CLS] ... [SEP]
    short, _ = tok.encode(["a zebra-striped coat " * 20], length=8)
    assert short[0, 0] == tok.cls_id and short[0, -1] == tok.sep_id and bool((short[0] != PAD_ID).all())


def test_bad_file_is_a_config_error(tmp_path):
    (tmp_path / "t.json").write_text("{}")
    with pytest.raises(ConfigError, match="not a tokenizer JSON"):
        CaptionTokenizer.load(tmp_path / "t.json")
