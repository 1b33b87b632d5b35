"""ASR (seeds/001 §4 §3.1) with the attention index order of METHODS.md §11's corrected reading:
``out_j = sum_t softmax_t(D(j, t)) V_t`` with ``D(j, t) = K(F~_S,j)^T Q(F~_S,t)``."""

from __future__ import annotations

import torch

from vireid.methods.spot.asr import ASR, asr_attention


def test_asr_attention_rows_are_output_positions_normalised_over_t() -> None:
    k = torch.tensor([[[1.0, 0.0, 2.0]]])  # (B=1, d=1, N=3): K_j
    q = torch.tensor([[[0.0, 1.0, -1.0]]])  # Q_t
    m = asr_attention(k, q)
    for j in range(3):
        scores = torch.tensor([float(k[0, 0, j] * q[0, 0, t]) for t in range(3)])
        torch.testing.assert_close(m[0, j], scores.softmax(0))
    torch.testing.assert_close(m.sum(2), torch.ones(1, 3))
    assert not torch.allclose(m.sum(1), torch.ones(1, 3))  # columns do not sum to one: the order matters


def test_asr_output_is_the_loop_of_the_corrected_reading() -> None:
    torch.manual_seed(0)
    asr = ASR(appearance_channels=8, structure_channels=4, qk_channels=3).eval()
    fi = torch.randn(2, 8, 3, 2)  # (B, C_I, H, W)
    fs = torch.randn(2, 4, 3, 2)  # (B, C_S, H, W)
    out, m = asr(fi, fs)
    fused = asr.fusion(fi, fs)  # F~_S
    key = asr.key(fused).flatten(2)  # (B, d, N)
    query = asr.query(fused).flatten(2)
    value = asr.value(fi).flatten(2)  # (B, C, N)
    base = asr.bn(fi).flatten(2)
    n = 6
    for b in range(2):
        for j in range(n):
            scores = torch.stack([key[b, :, j] @ query[b, :, t] for t in range(n)])  # D(j, t)
            w = scores.softmax(0)
            expected = sum(w[t] * value[b, :, t] for t in range(n)) + base[b, :, j]
            torch.testing.assert_close(out[b].flatten(1)[:, j], expected, rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(m[b, j], w, rtol=1e-5, atol=1e-6)
    # the seed's literal swap (softmax over j, sum over t) is a different operator here
    swapped = torch.bmm(value, m) + base
    assert not torch.allclose(swapped, out.flatten(2), atol=1e-3)


def test_asr_scaled_divides_scores_by_sqrt_dk() -> None:
    torch.manual_seed(1)
    plain = ASR(8, 4, qk_channels=4).eval()
    scaled = ASR(8, 4, qk_channels=4, scaled=True).eval()
    scaled.load_state_dict(plain.state_dict())
    fi, fs = torch.randn(1, 8, 2, 2), torch.randn(1, 4, 2, 2)
    fused = plain.fusion(fi, fs)
    k, q = plain.key(fused).flatten(2), plain.query(fused).flatten(2)
    torch.testing.assert_close(scaled.attention(fi, fs), asr_attention(k, q, 0.5))
    torch.testing.assert_close(plain.attention(fi, fs), asr_attention(k, q, 1.0))
