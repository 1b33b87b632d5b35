"""Which gallery entries a protocol removes for each query (PROTOCOLS.md "Metrics", step 2)."""

from __future__ import annotations

import enum

import torch


class Exclusion(str, enum.Enum):
    """Gallery entries ignored per query, by benchmark.

    - ``NONE``: nothing removed (RegDB, as ``eval_regdb`` of mangye16/Cross-Modal-Re-ID-baseline).
    - ``SYSU_SAME_LOCATION``: a camera-3 query ignores every camera-2 gallery image, whatever its
      identity (SYSU-MM01 kit: camera labels ``[1 2 2 4 5 6]``, cams 2 and 3 share a room).
    - ``SAME_ID_SAME_CAMERA``: a query ignores gallery images of its own identity taken by its own
      camera (LLCM as DEEN evaluates it; Market-style protocols).
    """

    NONE = "none"
    SYSU_SAME_LOCATION = "sysu-same-location"
    SAME_ID_SAME_CAMERA = "same-id-same-camera"

    @classmethod
    def parse(cls, value: "str | Exclusion") -> "Exclusion":
        """Accept a member or its value (``"none"``, ``"sysu-same-location"``, ``"same-id-same-camera"``)."""
        if isinstance(value, Exclusion):
            return value
        key = str(value).strip().lower().replace("_", "-")
        for member in cls:
            if key in (member.value, member.name.lower().replace("_", "-")):
                return member
        raise ValueError(f"unknown exclusion {value!r}; expected one of {[m.value for m in cls]}")

    def mask(self, q_pids: torch.Tensor, q_camids: torch.Tensor,
             g_pids: torch.Tensor, g_camids: torch.Tensor) -> torch.Tensor | None:
        """Boolean (nq, ng) mask of the removed entries, or ``None`` when nothing is removed."""
        return self.pair_mask(q_pids.unsqueeze(1), q_camids.unsqueeze(1), g_pids.unsqueeze(0), g_camids.unsqueeze(0))

    def pair_mask(self, q_pids: torch.Tensor, q_camids: torch.Tensor,
                  g_pids: torch.Tensor, g_camids: torch.Tensor) -> torch.Tensor | None:
        """Boolean mask of the removed (query, gallery) pairs, the four label tensors broadcast
        against each other (e.g. (c, 1) query labels and (c, w) gathered gallery labels)."""
        if self is Exclusion.NONE:
            return None
        if self is Exclusion.SYSU_SAME_LOCATION:
            return (q_camids == 3) & (g_camids == 2)
        return (q_pids == g_pids) & (q_camids == g_camids)
