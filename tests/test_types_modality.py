"""``Modality.TEXT`` is a member by value, name and alias, while iteration stays on the image modalities."""

from __future__ import annotations

import pickle

from vireid.types import Modality


def test_text_modality_is_reachable_but_not_iterated():
    assert list(Modality) == [Modality.VISIBLE, Modality.INFRARED] and len(Modality) == 2
    assert Modality(2) is Modality.TEXT is Modality["TEXT"] is Modality.parse("text") is Modality.parse("caption")
    assert pickle.loads(pickle.dumps(Modality.TEXT)) is Modality.TEXT
    assert Modality.all() == (Modality.VISIBLE, Modality.INFRARED, Modality.TEXT)
    assert Modality.parse("ir") is Modality.INFRARED and int(Modality.TEXT) == 2
