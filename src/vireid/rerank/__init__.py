"""Test-time re-ranking of query-gallery distances: k-reciprocal (Zhong et al., CVPR 2017) and
SIM (seeds/002 §5). Both take (nq, D) query and (ng, D) gallery features and return an (nq, ng)
float32 numpy distance matrix; neither is ever on by default."""

from vireid.rerank.k_reciprocal import k_reciprocal_rerank
from vireid.rerank.original_distance import original_distance_matrix
from vireid.rerank.reciprocal import expanded_reciprocal_sets, k_reciprocal_sets, knn_from_distances
from vireid.rerank.registry import (
    METHODS,
    RECORDED,
    RERANKERS,
    add_rerank_arguments,
    build_reranker,
    default_params,
    describe_reranker,
    reranker_from_args,
)
from vireid.rerank.sim import min_plus_topk_mean, sim_rerank

__all__ = [
    "METHODS",
    "RECORDED",
    "RERANKERS",
    "add_rerank_arguments",
    "build_reranker",
    "default_params",
    "describe_reranker",
    "expanded_reciprocal_sets",
    "k_reciprocal_rerank",
    "k_reciprocal_sets",
    "knn_from_distances",
    "min_plus_topk_mean",
    "original_distance_matrix",
    "reranker_from_args",
    "sim_rerank",
]
