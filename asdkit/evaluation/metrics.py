"""The DCASE Task 2 metrics, as the official evaluator computes them.

All functions are pure and work on arrays. Anomaly scores follow the DCASE
convention: **a higher score means more anomalous** (scikit-learn's
``score_samples`` convention is the opposite).

Per machine type and section (``nttcslab/dcase2024_task2_evaluator``):

* **AUC(source)**: ROC AUC over the source-domain *normal* test clips together
  with **all** anomalous test clips of the section (source *and* target
  domain). **AUC(target)** likewise with the target-domain normals. The pooling
  of anomalies is intentional, so a target-domain anomaly changes AUC(source).
* **pAUC**: ``sklearn.metrics.roc_auc_score(y, s, max_fpr=0.1)`` over all test
  clips of the section. scikit-learn standardises the partial area (McClish
  correction), so chance level is 0.5 and a perfect detector scores 1.
* **Decisions**: precision, recall and F1 of the 0/1 decisions, per domain,
  over the clips of that domain only.

Over all machines and sections:

* **Official score**: harmonic mean of the list ``[AUC(source) of every
  machine/section] + [AUC(target) ...] + [pAUC ...]``, each value floored at
  :data:`EPS` (the evaluator uses ``numpy.maximum(values, sys.float_info.epsilon)``)
  so that a zero does not make the mean undefined.
* **Arithmetic mean** of the same list.
* A **jackknife** interval (:func:`jackknife_interval`).

The decision threshold of the organisers' baseline is :func:`gamma_threshold`.
"""
from __future__ import annotations

from typing import Callable, Mapping, NamedTuple, Sequence

import numpy as np
import pandas as pd
import scipy.stats
from sklearn.metrics import precision_recall_fscore_support, roc_auc_score

from asdkit.constants import DOMAINS, EPS  # noqa: F401  (public here too)
from asdkit.errors import ConfigError

__all__ = [
    "EPS", "MAX_FPR", "DOMAINS", "METRIC_COLUMNS",
    "domain_auc", "auc_source_target", "pauc", "section_metrics", "decision_metrics",
    "official_values", "official_score", "summary_percent", "arithmetic_mean", "floored_hmean",
    "JackknifeResult", "jackknife_interval", "evaluator_ci95",
]


#: Largest false-positive rate of the partial AUC.
MAX_FPR: float = 0.1


#: The per-section threshold-free metrics entering the official score.
METRIC_COLUMNS: tuple[str, str, str] = ("auc_source", "auc_target", "pauc")

_LABEL_WORDS = {"normal": 0, "anomaly": 1}
_DOMAIN_CODES = {0: "source", 1: "target"}


# --------------------------------------------------------------------------- input checks
def as_labels(y_true, *, name: str = "y_true") -> np.ndarray:
    """Return 0/1 labels (1 = anomaly) as an int array of shape (n,)."""
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise ConfigError(f"{name} must be one-dimensional (n_clips,), got shape {y.shape}")
    if y.dtype.kind == "b":
        return y.astype(np.int64)
    if y.dtype.kind in "iuf" and np.isin(y, (0, 1)).all():
        return y.astype(np.int64)
    out = []
    for v in y.tolist():
        if isinstance(v, str) and v in _LABEL_WORDS:
            out.append(_LABEL_WORDS[v])
        elif not isinstance(v, str) and v in (0, 1):
            out.append(int(v))
        else:
            raise ConfigError(f"{name}: each value must be 0/1 or 'normal'/'anomaly' "
                              f"(1 = anomaly), got {v!r}")
    return np.array(out, dtype=np.int64)


def _domains(domains, n: int) -> np.ndarray:
    """Return domains as an array of 'source'/'target' strings of shape (n,)."""
    d = np.asarray(domains)
    if d.ndim != 1 or len(d) != n:
        raise ConfigError(f"domains must have shape ({n},) like y_true, got {d.shape}")
    out = []
    for v in d.tolist():
        if isinstance(v, str) and v in DOMAINS:
            out.append(v)
        elif not isinstance(v, str) and v in _DOMAIN_CODES:
            out.append(_DOMAIN_CODES[int(v)])
        else:
            raise ConfigError(f"domains: each value must be 'source'/'target' (or 0/1 with 0 = source), "
                              f"got {v!r}")
    return np.array(out, dtype=object)


def _scores(scores, n: int, *, name: str = "scores") -> np.ndarray:
    """Return finite float scores of shape (n,)."""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1 or len(s) != n:
        raise ConfigError(f"{name} must have shape ({n},) like y_true, got {s.shape}")
    bad = ~np.isfinite(s)
    if bad.any():
        raise ConfigError(f"{name}: {int(bad.sum())} of {n} values are NaN or infinite "
                          f"(first at position {int(np.flatnonzero(bad)[0])}); fix the scorer")
    return s


# --------------------------------------------------------------------------- threshold-free metrics
def domain_auc(y_true, scores, domains, domain: str) -> float:
    """ROC AUC of one domain, pooling all anomalies as the official evaluator does.

    The clips used are the *normal* clips of ``domain`` plus **every** anomalous
    clip, whatever its domain.

    Parameters
    ----------
    y_true : array-like of shape (n_clips,)
        1 (or ``"anomaly"``) for anomalous clips, 0 (or ``"normal"``) for normal ones.
    scores : array-like of shape (n_clips,)
        Anomaly scores; higher = more anomalous.
    domains : array-like of shape (n_clips,)
        ``"source"``/``"target"``, or 0/1 with 0 = source (the ground-truth CSV coding).
    domain : {"source", "target"}
        The domain whose normals are used.

    Returns
    -------
    float
        The AUC in [0, 1]; ties count one half.

    Raises
    ------
    ConfigError
        If the domain has no normal clip or the section has no anomalous clip.
    """
    if domain not in DOMAINS:
        raise ConfigError(f"domain must be 'source' or 'target', got {domain!r}")
    y = as_labels(y_true)
    s = _scores(scores, len(y))
    d = _domains(domains, len(y))
    normals = (d == domain) & (y == 0)
    anomalies = y == 1
    if not normals.any() or not anomalies.any():
        raise ConfigError(
            f"AUC({domain}) needs at least one {domain}-domain normal clip and one anomalous clip; "
            f"got {int(normals.sum())} {domain} normal(s) and {int(anomalies.sum())} anomalies")
    keep = normals | anomalies
    return float(roc_auc_score(y[keep], s[keep]))


def auc_source_target(y_true, scores, domains) -> tuple[float, float]:
    """AUC(source) and AUC(target) of one section, as the official evaluator computes them.

    AUC(source) uses the source-domain normal clips and **all** anomalous clips
    of the section (both domains); AUC(target) the target-domain normals and all
    anomalies. See :func:`domain_auc`.

    Parameters
    ----------
    y_true : array-like of shape (n_clips,)
        1 / ``"anomaly"`` or 0 / ``"normal"``.
    scores : array-like of shape (n_clips,)
        Anomaly scores; higher = more anomalous.
    domains : array-like of shape (n_clips,)
        ``"source"``/``"target"`` or 0/1 (0 = source).

    Returns
    -------
    (float, float)
        ``(auc_source, auc_target)``.

    Raises
    ------
    ConfigError
        If a domain has no normal clip or there is no anomalous clip; the message
        names what is missing.

    Examples
    --------
    >>> y = [0, 0, 0, 0, 1, 1]
    >>> d = ["source", "source", "target", "target", "source", "target"]
    >>> auc_source_target(y, [0.1, 0.4, 0.3, 0.6, 0.5, 0.2], d)
    (0.75, 0.25)
    """
    return (domain_auc(y_true, scores, domains, "source"),
            domain_auc(y_true, scores, domains, "target"))


def pauc(y_true, scores, max_fpr: float = MAX_FPR) -> float:
    """Standardised partial AUC over all clips of a section (both domains).

    ``sklearn.metrics.roc_auc_score(y_true, scores, max_fpr=max_fpr)``: the area
    under the ROC curve for FPR in ``[0, max_fpr]``, McClish-standardised as
    ``0.5 * (1 + (A - A_min) / (A_max - A_min))`` with ``A_min = max_fpr**2 / 2``
    (chance) and ``A_max = max_fpr`` (perfect), so chance is 0.5.

    Parameters
    ----------
    y_true : array-like of shape (n_clips,)
        1 / ``"anomaly"`` or 0 / ``"normal"``.
    scores : array-like of shape (n_clips,)
        Anomaly scores; higher = more anomalous.
    max_fpr : float, default 0.1
        Upper end of the FPR range, in (0, 1].

    Returns
    -------
    float

    Raises
    ------
    ConfigError
        If ``max_fpr`` is out of range or one class is missing.
    """
    if not 0 < max_fpr <= 1:
        raise ConfigError(f"max_fpr must be in (0, 1], got {max_fpr}")
    y = as_labels(y_true)
    s = _scores(scores, len(y))
    n_anom = int(y.sum())
    if n_anom == 0 or n_anom == len(y):
        raise ConfigError(f"pAUC needs normal and anomalous clips; got {len(y) - n_anom} normal(s) "
                          f"and {n_anom} anomalies")
    return float(roc_auc_score(y, s, max_fpr=max_fpr))


def section_metrics(y_true, scores, domains, *, max_fpr: float = MAX_FPR) -> dict[str, float]:
    """AUC(source), AUC(target) and pAUC of one machine type and section.

    Parameters
    ----------
    y_true : array-like of shape (n_clips,)
        1 / ``"anomaly"`` or 0 / ``"normal"``.
    scores : array-like of shape (n_clips,)
        Anomaly scores; higher = more anomalous.
    domains : array-like of shape (n_clips,)
        ``"source"``/``"target"`` or 0/1 (0 = source).
    max_fpr : float, default 0.1

    Returns
    -------
    dict
        ``{"auc_source": float, "auc_target": float, "pauc": float}``.

    Raises
    ------
    ConfigError
        If a needed class is missing (see :func:`auc_source_target`, :func:`pauc`).
    """
    auc_s, auc_t = auc_source_target(y_true, scores, domains)
    return {"auc_source": auc_s, "auc_target": auc_t, "pauc": pauc(y_true, scores, max_fpr)}


# --------------------------------------------------------------------------- decisions
def decision_metrics(y_true, decisions, domains) -> dict[str, float]:
    """Precision, recall and F1 of 0/1 decisions, per domain.

    As in the official evaluator, each domain's figures use the clips of that
    domain only (normals and anomalies), with "anomaly" as the positive class.
    An undefined ratio (no positive decision, no anomaly) counts as 0
    (``zero_division=0``).

    Parameters
    ----------
    y_true : array-like of shape (n_clips,)
        1 / ``"anomaly"`` or 0 / ``"normal"``.
    decisions : array-like of shape (n_clips,)
        1 where the system decides "anomaly", 0 for "normal".
    domains : array-like of shape (n_clips,)
        ``"source"``/``"target"`` or 0/1 (0 = source).

    Returns
    -------
    dict
        ``precision_source, recall_source, f1_source, precision_target,
        recall_target, f1_target``; NaN for a domain with no clip at all.
    """
    y = as_labels(y_true)
    dec = as_labels(decisions, name="decisions")
    if len(dec) != len(y):
        raise ConfigError(f"decisions must have shape ({len(y)},) like y_true, got ({len(dec)},)")
    d = _domains(domains, len(y))
    out: dict[str, float] = {}
    for domain in DOMAINS:
        mask = d == domain
        if mask.any():
            p, r, f, _ = precision_recall_fscore_support(
                y[mask], dec[mask], average="binary", pos_label=1, zero_division=0)
        else:
            p = r = f = np.nan
        out[f"precision_{domain}"] = float(p)
        out[f"recall_{domain}"] = float(r)
        out[f"f1_{domain}"] = float(f)
    return out


# --------------------------------------------------------------------------- aggregate scores
def official_values(per_section: pd.DataFrame | Mapping[str, Sequence[float]]) -> np.ndarray:
    """The list of values that enters the official score.

    Parameters
    ----------
    per_section : DataFrame or mapping
        One row (entry) per machine type and section, with columns (keys)
        ``auc_source``, ``auc_target`` and ``pauc``.

    Returns
    -------
    ndarray of shape (n_values,)
        ``[auc_source of every row] + [auc_target ...] + [pauc ...]``, NaN
        entries dropped (a section without target-domain clips, as in DCASE 2020,
        has no AUC(target)).

    Raises
    ------
    ConfigError
        If a column is missing or no finite value is left.
    """
    table = pd.DataFrame(per_section)
    missing = [c for c in METRIC_COLUMNS if c not in table.columns]
    if missing:
        raise ConfigError(f"the per-section table lacks column(s) {missing}; "
                          f"it needs {list(METRIC_COLUMNS)}")
    values = np.concatenate([table[c].to_numpy(dtype=np.float64) for c in METRIC_COLUMNS])
    values = values[~np.isnan(values)]
    if values.size == 0:
        raise ConfigError("the per-section table holds no AUC or pAUC value")
    if (values < 0).any() or (values > 1).any() or not np.isfinite(values).all():
        raise ConfigError("AUC and pAUC values must lie in [0, 1]")
    return values


def floored_hmean(values, eps: float = EPS) -> float:
    """Harmonic mean of ``max(values, eps)``, NaN entries ignored.

    Parameters
    ----------
    values : array-like of shape (n_values,) or (n_units, k)
        Values in [0, 1]; flattened.
    eps : float, default :data:`EPS`
        Floor; a zero AUC would otherwise make the harmonic mean 0 regardless
        of all other values (and scipy warns).

    Returns
    -------
    float
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[~np.isnan(v)]
    return float(scipy.stats.hmean(np.maximum(v, eps)))


def official_score(per_section: pd.DataFrame | Mapping[str, Sequence[float]], *,
                   eps: float = EPS) -> float:
    """The DCASE Task 2 official score: harmonic mean over machines, sections and metrics.

    ``hmean([AUC(source) of every machine/section] + [AUC(target) ...] + [pAUC ...])``,
    each value floored at ``eps`` (``scipy.stats.hmean``).

    Parameters
    ----------
    per_section : DataFrame or mapping
        One row per machine type and section with columns ``auc_source``,
        ``auc_target`` and ``pauc`` (see :func:`official_values`).
    eps : float, default :data:`EPS`
        The floor; the official evaluator uses ``sys.float_info.epsilon``.

    Returns
    -------
    float

    Examples
    --------
    >>> official_score({"auc_source": [1.0, 0.5], "auc_target": [0.25, 0.5], "pauc": [1.0, 0.5]})
    0.5
    """
    return floored_hmean(official_values(per_section), eps)


def summary_percent(per_section: pd.DataFrame) -> dict[str, float]:
    """Harmonic means over sections of AUC(source), AUC(target) and pAUC, and the official score, in %.

    Parameters
    ----------
    per_section : DataFrame
        One row per machine type and section with columns ``auc_source``,
        ``auc_target`` and ``pauc`` (in [0, 1]).

    Returns
    -------
    dict
        ``{"AUC(source)", "AUC(target)", "pAUC", "official score"}``, each in %.

    Examples
    --------
    >>> t = pd.DataFrame({"auc_source": [1.0, 0.5], "auc_target": [0.25, 0.5], "pauc": [1.0, 0.5]})
    >>> {k: round(v, 2) for k, v in summary_percent(t).items()}
    {'AUC(source)': 66.67, 'AUC(target)': 33.33, 'pAUC': 66.67, 'official score': 50.0}
    """
    return {"AUC(source)": 100 * floored_hmean(per_section["auc_source"]),
            "AUC(target)": 100 * floored_hmean(per_section["auc_target"]),
            "pAUC": 100 * floored_hmean(per_section["pauc"]),
            "official score": 100 * official_score(per_section)}


def arithmetic_mean(per_section: pd.DataFrame | Mapping[str, Sequence[float]]) -> float:
    """Arithmetic mean of the same list as :func:`official_score` (AUCs and pAUCs).

    This is the "a-mean" of the TOTAL row of the organisers' paper table. (The
    evaluator's separate "arithmetic mean" column averages the AUCs only.)

    Parameters
    ----------
    per_section : DataFrame or mapping
        Columns ``auc_source``, ``auc_target`` and ``pauc``.

    Returns
    -------
    float
    """
    return float(np.mean(official_values(per_section)))


# --------------------------------------------------------------------------- jackknife
class JackknifeResult(NamedTuple):
    """Outcome of :func:`jackknife_interval`.

    Attributes
    ----------
    value : float
        The statistic on all units.
    estimate : float
        Bias-corrected jackknife estimate ``n * value - (n - 1) * mean(theta_i)``.
    std_error : float
        ``sqrt((n - 1) / n * sum((theta_i - mean(theta_i))**2))``.
    low, high : float
        ``estimate -/+ t_{1 - alpha/2, n - 1} * std_error``.
    n : int
        Number of units left out in turn.
    """

    value: float
    estimate: float
    std_error: float
    low: float
    high: float
    n: int


def jackknife_interval(values, statistic: Callable[[np.ndarray], float] = scipy.stats.hmean,
                       alpha: float = 0.05) -> JackknifeResult:
    """Leave-one-out jackknife confidence interval of a statistic of a list of values.

    **What is resampled**: the *units* along the first axis of ``values``. With
    a 1-D array each value is a unit; with a 2-D array of shape ``(n, k)`` each
    row is a unit and is left out whole (e.g. one row per machine/section
    holding its AUC(source), AUC(target) and pAUC, so that the three correlated
    values of a section leave together). ``statistic`` always receives the
    remaining values flattened to 1-D.

    With ``theta`` the statistic on all units and ``theta_i`` the statistic with
    unit ``i`` left out::

        estimate  = n * theta - (n - 1) * mean(theta_i)
        std_error = sqrt((n - 1) / n * sum((theta_i - mean(theta_i))**2))
        interval  = estimate -/+ t.ppf(1 - alpha / 2, n - 1) * std_error

    Note that the official ``dcase2024_task2_evaluator`` reports a different
    "official score ci95": a leave-one-*clip*-out jackknife of the AUC and pAUC
    over all test clips pooled across machines (not of the harmonic mean), with
    ``sqrt(sum((theta_i - mean)**2) / (n (n - 1)))`` as the standard error.
    This function is the textbook jackknife over per-unit values.

    Parameters
    ----------
    values : array-like of shape (n_units,) or (n_units, k)
        The values; NaN entries are passed on to ``statistic`` unchanged.
    statistic : callable, default ``scipy.stats.hmean``
        Maps a 1-D array to a float. Use :func:`floored_hmean` for the official
        score (floor at :data:`EPS`, NaN ignored).
    alpha : float, default 0.05
        1 - confidence level (0.05 gives a 95 % interval).

    Returns
    -------
    JackknifeResult

    Raises
    ------
    ConfigError
        If there are fewer than 2 units, ``values`` has more than 2 dimensions,
        or ``alpha`` is not in (0, 1).

    Examples
    --------
    >>> r = jackknife_interval([1.0, 2.0, 6.0], statistic=np.mean)
    >>> round(r.estimate, 6), round(r.std_error ** 2, 6)
    (3.0, 2.333333)
    """
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must be in (0, 1), got {alpha}")
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 1:
        v = v[:, None]
    if v.ndim != 2:
        raise ConfigError(f"values must have shape (n_units,) or (n_units, k), got {v.shape}")
    n = v.shape[0]
    if n < 2:
        raise ConfigError(f"the jackknife needs at least 2 units to leave out, got {n}")
    theta = float(statistic(v.ravel()))
    theta_i = np.array([float(statistic(np.delete(v, i, axis=0).ravel())) for i in range(n)])
    theta_bar = float(theta_i.mean())
    estimate = n * theta - (n - 1) * theta_bar
    std_error = float(np.sqrt((n - 1) / n * np.sum((theta_i - theta_bar) ** 2)))
    half = float(scipy.stats.t.ppf(1 - alpha / 2, n - 1)) * std_error
    return JackknifeResult(value=theta, estimate=float(estimate), std_error=std_error,
                           low=float(estimate - half), high=float(estimate + half), n=n)


def _loo_half_width(fn: Callable[[np.ndarray, np.ndarray], float], y: np.ndarray, s: np.ndarray,
                    confidence: float) -> float:
    n = y.shape[0]
    keep = np.ones(n, dtype=bool)
    theta_i = np.empty(n)
    for i in range(n):
        keep[i] = False
        theta_i[i] = fn(y[keep], s[keep])
        keep[i] = True
    sigma = np.sqrt(np.sum((theta_i - theta_i.mean()) ** 2) / (n * (n - 1)))
    return float(abs(scipy.stats.t.ppf((1 - confidence) / 2, n - 1)) * sigma)


def evaluator_ci95(y_true, scores, *, max_fpr: float = MAX_FPR, confidence: float = 0.95) -> float:
    """The official evaluator's "official score ci95", computed the same way.

    The ``dcase2024_task2_evaluator`` pools the test clips of every machine
    type and section, and runs a leave-one-*clip*-out jackknife (Mesaros et
    al., TASLP 2019) of the pooled ROC AUC and of the pooled pAUC, with
    ``sigma = sqrt(sum((theta_i - mean(theta_i))**2) / (n (n - 1)))`` and the
    half-width ``|t.ppf((1 - confidence) / 2, n - 1)| * sigma``. The number it
    reports is the mean of the two half-widths. Note this sigma is ``n - 1``
    times smaller than the textbook jackknife standard error used by
    :func:`jackknife_interval`.

    Parameters
    ----------
    y_true : array-like of shape (n_clips,)
        Labels of all test clips pooled (1 or ``"anomaly"`` = anomalous).
    scores : array-like of shape (n_clips,)
        Their anomaly scores (higher = more anomalous).

    Returns
    -------
    float
        The half-width, on the same 0-1 scale as the AUCs.
    """
    y = as_labels(y_true)
    s = _scores(scores, y.shape[0])
    if y.shape[0] < 3 or y.min() == y.max():
        raise ConfigError("evaluator_ci95 needs at least 3 clips with both normal and anomalous ones")
    auc_hw = _loo_half_width(lambda a, b: roc_auc_score(a, b), y, s, confidence)
    pauc_hw = _loo_half_width(lambda a, b: roc_auc_score(a, b, max_fpr=max_fpr), y, s, confidence)
    return float(np.mean([auc_hw, pauc_hw]))
