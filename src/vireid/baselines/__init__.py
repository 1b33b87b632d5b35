"""Learning-free baselines evaluated next to the trained networks."""

from vireid.baselines.color_histogram import color_histogram_features, hellinger_embedding, histogram_distances

__all__ = ["color_histogram_features", "hellinger_embedding", "histogram_distances"]
