"""Standardisation of scores by their training statistics, and the one weighted combination of scores.

OEVAE's ``w * alpha + (1 - w) * beta``, the ensemble of detectors and every
weight sweep combine standardised scores the same way: :func:`weighted_sum`.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from asdkit.errors import ConfigError, NotFittedError

__all__ = ["ScoreNormalizer", "shrink_toward", "shrink_domains", "check_prior", "weighted_sum", "check_weights"]


class ScoreNormalizer:
    """Standardise scores by the mean and standard deviation of the **training** clips' scores.

    ``fit(train_scores)`` stores the statistics; ``transform(scores)`` returns
    ``(scores - mean_) / scale_``. Test scores never enter the statistics.

    Attributes
    ----------
    mean_ : float
    scale_ : float
        The standard deviation (1 where the training scores do not vary).

    Examples
    --------
    >>> ScoreNormalizer().fit([1.0, 2.0, 3.0]).transform([2.0, 4.0]).round(3).tolist()
    [0.0, 2.449]
    """

    def fit(self, train_scores) -> "ScoreNormalizer":
        s = np.asarray(train_scores, dtype=np.float64)
        if s.ndim != 1 or s.size < 2 or not np.isfinite(s).all():
            raise ConfigError("ScoreNormalizer.fit needs at least two finite training scores (1-D).")
        self.mean_ = float(s.mean())
        self.scale_ = float(s.std()) or 1.0
        return self

    def transform(self, scores) -> np.ndarray:
        if not hasattr(self, "mean_"):
            raise NotFittedError("ScoreNormalizer is not fitted: call fit(train_scores) first.")
        return (np.asarray(scores, dtype=np.float64) - self.mean_) / self.scale_

    def get_state(self) -> dict:
        """The fitted statistics (for saving)."""
        return {"mean_": self.mean_, "scale_": self.scale_}

    @classmethod
    def from_state(cls, state: Mapping) -> "ScoreNormalizer":
        out = cls()
        out.mean_, out.scale_ = float(state["mean_"]), float(state["scale_"])
        return out


def shrink_toward(own: ScoreNormalizer, prior: ScoreNormalizer, n_own: int, n_prior: float) -> ScoreNormalizer:
    """A domain's statistics from few clips, shrunk toward a better-known domain's.

    Ten target clips give a noisy mean and a noisier standard deviation. The
    shrunk statistics blend them with the prior domain's (the source domain's,
    from about a thousand clips), as if ``n_prior`` of its clips had joined the
    ``n_own``: weight ``lam = n_own / (n_own + n_prior)`` on the own mean and
    variance, ``1 - lam`` on the prior's. ``n_prior = 0`` keeps the own
    statistics (per-domain standardisation); ``n_prior -> inf`` takes the
    prior's, which puts every domain on one scale (the smallest raw distance).

    Parameters
    ----------
    own, prior : ScoreNormalizer
        Fitted.
    n_own : int
        Clips behind ``own`` (>= 1).
    n_prior : float
        The prior's weight, in clips (>= 0, ``math.inf`` allowed).

    Returns
    -------
    ScoreNormalizer
        A new one; the inputs are unchanged.

    Examples
    --------
    >>> a, b = ScoreNormalizer().fit([0.0, 2.0]), ScoreNormalizer().fit([10.0, 14.0])
    >>> z = shrink_toward(a, b, 2, 2)
    >>> round(z.mean_, 3), round(z.scale_, 3)
    (6.5, 1.581)
    """
    n_prior = check_prior(n_prior, name="n_prior")
    if not n_own >= 1:
        raise ConfigError(f"shrink_toward: n_own={n_own!r} must be at least 1.")
    lam = 0.0 if np.isinf(n_prior) else float(n_own) / (float(n_own) + float(n_prior))
    out = ScoreNormalizer()
    out.mean_ = lam * own.mean_ + (1 - lam) * prior.mean_
    out.scale_ = float(np.sqrt(lam * own.scale_ ** 2 + (1 - lam) * prior.scale_ ** 2)) or 1.0
    return out


def shrink_domains(normalizers: Mapping[str, ScoreNormalizer], counts: Mapping[str, int],
                   n_prior: float) -> dict:
    """Each domain's statistics, every domain but the one with the most clips shrunk toward that one's.

    Parameters
    ----------
    normalizers : mapping of domain to fitted ScoreNormalizer
    counts : mapping of domain to its number of training clips
    n_prior : float
        As in :func:`shrink_toward` (0 returns the statistics as they are).

    Returns
    -------
    dict of str to ScoreNormalizer
    """
    prior = check_prior(n_prior, name="n_prior")
    if prior == 0:
        return dict(normalizers)
    largest = max(normalizers, key=lambda d: counts[d])
    return {d: z if d == largest else shrink_toward(z, normalizers[largest], counts[d], prior)
            for d, z in normalizers.items()}


def check_prior(prior, *, name: str = "target_prior") -> float:
    """A prior weight in clips as a float: a number >= 0 (``math.inf`` allowed), else a ConfigError naming ``name``."""
    if isinstance(prior, bool) or not isinstance(prior, (int, float, np.integer, np.floating)) or not prior >= 0:
        raise ConfigError(f"{name}={prior!r}: give a number of clips >= 0 (math.inf for the source domain's "
                          "statistics alone).")
    return float(prior)


def check_weights(weights: Mapping[str, float], names=None, *, who: str = "weights") -> dict[str, float]:
    """Weights checked (finite, non-negative, not all zero) and scaled to sum to 1.

    Parameters
    ----------
    weights : mapping of name to float
    names : iterable of str, optional
        The names that may carry a weight (an unknown name is an error).
    who : str
        The caller, for error messages.

    Returns
    -------
    dict of name to float, summing to 1
    """
    try:
        w = {str(k): float(v) for k, v in dict(weights).items()}
    except (TypeError, ValueError):
        raise ConfigError(f"{who}: weights must be numbers, got {weights!r}.") from None
    if names is not None:
        unknown = sorted(set(w) - set(names))
        if unknown:
            raise ConfigError(f"{who}: weights for {unknown}, which are not among {sorted(names)}.")
    if not w or any(not np.isfinite(v) or v < 0 for v in w.values()) or sum(w.values()) <= 0:
        raise ConfigError(f"{who}: weights must be non-negative and not all zero, got {w}.")
    total = sum(w.values())
    return {k: v / total for k, v in w.items()}


def weighted_sum(scores: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray:
    """``sum_i w_i s_i`` over the names of ``weights``, with the weights scaled to sum to 1.

    Parameters
    ----------
    scores : mapping of name to array-like of shape (n_clips,)
        Scores on a common scale (standardise them first, e.g. with
        :class:`ScoreNormalizer`); names without a weight are ignored.
    weights : mapping of name to float
        Non-negative, not all zero.

    Returns
    -------
    ndarray of shape (n_clips,)
        **Higher = more anomalous**, as the inputs.

    Examples
    --------
    >>> weighted_sum({"alpha": [1.0, 0.0], "beta": [0.0, 2.0]}, {"alpha": 0.5, "beta": 0.5}).tolist()
    [0.5, 1.0]
    """
    w = check_weights(weights, who="weighted_sum")
    missing = sorted(set(w) - set(scores))
    if missing:
        raise ConfigError(f"weighted_sum: no scores for {missing}; got {sorted(scores)}.")
    arrays = {n: np.asarray(scores[n], dtype=np.float64) for n in w}
    if len({a.shape for a in arrays.values()}) != 1:
        raise ConfigError(f"weighted_sum: the scores differ in shape: { {n: a.shape for n, a in arrays.items()} }.")
    return sum(w[n] * arrays[n] for n in w)
