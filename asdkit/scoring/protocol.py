"""The scorer contract as types: what every scoring backend offers, with one signature per method.

A scorer turns embeddings (or residuals) into anomaly scores, **higher = more
anomalous**. :class:`Scorer` is what every backend has; :class:`DomainScorer`
adds one score column per domain; :class:`TrainingScorer` adds scores of its
own training samples that do not count a sample as its own neighbour (what a
normaliser or a threshold is fitted on). The protocols are
``runtime_checkable``: ``isinstance(obj, TrainingScorer)`` asks a scorer what
it can do instead of probing it with ``hasattr``. A user's own backend obeys
them by having the methods; it need not inherit anything.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["Scorer", "DomainScorer", "TrainingScorer"]


@runtime_checkable
class Scorer(Protocol):
    """The methods every scoring backend has."""

    def fit(self, X, domains=None) -> "Scorer":
        """Fit on the normal training samples (``domains``: ``"source"``/``"target"`` per sample); return self."""
        ...

    def score_samples(self, X) -> np.ndarray:
        """Anomaly score of each sample, ndarray of shape (n,); higher = more anomalous."""
        ...

    def get_state(self) -> dict:
        """Settings and fitted state as plain values and arrays (:mod:`asdkit.models.persistence` saves it)."""
        ...

    @classmethod
    def from_state(cls, state: dict) -> "Scorer":
        """The scorer :meth:`get_state` describes."""
        ...


@runtime_checkable
class DomainScorer(Scorer, Protocol):
    """A scorer with one score per domain."""

    def domain_scores(self, X) -> np.ndarray:
        """Scores against each domain's statistics, ndarray of shape (n, n_domains) (source first)."""
        ...


@runtime_checkable
class TrainingScorer(Scorer, Protocol):
    """A scorer that scores its own training samples without counting each as its own neighbour."""

    def training_scores(self) -> np.ndarray:
        """Scores of the training samples, ndarray of shape (n_train,); options are keyword-only."""
        ...
