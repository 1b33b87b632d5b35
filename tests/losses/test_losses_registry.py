"""The loss registry: names, unknown names and unknown arguments."""

from __future__ import annotations

import pytest

from vireid.errors import ConfigError
from vireid.losses import (
    CrossEntropyLabelSmooth,
    TripletBatchHard,
    WeightedRegularizedTriplet,
    build_loss,
    get_loss_class,
    list_losses,
)


def test_registered_losses() -> None:
    assert {"cross_entropy", "triplet_hard", "wrt"} <= set(list_losses())
    assert get_loss_class("wrt") is WeightedRegularizedTriplet
    assert isinstance(build_loss("cross_entropy", epsilon=0.2), CrossEntropyLabelSmooth)
    loss = build_loss("triplet_hard", margin=0.5, feature="bn_features")
    assert isinstance(loss, TripletBatchHard) and loss.margin == 0.5 and loss.feature == "bn_features"


def test_unknown_name_and_argument() -> None:
    with pytest.raises(ValueError, match=r"unknown loss 'triplet'; valid: .*cross_entropy.*triplet_hard.*wrt"):
        build_loss("triplet")
    with pytest.raises(ConfigError, match=r"unknown config key loss 'wrt'\.margin; valid keys: normalize, feature"):
        build_loss("wrt", margin=0.3)
