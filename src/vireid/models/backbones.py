"""Two-stream ResNet: modality-specific early stages, shared later stages.

The cross-modal backbone of AGW (Ye et al., TPAMI 2021, seeds/001 §1; METHODS.md §3: specific
stem, shared layer1-4) and of MRDA (seeds/003 §2.3 Eq. 5-8; METHODS.md §1: specific stem and
layer1, shared layer2-4). Non-local blocks are placed as in the public AGW code: ``n`` blocks in a
stage go after its last ``n`` bottlenecks, one after each.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Sequence

import torch
import torchvision
from torch import nn

from vireid.types import Modality
from vireid.models.layers import NonLocalBlock
from vireid.models.pretrained import load_resnet_weights

logger = logging.getLogger(__name__)

ARCHS: dict[str, tuple[int, ...]] = {  # blocks per layer1..4
    "resnet18": (2, 2, 2, 2),
    "resnet34": (3, 4, 6, 3),
    "resnet50": (3, 4, 6, 3),
}
NUM_STAGES = 5  # 0 = stem (conv1, bn1, relu, maxpool), 1..4 = layer1..4
MODALITY_KEYS: tuple[str, ...] = tuple(m.name.lower() for m in Modality)  # ("visible", "infrared")


def _set_last_stride(layer4: nn.Sequential, stride: int) -> None:
    """Set the stride of layer4's first block (its strided conv and its downsample conv)."""
    block = layer4[0]
    for conv in (getattr(block, "conv1", None), getattr(block, "conv2", None)):
        if isinstance(conv, nn.Conv2d) and conv.stride != (1, 1):
            conv.stride = (stride, stride)
    if block.downsample is not None:
        block.downsample[0].stride = (stride, stride)


def _with_non_local(layer: nn.Sequential, count: int, channels: int) -> nn.Sequential:
    """Insert ``count`` non-local blocks, one after each of the last ``count`` blocks of ``layer``."""
    blocks: list[nn.Module] = []
    n = len(layer)
    for i, block in enumerate(layer):
        blocks.append(block)
        if i >= n - count:
            blocks.append(NonLocalBlock(channels))
    return nn.Sequential(*blocks)


class TwoStreamResNet(nn.Module):
    """ResNet whose first ``num_specific_stages`` stages have one copy per modality.

    Stages: 0 = stem (conv1, bn1, relu, maxpool), 1..4 = layer1..4. The batch is split by its
    modality labels, each part runs through its own copy of the specific stages (so their
    BatchNorms see one modality only), the parts are put back in the original batch order, and
    the whole batch runs through the shared stages.

    Args:
        arch: ``"resnet18"``, ``"resnet34"`` or ``"resnet50"``.
        num_specific_stages: 0 (one shared stream) to 5 (two separate networks). AGW: 1, MRDA: 2.
        last_stride: stride of layer4 (1 doubles the final map, as in AGW; 2 is torchvision's).
        pretrained: ``None``, ``"imagenet"`` (local torch hub cache only) or a state dict file;
            see :mod:`vireid.models.pretrained`. Both modality copies start from the same weights.
        non_local: non-local blocks per layer1..4 (AGW: ``(0, 2, 3, 0)``).

    Attributes:
        out_channels: channels of the final map (512 or 2048).
        stage_channels: channels of each stage's output, stages 0..4.
        specific: ``{"visible": ModuleList, "infrared": ModuleList}`` of the specific stages.
        shared: ModuleList of the shared stages.
    """

    def __init__(
        self,
        arch: str = "resnet50",
        *,
        num_specific_stages: int = 1,
        last_stride: int = 1,
        pretrained: str | os.PathLike[str] | None = None,
        non_local: Sequence[int] = (0, 0, 0, 0),
    ) -> None:
        super().__init__()
        if arch not in ARCHS:
            raise ValueError(f"TwoStreamResNet: unknown arch {arch!r}; valid: {sorted(ARCHS)}")
        if not 0 <= num_specific_stages <= NUM_STAGES:
            raise ValueError(
                f"TwoStreamResNet: num_specific_stages must be in 0..{NUM_STAGES}, got {num_specific_stages}"
            )
        if last_stride not in (1, 2):
            raise ValueError(f"TwoStreamResNet: last_stride must be 1 or 2, got {last_stride}")
        non_local = tuple(int(n) for n in non_local)
        blocks = ARCHS[arch]
        if len(non_local) != 4 or any(not 0 <= n <= b for n, b in zip(non_local, blocks)):
            raise ValueError(
                f"TwoStreamResNet: non_local must give 0..blocks non-local blocks for each of layer1..4; "
                f"{arch} has {blocks} blocks, got {non_local}"
            )
        self.arch = arch
        self.num_specific_stages = num_specific_stages
        self.non_local = non_local

        net = torchvision.models.get_model(arch, weights=None)
        if pretrained is not None:
            load_resnet_weights(net, arch, pretrained)
        _set_last_stride(net.layer4, last_stride)

        width = 4 if arch == "resnet50" else 1
        self.stage_channels: tuple[int, ...] = (64,) + tuple(c * width for c in (64, 128, 256, 512))
        self.out_channels: int = self.stage_channels[-1]
        stages: list[nn.Module] = [nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)]
        for i, layer in enumerate((net.layer1, net.layer2, net.layer3, net.layer4)):
            stages.append(_with_non_local(layer, non_local[i], self.stage_channels[i + 1]))

        specific = stages[:num_specific_stages]
        self.specific = nn.ModuleDict(
            {key: nn.ModuleList(copy.deepcopy(specific)) for key in MODALITY_KEYS}
        )
        self.shared = nn.ModuleList(stages[num_specific_stages:])
        logger.debug("TwoStreamResNet(%s): specific stages %s, non-local %s", arch,
                     list(range(num_specific_stages)), non_local)

    def forward(self, images: torch.Tensor, modality: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) images and (B,) modality labels -> (B, C, h, w) final map."""
        out, _ = self.forward_stages(images, modality, ())
        return out

    def forward_stages(
        self, images: torch.Tensor, modality: torch.Tensor, stages: Sequence[int]
    ) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        """Like :meth:`forward`, also returning the outputs of ``stages`` (0..4) in batch order.

        Returns:
            the final (B, C, h, w) map and ``{stage: (B, C_s, h_s, w_s)}``.
        """
        wanted = set(int(s) for s in stages)
        if not wanted <= set(range(NUM_STAGES)):
            raise ValueError(f"forward_stages: stages must be in 0..{NUM_STAGES - 1}, got {sorted(wanted)}")
        if images.dim() != 4 or modality.dim() != 1 or modality.shape[0] != images.shape[0]:
            raise ValueError(
                f"TwoStreamResNet: expected images (B, 3, H, W) and modality (B,), "
                f"got {tuple(images.shape)} and {tuple(modality.shape)}"
            )
        saved: dict[int, torch.Tensor] = {}
        x = self._forward_specific(images, modality.to(images.device), saved, wanted)  # (B, C_s, h_s, w_s)
        for i, stage in enumerate(self.shared, start=self.num_specific_stages):
            x = stage(x)  # (B, C_i, h_i, w_i)
            if i in wanted:
                saved[i] = x
        return x, saved

    def _run_specific(self, x: torch.Tensor, key: str, wanted: set[int]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        kept = []
        for i, stage in enumerate(self.specific[key]):
            x = stage(x)  # (b, C_i, h_i, w_i)
            if i in wanted:
                kept.append(x)
        return x, kept

    def _forward_specific(
        self, images: torch.Tensor, modality: torch.Tensor, saved: dict[int, torch.Tensor], wanted: set[int]
    ) -> torch.Tensor:
        if self.num_specific_stages == 0:
            return images
        kept_ids = [i for i in range(self.num_specific_stages) if i in wanted]
        counts = modality_counts(modality)
        present = [m for m, c in enumerate(counts) if c > 0]
        if len(present) == 1:  # one modality only (the usual test-time case): no split needed
            x, kept = self._run_specific(images, MODALITY_KEYS[present[0]], wanted)
            saved.update(zip(kept_ids, kept))
            return x
        # rows grouped by modality (0 first), batch order kept inside a group: no data-dependent
        # op besides the counts above (nonzero per modality would cost one more sync each on CUDA)
        perm = torch.argsort(modality, stable=True)  # (B,) original position of each grouped row
        grouped = images[perm].split([counts[m] for m in present])  # each (b_m, 3, H, W)
        parts, part_kept = [], []
        for m, part in zip(present, grouped):
            x, kept = self._run_specific(part, MODALITY_KEYS[m], wanted)
            parts.append(x)
            part_kept.append(kept)
        inverse = torch.empty_like(perm)
        inverse[perm] = torch.arange(perm.numel(), device=perm.device)
        for j, stage_id in enumerate(kept_ids):
            saved[stage_id] = torch.cat([k[j] for k in part_kept])[inverse]
        # tensor indexing (not index_select) keeps a channels_last layout
        return torch.cat(parts)[inverse]  # (B, C_s, h_s, w_s)


def modality_counts(modality: torch.Tensor) -> list[int]:
    """Rows of each modality label in a (B,) label vector, read to the host in one transfer.

    This is the two-stream forward's only host synchronisation on CUDA (the split sizes must be
    known on the host) and its only graph break under ``torch.compile``.

    Raises:
        ValueError: a label outside ``0..len(MODALITY_KEYS) - 1``.
    """
    labels = torch.arange(len(MODALITY_KEYS), device=modality.device)
    is_mod = modality[None, :] == labels[:, None]  # (M, B) bool
    counts = is_mod.sum(1).tolist()  # the one sync
    if sum(counts) != modality.shape[0]:
        bad = modality[~is_mod.any(0)].unique().tolist()
        raise ValueError(f"TwoStreamResNet: modality labels must be in {labels.tolist()}, got {bad}")
    return counts
