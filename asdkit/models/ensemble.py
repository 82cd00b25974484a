"""Ensembles of fitted detectors: normalised scores, weighted and summed.

The report's final system combines the classification-based model's score
with OEVAE's. The two live on different scales (a cosine distance, a sum of
standardised scores), so :class:`EnsembleDetector` first standardises each
member's score by the mean and standard deviation of its **training** clips'
scores (never test scores), then takes ``sum_i w_i z_i / sum_i w_i``.

The weights are fixed before any test clip is seen: equal by default. Choosing
them per machine type by the test labels, as the report's development-set
figures did, measures how much the weights *could* matter, not what a detector
would score on new data. :func:`ensemble_components`, :func:`evaluate_weights`,
:func:`weight_table` and :func:`ensemble_widget` make that comparison
(``notebooks/05_full_system.ipynb``).

Scores follow the DCASE convention: **higher = more anomalous**.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from asdkit.errors import ConfigError
from asdkit.evaluation.metrics import floored_hmean, official_score, section_metrics
from asdkit.scoring.threshold import gamma_threshold
from asdkit.models.oevae import ScoreNormalizer

__all__ = ["EnsembleDetector", "DEFAULT_MEMBERS", "ensemble_components", "evaluate_weights", "weight_table",
           "ensemble_widget"]

#: What ``asdkit run --system ensemble`` combines: member family -> the score of it that is used.
DEFAULT_MEMBERS = {"classifier": "classifier", "oevae": "oevae"}


class EnsembleDetector:
    """Weighted sum of fitted detectors' scores, each standardised by its training clips' scores.

    Parameters
    ----------
    members : mapping of name to fitted detector, optional
        Each with ``score_all(X) -> dict`` and ``train_scores_`` (dict). They
        may also be given to :meth:`fit` (``asdkit run`` does so).
    keys : mapping of name to str, optional
        Which of a member's scores to use (default: the name itself, as in
        :data:`DEFAULT_MEMBERS`).
    weights : mapping of name to float, optional
        Non-negative weights, not all zero (default: equal).

    Attributes
    ----------
    members_ : dict
    normalizers_ : dict of name to ScoreNormalizer
    weights_ : dict of name to float (summing to 1)
    train_scores_ : dict
        ``{"ensemble": ndarray}`` over the training clips every member scored.
    thresholds_ : dict
        ``{"ensemble": gamma-fit 0.9 quantile of the training scores}``.

    Examples
    --------
    Two fitted detectors of one machine type, equal weights::

        ens = EnsembleDetector({"classifier": clf, "oevae": oevae}).fit()
        scores = ens.score_all(test_table)["ensemble"]
    """

    def __init__(self, members: Mapping | None = None, *, keys: Mapping[str, str] | None = None,
                 weights: Mapping[str, float] | None = None):
        self.members = members
        self.keys = keys
        self.weights = weights

    def fit(self, X=None, domains=None, *, outliers=None, members: Mapping | None = None) -> "EnsembleDetector":
        """Fit the normalisers from the members' training scores (the members must be fitted).

        ``X``, ``domains`` and ``outliers`` are accepted for the estimator
        interface of :mod:`asdkit.experiments.run` and not used: the members were fitted on them.
        """
        members = dict(members if members is not None else (self.members or {}))
        if len(members) < 2:
            raise ConfigError("EnsembleDetector needs at least two fitted members, e.g. "
                              "{'classifier': ClassifierDetector(...).fit(...), 'oevae': OEVAEDetector(...).fit(...)}.")
        keys = {name: (self.keys or {}).get(name, name) for name in members}
        try:
            weights = {name: float((self.weights or {}).get(name, 1.0)) for name in members}
        except (TypeError, ValueError):
            raise ConfigError(f"EnsembleDetector: weights must be numbers, got {self.weights!r}.") from None
        unknown = sorted(set(self.weights or {}) - set(members))
        if unknown:
            raise ConfigError(f"EnsembleDetector: weights for {unknown}, which are not members ({sorted(members)}).")
        if any(not np.isfinite(w) or w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
            raise ConfigError(f"EnsembleDetector: weights must be non-negative and not all zero, got {weights}.")
        total = sum(weights.values())
        self.weights_ = {n: w / total for n, w in weights.items()}
        self.keys_ = keys
        self.members_ = members
        self.normalizers_ = {}
        train = []
        for name, det in members.items():
            scores = getattr(det, "train_scores_", None)
            if scores is None or keys[name] not in scores:
                raise ConfigError(f"EnsembleDetector: member {name!r} is not fitted or has no training score "
                                  f"{keys[name]!r}; fit it first.")
            self.normalizers_[name] = ScoreNormalizer().fit(scores[keys[name]])
            train.append(self.normalizers_[name].transform(scores[keys[name]]))
        if len({len(t) for t in train}) != 1:
            raise ConfigError("EnsembleDetector: the members were fitted on different numbers of training clips.")
        self.train_scores_ = {"ensemble": self._combine(dict(zip(members, train)))}
        self.thresholds_ = {"ensemble": gamma_threshold(self.train_scores_["ensemble"], 0.9)}
        return self

    def _combine(self, normalised: Mapping[str, np.ndarray]) -> np.ndarray:
        return sum(self.weights_[n] * np.asarray(normalised[n], dtype=np.float64) for n in self.weights_)

    def normalised_scores(self, X) -> dict:
        """Each member's standardised score of the clips ``X``."""
        if not hasattr(self, "normalizers_"):
            raise ConfigError("EnsembleDetector is not fitted: call fit() first.")
        return {n: self.normalizers_[n].transform(det.score_all(X)[self.keys_[n]])
                for n, det in self.members_.items()}

    def score_all(self, X) -> dict:
        """``{"ensemble": ..., <member>: standardised member score, ...}`` per clip."""
        z = self.normalised_scores(X)
        return {"ensemble": self._combine(z), **z}

    def score_samples(self, X) -> np.ndarray:
        """The ensemble score of each clip (**higher = more anomalous**)."""
        return self.score_all(X)["ensemble"]

    def decision(self, scores) -> np.ndarray:
        """0/1 decisions: ``scores > thresholds_["ensemble"]``."""
        if not hasattr(self, "thresholds_"):
            raise ConfigError("EnsembleDetector is not fitted: call fit() first.")
        return (np.asarray(scores, dtype=np.float64) > self.thresholds_["ensemble"]).astype(np.int64)


# --------------------------------------------------------------------------- per-machine weights


_META = ("machine", "section", "file", "domain", "label")


def ensemble_components(ensembles: Mapping[str, EnsembleDetector], tests: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """The standardised member scores of every test clip, one column per member.

    Parameters
    ----------
    ensembles : mapping of machine type to fitted EnsembleDetector
    tests : mapping of machine type to its test clip table

    Returns
    -------
    pandas.DataFrame
        machine, section, file, domain, label and one column per member.
    """
    if not ensembles:
        raise ConfigError("ensemble_components: no ensembles given.")
    rows = []
    for machine, ens in ensembles.items():
        test = tests[machine]
        rows.append(test[list(_META)].assign(**ens.normalised_scores(test)))
    return pd.concat(rows, ignore_index=True)


def _members(components: pd.DataFrame) -> list:
    members = [c for c in components.columns if c not in _META]
    if len(members) < 2:
        raise ConfigError("ensemble components need two member score columns; build them with ensemble_components().")
    if components["label"].isna().any() or components["domain"].isna().any():
        raise ConfigError("ensemble components need known test labels and domains to be evaluated.")
    return members


def evaluate_weights(components: pd.DataFrame, weights: float | Mapping[str, float]) -> tuple[pd.DataFrame, float]:
    """Official metrics of ``w * first member + (1 - w) * second member``, with one ``w`` or one per machine type.

    Returns
    -------
    table : pandas.DataFrame
        Per machine type and section: w, auc_source, auc_target, pauc.
    score : float
        The official score.
    """
    a, b = _members(components)[:2]
    if not np.isscalar(weights):
        missing = sorted(set(components["machine"]) - set(weights))
        if missing:
            raise ConfigError(f"evaluate_weights: no weight for {missing}; give one per machine type or a single w.")
    rows = []
    for (machine, section), sub in components.groupby(["machine", "section"], sort=True):
        w = float(weights if np.isscalar(weights) else weights[machine])
        if not 0 <= w <= 1:
            raise ConfigError(f"weight {w!r} for {machine}: must lie in [0, 1].")
        s = w * sub[a].to_numpy() + (1 - w) * sub[b].to_numpy()
        rows.append({"machine": machine, "section": section, "w": w,
                     **section_metrics(sub["label"].to_numpy(), s, sub["domain"].to_numpy())})
    table = pd.DataFrame(rows)
    return table, official_score(table)


def weight_table(components: pd.DataFrame, grid: Sequence[float] = tuple(np.round(np.linspace(0, 1, 11), 2)),
                 default: float = 0.5) -> pd.DataFrame:
    """The label-free default weight beside the best weight per machine type chosen **with the test labels**.

    Returns
    -------
    pandas.DataFrame
        Per machine type: the official score of its own values (AUC(source),
        AUC(target), pAUC) at ``w = default``, at each member alone, and at the
        ``w`` of the grid that maximises it (that ``w`` too); a last row
        ``all`` has the official scores over all machine types.
    """
    a, b = _members(components)[:2]
    rows, best_w = {}, {}
    for machine, sub in components.groupby("machine", sort=True):
        scores = {float(w): evaluate_weights(sub, float(w))[1] for w in grid}
        w_best = max(scores, key=lambda w: (scores[w], -abs(w - default)))
        best_w[machine] = w_best
        rows[machine] = {f"{a} only": 100 * evaluate_weights(sub, 1.0)[1],
                         f"{b} only": 100 * evaluate_weights(sub, 0.0)[1],
                         f"w = {default:g} (label-free)": 100 * evaluate_weights(sub, default)[1],
                         "best w (test labels)": w_best,
                         "score at best w": 100 * scores[w_best]}
    rows["all"] = {f"{a} only": 100 * evaluate_weights(components, 1.0)[1],
                   f"{b} only": 100 * evaluate_weights(components, 0.0)[1],
                   f"w = {default:g} (label-free)": 100 * evaluate_weights(components, default)[1],
                   "best w (test labels)": np.nan,
                   "score at best w": 100 * evaluate_weights(components, best_w)[1]}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("machine")


def ensemble_widget(components: pd.DataFrame, *, w: float = 0.5):
    """An ipywidgets panel: one weight slider per machine type and the official metrics, redrawn live.

    The slider of a machine type sets ``w`` in ``w * first member + (1 - w) * second member``.

    Returns
    -------
    ipywidgets.VBox
        Its ``children`` are ``(VBox of FloatSliders, HTML summary)``; the
        summary starts with ``official score: <value> %``.
    """
    import ipywidgets as widgets

    a, b = _members(components)[:2]
    machines = sorted(components["machine"].unique())
    sliders = {m: widgets.FloatSlider(value=w, min=0.0, max=1.0, step=0.05, description=m, readout_format=".2f",
                                      continuous_update=False, style={"description_width": "initial"})
               for m in machines}
    summary = widgets.HTML()

    def redraw(*_):
        table, score = evaluate_weights(components, {m: float(s.value) for m, s in sliders.items()})
        rows = "".join(f"<tr><td>{r.machine}</td><td>{r.w:.2f}</td><td>{100 * r.auc_source:.2f}</td>"
                       f"<td>{100 * r.auc_target:.2f}</td><td>{100 * r.pauc:.2f}</td></tr>"
                       for r in table.itertuples())
        summary.value = (f"<b>official score: {100 * score:.2f} %</b> &nbsp; (w weighs {a}, 1 - w {b}; "
                         f"harmonic means: AUC(source) {100 * floored_hmean(table['auc_source']):.2f} %, "
                         f"AUC(target) {100 * floored_hmean(table['auc_target']):.2f} %, "
                         f"pAUC {100 * floored_hmean(table['pauc']):.2f} %)"
                         "<table><tr><th>machine</th><th>w</th><th>AUC(source) %</th><th>AUC(target) %</th>"
                         f"<th>pAUC %</th></tr>{rows}</table>")

    for s in sliders.values():
        s.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.VBox(list(sliders.values())), summary])
