"""Helpers shared by the sub-commands: progress bars, run folders, config loading."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vireid.config import TrainConfig, load_config
from vireid.errors import ConfigError


def add_config_arguments(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument("--config", required=required, help="YAML recipe (see configs/)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="dotted override, e.g. --set optim.lr=0.05 (repeatable)")


def load_run_config(run_dir: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise ConfigError(f"{run_dir} is not a vireid run folder: {path} is missing")
    return load_config(path, overrides)


def check_run_dir(run_dir: Path, resume: bool) -> Path:
    """The run's ``last.pt``; refuse to resume a missing run or to overwrite an existing one."""
    last = run_dir / "last.pt"
    if resume and not last.is_file():
        raise ConfigError(f"--resume: {last} does not exist")
    if not resume and last.is_file():
        raise ConfigError(f"{run_dir} already holds a run; pass --resume to continue it or choose another --run-dir")
    return last


@contextlib.contextmanager
def locked_run_dir(run_dir: Path, resume: bool) -> Iterator[Path]:
    """:func:`check_run_dir` under the run-folder lock (rank 0 under ``torchrun``), held for the block.

    A ``--resume`` of a missing run fails before anything is created; a fresh run's folder is
    created by the lock and removed again if the block fails before writing into it.
    """
    from vireid.engine.run_lock import run_lock

    if resume:
        check_run_dir(run_dir, resume)
    lock = run_lock(run_dir) if os.environ.get("RANK", "0") == "0" else contextlib.nullcontext()
    with lock:
        yield check_run_dir(run_dir, resume)


class TqdmProgress:
    """Progress bar with ETA for interactive use (stderr); silent when stderr is not a terminal."""

    def __init__(self, total: int, description: str) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc=description, dynamic_ncols=True, leave=False,
                        disable=not sys.stderr.isatty(), file=sys.stderr)

    def update(self, n: int = 1, **postfix: Any) -> None:
        if postfix:
            self.bar.set_postfix(postfix, refresh=False)
        self.bar.update(n)

    def close(self) -> None:
        self.bar.close()
