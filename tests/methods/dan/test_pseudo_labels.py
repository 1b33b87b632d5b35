"""DAN pseudo-label generation (seeds/000 Eq. 5-8) and the DBSCAN baseline's clusters."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vireid.methods.dan.pseudo_labels import (ExemplarMemory, assign_hard_labels, auto_eps, class_prototypes,
                                         cluster_centroids, dbscan_labels, label_agreement, reliable_neighbours)


def test_prototypes_are_per_modality_class_means() -> None:
    feats = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0], [0.0, 4.0], [5.0, 5.0]])
    labels = torch.tensor([0, 0, 1, 1, 0])
    modality = torch.tensor([0, 0, 0, 1, 1])
    protos, valid = class_prototypes(feats, labels, modality, num_classes=3)
    assert protos.shape == (2, 3, 2)
    torch.testing.assert_close(protos[0, 0], torch.tensor([2.0, 0.0]))  # visible class 0: mean of rows 0, 1
    torch.testing.assert_close(protos[0, 1], torch.tensor([0.0, 2.0]))
    torch.testing.assert_close(protos[1, 0], torch.tensor([5.0, 5.0]))
    torch.testing.assert_close(protos[1, 1], torch.tensor([0.0, 4.0]))
    assert valid.tolist() == [[True, True, False], [True, True, False]]
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\)"):
        class_prototypes(feats, torch.tensor([0, 0, 1, 1, 3]), modality, 3)


def test_hard_labels_take_the_most_cosine_similar_prototype_of_the_same_modality() -> None:
    protos = torch.zeros(2, 3, 2)
    protos[0, 0], protos[0, 1] = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])  # visible: classes 0, 1
    protos[1, 1], protos[1, 2] = torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0])  # infrared: classes 1, 2
    valid = torch.tensor([[True, True, False], [False, True, True]])
    target = torch.tensor([[10.0, 1.0], [1.0, 3.0], [1.0, 0.1], [1.0, 0.9], [-1.0, 5.0]])
    modality = torch.tensor([0, 0, 1, 1, 1])
    labels, sim = assign_hard_labels(target, modality, protos, valid)
    # infrared row 4 (-1, 5): cos with (1, 0) = -0.196, with (1, 1)/sqrt2 = 0.555 -> class 2 (class 0 invalid)
    assert labels.tolist() == [0, 1, 1, 2, 2]
    assert float(sim[0]) == pytest.approx(10 / np.sqrt(101), rel=1e-6)
    assert float(sim[4]) == pytest.approx(4 / np.sqrt(26) / np.sqrt(2), rel=1e-6)
    with pytest.raises(ValueError, match="no source prototype of modality infrared"):
        assign_hard_labels(target, modality, protos, torch.tensor([[True, True, False], [False, False, False]]))


def test_reliable_neighbours_are_same_modality_most_similar_and_exclude_self() -> None:
    bank = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.95, 0.05], [0.99, 0.0], [0.1, 1.0]])
    bank_mod = torch.tensor([0, 0, 0, 1, 1, 0])
    nb = reliable_neighbours(bank[[0, 4]], torch.tensor([0, 4]), bank_mod[[0, 4]], bank, bank_mod, m=1)
    # row 0 (visible): visible rows 1 (cos .994), 5 (.10), 2 (0); infrared rows 3, 4 (cos > .99) excluded
    # row 4 (infrared): the only other infrared row, 3
    assert nb.tolist() == [[1], [3]]
    nb2 = reliable_neighbours(bank[[0]], torch.tensor([0]), bank_mod[[0]], bank, bank_mod, m=2)
    assert nb2.tolist() == [[1, 5]]
    with pytest.raises(ValueError, match="only 2 images of modality infrared"):
        reliable_neighbours(bank[[4]], torch.tensor([4]), torch.tensor([1]), bank, bank_mod, m=2)


def test_exemplar_memory_reset_update_and_neighbours() -> None:
    memory = ExemplarMemory(torch.tensor([0, 0, 1, 1]), dim=2, momentum=0.5)
    memory.reset(torch.tensor([[2.0, 0.0], [0.0, 3.0], [1.0, 1.0], [1.0, -1.0]]))
    torch.testing.assert_close(memory.features.norm(dim=1), torch.ones(4))
    memory.update(torch.tensor([1]), torch.tensor([[5.0, 0.0]]))
    # normalize(0.5 * (0, 1) + 0.5 * (1, 0)) = (1, 1) / sqrt 2
    torch.testing.assert_close(memory.features[1], torch.tensor([1.0, 1.0]) / np.sqrt(2))
    assert memory.neighbours(torch.tensor([[1.0, 0.0]]), torch.tensor([2]), m=1).tolist() == [[3]]
    frozen = ExemplarMemory(torch.tensor([0, 1]), dim=2, momentum=1.0)
    frozen.reset(torch.eye(2))
    frozen.update(torch.tensor([0]), torch.tensor([[0.0, 1.0]]))
    torch.testing.assert_close(frozen.features, torch.eye(2))
    with pytest.raises(ValueError, match="momentum"):
        ExemplarMemory(torch.tensor([0]), 2, momentum=1.5)


def test_dbscan_finds_well_separated_clusters_and_marks_outliers() -> None:
    rng = np.random.default_rng(0)
    centres = np.eye(4)[:3] * 10
    feats = np.concatenate([c + rng.normal(scale=0.3, size=(6, 4)) for c in centres] + [np.array([[0, 0, 0, 10.0]])])
    labels, eps = dbscan_labels(feats, eps=0.05, min_samples=3)
    assert eps == 0.05
    assert label_agreement(np.repeat([0, 1, 2, 3], [6, 6, 6, 1]), labels)["nmi"] == pytest.approx(1.0)
    assert labels[-1] == -1 and len(set(labels[:-1].tolist())) == 3
    auto, auto_value = dbscan_labels(feats, None, min_samples=3, rho=0.2)
    assert 0 < auto_value < 0.05 and len(set(auto[:-1].tolist()) - {-1}) == 3
    centroids = cluster_centroids(torch.from_numpy(feats).float(), torch.from_numpy(labels))
    assert centroids.shape == (3, 4)
    torch.testing.assert_close(centroids.norm(dim=1), torch.ones(3))


def test_auto_eps_is_the_mean_of_the_smallest_distances() -> None:
    feats = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    # pairwise cosine distances: 0 (rows 0-1), 1, 2, 1, 2, 1 -> smallest 2 of 6: 0 and 1
    assert auto_eps(feats, rho=2 / 6) == pytest.approx(0.5)
    agreement = label_agreement(np.array([0, 0, 1, 1]), np.array([5, 5, -1, -1]))
    assert agreement == {"nmi": pytest.approx(1.0), "kept": 0.5}
