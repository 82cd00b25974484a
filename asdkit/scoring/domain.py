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
from asdkit.scoring.normalize import ScoreNormalizer, check_prior, shrink_domains
from asdkit.scoring.protocol import TrainingScorer

__all__ = ["SelectiveScorer", "DomainKNNScorer"]


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
                own = scorer.training_scores() if isinstance(scorer, TrainingScorer) \
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



class DomainKNNScorer:
    """Per-domain KNN memory banks of segment embeddings; clip scores standardised per domain; the smaller wins.

    A clip is a set of segment embeddings (``(n_segments, dim)``). Its score
    under a domain is the mean over its segments of the mean distance to the
    ``n_neighbors`` nearest segments of that domain's training clips, then
    standardised by the mean and standard deviation of the same score of that
    domain's own training clips, each computed leave-one-clip-out (a clip's
    segments are never its own neighbours). The clip score is the smaller of
    the domains' standardised scores: a clip is normal if it is ordinary for
    either domain, measured against that domain's own spread.

    Only real clips enter the banks: segments made by SMOTE or Mixup from a
    training clip lie next to it and would make its leave-one-clip-out score,
    and so the domain's spread, too small.

    With ``target_prior`` > 0 the statistics of every domain but the largest
    (the target's ten clips) are shrunk toward the largest domain's
    (:func:`~asdkit.scoring.normalize.shrink_toward`), as if that many of its
    clips had joined them: ten clips' statistics are noisy, and the smaller of
    the standardised scores lets a clip through wherever its domain
    standardises low.

    Parameters
    ----------
    n_neighbors : int, default 1
    metric : {"euclidean", "cosine"}, default "euclidean"
    target_prior : float, default 0
        Weight, in clips, of the largest domain's statistics in each smaller
        domain's (0: each domain by its own clips; ``math.inf``: all on the
        largest domain's scale).

    Attributes
    ----------
    domains_ : tuple of str
    scorers_ : dict of str to KNNScorer
        Each domain's bank, grouped by clip.
    normalizers_ : dict of str to ScoreNormalizer
        Each domain's leave-one-clip-out clip scores of its own training clips
        (unshrunk: :meth:`domain_normalizers` applies ``target_prior``).
    train_domain_scores_ : ndarray of shape (n_train, n_domains)
        Every training clip's standardised score under each domain, leave-one-clip-out
        (``target_prior`` applied).
    train_domains_ : ndarray of shape (n_train,)
        The training clips' domains.
    train_raw_ : ndarray of shape (n_train, n_domains)
        The same scores before standardisation.
    counts_ : dict of str to int
        Training clips per domain.
    n_segments_ : int

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.standard_normal((30, 4, 2)), 6 + rng.standard_normal((5, 4, 2))])
    >>> sc = DomainKNNScorer().fit(X, ["source"] * 30 + ["target"] * 5)
    >>> sc.score_samples(X[:3]).shape, sc.training_scores().shape
    ((3,), (35,))
    """

    def __init__(self, n_neighbors: int = 1, metric: str = "euclidean", target_prior: float = 0.0):
        self.n_neighbors = n_neighbors
        self.metric = metric
        self.target_prior = target_prior

    @staticmethod
    def _clips(X) -> np.ndarray:
        E = np.asarray(X, dtype=np.float32)
        if E.ndim != 3:
            raise ConfigError(f"DomainKNNScorer: clips of segment embeddings (n_clips, n_segments, dim) expected, "
                              f"got shape {E.shape}.")
        return E

    def fit(self, X, domains) -> "DomainKNNScorer":
        """Build one bank per domain and the per-domain statistics.

        Parameters
        ----------
        X : array-like of shape (n_clips, n_segments, dim)
            Segment embeddings of the normal training clips.
        domains : array-like of shape (n_clips,)

        Returns
        -------
        self
        """
        from asdkit.scoring.knn import KNNScorer

        check_prior(self.target_prior)
        E = self._clips(X)
        doms = domain_array(domains)
        if len(doms) != len(E):
            raise ConfigError(f"DomainKNNScorer.fit: {len(doms)} domains for {len(E)} clips.")
        n, s, d = E.shape
        self.domains_ = tuple(x for x in DOMAINS if (doms == x).any())
        if not self.domains_:
            raise ConfigError("DomainKNNScorer.fit got no training clips.")
        self.scorers_, self.normalizers_ = {}, {}
        cols = {}
        for dom in self.domains_:
            own = np.flatnonzero(doms == dom)
            if len(own) < 2:
                raise ConfigError(f"DomainKNNScorer: the {dom} domain has {len(own)} training clip(s); its "
                                  "leave-one-clip-out statistics need at least two.")
            knn = KNNScorer(self.n_neighbors, self.metric).fit(E[own].reshape(-1, d), groups=np.repeat(own, s))
            col = knn.score_samples(E.reshape(-1, d)).reshape(n, s).mean(axis=1)
            col[own] = knn.training_scores().reshape(len(own), s).mean(axis=1)
            self.scorers_[dom] = knn
            self.normalizers_[dom] = ScoreNormalizer().fit(col[own])
            cols[dom] = col
        self.counts_ = {dom: int((doms == dom).sum()) for dom in self.domains_}
        self.train_raw_ = np.stack([cols[dom] for dom in self.domains_], axis=1)
        self.train_domain_scores_ = self.training_domain_scores()
        self.train_domains_ = doms
        self.n_segments_ = int(s)
        return self

    def domain_normalizers(self, target_prior: float | None = None) -> dict:
        """Each domain's statistics, the smaller domains' shrunk toward the largest's by ``target_prior`` clips.

        Parameters
        ----------
        target_prior : float, optional
            Instead of the fitted ``target_prior`` (0: each domain's own statistics).

        Returns
        -------
        dict of str to ScoreNormalizer
        """
        if not hasattr(self, "scorers_"):
            raise NotFittedError("DomainKNNScorer is not fitted: call fit(train_clips, domains) first.")
        prior = self.target_prior if target_prior is None else target_prior
        return shrink_domains(self.normalizers_, self.counts_, check_prior(prior))

    def raw_domain_scores(self, X) -> np.ndarray:
        """Each domain's clip score before standardisation, shape (n_clips, n_domains) (the banks' search)."""
        if not hasattr(self, "scorers_"):
            raise NotFittedError("DomainKNNScorer is not fitted: call fit(train_clips, domains) first.")
        E = self._clips(X)
        n, s, d = E.shape
        return np.stack([self.scorers_[dom].score_samples(E.reshape(-1, d)).reshape(n, s).mean(axis=1)
                         for dom in self.domains_], axis=1)

    def standardise(self, raw, target_prior: float | None = None) -> np.ndarray:
        """Raw per-domain scores (:meth:`raw_domain_scores`, ``train_raw_``) standardised; ``target_prior`` as in
        :meth:`domain_normalizers`."""
        norms = self.domain_normalizers(target_prior)
        return np.stack([norms[dom].transform(raw[:, j]) for j, dom in enumerate(self.domains_)], axis=1)

    def domain_scores(self, X, *, target_prior: float | None = None) -> np.ndarray:
        """Each domain's standardised clip score, shape (n_clips, n_domains), columns in the order of ``domains_``.

        ``target_prior`` as in :meth:`domain_normalizers`.
        """
        return self.standardise(self.raw_domain_scores(X), target_prior)

    def training_domain_scores(self, target_prior: float | None = None) -> np.ndarray:
        """The training clips' standardised leave-one-clip-out scores under each domain, shape (n_train, n_domains)."""
        return self.standardise(self.train_raw_, target_prior)

    def score_samples(self, X) -> np.ndarray:
        """The smaller of the domains' standardised scores; **higher = more anomalous**."""
        return self.domain_scores(X).min(axis=1)

    def training_scores(self) -> np.ndarray:
        """The training clips' leave-one-clip-out scores (the smaller standardised domain score), shape (n_train,)."""
        if not hasattr(self, "train_domain_scores_"):
            raise NotFittedError("DomainKNNScorer is not fitted: call fit(train_clips, domains) first.")
        return self.train_domain_scores_.min(axis=1)

    def get_state(self) -> dict:
        return {"n_neighbors": int(self.n_neighbors), "metric": self.metric, "target_prior": float(self.target_prior),
                "domains_": list(self.domains_),
                "scorers": {dom: k.get_state() for dom, k in self.scorers_.items()},
                "normalizers": {dom: z.get_state() for dom, z in self.normalizers_.items()},
                "train_domain_scores_": self.train_domain_scores_, "train_domains_": self.train_domains_.tolist(),
                "n_segments_": int(self.n_segments_)}

    @classmethod
    def from_state(cls, state) -> "DomainKNNScorer":
        from asdkit.scoring.knn import KNNScorer

        out = cls(int(state["n_neighbors"]), state["metric"], float(state.get("target_prior", 0.0)))
        out.domains_ = tuple(state["domains_"])
        out.scorers_ = {dom: KNNScorer.from_state(k) for dom, k in state["scorers"].items()}
        out.normalizers_ = {dom: ScoreNormalizer.from_state(z) for dom, z in state["normalizers"].items()}
        out.train_domain_scores_ = np.asarray(state["train_domain_scores_"])
        out.train_domains_ = np.asarray(state["train_domains_"], dtype=str)
        out.counts_ = {dom: int((out.train_domains_ == dom).sum()) for dom in out.domains_}
        norms = out.domain_normalizers()
        out.train_raw_ = np.stack([out.train_domain_scores_[:, j] * norms[dom].scale_ + norms[dom].mean_
                                   for j, dom in enumerate(out.domains_)], axis=1)
        out.n_segments_ = int(state["n_segments_"])
        return out
