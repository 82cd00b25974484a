"""Ensembles of fitted detectors: each member's score standardised by its training clips' scores, then weighted.

The report's final system combines the classification-based model's score
with OEVAE's. The two live on different scales (a cosine distance, a sum of
standardised scores), so :class:`EnsembleDetector` standardises each member's
score by the mean and standard deviation of its **training** clips' scores
(never test scores; :class:`~asdkit.scoring.normalize.ScoreNormalizer`) and
combines them with :func:`~asdkit.scoring.normalize.weighted_sum`.

The weights are fixed before any test clip is seen: equal by default. Choosing
them per machine type by the test labels measures how much the weights *could*
matter, not what a detector would score on new data:
:mod:`asdkit.experiments.weights` makes that comparison.

Scores follow the DCASE convention: **higher = more anomalous**.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from asdkit.errors import ConfigError
from asdkit.models.base import Detector
from asdkit.scoring.normalize import ScoreNormalizer, check_weights, weighted_sum

__all__ = ["EnsembleDetector", "DEFAULT_MEMBERS", "REPORT_MEMBERS"]

#: What ``asdkit run --system ensemble`` combines: member family -> the score of it that is used.
DEFAULT_MEMBERS = {"classifier": "classifier", "oevae": "oevae"}
#: What ``--system ensemble-report`` combines: the members scored as the report scores them.
REPORT_MEMBERS = {"classifier": "classifier_kmeans", "oevae": "oevae_pooled"}


class EnsembleDetector(Detector):
    """Weighted sum of fitted detectors' scores, each standardised by its training clips' scores.

    Parameters
    ----------
    keys : mapping of member name to str, optional
        Which of a member's scores to use (default: the member's name where it
        is one of its scores, as in :data:`DEFAULT_MEMBERS`, else its default score).
    weights : mapping of member name to float, optional
        Non-negative weights, not all zero (default: equal).

    Attributes
    ----------
    members_ : dict of str to Detector
    keys_ : dict of str to str
    normalizers_ : dict of str to ScoreNormalizer
    weights_ : dict of str to float (summing to 1)

    Examples
    --------
    Two fitted detectors of one machine type, equal weights::

        ens = EnsembleDetector().fit(train, members={"classifier": clf, "oevae": oevae})
        scores = ens.score_samples(test)
    """

    score_names = ("ensemble",)
    capabilities = frozenset({"combine"})

    def __init__(self, keys: Mapping[str, str] | None = None, weights: Mapping[str, float] | None = None):
        self.keys = keys
        self.weights = weights

    def _fit(self, train, *, outliers, members):
        """Fit the normalisers from the members' training scores; ``train`` must be the members' training clips."""
        members = dict(members or {})
        if len(members) < 2:
            raise ConfigError("EnsembleDetector.fit needs members= with at least two fitted detectors, e.g. "
                              "{'classifier': ClassifierDetector(...).fit(train), "
                              "'oevae': OEVAEDetector(...).fit(...)}.")
        keys = {}
        for name, det in members.items():
            if not isinstance(det, Detector):
                raise ConfigError(f"EnsembleDetector: member {name!r} is a {type(det).__name__}, not an asdkit "
                                  "Detector.")
            det.check_fitted()
            key = (self.keys or {}).get(name) or (name if name in det.score_names else det.score_key)
            if key not in det.train_scores_:
                raise ConfigError(f"EnsembleDetector: member {name!r} has no score {key!r}; it has "
                                  f"{list(det.score_names)}.")
            if det.n_train_ != len(train):
                raise ConfigError(f"EnsembleDetector: member {name!r} was fitted on {det.n_train_} clips, the "
                                  f"ensemble is fitted on {len(train)}; fit the members on the same training clips.")
            keys[name] = key
        self.weights_ = check_weights(self.weights if self.weights is not None else {n: 1.0 for n in members},
                                      names=members, who="EnsembleDetector")
        self.weights_ = {n: self.weights_.get(n, 0.0) for n in members}
        self.keys_ = keys
        self.members_ = members
        self.normalizers_ = {n: ScoreNormalizer().fit(det.train_scores_[keys[n]]) for n, det in members.items()}
        z = {n: self.normalizers_[n].transform(det.train_scores_[keys[n]]) for n, det in members.items()}
        return {"ensemble": weighted_sum(z, self.weights_)}

    def normalised_scores(self, clips) -> dict:
        """Each member's standardised score of the clips, dict of str to ndarray of shape (n_clips,)."""
        self.check_fitted()
        return {n: self.normalizers_[n].transform(det.score_all(clips)[self.keys_[n]])
                for n, det in self.members_.items()}

    def combine_scores(self, member_scores: Mapping[str, Mapping[str, np.ndarray]]) -> dict:
        """The ensemble score from the members' ``score_all`` outputs of the same clips (no member scores again).

        Parameters
        ----------
        member_scores : mapping of member name to its ``score_all(clips)`` dict

        Returns
        -------
        dict
            ``{"ensemble": ndarray of shape (n_clips,)}``; **higher = more anomalous**.
        """
        self.check_fitted()
        missing = sorted(set(self.members_) - set(member_scores))
        if missing:
            raise ConfigError(f"EnsembleDetector.combine_scores: no scores of member(s) {missing}.")
        z = {n: self.normalizers_[n].transform(member_scores[n][self.keys_[n]]) for n in self.members_}
        return {"ensemble": weighted_sum(z, self.weights_)}

    def _score_all(self, clips) -> dict:
        return {"ensemble": weighted_sum(self.normalised_scores(clips), self.weights_)}

    def _get_state(self) -> dict:
        return {"members": dict(self.members_), "keys": dict(self.keys_), "weights": dict(self.weights_),
                "normalizers": {n: z.get_state() for n, z in self.normalizers_.items()}}

    def _set_state(self, state: dict) -> None:
        self.members_ = dict(state["members"])
        self.keys_ = dict(state["keys"])
        self.weights_ = {n: float(w) for n, w in state["weights"].items()}
        self.normalizers_ = {n: ScoreNormalizer.from_state(s) for n, s in state["normalizers"].items()}
