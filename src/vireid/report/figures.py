"""Report figures beyond CMC and ranked lists: training curves, t-SNE, distance distributions, heatmaps.

The feature analyses follow the visual arguments of the source papers (seeds/003 §3.4, seeds/002
"可视化分析"): a t-SNE map of test features coloured by identity with one marker per modality, and
the distributions of intra-class and inter-class cross-modality distances. Every figure is written
atomically (matplotlib, Agg backend).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vireid.utils.io import atomic_path

MARKERS = {0: ("o", "visible"), 1: ("^", "infrared")}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp)
    _plt().close(fig)


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The records of a run's ``metrics.jsonl`` (one JSON object per line; a torn last line is skipped)."""
    records = []
    for line in Path(path).read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def plot_training_curves(records: Sequence[Mapping[str, Any]], path: str | Path, title: str = "") -> None:
    """Per-epoch training losses, identity accuracy and learning-rate factor; validation metrics if any."""
    plt = _plt()
    train = [r for r in records if r.get("kind") == "train"]
    val = [r for r in records if r.get("kind") == "val"]
    if not train:
        raise ValueError("no training records (kind 'train') in metrics.jsonl")
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4), dpi=110)
    epochs = [r["epoch"] for r in train]
    skip = {"kind", "epoch", "lr_factor", "seconds", "images_per_s", "train_acc"}
    for key in [k for k in train[-1] if k not in skip and isinstance(train[-1][k], (int, float))]:
        axes[0].plot(epochs, [r.get(key, np.nan) for r in train], marker="o", markersize=3, label=key)
    axes[0].set_title("training losses", fontsize=9)
    if "train_acc" in train[-1]:
        axes[1].plot(epochs, [100 * r.get("train_acc", np.nan) for r in train], marker="o", markersize=3,
                     label="train identity accuracy")
    for key in ("rank1", "mAP", "mINP"):
        if val and key in val[-1]:
            axes[1].plot([r["epoch"] for r in val], [r[key] for r in val], marker="s", markersize=3,
                         label=f"validation {key}")
    axes[1].set_title("accuracy (%); validation = held-out training data, not the test set", fontsize=8)
    axes[2].plot(epochs, [r.get("lr_factor", np.nan) for r in train], marker="o", markersize=3)
    axes[2].set_title("learning-rate factor", fontsize=9)
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    _save(fig, path)


def tsne_embedding(features: np.ndarray, seed: int = 0) -> np.ndarray:
    """2-D t-SNE (scikit-learn) of L2-normalised ``features`` (N, D) -> (N, 2)."""
    from sklearn.manifold import TSNE

    f = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    perplexity = float(min(30.0, max(2.0, (len(f) - 1) / 3)))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(f)


def draw_tsne(ax: Any, points: np.ndarray, pids: np.ndarray, modality: np.ndarray, title: str) -> None:
    """Scatter ``points`` (N, 2): colour = identity, marker = modality (o visible, ^ infrared)."""
    plt = _plt()
    ids = sorted(set(pids.tolist()))
    cmap = plt.get_cmap("tab20", max(len(ids), 1))
    colour = {pid: cmap(i % cmap.N) for i, pid in enumerate(ids)}
    for m, (marker, label) in MARKERS.items():
        sel = modality == m
        if sel.any():
            ax.scatter(points[sel, 0], points[sel, 1], c=[colour[p] for p in pids[sel]], marker=marker, s=18,
                       edgecolors="k", linewidths=0.3, label=label)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=8)
    ax.legend(fontsize=7, loc="best")


def plot_tsne(panels: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray]], path: str | Path) -> None:
    """One t-SNE panel per ``(title, features, pids, modality)``, side by side."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.6), dpi=110, squeeze=False)
    for ax, (title, feats, pids, mods) in zip(axes[0], panels):
        draw_tsne(ax, tsne_embedding(feats), pids, mods, title)
    fig.tight_layout()
    _save(fig, path)


def distance_distributions(qf: np.ndarray, gf: np.ndarray, q_pids: np.ndarray, g_pids: np.ndarray,
                           excluded: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distances of L2-normalised query/gallery features: (intra-class, inter-class) 1-D arrays.

    ``excluded`` (nq, ng) bool marks the pairs the protocol removes; they are left out.
    """
    q = qf / np.maximum(np.linalg.norm(qf, axis=1, keepdims=True), 1e-12)
    g = gf / np.maximum(np.linalg.norm(gf, axis=1, keepdims=True), 1e-12)
    d = np.sqrt(np.maximum(2.0 - 2.0 * q @ g.T, 0.0))  # (nq, ng) unit vectors: |q - g|^2 = 2 - 2 q.g
    same = q_pids[:, None] == g_pids[None, :]  # (nq, ng)
    keep = np.ones_like(same) if excluded is None else ~excluded
    return d[same & keep], d[~same & keep]


def draw_distances(ax: Any, intra: np.ndarray, inter: np.ndarray, title: str) -> None:
    bins = np.linspace(0.0, 2.0, 61)
    ax.hist(inter, bins=bins, density=True, alpha=0.55, color="tab:red", label=f"inter-class (n={len(inter)})")
    ax.hist(intra, bins=bins, density=True, alpha=0.55, color="tab:green", label=f"intra-class (n={len(intra)})")
    ax.axvline(float(np.mean(intra)), color="tab:green", lw=1, ls="--")
    ax.axvline(float(np.mean(inter)), color="tab:red", lw=1, ls="--")
    ax.set_xlabel("query-gallery distance (L2-normalised features)")
    ax.set_ylabel("density")
    ax.set_title(title, fontsize=8)
    ax.legend(fontsize=7)


def plot_distances(panels: Sequence[tuple[str, np.ndarray, np.ndarray]], path: str | Path) -> None:
    """One histogram panel per ``(title, intra, inter)``, side by side."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), dpi=110, squeeze=False)
    for ax, (title, intra, inter) in zip(axes[0], panels):
        draw_distances(ax, intra, inter, title)
    fig.tight_layout()
    _save(fig, path)


def plot_heatmaps(images: Sequence[np.ndarray], rows: Mapping[str, np.ndarray], captions: Sequence[str],
                  path: str | Path, title: str = "") -> None:
    """Grid: column j = ``images[j]`` (H, W, 3 uint8) and one overlay per ``rows[name][j]`` (H, W) in [0, 1]."""
    plt = _plt()
    n, r = len(images), 1 + len(rows)
    fig, axes = plt.subplots(r, n, figsize=(1.3 * n + 0.6, 2.3 * r), dpi=110, squeeze=False)
    for j, img in enumerate(images):
        axes[0][j].imshow(img)
        axes[0][j].set_title(captions[j], fontsize=6)
        for i, (name, maps) in enumerate(rows.items(), start=1):
            axes[i][j].imshow(img)
            axes[i][j].imshow(maps[j], cmap="jet", alpha=0.5, vmin=0.0, vmax=1.0)
            if j == 0:
                axes[i][j].set_ylabel(name, fontsize=7)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    _save(fig, path)
