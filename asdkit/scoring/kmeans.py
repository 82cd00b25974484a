"""k-means of source embeddings plus every target embedding, scored by cosine distance (after Wilkinghoff).

Under domain shift the target domain has a handful of normal training clips
against a thousand source clips: summarising the source clips by ``k``
centroids and keeping every target clip as its own reference gives both
domains a comparable say in the smallest cosine distance.
"""
from __future__ import annotations

import numpy as np

from asdkit.errors import ConfigError, NotFittedError

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

    Attributes
    ----------
    centroids_ : ndarray of shape (k, dim)
        Unit-length k-means centroids of the source embeddings.
    target_ : ndarray of shape (n_target, dim)
        The target embeddings (unit length).
    source_ : ndarray of shape (n_source, dim)
        The source embeddings (kept for :meth:`training_scores`).

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

    def __init__(self, n_clusters: int = 16, random_state: int = 0, n_folds: int = 5):
        self.n_clusters = n_clusters
        self.random_state = random_state
        self.n_folds = n_folds

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
        if isinstance(self.n_clusters, bool) or not isinstance(self.n_clusters, (int, np.integer)) \
                or self.n_clusters < 1:
            raise ConfigError(f"KMeansTargetScorer: n_clusters={self.n_clusters!r} must be a positive integer.")
        if isinstance(self.n_folds, bool) or not isinstance(self.n_folds, (int, np.integer)) or self.n_folds < 2:
            raise ConfigError(f"KMeansTargetScorer: n_folds={self.n_folds!r} must be an integer >= 2.")
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
        return self

    @staticmethod
    def _distances(centroids, target, E) -> np.ndarray:
        refs = np.concatenate([centroids, target]) if len(target) else centroids
        if not len(refs):
            raise ConfigError("KMeansTargetScorer: no training embeddings to score against.")
        return 1.0 - E @ refs.T

    def score_samples(self, X) -> np.ndarray:
        """Smallest cosine distance of each embedding to the centroids and the target embeddings.

        Returns
        -------
        ndarray of shape (n,)
            **Higher = more anomalous.**
        """
        if not hasattr(self, "centroids_"):
            raise NotFittedError("KMeansTargetScorer is not fitted: call fit(train_embeddings, domains) first.")
        E = unit_rows(np.asarray(X, dtype=np.float32))
        if E.ndim != 2 or E.shape[1] != self.embeddings_.shape[1]:
            raise ConfigError(f"KMeansTargetScorer: embeddings of shape (n, {self.embeddings_.shape[1]}) "
                              f"expected, got {E.shape}.")
        return self._distances(self.centroids_, self.target_, E).min(axis=1)

    def training_scores(self) -> np.ndarray:
        """Out-of-sample scores of the training embeddings, in their order.

        A target embedding is scored against the centroids and the *other*
        target embeddings; a source embedding against centroids fitted without
        its fold (``n_folds`` folds, drawn from ``random_state``) and the
        target embeddings. No embedding is scored against itself.

        Returns
        -------
        ndarray of shape (n_train,)
            A single training embedding (nothing else to compare with) raises.
        """
        if not hasattr(self, "centroids_"):
            raise NotFittedError("KMeansTargetScorer is not fitted: call fit(train_embeddings, domains) first.")
        E, is_tgt = self.embeddings_, self.domains_ == "target"
        d = self._distances(self.centroids_, self.target_, E)
        if is_tgt.any():                                   # leave each target embedding out of its own score
            pos = np.flatnonzero(is_tgt)
            d[pos, len(self.centroids_) + np.arange(len(pos))] = np.inf
        out = d.min(axis=1)
        src_pos = np.flatnonzero(~is_tgt)
        if len(src_pos) >= 2:
            rng = np.random.default_rng(int(self.random_state))
            fold = rng.permutation(len(src_pos)) % min(self.n_folds, len(src_pos))
            for f in np.unique(fold):
                held = src_pos[fold == f]
                cents = self._centroids(E[src_pos[fold != f]])
                out[held] = self._distances(cents, self.target_, E[held]).min(axis=1)
        if not np.isfinite(out).all():
            raise ConfigError("KMeansTargetScorer: a single training embedding cannot be scored against the "
                              "others; give at least two.")
        return out

    def get_state(self) -> dict:
        return {"n_clusters": int(self.n_clusters), "random_state": int(self.random_state),
                "n_folds": int(self.n_folds), "centroids_": self.centroids_, "source_": self.source_,
                "target_": self.target_, "embeddings_": self.embeddings_, "domains_": self.domains_.tolist()}

    @classmethod
    def from_state(cls, state) -> "KMeansTargetScorer":
        out = cls(int(state["n_clusters"]), int(state["random_state"]), int(state["n_folds"]))
        out.centroids_, out.source_, out.target_ = state["centroids_"], state["source_"], state["target_"]
        out.embeddings_, out.domains_ = state["embeddings_"], np.asarray(state["domains_"], dtype=str)
        return out
