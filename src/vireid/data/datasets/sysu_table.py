"""The SYSU-MM01 kit's gallery permutation table ``rand_perm_cam.mat`` (wuancong/SYSU-MM01 ``evaluation/``).

``rand_perm_cam{cam}{pid}(trial, :)`` is a permutation of the 1-based indices of that identity's
images in that camera (the i-th image in sorted file-name order); ``get_testing_set.m`` takes the
first ``number_shot`` entries of row ``trial`` as the gallery. ``scipy.io.loadmat`` returns a
(6, 1) object array whose ``[cam - 1, 0]`` entry is an (n_ids, 1) object array of (trials, n) arrays.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from vireid.data.datasets.common import resource_path
from vireid.errors import DatasetError

NUM_CAMERAS = 6
OFFICIAL_TABLE_SOURCE = "official kit table (wuancong/SYSU-MM01 evaluation/data_split/rand_perm_cam.mat, vendored)"
# Images per camera of the 96 test identities, from the official table (PROTOCOLS.md).
OFFICIAL_TEST_COUNTS = {1: 1374, 2: 1565, 3: 1883, 4: 1918, 5: 1918, 6: 1920}


class PermTable:
    """Per (camera, identity) permutation rows of a ``rand_perm_cam.mat`` file."""

    def __init__(self, rows: dict[tuple[int, int], np.ndarray], num_trials: int, source: str, official: bool) -> None:
        self.rows = rows  # (cam, pid) -> (num_trials, n) int64, 1-based indices
        self.num_trials = num_trials
        self.source = source
        self.official = official

    def count(self, cam: int, pid: int) -> int:
        """Images of ``pid`` in ``cam`` according to the table (0 when it has no entry)."""
        row = self.rows.get((cam, pid))
        return 0 if row is None else int(row.shape[1])

    def draw(self, cam: int, pid: int, trial: int, shots: int) -> np.ndarray:
        """0-based indices of the gallery images of trial ``trial`` (0-based): the first ``shots`` entries."""
        row = self.rows.get((cam, pid))
        if row is None:
            return np.zeros(0, dtype=np.int64)
        return row[trial, :shots] - 1

    @classmethod
    def load(cls, path: Path, source: str | None = None, official: bool = False) -> "PermTable":
        """Read ``path``; :class:`DatasetError` naming the file when its structure is not the kit's."""
        import scipy.io

        what = f"SYSU-MM01 gallery table {path}"
        try:
            mat = scipy.io.loadmat(str(path))
        except (OSError, ValueError, TypeError) as exc:
            raise DatasetError(f"{what}: cannot read it as a MATLAB file ({exc})") from exc
        table = mat.get("rand_perm_cam")
        if not isinstance(table, np.ndarray) or table.dtype != object or table.size != NUM_CAMERAS:
            raise DatasetError(f"{what}: expected a 'rand_perm_cam' cell array of {NUM_CAMERAS} cameras")
        rows: dict[tuple[int, int], np.ndarray] = {}
        trials: set[int] = set()
        for cam in range(1, NUM_CAMERAS + 1):
            cell = table.reshape(-1)[cam - 1]
            if not isinstance(cell, np.ndarray) or cell.dtype != object:
                raise DatasetError(f"{what}: camera {cam} is not a cell array of identities")
            for i, entry in enumerate(cell.reshape(-1)):
                entry = np.asarray(entry)
                if entry.size == 0:
                    continue
                if entry.ndim != 2:
                    raise DatasetError(f"{what}: rand_perm_cam{{{cam}}}{{{i + 1}}} is not a (trials, n) array")
                perm = entry.astype(np.int64)
                n = perm.shape[1]
                if (np.sort(perm, axis=1) != np.arange(1, n + 1)).any():
                    raise DatasetError(f"{what}: rand_perm_cam{{{cam}}}{{{i + 1}}} rows are not permutations of 1..{n}")
                rows[(cam, i + 1)] = perm
                trials.add(perm.shape[0])
        if len(trials) != 1:
            raise DatasetError(f"{what}: rows disagree on the number of trials ({sorted(trials)})")
        return cls(rows, trials.pop(), source or str(path), official)


@functools.lru_cache(maxsize=1)
def official_table() -> PermTable:
    """The vendored official table (loaded once)."""
    return PermTable.load(resource_path("sysu-mm01", "official-eval", "rand_perm_cam.mat"),
                          OFFICIAL_TABLE_SOURCE, official=True)
