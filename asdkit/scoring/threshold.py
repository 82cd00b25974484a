"""Decision thresholds from training scores."""
from __future__ import annotations

import warnings

import numpy as np
import scipy.stats

from asdkit.errors import ConfigError

__all__ = ["gamma_threshold"]


def gamma_threshold(train_scores, quantile: float = 0.9) -> float:
    """The organisers' decision threshold: a quantile of a gamma fit to training scores.

    Fits ``scipy.stats.gamma.fit(train_scores)`` (shape, location and scale by
    maximum likelihood, as the official baseline does) and returns
    ``scipy.stats.gamma.ppf(quantile, shape, loc, scale)``. Clips scoring above
    the threshold are decided anomalous (higher score = more anomalous).

    Fallback: if the fit fails, gives a non-finite threshold, or a threshold
    outside the training scores' range widened by that range on each side
    (``[min - ptp, max + ptp]``), the empirical ``numpy.quantile(train_scores,
    quantile)`` is returned with a :class:`RuntimeWarning`. The free-location
    maximum-likelihood fit does go astray on left-skewed scores: selective
    Mahalanobis training scores with ten in-sample target clips far below the
    rest gave a location of -6.5e4 and a 0.9 quantile ten times the largest
    training score, so that no test clip at all was flagged.

    Parameters
    ----------
    train_scores : array-like of shape (n_train_clips,)
        Anomaly scores of the (normal) training clips.
    quantile : float, default 0.9
        In (0, 1).

    Returns
    -------
    float

    Raises
    ------
    ConfigError
        If ``quantile`` is not in (0, 1), the scores are not 1-D, fewer than 2,
        contain NaN/inf, or are all equal (no spread to fit).
    """
    if not 0 < quantile < 1:
        raise ConfigError(f"quantile must be in (0, 1), got {quantile}")
    s = np.asarray(train_scores, dtype=np.float64)
    if s.ndim != 1:
        raise ConfigError(f"train_scores must be one-dimensional (n_train_clips,), got shape {s.shape}")
    if s.size < 2:
        raise ConfigError(f"gamma_threshold needs at least 2 training scores to fit, got {s.size}")
    bad = ~np.isfinite(s)
    if bad.any():
        raise ConfigError(f"train_scores: {int(bad.sum())} of {s.size} values are NaN or infinite; "
                          "fix the scorer before fitting a threshold")
    if np.ptp(s) == 0:
        raise ConfigError(f"train_scores are all equal ({s[0]!r}); a gamma distribution cannot be "
                          "fitted and no threshold separates anything. Check the scorer.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            a, loc, scale = scipy.stats.gamma.fit(s)
            threshold = float(scipy.stats.gamma.ppf(quantile, a, loc=loc, scale=scale))
    except (ValueError, RuntimeError, FloatingPointError):
        threshold = float("nan")
    spread = float(np.ptp(s))
    if not (np.isfinite(threshold) and s.min() - spread <= threshold <= s.max() + spread):
        warnings.warn("gamma fit of the training scores failed or is implausible (its "
                      f"{quantile:g} quantile is {threshold:.6g}, the scores lie in [{s.min():.6g}, "
                      f"{s.max():.6g}]); using their empirical {quantile:g} quantile as the threshold",
                      RuntimeWarning, stacklevel=2)
        threshold = float(np.quantile(s, quantile))
    return threshold
