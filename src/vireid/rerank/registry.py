"""The re-ranker registry and its command-line adapter (the one place flags become keywords).

Re-ranking is never on by default: ``--rerank none`` is the default and builds nothing.

Streaming contract (what the evaluator consumes): a re-ranker is registered by its *stream*
function ``stream(qf, gf, **params) -> Iterator[(rows, block)]`` that does its whole-set work and
then yields the (len(rows), ng) float32 re-ranked distances of consecutive query rows, so that
:func:`vireid.evaluation.metrics.evaluate_distance_chunks` never holds the (nq, ng) matrix
(MSMT17: 11,659 x 82,161). :class:`Reranker` wraps it: ``reranker.stream(qf, gf)`` for the
evaluator, ``reranker(qf, gf)`` for the full matrix (the concatenated blocks). A test-time
refiner that lands later (NFormer, which refines features over the query and gallery set and
then ranks by distance) plugs in the same way: ``register_reranker("nformer", nformer_stream,
recorded=(...))`` with a stream function that refines once and yields its distance blocks; the
CLI flags, evaluation and result records need no change.
"""

from __future__ import annotations

import argparse
import inspect
import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from torch import Tensor

from vireid.errors import ConfigError
from vireid.registry import Registry
from vireid.rerank._distance import check_float, check_int, collect_stream
from vireid.rerank.k_reciprocal import k_reciprocal_stream
from vireid.rerank.sim import sim_stream

StreamFn = Callable[..., Iterator[tuple[slice, Tensor]]]

# name -> stream function (keyword-only parameters with defaults), in the project's one registry
RERANKERS: Registry[StreamFn] = Registry("re-ranker")
# The parameters that change a method's output: recorded with every result.
RECORDED: dict[str, tuple[str, ...]] = {}


def register_reranker(name: str, stream: StreamFn, *, recorded: tuple[str, ...]) -> None:
    """Add a re-ranker (or test-time refiner) by its stream function; ``recorded`` names the
    keyword parameters that change its output (stored with every result)."""
    if name == "none" or name in RERANKERS:
        raise ConfigError(f"re-ranker {name!r} is already registered")
    RERANKERS.register(name, stream)
    RECORDED[name] = tuple(recorded)


def unregister_reranker(name: str) -> None:
    RERANKERS.unregister(name)
    RECORDED.pop(name, None)


def rerank_methods() -> tuple[str, ...]:
    """``"none"`` and every registered re-ranker (the ``--rerank`` choices)."""
    return ("none", *RERANKERS.names())


register_reranker("k-reciprocal", k_reciprocal_stream, recorded=("k1", "k2", "lambda_value"))  # Zhong et al., CVPR'17
register_reranker("sim", sim_stream, recorded=("lam", "top_k", "k_q", "k_g", "alpha", "normalize"))  # seeds/002 §5


class Reranker:
    """A configured re-ranker: ``stream(qf, gf)`` yields (rows, block) of re-ranked distances,
    ``(qf, gf)`` returns the full (nq, ng) float32 numpy matrix (the concatenated blocks)."""

    def __init__(self, name: str, stream: StreamFn, params: dict[str, Any]) -> None:
        self.name, self._stream, self.params = name, stream, dict(params)
        self.__name__ = getattr(stream, "__name__", name).removesuffix("_stream") + "_rerank"

    def stream(self, qf: Tensor | np.ndarray, gf: Tensor | np.ndarray) -> Iterator[tuple[slice, Tensor]]:
        return self._stream(qf, gf, **self.params)

    def __call__(self, qf: Tensor | np.ndarray, gf: Tensor | np.ndarray) -> np.ndarray:
        return collect_stream(self.stream(qf, gf))

    def __repr__(self) -> str:
        return f"Reranker({self.name!r}, {self.params})"

# argparse destination -> (method, keyword).
_FLAGS: dict[str, tuple[str, str]] = {
    "rerank_k1": ("k-reciprocal", "k1"),
    "rerank_k2": ("k-reciprocal", "k2"),
    "rerank_lambda": ("k-reciprocal", "lambda_value"),
    "sim_lambda": ("sim", "lam"),
    "sim_top_k": ("sim", "top_k"),
    "sim_kq": ("sim", "k_q"),
    "sim_kg": ("sim", "k_g"),
    "sim_alpha": ("sim", "alpha"),
}
# flags a method package adds for its own re-ranker: dest -> (method, keyword, type, metavar, help)
_EXTRA_FLAGS: dict[str, tuple[str, str, type, str, str]] = {}


def register_rerank_flag(dest: str, method: str, key: str, kind: type, metavar: str, text: str) -> None:
    """Add ``--<dest with dashes>`` setting keyword ``key`` of re-ranker ``method`` (a method package
    calls this beside ``register_method``; e.g. NFormer's ``--nformer-topk``)."""
    if dest in _FLAGS or (dest in _EXTRA_FLAGS and _EXTRA_FLAGS[dest][:2] != (method, key)):
        raise ConfigError(f"re-ranker flag --{dest.replace('_', '-')} is already registered")
    _EXTRA_FLAGS[dest] = (method, key, kind, metavar, text)


def _all_flags() -> dict[str, tuple[str, str]]:
    return {**_FLAGS, **{dest: (m, k) for dest, (m, k, *_rest) in _EXTRA_FLAGS.items() if m in RERANKERS}}


def bind_run(reranker: "Reranker | None", record: dict[str, Any], run: str, checkpoint: str) -> None:
    """Give a re-ranker that reads a trained model (a ``run`` keyword, e.g. NFormer's refiner) the
    run being tested, unless its ``run`` was set explicitly; updates ``record`` to match."""
    if reranker is None or "run" not in _keywords(reranker.name) or reranker.params.get("run") is not None:
        return
    reranker.params["run"], record["run"] = str(run), str(run)
    if "checkpoint" in _keywords(reranker.name):
        reranker.params["checkpoint"], record["checkpoint"] = str(checkpoint), str(checkpoint)


def _keywords(name: str) -> dict[str, Any]:
    """Keyword-only parameters of a registered re-ranker and their defaults."""
    sig = inspect.signature(RERANKERS.get(name))
    return {p.name: p.default for p in sig.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY}


def default_params(name: str) -> dict[str, Any]:
    """The recorded parameters of ``name`` at their defaults (``{}`` for ``"none"``)."""
    if name == "none":
        return {}
    _check_name(name)
    defaults = _keywords(name)
    return {k: defaults[k] for k in RECORDED[name]}


def _check_name(name: str) -> None:
    if name not in rerank_methods():
        raise ConfigError(f"unknown re-ranker {name!r}; valid names: {', '.join(rerank_methods())}")


def _validate(name: str, params: dict[str, Any]) -> None:
    """The same range checks the re-rankers apply, run before any feature is extracted."""
    for key, value in params.items():
        if key in ("topk", "landmarks", "cross_modal_quota", "seed", "run") and value is None:
            continue
        if key in ("topk", "landmarks"):
            check_int(key, value, 1)
        elif key in ("cross_modal_quota", "seed"):
            check_int(key, value, 0)
        elif key in ("k1", "k2", "top_k", "k_q", "k_g"):
            check_int(key, value, 1)
        elif key in ("lambda_value", "alpha"):
            check_float(key, value, 0.0, 1.0)
        elif key == "lam":
            if not math.isfinite(check_float(key, value, 0.0, math.inf)):
                raise ConfigError(f"lam must be finite, got {value!r}")
        elif key == "normalize" and not isinstance(value, bool):
            raise ConfigError(f"normalize must be true or false, got {value!r}")
        elif key in ("chunk_size", "column_chunk_size", "query_chunk") and value is not None:
            check_int(key, value, 1)


def build_reranker(name: str, **params: Any) -> Reranker | None:
    """A :class:`Reranker` (``stream(qf, gf)`` and ``(qf, gf) -> (nq, ng)``), or None for "none".

    Args:
        name: ``"none"``, ``"k-reciprocal"``, ``"sim"`` or a registered name.
        **params: keyword arguments of :func:`k_reciprocal_stream` / :func:`sim_stream`
            (including ``chunk_size`` and ``device``); unknown names are errors.
    """
    _check_name(name)
    if name == "none":
        if params:
            raise ConfigError(f"re-ranker 'none' takes no parameters, got {sorted(params)}")
        return None
    valid = _keywords(name)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ConfigError(f"unknown parameter(s) {unknown} for re-ranker {name!r}; valid: {sorted(valid)}")
    _validate(name, params)
    return Reranker(name, RERANKERS.get(name), params)


def add_rerank_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--rerank`` and the parameter flags of every re-ranker to ``parser``."""
    kr, sim = default_params("k-reciprocal"), default_params("sim")
    group = parser.add_argument_group("re-ranking (test time; off by default)")
    group.add_argument(
        "--rerank",
        choices=rerank_methods(),
        default="none",
        help="re-rank query-gallery distances: k-reciprocal (Zhong et al., CVPR 2017) or sim "
        "(seeds/002 §5), or a method's test-time refiner (nformer: see vireid methods); default: none",
    )
    helps = {
        "rerank_k1": ("K", int, f"k-reciprocal k1 (default {kr['k1']})"),
        "rerank_k2": ("K", int, f"k-reciprocal k2, 1 = no query expansion (default {kr['k2']})"),
        "rerank_lambda": ("L", float, f"k-reciprocal weight of the original distance (default {kr['lambda_value']})"),
        "sim_lambda": ("L", float, f"SIM weight of gallery-gallery edges, Eq. 1 (default {sim['lam']})"),
        "sim_top_k": ("K", int, f"SIM number of shortest paths averaged, Eq. 5 (default {sim['top_k']})"),
        "sim_kq": ("K", int, f"SIM query neighbour set size, Eq. 6 (default {sim['k_q']})"),
        "sim_kg": ("K", int, f"SIM gallery k-reciprocal k, Eq. 7 (default {sim['k_g']})"),
        "sim_alpha": ("A", float, f"SIM weight of d_S against d_M, Eq. 8 (default {sim['alpha']})"),
    }
    for dest, (method, _key, kind, metavar, text) in _EXTRA_FLAGS.items():
        if method in RERANKERS:
            helps[dest] = (metavar, kind, text)
    for dest, (metavar, kind, text) in helps.items():
        group.add_argument("--" + dest.replace("_", "-"), type=kind, default=None, metavar=metavar, help=text)


def reranker_from_args(args: argparse.Namespace) -> tuple[Reranker | None, dict[str, Any]]:
    """The re-ranker chosen on the command line and the record of its method and parameters.

    The record, e.g. ``{"method": "sim", "lam": 1.0, "top_k": 3, ...}``, holds every parameter that
    changes the output (defaults included) for the JSON result and the readable table;
    ``build_reranker(record["method"], **rest)`` rebuilds the same re-ranker. A parameter flag of a
    method other than the chosen one is an error rather than silently ignored.
    """
    method = getattr(args, "rerank", None) or "none"
    _check_name(method)
    params = default_params(method)
    for dest, (owner, key) in _all_flags().items():
        value = getattr(args, dest, None)
        if value is None:
            continue
        flag = "--" + dest.replace("_", "-")
        if owner != method:
            raise ConfigError(f"{flag} applies to --rerank {owner}, but --rerank is {method}")
        params[key] = value
    try:
        reranker = build_reranker(method, **params)
    except ConfigError as exc:
        flags = {key: "--" + dest.replace("_", "-") for dest, (owner, key) in _all_flags().items() if owner == method}
        bad = next((flags[k] for k in flags if str(exc).startswith(f"{k} ")), None)
        raise ConfigError(f"{bad}: {exc}" if bad else str(exc)) from None
    return reranker, {"method": method, **params}


def describe_reranker(record: dict[str, Any]) -> str:
    """One line for a readable table, e.g. ``sim (lam=1.0, top_k=3, k_q=10, k_g=10, ...)``."""
    rest = ", ".join(f"{k}={v}" for k, v in record.items() if k != "method")
    return f"{record['method']} ({rest})" if rest else str(record["method"])
