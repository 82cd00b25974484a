"""Ensembles: normalisation by training scores, weights, per-machine weights, the widget, save/load."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from asdkit import ConfigError
from asdkit.errors import NotFittedError
from asdkit.experiments.weights import ensemble_components, evaluate_weights, weight_table, weight_widget
from asdkit.models.base import Detector
from asdkit.models.ensemble import EnsembleDetector


class Affine(Detector):
    """A toy member: its score of a clip is ``scale * index + shift`` (the index parsed from the file name)."""

    def __init__(self, key: str = "classifier", scale: float = 1.0, shift: float = 0.0):
        self.key, self.scale, self.shift = key, scale, shift

    @property
    def score_names(self):
        return (self.key,)

    def _value(self, table):
        return self.scale * table["index"].astype(float).to_numpy() + self.shift

    def _fit(self, train, *, outliers, members):
        return {self.key: self._value(train)}

    def _score_all(self, clips):
        return {self.key: self._value(clips)}


def clips(indices, split="train"):
    return [f"/x/fan/{split}/section_00_source_{split}_normal_{i:04d}_a_1.wav" for i in indices]


TRAIN = clips([0, 2, 1, 1])


def test_standardised_weighted_sum():
    a = Affine("classifier").fit(TRAIN)                              # mean 1, std sqrt(.5)
    b = Affine("oevae", 10.0).fit(TRAIN)                             # mean 10, std sqrt(50)
    ens = EnsembleDetector(weights={"classifier": 3, "oevae": 1}).fit(TRAIN, members={"classifier": a, "oevae": b})
    assert ens.weights_ == {"classifier": 0.75, "oevae": 0.25}
    test = clips([0, 1, 5], "test")
    za = (np.array([0.0, 1, 5]) - 1) / np.sqrt(0.5)
    zb = (10 * np.array([0.0, 1, 5]) - 10) / np.sqrt(50)
    z = ens.normalised_scores(test)
    np.testing.assert_allclose(z["classifier"], za)
    np.testing.assert_allclose(z["oevae"], zb)
    np.testing.assert_allclose(ens.score_samples(test), 0.75 * za + 0.25 * zb)
    # the same from the members' scores already computed
    np.testing.assert_array_equal(ens.combine_scores({"classifier": a.score_all(test), "oevae": b.score_all(test)})
                                  ["ensemble"], ens.score_samples(test))
    assert ens.train_scores_["ensemble"].shape == (4,)
    assert set(ens.decision(ens.score_samples(test)).tolist()) <= {0, 1}
    eq = EnsembleDetector().fit(TRAIN, members={"classifier": a, "oevae": b})
    assert eq.weights_ == {"classifier": 0.5, "oevae": 0.5}


def test_errors():
    a = Affine("classifier").fit(TRAIN)
    b = Affine("oevae").fit(TRAIN[:3])
    with pytest.raises(ConfigError, match="at least two fitted"):
        EnsembleDetector().fit(TRAIN, members={"classifier": a})
    with pytest.raises(ConfigError, match="fitted on 3 clips"):
        EnsembleDetector().fit(TRAIN, members={"classifier": a, "oevae": b})
    c = Affine("oevae").fit(TRAIN)
    with pytest.raises(ConfigError, match="not all zero"):
        EnsembleDetector(weights={"classifier": 0, "oevae": 0}).fit(TRAIN, members={"classifier": a, "oevae": c})
    with pytest.raises(ConfigError, match="not among"):
        EnsembleDetector(weights={"x": 1}).fit(TRAIN, members={"classifier": a, "oevae": c})
    with pytest.raises(ConfigError, match="not an asdkit Detector"):
        EnsembleDetector().fit(TRAIN, members={"classifier": a, "oevae": object()})
    with pytest.raises(NotFittedError):
        EnsembleDetector().fit(TRAIN, members={"classifier": a, "oevae": Affine("oevae")})
    with pytest.raises(NotFittedError):
        EnsembleDetector().score_samples(TRAIN)


def test_save_load_keeps_members(tmp_path):
    a, b = Affine("classifier").fit(TRAIN), Affine("oevae", 3.0, 1.0).fit(TRAIN)
    ens = EnsembleDetector(weights={"classifier": 1, "oevae": 2}).fit(TRAIN, members={"classifier": a, "oevae": b})
    ens.save(tmp_path / "ens")
    back = Detector.load(tmp_path / "ens")
    assert isinstance(back, EnsembleDetector) and set(back.members_) == {"classifier", "oevae"}
    test = clips([0, 3, 7], "test")
    np.testing.assert_array_equal(back.score_samples(test), ens.score_samples(test))
    assert back.thresholds_ == ens.thresholds_


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
    with pytest.raises(ConfigError, match="two score columns"):
        evaluate_weights(comp.drop(columns="b"), 0.5)
    with pytest.raises(ConfigError, match="must lie"):
        evaluate_weights(comp, {"M1": 2.0, "M2": 0.5})
    with pytest.raises(ConfigError, match="no weight for"):
        evaluate_weights(comp, {"M1": 0.5})


def test_widget_redraws():
    panel = weight_widget(_components(), per_machine=True, plots=False)
    sliders, summary = panel.children[0].children, panel.children[1]
    assert [s.description for s in sliders] == ["M1", "M2"]
    assert summary.value.startswith("<b>official score: ")
    sliders[0].value, sliders[1].value = 1.0, 0.0
    assert "official score: 100.00 %" in summary.value


def test_components_from_detectors():
    a = Affine("classifier").fit(TRAIN)
    b = Affine("oevae", 2.0).fit(TRAIN)
    ens = EnsembleDetector().fit(TRAIN, members={"classifier": a, "oevae": b})
    test = pd.DataFrame({"path": clips([1, 3], "test"), "machine": ["M"] * 2, "section": ["00"] * 2,
                         "file": ["x", "y"], "domain": ["source"] * 2, "label": ["normal", "anomaly"], "index": [1, 3]})
    comp = ensemble_components({"M": ens}, {"M": test})
    np.testing.assert_allclose(comp["classifier"], [0.0, 2 * np.sqrt(2)])
    np.testing.assert_allclose(comp["oevae"], [0.0, 2 * np.sqrt(2)])
    assert list(comp.columns) == ["machine", "section", "file", "domain", "label", "classifier", "oevae"]
