"""The dataset interface: training samples, test samples and the official evaluation plan."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any, ClassVar

from vireid.types import Modality, Sample
from vireid.errors import ConfigError
from vireid.registry import call_errors
from vireid.evaluation.protocols import EvalPlan


def check_options(fn: Callable[..., Any], options: dict[str, Any], what: str) -> None:
    """:class:`ConfigError` when ``options`` do not fit ``fn`` (unknown names, wrong types), one line each
    naming ``what.key`` (the registry's check, :func:`vireid.registry.call_errors`)."""
    errors = call_errors(fn, options, what, exclude=("cls", "root", "relpaths"))
    if errors:
        raise ConfigError("\n".join(errors))


class ReIDDataset:
    """A VI-ReID dataset and its official protocol.

    Attributes:
        name: registry name ("sysu-mm01", "regdb", "llcm", "manifest").
        root: dataset root folder ("" for a reference built from vendored split files alone).
        train: training samples with their raw identity ids (the training pipeline relabels).
        test: every image the protocol may draw a query or gallery image from.

    Subclasses implement :meth:`load` (read a root folder), :meth:`parse_relpath` (identity,
    camera, modality from path tokens), :meth:`eval_plan`, and may override :meth:`for_relpaths`
    (the reference a features file is checked against) and :meth:`sample_key`.
    """

    name: ClassVar[str] = ""
    layout: ClassVar[str] = ""
    # the modalities the dataset holds; samplers and protocols read it (single-modality re-ID:
    # visible only; text-to-image: visible and text)
    modalities: ClassVar[tuple[Modality, ...]] = (Modality.VISIBLE, Modality.INFRARED)

    def __init__(self, root: str, train: list[Sample], test: list[Sample]) -> None:
        self.root = str(root)
        self.train = train
        self.test = test

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={self.root!r}, train={len(self.train)}, test={len(self.test)})"

    @classmethod
    def load(cls, root: str, **options: Any) -> "ReIDDataset":
        """Read the dataset under ``root``; :class:`DatasetError` naming the layout when it is wrong."""
        raise NotImplementedError

    @classmethod
    def parse_relpath(cls, relpath: str, root: str = "") -> Sample:
        """A test/train sample from its dataset-relative path alone (path tokens, never positions)."""
        raise NotImplementedError

    @classmethod
    def for_relpaths(cls, relpaths: Sequence[str], root: str = "", **options: Any) -> "ReIDDataset":
        """The reference that a features file with these paths is evaluated against.

        Default: the dataset read from ``root`` when given, else the one built from the vendored
        split files (datasets whose test lists ship with vireid).
        """
        if root:
            return cls.load(root, **options)
        return cls.vendored(**options)

    @classmethod
    def vendored(cls, **options: Any) -> "ReIDDataset":
        """The dataset's test lists from vireid's vendored split files (no images needed)."""
        raise ConfigError(f"{cls.name}: no vendored split files; pass the dataset root")

    def sample_key(self, sample: Sample) -> Hashable:
        """Key matching a features-file path to a test sample (default: the relative path)."""
        return sample.relpath

    def key_for_relpath(self, relpath: str) -> Hashable | None:
        """The :meth:`sample_key` of the sample a features-file path names, or ``None`` if unparseable."""
        return relpath

    def eval_plan(self, **settings: Any) -> EvalPlan:
        """The official protocol under ``settings`` (query/gallery trials over ``self.test``)."""
        raise NotImplementedError
