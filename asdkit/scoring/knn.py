"""k nearest neighbours: the mean distance of an embedding to its nearest normal training embeddings."""
from __future__ import annotations

import numpy as np

from asdkit.errors import ConfigError, NotFittedError
from asdkit.presets import check_integer, is_integer

__all__ = ["KNNScorer", "METRICS"]

#: Distances :class:`KNNScorer` knows.
METRICS = ("euclidean", "cosine")


class KNNScorer:
    """Anomaly score = mean distance to the ``n_neighbors`` nearest training embeddings.

    Parameters
    ----------
    n_neighbors : int, default 1
    metric : {"euclidean", "cosine"}, default "euclidean"
        ``"cosine"`` is ``1 - cos``.

    Attributes
    ----------
    embeddings_ : ndarray of shape (n_train, dim), float32
    groups_ : ndarray of shape (n_train,) or None
        Group of each training embedding (e.g. its clip), for
        :meth:`training_scores`.
    nn_ : sklearn.neighbors.NearestNeighbors

    Notes
    -----
    :meth:`score_samples` returns **higher = more anomalous** (the DCASE
    convention, the opposite of scikit-learn's).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> knn = KNNScorer(2).fit(rng.standard_normal((50, 4)))
    >>> knn.score_samples(np.zeros((1, 4))) < knn.score_samples(np.full((1, 4), 5.0))
    array([ True])
    """

    def __init__(self, n_neighbors: int = 1, metric: str = "euclidean"):
        self.n_neighbors = n_neighbors
        self.metric = metric

    def fit(self, X, domains=None, *, groups=None) -> "KNNScorer":
        """Index the normal training embeddings.

        Parameters
        ----------
        X : array-like of shape (n_train, dim)
        domains : ignored
            Accepted for the common scorer contract.
        groups : array-like of shape (n_train,), optional
            Embeddings of one group (the segments of one clip) are never each
            other's neighbours in :meth:`training_scores`.

        Returns
        -------
        self
        """
        from sklearn.neighbors import NearestNeighbors

        check_integer(self.n_neighbors, "n_neighbors", who="KNNScorer")
        if self.metric not in METRICS:
            raise ConfigError(f"KNNScorer: metric={self.metric!r}; choose one of {list(METRICS)}.")
        E = np.asarray(X, dtype=np.float32)
        if E.ndim != 2 or len(E) <= self.n_neighbors:
            raise ConfigError(f"KNNScorer.fit needs more than n_neighbors={self.n_neighbors} embeddings (2-D), "
                              f"got shape {E.shape}.")
        if groups is not None and len(groups) != len(E):
            raise ConfigError(f"KNNScorer.fit: {len(groups)} groups for {len(E)} embeddings.")
        self.embeddings_ = E
        self.groups_ = None if groups is None else np.asarray(groups)
        self.nn_ = NearestNeighbors(n_neighbors=self.n_neighbors, metric=self.metric).fit(E)
        return self

    def _check(self, X) -> np.ndarray:
        if not hasattr(self, "nn_"):
            raise NotFittedError("KNNScorer is not fitted: call fit(train_embeddings) first.")
        E = np.asarray(X, dtype=np.float32)
        if E.ndim != 2 or E.shape[1] != self.embeddings_.shape[1]:
            raise ConfigError(f"KNNScorer: embeddings of shape (n, {self.embeddings_.shape[1]}) expected, "
                              f"got {E.shape}.")
        return E

    def score_samples(self, X) -> np.ndarray:
        """Mean distance of each embedding to its ``n_neighbors`` nearest training embeddings.

        Returns
        -------
        ndarray of shape (n,)
            **Higher = more anomalous.**
        """
        E = self._check(X)                                  # before self.nn_: unfitted -> NotFittedError
        d, _ = self.nn_.kneighbors(E, n_neighbors=self.n_neighbors)
        return d.mean(axis=1)

    def training_scores(self, *, n: int | None = None) -> np.ndarray:
        """Leave-one-group-out scores of the first ``n`` training embeddings (default: all).

        Each of them is scored against the others of **other groups** among
        those ``n`` only (augmented embeddings appended after the real ones lie
        close to the real ones they were made from and would make the scores
        too small). Without groups, each embedding is its own group.

        Returns
        -------
        ndarray of shape (n,)
        """
        from sklearn.neighbors import NearestNeighbors

        if not hasattr(self, "nn_"):
            raise NotFittedError("KNNScorer is not fitted: call fit(train_embeddings) first.")
        n = len(self.embeddings_) if n is None else n
        if not is_integer(n) or not self.n_neighbors < n <= len(self.embeddings_):
            raise ConfigError(f"KNNScorer.training_scores: n={n!r} must be an integer in "
                              f"({self.n_neighbors}, {len(self.embeddings_)}] (more than n_neighbors, at most the "
                              "training embeddings).")
        n = int(n)
        E = self.embeddings_[:n]
        g = None if self.groups_ is None else self.groups_[:n]
        nn_ = self.nn_ if n == len(self.embeddings_) else NearestNeighbors(metric=self.metric).fit(E)
        if g is None:
            d, _ = nn_.kneighbors(E, n_neighbors=min(self.n_neighbors + 1, n))
            return d[:, 1:].mean(axis=1)
        per_group = int(np.max(np.unique(g, return_counts=True)[1]))
        k = min(self.n_neighbors + per_group, n)
        d, idx = nn_.kneighbors(E, n_neighbors=k)
        other = g[idx] != g[:, None]
        out = np.empty(n)
        for i in range(n):
            keep = d[i][other[i]][:self.n_neighbors]
            if keep.size == 0:
                raise ConfigError("KNNScorer.training_scores: every neighbour belongs to the same group; "
                                  "leave-one-group-out scores need at least two groups.")
            out[i] = keep.mean()
        return out

    def get_state(self) -> dict:
        """What :meth:`from_state` needs to rebuild the fitted scorer (arrays and settings)."""
        return {"n_neighbors": int(self.n_neighbors), "metric": self.metric, "embeddings_": self.embeddings_,
                "groups_": self.groups_}

    @classmethod
    def from_state(cls, state) -> "KNNScorer":
        return cls(int(state["n_neighbors"]), state["metric"]).fit(state["embeddings_"], groups=state["groups_"])
