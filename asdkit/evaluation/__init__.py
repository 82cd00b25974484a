"""Evaluation: the official DCASE metrics, the official score and decision files, and their evaluation."""
from asdkit.evaluation import metrics, outputs  # noqa: F401
from asdkit.evaluation.evaluate import EvaluationResult, evaluate_scores, format_result, save_result  # noqa: F401
