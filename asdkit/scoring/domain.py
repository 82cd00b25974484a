"""Per-domain (selective) scoring: one backend per domain, each standardised by its own training scores.

Under domain shift a normal target clip lies far from the source data; a
backend fitted on both domains together lets the source domain dominate.
:class:`SelectiveScorer` fits one copy of any backend per domain and takes the
smallest of the domains' scores, each first standardised by the scores of
that domain's own training samples, so that a domain with a wider spread does
not win by scale alone.
"""
from __future__ import annotations

import copy
import numpy as np

from asdkit.errors import ConfigError, NotFittedError
from asdkit.scoring.mahalanobis import DOMAINS, domain_array
from asdkit.scoring.normalize import ScoreNormalizer

__all__ = ["SelectiveScorer"]


class SelectiveScorer:
    """The smallest over domains of a backend's (standardised) per-domain scores.

    Parameters
    ----------
    backend : scorer
        An unfitted scoring backend (``fit(X)`` / ``score_samples(X)``), copied
        once per domain, e.g. ``KNNScorer(1)`` or ``MahalanobisScorer()``.
    standardize : bool, default True
        Standardise each domain's scores by the mean and standard deviation of
        that domain's training scores (out-of-sample where the backend has
        ``training_scores()``, else in-sample) before taking the minimum.
        ``False`` compares raw scores (the organisers' selective Mahalanobis).

    Attributes
    ----------
    domains_ : tuple of str
    scorers_ : dict of str to fitted backend
    normalizers_ : dict of str to ScoreNormalizer
        Only with ``standardize=True``.

    Notes
    -----
    :meth:`score_samples` returns **higher = more anomalous**.

    Examples
    --------
    >>> from asdkit.scoring.knn import KNNScorer
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.standard_normal((40, 2)), 5 + rng.standard_normal((6, 2))])
    >>> sel = SelectiveScorer(KNNScorer(1)).fit(X, ["source"] * 40 + ["target"] * 6)
    >>> sel.domain_scores(X[:2]).shape
    (2, 2)
    """

    def __init__(self, backend, standardize: bool = True):
        self.backend = backend
        self.standardize = standardize

    def fit(self, X, domains) -> "SelectiveScorer":
        """Fit one backend per domain on that domain's training samples."""
        E = np.asarray(X)
        doms = domain_array(domains)
        if len(doms) != len(E):
            raise ConfigError(f"SelectiveScorer.fit: {len(doms)} domains for {len(E)} samples.")
        self.domains_ = tuple(d for d in DOMAINS if (doms == d).any())
        if not self.domains_:
            raise ConfigError("SelectiveScorer.fit got no training samples.")
        self.scorers_, self.normalizers_ = {}, {}
        for d in self.domains_:
            scorer = copy.deepcopy(self.backend).fit(E[doms == d])
            self.scorers_[d] = scorer
            if self.standardize:
                own = scorer.training_scores() if hasattr(scorer, "training_scores") \
                    else scorer.score_samples(E[doms == d])
                self.normalizers_[d] = ScoreNormalizer().fit(own)
        return self

    def domain_scores(self, X) -> np.ndarray:
        """Each domain's (standardised) score, shape (n, n_domains), columns in the order of ``domains_``."""
        if not hasattr(self, "scorers_"):
            raise NotFittedError("SelectiveScorer is not fitted: call fit(train_embeddings, domains) first.")
        cols = []
        for d in self.domains_:
            s = self.scorers_[d].score_samples(X)
            cols.append(self.normalizers_[d].transform(s) if self.standardize else np.asarray(s, dtype=np.float64))
        return np.stack(cols, axis=1)

    def score_samples(self, X) -> np.ndarray:
        """The smallest of the domains' scores; **higher = more anomalous**."""
        return self.domain_scores(X).min(axis=1)

    def get_state(self) -> dict:
        """The backend's class and each domain's fitted state (backends with ``get_state``), for saving."""
        if not hasattr(self, "scorers_"):
            raise NotFittedError("SelectiveScorer is not fitted: call fit(train_embeddings, domains) first.")
        return {"backend": f"{type(self.backend).__module__}:{type(self.backend).__qualname__}",
                "standardize": bool(self.standardize), "domains_": list(self.domains_),
                "scorers": {d: s.get_state() for d, s in self.scorers_.items()},
                "normalizers": {d: z.get_state() for d, z in self.normalizers_.items()}}

    @classmethod
    def from_state(cls, state) -> "SelectiveScorer":
        import importlib

        module, _, name = state["backend"].partition(":")
        if not module.startswith("asdkit.scoring."):
            raise ConfigError(f"SelectiveScorer: a saved backend must be an asdkit scorer, got {state['backend']!r}.")
        backend_cls = getattr(importlib.import_module(module), name)
        scorers = {d: backend_cls.from_state(s) for d, s in state["scorers"].items()}
        out = cls(copy.deepcopy(next(iter(scorers.values()))), bool(state["standardize"]))
        out.domains_ = tuple(state["domains_"])
        out.scorers_ = scorers
        out.normalizers_ = {d: ScoreNormalizer.from_state(z) for d, z in state["normalizers"].items()}
        return out

