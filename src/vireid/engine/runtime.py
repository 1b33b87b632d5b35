"""The one place that chooses device, autocast, seeds and the distributed process group.

Everything else receives a :class:`Runtime` and uses ``runtime.device`` and
``runtime.autocast()``; no other module picks a device or reads the environment.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.distributed as dist

from vireid.errors import ConfigError

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from vireid.config import RuntimeConfig

_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class Runtime:
    device: torch.device
    precision: str = "fp32"
    channels_last: bool = False
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return _DTYPES[self.precision]

    def autocast(self) -> contextlib.AbstractContextManager:
        dtype = self.autocast_dtype
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def make_grad_scaler(self) -> "torch.amp.GradScaler":
        """A loss scaler for fp16 on CUDA; a disabled one otherwise (bf16 needs none)."""
        enabled = self.precision == "fp16" and self.device.type == "cuda"
        return torch.amp.GradScaler(self.device.type, enabled=enabled)

    def prepare_images(self, images: torch.Tensor) -> torch.Tensor:
        images = images.to(self.device, non_blocking=True)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def resolve_device(spec: str, key: str = "runtime.device") -> torch.device:
    """``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``, checked to exist
    here; :class:`ConfigError` naming ``key`` otherwise."""
    expected = "expected auto, cpu, cuda, cuda:N or mps"
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"{key}: {spec!r} is not a device ({expected}; torch says: {exc})") from None
    if device.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"{key}: {spec!r} is not a device vireid runs on; {expected}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"{key}: {spec!r} was asked for but CUDA is not available here")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"{key}: {spec!r} but this machine has {torch.cuda.device_count()} CUDA device(s)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"{key}: {spec!r} was asked for but MPS is not available here")
    return device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def setup_runtime(
    device: str = "auto",
    precision: str = "fp32",
    channels_last: bool = False,
    seed: int = 0,
    deterministic: bool = False,
    num_threads: int | None = None,
) -> Runtime:
    """Resolve the device, join the process group started by ``torchrun``, seed, and set determinism.

    Under ``torchrun`` (``WORLD_SIZE`` > 1) this initialises ``torch.distributed`` with NCCL on
    CUDA and gloo on CPU; each rank takes the GPU ``LOCAL_RANK``.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device)
    if dev.type == "cuda" and world_size > 1:
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    if precision == "fp16" and dev.type != "cuda":
        raise ConfigError("runtime.precision: fp16 autocast needs CUDA; use bf16 on CPU")
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
        logger.info("joined process group: rank %d of %d (%s)", rank, world_size, backend)
    if num_threads is not None:
        if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
            raise ConfigError(f"runtime.num_threads must be >= 1 (or null for torch's default), got {num_threads!r}")
        torch.set_num_threads(num_threads)
    seed_everything(seed + rank)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    elif dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    return Runtime(dev, precision, channels_last, rank, world_size, local_rank)


def teardown_runtime(runtime: Runtime) -> None:
    """Leave the process group. On the normal path every rank first waits for the others: a rank
    that destroyed its gloo group while a peer was still finishing (rank 0 writing files) was
    seen to abort ("terminate called without an active exception", SIGABRT) in about one run of
    three. Called from a ``finally`` while an exception is propagating, it does not wait (the
    other ranks may never arrive)."""
    if runtime.distributed and dist.is_initialized():
        if sys.exc_info()[0] is None:
            dist.barrier()
        dist.destroy_process_group()


@contextlib.contextmanager
def runtime_from_config(cfg: "RuntimeConfig", *, deterministic: bool | None = None) -> Iterator[Runtime]:
    """The one way commands set up and tear down the runtime from a recipe's ``runtime`` section.

    ``deterministic`` overrides the recipe's (evaluation never needs deterministic kernels).
    """
    runtime = setup_runtime(cfg.device, cfg.precision, cfg.channels_last, cfg.seed,
                            cfg.deterministic if deterministic is None else deterministic, cfg.num_threads)
    try:
        yield runtime
    finally:
        teardown_runtime(runtime)
