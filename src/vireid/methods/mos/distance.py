"""MoS as a test-time distance for any model's non-negative features (seeds/002 §3; METHODS.md §13).

``D = 1 - S = 1 - J(q, g) + lambda CP(q, g)``: the hard Jaccard distance, with the conflict penalty
when ``lam > 0`` and a co-occurrence prior (collected over same-identity training pairs, see
:mod:`.conflict`) are given. :class:`JaccardDistance` follows the evaluator's ``distance_fn``
contract (:func:`vireid.evaluation.protocols.evaluate_plan`): ``stream(qf, gf)`` yields float32
``(rows, block)`` pieces of query rows, ``(qf, gf)`` returns the full (nq, ng) matrix, and
:meth:`record` is what the results store (``settings.distance`` / ``settings.jaccard``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from vireid.errors import ConfigError, FeaturesError
from vireid.methods.mos.conflict import PENALTY_FORMS, pairwise_conflict_penalty
from vireid.methods.mos.jaccard import pairwise_hard_jaccard

PRIOR_KEY = "prior"
FORM_KEY = "form"  # the penalty form the prior was collected for; files without it are "seed"


def _as_nonnegative(x: Tensor | np.ndarray, name: str) -> Tensor:
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, Tensor) else x).to(torch.float64)
    if t.dim() != 2 or t.shape[0] == 0:
        raise FeaturesError(f"{name}: expected a non-empty (n, D) feature matrix, got shape {tuple(t.shape)}")
    low = float(t.min())
    if low < 0:
        raise FeaturesError(f"--distance jaccard needs non-negative features (channel activations, e.g. post-ReLU "
                            f"average pooling), but the {name} features have a minimum of {low:.4g} "
                            "(post-BatchNorm features are signed)")
    return t


def load_prior(path: str | Path, form: str = "seed") -> Tensor:
    """A co-occurrence prior saved by :func:`save_prior`: an ``.npz`` holding ``prior`` (C, C), collected
    for the penalty ``form`` asked for (its ``form`` entry; a file without one is a ``seed`` prior)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if PRIOR_KEY not in data.files:
                raise FeaturesError(f"{path}: no {PRIOR_KEY!r} array (keys: {', '.join(data.files) or 'none'})")
            prior = np.asarray(data[PRIOR_KEY], dtype=np.float32)
            stored = str(data[FORM_KEY]) if FORM_KEY in data.files else "seed"
    except (OSError, ValueError) as exc:
        if isinstance(exc, FeaturesError):
            raise
        raise FeaturesError(f"{path}: cannot read a co-occurrence prior ({exc})") from None
    if prior.ndim != 2 or prior.shape[0] != prior.shape[1] or not np.isfinite(prior).all():
        raise FeaturesError(f"{path}: {PRIOR_KEY!r} must be a finite square (C, C) matrix, got shape {prior.shape}")
    if stored != form:
        raise FeaturesError(f"{path}: the prior was collected for the {stored!r} penalty form, but "
                            f"--jaccard-penalty is {form!r} (collect one with the same form)")
    return torch.from_numpy(prior)


def save_prior(path: str | Path, prior: Tensor, *, form: str = "seed", **meta: Any) -> None:
    """Write ``prior`` (C, C), collected for the penalty ``form``, atomically as ``.npz`` (with string
    metadata beside it)."""
    from vireid.utils.io import atomic_write_bytes
    import io

    buf = io.BytesIO()
    np.savez(buf, **{PRIOR_KEY: prior.detach().cpu().numpy().astype(np.float32), FORM_KEY: np.asarray(form)},
             **{k: np.asarray(str(v)) for k, v in meta.items()})
    atomic_write_bytes(path, buf.getvalue())


class JaccardDistance:
    """``1 - J + lam * CP`` between query and gallery rows (hard Jaccard; penalty when ``lam > 0``).

    Args:
        lam: weight of the conflict penalty (seed: lambda; METHODS.md default 0.1). 0 = Jaccard only.
        prior: (C, C) co-occurrence prior, required when ``lam > 0``.
        top_k: channels of each pair's union the penalty sums over (METHODS.md: restrict to the top).
        eps: the penalty's tolerance (METHODS.md default 0.05).
        form: ``"seed"`` (the seed's sum over raw activations) or ``"normalized"`` (bounded variant,
            :mod:`.conflict`); the prior must have been collected with the same form.
        prior_source: where the prior came from (recorded with the results).
        chunk_size: query rows per block (None: sized to ~8M elements of work).
    """

    __name__ = "jaccard"

    def __init__(self, *, lam: float = 0.0, prior: Tensor | None = None, top_k: int = 32, eps: float = 0.05,
                 prior_source: str = "", chunk_size: int | None = None, form: str = "seed") -> None:
        if not (math.isfinite(lam) and lam >= 0):
            raise ConfigError(f"--jaccard-lambda must be a finite number >= 0, got {lam!r}")
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise ConfigError(f"--jaccard-top-k must be an integer >= 1, got {top_k!r}")
        if not math.isfinite(eps):
            raise ConfigError(f"--jaccard-eps must be finite, got {eps!r}")
        if form not in PENALTY_FORMS:
            raise ConfigError(f"--jaccard-penalty must be one of {', '.join(PENALTY_FORMS)}, got {form!r}")
        if lam > 0 and prior is None:
            raise ConfigError("--jaccard-lambda > 0 needs a co-occurrence prior (--jaccard-prior FILE.npz, or "
                              "vireid test on a run, which collects it from the run's training images)")
        self.lam, self.prior, self.top_k, self.eps = float(lam), prior, top_k, float(eps)
        self.prior_source, self.chunk_size, self.form = prior_source, chunk_size, form

    def record(self) -> dict[str, Any]:
        """The settings that change the distances (stored with every result)."""
        out: dict[str, Any] = {"lambda": self.lam}
        if self.lam > 0:
            out.update(top_k=self.top_k, eps=self.eps, prior=self.prior_source, form=self.form)
        return out

    def stream(self, qf: Tensor | np.ndarray, gf: Tensor | np.ndarray) -> Iterator[tuple[slice, Tensor]]:
        """Yield ``(rows, (len(rows), ng) float32 distances)`` for consecutive blocks of query rows."""
        q, g = _as_nonnegative(qf, "query"), _as_nonnegative(gf, "gallery")
        if q.shape[1] != g.shape[1]:
            raise FeaturesError(f"query features have dimension {q.shape[1]} but gallery features {g.shape[1]}")
        if self.lam > 0 and self.prior is not None and tuple(self.prior.shape) != (q.shape[1], q.shape[1]):
            raise FeaturesError(f"the co-occurrence prior is {tuple(self.prior.shape)} but the features have "
                                f"{q.shape[1]} channels ({self.prior_source or 'prior'})")
        rows = self.chunk_size or max(1, (1 << 23) // max(1, g.shape[0] * q.shape[1]))
        for s in range(0, q.shape[0], rows):
            block = q[s:s + rows]  # (b, C)
            dist = 1.0 - pairwise_hard_jaccard(block, g)  # (b, ng)
            if self.lam > 0:
                dist = dist + self.lam * pairwise_conflict_penalty(block, g, self.prior.to(torch.float64),
                                                                   top_k=self.top_k, eps=self.eps, form=self.form)
            yield slice(s, s + block.shape[0]), dist.to(torch.float32)

    def __call__(self, qf: Tensor | np.ndarray, gf: Tensor | np.ndarray) -> np.ndarray:
        return np.concatenate([b.numpy() for _, b in self.stream(qf, gf)], axis=0)
