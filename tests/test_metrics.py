"""The DCASE metrics, each checked against a small case worked out by hand."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.stats

from asdkit.errors import ConfigError
from asdkit.evaluation.metrics import (
    EPS,
    arithmetic_mean,
    auc_source_target,
    decision_metrics,
    domain_auc,
    floored_hmean,
    jackknife_interval,
    official_score,
    official_values,
    pauc,
    section_metrics,
)
from asdkit.scoring.threshold import gamma_threshold


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# Hand case used by several tests:
#   clip        domain  label    score
#   sn1         source  normal   0.1
#   sn2         source  normal   0.4
#   tn1         target  normal   0.3
#   tn2         target  normal   0.6
#   sa          source  anomaly  0.5
#   ta          target  anomaly  0.2
Y = [0, 0, 0, 0, 1, 1]
DOM = ["source", "source", "target", "target", "source", "target"]
S = [0.1, 0.4, 0.3, 0.6, 0.5, 0.2]


def test_auc_source_target_by_hand():
    # AUC(source): normals {0.1, 0.4} vs ALL anomalies {0.5 (source), 0.2 (target)}
    #   pairs anomaly > normal: 0.5>0.1 yes, 0.5>0.4 yes, 0.2>0.1 yes, 0.2>0.4 no -> 3/4
    # AUC(target): normals {0.3, 0.6} vs anomalies {0.5, 0.2}
    #   0.5>0.3 yes, 0.5>0.6 no, 0.2>0.3 no, 0.2>0.6 no -> 1/4
    assert auc_source_target(Y, S, DOM) == (0.75, 0.25)


def test_target_anomaly_enters_auc_source():
    # Pooling rule: were the target anomaly left out, AUC(source) would be 2/2 = 1.0.
    # Moving the target anomaly (0.2 -> 0.05) below both source normals changes AUC(source):
    #   0.5>0.1 yes, 0.5>0.4 yes, 0.05>0.1 no, 0.05>0.4 no -> 2/4
    s = list(S)
    s[5] = 0.05
    assert auc_source_target(Y, s, DOM)[0] == 0.5
    # ... while a source-only computation would not see it at all:
    src = [0, 1, 4]
    assert domain_auc([Y[i] for i in src], [s[i] for i in src], [DOM[i] for i in src], "source") == 1.0


def test_auc_ties_count_half():
    # one source normal 0.5, one target normal 0.0, one anomaly 0.5: tie -> 1/2
    assert domain_auc([0, 0, 1], [0.5, 0.0, 0.5], ["source", "target", "source"], "source") == 0.5


def test_label_and_domain_codings_agree():
    # 0/1 domains (0 = source, as in ground_truth_domain CSVs), word labels, bools
    codes = [0 if d == "source" else 1 for d in DOM]
    words = ["anomaly" if y else "normal" for y in Y]
    assert auc_source_target(words, S, codes) == (0.75, 0.25)
    assert auc_source_target(np.array(Y, dtype=bool), S, DOM) == (0.75, 0.25)


def test_pauc_matches_manual_mcclish():
    # 10 normals scored 0..9, 2 anomalies scored 9.5 and 4.5.
    # ROC from the top: (FPR 0, TPR 0.5) at 9.5, then the normal at 9 gives (0.1, 0.5), ...
    # Area for FPR in [0, 0.1]: TPR = 0.5 over a width of 0.1 -> A = 0.05.
    # McClish: 0.5 * (1 + (A - A_min) / (A_max - A_min)), A_min = 0.1**2 / 2 = 0.005, A_max = 0.1
    #        = 0.5 * (1 + 0.045 / 0.095) = 0.73684...
    y = [0] * 10 + [1, 1]
    s = list(range(10)) + [9.5, 4.5]
    assert pauc(y, s) == pytest.approx(0.5 * (1 + 0.045 / 0.095))


def test_pauc_perfect_and_reversed():
    y = [0, 0, 0, 1, 1]
    assert pauc(y, [0, 1, 2, 3, 4]) == pytest.approx(1.0)
    # all anomalies below all normals: A = 0 -> 0.5 * (1 + (0 - 0.005) / 0.095)
    assert pauc(y, [4, 3, 2, 1, 0]) == pytest.approx(0.5 * (1 - 0.005 / 0.095))


def test_section_metrics_uses_all_clips_for_pauc():
    m = section_metrics(Y, S, DOM)
    assert (m["auc_source"], m["auc_target"]) == (0.75, 0.25)
    # pAUC over all 6 clips: 4 normals, so FPR steps of 0.25 > 0.1. Highest clip is a
    # normal (0.6) -> the curve starts along the FPR axis: TPR = 0 for FPR in [0, 0.1].
    # A = 0 -> 0.5 * (1 - 0.005 / 0.095)
    assert m["pauc"] == pytest.approx(0.5 * (1 - 0.005 / 0.095))


@pytest.mark.parametrize("y, dom, missing", [
    ([0, 0, 1, 1], ["source", "source", "source", "target"], "target normal"),   # no target normals
    ([0, 0, 1, 1], ["target", "target", "source", "target"], "source normal"),   # no source normals
    ([0, 0, 0, 0], ["source", "source", "target", "target"], "0 anomalies"),     # no anomalies
])
def test_missing_class_is_named(y, dom, missing):
    with pytest.raises(ConfigError, match=missing):
        auc_source_target(y, [0.1, 0.2, 0.3, 0.4], dom)


@pytest.mark.parametrize("y, s, dom", [
    ([0, 1, 2], [0.1, 0.2, 0.3], ["source"] * 3),                    # label 2
    ([0, 1, 1], [0.1, np.nan, 0.3], ["source"] * 3),                 # NaN score
    ([0, 1, 1], [0.1, 0.2], ["source"] * 3),                         # length mismatch
    ([0, 1, 1], [0.1, 0.2, 0.3], ["source", "target", "other"]),     # bad domain
    ([[0, 1]], [0.1, 0.2], ["source", "source"]),                    # 2-D labels
])
def test_bad_inputs_raise(y, s, dom):
    with pytest.raises(ConfigError):
        auc_source_target(y, s, dom)


def test_pauc_needs_both_classes():
    with pytest.raises(ConfigError, match="normal and anomalous"):
        pauc([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ConfigError, match="max_fpr"):
        pauc([0, 1], [0.1, 0.2], max_fpr=0)


def test_decision_metrics_by_hand():
    # source: y = 0 0 1 1, decisions 1 0 1 0 -> TP 1, FP 1, FN 1 -> P 1/2, R 1/2, F1 1/2
    # target: y = 0 1 1,   decisions 0 1 1   -> TP 2, FP 0, FN 0 -> P 1, R 1, F1 1
    y = [0, 0, 1, 1, 0, 1, 1]
    dec = [1, 0, 1, 0, 0, 1, 1]
    dom = ["source"] * 4 + ["target"] * 3
    m = decision_metrics(y, dec, dom)
    assert m == {"precision_source": 0.5, "recall_source": 0.5, "f1_source": 0.5,
                 "precision_target": 1.0, "recall_target": 1.0, "f1_target": 1.0}


def test_decision_metrics_zero_division_and_absent_domain():
    # no positive decision in source -> precision 0 (not NaN); no target clips -> NaN
    m = decision_metrics([0, 1], [0, 0], ["source", "source"])
    assert (m["precision_source"], m["recall_source"], m["f1_source"]) == (0.0, 0.0, 0.0)
    assert math.isnan(m["f1_target"])
    with pytest.raises(ConfigError):
        decision_metrics([0, 1], [0, 2], ["source", "source"])


def test_official_score_harmonic_mean_by_hand():
    # values 1, 0.5 | 0.25, 0.5 | 1, 0.5: reciprocals 1 + 2 + 4 + 2 + 1 + 2 = 12 -> 6 / 12 = 0.5
    # arithmetic mean: (1 + 0.5 + 0.25 + 0.5 + 1 + 0.5) / 6 = 3.75 / 6 = 0.625
    table = {"auc_source": [1.0, 0.5], "auc_target": [0.25, 0.5], "pauc": [1.0, 0.5]}
    assert official_score(table) == pytest.approx(0.5)
    assert arithmetic_mean(table) == pytest.approx(0.625)
    assert sorted(official_values(table)) == [0.25, 0.5, 0.5, 0.5, 1.0, 1.0]


def test_official_score_floors_zero_at_eps():
    # one zero AUC: hmean(eps, 0.5, 0.5) = 3 / (1/eps + 2 + 2), tiny but defined and positive
    table = {"auc_source": [0.0], "auc_target": [0.5], "pauc": [0.5]}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the floor means scipy never sees a zero
        got = official_score(table)
    assert got == pytest.approx(3 / (1 / EPS + 4), rel=1e-12)
    assert 0 < got < 1e-12
    assert official_score(table, eps=1e-8) == pytest.approx(3 / (1e8 + 4), rel=1e-12)


def test_official_score_ignores_nan_and_checks_columns():
    # DCASE 2020-like: no target domain -> AUC(target) NaN is dropped: hmean(0.5, 0.25) = 2/6
    assert official_score({"auc_source": [0.5], "auc_target": [np.nan], "pauc": [0.25]}) == \
        pytest.approx(1 / 3)
    with pytest.raises(ConfigError, match="pauc"):
        official_score({"auc_source": [0.5], "auc_target": [0.5]})
    with pytest.raises(ConfigError, match="no AUC"):
        official_score({"auc_source": [np.nan], "auc_target": [np.nan], "pauc": [np.nan]})


def test_jackknife_mean_by_hand():
    # values 1, 2, 6; mean 3. Leave-one-out means: 4, 3.5, 1.5; their mean 3.
    # estimate = 3*3 - 2*3 = 3.  SE = sqrt(2/3 * (1 + 0.25 + 2.25)) = sqrt(7/3)
    # (equals std(ddof=1)/sqrt(n) = sqrt(7)/sqrt(3), the textbook identity for the mean)
    r = jackknife_interval([1.0, 2.0, 6.0], statistic=np.mean)
    t = 4.302652729911275  # t_{0.975, 2}
    assert r.value == pytest.approx(3.0)
    assert r.estimate == pytest.approx(3.0)
    assert r.std_error == pytest.approx(math.sqrt(7 / 3))
    assert (r.low, r.high) == pytest.approx((3 - t * math.sqrt(7 / 3), 3 + t * math.sqrt(7 / 3)))
    assert r.n == 3


def test_jackknife_hmean_by_hand():
    # values 1, 2, 4: hmean = 3 / (1 + 1/2 + 1/4) = 12/7
    # leave-one-out: {2,4} -> 8/3, {1,4} -> 8/5, {1,2} -> 4/3; mean = 28/15
    # estimate = 3 * 12/7 - 2 * 28/15 = 148/105
    # deviations 4/5, -4/15, -8/15; sum of squares 224/225; SE = sqrt(2/3 * 224/225)
    r = jackknife_interval([1.0, 2.0, 4.0])
    assert r.value == pytest.approx(12 / 7)
    assert r.estimate == pytest.approx(148 / 105)
    assert r.std_error == pytest.approx(math.sqrt(2 / 3 * 224 / 225))
    assert r.low < r.estimate < r.high


def test_jackknife_leaves_out_whole_rows():
    # rows are units: [[1,1],[2,2],[6,6]] with the mean behaves like [1,2,6]
    a = jackknife_interval([[1, 1], [2, 2], [6, 6]], statistic=np.mean)
    b = jackknife_interval([1, 2, 6], statistic=np.mean)
    assert a == pytest.approx(b)


def test_jackknife_official_statistic():
    r = jackknife_interval([[0.8, 0.6, 0.55], [0.7, 0.5, 0.52], [0.9, 0.65, 0.6]], statistic=floored_hmean)
    assert r.value == pytest.approx(scipy.stats.hmean([0.8, 0.6, 0.55, 0.7, 0.5, 0.52, 0.9, 0.65, 0.6]))
    assert r.low < r.value < r.high


@pytest.mark.parametrize("values, alpha", [([1.0], 0.05), ([], 0.05), ([1.0, 2.0], 0.0),
                                           ([1.0, 2.0], 1.0), (np.ones((2, 2, 2)), 0.05)])
def test_jackknife_bad_inputs(values, alpha):
    with pytest.raises(ConfigError):
        jackknife_interval(values, alpha=alpha)


def test_gamma_threshold_recovers_quantile(rng):
    a, scale = 2.0, 3.0
    sample = rng.gamma(a, scale, size=20_000)
    expected = scipy.stats.gamma.ppf(0.9, a, scale=scale)
    assert gamma_threshold(sample) == pytest.approx(expected, rel=0.05)
    assert gamma_threshold(sample, quantile=0.5) == pytest.approx(
        scipy.stats.gamma.ppf(0.5, a, scale=scale), rel=0.05)


def test_gamma_threshold_shifted_scores(rng):
    # scores need not be positive: the location is fitted too (as in the baseline)
    sample = rng.gamma(4.0, 1.0, size=20_000) - 10.0
    expected = scipy.stats.gamma.ppf(0.9, 4.0, loc=-10.0)
    assert gamma_threshold(sample) == pytest.approx(expected, rel=0.05)


def test_gamma_threshold_falls_back_when_the_fit_is_implausible(monkeypatch):
    # 300 scores near 630 and 10 far below them (in-sample target clips of a selective Mahalanobis
    # scorer). With scipy 1.17 the free-location ML fit of this sample puts its 0.9 quantile near
    # 3500; whatever the optimiser does, the threshold stays in range.
    rng = np.random.default_rng(0)
    sample = np.r_[rng.normal(630, 8, 300), rng.normal(500, 5, 10)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        t = gamma_threshold(sample)
    assert sample.min() <= t <= sample.max()
    # force the degenerate fit to check the fallback itself
    monkeypatch.setattr(scipy.stats.gamma, "fit", lambda x: (177.0, -67480.0, 383.7))
    with pytest.warns(RuntimeWarning, match="implausible"):
        t = gamma_threshold(sample)
    assert t == pytest.approx(np.quantile(sample, 0.9))


@pytest.mark.parametrize("scores, quantile, match", [
    ([], 0.9, "at least 2"),
    ([1.0], 0.9, "at least 2"),
    ([2.0, 2.0, 2.0], 0.9, "all equal"),
    ([1.0, np.nan, 2.0], 0.9, "NaN or infinite"),
    ([1.0, np.inf, 2.0], 0.9, "NaN or infinite"),
    ([1.0, 2.0, 3.0], 0.0, "quantile"),
    ([1.0, 2.0, 3.0], 1.0, "quantile"),
    ([[1.0, 2.0], [3.0, 4.0]], 0.9, "one-dimensional"),
])
def test_gamma_threshold_degenerate_inputs(scores, quantile, match):
    with pytest.raises(ConfigError, match=match):
        gamma_threshold(scores, quantile)


def test_evaluator_ci95_auc_half_width_by_hand():
    # Leave-one-clip-out AUCs of y=[0,0,1,1], s=[.1,.4,.35,.8]:
    #   drop .1 -> normals {.4} vs {.35,.8}: 1/2;  drop .4 -> 1;  drop .35 -> 1;  drop .8 -> {.35} vs {.1,.4}: 1/2
    #   theta_i = [.5, 1, 1, .5], mean .75, sum of squares .25, sigma = sqrt(.25 / (4 * 3))
    #   half width = |t.ppf(.025, 3)| * sigma = 3.1824463 * 0.1443376 = 0.4593466
    from sklearn.metrics import roc_auc_score

    from asdkit.evaluation.metrics import _loo_half_width

    y = np.array([0, 0, 1, 1])
    s = np.array([0.1, 0.4, 0.35, 0.8])
    assert _loo_half_width(roc_auc_score, y, s, 0.95) == pytest.approx(0.4593466, abs=1e-6)


def test_evaluator_ci95_is_mean_of_auc_and_pauc_half_widths(rng):
    import scipy.stats
    from sklearn.metrics import roc_auc_score

    from asdkit.evaluation.metrics import evaluator_ci95

    y = np.r_[np.zeros(30), np.ones(20)].astype(int)
    s = rng.standard_normal(50) + y
    widths = []
    for fn in (roc_auc_score, lambda a, b: roc_auc_score(a, b, max_fpr=0.1)):
        th = np.array([fn(np.delete(y, i), np.delete(s, i)) for i in range(50)])
        widths.append(abs(scipy.stats.t.ppf(0.025, 49)) * np.sqrt(((th - th.mean()) ** 2).sum() / (50 * 49)))
    assert evaluator_ci95(y, s) == pytest.approx(np.mean(widths), rel=1e-12)
    with pytest.raises(ConfigError):
        evaluator_ci95([0, 0, 0], [1, 2, 3])


def test_summary_percent_is_the_harmonic_means_and_official_score():
    import pandas as pd

    from asdkit.evaluation.metrics import floored_hmean, official_score, summary_percent

    t = pd.DataFrame({"auc_source": [0.9, 0.6], "auc_target": [0.4, 0.7], "pauc": [0.55, 0.65]})
    s = summary_percent(t)
    assert s["AUC(source)"] == pytest.approx(100 * floored_hmean([0.9, 0.6]))
    assert s["AUC(target)"] == pytest.approx(100 * floored_hmean([0.4, 0.7]))
    assert s["pAUC"] == pytest.approx(100 * floored_hmean([0.55, 0.65]))
    assert s["official score"] == pytest.approx(100 * official_score(t))
