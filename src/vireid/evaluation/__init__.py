"""Evaluation: ranking metrics (CMC, mAP, mINP), protocol plans, features files."""

from vireid.evaluation.exclusion import Exclusion
from vireid.evaluation.features import FeatureSet, load_features, save_features
from vireid.evaluation.metrics import RankingResult, evaluate_distances, evaluate_features, pairwise_distance
from vireid.evaluation.protocols import EvalPlan, Trial, evaluate_plan, format_table

__all__ = ["EvalPlan", "Exclusion", "FeatureSet", "RankingResult", "Trial", "evaluate_distances", "evaluate_features",
           "evaluate_plan", "format_table", "load_features", "pairwise_distance", "save_features"]
