"""The split files and the gallery permutation table of a dataset in the SYSU-MM01 layout.

Formats copied from SYSU-MM01 (Wu et al., ICCV'17) and its official evaluation kit
(PROTOCOLS.md "SYSU-MM01"): ``exp/{train_id,val_id,test_id,available_id}.txt`` hold one
comma-separated line of ids; ``exp/rand_perm_cam.mat`` is a MATLAB v5 cell array
``rand_perm_cam{cam}{pid}``, a 10 x n_images array of 1-based indices into that identity's
images of that camera in sorted file-name order (one row per trial), empty (10 x 0) when the
identity has no image there. ``scipy.io.loadmat(path)["rand_perm_cam"]`` is then a (6, 1) object
array whose ``[cam-1, 0]`` entry is an (n_ids, 1) object array, exactly like the official file.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence

import numpy as np
import scipy.io

from vireid.utils.io import atomic_write_bytes, atomic_write_text

NUM_TRIALS = 10
NUM_CAMERAS = 6
# MATLAB's own header is 116 bytes of text; scipy would stamp the current time in it, which
# would make the file differ between otherwise identical runs.
_MAT_HEADER = b"MATLAB 5.0 MAT-file, written by vireid.data.synthetic (rand_perm_cam)"


def format_id_line(ids: Sequence[int]) -> str:
    """One comma-separated line with a trailing newline, as in SYSU-MM01's ``exp/*.txt``."""
    return ",".join(str(int(i)) for i in ids) + "\n"


def write_split_files(exp_dir: str | os.PathLike[str], train: Sequence[int], val: Sequence[int],
                      test: Sequence[int]) -> None:
    """Write ``train_id.txt``, ``val_id.txt``, ``test_id.txt`` and ``available_id.txt`` (their union)."""
    available = sorted(set(train) | set(val) | set(test))
    for name, ids in (("train_id", train), ("val_id", val), ("test_id", test), ("available_id", available)):
        atomic_write_text(os.path.join(exp_dir, f"{name}.txt"), format_id_line(sorted(ids)))


def build_rand_perm_cam(counts: Mapping[int, Mapping[int, int]], num_ids: int,
                        rng: np.random.Generator, trials: int = NUM_TRIALS) -> np.ndarray:
    """The permutation table as the (6, 1) object array that ``scipy.io.loadmat`` returns.

    ``counts[cam][pid]`` is the number of images of ``pid`` in ``cam`` (absent or 0 = none).
    Entries are uint8 like the official file (uint16 if an identity has over 255 images).
    """
    table = np.empty((NUM_CAMERAS, 1), dtype=object)
    for cam in range(1, NUM_CAMERAS + 1):
        cell = np.empty((num_ids, 1), dtype=object)
        for pid in range(1, num_ids + 1):
            n = int(counts.get(cam, {}).get(pid, 0))
            dtype = np.uint8 if n <= 255 else np.uint16
            if n == 0:
                cell[pid - 1, 0] = np.zeros((trials, 0), dtype=np.uint8)
            else:
                cell[pid - 1, 0] = np.stack([rng.permutation(n) + 1 for _ in range(trials)]).astype(dtype)
        table[cam - 1, 0] = cell
    return table


def write_rand_perm_cam(path: str | os.PathLike[str], table: np.ndarray) -> None:
    """Save ``table`` (from :func:`build_rand_perm_cam`) as a compressed MATLAB v5 file.

    The header carries no date, so the same table gives byte-identical files.
    """
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, {"rand_perm_cam": table}, format="5", do_compression=True)
    data = bytearray(buffer.getvalue())
    data[:116] = _MAT_HEADER.ljust(116, b" ")
    atomic_write_bytes(path, bytes(data))
