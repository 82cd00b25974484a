"""Mahalanobis distances (plain and selective) and the mean squared residual, on embeddings or residuals.

The inputs are either embeddings ``(n, dim)`` (one vector per sample) or
per-clip sets of vectors ``(n_clips, n_vectors, dim)``, e.g. the
reconstruction residuals of the autoencoder baseline, given at once or as an
iterable of chunks so that 300 000 residual vectors never sit in memory
together. A clip's score is the mean over its vectors.

* :class:`MSEScorer`: mean squared value (the baseline's "MSE" score of residuals);
* :class:`MahalanobisScorer`: squared Mahalanobis distance to one Gaussian;
* :class:`SelectiveMahalanobisScorer`: one Gaussian per domain, the smaller
  distance (the baseline's "MAHALA" score).

Every ``score_samples`` returns **higher = more anomalous**.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from asdkit.constants import DOMAINS
from asdkit.errors import ConfigError, NotFittedError

__all__ = ["DOMAINS", "iter_chunks", "domain_chunks", "check_dim", "domain_array", "StreamingMoments", "MSEScorer",
           "MahalanobisScorer", "SelectiveMahalanobisScorer", "COVARIANCES", "psd_inverse"]

#: Covariance estimates the Mahalanobis scorers know.
COVARIANCES = ("ledoit_wolf", "empirical")


def iter_chunks(residuals) -> Iterator[np.ndarray]:
    """Yield float32 arrays of shape (n_clips_in_chunk, n_vectors, dim).

    ``residuals`` is one array of shape (n_clips, n_vectors, dim), one array
    of shape (n, dim) (n samples of one vector each: embeddings), or an
    iterable whose items are one clip (n_vectors, dim) or a chunk of clips
    (n, n_vectors, dim).
    """
    if isinstance(residuals, (np.ndarray, torch.Tensor)):
        r = residuals.detach().cpu().numpy() if isinstance(residuals, torch.Tensor) else residuals
        residuals = [r[:, None, :] if r.ndim == 2 else r]
    for r in residuals:
        r = r.detach().cpu().numpy() if isinstance(r, torch.Tensor) else np.asarray(r)
        if r.ndim == 2:
            r = r[None]
        if r.ndim != 3 or r.shape[1] < 1:
            raise ConfigError("expected embeddings (n, dim), vectors per clip (n_clips, n_vectors, dim) or clips "
                              f"of shape (n_vectors, dim), got an item of shape {r.shape}.")
        yield r.astype(np.float32, copy=False)


def domain_chunks(residuals, domains) -> Iterator[tuple[str, np.ndarray]]:
    """``(domain, clips)`` for each chunk of :func:`iter_chunks` and each domain present in it, in order.

    ``clips`` has shape (n, n_vectors, dim): the chunk's clips of that domain. The per-domain scorers'
    ``fit`` read their training residuals through this, once.

    Raises
    ------
    ConfigError
        An unknown domain, or more or fewer clips than domains.
    """
    doms = domain_array(domains)
    i = 0
    for chunk in iter_chunks(residuals):
        b = chunk.shape[0]
        if i + b > doms.size:
            raise ConfigError(f"got more residual clips than the {doms.size} domains given.")
        for d in DOMAINS:
            sel = np.flatnonzero(doms[i:i + b] == d)
            if sel.size:
                yield d, chunk[sel]
        i += b
    if i != doms.size:
        raise ConfigError(f"got {i} residual clips for {doms.size} domains.")


def check_dim(scorer, dim: int) -> None:
    if dim != scorer.n_features_in_:
        raise ConfigError(f"{type(scorer).__name__} was fitted on {scorer.n_features_in_}-dim residuals, "
                          f"got {dim}-dim ones.")


class MSEScorer:
    """Clip score = mean squared reconstruction error over the clip's vectors.

    The official baseline's "MSE" score. Nothing is learned from the
    training residuals beyond their dimension; ``fit`` exists for the common
    scorer contract.

    Attributes
    ----------
    n_features_in_ : int
        Residual dimension seen in ``fit``.

    Notes
    -----
    :meth:`score_samples` returns **higher = more anomalous** (the DCASE
    convention, the opposite of scikit-learn's outlier detectors).
    """

    def fit(self, residuals, domains=None) -> "MSEScorer":
        """Record the residual dimension.

        Parameters
        ----------
        residuals : ndarray of shape (n_clips, n_vectors, dim), or iterable of clips / chunks
            Reconstruction residuals ``recon - x`` of the training clips.
        domains : array-like of shape (n_clips,), optional
            Ignored.

        Returns
        -------
        self
        """
        dims = {c.shape[-1] for c in iter_chunks(residuals)}
        if len(dims) != 1:
            raise ConfigError(f"MSEScorer.fit needs residuals of one dimension, got {sorted(dims) or 'none'}.")
        self.n_features_in_ = dims.pop()
        return self

    def score_samples(self, residuals) -> np.ndarray:
        """Mean squared residual of each clip.

        Parameters
        ----------
        residuals : ndarray of shape (n_clips, n_vectors, dim), or iterable of clips / chunks

        Returns
        -------
        ndarray of shape (n_clips,)
            **Higher = more anomalous.**
        """
        if not hasattr(self, "n_features_in_"):
            raise NotFittedError("MSEScorer is not fitted: call fit(train_residuals) first.")
        out = []
        for c in iter_chunks(residuals):
            check_dim(self, c.shape[-1])
            out.append(np.square(c, dtype=np.float64).mean(axis=(1, 2)))
        return np.concatenate(out) if out else np.zeros(0)

    def get_state(self) -> dict:
        return {"n_features_in_": int(self.n_features_in_)}

    @classmethod
    def from_state(cls, state) -> "MSEScorer":
        out = cls()
        out.n_features_in_ = int(state["n_features_in_"])
        return out


def _gram(x: np.ndarray) -> np.ndarray:
    """``x^T x`` (batched over leading axes) as float64, computed by a float32 torch matmul.

    The products are the costly part of the Mahalanobis scorer (640 x 640 per
    clip); float32 BLAS is about twice as fast as float64 and the callers centre
    ``x`` first, so its round-off (relative 1e-6) is far below the estimation error.
    """
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    return torch.matmul(t.transpose(-1, -2), t).double().numpy()


class StreamingMoments:
    """Streaming moments of vectors, shifted by the first batch's mean for accuracy.

    Enough for the mean, the empirical covariance and the Ledoit-Wolf shrinkage.
    """

    def __init__(self, dim: int):
        self.n = 0
        self.shift = None
        self.s1 = np.zeros(dim)          # sum x
        self.m2 = np.zeros((dim, dim))   # sum x x^T
        self.s2 = 0.0                    # sum |x|^2
        self.q = np.zeros(dim)           # sum |x|^2 x
        self.s4 = 0.0                    # sum |x|^4

    def add(self, x: np.ndarray) -> None:
        """Add vectors ``x`` of shape (n, dim)."""
        x = np.asarray(x, dtype=np.float64)
        if self.shift is None:
            self.shift = x.mean(axis=0)
        x = x - self.shift
        sq = np.einsum("ij,ij->i", x, x)
        self.n += x.shape[0]
        self.s1 += x.sum(axis=0)
        self.m2 += _gram(x)
        self.s2 += float(sq.sum())
        self.q += sq @ x
        self.s4 += float(sq @ sq)

    def finish(self, estimator: str) -> tuple[np.ndarray, np.ndarray, float]:
        """(location, covariance, shrinkage): biased (1/n) empirical covariance, optionally Ledoit-Wolf shrunk.

        The shrinkage is the one of :func:`sklearn.covariance.ledoit_wolf_shrinkage`,
        with its sums over samples replaced by the streamed moments.
        """
        n, p = self.n, self.s1.size
        mu = self.s1 / n
        cov = self.m2 / n - np.outer(mu, mu)
        cov = (cov + cov.T) / 2
        shrinkage = 0.0
        if estimator == "ledoit_wolf":
            # sum_k |x_k - mu|^4, expanded in the streamed sums
            mm = float(mu @ mu)
            s4c = (self.s4 - 4 * float(mu @ self.q) + 4 * float(mu @ self.m2 @ mu) + 2 * mm * self.s2
                   - 4 * mm * float(mu @ self.s1) + n * mm * mm)
            trace = float(np.trace(cov))
            mean_var = trace / p
            delta_ = float(np.sum(cov * cov))            # |X^T X / n|_F^2 of the centred data X
            beta = (s4c / n - delta_) / (p * n)
            delta = (delta_ - 2.0 * mean_var * trace + p * mean_var ** 2) / p
            beta = min(beta, delta)
            shrinkage = 0.0 if beta <= 0 else beta / delta
            cov = (1.0 - shrinkage) * cov
            cov.flat[::p + 1] += shrinkage * mean_var
        return mu + self.shift, cov, float(shrinkage)


class SelectiveMahalanobisScorer:
    """asdkit's selective Mahalanobis score: the smaller of a source and a target Mahalanobis score of whole vectors.

    Not the organisers' method (that is
    :class:`~asdkit.scoring.frames.FrameMahalanobisScorer`, per-frame 128 x 128
    covariances and the distance of the clip's mean residual frame); this
    variant models the full 640-value residual vector.

    ``fit`` computes, separately on the source and on the target training
    clips, the mean ``mu_d`` and covariance ``C_d`` of the reconstruction
    residual vectors. The score of a clip under domain ``d`` is the mean over
    its residual vectors ``r`` of the squared Mahalanobis distance
    ``(r - mu_d)^T C_d^{-1} (r - mu_d)`` (squared, as the official code), and
    the clip score is the minimum over the domains: a clip is normal if it
    looks normal for either domain.

    Parameters
    ----------
    covariance : {"ledoit_wolf", "empirical"}, default "ledoit_wolf"
        ``"ledoit_wolf"``: the Ledoit-Wolf shrunk covariance, the estimate of
        :class:`sklearn.covariance.LedoitWolf`, computed here from streamed
        moments so that the residuals of 300 000 training vectors never sit in
        memory at once. Why: the 10 target clips give few vectors for a
        640 x 640 covariance (1 840 for 6-s clips, 3 090 for 10-s clips), and
        consecutive vectors share 4 of their 5 frames, so the empirical target
        covariance is ill-conditioned; with fewer or shorter clips (fewer than
        640 vectors) it is singular and cannot be inverted at all. Measured on
        the quick SynFan data: empirical target covariance condition number
        1e4-3e4 (source 1e3), Ledoit-Wolf shrinkage 0.01-0.07 bringing it to
        6e2-8e3, the same AUC (within 0.005); shrinkage 0.17 on paper-size
        SynFan. On the source domain the shrinkage is about 0.003 and the
        estimate is practically the empirical one.
        ``"empirical"``: :class:`sklearn.covariance.EmpiricalCovariance`'s
        (biased) estimate, inverted with a pseudo-inverse when singular.

    Attributes
    ----------
    domains_ : tuple of str
        Domains seen in training (``("source", "target")``, or one of them;
        with one domain the score is that domain's score).
    location_ : ndarray of shape (n_domains, dim)
        Mean residual of each domain.
    covariance_ : ndarray of shape (n_domains, dim, dim)
    precision_ : ndarray of shape (n_domains, dim, dim)
        Inverse of ``covariance_``.
    shrinkage_ : ndarray of shape (n_domains,)
        Ledoit-Wolf shrinkage (0 for ``"empirical"``).
    n_vectors_ : ndarray of shape (n_domains,)
        Training vectors of each domain.
    n_features_in_ : int

    Notes
    -----
    How it differs from the organisers' scorer: the covariance is of the whole
    640-value vector (so it also models how consecutive frames co-vary) and
    shrunk; the residual mean is subtracted before the distance (the organisers
    centre the covariance but score the raw residual); and the clip's distance
    is the mean of its vectors' distances, where the organisers'
    ``mean(delta @ P @ delta.T)`` over a clip is, by linearity, the distance of
    the clip's mean residual frame, in which errors of opposite sign cancel.

    :meth:`score_samples` returns **higher = more anomalous** (the DCASE
    convention, the opposite of scikit-learn's outlier detectors).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> res = rng.standard_normal((4, 50, 3))
    >>> sc = SelectiveMahalanobisScorer().fit(res, ["source", "source", "target", "target"])
    >>> sc.score_samples(res).shape
    (4,)
    """

    def __init__(self, covariance: str = "ledoit_wolf"):
        self.covariance = covariance

    def fit(self, residuals, domains) -> "SelectiveMahalanobisScorer":
        """Compute the per-domain residual statistics.

        Parameters
        ----------
        residuals : ndarray of shape (n_clips, n_vectors, dim), or iterable of clips / chunks
            Residuals ``recon - x`` of the normal training clips, read once.
        domains : array-like of shape (n_clips,)
            ``"source"`` or ``"target"`` per clip.

        Returns
        -------
        self
        """
        if self.covariance not in COVARIANCES:
            raise ConfigError(f"covariance={self.covariance!r}: choose 'ledoit_wolf' or 'empirical'.")
        moments: dict[str, StreamingMoments] = {}
        for d, clips in domain_chunks(residuals, domains):
            m = moments.get(d)
            if m is None:
                m = moments[d] = StreamingMoments(clips.shape[-1])
            elif m.s1.size != clips.shape[-1]:
                raise ConfigError("all residuals must have the same dimension.")
            m.add(clips.reshape(-1, clips.shape[-1]))
        if not moments:
            raise ConfigError("SelectiveMahalanobisScorer.fit got no training residuals.")
        self.domains_ = tuple(d for d in DOMAINS if d in moments)
        dims = {moments[d].s1.size for d in self.domains_}
        if len(dims) != 1:
            raise ConfigError(f"residual dimensions differ between domains: {sorted(dims)}.")
        loc, cov, prec, shr, nvec = [], [], [], [], []
        for d in self.domains_:
            m = moments[d]
            if m.n < 2:
                raise ConfigError(f"the {d} domain has {m.n} residual vector(s); a covariance needs at least 2.")
            mu, c, s = m.finish(self.covariance)
            loc.append(mu)
            cov.append(c)
            prec.append(psd_inverse(c, pseudo=self.covariance == "empirical"))
            shr.append(s)
            nvec.append(m.n)
        self.location_ = np.stack(loc)
        self.covariance_ = np.stack(cov)
        self.precision_ = np.stack(prec)
        self.shrinkage_ = np.asarray(shr)
        self.n_vectors_ = np.asarray(nvec)
        self.n_features_in_ = dims.pop()
        return self

    def domain_scores(self, residuals) -> np.ndarray:
        """Per-domain scores: mean squared Mahalanobis distance of each clip's residual vectors.

        Parameters
        ----------
        residuals : ndarray of shape (n_clips, n_vectors, dim), or iterable of clips / chunks

        Returns
        -------
        ndarray of shape (n_clips, n_domains)
            Column ``k`` is the score under ``domains_[k]``; higher = more anomalous.
        """
        if not hasattr(self, "precision_"):
            raise NotFittedError("SelectiveMahalanobisScorer is not fitted: call fit(train_residuals, domains) first.")
        P = self.precision_                                        # (K, d, d)
        K, d = self.location_.shape
        center = self.location_.mean(axis=0)                       # common reference, against round-off
        mu = self.location_ - center                               # (K, d)
        Pmu = np.einsum("kde,ke->kd", P, mu)                       # (K, d)
        muPmu = np.einsum("kd,kd->k", Pmu, mu)                     # (K,)
        Pflat = P.reshape(K, d * d)
        out = []
        for c in iter_chunks(residuals):
            check_dim(self, c.shape[-1])
            x = c - center.astype(np.float32)
            # mean_i (x_i - mu)^T P (x_i - mu) = tr(P A) - 2 mu^T P m + mu^T P mu, with
            # A = mean_i x_i x_i^T and m = mean_i x_i: one d x d product per clip serves every domain.
            for s in range(0, len(x), 4):                          # 4 clips at a time bounds the memory
                xs = x[s:s + 4]
                A = _gram(xs) / xs.shape[1]                        # (b, d, d)
                m = xs.mean(axis=1, dtype=np.float64)              # (b, d)
                out.append(A.reshape(len(A), d * d) @ Pflat.T - 2 * m @ Pmu.T + muPmu)
        return np.concatenate(out) if out else np.zeros((0, len(self.domains_)))

    def score_samples(self, residuals) -> np.ndarray:
        """Selective Mahalanobis score of each clip: the minimum over domains of :meth:`domain_scores`.

        Parameters
        ----------
        residuals : ndarray of shape (n_clips, n_vectors, dim), or iterable of clips / chunks

        Returns
        -------
        ndarray of shape (n_clips,)
            **Higher = more anomalous.**
        """
        return self.domain_scores(residuals).min(axis=1)

    def get_state(self) -> dict:
        """The fitted statistics (arrays) and settings, for saving; :meth:`from_state` restores them."""
        return {"covariance": self.covariance, "domains_": list(self.domains_), "location_": self.location_,
                "covariance_": self.covariance_, "precision_": self.precision_, "shrinkage_": self.shrinkage_,
                "n_vectors_": self.n_vectors_, "n_features_in_": int(self.n_features_in_)}

    @classmethod
    def from_state(cls, state) -> "SelectiveMahalanobisScorer":
        out = cls(state["covariance"])
        out.domains_ = tuple(state["domains_"])
        for name in ("location_", "covariance_", "precision_", "shrinkage_", "n_vectors_"):
            setattr(out, name, np.asarray(state[name]))
        out.n_features_in_ = int(state["n_features_in_"])
        return out


def psd_inverse(cov: np.ndarray, *, pseudo: bool) -> np.ndarray:
    """Inverse of a symmetric positive (semi-)definite matrix.

    Cholesky first (fast and exact for a positive definite matrix); for a
    singular one, the pseudo-inverse (``pseudo=True``) or a :class:`ConfigError`.
    (LAPACK's divide-and-conquer ``eigh`` of a 640 x 640 matrix can take seconds
    under OpenBLAS on a busy machine, hence no eigendecomposition by default.)
    """
    import scipy.linalg

    try:
        factor = scipy.linalg.cho_factor(cov, lower=True, check_finite=True)
        inv = scipy.linalg.cho_solve(factor, np.eye(cov.shape[0]))
        return (inv + inv.T) / 2
    except (np.linalg.LinAlgError, scipy.linalg.LinAlgError):
        pass
    if not pseudo:
        raise ConfigError("the residual covariance is singular even after shrinkage; the training "
                          "residuals are (nearly) constant. Check the features.")
    return scipy.linalg.pinvh(cov)


def domain_array(domains) -> np.ndarray:
    d = np.asarray(list(domains), dtype=object)
    bad = sorted({str(x) for x in d if x not in DOMAINS})
    if bad:
        raise ConfigError(f"domains must be 'source' or 'target', got {bad}.")
    return d.astype(str)


class MahalanobisScorer:
    """Squared Mahalanobis distance to the Gaussian of the normal training vectors.

    The one-domain case of :class:`SelectiveMahalanobisScorer` (same
    estimates, same streaming), for any embedding.

    Parameters
    ----------
    covariance : {"ledoit_wolf", "empirical"}, default "ledoit_wolf"
        See :class:`SelectiveMahalanobisScorer`.

    Attributes
    ----------
    location_ : ndarray of shape (dim,)
    precision_ : ndarray of shape (dim, dim)
    shrinkage_ : float
    n_features_in_ : int

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> m = MahalanobisScorer().fit(rng.standard_normal((200, 3)))
    >>> bool(m.score_samples(np.zeros((1, 3)))[0] < m.score_samples(np.full((1, 3), 4.0))[0])
    True
    """

    def __init__(self, covariance: str = "ledoit_wolf"):
        self.covariance = covariance

    def fit(self, X, domains=None) -> "MahalanobisScorer":
        """Mean and covariance of the training vectors, read once (``domains`` is ignored: one Gaussian).

        Parameters
        ----------
        X : ndarray of shape (n, dim) or (n_clips, n_vectors, dim), or iterable of clips / chunks

        Returns
        -------
        self
        """
        if self.covariance not in COVARIANCES:
            raise ConfigError(f"covariance={self.covariance!r}: choose one of {list(COVARIANCES)}.")
        moments = None
        for chunk in iter_chunks(X):
            if moments is None:
                moments = StreamingMoments(chunk.shape[-1])
            elif moments.s1.size != chunk.shape[-1]:
                raise ConfigError("MahalanobisScorer.fit: all vectors must have the same dimension.")
            moments.add(chunk.reshape(-1, chunk.shape[-1]))
        if moments is None or moments.n < 2:
            raise ConfigError("MahalanobisScorer.fit needs at least two training vectors.")
        mu, cov, shrinkage = moments.finish(self.covariance)
        self._inner = SelectiveMahalanobisScorer.from_state({
            "covariance": self.covariance, "domains_": ["source"], "location_": mu[None], "covariance_": cov[None],
            "precision_": psd_inverse(cov, pseudo=self.covariance == "empirical")[None],
            "shrinkage_": np.array([shrinkage]), "n_vectors_": np.array([moments.n]), "n_features_in_": mu.size})
        self.location_, self.covariance_ = mu, cov
        self.precision_ = self._inner.precision_[0]
        self.shrinkage_, self.n_features_in_ = float(shrinkage), int(mu.size)
        return self

    def score_samples(self, X) -> np.ndarray:
        """Mean squared Mahalanobis distance of each sample's (or clip's) vectors; **higher = more anomalous**."""
        if not hasattr(self, "precision_"):
            raise NotFittedError("MahalanobisScorer is not fitted: call fit(train_vectors) first.")
        return self._inner.domain_scores(X)[:, 0]

    def get_state(self) -> dict:
        return {"covariance": self.covariance, **self._inner.get_state()}

    @classmethod
    def from_state(cls, state) -> "MahalanobisScorer":
        out = cls(state["covariance"])
        inner = SelectiveMahalanobisScorer.from_state(state)
        out._inner = inner
        out.location_, out.covariance_, out.precision_ = inner.location_[0], inner.covariance_[0], inner.precision_[0]
        out.shrinkage_, out.n_features_in_ = float(inner.shrinkage_[0]), inner.n_features_in_
        return out
