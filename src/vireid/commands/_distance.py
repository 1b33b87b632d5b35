"""``--distance`` of ``vireid test`` / ``evaluate-features``: Euclidean, cosine, or MoS's Jaccard set
distance (seeds/002 §3; :mod:`vireid.methods.mos.distance`), the one place its flags become keywords.

``--distance jaccard`` scores non-negative features by ``1 - J`` (hard Jaccard); with
``--jaccard-lambda L > 0`` the conflict penalty is added (``1 - J + L * CP``), with the co-occurrence
prior read from ``--jaccard-prior FILE.npz`` or, in ``vireid test``, collected from the run's training
images. The choice and its parameters are recorded in the result's settings (``distance``,
``jaccard``), like the re-ranking options. It is off unless asked for.
"""

from __future__ import annotations

import argparse
from typing import Any

from vireid.errors import ConfigError

DISTANCES = ("euclidean", "cosine", "jaccard")
_JACCARD_FLAGS = ("jaccard_lambda", "jaccard_top_k", "jaccard_eps", "jaccard_prior", "jaccard_penalty")


def add_distance_arguments(parser: argparse.ArgumentParser, default: str = "euclidean") -> None:
    parser.add_argument("--distance", choices=DISTANCES, default=default,
                        help=f"query-gallery distance (default {default}); jaccard: MoS set distance 1 - J over "
                             "non-negative features (seeds/002 §3), features not L2-normalised")
    group = parser.add_argument_group("MoS Jaccard distance (--distance jaccard)")
    group.add_argument("--jaccard-lambda", type=float, default=None, metavar="L",
                       help="weight of the conflict penalty, S = J - L * CP (default 0: Jaccard only; MoS: 0.1)")
    group.add_argument("--jaccard-top-k", type=int, default=None, metavar="K",
                       help="channels of each pair's union the penalty and prior use (default 32)")
    group.add_argument("--jaccard-eps", type=float, default=None, metavar="E",
                       help="penalty tolerance, max(0, exp(M - M^p - E) - 1) (default 0.05)")
    group.add_argument("--jaccard-penalty", choices=("seed", "normalized"), default=None,
                       help="conflict penalty form: seed = the seed's sum over raw activations (default); "
                            "normalized = unions scaled to max 1 and the block averaged, bounded below 1.72 "
                            "(this project's variant)")
    group.add_argument("--jaccard-prior", default=None, metavar="FILE.npz",
                       help="co-occurrence prior ('prior' (C, C)); vireid test collects it from the run's "
                            "training images when omitted")


def check_distance_args(args: argparse.Namespace, reranker: Any) -> None:
    """Refuse Jaccard flags without ``--distance jaccard`` and Jaccard with a re-ranker."""
    if args.distance != "jaccard":
        for dest in _JACCARD_FLAGS:
            if getattr(args, dest, None) is not None:
                raise ConfigError(f"--{dest.replace('_', '-')} applies to --distance jaccard, "
                                  f"but --distance is {args.distance}")
    elif reranker is not None:
        raise ConfigError(f"--distance jaccard cannot be combined with --rerank {reranker.name} "
                          "(the re-rankers compute their own Euclidean distances)")


def needs_prior(args: argparse.Namespace) -> bool:
    """Whether the Jaccard distance asked for needs a co-occurrence prior that no file gives."""
    return args.distance == "jaccard" and (args.jaccard_lambda or 0.0) > 0 and args.jaccard_prior is None


def penalty_form(args: argparse.Namespace) -> str:
    """The conflict penalty form the flags ask for (``seed`` unless ``--jaccard-penalty`` says otherwise)."""
    return getattr(args, "jaccard_penalty", None) or "seed"


def jaccard_from_args(args: argparse.Namespace, prior: Any = None, prior_source: str = "") -> Any:
    """The :class:`~vireid.methods.mos.distance.JaccardDistance` the flags ask for (``prior`` when collected)."""
    from vireid.methods.mos.distance import JaccardDistance, load_prior

    form = penalty_form(args)
    if args.jaccard_prior is not None:
        prior, prior_source = load_prior(args.jaccard_prior, form), str(args.jaccard_prior)
    kwargs = {k: v for k, v in (("lam", args.jaccard_lambda), ("top_k", args.jaccard_top_k),
                                ("eps", args.jaccard_eps)) if v is not None}
    kwargs["form"] = form
    return JaccardDistance(prior=prior, prior_source=prior_source, **kwargs)


def record_distance(result: dict[str, Any], args: argparse.Namespace, fn: Any) -> None:
    """Write the distance and its parameters into ``result['settings']``."""
    if args.distance == "jaccard":
        result["settings"]["distance"] = "jaccard"
        result["settings"]["jaccard"] = fn.record()
