"""MCMA's caption tokenizer (``tokenizers`` WordPiece, vocabulary built from the training captions)."""

import json
import subprocess
import sys

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


def test_vocabulary_is_a_pure_function_of_the_captions():
    """Same captions, fresh processes (Rust hash maps are seeded per process): the same tokenizer file."""
    code = ("import sys; from vireid.methods.mcma.tokenizer import CaptionTokenizer; "
            f"sys.stdout.write(CaptionTokenizer.train({CAPTIONS!r} * 3, vocab_size=60).tokenizer.to_str())")
    outs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
            for _ in range(2)]
    assert outs[0] == outs[1]
    vocab = json.loads(outs[0])["model"]["vocab"]
    assert [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])][:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]",
                                                                              "[MASK]"]
    # after the characters, whole words of 2+ characters by falling frequency, ties alphabetical
    words = [t for t, i in sorted(vocab.items(), key=lambda kv: kv[1]) if len(t) > 1 and not t.startswith(("#", "["))]
    counts = {}
    for c in CAPTIONS * 3:
        for w in c.lower().replace(".", " .").replace(",", " ,").split():
            counts[w] = counts.get(w, 0) + 1
    multi = sorted((w for w in counts if len(w) > 1), key=lambda w: (-counts[w], w))
    assert len(vocab) == 60 and len(words) == 14 and words == multi[:14]  # 46 characters, then 14 words


def test_unseen_word_splits_into_known_pieces():
    tok = CaptionTokenizer.train(["red shirt", "red shirt", "blue jeans"], vocab_size=100)
    ids, _ = tok.encode(["redshirt"], length=8)
    pieces = [tok.tokenizer.id_to_token(int(i)) for i in ids[0] if int(i) not in (PAD_ID, tok.cls_id, tok.sep_id)]
    assert pieces == ["red", "##s", "##h", "##i", "##r", "##t"]  # longest known prefix, then characters
    assert tok.decode(ids) == ["redshirt"]
