"""Test-time re-ranking of query-gallery distances: k-reciprocal (Zhong et al., CVPR 2017) and
SIM (seeds/002 §5). Both take (nq, D) query and (ng, D) gallery features; ``*_stream`` yields the
re-ranked distances block by block of query rows (what the evaluator consumes, so the (nq, ng)
matrix is never held), ``*_rerank`` returns the whole float32 numpy matrix. Neither is ever on by
default; :mod:`vireid.rerank.registry` holds the streaming contract for later refiners."""

from vireid.rerank.k_reciprocal import k_reciprocal_rerank, k_reciprocal_stream
from vireid.rerank.original_distance import original_distance_matrix
from vireid.rerank.reciprocal import expanded_reciprocal_sets, k_reciprocal_sets, knn_from_distances
from vireid.rerank.registry import (
    rerank_methods,
    RECORDED,
    RERANKERS,
    Reranker,
    add_rerank_arguments,
    build_reranker,
    default_params,
    describe_reranker,
    register_reranker,
    unregister_reranker,
    reranker_from_args,
)
from vireid.rerank.sim import min_plus_topk_mean, sim_rerank, sim_stream

__all__ = [
    "rerank_methods",
    "RECORDED",
    "RERANKERS",
    "Reranker",
    "add_rerank_arguments",
    "build_reranker",
    "default_params",
    "describe_reranker",
    "expanded_reciprocal_sets",
    "k_reciprocal_rerank",
    "k_reciprocal_stream",
    "k_reciprocal_sets",
    "knn_from_distances",
    "min_plus_topk_mean",
    "original_distance_matrix",
    "register_reranker",
    "unregister_reranker",
    "reranker_from_args",
    "sim_rerank",
    "sim_stream",
]
