"""The re-ranker registry and the command-line adapter."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from vireid.errors import ConfigError
from vireid.rerank import (
    RERANKERS,
    add_rerank_arguments,
    build_reranker,
    describe_reranker,
    k_reciprocal_rerank,
    reranker_from_args,
    sim_rerank,
)


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_rerank_arguments(parser)
    return parser.parse_args(list(argv))


def _features() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(4, 6)), rng.normal(size=(9, 6))


def test_registry_names() -> None:
    from vireid.methods import METHODS

    from_methods = {name for m in METHODS.names() for name in METHODS.get(m).rerankers}
    assert set(RERANKERS) - from_methods == {"k-reciprocal", "sim"}  # the core's; methods add theirs (nformer)
    assert build_reranker("none") is None


def test_build_reranker_binds_parameters() -> None:
    qf, gf = _features()
    fn = build_reranker("sim", top_k=2, k_q=3, alpha=0.25)
    assert fn.__name__ == "sim_rerank"  # evaluation records it as "custom:sim_rerank"
    np.testing.assert_array_equal(fn(qf, gf), sim_rerank(qf, gf, top_k=2, k_q=3, alpha=0.25))
    fn = build_reranker("k-reciprocal", k1=4, k2=2, chunk_size=3)
    np.testing.assert_array_equal(fn(qf, gf), k_reciprocal_rerank(qf, gf, k1=4, k2=2, chunk_size=3))


def test_build_reranker_rejects_unknowns_early() -> None:
    with pytest.raises(ConfigError, match="unknown re-ranker 'knn'; valid names: none, k-reciprocal, nformer, sim"):
        build_reranker("knn")
    with pytest.raises(ConfigError, match=r"unknown parameter\(s\) \['k3'\] for re-ranker 'k-reciprocal'"):
        build_reranker("k-reciprocal", k3=1)
    with pytest.raises(ConfigError, match="takes no parameters"):
        build_reranker("none", k1=3)
    with pytest.raises(ConfigError, match="top_k must be an integer >= 1"):
        build_reranker("sim", top_k=0)
    with pytest.raises(ConfigError, match="normalize must be true or false"):
        build_reranker("sim", normalize="yes")


def test_default_is_no_reranking() -> None:
    fn, record = reranker_from_args(_parse())
    assert fn is None and record == {"method": "none"}
    assert reranker_from_args(argparse.Namespace()) == (None, {"method": "none"})


def test_records_every_parameter_with_defaults() -> None:
    _, record = reranker_from_args(_parse("--rerank", "k-reciprocal", "--rerank-k1", "15"))
    assert record == {"method": "k-reciprocal", "k1": 15, "k2": 6, "lambda_value": 0.3}
    fn, record = reranker_from_args(_parse("--rerank", "sim", "--sim-top-k", "1", "--sim-alpha", "0.9"))
    assert record == {"method": "sim", "lam": 1.0, "top_k": 1, "k_q": 10, "k_g": 10, "alpha": 0.9, "normalize": True}
    assert json.loads(json.dumps(record)) == record
    qf, gf = _features()
    rebuilt = build_reranker(record["method"], **{k: v for k, v in record.items() if k != "method"})
    np.testing.assert_array_equal(fn(qf, gf), rebuilt(qf, gf))
    assert describe_reranker(record) == "sim (lam=1.0, top_k=1, k_q=10, k_g=10, alpha=0.9, normalize=True)"
    assert describe_reranker({"method": "none"}) == "none"


def test_flags_of_the_other_method_are_errors() -> None:
    with pytest.raises(ConfigError, match="--sim-alpha applies to --rerank sim, but --rerank is k-reciprocal"):
        reranker_from_args(_parse("--rerank", "k-reciprocal", "--sim-alpha", "0.2"))
    with pytest.raises(ConfigError, match="--rerank-k1 applies to --rerank k-reciprocal, but --rerank is none"):
        reranker_from_args(_parse("--rerank-k1", "5"))


def test_bad_values_name_the_flag() -> None:
    with pytest.raises(ConfigError, match=r"--rerank-lambda: lambda_value must be in \[0.0, 1.0\], got 2.0"):
        reranker_from_args(_parse("--rerank", "k-reciprocal", "--rerank-lambda", "2"))
    with pytest.raises(ConfigError, match="--sim-kg: k_g must be an integer >= 1, got 0"):
        reranker_from_args(_parse("--rerank", "sim", "--sim-kg", "0"))


def test_unknown_method_is_refused_by_the_parser() -> None:
    with pytest.raises(SystemExit):
        _parse("--rerank", "fancy")
