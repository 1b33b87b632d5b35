"""``--distance jaccard`` (MoS, seeds/002 §3) through ``vireid evaluate-features`` on a Partial-REID tree."""

from __future__ import annotations

import json
import os

import numpy as np
import torch

from vireid.cli import main
from vireid.evaluation.features import save_features
from vireid.methods.mos.distance import save_prior


def _tree(root):
    paths = [f"partial_body_images/00{p}_01.jpg" for p in (1, 2)] + [f"whole_body_images/00{p}_01.jpg" for p in (1, 2)]
    for p in paths:
        os.makedirs(os.path.dirname(os.path.join(root, p)), exist_ok=True)
        open(os.path.join(root, p), "w").close()
    return paths


def _run(capsys, *args):
    code = main(["evaluate-features", *map(str, args), "--dataset", "partial-reid", "--counts", "off", "--json"])
    out = capsys.readouterr()
    return code, (json.loads(out.out) if code == 0 else out.err)


def test_jaccard_changes_the_ranking_and_is_recorded(tmp_path, capsys):
    paths = _tree(tmp_path / "p")
    # Euclidean: |q1 - g1| = 3 > |q1 - g2| = 2.45 and |q2 - g2| = 3.16 > |q2 - g1| = 3 (both wrong);
    # Jaccard: J(q1, g1) = 2/5 > J(q1, g2) = 2/6 and J(q2, g2) = 3/7 > J(q2, g1) = 2/7 (both right)
    feats = np.array([[3.0, 1.0, 1.0], [2.0, 3.0, 2.0],     # queries 1, 2
                      [0.0, 1.0, 1.0], [1.0, 0.0, 2.0]])    # gallery 1, 2
    save_features(tmp_path / "f.npz", feats, paths)
    code, euclid = _run(capsys, tmp_path / "f.npz", "--root", tmp_path / "p")
    assert code == 0 and euclid["mean"]["rank1"] == 0.0
    code, jac = _run(capsys, tmp_path / "f.npz", "--root", tmp_path / "p", "--distance", "jaccard")
    assert code == 0 and jac["mean"]["rank1"] == 100.0
    assert jac["settings"]["distance"] == "jaccard" and jac["settings"]["jaccard"] == {"lambda": 0.0}
    assert jac["settings"]["normalize"] is False and jac["settings"]["rerank"] == {"method": "none"}


def test_penalty_with_a_prior_file_and_bad_input(tmp_path, capsys):
    paths = _tree(tmp_path / "p")
    feats = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    save_features(tmp_path / "f.npz", feats, paths)
    # hard Jaccard ties query 1 between gallery 1 ({0, 2}) and gallery 2 ({0, 1}); the prior has seen
    # patterns 0 and 2 together on one person but never 0 and 1, so the penalty breaks the tie to gallery 1
    prior = torch.zeros(3, 3)
    prior[0, 0] = prior[2, 2] = prior[0, 2] = prior[2, 0] = prior[1, 1] = 1.0
    save_prior(tmp_path / "prior.npz", prior)
    code, res = _run(capsys, tmp_path / "f.npz", "--root", tmp_path / "p", "--distance", "jaccard",
                     "--jaccard-lambda", "0.1", "--jaccard-prior", tmp_path / "prior.npz", "--jaccard-top-k", "3")
    assert code == 0 and res["trials"][0]["rank1"] == 100.0
    assert res["settings"]["jaccard"] == {"lambda": 0.1, "top_k": 3, "eps": 0.05, "prior": str(tmp_path / "prior.npz"),
                                           "form": "seed"}
    # a seed-form prior file is refused by the normalized penalty (one line, exit 2)
    code, err = _run(capsys, tmp_path / "f.npz", "--root", tmp_path / "p", "--distance", "jaccard",
                     "--jaccard-lambda", "0.1", "--jaccard-prior", tmp_path / "prior.npz", "--jaccard-penalty",
                     "normalized")
    assert code == 2 and "collected for the 'seed' penalty form" in err and len(err.strip().splitlines()) == 1
    code, err = _run(capsys, tmp_path / "f.npz", "--root", tmp_path / "p", "--jaccard-penalty", "normalized")
    assert code == 2 and "--jaccard-penalty applies to --distance jaccard" in err
    code, err = _run(capsys, tmp_path / "f.npz", "--root", tmp_path / "p", "--distance", "jaccard",
                     "--jaccard-lambda", "0.1")
    assert code == 2 and "needs --jaccard-prior" in err
    code, err = _run(capsys, tmp_path / "f.npz", "--root", tmp_path / "p", "--jaccard-lambda", "0.1")
    assert code == 2 and "--jaccard-lambda applies to --distance jaccard" in err
    code, err = _run(capsys, tmp_path / "f.npz", "--root", tmp_path / "p", "--distance", "jaccard", "--rerank", "sim")
    assert code == 2 and "cannot be combined with --rerank sim" in err
    save_features(tmp_path / "neg.npz", feats - 0.5, paths)
    code, err = _run(capsys, tmp_path / "neg.npz", "--root", tmp_path / "p", "--distance", "jaccard")
    assert code == 2 and "needs non-negative features" in err and len(err.strip().splitlines()) == 1
