"""MCMA losses against loops and hand-built tensors."""

import math

import pytest
import torch
import torch.nn.functional as F

from vireid.methods.mcma.losses import bisimulation, cmpm, identity_centres, masked_reconstruction


def test_reconstruction_uses_masked_positions_only():
    torch.manual_seed(0)
    pred = torch.randn(2, 5, 4, requires_grad=True)
    target = torch.randn(2, 5, 4)
    mask = torch.tensor([[True, False, False, True, False], [False, False, True, False, False]])
    loss = masked_reconstruction(pred, target, mask)
    norm = F.layer_norm(target, (4,))
    want = sum(float(((pred[b, n].detach() - norm[b, n]) ** 2).mean()) for b, n in mask.nonzero().tolist()) / 3
    assert float(loss.detach()) == pytest.approx(want, rel=1e-6)
    loss.backward()
    assert bool((pred.grad[~mask] == 0).all()) and bool((pred.grad[mask].abs().sum(-1) > 0).all())
    changed = target.clone()
    changed[~mask] += 100.0  # targets at unmasked positions do not matter
    assert float(masked_reconstruction(pred, changed, mask).detach()) == pytest.approx(float(loss.detach()), rel=1e-6)


def _loop_bisim(img, txt, pids, pv, pt, temperature):
    ids = sorted(set(pids.tolist()))
    cv = {a: F.normalize(torch.stack([F.normalize(img[i], dim=0) for i in range(len(pids)) if pids[i] == a]).sum(0),
                         dim=0) for a in ids}
    ct = {a: F.normalize(torch.stack([F.normalize(txt[i], dim=0) for i in range(len(pids)) if pids[i] == a]).sum(0),
                         dim=0) for a in ids}
    pairs = [(a, c) for a in ids for c in ids if a != c]
    total = 0.0
    for a, c in pairs:
        rv = cv[a] - cv[c]
        s = []
        for a2, c2 in pairs:
            rt2 = ct[a2] - ct[c2]
            s.append(float(F.cosine_similarity(rv, pv(rt2), dim=0) + F.cosine_similarity(rt2, pt(rv), dim=0)))
        rt = ct[a] - ct[c]
        pos = float(F.cosine_similarity(rv, pv(rt), dim=0) + F.cosine_similarity(rt, pt(rv), dim=0))
        total += -(pos / temperature - math.log(sum(math.exp(x / temperature) for x in s)))
    return total / len(pairs)


def test_bisimulation_against_a_loop():
    torch.manual_seed(1)
    img, txt = torch.randn(7, 6, dtype=torch.float64), torch.randn(7, 6, dtype=torch.float64)
    pids = torch.tensor([3, 3, 5, 5, 9, 9, 9])
    wv, wt = torch.randn(6, 6, dtype=torch.float64), torch.randn(6, 6, dtype=torch.float64)
    pv, pt = (lambda r: r @ wv), (lambda r: torch.tanh(r @ wt))
    got = bisimulation(img, txt, pids, pv, pt, temperature=0.5)
    assert float(got) == pytest.approx(_loop_bisim(img, txt, pids, pv, pt, 0.5), rel=1e-9)
    assert float(bisimulation(img, txt, torch.zeros(7, dtype=torch.long), pv, pt)) == 0.0


def test_identity_centres_and_cmpm_hand_values():
    ids, c = identity_centres(torch.tensor([[2.0, 0.0], [0.0, 3.0], [1.0, 0.0]]), torch.tensor([4, 4, 1]))
    assert ids.tolist() == [1, 4]
    torch.testing.assert_close(c, torch.tensor([[1.0, 0.0], [2 ** -0.5, 2 ** -0.5]]))
    # two pairs, perfectly matched and orthogonal, large norms: p -> q, the loss -> 0
    x = torch.tensor([[50.0, 0.0], [0.0, 50.0]])
    assert float(cmpm(x, x, torch.tensor([0, 1]))) < 1e-6
    # image->text with all-equal logits: p = 1/2 each, q = (1, 0): KL = 1/2 log(1/2) + 1/2 log(1/2 / eps)
    z = torch.zeros(2, 2)
    one_way = 0.5 * math.log(0.5) + 0.5 * math.log(0.5 / 1e-8)
    assert float(cmpm(z, z + 1.0, torch.tensor([0, 1]))) == pytest.approx(2 * one_way, rel=1e-5)
    # cosine / temperature: orthogonal unit pairs scaled by 0.1 give logits 1/T on the match, 0 elsewhere
    p = math.exp(1 / 0.5) / (math.exp(1 / 0.5) + 1)
    kl = p * math.log(p / (1 + 1e-8)) + (1 - p) * math.log((1 - p) / 1e-8)
    assert float(cmpm(0.1 * x, 7 * x, torch.tensor([0, 1]), temperature=0.5)) == pytest.approx(2 * kl, rel=1e-5)
