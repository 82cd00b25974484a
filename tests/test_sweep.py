"""Sweeps of w * alpha + (1 - w) * beta."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from asdkit import ConfigError
from asdkit.evaluation.metrics import official_score, section_metrics
from asdkit.experiments.weights import combine, evaluate_weights, sweep_table


@pytest.fixture
def components(rng):
    """Two machine types; beta ranks all anomalies high but target normals too (domain shift), alpha
    ranks anomalies moderately high in both domains."""
    rows = []
    for machine in ("A", "B"):
        for dom in ("source", "target"):
            for lab in ("normal", "anomaly"):
                n = 20
                anom = lab == "anomaly"
                alpha = rng.normal(1.0 if anom else 0.0, 1.0, n)
                beta = rng.normal(3.0 if (anom or dom == "target") else 0.0, 1.0, n)
                rows.append(pd.DataFrame({"machine": machine, "section": "00", "file": [f"{machine}{dom}{lab}{i}"
                                          for i in range(n)], "domain": dom, "label": lab, "k": 1,
                                          "alpha": alpha, "beta": beta}))
    return pd.concat(rows, ignore_index=True)


def test_evaluate_weight_matches_the_metrics_by_hand(components):
    table, score = evaluate_weights(components, 0.0)
    a = components[components.machine == "A"]
    expected = section_metrics(a.label, a.beta, a.domain)
    row = table[table.machine == "A"].iloc[0]
    assert row.auc_source == pytest.approx(expected["auc_source"])
    assert row.pauc == pytest.approx(expected["pauc"])
    assert score == pytest.approx(official_score(table))
    np.testing.assert_allclose(combine(components, 0.25), 0.25 * components.alpha + 0.75 * components.beta)


def test_sweep_shows_what_each_component_brings(components):
    t = sweep_table(components, ws=[0.0, 0.5, 1.0])
    assert list(t.index) == [(1, 0.0), (1, 0.5), (1, 1.0)]
    # beta alone is strong on the source domain and near chance on the target domain; alpha the reverse
    assert t.loc[(1, 0.0), "AUC(source)"] > t.loc[(1, 1.0), "AUC(source)"] + 5
    assert t.loc[(1, 1.0), "AUC(target)"] > t.loc[(1, 0.0), "AUC(target)"] + 5
    assert 40 < t.loc[(1, 0.0), "AUC(target)"] < 60


def test_per_domain_components_combine_as_the_smaller_domain_sum(components, rng):
    per = components.drop(columns=["alpha", "beta"]).assign(**{
        "alpha@source": components.alpha, "alpha@target": components.alpha + rng.normal(0, 1, len(components)),
        "beta@source": components.beta, "beta@target": components.beta - 2})
    got = combine(per, 0.3)
    by_hand = np.minimum(0.3 * per["alpha@source"] + 0.7 * per["beta@source"],
                         0.3 * per["alpha@target"] + 0.7 * per["beta@target"])
    np.testing.assert_allclose(got, by_hand)
    table, score = evaluate_weights(per, 0.3)
    assert score == pytest.approx(official_score(table))
    assert list(sweep_table(per, ws=[0.0, 1.0]).index) == [(1, 0.0), (1, 1.0)]
    with pytest.raises(ConfigError, match="name@domain"):
        combine(per.drop(columns="beta@target"), 0.3)


def test_sweep_errors(components):
    with pytest.raises(ConfigError, match="w="):
        evaluate_weights(components, 1.5)
    with pytest.raises(ConfigError, match="k=4"):
        evaluate_weights(components, 0.5, k=4)
    with pytest.raises(ConfigError, match="two score columns"):
        sweep_table(components.drop(columns="alpha"))


def test_widget_redraws_the_metrics_when_w_moves(components):
    import re

    from asdkit.experiments.weights import weight_widget

    box = weight_widget(components.assign(k=1).pipe(lambda c: pd.concat([c, c.assign(k=2)])), plots=False)
    (w_slider, k_choice), summary = box.children[0].children, box.children[1]
    assert w_slider.description == "w" and k_choice.description == "k" and w_slider.value == 0.5

    def shown():
        return float(re.search(r"official score: ([0-9.]+) %", summary.value).group(1))

    _, score = evaluate_weights(components, 0.5, 1)
    assert shown() == pytest.approx(100 * score, abs=0.005)
    w_slider.value = 0.0
    _, score0 = evaluate_weights(components, 0.0, 1)
    assert shown() == pytest.approx(100 * score0, abs=0.005) and shown() != pytest.approx(100 * score, abs=0.005)
