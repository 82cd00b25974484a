"""OEVAE: configuration, the attribute value v, the VAE, the KNN, the normalisation and a fit on synthetic data."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from asdkit import ConfigError
from asdkit.models.oevae import (OEVAE_PRESETS, DomainVAE, KNNInlier, OEVAEConfig, OEVAEDetector, ScoreNormalizer,
                          attribute_values, oevae_config)
from asdkit.data.synth import synthesize

pytestmark = pytest.mark.usefixtures("one_thread")

# Floors for the quick preset on the quick SynFan test clips (40 clips). Measured: see test below.
AUC_FLOOR = 0.6


@pytest.fixture(scope="module")
def quick_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("oevae")
    return synthesize(root, preset="quick", seed=0, progress=False)


@pytest.fixture(scope="module")
def split(quick_root):
    t = quick_root
    fan = t[t.machine == "SynFan"]
    train = fan[fan.split == "train"].reset_index(drop=True)
    test = fan[fan.split == "test"].reset_index(drop=True)
    others = t[(t.machine != "SynFan") & (t.split == "train")].reset_index(drop=True)
    return train, test, others


@pytest.fixture(scope="module")
def fitted(split):
    train, test, others = split
    det = OEVAEDetector(preset="quick", seed=0, device="cpu").fit(train, outliers=others)
    return det, det.score_all(test)


# --------------------------------------------------------------------------- configuration
def test_paper_preset_is_the_reports_setting():
    c = OEVAE_PRESETS["paper"]
    assert (c.features, c.width, c.embedding_dim) == ("paper", 64, 512)
    assert (c.latent, c.n_zd, c.lambda_vae, c.k_scale) == (64, 8, 1e-7, 5.0)
    assert (c.epochs, c.batch_size, c.lr) == (20, 128, 1e-3)
    assert c.feature_config.n_mels == 224


@pytest.mark.parametrize("kwargs, words", [({"n_zd": 64}, "n_zd"), ({"batch_size": 3}, "batch_size"),
                                           ({"w": 1.5}, "w="), ({"features": "huge"}, "features"),
                                           ({"smote_ratio": 0}, "smote_ratio"), ({"width": 0}, "width")])
def test_config_errors(kwargs, words):
    with pytest.raises(ConfigError, match=words):
        OEVAEConfig(**kwargs)
    with pytest.raises(ConfigError, match="unknown OEVAE preset"):
        oevae_config("fast")


# --------------------------------------------------------------------------- v and k
def _clips(attrs, domains):
    return pd.DataFrame({"attributes": attrs, "domain": domains, "path": [""] * len(attrs)})


def test_attribute_values_picks_the_shifting_attribute_and_sets_k():
    attrs = [{"mic": "1", "speed": "1200rpm"}, {"mic": "1", "speed": "1450rpm"}, {"mic": "1", "speed": "2250rpm"}]
    a = attribute_values(_clips(attrs, ["source", "source", "target"]))
    assert a.source == "attribute speed (rpm)" and a.codes is None
    np.testing.assert_allclose(a.v, np.array([1200, 1450, 2250]) - 1633.3333333, atol=1e-6)
    assert a.k == pytest.approx(5 / 250)
    b = attribute_values(_clips(attrs, ["source", "source", "target"]), attribute="mic")
    assert b.source == "attribute mic" and b.k == pytest.approx(5.0)


def test_attribute_values_categorical_codes():
    attrs = [{"bg": "B"}, {"bg": "A"}, {"bg": "C"}, {"bg": "A1"}]
    a = attribute_values(_clips(attrs, ["source", "source", "target", "source"]))
    assert a.codes == {"A": 0, "A1": 1, "B": 2, "C": 3} and a.k == pytest.approx(5.0)
    np.testing.assert_allclose(a.v, np.array([2, 0, 3, 1]) - 1.5)
    with pytest.raises(ConfigError, match="not in these clips"):
        attribute_values(_clips(attrs, ["source"] * 4), attribute="speed")


def test_attribute_values_without_attributes_use_power(write_wav):
    paths = []
    for i, gain in enumerate([0.01, 0.1, 0.1, 1.0]):
        p = write_wav(f"c{i}.wav", gain * np.sin(np.linspace(0, 2000, 32000)).astype(np.float32) * 0.9)
        paths.append(str(p))
    clips = pd.DataFrame({"attributes": [{}] * 4, "domain": ["source"] * 4, "path": paths})
    a = attribute_values(clips)
    assert a.source.startswith("power")
    steps = np.diff(np.sort(a.v))
    np.testing.assert_allclose(steps[steps > 0], [20.0, 20.0], atol=1.0)       # 20 dB per factor 10
    assert a.k == pytest.approx(5 / 20, rel=0.06)


# --------------------------------------------------------------------------- blocks
def test_vae_kl_is_zero_at_the_prior_and_split_latent():
    vae = DomainVAE(dim=16, hidden=8, latent=10, n_zd=3)
    mu = torch.zeros(4, 10)
    mu[:, :3] = torch.tensor([1.0, -2.0, 0.5, 3.0]).reshape(4, 1)
    out = type("O", (), {"mu": mu, "logvar": torch.zeros(4, 10)})
    kl = vae.kl(out, torch.tensor([1.0, -2.0, 0.5, 3.0]))
    torch.testing.assert_close(kl, torch.zeros(4))
    kl2 = vae.kl(out, torch.zeros(4))              # z_d away from its prior: 0.5 * m^2 per z_d channel
    torch.testing.assert_close(kl2, 0.5 * 3 * torch.tensor([1.0, 4.0, 0.25, 9.0]))
    alpha = vae.nll_zc(mu)                         # z_c = 0: the normal density's maximum
    torch.testing.assert_close(alpha.float(), torch.full((4,), 0.5 * 7 * np.log(2 * np.pi)).float())


def test_knn_leave_one_clip_out(rng):
    base = rng.standard_normal((5, 4)).astype(np.float32) * 10
    emb = np.repeat(base, 3, axis=0) + rng.standard_normal((15, 4)).astype(np.float32) * 0.01
    clip = np.repeat(np.arange(5), 3)
    knn = KNNInlier(n_neighbors=2).fit(emb, groups=clip)
    loco = knn.training_scores()
    naive = KNNInlier(n_neighbors=2).fit(emb).training_scores()
    assert (naive < 0.1).all() and (loco > 1.0).all()      # the own clip's segments no longer count
    np.testing.assert_allclose(knn.score(base), 0.0, atol=0.05)


def test_score_normalizer_uses_training_statistics_only(rng):
    train, test = rng.normal(5, 2, 200), rng.normal(50, 20, 30)
    n = ScoreNormalizer().fit(train)
    assert (n.mean_, n.scale_) == pytest.approx((train.mean(), train.std()))
    np.testing.assert_allclose(n.transform(test), (test - train.mean()) / train.std())
    np.testing.assert_allclose(n.transform(test[:5]), n.transform(test)[:5])
    with pytest.raises(ConfigError, match="not fitted"):
        ScoreNormalizer().transform(test)


# --------------------------------------------------------------------------- fit on synthetic data
def test_fit_learns_and_records(fitted):
    det, _ = fitted
    log = det.epoch_log_
    assert list(log.index) == list(range(1, OEVAE_PRESETS["quick"].epochs + 1))
    assert det.history_.train_loss[-1] < det.history_.train_loss[0]
    assert log.machine_loss.iloc[-1] < log.machine_loss.iloc[0]
    assert log.oe_accuracy.iloc[-1] > 0.9                   # tells SynFan from the other machine types
    assert log.recon.iloc[-1] < 0.5 * log.recon.iloc[0]          # the VAE trains (its KL falls more slowly)
    assert det.attribute_.source == "attribute spd (rpm)"
    assert det.smote_counts_ and all(after >= before for before, after in det.smote_counts_.values())


def test_normalisation_comes_from_training_clips_only(fitted, split):
    det, scores = fitted
    _, test, _ = split
    for key in ("alpha", "beta"):
        s = det.train_scores_[key]
        assert det.normalizers_[key].mean_ == pytest.approx(s.mean())
        assert det.normalizers_[key].scale_ == pytest.approx(s.std())
    before = {k: (n.mean_, n.scale_) for k, n in det.normalizers_.items()}
    few = det.score_all(test.iloc[[0, 25]])                # other test sets change nothing
    assert {k: (n.mean_, n.scale_) for k, n in det.normalizers_.items()} == before
    for key in ("alpha", "beta", "oevae"):
        np.testing.assert_allclose(few[key], scores[key][[0, 25]], rtol=1e-5)
    w = det.config_.w
    np.testing.assert_allclose(scores["oevae"], w * det.normalizers_["alpha"].transform(scores["alpha"])
                               + (1 - w) * det.normalizers_["beta"].transform(scores["beta"]))


def test_auc_floor_and_latent_shapes(fitted, split):
    from sklearn.metrics import roc_auc_score

    det, scores = fitted
    _, test, _ = split
    y = (test.label == "anomaly").to_numpy().astype(int)
    auc = {k: roc_auc_score(y, s) for k, s in scores.items()}
    assert auc["oevae"] > AUC_FLOOR, auc
    z = det.latents(test.iloc[:3])
    assert z.shape == (3, 8, det.config_.latent)
    e = det.embed(test.iloc[:3])
    assert e.shape == (3, 8, det.config_.embedding_dim)
    flags = det.decision(det.train_scores_["oevae"])
    assert 0.02 <= flags.mean() <= 0.3


def test_same_seed_same_scores(split):
    train, test, others = split
    cfg = oevae_config("quick", epochs=1, smote=False)
    small = others.groupby("machine").head(8)

    def run(seed):
        det = OEVAEDetector(preset=cfg, seed=seed, device="cpu").fit(train, outliers=small)
        return det.score_all(test.iloc[:6])

    a, b, c = run(0), run(0), run(1)
    for k in ("alpha", "beta", "oevae"):
        np.testing.assert_array_equal(a[k], b[k])
        assert not np.array_equal(a[k], c[k])


def test_fit_errors(split):
    train, _, _ = split
    with pytest.raises(ConfigError, match="pseudo-anomalies"):
        OEVAEDetector(preset="quick", device="cpu").fit(train)
    with pytest.raises(ConfigError, match="clip table"):
        OEVAEDetector(preset="quick", device="cpu").fit(list(train.path), outliers=list(train.path))
    with pytest.raises(ConfigError, match="not fitted"):
        OEVAEDetector().score_samples(list(train.path[:2]))


def test_components_for_the_sweep(fitted, split):
    from asdkit.experiments.weights import evaluate_weight, oevae_components

    det, scores = fitted
    _, test, _ = split
    comp = oevae_components({"SynFan": det}, {"SynFan": test}, ks=(1, 2))
    assert len(comp) == 2 * len(test) and set(comp.k) == {1, 2}
    k1 = comp[comp.k == 1]
    np.testing.assert_allclose(k1.alpha, det.normalizers_["alpha"].transform(scores["alpha"]))
    np.testing.assert_allclose(k1.beta, det.normalizers_["beta"].transform(scores["beta"]))
    # the default w reproduces the detector's own combined score
    from sklearn.metrics import roc_auc_score
    table, _ = evaluate_weight(comp, det.config_.w, k=1)
    y = (test.label == "anomaly").to_numpy().astype(int)
    assert table.auc_source.iloc[0] == pytest.approx(
        roc_auc_score(y[(test.domain == "source") | (y == 1)], scores["oevae"][(test.domain == "source") | (y == 1)]))
    # k = 2 neighbours give larger distances, and its normaliser is fitted on training clips for k = 2
    k2 = det.score_all(test, n_neighbors=2)
    assert (k2["beta"] >= scores["beta"] - 1e-6).all()
    assert det.beta_normalizer(2).mean_ > det.beta_normalizer(1).mean_


def test_ablation_table_switches_the_augmentations(quick_root):
    from asdkit.models.oevae import ablation_table

    variants = {"none": {"mixup": False, "smote": False}, "Mixup + SMOTE": {"mixup": True, "smote": True}}
    t = ablation_table(quick_root, variants=variants, preset=oevae_config("quick", epochs=1), machines=["SynFan"])
    assert list(t.index) == ["none", "Mixup + SMOTE"]
    assert list(t.columns) == ["AUC(source)", "AUC(target)", "pAUC", "official score"]
    assert ((t > 0) & (t <= 100)).all().all()
    assert not np.allclose(t.loc["none"], t.loc["Mixup + SMOTE"])       # the switches change the model
