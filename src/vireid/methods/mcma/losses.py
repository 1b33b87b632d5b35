"""MCMA's losses (seeds/002 §6; METHODS.md §15).

- :func:`masked_reconstruction`: MSE between reconstructed and target patch tokens on the masked
  positions only (the self- and cross-instance terms; METHODS.md [UNSPEC→MSE on masked positions,
  targets = patch tokens of the EMA image encoder], here layer-normalised so their scale cannot drift).
- :func:`bisimulation`: the relation-vector InfoNCE ``L_bisim`` between the identity relations of
  the image and the text side, scored through the two predictors.
- :func:`cmpm` and the shared identity loss: the base matching loss (METHODS.md [UNSPEC→CMPM + ID]),
  Zhang & Lu, ECCV'18 "Deep Cross-Modal Projection Learning for Image-Text Matching", Eq. 1-4.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

EPS = 1e-8


def _full(x: Tensor) -> Tensor:
    """float32 for half-precision inputs (autocast), the input's dtype otherwise."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def masked_reconstruction(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """``mean over masked (b, n) of mean_d (pred - LN(target))^2``; (B, N, D), (B, N, D), (B, N) bool.

    Unmasked positions contribute nothing (not even their gradient); no masked position gives 0.
    """
    target = F.layer_norm(target.detach().float(), target.shape[-1:])  # (B, N, D) per-token normalised
    err = (pred.float() - target).pow(2).mean(dim=-1)  # (B, N)
    m = mask.to(err.dtype)
    return (err * m).sum() / m.sum().clamp_min(1.0)


def identity_centres(features: Tensor, pids: Tensor) -> tuple[Tensor, Tensor]:
    """``(ids (I,), centres (I, D))``: mean of the L2-normalised features of each identity, re-normalised."""
    ids, inverse = torch.unique(pids, sorted=True, return_inverse=True)  # (I,), (B,)
    f = F.normalize(_full(features), dim=1)  # (B, D)
    sums = torch.zeros(len(ids), f.shape[1], dtype=f.dtype, device=f.device).index_add_(0, inverse, f)  # (I, D)
    return ids, F.normalize(sums, dim=1)


def relation_vectors(centres: Tensor) -> Tensor:
    """``r_{a,c} = C_a - C_c`` for every ordered pair a != c: (I, D) -> (I (I - 1), D), row-major over (a, c)."""
    i = centres.shape[0]
    a, c = torch.nonzero(~torch.eye(i, dtype=torch.bool, device=centres.device), as_tuple=True)  # (P,), (P,)
    return centres[a] - centres[c]


def bisimulation(image: Tensor, text: Tensor, pids: Tensor, predict_v: Callable[[Tensor], Tensor],
                 predict_t: Callable[[Tensor], Tensor], *, temperature: float = 0.07) -> Tensor:
    """``L_bisim = -mean_{(a,c)} log softmax_{(a',c')}( s(r^V_{a,c}, r^T_{a',c'}) / T )`` at the matching pair.

    ``s(r^V, r^T) = cos(r^V, theta_V(r^T)) + cos(r^T, theta_T(r^V))``: each side's relation is compared
    with the other side's relation mapped by a predictor. Image and text features of the same batch
    rows share ``pids``; identities are the batch's (at least 2 needed; fewer gives 0).
    """
    _, cv = identity_centres(image, pids)  # (I, D)
    _, ct = identity_centres(text, pids)  # (I, D)
    if cv.shape[0] < 2:
        return image.sum() * 0.0
    rv, rt = relation_vectors(cv), relation_vectors(ct)  # (P, D) each
    hat_v, hat_t = predict_v(rt), predict_t(rv)  # (P, D): text relation -> image space, image -> text space
    # scores[p, q] = cos(rv_p, hat_v_q) + cos(rt_q, hat_t_p)
    scores = F.normalize(rv, dim=1) @ F.normalize(hat_v, dim=1).T  # (P, P)
    scores = scores + (F.normalize(hat_t, dim=1) @ F.normalize(rt, dim=1).T)  # (P, P)
    target = torch.arange(rv.shape[0], device=rv.device)
    return F.cross_entropy(scores / temperature, target)


def cmpm(image: Tensor, text: Tensor, pids: Tensor, temperature: float | None = None) -> Tensor:
    """Cross-modal projection matching (Zhang & Lu, ECCV'18 Eq. 1-4), both directions.

    ``p_ij = softmax_j(x_i . t_j / |t_j|)``, ``q_ij = y_ij / sum_k y_ik`` (y: same identity),
    ``L = mean_i sum_j p_ij log(p_ij / (q_ij + eps))`` for image->text plus text->image.
    With ``temperature``, the logits are ``cos(x_i, t_j) / temperature`` instead (the scale-free
    form of IRRA's similarity distribution matching, Jiang & Ye, CVPR'23), which does not wait for
    the embeddings' norms to grow before the distribution can sharpen.
    """
    same = (pids[:, None] == pids[None, :]).float()  # (B, B)
    q = same / same.sum(dim=1, keepdim=True)  # (B, B)
    x, t = _full(image), _full(text)
    if temperature is not None:
        x, t = F.normalize(x, dim=1) / temperature ** 0.5, F.normalize(t, dim=1) / temperature ** 0.5
    loss = x.new_zeros(())
    for a, b in ((x, t), (t, x)):
        logits = a @ (b if temperature is not None else F.normalize(b, dim=1)).T  # (B, B)
        p, logp = logits.softmax(dim=1), logits.log_softmax(dim=1)
        loss = loss + (p * (logp - torch.log(q + EPS))).sum(dim=1).mean()
    return loss
