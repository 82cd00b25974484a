"""Ensembles: normalisation by training scores, weights, per-machine weights, the widget and `asdkit run`."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from asdkit import ConfigError
from asdkit.models.ensemble import EnsembleDetector, ensemble_components, ensemble_widget, evaluate_weights, weight_table


class _Fake:
    """A fitted detector whose score is a fixed function of the clip index."""

    def __init__(self, key, train, fn):
        self.key, self.train_scores_, self.fn = key, {key: np.asarray(train, float)}, fn

    def score_all(self, X):
        return {self.key: self.fn(X if isinstance(X, pd.DataFrame) else np.asarray(X, dtype=float))}


def test_standardised_weighted_sum():
    a = _Fake("classifier", [0.0, 2.0, 1.0, 1.0], lambda x: x)          # mean 1, std sqrt(.5)
    b = _Fake("oevae", [10.0, 30.0, 20.0, 20.0], lambda x: 10 * x)      # mean 20, std sqrt(50)
    ens = EnsembleDetector({"classifier": a, "oevae": b}, weights={"classifier": 3, "oevae": 1}).fit()
    assert ens.weights_ == {"classifier": 0.75, "oevae": 0.25}
    x = [0.0, 1.0, 5.0]
    out = ens.score_all(x)
    za = (np.array(x) - 1) / np.sqrt(0.5)
    zb = (10 * np.array(x) - 20) / np.sqrt(50)
    np.testing.assert_allclose(out["classifier"], za)
    np.testing.assert_allclose(out["oevae"], zb)
    np.testing.assert_allclose(out["ensemble"], 0.75 * za + 0.25 * zb)
    assert ens.train_scores_["ensemble"].shape == (4,)
    assert ens.decision(out["ensemble"]).tolist() == [0, 0, 1]
    # members may come with fit (as asdkit run gives them), equal weights by default
    eq = EnsembleDetector().fit(members={"classifier": a, "oevae": b})
    assert eq.weights_ == {"classifier": 0.5, "oevae": 0.5}


def test_errors():
    a = _Fake("classifier", [0.0, 2.0], lambda x: x)
    b = _Fake("oevae", [0.0, 1.0, 2.0], lambda x: x)
    with pytest.raises(ConfigError, match="two fitted members"):
        EnsembleDetector({"classifier": a}).fit()
    with pytest.raises(ConfigError, match="different numbers"):
        EnsembleDetector({"classifier": a, "oevae": b}).fit()
    with pytest.raises(ConfigError, match="not all zero"):
        EnsembleDetector({"classifier": a, "oevae": a}, keys={"oevae": "classifier"},
                         weights={"classifier": 0, "oevae": 0}).fit()
    with pytest.raises(ConfigError, match="not members"):
        EnsembleDetector({"classifier": a, "oevae": a}, keys={"oevae": "classifier"}, weights={"x": 1}).fit()
    with pytest.raises(ConfigError, match="no training score"):
        EnsembleDetector({"classifier": a, "oevae": object()}).fit()
    with pytest.raises(ConfigError, match="not fitted"):
        EnsembleDetector().score_all([1.0])


def _components():
    """Member a ranks the anomalies of machine M1 perfectly, member b those of M2; each is noise elsewhere."""
    rng = np.random.default_rng(0)
    rows = []
    for machine in ("M1", "M2"):
        for domain in ("source", "target"):
            for label in ("normal", "anomaly"):
                for i in range(20):
                    good = 5.0 * (label == "anomaly") + rng.normal(0, 0.1)
                    noise = rng.normal(0, 5)
                    rows.append({"machine": machine, "section": "00", "file": f"{machine}_{domain}_{label}_{i}.wav",
                                 "domain": domain, "label": label,
                                 "a": good if machine == "M1" else noise, "b": good if machine == "M2" else noise})
    return pd.DataFrame(rows)


def test_per_machine_weights():
    comp = _components()
    table, score = evaluate_weights(comp, {"M1": 1.0, "M2": 0.0})
    assert score == pytest.approx(1.0) and table.w.tolist() == [1.0, 0.0]
    _, half = evaluate_weights(comp, 0.5)
    assert 0.6 < half < 1.0
    wt = weight_table(comp)
    assert wt.loc["M1", "best w (test labels)"] >= 0.8 and wt.loc["M2", "best w (test labels)"] <= 0.2
    assert wt.loc["all", "score at best w"] == pytest.approx(100.0)
    assert wt.loc["all", "w = 0.5 (label-free)"] == pytest.approx(100 * half)
    with pytest.raises(ConfigError, match="two member"):
        evaluate_weights(comp.drop(columns="b"), 0.5)
    with pytest.raises(ConfigError, match="must lie"):
        evaluate_weights(comp, {"M1": 2.0, "M2": 0.5})
    with pytest.raises(ConfigError, match="no weight for"):
        evaluate_weights(comp, {"M1": 0.5})


def test_widget_redraws():
    comp = _components()
    panel = ensemble_widget(comp)
    sliders, summary = panel.children[0].children, panel.children[1]
    assert [s.description for s in sliders] == ["M1", "M2"]
    before = summary.value
    assert before.startswith("<b>official score: ")
    sliders[0].value, sliders[1].value = 1.0, 0.0
    assert "official score: 100.00 %" in summary.value


def test_components_from_detectors():
    a = _Fake("classifier", [0.0, 2.0], lambda t: np.array([1.0, 3.0]))
    b = _Fake("oevae", [0.0, 4.0], lambda t: np.array([2.0, 6.0]))
    ens = EnsembleDetector({"classifier": a, "oevae": b}).fit()
    test = pd.DataFrame({"machine": ["M"] * 2, "section": ["00"] * 2, "file": ["x", "y"], "domain": ["source"] * 2,
                         "label": ["normal", "anomaly"]})
    comp = ensemble_components({"M": ens}, {"M": test})
    np.testing.assert_allclose(comp["classifier"], [0.0, 2.0])
    np.testing.assert_allclose(comp["oevae"], [0.0, 2.0])
    assert list(comp.columns) == ["machine", "section", "file", "domain", "label", "classifier", "oevae"]
