"""Scoring backends (asdkit.scoring) and the persistence / contract of the Detector base class.

Every backend is checked against a brute-force numpy computation or scikit-learn on small data;
the Detector base is checked with a toy detector that needs no audio (its only feature is the clip
index parsed from the file name).
"""
from __future__ import annotations

import copy
import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.covariance import EmpiricalCovariance, LedoitWolf

from asdkit.errors import ConfigError, NotFittedError
from asdkit.features.spectra import FeatureConfig
from asdkit.models.base import Detector, threshold_quantile
from asdkit.scoring import (
    DomainKNNScorer,
    FrameMahalanobisScorer,
    KMeansTargetScorer,
    KNNScorer,
    MahalanobisScorer,
    MSEScorer,
    ScoreNormalizer,
    SelectiveMahalanobisScorer,
    SelectiveScorer,
    check_weights,
    gamma_threshold,
    shrink_toward,
    unit_rows,
    weighted_sum,
)

pytestmark = pytest.mark.usefixtures("one_thread")


# =========================================================================== helpers
def f32(x) -> np.ndarray:
    """What the backends see: the input rounded to float32, then computed on in float64."""
    return np.asarray(x, dtype=np.float32).astype(np.float64)


def distances(Q, R, metric: str) -> np.ndarray:
    """Brute-force (n_q, n_r) distance matrix: euclidean, or cosine distance 1 - cos."""
    Q, R = f32(Q), f32(R)
    if metric == "euclidean":
        return np.sqrt(((Q[:, None, :] - R[None, :, :]) ** 2).sum(-1))
    Qn = Q / np.linalg.norm(Q, axis=1, keepdims=True)
    Rn = R / np.linalg.norm(R, axis=1, keepdims=True)
    return 1.0 - Qn @ Rn.T


def mean_k_smallest(D: np.ndarray, k: int) -> np.ndarray:
    return np.sort(D, axis=1)[:, :k].mean(axis=1)


def correlated(rng, n, dim=4, shift=0.0) -> np.ndarray:
    """n Gaussian vectors with a non-diagonal covariance."""
    A = rng.standard_normal((dim, dim)) + 2 * np.eye(dim)
    return rng.standard_normal((n, dim)) @ A + shift


def state_is_saveable(value) -> bool:
    """A state tree made only of what ``Detector.save`` writes without pickling."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and state_is_saveable(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(state_is_saveable(v) for v in value)
    if isinstance(value, np.ndarray):
        return value.dtype != object
    return value is None or isinstance(value, (str, bool, int, float, np.generic))


# =========================================================================== KNNScorer
@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("k", [1, 3])
def test_knn_score_is_mean_distance_to_k_nearest(rng, metric, k):
    X = rng.standard_normal((30, 5))
    Y = rng.standard_normal((7, 5)) * 2
    knn = KNNScorer(k, metric=metric).fit(X)
    got = knn.score_samples(Y)
    assert got.shape == (7,)
    np.testing.assert_allclose(got, mean_k_smallest(distances(Y, X, metric), k), rtol=1e-5, atol=1e-6)


def test_knn_hand_checked_example():
    X = np.array([[0.0], [1.0], [3.0], [10.0]])
    knn = KNNScorer(2).fit(X)
    # 2 -> neighbours 1 and 3 (distances 1, 1); 20 -> 10 and 3 (10, 17)
    np.testing.assert_allclose(knn.score_samples([[2.0], [20.0]]), [1.0, 13.5])
    # leave-one-out: 0 -> 1, 3 (1, 3); 1 -> 0, 3 (1, 2); 3 -> 1, 0 (2, 3); 10 -> 3, 1 (7, 9)
    np.testing.assert_allclose(knn.training_scores(), [2.0, 1.5, 2.5, 8.0])
    cos = KNNScorer(1, metric="cosine").fit([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    np.testing.assert_allclose(cos.score_samples([[3.0, 3.0], [0.0, -2.0]]), [1 - np.sqrt(0.5), 1.0], atol=1e-6)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_knn_training_scores_leave_one_out(rng, metric):
    X = rng.standard_normal((25, 3))
    got = KNNScorer(2, metric=metric).fit(X).training_scores()
    D = distances(X, X, metric)
    np.fill_diagonal(D, np.inf)
    np.testing.assert_allclose(got, mean_k_smallest(D, 2), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_knn_training_scores_leave_one_group_out(rng, metric):
    # 12 clips of 3 segments each; a clip's segments lie close together, so leave-one-out scores
    # would be far smaller than leave-one-clip-out ones.
    centres = rng.standard_normal((12, 4)) * 3
    X = np.repeat(centres, 3, axis=0) + 0.05 * rng.standard_normal((36, 4))
    groups = np.repeat(np.arange(12), 3)
    got = KNNScorer(2, metric=metric).fit(X, groups=groups).training_scores()
    D = distances(X, X, metric)
    D[groups[:, None] == groups[None, :]] = np.inf
    np.testing.assert_allclose(got, mean_k_smallest(D, 2), rtol=1e-5, atol=1e-6)
    # no segment was scored against its own clip's (much closer) segments
    assert (got > KNNScorer(2, metric=metric).fit(X).training_scores()).all()


def test_knn_training_scores_first_n_only(rng):
    """Appended (augmented) embeddings are neither scored nor neighbours of the first n."""
    X = rng.standard_normal((20, 3))
    extra = X[:10] + 1e-3                               # near-copies of the first 10
    E = np.concatenate([X, extra])
    knn = KNNScorer(2).fit(E)
    got = knn.training_scores(n=20)
    assert got.shape == (20,)
    D = distances(X, X, "euclidean")
    np.fill_diagonal(D, np.inf)
    np.testing.assert_allclose(got, mean_k_smallest(D, 2), rtol=1e-5, atol=1e-6)
    # with groups too: group g of the first 20 = g // 2 (pairs)
    groups = np.concatenate([np.arange(20) // 2, np.arange(10) // 2])
    got_g = KNNScorer(2).fit(E, groups=groups).training_scores(n=20)
    g = groups[:20]
    Dg = distances(X, X, "euclidean")
    Dg[g[:, None] == g[None, :]] = np.inf
    np.testing.assert_allclose(got_g, mean_k_smallest(Dg, 2), rtol=1e-5, atol=1e-6)
    # all of them: every embedding is scored, the near-copies included
    assert KNNScorer(2).fit(E).training_scores().shape == (30,)


@pytest.mark.parametrize("kwargs", [{"n_neighbors": 0}, {"n_neighbors": -1}, {"n_neighbors": 1.5},
                                    {"n_neighbors": True}, {"metric": "manhattan"}])
def test_knn_bad_settings(rng, kwargs):
    with pytest.raises(ConfigError, match="n_neighbors|metric"):
        KNNScorer(**kwargs).fit(rng.standard_normal((10, 2)))


def test_knn_errors(rng):
    X = rng.standard_normal((10, 3))
    with pytest.raises(NotFittedError):
        KNNScorer().score_samples(X)
    with pytest.raises(NotFittedError):
        KNNScorer().training_scores()
    with pytest.raises(ConfigError, match="n_neighbors"):
        KNNScorer(10).fit(X)                          # not more embeddings than neighbours
    with pytest.raises(ConfigError):
        KNNScorer().fit(X[:, 0])                      # 1-D
    with pytest.raises(ConfigError, match="groups"):
        KNNScorer().fit(X, groups=[0, 1])
    knn = KNNScorer().fit(X)
    with pytest.raises(ConfigError, match=r"\(n, 3\)"):
        knn.score_samples(rng.standard_normal((2, 4)))
    with pytest.raises(ConfigError, match=r"\(n, 3\)"):
        knn.score_samples(rng.standard_normal(3))
    with pytest.raises(ConfigError, match="group"):
        KNNScorer().fit(X, groups=np.zeros(10)).training_scores()


def test_knn_training_scores_rejects_bad_n(rng):
    # n=1 would give NaN (mean of an empty slice), n <= n_neighbors fewer neighbours, n > len(embeddings) all
    knn = KNNScorer(2).fit(rng.standard_normal((10, 2)))
    for n in (1, 2, 15):
        with pytest.raises(ConfigError, match="n="):
            knn.training_scores(n=n)
    with pytest.raises(TypeError):
        knn.training_scores(5)                      # options of training_scores are keyword-only


# =========================================================================== KMeansTargetScorer
@pytest.fixture
def two_domains(rng):
    """12 source + 4 target embeddings (dim 5), domains interleaved."""
    X = rng.standard_normal((16, 5))
    X[12:] += 1.5
    dom = np.array(["source"] * 12 + ["target"] * 4)
    order = rng.permutation(16)
    return X[order], dom[order]


def test_kmeans_with_one_centroid_per_source_sample_is_min_cosine_distance(rng, two_domains):
    X, dom = two_domains
    sc = KMeansTargetScorer(n_clusters=50).fit(X, dom)
    assert sc.centroids_.shape == (12, 5)
    np.testing.assert_allclose(np.sort(sc.centroids_, axis=0), np.sort(unit_rows(f32(X[dom == "source"])), axis=0),
                               atol=1e-6)
    Y = rng.standard_normal((6, 5))
    np.testing.assert_allclose(sc.score_samples(Y), distances(Y, X, "cosine").min(axis=1), atol=1e-5)
    # the score is scale-free (cosine) and a training embedding scores 0
    np.testing.assert_allclose(sc.score_samples(3 * Y), sc.score_samples(Y), atol=1e-6)
    np.testing.assert_allclose(sc.score_samples(X), 0.0, atol=1e-5)


def test_kmeans_training_scores_out_of_sample(two_domains):
    X, dom = two_domains
    sc = KMeansTargetScorer(n_clusters=50, n_folds=3, random_state=4).fit(X, dom)
    got = sc.training_scores()
    assert got.shape == (16,)
    D = distances(X, X, "cosine")
    np.fill_diagonal(D, np.inf)
    tgt = np.flatnonzero(dom == "target")
    # target: every source sample is a centroid, every other target a reference -> leave-self-out minimum
    np.testing.assert_allclose(got[tgt], D[tgt].min(axis=1), atol=1e-5)
    # source: scored against the other folds' samples and the targets only, never against itself
    src = np.flatnonzero(dom == "source")
    assert (got[src] >= D[src].min(axis=1) - 1e-5).all()
    assert (got > 1e-3).all()
    # by hand, with the documented folds ("n_folds folds drawn from random_state")
    fold = np.random.default_rng(4).permutation(len(src)) % 3
    for f in range(3):
        held, rest = src[fold == f], np.concatenate([src[fold != f], tgt])
        np.testing.assert_allclose(got[held], D[np.ix_(held, rest)].min(axis=1), atol=1e-5)


def test_kmeans_source_fold_by_hand(rng):
    X = rng.standard_normal((34, 6))
    dom = np.array(["source"] * 30 + ["target"] * 4)
    sc = KMeansTargetScorer(n_clusters=3, random_state=0, n_folds=5).fit(X, dom)
    got = sc.training_scores()
    E = unit_rows(np.asarray(X, dtype=np.float32))
    src, tgt = np.arange(30), np.arange(30, 34)
    fold = np.random.default_rng(0).permutation(30) % 5
    held = src[fold == 0]
    km = KMeans(n_clusters=3, n_init=3, random_state=0).fit(E[src[fold != 0]])
    refs = np.concatenate([unit_rows(km.cluster_centers_), E[tgt]])
    np.testing.assert_allclose(got[held], (1 - f32(E[held]) @ f32(refs).T).min(axis=1), atol=1e-5)
    # the fitted centroids are those of all source samples
    km_all = KMeans(n_clusters=3, n_init=3, random_state=0).fit(E[src])
    np.testing.assert_allclose(np.sort(sc.centroids_, axis=0), np.sort(unit_rows(km_all.cluster_centers_), axis=0),
                               atol=1e-5)


def test_kmeans_one_domain_only(rng):
    X = rng.standard_normal((8, 3))
    Y = rng.standard_normal((3, 3))
    src = KMeansTargetScorer(n_clusters=20).fit(X, ["source"] * 8)
    np.testing.assert_allclose(src.score_samples(Y), distances(Y, X, "cosine").min(axis=1), atol=1e-5)
    tgt = KMeansTargetScorer().fit(X, ["target"] * 8)
    np.testing.assert_allclose(tgt.score_samples(Y), distances(Y, X, "cosine").min(axis=1), atol=1e-5)
    D = distances(X, X, "cosine")
    np.fill_diagonal(D, np.inf)
    np.testing.assert_allclose(tgt.training_scores(), D.min(axis=1), atol=1e-5)


def test_kmeans_per_domain_standardises_each_distance_by_its_own_domain(rng):
    # a tight source cloud and a loose target cloud in other directions
    src = np.array([1.0, 0, 0, 0]) + 0.05 * rng.standard_normal((40, 4))
    tgt = np.array([0, 1.0, 0, 0]) + 0.4 * rng.standard_normal((6, 4))
    X, dom = np.concatenate([src, tgt]), np.array(["source"] * 40 + ["target"] * 6)
    raw = KMeansTargetScorer(n_clusters=4, random_state=0).fit(X, dom)
    pd_ = KMeansTargetScorer(n_clusters=4, random_state=0, per_domain=True).fit(X, dom)
    E = unit_rows(f32(X))
    # the statistics: source distances k-fold out of sample, target ones leave-self-out
    D = 1 - E[40:] @ E[40:].T
    np.fill_diagonal(D, np.inf)
    dt = D.min(axis=1)
    assert pd_.normalizers_["target"].mean_ == pytest.approx(dt.mean(), rel=1e-5)
    assert pd_.normalizers_["target"].scale_ == pytest.approx(dt.std(), rel=1e-4)
    Y = np.concatenate([np.array([0, 1.0, 0, 0]) + 0.4 * rng.standard_normal((5, 4)), rng.standard_normal((5, 4))])
    Ey = unit_rows(f32(Y))
    ds_y, dt_y = (1 - Ey @ pd_.centroids_.T).min(axis=1), (1 - Ey @ E[40:].T).min(axis=1)
    z = pd_.domain_scores(Y)
    np.testing.assert_allclose(z[:, 0], pd_.normalizers_["source"].transform(ds_y), rtol=1e-5)
    np.testing.assert_allclose(z[:, 1], (dt_y - dt.mean()) / dt.std(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(pd_.score_samples(Y), z.min(axis=1))
    # raw scorer: same two distances, unstandardised
    np.testing.assert_allclose(raw.domain_scores(Y).min(axis=1), raw.score_samples(Y), atol=1e-6)
    # training scores: out of sample and standardised the same way; each domain's own are centred
    tr = pd_.training_scores()
    assert tr.shape == (46,) and np.isfinite(tr).all()
    assert tr[40:].mean() <= 0 + 1e-9
    # a target-like normal scores lower relative to the source anomalies than with the raw minimum:
    # new target-domain normals sit at the target clips' own spread, which the raw scale calls strange
    def ranks(s):
        return s[:5].mean() - s[5:].mean()

    assert ranks(pd_.score_samples(Y)) < 0
    back = KMeansTargetScorer.from_state(copy.deepcopy(pd_.get_state()))
    np.testing.assert_array_equal(back.score_samples(Y), pd_.score_samples(Y))
    with pytest.raises(ConfigError, match="two training embeddings of each domain"):
        KMeansTargetScorer(per_domain=True).fit(X[:41], dom[:41])


def test_shrink_toward_blends_means_and_variances_by_clip_counts():
    own, prior = ScoreNormalizer().fit([0.0, 2.0]), ScoreNormalizer().fit([10.0, 14.0])   # (1, 1) and (12, 2)
    assert shrink_toward(own, prior, 10, 0).get_state() == own.get_state()
    inf = shrink_toward(own, prior, 10, math.inf)
    assert (inf.mean_, inf.scale_) == (prior.mean_, prior.scale_)
    half = shrink_toward(own, prior, 10, 10)                 # ten own clips, a prior worth ten: halfway
    assert half.mean_ == pytest.approx(6.5) and half.scale_ == pytest.approx(math.sqrt((1 + 4) / 2))
    assert own.mean_ == 1.0 and own.scale_ == 1.0           # the inputs are unchanged
    for bad in (-1, float("nan"), True, "10"):
        with pytest.raises(ConfigError, match="n_prior"):
            shrink_toward(own, prior, 10, bad)


def test_kmeans_target_prior_moves_from_per_domain_to_one_scale(rng):
    src = np.array([1.0, 0, 0, 0]) + 0.05 * rng.standard_normal((60, 4))
    tgt = np.array([0, 1.0, 0, 0]) + 0.4 * rng.standard_normal((10, 4))
    X, dom = np.concatenate([src, tgt]), np.array(["source"] * 60 + ["target"] * 10)
    Y = np.concatenate([src[:5] + 0.3 * rng.standard_normal((5, 4)), tgt[:5] + 0.3 * rng.standard_normal((5, 4))])
    own = KMeansTargetScorer(4, per_domain=True).fit(X, dom)
    shrunk = KMeansTargetScorer(4, per_domain=True, target_prior=10).fit(X, dom)
    raw = KMeansTargetScorer(4).fit(X, dom)
    # prior 0 is the per-domain standardisation; a prior changes only the target's statistics
    np.testing.assert_array_equal(own.score_samples(Y), shrunk.score_samples(Y, target_prior=0))
    assert shrunk.target_normalizer(0) is shrunk.normalizers_["target"]
    zt = shrunk.target_normalizer()
    own_t, src_s = shrunk.normalizers_["target"], shrunk.normalizers_["source"]
    assert zt.mean_ == pytest.approx(0.5 * own_t.mean_ + 0.5 * src_s.mean_)
    np.testing.assert_allclose(shrunk.domain_scores(Y)[:, 0], own.domain_scores(Y)[:, 0])
    # an infinite prior puts both distances on the source's scale: the raw minimum's ranking
    inf = shrunk.score_samples(Y, target_prior=math.inf)
    assert (np.argsort(inf) == np.argsort(raw.score_samples(Y))).all()
    assert (np.argsort(shrunk.training_scores(target_prior=math.inf)) == np.argsort(raw.training_scores())).all()
    # the prior is saved with the scorer; states written before it existed load as prior 0
    back = KMeansTargetScorer.from_state(copy.deepcopy(shrunk.get_state()))
    np.testing.assert_array_equal(back.score_samples(Y), shrunk.score_samples(Y))
    old = {k: v for k, v in own.get_state().items() if k != "target_prior"}
    np.testing.assert_array_equal(KMeansTargetScorer.from_state(old).score_samples(Y), own.score_samples(Y))
    with pytest.raises(ConfigError, match="target_prior"):
        KMeansTargetScorer(4, per_domain=True, target_prior=-1).fit(X, dom)


def test_domain_knn_target_prior_shrinks_the_smaller_domain_only(rng):
    src = rng.standard_normal((20, 3, 2))
    tgt = 5 + 2 * rng.standard_normal((5, 3, 2))
    X, dom = np.concatenate([src, tgt]), ["source"] * 20 + ["target"] * 5
    own = DomainKNNScorer(1).fit(X, dom)
    sc = DomainKNNScorer(1, target_prior=5).fit(X, dom)
    np.testing.assert_array_equal(sc.train_raw_, own.train_raw_)
    np.testing.assert_allclose(sc.train_domain_scores_[:, 0], own.train_domain_scores_[:, 0])
    z = sc.domain_normalizers()["target"]
    t, s = own.normalizers_["target"], own.normalizers_["source"]
    assert z.mean_ == pytest.approx(0.5 * t.mean_ + 0.5 * s.mean_)
    assert z.scale_ == pytest.approx(math.sqrt(0.5 * t.scale_ ** 2 + 0.5 * s.scale_ ** 2))
    np.testing.assert_allclose(sc.domain_scores(X, target_prior=0), own.domain_scores(X))
    np.testing.assert_allclose(sc.training_scores(), sc.training_domain_scores().min(axis=1))
    back = DomainKNNScorer.from_state(copy.deepcopy(sc.get_state()))
    np.testing.assert_allclose(back.domain_scores(X), sc.domain_scores(X))
    np.testing.assert_allclose(back.train_raw_, sc.train_raw_)
    with pytest.raises(ConfigError, match="target_prior"):
        DomainKNNScorer(1, target_prior=float("nan")).fit(X, dom)


def test_domain_knn_scorer_by_hand(rng):
    # 12 source clips and 4 target clips of 3 segments each, target shifted and wider
    src = rng.standard_normal((12, 3, 2))
    tgt = 5 + 2 * rng.standard_normal((4, 3, 2))
    X, dom = np.concatenate([src, tgt]), ["source"] * 12 + ["target"] * 4
    sc = DomainKNNScorer(1).fit(X, dom)
    assert sc.domains_ == ("source", "target") and sc.n_segments_ == 3

    def clip_score(Q, bank_clips, skip=None):
        out = []
        for i, q in enumerate(Q):
            bank = np.concatenate([b for j, b in enumerate(bank_clips) if j != (skip[i] if skip is not None else -1)])
            out.append(distances(q, bank, "euclidean").min(axis=1).mean())
        return np.array(out)

    loo_s = clip_score(src, src, skip=np.arange(12))
    loo_t = clip_score(tgt, tgt, skip=np.arange(4))
    Y = np.concatenate([rng.standard_normal((2, 3, 2)), 5 + 2 * rng.standard_normal((2, 3, 2))])
    expected = np.stack([(clip_score(Y, src) - loo_s.mean()) / loo_s.std(),
                         (clip_score(Y, tgt) - loo_t.mean()) / loo_t.std()], axis=1)
    np.testing.assert_allclose(sc.domain_scores(Y), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sc.score_samples(Y), expected.min(axis=1), rtol=1e-5, atol=1e-6)
    # training scores: each clip leave-one-clip-out under its own domain, plainly under the other
    t = sc.train_domain_scores_
    np.testing.assert_allclose(t[:12, 0], (loo_s - loo_s.mean()) / loo_s.std(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(t[12:, 1], (loo_t - loo_t.mean()) / loo_t.std(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(t[:12, 1], (clip_score(src, tgt) - loo_t.mean()) / loo_t.std(), rtol=1e-5)
    np.testing.assert_allclose(sc.training_scores(), t.min(axis=1))
    back = DomainKNNScorer.from_state(copy.deepcopy(sc.get_state()))
    np.testing.assert_array_equal(back.score_samples(Y), sc.score_samples(Y))
    np.testing.assert_array_equal(back.training_scores(), sc.training_scores())
    with pytest.raises(ConfigError, match="n_clips, n_segments, dim"):
        sc.score_samples(Y[0])
    with pytest.raises(ConfigError, match="target domain has 1"):
        DomainKNNScorer().fit(X[:13], dom[:13])
    with pytest.raises(NotFittedError):
        DomainKNNScorer().score_samples(Y)


def test_kmeans_errors(rng):
    X = rng.standard_normal((6, 3))
    dom = ["source"] * 4 + ["target"] * 2
    for bad in (0, -2, True, 2.5):
        with pytest.raises(ConfigError, match="n_clusters"):
            KMeansTargetScorer(n_clusters=bad).fit(X, dom)
    with pytest.raises(ConfigError, match="source.*target|'test'"):
        KMeansTargetScorer().fit(X, ["source"] * 5 + ["test"])
    with pytest.raises(ConfigError):
        KMeansTargetScorer().fit(X, dom[:5])
    with pytest.raises(ConfigError):
        KMeansTargetScorer().fit(np.zeros((0, 3)), [])
    with pytest.raises(NotFittedError):
        KMeansTargetScorer().score_samples(X)
    with pytest.raises(NotFittedError):
        KMeansTargetScorer().training_scores()
    sc = KMeansTargetScorer(2).fit(X, dom)
    with pytest.raises(ConfigError, match=r"\(n, 3\)"):
        sc.score_samples(rng.standard_normal((2, 4)))
    with pytest.raises(ConfigError, match="at least two"):
        KMeansTargetScorer().fit(X[:1], ["target"]).training_scores()


@pytest.mark.parametrize("n_folds", [0, 1, 2.5])
def test_kmeans_rejects_bad_n_folds(rng, n_folds):
    """KNOWN BUG (reported, asdkit/scoring/kmeans.py): ``n_folds`` is not checked. 0 and 1 put every source
    embedding into one fold, scored against the target embeddings only (0 with a divide-by-zero warning)."""
    X = rng.standard_normal((10, 2))
    with pytest.raises(ConfigError, match="n_folds"):
        KMeansTargetScorer(3, n_folds=n_folds).fit(X, ["source"] * 8 + ["target"] * 2).training_scores()


# =========================================================================== Mahalanobis
@pytest.mark.parametrize("covariance, sk", [("empirical", EmpiricalCovariance), ("ledoit_wolf", LedoitWolf)])
def test_mahalanobis_matches_sklearn_on_2d(rng, covariance, sk):
    X = correlated(rng, 60, dim=5, shift=3.0)
    Y = np.concatenate([correlated(rng, 5, dim=5, shift=3.0), rng.standard_normal((3, 5)) * 4])
    sc = MahalanobisScorer(covariance).fit(X)
    ref = sk().fit(f32(X))
    np.testing.assert_allclose(sc.score_samples(Y), ref.mahalanobis(f32(Y)), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(sc.location_, ref.location_, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(sc.covariance_, ref.covariance_, rtol=1e-5, atol=1e-6)
    if covariance == "ledoit_wolf":
        assert 0 < sc.shrinkage_ < 1
        np.testing.assert_allclose(sc.shrinkage_, ref.shrinkage_, rtol=1e-5)
    else:
        assert sc.shrinkage_ == 0.0


@pytest.mark.parametrize("covariance, sk", [("empirical", EmpiricalCovariance), ("ledoit_wolf", LedoitWolf)])
def test_mahalanobis_3d_clip_score_is_mean_over_vectors(rng, covariance, sk):
    train = correlated(rng, 6 * 8, dim=3).reshape(6, 8, 3)
    test = correlated(rng, 4 * 5, dim=3).reshape(4, 5, 3) * np.array([1.0, 1.0, 1.0, 3.0])[:, None, None]
    sc = MahalanobisScorer(covariance).fit(train)
    ref = sk().fit(f32(train.reshape(-1, 3)))
    expected = ref.mahalanobis(f32(test.reshape(-1, 3))).reshape(4, 5).mean(axis=1)
    got = sc.score_samples(test)
    assert got.shape == (4,)
    np.testing.assert_allclose(got, expected, rtol=1e-4)
    # chunks (a chunk of clips, a single clip (n_vectors, dim), another chunk) = one array
    chunked = MahalanobisScorer(covariance).fit(iter([train[:2], train[2], train[3:]]))
    np.testing.assert_allclose(chunked.score_samples(test), got, rtol=1e-6)
    np.testing.assert_allclose(sc.score_samples(iter([test[:1], test[1], test[2:]])), got, rtol=1e-6)


def test_mahalanobis_errors(rng):
    with pytest.raises(ConfigError, match="covariance"):
        MahalanobisScorer("diagonal").fit(rng.standard_normal((10, 2)))
    with pytest.raises(NotFittedError):
        MahalanobisScorer().score_samples(rng.standard_normal((3, 2)))
    with pytest.raises(ConfigError, match="two"):
        MahalanobisScorer().fit(rng.standard_normal((1, 2)))
    with pytest.raises(ConfigError, match="same dimension"):
        MahalanobisScorer().fit(iter([rng.standard_normal((5, 2)), rng.standard_normal((5, 3))]))
    with pytest.raises(ConfigError):
        MahalanobisScorer().fit(rng.standard_normal((2, 3, 4, 5)))
    sc = MahalanobisScorer().fit(rng.standard_normal((20, 2)))
    with pytest.raises(ConfigError, match="2-dim"):
        sc.score_samples(rng.standard_normal((3, 3)))
    with pytest.raises(ConfigError, match="singular"):
        MahalanobisScorer().fit(np.ones((10, 3)))


@pytest.mark.parametrize("covariance, sk", [("empirical", EmpiricalCovariance), ("ledoit_wolf", LedoitWolf)])
def test_selective_mahalanobis_min_over_domains(rng, covariance, sk):
    src = correlated(rng, 5 * 10, dim=3).reshape(5, 10, 3)
    tgt = correlated(rng, 3 * 10, dim=3, shift=4.0).reshape(3, 10, 3)
    res = np.concatenate([src, tgt])
    dom = ["source"] * 5 + ["target"] * 3
    sc = SelectiveMahalanobisScorer(covariance).fit(res, dom)
    assert sc.domains_ == ("source", "target")
    test = np.concatenate([correlated(rng, 2 * 6, dim=3).reshape(2, 6, 3),
                           correlated(rng, 2 * 6, dim=3, shift=4.0).reshape(2, 6, 3)])
    cols = []
    for part in (src, tgt):
        ref = sk().fit(f32(part.reshape(-1, 3)))
        cols.append(ref.mahalanobis(f32(test.reshape(-1, 3))).reshape(4, 6).mean(axis=1))
    expected = np.stack(cols, axis=1)
    np.testing.assert_allclose(sc.domain_scores(test), expected, rtol=1e-4)
    np.testing.assert_allclose(sc.score_samples(test), expected.min(axis=1), rtol=1e-4)
    # the source-like clips are nearest to source, the target-like ones to target
    assert (expected[:2, 0] < expected[:2, 1]).all() and (expected[2:, 1] < expected[2:, 0]).all()
    # one domain only: that domain's score
    one = SelectiveMahalanobisScorer(covariance).fit(src, ["source"] * 5)
    assert one.domains_ == ("source",)
    np.testing.assert_allclose(one.score_samples(test), expected[:, 0], rtol=1e-4)


def test_selective_mahalanobis_errors(rng):
    res = rng.standard_normal((4, 5, 2))
    with pytest.raises(ConfigError, match="covariance"):
        SelectiveMahalanobisScorer("x").fit(res, ["source"] * 4)
    with pytest.raises(ConfigError, match="'test'"):
        SelectiveMahalanobisScorer().fit(res, ["source"] * 3 + ["test"])
    with pytest.raises(ConfigError, match="more residual clips"):
        SelectiveMahalanobisScorer().fit(res, ["source"] * 3)
    with pytest.raises(ConfigError, match="3 residual clips for 4"):
        SelectiveMahalanobisScorer().fit(res[:3], ["source"] * 4)
    with pytest.raises(ConfigError, match="target domain has 1"):
        SelectiveMahalanobisScorer().fit(rng.standard_normal((4, 2)), ["source"] * 3 + ["target"])
    with pytest.raises(NotFittedError):
        SelectiveMahalanobisScorer().score_samples(res)
    sc = SelectiveMahalanobisScorer().fit(res, ["source", "target"] * 2)
    with pytest.raises(ConfigError, match="2-dim"):
        sc.score_samples(rng.standard_normal((1, 5, 3)))


def test_mse_scorer_is_mean_squared_residual(rng):
    res = rng.standard_normal((3, 4, 2))
    sc = MSEScorer().fit(res)
    np.testing.assert_allclose(sc.score_samples(res), (f32(res) ** 2).mean(axis=(1, 2)), rtol=1e-6)
    np.testing.assert_allclose(sc.score_samples(iter([res[0], res[1:]])), sc.score_samples(res), rtol=1e-12)
    with pytest.raises(NotFittedError):
        MSEScorer().score_samples(res)
    with pytest.raises(ConfigError, match="2-dim"):
        sc.score_samples(rng.standard_normal((1, 4, 3)))


# =========================================================================== SelectiveScorer
@pytest.fixture
def shifted_domains(rng):
    """40 source samples (spread 1) and 8 target samples (spread 3, shifted), dim 2."""
    X = np.concatenate([rng.standard_normal((40, 2)), 6 + 3 * rng.standard_normal((8, 2))])
    return X, np.array(["source"] * 40 + ["target"] * 8)


def test_selective_standardises_in_sample_without_training_scores(rng, shifted_domains):
    X, dom = shifted_domains
    sel = SelectiveScorer(MahalanobisScorer("empirical")).fit(X, dom)
    assert sel.domains_ == ("source", "target")
    for k, d in enumerate(sel.domains_):
        own = sel.domain_scores(X[dom == d])[:, k]
        assert abs(own.mean()) < 1e-6 and abs(own.std() - 1) < 1e-6
        raw = MahalanobisScorer("empirical").fit(X[dom == d])
        Y = rng.standard_normal((5, 2)) * 3
        r = raw.score_samples(Y)
        own_raw = raw.score_samples(X[dom == d])
        np.testing.assert_allclose(sel.domain_scores(Y)[:, k], (r - own_raw.mean()) / own_raw.std(), rtol=1e-6)


def test_selective_with_knn_uses_leave_one_out_scores(rng, shifted_domains):
    X, dom = shifted_domains
    sel = SelectiveScorer(KNNScorer(2)).fit(X, dom)
    Y = np.concatenate([rng.standard_normal((4, 2)), 6 + 3 * rng.standard_normal((4, 2))])
    cols = []
    for d in ("source", "target"):
        Xd = X[dom == d]
        D = distances(Xd, Xd, "euclidean")
        np.fill_diagonal(D, np.inf)
        loo = mean_k_smallest(D, 2)
        cols.append((mean_k_smallest(distances(Y, Xd, "euclidean"), 2) - loo.mean()) / loo.std())
    expected = np.stack(cols, axis=1)
    np.testing.assert_allclose(sel.domain_scores(Y), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sel.score_samples(Y), expected.min(axis=1), rtol=1e-5, atol=1e-6)
    assert sel.score_samples(Y).shape == (8,)
    # the backend given is not fitted itself (copied per domain)
    assert not hasattr(sel.backend, "nn_")


def test_selective_without_standardising_is_raw_min(rng, shifted_domains):
    X, dom = shifted_domains
    sel = SelectiveScorer(KNNScorer(1), standardize=False).fit(X, dom)
    Y = rng.standard_normal((6, 2)) * 4
    raw = [KNNScorer(1).fit(X[dom == d]).score_samples(Y) for d in ("source", "target")]
    np.testing.assert_allclose(sel.score_samples(Y), np.minimum(*raw), rtol=1e-6)
    # one domain: that domain's scores
    only = SelectiveScorer(KNNScorer(1), standardize=False).fit(X[dom == "source"], ["source"] * 40)
    assert only.domains_ == ("source",)
    np.testing.assert_allclose(only.score_samples(Y), raw[0], rtol=1e-6)


def test_selective_errors(rng):
    X = rng.standard_normal((6, 2))
    with pytest.raises(ConfigError, match="5 domains for 6"):
        SelectiveScorer(KNNScorer()).fit(X, ["source"] * 5)
    with pytest.raises(ConfigError, match="'x'"):
        SelectiveScorer(KNNScorer()).fit(X, ["source"] * 5 + ["x"])
    with pytest.raises(NotFittedError):
        SelectiveScorer(KNNScorer()).score_samples(X)


# =========================================================================== normalisation, weights
def test_score_normalizer():
    n = ScoreNormalizer().fit([1.0, 2.0, 3.0, 6.0])
    assert n.mean_ == 3.0 and n.scale_ == pytest.approx(np.sqrt(3.5))
    np.testing.assert_allclose(n.transform([3.0, 6.0]), [0.0, 3 / np.sqrt(3.5)])
    assert ScoreNormalizer().fit([2.0, 2.0]).scale_ == 1.0          # no spread: identity scale
    for bad in ([1.0], [[1.0, 2.0]], [1.0, np.nan], [1.0, np.inf]):
        with pytest.raises(ConfigError):
            ScoreNormalizer().fit(bad)
    with pytest.raises(ConfigError, match="not fitted"):
        ScoreNormalizer().transform([1.0])


def test_weighted_sum_rescales_weights():
    scores = {"a": [1.0, 0.0, 2.0], "b": [0.0, 4.0, 2.0], "c": [100.0, 100.0, 100.0]}
    np.testing.assert_allclose(weighted_sum(scores, {"a": 3, "b": 1}), [0.75, 1.0, 2.0])
    np.testing.assert_allclose(weighted_sum(scores, {"a": 0.5, "b": 0.5}), weighted_sum(scores, {"a": 7, "b": 7}))
    np.testing.assert_allclose(weighted_sum(scores, {"b": 1, "a": 0}), scores["b"])
    with pytest.raises(ConfigError, match=r"\['d'\]"):
        weighted_sum(scores, {"a": 1, "d": 1})                    # no scores for 'd'
    with pytest.raises(ConfigError, match="non-negative"):
        weighted_sum(scores, {"a": 2, "b": -1})
    with pytest.raises(ConfigError, match="non-negative"):
        weighted_sum(scores, {"a": 0, "b": 0})
    with pytest.raises(ConfigError, match="shape"):
        weighted_sum({"a": [1.0, 2.0], "b": [1.0]}, {"a": 1, "b": 1})


def test_check_weights():
    w = check_weights({"alpha": 1, "beta": 3}, ["alpha", "beta"], who="OEVAE")
    assert w == {"alpha": 0.25, "beta": 0.75}
    assert sum(check_weights({"x": 0.1, "y": 0.2, "z": 0.3}).values()) == pytest.approx(1.0)
    with pytest.raises(ConfigError, match=r"OEVAE.*\['gamma'\]"):
        check_weights({"alpha": 1, "gamma": 1}, ["alpha", "beta"], who="OEVAE")
    for bad in ({}, {"a": -0.1, "b": 1}, {"a": np.nan}, {"a": np.inf}, {"a": 0.0}):
        with pytest.raises(ConfigError, match="non-negative"):
            check_weights(bad)
    with pytest.raises(ConfigError, match="numbers"):
        check_weights({"a": "heavy"})


# =========================================================================== state round trips
def _fitted_backends(rng):
    X = correlated(rng, 30, dim=3)
    dom = np.array(["source"] * 24 + ["target"] * 6)
    res = correlated(rng, 30 * 4, dim=3).reshape(30, 4, 3)
    return [
        (KNNScorer(2, "cosine").fit(X, groups=np.arange(30) // 2), X),
        (KNNScorer(3).fit(X), X),
        (KMeansTargetScorer(4, random_state=3, n_folds=4).fit(X, dom), X),
        (KMeansTargetScorer(4, random_state=3, per_domain=True).fit(X, dom), X),
        (DomainKNNScorer(2).fit(res, dom), res),
        (FrameMahalanobisScorer(block_size=3).fit(res.reshape(30, 2, 6), dom), res.reshape(30, 2, 6)),
        (MahalanobisScorer().fit(X), X),
        (MahalanobisScorer("empirical").fit(res), res),
        (SelectiveMahalanobisScorer().fit(res, dom), res),
        (MSEScorer().fit(res), res),
    ]


def test_every_backend_round_trips_through_its_state(rng):
    for sc, X in _fitted_backends(rng):
        state = sc.get_state()
        assert state_is_saveable(state), type(sc).__name__
        back = type(sc).from_state(copy.deepcopy(state))
        assert type(back) is type(sc)
        Y = X + 0.3 * rng.standard_normal(X.shape)
        assert np.array_equal(back.score_samples(Y), sc.score_samples(Y)), type(sc).__name__
        if hasattr(sc, "training_scores"):
            assert np.array_equal(back.training_scores(), sc.training_scores()), type(sc).__name__
    n = ScoreNormalizer().fit([1.0, 2.5, 7.0])
    back = ScoreNormalizer.from_state(json.loads(json.dumps(n.get_state())))
    assert np.array_equal(back.transform([0.0, 3.0]), n.transform([0.0, 3.0]))


def test_selective_scorer_round_trips_through_its_state(rng, shifted_domains):
    """KNOWN GAP (reported, asdkit/scoring/domain.py): SelectiveScorer has no get_state/from_state, unlike
    every other backend, so a detector built on it cannot save it."""
    X, dom = shifted_domains
    sel = SelectiveScorer(KNNScorer(2)).fit(X, dom)
    back = SelectiveScorer.from_state(copy.deepcopy(sel.get_state()))
    assert np.array_equal(back.score_samples(X), sel.score_samples(X))


# =========================================================================== the Detector base
def clip_paths(indices, *, split="train", domain="source", label="normal", machine="fan"):
    """Fake DCASE clip paths (never read by the toy detectors)."""
    return [f"/x/{machine}/{split}/section_00_{domain}_{split}_{label}_{i:04d}_a_1.wav" for i in indices]


def clip_index(table) -> np.ndarray:
    """The toy feature: the clip index, shape (n_clips, 1)."""
    return table["index"].to_numpy(dtype=np.float64)[:, None]


class ToyDetector(Detector):
    """A detector on the clip index: k-NN distance to the training clips' indices (+ a member's score)."""

    score_names = ("score", "double")

    def __init__(self, n_neighbors: int = 1, score: str = "score", features: FeatureConfig | None = None,
                 offset: float = 0.0, progress: bool = False):
        self.n_neighbors = n_neighbors
        self.score = score
        self.features = features
        self.offset = offset
        self.progress = progress

    def _fit(self, train, *, outliers, members):
        self.knn_ = KNNScorer(self.n_neighbors).fit(clip_index(train))
        self.member_ = None if not members else members["base"]
        s = self.knn_.training_scores() + self.offset
        if self.member_ is not None:
            s = s + self.member_.score_samples(train)
        return {"score": s, "double": 2 * s}

    def _score_all(self, clips):
        s = self.knn_.score_samples(clip_index(clips)) + self.offset
        if self.member_ is not None:
            s = s + self.member_.score_samples(clips)
        return {"score": s, "double": 2 * s}

    def _get_state(self):
        return {"knn": self.knn_.get_state(), "member": self.member_}

    def _set_state(self, state):
        self.knn_ = KNNScorer.from_state(state["knn"])
        self.member_ = state["member"]


class BrokenToy(ToyDetector):
    def _get_state(self):
        raise RuntimeError("cannot serialise")


class OtherToy(Detector):
    def __init__(self):
        pass


@pytest.fixture
def toy_data(rng):
    train_idx = np.sort(rng.choice(300, size=24, replace=False))
    train = clip_paths(train_idx[:20]) + clip_paths(train_idx[20:], domain="target")
    test = (clip_paths([train_idx[3] + 1, train_idx[10]], split="test")
            + clip_paths([1000, 2000], split="test", label="anomaly"))
    return train, test, train_idx


@pytest.fixture
def toy(toy_data):
    train, _, _ = toy_data
    return ToyDetector(n_neighbors=2, features=FeatureConfig(n_mels=64, n_segments=3), offset=0.5).fit(train)


def test_toy_fit_scores_and_thresholds(toy_data):
    train, test, idx = toy_data
    det = ToyDetector(n_neighbors=2)
    assert det.fit(train) is det
    assert det.n_train_ == 24
    D = distances(idx[:, None], idx[:, None], "euclidean")
    np.fill_diagonal(D, np.inf)
    loo = mean_k_smallest(D, 2)
    np.testing.assert_allclose(det.train_scores_["score"], loo)
    np.testing.assert_allclose(det.train_scores_["double"], 2 * loo)
    assert set(det.thresholds_) == {"score", "double"}
    for k in ("score", "double"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            assert det.thresholds_[k] == gamma_threshold(det.train_scores_[k], threshold_quantile)
    assert det.threshold_ == det.thresholds_["score"]
    all_ = det.score_all(test)
    assert set(all_) == {"score", "double"} and all(v.shape == (4,) and v.dtype == np.float64 for v in all_.values())
    s = det.score_samples(test)
    np.testing.assert_array_equal(s, all_["score"])
    test_idx = np.array([idx[3] + 1, idx[10], 1000, 2000], dtype=float)
    np.testing.assert_allclose(s, mean_k_smallest(distances(test_idx[:, None], idx[:, None], "euclidean"), 2))
    np.testing.assert_allclose(s[2:], [1000 - (idx[-1] + idx[-2]) / 2, 2000 - (idx[-1] + idx[-2]) / 2])
    dec = det.decision(s)
    assert dec.dtype == np.int64 and set(dec.tolist()) <= {0, 1}
    np.testing.assert_array_equal(dec, (s > det.threshold_).astype(int))
    assert dec[2:].tolist() == [1, 1]
    np.testing.assert_array_equal(det.decision(all_["double"], key="double"),
                                  all_["double"] > det.thresholds_["double"])
    # a table works as well as paths, and scoring leaves the detector as it was
    from asdkit.data.dataset import clip_table
    before = {k: v.copy() for k, v in det.train_scores_.items()}
    np.testing.assert_array_equal(det.score_samples(clip_table(test)), s)
    assert all(np.array_equal(before[k], det.train_scores_[k]) for k in before)


def test_toy_score_setting_chooses_the_score(toy_data):
    train, test, _ = toy_data
    det = ToyDetector(score="double").fit(train)
    assert det.score_key == "double" and det.threshold_ == det.thresholds_["double"]
    np.testing.assert_array_equal(det.score_samples(test), det.score_all(test)["double"])
    with pytest.raises(ConfigError, match="score='bogus'"):
        ToyDetector(score="bogus").fit(train)


def test_decision_errors(toy):
    with pytest.raises(ConfigError, match="one-dimensional"):
        toy.decision(np.zeros((2, 2)))
    with pytest.raises(ConfigError, match="'nope'"):
        toy.decision(np.zeros(2), key="nope")


def test_unfitted_detector_raises(toy_data, tmp_path):
    _, test, _ = toy_data
    det = ToyDetector()
    for call in (lambda: det.score_all(test), lambda: det.score_samples(test), lambda: det.decision([1.0]),
                 lambda: det.save(tmp_path / "d")):
        with pytest.raises(NotFittedError, match="fit"):
            call()
    assert not (tmp_path / "d").exists()


def test_fit_rejects_a_single_path_or_waveforms(toy_data):
    train, test, _ = toy_data
    with pytest.raises(ConfigError, match="train=.*single path"):
        ToyDetector().fit(train[0])
    with pytest.raises(ConfigError, match="train=.*single path"):
        ToyDetector().fit(Path(train[0]))
    with pytest.raises(ConfigError, match="train: got an array of shape \\(3, 16000\\)"):
        ToyDetector().fit(np.zeros((3, 16000), dtype=np.float32))
    with pytest.raises(ConfigError, match="outliers=.*single path"):
        ToyDetector().fit(train, outliers=train[0])
    with pytest.raises(ConfigError, match="at least two"):
        ToyDetector().fit(train[:1])
    det = ToyDetector().fit(train)
    with pytest.raises(ConfigError, match="clips=.*single path"):
        det.score_samples(test[0])
    with pytest.raises(ConfigError, match="clips: got an array"):
        det.score_all(np.zeros(16000))


def test_save_load_round_trip(toy, toy_data, tmp_path):
    _, test, _ = toy_data
    folder = toy.save(tmp_path / "models" / "toy")
    assert folder == tmp_path / "models" / "toy"
    assert (folder / "detector.json").is_file() and (folder / "arrays.npz").is_file()
    for loader in (ToyDetector.load, Detector.load):
        back = loader(folder)
        assert type(back) is ToyDetector
        params = back.get_params()
        assert params == {"n_neighbors": 2, "score": "score", "features": FeatureConfig(n_mels=64, n_segments=3),
                          "offset": 0.5, "progress": False}
        assert type(params["features"]) is FeatureConfig
        assert np.array_equal(back.score_samples(test), toy.score_samples(test))
        assert all(np.array_equal(back.score_all(test)[k], toy.score_all(test)[k]) for k in toy.score_names)
        assert back.thresholds_ == toy.thresholds_ and back.threshold_ == toy.threshold_
        assert back.n_train_ == toy.n_train_
        assert all(np.array_equal(back.train_scores_[k], toy.train_scores_[k]) for k in toy.score_names)
    meta = json.loads((folder / "detector.json").read_text())
    assert meta["class"].endswith(":ToyDetector") and meta["version"] == 1


def test_transient_setting_is_not_saved(toy_data, tmp_path):
    train, test, _ = toy_data

    class Progress(ToyDetector):
        transient_params = ("progress",)

    det = Progress(progress=True).fit(train)
    back = Detector.load(det.save(tmp_path / "p"))
    assert back.progress is False
    assert np.array_equal(back.score_samples(test), det.score_samples(test))


def test_save_load_nested_member(toy_data, tmp_path):
    train, test, idx = toy_data
    base = ToyDetector(n_neighbors=1, offset=2.0).fit(train)
    outer = ToyDetector(n_neighbors=3, score="double").fit(train, members={"base": base})
    expected = outer.score_all(test)
    back = ToyDetector.load(outer.save(tmp_path / "outer"))
    assert isinstance(back.member_, ToyDetector) and back.member_ is not base
    assert back.member_.get_params() == base.get_params()
    assert back.member_.thresholds_ == base.thresholds_
    assert np.array_equal(back.member_.score_samples(test), base.score_samples(test))
    assert back.get_params() == outer.get_params()
    assert all(np.array_equal(back.score_all(test)[k], expected[k]) for k in expected)
    np.testing.assert_allclose(expected["score"], base.score_samples(test)
                               + ToyDetector(n_neighbors=3).fit(train).score_samples(test))


def test_save_is_atomic(toy, toy_data, tmp_path):
    train, test, _ = toy_data
    parent = tmp_path / "models"
    broken = BrokenToy().fit(train)
    with pytest.raises(RuntimeError, match="cannot serialise"):
        broken.save(parent / "det")
    assert list(parent.iterdir()) == []                     # no folder, no temporary folder left behind
    # an existing saved detector survives a failed save over it
    toy.save(parent / "det")
    with pytest.raises(RuntimeError, match="cannot serialise"):
        broken.save(parent / "det")
    assert sorted(p.name for p in parent.iterdir()) == ["det"]
    assert np.array_equal(Detector.load(parent / "det").score_samples(test), toy.score_samples(test))
    # saving over an existing folder replaces it (no merge, no leftovers)
    (parent / "det" / "stray.txt").write_text("old")
    other = ToyDetector(n_neighbors=1, score="double").fit(train)
    other.save(parent / "det")
    assert sorted(p.name for p in parent.iterdir()) == ["det"]
    assert not (parent / "det" / "stray.txt").exists()
    back = Detector.load(parent / "det")
    assert back.get_params() == other.get_params()
    assert np.array_equal(back.score_samples(test), other.score_samples(test))


def test_load_errors(toy, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match="no detector.json"):
        Detector.load(empty)
    with pytest.raises(ConfigError, match="no detector.json"):
        Detector.load(tmp_path / "missing")
    folder = toy.save(tmp_path / "toy")
    with pytest.raises(ConfigError, match="not a OtherToy"):
        OtherToy.load(folder)
    meta_path = folder / "detector.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "version": 99}))
    with pytest.raises(ConfigError, match="version 99"):
        Detector.load(folder)
    meta_path.write_text(json.dumps({**meta, "format": "something-else"}))
    with pytest.raises(ConfigError, match="version"):
        Detector.load(folder)
    meta_path.write_text(json.dumps({**meta, "class": "asdkit.nowhere:Nothing"}))
    with pytest.raises(ConfigError, match="cannot be imported"):
        Detector.load(folder)
    meta_path.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        Detector.load(folder)


# --------------------------------------------------------------------------- the scorer contract as types
def _positional(method) -> list[str]:
    import inspect

    return [p.name for p in inspect.signature(method).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name not in ("self", "cls")]


def test_every_backend_obeys_the_scorer_protocols():
    import asdkit.scoring as S

    backends = [KNNScorer, S.KMeansTargetScorer, S.DomainKNNScorer, S.SelectiveScorer, S.FrameMahalanobisScorer,
                S.MahalanobisScorer, S.MSEScorer, S.SelectiveMahalanobisScorer]
    for cls in backends:
        assert issubclass(cls, S.Scorer), cls.__name__
        assert len(_positional(cls.fit)) == 2, (cls.__name__, "fit(X, domains)")
        assert len(_positional(cls.score_samples)) == 1, (cls.__name__, "score_samples(X)")
        if issubclass(cls, S.DomainScorer):
            assert len(_positional(cls.domain_scores)) == 1, (cls.__name__, "domain_scores(X)")
        if issubclass(cls, S.TrainingScorer):
            assert _positional(cls.training_scores) == [], (cls.__name__, "training_scores(): options keyword-only")
    assert {c.__name__ for c in backends if issubclass(c, S.TrainingScorer)} >= {
        "KNNScorer", "KMeansTargetScorer", "DomainKNNScorer"}
    assert {c.__name__ for c in backends if issubclass(c, S.DomainScorer)} >= {
        "KMeansTargetScorer", "DomainKNNScorer", "SelectiveScorer", "SelectiveMahalanobisScorer"}
    assert not issubclass(S.ScoreNormalizer, S.Scorer)
