"""Cross-modality identity batch sampler: P identities x (K visible + K infrared) per batch.

The batch layout of the public cross-modal code (mangye16 ``IdentitySampler``, used by AGW,
seeds/001 §1, and CAJ, seeds/001 §8; METHODS.md §3 "8 IDs x (4+4)"): the first P*K indices are
visible images, the next P*K infrared images, and position ``i`` of the visible half has the same
identity as position ``i`` of the infrared half. The losses that pair the modalities (WRT over the
mixed batch, CAJ's joint learning, MRDA's modality terms) rely on this layout.

The epoch plan is a pure function of ``(seed, epoch)``; with ``num_replicas`` W every rank takes
every W-th batch of the same plan, so ranks get disjoint batches and the same number of them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

import numpy as np

from vireid.errors import DatasetError

logger = logging.getLogger(__name__)

__all__ = ["CrossModalitySampler", "default_batches_per_epoch"]


def default_batches_per_epoch(num_visible: int, num_infrared: int, num_ids: int, num_instances: int) -> int:
    """Batches in one epoch (all ranks together), as the mangye16 ``IdentitySampler`` counts them.

    That sampler draws ``N = max(#visible, #infrared)`` images of each modality per epoch, in
    ``N // (P*K) + 1`` batches. Keeping its count keeps the epoch-based learning-rate schedules of
    AGW/CAJ (warm-up to epoch 10, decay at 20 and 50) comparable with the published runs.
    SYSU-MM01 train (22,258 visible, 11,909 infrared), P=8, K=4: 696 batches.
    """
    n = max(int(num_visible), int(num_infrared))
    return n // (num_ids * num_instances) + 1


class CrossModalitySampler:
    """Batch sampler yielding lists of dataset indices: P identities x (K visible + K infrared).

    Pass it as ``DataLoader(dataset, batch_sampler=sampler)``. Call :meth:`set_epoch` before each
    epoch, as with ``DistributedSampler``.

    Args:
        pids: identity of every dataset item (raw ids or labels; only equality matters).
        modality: modality of every dataset item (0 visible, 1 infrared, or ``Modality``).
        num_ids: P, distinct identities per batch.
        num_instances: K, images per identity *and per modality* (batch size 2*P*K).
        seed: the plan of epoch ``e`` is a pure function of ``(seed, e)``.
        num_replicas: W, number of distributed ranks sharing the plan.
        rank: this rank, ``0 <= rank < W``.
        drop_last: with W ranks, ``True`` gives each rank ``B // W`` batches of the epoch's B;
            ``False`` plans ``ceil(B / W) * W`` batches (freshly drawn, not repeats) so none is lost.
        batches_per_epoch: B, batches per epoch over *all* ranks together (so the images seen per
            epoch do not change with W). ``None``: :func:`default_batches_per_epoch`.

    Identities are drawn in rounds: each round is a fresh permutation of the eligible identities
    and a batch takes the next P distinct ones, so over an epoch every identity is drawn equally
    often (within one). For each drawn identity, K images of each modality are drawn without
    replacement, or with replacement when it has fewer than K images of that modality.
    Identities with images of only one modality are skipped (logged once, at construction).
    """

    def __init__(
        self,
        pids: Sequence[int],
        modality: Sequence[int],
        num_ids: int,
        num_instances: int,
        *,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        drop_last: bool = True,
        batches_per_epoch: int | None = None,
    ) -> None:
        pids_arr = np.asarray([int(p) for p in pids], dtype=np.int64)
        mod_arr = np.asarray([int(m) for m in modality], dtype=np.int64)
        if pids_arr.shape != mod_arr.shape:
            raise ValueError(f"pids and modality differ in length: {len(pids_arr)} vs {len(mod_arr)}")
        bad = np.flatnonzero((mod_arr != 0) & (mod_arr != 1))
        if bad.size:
            raise ValueError(f"modality must be 0 (visible) or 1 (infrared); items {bad[:5].tolist()} "
                             f"have {mod_arr[bad[:5]].tolist()}")
        if num_ids < 1 or num_instances < 1:
            raise ValueError(f"num_ids and num_instances must be >= 1, got {num_ids} and {num_instances}")
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"need 0 <= rank < num_replicas, got rank={rank}, num_replicas={num_replicas}")
        if batches_per_epoch is not None and batches_per_epoch < 1:
            raise ValueError(f"batches_per_epoch must be >= 1 or None, got {batches_per_epoch}")

        self.num_ids = int(num_ids)
        self.num_instances = int(num_instances)
        self.seed = int(seed)
        self.num_replicas = int(num_replicas)
        self.rank = int(rank)
        self.drop_last = bool(drop_last)
        self.epoch = 0

        # identity -> (visible indices, infrared indices), identities in sorted order
        self._ids: list[int] = []
        self._visible: list[np.ndarray] = []
        self._infrared: list[np.ndarray] = []
        skipped: list[int] = []
        for pid in np.unique(pids_arr).tolist():
            members = np.flatnonzero(pids_arr == pid)
            vis = members[mod_arr[members] == 0]
            ir = members[mod_arr[members] == 1]
            if vis.size == 0 or ir.size == 0:
                skipped.append(pid)
                continue
            self._ids.append(pid)
            self._visible.append(vis)
            self._infrared.append(ir)
        if skipped:
            logger.warning("CrossModalitySampler: skipping %d identities with images of one modality only "
                           "(first: %s)", len(skipped), skipped[:10])
        if len(self._ids) < self.num_ids:
            raise DatasetError(
                f"CrossModalitySampler needs at least num_ids={self.num_ids} identities with both visible and "
                f"infrared images, found {len(self._ids)} (of {len(skipped) + len(self._ids)} identities; "
                f"skipped for one modality only: {skipped[:10]})")

        if batches_per_epoch is None:
            n_vis = sum(v.size for v in self._visible)
            n_ir = sum(v.size for v in self._infrared)
            batches_per_epoch = default_batches_per_epoch(n_vis, n_ir, self.num_ids, self.num_instances)
        self.batches_per_epoch = int(batches_per_epoch)
        if self.drop_last:
            self._per_rank = self.batches_per_epoch // self.num_replicas
            if self._per_rank == 0:
                raise ValueError(f"batches_per_epoch={self.batches_per_epoch} < num_replicas={self.num_replicas}: "
                                 "every rank would get 0 batches with drop_last=True")
        else:
            self._per_rank = -(-self.batches_per_epoch // self.num_replicas)

    @property
    def batch_size(self) -> int:
        """Images per batch: 2 * P * K."""
        return 2 * self.num_ids * self.num_instances

    @property
    def identities(self) -> list[int]:
        """The identities the sampler draws from (both modalities present), sorted."""
        return list(self._ids)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose plan the next ``__iter__`` yields."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        """Batches per rank per epoch."""
        return self._per_rank

    def plan(self, epoch: int | None = None) -> list[list[int]]:
        """All batches of an epoch for all ranks (rank r takes items r, r+W, ...)."""
        epoch = self.epoch if epoch is None else int(epoch)
        rng = np.random.default_rng([self.seed, epoch])
        num_batches = self._per_rank * self.num_replicas
        n_ids = len(self._ids)
        queue: list[int] = []  # identity positions still to draw in the current rounds
        batches: list[list[int]] = []
        for _ in range(num_batches):
            if len(queue) < self.num_ids or len(set(queue)) < self.num_ids:
                queue.extend(rng.permutation(n_ids).tolist())
            chosen: list[int] = []
            rest: list[int] = []
            for pos in queue:  # first P distinct identities, the others keep their place
                if len(chosen) < self.num_ids and pos not in chosen:
                    chosen.append(pos)
                else:
                    rest.append(pos)
            queue = rest
            vis = [self._draw(rng, self._visible[pos]) for pos in chosen]
            ir = [self._draw(rng, self._infrared[pos]) for pos in chosen]
            batches.append(np.concatenate(vis + ir).tolist())
        return batches

    def _draw(self, rng: np.random.Generator, members: np.ndarray) -> np.ndarray:
        replace = members.size < self.num_instances
        return rng.choice(members, size=self.num_instances, replace=replace)

    def __iter__(self) -> Iterator[list[int]]:
        batches = self.plan(self.epoch)
        yield from batches[self.rank::self.num_replicas]

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(P={self.num_ids}, K={self.num_instances}, ids={len(self._ids)}, "
                f"batches_per_epoch={self.batches_per_epoch}, rank={self.rank}/{self.num_replicas}, "
                f"seed={self.seed}, epoch={self.epoch})")
