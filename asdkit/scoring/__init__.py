"""Scoring backends: small blocks on embedding arrays that turn embeddings into anomaly scores.

Every backend follows one contract (:class:`Scorer`, with :class:`DomainScorer`
and :class:`TrainingScorer` for what some add): ``fit(X, domains=None)`` on the normal
training embeddings, ``score_samples(X)`` returns **higher = more anomalous**
(the DCASE convention, the opposite of scikit-learn's), so any embedding
(ResNet18, classifier, autoencoder residuals, a user's pretrained model) meets
any backend.
"""
from asdkit.scoring.domain import DomainKNNScorer, SelectiveScorer  # noqa: F401
from asdkit.scoring.frames import FrameMahalanobisScorer  # noqa: F401
from asdkit.scoring.kmeans import KMeansTargetScorer, unit_rows  # noqa: F401
from asdkit.scoring.knn import KNNScorer  # noqa: F401
from asdkit.scoring.mahalanobis import MahalanobisScorer, MSEScorer, SelectiveMahalanobisScorer  # noqa: F401
from asdkit.scoring.normalize import ScoreNormalizer, check_prior, check_weights, shrink_toward, weighted_sum  # noqa: F401
from asdkit.scoring.protocol import DomainScorer, Scorer, TrainingScorer  # noqa: F401
from asdkit.scoring.threshold import gamma_threshold  # noqa: F401

__all__ = ["gamma_threshold", "ScoreNormalizer", "check_weights", "check_prior", "shrink_toward", "weighted_sum",
           "KNNScorer", "KMeansTargetScorer",
           "unit_rows", "MahalanobisScorer", "MSEScorer", "SelectiveMahalanobisScorer", "FrameMahalanobisScorer",
           "SelectiveScorer", "DomainKNNScorer", "Scorer", "DomainScorer", "TrainingScorer"]
