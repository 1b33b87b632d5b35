"""CAJ: Channel Augmented Joint learning, Ye et al., "Channel Augmented Joint Learning for
Visible-Infrared Recognition", ICCV 2021 (seeds/001 §8; METHODS.md §4).

- :mod:`.augment`: channel exchange (CA), channel random erasing (CRE) and the public code's
  infrared ``ChannelAdapGray``, registered as image augmentations (``data.augment``).
- :mod:`.joint`: joint learning, the channel-augmented copy of every visible image as a third view
  (batch augmentation ``caj_joint``).
- :mod:`.losses`: the enhanced squared-difference WRT (``wrt_squared``).
- Recipes: ``configs/caj_sysu.yaml`` (paper), ``configs/caj_synthetic.yaml`` (CPU).
"""

from vireid.methods.caj.augment import (ChannelAdapGray, ChannelExchange, ChannelRandomErasing, channel_exchange,
                                        channel_random_erasing, infrared_adap_gray)
from vireid.methods.caj.joint import CAJJointAugment, caj_joint
from vireid.methods.caj.losses import SquaredDifferenceWRT
from vireid.methods.registry import Method, register_method

METHOD = register_method(Method(
    name="caj",
    paper="Ye et al., Channel Augmented Joint Learning for Visible-Infrared Recognition, ICCV 2021",
    seed="seeds/001 §8",
    reference="METHODS.md §4",
    recipes=("caj_sysu.yaml", "caj_synthetic.yaml"),
    status="implemented, tested; synthetic same-budget comparison in the README (matches AGW)",
    losses={"wrt_squared": SquaredDifferenceWRT},
    batch_augments={"caj_joint": caj_joint},
    augmentations={"channel_exchange": channel_exchange, "channel_random_erasing": channel_random_erasing,
                   "infrared_adap_gray": infrared_adap_gray},
))

__all__ = ["CAJJointAugment", "ChannelAdapGray", "ChannelExchange", "ChannelRandomErasing", "METHOD",
           "SquaredDifferenceWRT", "caj_joint"]
