"""Mixup and SMOTE blocks."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from asdkit import ConfigError
from asdkit.features.augment import mixup, smote


def test_mixup_mixes_inputs_and_targets_with_the_same_weights(rng):
    x = torch.from_numpy(rng.standard_normal((16, 3, 5)).astype(np.float32))
    onehot = torch.eye(4)[torch.from_numpy(rng.integers(0, 4, 16))]
    v = torch.from_numpy(rng.standard_normal(16).astype(np.float32))
    r = mixup(x, onehot, v, alpha=1.0, rng=0)
    lam = r.lam.reshape(-1, 1, 1)
    torch.testing.assert_close(r.x, lam * x + (1 - lam) * x[r.partner])
    torch.testing.assert_close(r.targets[0], r.lam[:, None] * onehot + (1 - r.lam[:, None]) * onehot[r.partner])
    torch.testing.assert_close(r.targets[1], r.lam * v + (1 - r.lam) * v[r.partner])
    assert ((r.lam >= 0) & (r.lam <= 1)).all()
    assert torch.allclose(r.targets[0].sum(dim=1), torch.ones(16))          # still a distribution
    assert sorted(r.partner.tolist()) == list(range(16))                     # a permutation


def test_mixup_partners_stay_in_their_group_and_seed_reproduces():
    x = torch.arange(12.0).reshape(12, 1)
    groups = np.array([0] * 6 + [1] * 6)
    for seed in range(5):
        r = mixup(x, alpha=0.5, groups=groups, rng=seed)
        assert (groups[r.partner.numpy()] == groups).all()
    a, b, c = mixup(x, alpha=0.5, rng=3), mixup(x, alpha=0.5, rng=3), mixup(x, alpha=0.5, rng=4)
    torch.testing.assert_close(a.x, b.x)
    assert not torch.equal(a.x, c.x)
    # small alpha keeps most samples close to one parent
    lam = mixup(torch.zeros(4000, 1), alpha=0.1, rng=0).lam.numpy()
    assert np.mean((lam < 0.1) | (lam > 0.9)) > 0.6


@pytest.mark.parametrize("kwargs, words", [({"alpha": 0}, "alpha"), ({"alpha": -1.0}, "alpha"),
                                           ({"groups": [0, 1]}, "groups")])
def test_mixup_errors(kwargs, words):
    with pytest.raises(ConfigError, match=words):
        mixup(torch.zeros(4, 2), **kwargs)
    with pytest.raises(ConfigError, match="target 0"):
        mixup(torch.zeros(4, 2), torch.zeros(3))


def test_smote_balances_groups_and_interpolates_values_alongside(rng):
    # features are a linear function of the value, so an interpolated sample's value is readable from it
    v = np.r_[rng.uniform(0, 10, 60), rng.uniform(20, 30, 6)]
    X = np.stack([v, 2 * v + 1, rng.standard_normal(66) * 1e-3], axis=1).reshape(66, 3, 1)
    groups = np.array(["source"] * 60 + ["target"] * 6)
    res = smote(X, groups, values=v, random_state=0)
    assert res.counts == {"source": (60, 60), "target": (6, 60)}
    assert res.X.shape == (54, 3, 1) and (res.groups == "target").all()
    np.testing.assert_allclose(res.values, res.X[:, 0, 0], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(res.X[:, 1, 0], 2 * res.X[:, 0, 0] + 1, rtol=1e-4, atol=1e-4)
    assert (res.values >= v[60:].min() - 1e-6).all() and (res.values <= v[60:].max() + 1e-6).all()
    again = smote(X, groups, values=v, random_state=0)
    np.testing.assert_array_equal(again.X, res.X)


def test_smote_errors(rng):
    X = rng.standard_normal((6, 4))
    with pytest.raises(ConfigError, match="two groups"):
        smote(X, ["a"] * 6)
    with pytest.raises(ConfigError, match="single sample"):
        smote(X, ["a"] * 5 + ["b"])
    with pytest.raises(ConfigError, match="groups must have shape"):
        smote(X, ["a"] * 5)
