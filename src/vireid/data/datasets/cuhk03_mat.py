"""Extract the images of the original ``cuhk-03.mat`` (MATLAB v7.3 = HDF5) into the folders the
CUHK03-NP new-protocol files name (``ROOT/images_labeled/``, ``ROOT/images_detected/``).

The archive holds, for ``labeled`` and ``detected``, a (1, 5) cell of camera pairs; each pair a
(num_ids, 10) cell of images (views 1-5 from the first camera, 6-10 from the second; empty cells
where a view is missing), each image stored transposed as (3, W, H) uint8. An image is written as
``{pair}_{id:03d}_{camera}_{view:02d}.png`` (1-based, camera 1 for views 1-5 and 2 for 6-10), the
names of ``filelist`` in ``cuhk03_new_protocol_config_{labeled,detected}.mat``. Each folder is written
to a temporary sibling and renamed into place, so an interrupted extraction leaves nothing half-written.
``h5py`` reads the file (``pip install h5py``; only this command needs it).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from vireid.errors import DatasetError

logger = logging.getLogger(__name__)

ARCHIVE_NAMES = ("cuhk-03.mat", "cuhk03_release/cuhk-03.mat")
VERSIONS = ("labeled", "detected")


def find_archive(root: str | os.PathLike[str]) -> Path:
    """``ROOT/cuhk-03.mat`` or ``ROOT/cuhk03_release/cuhk-03.mat``; a DatasetError naming both otherwise."""
    for name in ARCHIVE_NAMES:
        path = Path(root) / name
        if path.is_file():
            return path
    raise DatasetError(f"cuhk03-np: no {' or '.join(ARCHIVE_NAMES)} under {root}")


def image_name(pair: int, pid: int, view: int) -> str:
    """File name of view ``view`` (0-9) of identity ``pid`` (0-based) of camera pair ``pair`` (0-based)."""
    return f"{pair + 1}_{pid + 1:03d}_{1 if view < 5 else 2}_{view + 1:02d}.png"


def extract_cuhk03(root: str | os.PathLike[str], versions: tuple[str, ...] = VERSIONS,
                   overwrite: bool = False) -> dict[str, int]:
    """Write the images of ``cuhk-03.mat`` under ``root``; returns the number written per version."""
    try:
        import h5py
    except ImportError as exc:
        raise DatasetError("cuhk03-np: reading cuhk-03.mat (HDF5) needs h5py: pip install h5py") from exc
    root = Path(root)
    archive = find_archive(root)
    counts: dict[str, int] = {}
    try:
        f = h5py.File(archive, "r")
    except OSError as exc:
        raise DatasetError(f"cuhk03-np: cannot read {archive} as an HDF5 (MATLAB v7.3) file ({exc})") from exc
    with f:
        for version in versions:
            if version not in f:
                raise DatasetError(f"cuhk03-np: {archive} has no {version!r} entry (keys: {sorted(f.keys())})")
            out = root / f"images_{version}"
            if out.exists() and not overwrite:
                raise DatasetError(f"cuhk03-np: {out} exists; pass --overwrite to extract again")
            tmp = Path(tempfile.mkdtemp(prefix=f".images_{version}.tmp-", dir=root))
            try:
                n = 0
                pairs = np.asarray(f[version]).reshape(-1)  # (5,) references to the camera pairs
                for pair, pair_ref in enumerate(pairs):
                    cells = np.asarray(f[pair_ref]).T  # stored (10, num_ids) (MATLAB order) -> (num_ids, 10)
                    if cells.ndim != 2:
                        raise DatasetError(f"cuhk03-np: {archive}: {version} pair {pair + 1} is not an "
                                           f"(ids, 10) cell array (shape {cells.shape})")
                    for pid in range(cells.shape[0]):
                        for view in range(cells.shape[1]):
                            img = np.asarray(f[cells[pid, view]]).T  # stored (3, W, H) -> (H, W, 3)
                            if img.ndim != 3 or img.size == 0:
                                continue  # an empty cell (stored as a 2-vector): the view does not exist
                            Image.fromarray(np.ascontiguousarray(img).astype(np.uint8)).save(
                                tmp / image_name(pair, pid, view))
                            n += 1
                if out.exists():
                    shutil.rmtree(out)
                os.replace(tmp, out)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            counts[version] = n
            logger.info("cuhk03-np: wrote %d %s images to %s", n, version, out)
    return counts
