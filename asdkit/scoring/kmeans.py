"""k-means of source embeddings plus every target embedding, scored by cosine distance (after Wilkinghoff).

Under domain shift the target domain has a handful of normal training clips
against a thousand source clips: summarising the source clips by ``k``
centroids and keeping every target clip as its own reference gives both
domains a comparable say in the smallest cosine distance.

With ``per_domain=True`` the two references are not compared on one scale:
the distance to the nearest source centroid and the distance to the nearest
target embedding are each standardised by the out-of-sample distances of that
domain's own training embeddings, and the score is the smaller of the two.
Ten target clips lie farther from one another than a thousand source clips
from their centroids, so on one raw scale a normal target clip looks as
strange as a source anomaly; standardised, each domain is measured against its
own spread.

Ten target clips make the target's statistics noisy, and the smaller of two
standardised distances gives a clip a free pass wherever the target side
standardises low: on real DCASE ToyCar recordings the anomalies of the target
domain then rank below the source domain's normal clips. ``target_prior``
shrinks the target's statistics toward the source's
(:func:`~asdkit.scoring.normalize.shrink_toward`), as if that many source clips
had joined the ten: 0 is the per-domain standardisation above, infinity one
scale for both (the same ranking as the raw minimum).
"""
from __future__ import annotations

import numpy as np

from asdkit.errors import ConfigError, NotFittedError
from asdkit.presets import check_integer
from asdkit.scoring.normalize import ScoreNormalizer, check_prior, shrink_toward

__all__ = ["KMeansTargetScorer", "unit_rows"]


def unit_rows(x) -> np.ndarray:
    """Rows scaled to unit Euclidean length (zero rows stay zero)."""
    x = np.asarray(x)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


class KMeansTargetScorer:
    """Smallest cosine distance to k-means centroids of the source embeddings and to every target embedding.

    Parameters
    ----------
    n_clusters : int, default 16
        Centroids of the source embeddings (at most one per source embedding).
    random_state : int, default 0
        Seeds k-means (3 initialisations) and the folds of :meth:`training_scores`.
    n_folds : int, default 5
        Folds over the source embeddings in :meth:`training_scores`.
    per_domain : bool, default False
        Standardise the source and the target distance by their own domain's
        out-of-sample training distances before taking the smaller (see the
        module notes); False is Wilkinghoff's raw minimum.
    target_prior : float, default 0
        With ``per_domain``: the weight, in clips, of the source statistics
        in the target's (0: the target's own; ``math.inf``: the source's).

    Attributes
    ----------
    centroids_ : ndarray of shape (k, dim)
        Unit-length k-means centroids of the source embeddings.
    target_ : ndarray of shape (n_target, dim)
        The target embeddings (unit length).
    source_ : ndarray of shape (n_source, dim)
        The source embeddings (kept for :meth:`training_scores`).
    normalizers_ : dict of str to ScoreNormalizer
        With ``per_domain``: the statistics of each domain's out-of-sample
        training distances (source: to centroids fitted without its fold;
        target: to the other target embeddings), unshrunk; ``target_prior``
        is applied when scoring.

    Notes
    -----
    Embeddings are scaled to unit length before anything else.
    :meth:`score_samples` returns **higher = more anomalous**.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((40, 8)); dom = ["source"] * 36 + ["target"] * 4
    >>> KMeansTargetScorer(4).fit(X, dom).score_samples(X[:2]).shape
    (2,)
    """

    def __init__(self, n_clusters: int = 16, random_state: int = 0, n_folds: int = 5, per_domain: bool = False,
                 target_prior: float = 0.0):
        self.n_clusters = n_clusters
        self.random_state = random_state
        self.n_folds = n_folds
        self.per_domain = per_domain
        self.target_prior = target_prior

    def _centroids(self, src: np.ndarray) -> np.ndarray:
        from sklearn.cluster import KMeans

        if not len(src):
            return np.zeros((0, src.shape[-1]), np.float32)
        k = min(self.n_clusters, len(src))
        km = KMeans(n_clusters=k, n_init=3, random_state=int(self.random_state)).fit(src)
        return unit_rows(km.cluster_centers_).astype(np.float32)

    def fit(self, X, domains) -> "KMeansTargetScorer":
        """Fit the source centroids and keep the target embeddings.

        Parameters
        ----------
        X : array-like of shape (n_train, dim)
            Normal training embeddings.
        domains : array-like of shape (n_train,)
            ``"source"`` or ``"target"`` per embedding.

        Returns
        -------
        self
        """
        check_integer(self.n_clusters, "n_clusters", who="KMeansTargetScorer")
        check_integer(self.n_folds, "n_folds", low=2, who="KMeansTargetScorer")
        check_prior(self.target_prior)
        E = unit_rows(np.asarray(X, dtype=np.float32))
        dom = np.asarray(domains, dtype=object)
        if E.ndim != 2 or dom.shape != (len(E),):
            raise ConfigError(f"KMeansTargetScorer.fit: embeddings (n, dim) and one domain each, got {E.shape} "
                              f"and {dom.shape}.")
        bad = sorted({str(d) for d in dom if d not in ("source", "target")})
        if bad:
            raise ConfigError(f"KMeansTargetScorer.fit: domains must be 'source' or 'target', got {bad}.")
        if not len(E):
            raise ConfigError("KMeansTargetScorer.fit got no training embeddings.")
        self.source_ = E[dom == "source"]
        self.target_ = E[dom == "target"]
        self.centroids_ = self._centroids(self.source_)
        self.domains_ = dom.astype(str)
        self.embeddings_ = E
        self.folds_ = None
        self.folds_ = self._source_folds()
        if self.per_domain:
            if len(self.source_) < 2 or len(self.target_) < 2:
                raise ConfigError("KMeansTargetScorer(per_domain=True) needs at least two training embeddings of "
                                  f"each domain, got {len(self.source_)} source and {len(self.target_)} target.")
            ds, dt = self._oos_distances()
            is_tgt = self.domains_ == "target"
            self.normalizers_ = {"source": ScoreNormalizer().fit(ds[~is_tgt]),
                                 "target": ScoreNormalizer().fit(dt[is_tgt])}
        return self

    def _source_folds(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per fold of the source embeddings: their positions and the centroids fitted without them.

        Both the per-domain statistics and both kinds of training scores use these folds; ``fit`` computes
        them once (``folds_``). A scorer restored from its state recomputes them on demand (k-means is
        seeded by ``random_state``, so they are the same), without storing them.
        """
        if getattr(self, "folds_", None) is not None:
            return self.folds_
        E, src_pos = self.embeddings_, np.flatnonzero(self.domains_ != "target")
        if len(src_pos) < 2:
            return []
        rng = np.random.default_rng(int(self.random_state))
        fold = rng.permutation(len(src_pos)) % min(self.n_folds, len(src_pos))
        return [(src_pos[fold == f], self._centroids(E[src_pos[fold != f]])) for f in np.unique(fold)]

    def _oos_distances(self) -> tuple[np.ndarray, np.ndarray]:
        """Out-of-sample distances of the training embeddings to the source and to the target references.

        Source: to the centroids, a source embedding to centroids fitted without its fold. Target: to the
        target embeddings, a target embedding to the others.
        """
        E, is_tgt = self.embeddings_, self.domains_ == "target"
        ds = (1.0 - E @ self.centroids_.T).min(axis=1) if len(self.centroids_) else np.full(len(E), np.inf)
        for held, cents in self._source_folds():
            ds[held] = (1.0 - E[held] @ cents.T).min(axis=1)
        dt = np.full(len(E), np.inf)
        if len(self.target_):
            d = 1.0 - E @ self.target_.T
            pos = np.flatnonzero(is_tgt)
            d[pos, np.arange(len(pos))] = np.inf
            dt = d.min(axis=1)
        return ds, dt

    @staticmethod
    def _distances(centroids, target, E) -> np.ndarray:
        refs = np.concatenate([centroids, target]) if len(target) else centroids
        if not len(refs):
            raise ConfigError("KMeansTargetScorer: no training embeddings to score against.")
        return 1.0 - E @ refs.T

    def _check(self, X) -> np.ndarray:
        if not hasattr(self, "centroids_"):
            raise NotFittedError("KMeansTargetScorer is not fitted: call fit(train_embeddings, domains) first.")
        E = unit_rows(np.asarray(X, dtype=np.float32))
        if E.ndim != 2 or E.shape[1] != self.embeddings_.shape[1]:
            raise ConfigError(f"KMeansTargetScorer: embeddings of shape (n, {self.embeddings_.shape[1]}) "
                              f"expected, got {E.shape}.")
        return E

    def domain_scores(self, X, *, target_prior: float | None = None) -> np.ndarray:
        """The distance to the nearest source centroid and to the nearest target embedding.

        Parameters
        ----------
        X : array-like of shape (n, dim)
        target_prior : float, optional
            Instead of the fitted ``target_prior``.

        Returns
        -------
        ndarray of shape (n, 2)
            Columns source, target; standardised by each domain's training
            distances with ``per_domain``, raw cosine distances otherwise.
        """
        E = self._check(X)
        ds = (1.0 - E @ self.centroids_.T).min(axis=1) if len(self.centroids_) else np.full(len(E), np.inf)
        dt = (1.0 - E @ self.target_.T).min(axis=1) if len(self.target_) else np.full(len(E), np.inf)
        return self._standardise(ds, dt, target_prior)

    def target_normalizer(self, target_prior: float | None = None) -> ScoreNormalizer:
        """The target distances' statistics, shrunk toward the source's by ``target_prior`` clips (default: fitted)."""
        prior = check_prior(self.target_prior if target_prior is None else target_prior)
        own, src = self.normalizers_["target"], self.normalizers_["source"]
        return own if prior == 0 else shrink_toward(own, src, len(self.target_), prior)

    def _standardise(self, ds: np.ndarray, dt: np.ndarray, target_prior: float | None = None) -> np.ndarray:
        if self.per_domain:
            ds, dt = self.normalizers_["source"].transform(ds), self.target_normalizer(target_prior).transform(dt)
        return np.stack([ds, dt], axis=1)

    def score_samples(self, X, *, raw: bool = False, target_prior: float | None = None) -> np.ndarray:
        """Smallest (standardised, with ``per_domain``) cosine distance to the centroids and the target embeddings.

        Parameters
        ----------
        X : array-like of shape (n, dim)
        raw : bool, default False
            Wilkinghoff's raw minimum even when ``per_domain`` is set (both
            scores from one fit).
        target_prior : float, optional
            With ``per_domain``: instead of the fitted ``target_prior``.

        Returns
        -------
        ndarray of shape (n,)
            **Higher = more anomalous.**
        """
        if self.per_domain and not raw:
            return self.domain_scores(X, target_prior=target_prior).min(axis=1)
        E = self._check(X)
        return self._distances(self.centroids_, self.target_, E).min(axis=1)

    def training_scores(self, *, raw: bool = False, target_prior: float | None = None) -> np.ndarray:
        """Out-of-sample scores of the training embeddings, in their order (``raw`` as in :meth:`score_samples`).

        A target embedding is scored against the centroids and the *other*
        target embeddings; a source embedding against centroids fitted without
        its fold (``n_folds`` folds, drawn from ``random_state``) and the
        target embeddings. No embedding is scored against itself. With
        ``per_domain`` the two distances are standardised as in :meth:`score_samples`.

        Returns
        -------
        ndarray of shape (n_train,)
            A single training embedding (nothing else to compare with) raises.
        """
        if not hasattr(self, "centroids_"):
            raise NotFittedError("KMeansTargetScorer is not fitted: call fit(train_embeddings, domains) first.")
        if self.per_domain and not raw:
            return self._standardise(*self._oos_distances(), target_prior).min(axis=1)
        E, is_tgt = self.embeddings_, self.domains_ == "target"
        d = self._distances(self.centroids_, self.target_, E)
        if is_tgt.any():                                   # leave each target embedding out of its own score
            pos = np.flatnonzero(is_tgt)
            d[pos, len(self.centroids_) + np.arange(len(pos))] = np.inf
        out = d.min(axis=1)
        for held, cents in self._source_folds():
            out[held] = self._distances(cents, self.target_, E[held]).min(axis=1)
        if not np.isfinite(out).all():
            raise ConfigError("KMeansTargetScorer: a single training embedding cannot be scored against the "
                              "others; give at least two.")
        return out

    def get_state(self) -> dict:
        out = {"n_clusters": int(self.n_clusters), "random_state": int(self.random_state),
               "n_folds": int(self.n_folds), "per_domain": bool(self.per_domain),
               "target_prior": float(self.target_prior), "centroids_": self.centroids_,
               "source_": self.source_, "target_": self.target_, "embeddings_": self.embeddings_,
               "domains_": self.domains_.tolist()}
        if self.per_domain:
            out["normalizers_"] = {d: z.get_state() for d, z in self.normalizers_.items()}
        return out

    @classmethod
    def from_state(cls, state) -> "KMeansTargetScorer":
        out = cls(int(state["n_clusters"]), int(state["random_state"]), int(state["n_folds"]),
                  bool(state.get("per_domain", False)), float(state.get("target_prior", 0.0)))
        out.centroids_, out.source_, out.target_ = state["centroids_"], state["source_"], state["target_"]
        out.embeddings_, out.domains_ = state["embeddings_"], np.asarray(state["domains_"], dtype=str)
        if out.per_domain:
            out.normalizers_ = {d: ScoreNormalizer.from_state(z) for d, z in state["normalizers_"].items()}
        return out

