"""P x K identity sampling for single-modality datasets, and the choice of sampler by the modalities
a dataset declares (``ReIDDataset.modalities``).

Market-style training (the AGW/BoT recipe: P identities x K images per batch, batch-hard triplet)
has one modality, where :class:`~vireid.data.sampler.CrossModalitySampler` would find no identity
with both. :func:`sampler_kind` reads the dataset's modalities: visible + infrared -> the
cross-modality sampler; one image modality -> :class:`IdentitySampler`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from vireid.types import Modality


def sampler_kind(modalities: Sequence[Modality]) -> str:
    """"cross-modality" when both image modalities are present, else "identity"."""
    image = {Modality(int(m)) for m in modalities} - {Modality.TEXT}
    if not image:
        raise ValueError(f"no image modality among {list(modalities)}: nothing to sample images from")
    return "cross-modality" if image == {Modality.VISIBLE, Modality.INFRARED} else "identity"


class IdentitySampler:
    """Batch sampler: P distinct identities x K images each (drawn with replacement when fewer).

    Identities with fewer than ``min_images`` images are skipped. The plan of epoch ``e`` is a pure
    function of ``(seed, e)``; each epoch draws every eligible identity once per round of a fresh
    permutation. ``batches_per_epoch`` defaults to ``#images // (P * K * num_replicas)`` (at least 1).
    Under DDP every rank computes the same plan of ``batches_per_epoch * num_replicas`` batches and
    takes every ``num_replicas``-th from ``rank`` (each rank steps ``batches_per_epoch`` times).
    """

    def __init__(self, pids: Sequence[int], num_ids: int, num_instances: int, *, seed: int = 0,
                 batches_per_epoch: int | None = None, min_images: int = 1, num_replicas: int = 1,
                 rank: int = 0) -> None:
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is not in [0, num_replicas={num_replicas})")
        self.num_replicas, self.rank = int(num_replicas), int(rank)
        pids_arr = np.asarray(list(pids), dtype=np.int64)
        self._ids = sorted(int(p) for p in np.unique(pids_arr) if (pids_arr == p).sum() >= min_images)
        if len(self._ids) < num_ids:
            raise ValueError(f"IdentitySampler needs at least num_ids={num_ids} identities, found {len(self._ids)}")
        self._members = [np.flatnonzero(pids_arr == p) for p in self._ids]
        self.num_ids, self.num_instances, self.seed, self.epoch = int(num_ids), int(num_instances), int(seed), 0
        self.batches_per_epoch = batches_per_epoch or max(
            1, len(pids_arr) // (num_ids * num_instances * self.num_replicas))

    @property
    def batch_size(self) -> int:
        return self.num_ids * self.num_instances

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.batches_per_epoch

    def plan(self, epoch: int | None = None) -> list[list[int]]:
        """This rank's batches of the epoch (dataset indices)."""
        return self.global_plan(epoch)[self.rank::self.num_replicas]

    def global_plan(self, epoch: int | None = None) -> list[list[int]]:
        """Every rank's batches of the epoch, interleaved (rank r takes batches r, r + R, ...)."""
        rng = np.random.default_rng([self.seed, self.epoch if epoch is None else int(epoch)])
        queue: list[int] = []
        batches = []
        for _ in range(self.batches_per_epoch * self.num_replicas):
            if len(queue) < self.num_ids:
                queue.extend(rng.permutation(len(self._ids)).tolist())
            chosen, queue = queue[:self.num_ids], queue[self.num_ids:]
            if len(set(chosen)) < self.num_ids:  # a round boundary repeated an identity: take fresh ones
                chosen = list(dict.fromkeys(chosen + rng.permutation(len(self._ids)).tolist()))[:self.num_ids]
            parts = [rng.choice(self._members[i], size=self.num_instances,
                                replace=self._members[i].size < self.num_instances) for i in chosen]
            batches.append(np.concatenate(parts).tolist())
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.plan()
