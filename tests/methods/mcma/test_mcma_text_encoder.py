"""MCMA text encoders: the scratch transformer and a tiny random local BertModel (never downloaded)."""

import pytest
import torch

from vireid.errors import ConfigError
from vireid.methods.mcma.text_encoder import HFTextEncoder, TransformerTextEncoder


def test_scratch_encoder_ignores_padding():
    torch.manual_seed(0)
    enc = TransformerTextEncoder(50, dim=32, depth=2, heads=4, max_length=16).eval()
    ids = torch.tensor([[2, 7, 9, 3, 0, 0], [2, 7, 9, 3, 0, 0]])
    ids[1, 4:] = 0
    tokens, glob = enc(ids, ids != 0)
    assert tokens.shape == (2, 6, 32) and glob.shape == (2, 32)
    longer = torch.cat([ids, torch.zeros(2, 4, dtype=torch.long)], dim=1)  # more padding changes nothing
    torch.testing.assert_close(enc(longer, longer != 0)[1], glob, atol=1e-5, rtol=1e-5)


def test_local_bert_folder(tmp_path):
    import transformers

    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "red", "shirt", "man"])}
    (tmp_path / "vocab.txt").write_text("\n".join(vocab))
    tok = transformers.BertTokenizer(vocab=str(tmp_path / "vocab.txt"))
    cfg = transformers.BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                  intermediate_size=32, max_position_embeddings=32)
    transformers.BertModel(cfg).save_pretrained(tmp_path / "bert")
    tok.save_pretrained(tmp_path / "bert")
    enc = HFTextEncoder(tmp_path / "bert", dim=8)
    ids, mask = enc.encode(["a man", "a red shirt"], length=6)
    assert ids[0].tolist() == [2, 5, 8, 3, 0, 0] and mask[0].tolist() == [True] * 4 + [False] * 2
    tokens, glob = enc(ids, mask)
    assert tokens.shape == (2, 6, 8) and glob.shape == (2, 8)
    glob.sum().backward()
    assert enc.model.embeddings.word_embeddings.weight.grad is not None
    with pytest.raises(ConfigError, match="not a local Hugging Face model folder"):
        HFTextEncoder(tmp_path / "nothing")


def test_mean_pooling_averages_the_valid_tokens_only():
    torch.manual_seed(0)
    enc = TransformerTextEncoder(50, dim=16, depth=1, heads=2, max_length=8, pool="mean").eval()
    ids = torch.tensor([[2, 7, 9, 3, 0, 0], [2, 11, 3, 0, 0, 0]])
    tokens, glob = enc(ids, ids != 0)
    torch.testing.assert_close(glob[0], tokens[0, :4].mean(dim=0))  # [CLS] 7 9 [SEP]
    torch.testing.assert_close(glob[1], tokens[1, :3].mean(dim=0))
    cls = TransformerTextEncoder(50, dim=16, depth=1, heads=2, max_length=8, pool="cls").eval()
    cls.load_state_dict(enc.state_dict())
    torch.testing.assert_close(cls(ids, ids != 0)[1], tokens[:, 0])
    with pytest.raises(ValueError, match="pool must be one of"):
        TransformerTextEncoder(50, pool="max")
