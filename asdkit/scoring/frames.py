"""The organisers' selective Mahalanobis score of autoencoder residuals: per-frame covariances per domain.

The DCASE 2023-2025 Task 2 baseline (``dcase2023_task2_baseline_ae``, its
``networks/criterion/mahala.py`` and the model's covariance pass) scores a
clip as follows. Each 640-value residual vector (5 stacked frames of 128 mel
bands, frame-major) is cut into its 5 frames of 128 values (``block_size``).
After training, one pass over the training vectors of each domain sums the
outer products of those frames, centred by the batch mean, and divides by the
number of *vectors* minus one: a 128 x 128 matrix per domain, about 5 times
the frames' covariance. The target domain, with its 10 clips, then has
5 x 300 x 10 = 15 000 frames for 8 256 free entries: a plain estimate inverts
safely. The batches (256 shuffled vectors of the 90 % not held out for
validation) hold only 2-3 target vectors each, so centring by the batch mean
removes a good part of the target frames' spread (up to 40 % when a
vector's frames are strongly correlated) and makes the target distances
larger than a plain covariance would: it decides which domain's score is
the smaller, so it is part of the method. A test clip's
score under a domain is ``mean_ij d_i^T P d_j`` over all of the clip's frames
``d_i = recon_i - x_i``, which by linearity is the squared Mahalanobis length
``u^T P u`` of the clip's **mean residual frame** ``u`` (not centred); the
clip score is the smaller of the two domains' scores.

:class:`FrameMahalanobisScorer` computes that, streamed over chunks of
clips, with the batch centring taken in expectation rather than for one
random shuffle: for a batch with ``m`` of the domain's ``N`` vectors (``F``
frames each), ``E[centred scatter] = F m C - Cov(s) (N - m) / (F (N - 1))``,
where ``C`` is the frames' covariance and ``s`` the sum of a vector's
frames; summed over the ``B`` batches that hold the domain (their expected
number from the batch size and the domain's share of the vectors), the
second term is ``Cov(s) N (B - 1) / (F (N - 1))``. The inverse is taken in float64.

asdkit's own variant, the mean over a clip's vectors of the squared distance
of the centred 640-value residual under a Ledoit-Wolf 640 x 640 covariance,
is :class:`~asdkit.scoring.mahalanobis.SelectiveMahalanobisScorer`.
"""
from __future__ import annotations

import numpy as np

from asdkit.errors import ConfigError, NotFittedError
from asdkit.presets import check_integer
from asdkit.scoring.mahalanobis import DOMAINS, StreamingMoments, domain_chunks, iter_chunks, psd_inverse

__all__ = ["FrameMahalanobisScorer"]


class FrameMahalanobisScorer:
    """The organisers' selective Mahalanobis score ("MAHALA" of the DCASE 2023-2025 baseline).

    Parameters
    ----------
    block_size : int, default 128
        Length of one frame of the residual vector (the number of mel bands);
        the vector's length must be a multiple of it.
    batch_size : int or None, default 256
        Vectors per shuffled batch whose mean centres the frames (the
        organisers' training batch); None centres by the domain's mean.
    holdout : float, default 0.1
        Share of the training vectors the organisers hold out for validation
        (their covariance pass sees the rest): scales the vector counts.

    Attributes
    ----------
    domains_ : tuple of str
        Domains seen in training; with one domain the other is scored with its
        statistics (the organisers copy the source covariance when there is no target data).
    location_ : ndarray of shape (n_domains, block_size)
        Mean residual frame of each domain (kept for inspection; the score does not centre).
    covariance_ : ndarray of shape (n_domains, block_size, block_size)
        The frames' centred scatter divided by the domain's number of vectors minus one.
    precision_ : ndarray of shape (n_domains, block_size, block_size)
    n_vectors_ : ndarray of shape (n_domains,)
        Training vectors (not frames) of each domain.
    n_features_in_ : int
        Length of the residual vectors (640).

    Notes
    -----
    :meth:`score_samples` returns **higher = more anomalous**.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> res = rng.standard_normal((4, 60, 6))
    >>> sc = FrameMahalanobisScorer(block_size=3).fit(res, ["source", "source", "target", "target"])
    >>> sc.domain_scores(res).shape
    (4, 2)
    """

    def __init__(self, block_size: int = 128, batch_size: int | None = 256, holdout: float = 0.1):
        self.block_size = block_size
        self.batch_size = batch_size
        self.holdout = holdout

    def _blocks(self, chunk: np.ndarray) -> np.ndarray:
        """``(b, n_vectors, dim) -> (b, n_vectors * dim / block_size, block_size)``."""
        b, n, d = chunk.shape
        if d % self.block_size:
            raise ConfigError(f"FrameMahalanobisScorer: residual vectors of length {d} do not split into frames of "
                              f"block_size={self.block_size}; give the number of mel bands.")
        return chunk.reshape(b, n * (d // self.block_size), self.block_size)

    def fit(self, residuals, domains) -> "FrameMahalanobisScorer":
        """Per-domain scatter of the training residual frames, read once.

        Parameters
        ----------
        residuals : ndarray of shape (n_clips, n_vectors, dim), or iterable of clips / chunks
            Residuals ``recon - x`` of the normal training clips.
        domains : array-like of shape (n_clips,)
            ``"source"`` or ``"target"`` per clip.

        Returns
        -------
        self
        """
        check_integer(self.block_size, "block_size", who="FrameMahalanobisScorer")
        if self.batch_size is not None:
            check_integer(self.batch_size, "batch_size", who="FrameMahalanobisScorer", hint="or None")
        if not 0 <= self.holdout < 1:
            raise ConfigError(f"FrameMahalanobisScorer: holdout={self.holdout!r} must lie in [0, 1).")
        moments: dict[str, StreamingMoments] = {}
        sums: dict[str, StreamingMoments] = {}
        vectors = {d: 0 for d in DOMAINS}
        dims = set()
        for d, clips in domain_chunks(residuals, domains):
            dims.add(clips.shape[-1])
            moments.setdefault(d, StreamingMoments(self.block_size)).add(
                self._blocks(clips).reshape(-1, self.block_size))
            per_vector = clips.reshape(-1, clips.shape[-1] // self.block_size, self.block_size)
            sums.setdefault(d, StreamingMoments(self.block_size)).add(per_vector.sum(axis=1))
            vectors[d] += clips.shape[0] * clips.shape[1]
        if not moments:
            raise ConfigError("FrameMahalanobisScorer.fit got no training residuals.")
        if len(dims) != 1:
            raise ConfigError(f"FrameMahalanobisScorer.fit needs residuals of one length, got {sorted(dims)}.")
        self.domains_ = tuple(d for d in DOMAINS if d in moments)
        n_frames = dims.copy().pop() // self.block_size
        used = {d: (1 - self.holdout) * vectors[d] for d in self.domains_}     # vectors of the covariance pass
        n_batches = np.ceil(sum(used.values()) / self.batch_size) if self.batch_size else 0
        loc, cov, nvec = [], [], []
        for d in self.domains_:
            if used[d] < 2:
                raise ConfigError(f"the {d} domain has {vectors[d]} residual vector(s); a covariance needs more.")
            mu, c, _ = moments[d].finish("empirical")             # the frames' covariance C (biased)
            scatter = n_frames * used[d] * c                      # expected scatter, centred by the domain mean
            if self.batch_size:
                # centred by each batch's mean instead: E = F m C - Cov(s) / F per batch holding the domain
                _, cov_s, _ = sums[d].finish("empirical")
                share = used[d] / sum(used.values())
                holding = n_batches * (1 - (1 - share) ** min(self.batch_size, sum(used.values())))
                # (sampling without replacement: Var(sum of the batch's m sums) = m Cov(s) (N - m) / (N - 1))
                scatter = scatter - cov_s / n_frames * used[d] * max(holding - 1, 0) / (used[d] - 1)
            loc.append(mu)
            cov.append(scatter / (used[d] - 1))                   # / (n_vectors - 1), as the organisers
            nvec.append(vectors[d])
        self.location_ = np.stack(loc)
        self.covariance_ = np.stack(cov)
        self.precision_ = np.stack([psd_inverse(c, pseudo=True) for c in cov])
        self.n_vectors_ = np.asarray(nvec)
        self.n_features_in_ = dims.pop()
        return self

    def domain_scores(self, residuals) -> np.ndarray:
        """``u^T P_d u`` of each clip's mean residual frame ``u`` under each domain.

        Parameters
        ----------
        residuals : ndarray of shape (n_clips, n_vectors, dim), or iterable of clips / chunks

        Returns
        -------
        ndarray of shape (n_clips, n_domains)
            Column ``k`` is the score under ``domains_[k]``; higher = more anomalous.
        """
        if not hasattr(self, "precision_"):
            raise NotFittedError("FrameMahalanobisScorer is not fitted: call fit(train_residuals, domains) first.")
        out = []
        for c in iter_chunks(residuals):
            if c.shape[-1] != self.n_features_in_:
                raise ConfigError(f"FrameMahalanobisScorer was fitted on {self.n_features_in_}-dim residuals, "
                                  f"got {c.shape[-1]}-dim ones.")
            u = self._blocks(c).mean(axis=1, dtype=np.float64)    # (b, block_size)
            out.append(np.einsum("bi,kij,bj->bk", u, self.precision_, u))
        return np.concatenate(out) if out else np.zeros((0, len(self.domains_)))

    def score_samples(self, residuals) -> np.ndarray:
        """The smaller of the domains' scores of each clip, shape (n_clips,); **higher = more anomalous**."""
        return self.domain_scores(residuals).min(axis=1)

    def get_state(self) -> dict:
        return {"block_size": int(self.block_size), "batch_size": self.batch_size, "holdout": float(self.holdout),
                "domains_": list(self.domains_), "location_": self.location_,
                "covariance_": self.covariance_, "precision_": self.precision_, "n_vectors_": self.n_vectors_,
                "n_features_in_": int(self.n_features_in_)}

    @classmethod
    def from_state(cls, state) -> "FrameMahalanobisScorer":
        out = cls(int(state["block_size"]), state["batch_size"], float(state["holdout"]))
        out.domains_ = tuple(state["domains_"])
        for name in ("location_", "covariance_", "precision_", "n_vectors_"):
            setattr(out, name, np.asarray(state[name]))
        out.n_features_in_ = int(state["n_features_in_"])
        return out
