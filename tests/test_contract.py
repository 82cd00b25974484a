"""The detector contract, checked for every registered system (scikit-learn's ``parametrize_with_checks`` idea).

A new model gets these checks by being registered (:func:`asdkit.experiments.systems.register_system`):
it is fitted through the experiment protocol on a tiny synthetic root, with its quick settings shortened
to one or two epochs, and must then

* return itself from ``fit``, give every named score of every test clip (finite, shape (n,)),
  training scores and finite thresholds, and decisions in {0, 1} that are ``scores > threshold_``;
* store its settings only in ``__init__``, give them back with ``get_params`` and take new ones with
  ``set_params``, so that ``sklearn.base.clone`` copies it unfitted;
* score the same after a second fit with the same seed;
* score bit-identically after ``save`` / ``Detector.load``;
* not change while scoring;
* refuse to score, decide or save before ``fit`` (NotFittedError), and refuse bad input with an asdkit
  error that names the argument.
"""
from __future__ import annotations

import copy
import inspect
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from asdkit.errors import AsdkitError, ConfigError, NotFittedError
from asdkit.experiments.protocol import tasks
from asdkit.experiments.run import RootModels, fit_family
from asdkit.experiments.systems import SYSTEMS, BuildContext
from asdkit.models.base import Detector
from asdkit.synth.dataset import SynthPreset, synthesize

pytestmark = pytest.mark.usefixtures("one_thread")

#: One system per family (the first registered): they share the fitted detector.
FAMILIES = {}
for _spec in SYSTEMS.values():
    FAMILIES.setdefault(_spec.family, _spec)

#: Shorter training than the quick preset: the contract is about behaviour, not quality.
SHORT = {"baseline": {"epochs": 1}, "oevae": {"epochs": 1}, "classifier": {"epochs": 1}}
TINY = SynthPreset(n_source_train=14, n_target_train=4, n_test_per_cell=3, clip_seconds=3.0)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Two machine types, 18 training and 12 test clips each: the first one's task (the second is its 'other')."""
    table = synthesize(tmp_path_factory.mktemp("tiny"), preset=TINY, seed=1, machines=["SynFan", "SynValve"],
                       progress=False)
    return table, next(tasks(table))


def context(spec, table, seed=0):
    preset = spec.configure("quick", **SHORT.get(spec.family, {})) if spec.configure else "quick"
    ctx = BuildContext(preset=preset, seed=seed, device="cpu")
    return ctx, RootModels(table, ctx, lambda _m: None)


def fit(spec, tiny, seed=0, fitted=None):
    table, task = tiny
    members = {}
    for need in spec.needs:
        members[need] = fitted[need] if fitted is not None else fit(FAMILIES[need], tiny, seed)
    ctx, roots = context(spec, table, seed)
    return fit_family(spec, task, replace(ctx, root=roots.get(spec, task.part)), members=members)


@pytest.fixture(scope="module")
def fitted(tiny):
    """Every family fitted once on the tiny task (members before the families built on them)."""
    out = {}
    for family, spec in FAMILIES.items():
        out[family] = fit(spec, tiny, fitted=out)
    return out


PARAMS = pytest.mark.parametrize("family", list(FAMILIES))


@PARAMS
def test_fit_returns_self_and_scores_follow_the_contract(family, tiny, fitted):
    spec, det = FAMILIES[family], fitted[family]
    _, task = tiny
    assert isinstance(det, Detector)
    assert spec.score_key in det.score_names
    out = det.score_all(task.test)
    assert list(out) == list(det.score_names)
    for name, s in out.items():
        assert s.shape == (len(task.test),) and s.dtype == np.float64 and np.isfinite(s).all(), name
        assert det.train_scores_[name].shape == (len(task.train),)
        assert np.isfinite(det.thresholds_[name])
    np.testing.assert_array_equal(det.score_samples(task.test), out[det.score_key])
    for name, s in out.items():
        d = det.decision(s, name)
        assert d.dtype == np.int64 and set(d.tolist()) <= {0, 1}
        np.testing.assert_array_equal(d, (s > det.thresholds_[name]).astype(np.int64))
    assert det.threshold_ == det.thresholds_[det.score_key]
    assert det.machines_ == [task.machine] and det.n_train_ == len(task.train)
    # paths work as well as a table; a clip's score does not depend on the clips scored with it (up to the
    # float round-off of a network run on another batch size)
    np.testing.assert_allclose(det.score_samples(task.test["path"].tolist()[:3]), out[det.score_key][:3],
                               rtol=1e-3, atol=1e-6)


@PARAMS
def test_init_stores_settings_only(family):
    det = FAMILIES[family].build(BuildContext(device="cpu"))
    names = [p for p in inspect.signature(type(det).__init__).parameters if p != "self"]
    assert sorted(det.get_params()) == sorted(names)
    assert sorted(vars(det)) == sorted(names), "__init__ must store its settings and nothing else"
    assert type(det).__name__ in repr(det)


@PARAMS
def test_declared_capabilities_are_there(family, fitted):
    det = fitted[family]
    known = {"combine": "combine_scores", "target_prior": "prior_scores"}
    assert set(det.capabilities) <= set(known), det.capabilities
    for capability, method in known.items():
        assert (capability in det.capabilities) == callable(getattr(det, method, None)), (family, capability)


@PARAMS
def test_sklearn_clone_and_set_params(family, fitted):
    from sklearn.base import clone

    det = fitted[family]
    twin = clone(det)
    assert type(twin) is type(det) and twin is not det
    assert repr(twin.get_params(deep=False)) == repr(det.get_params(deep=False))
    with pytest.raises(NotFittedError):
        twin.check_fitted()
    name, value = next(iter(twin.get_params(deep=False).items()))
    assert twin.set_params(**{name: value}) is twin
    with pytest.raises(ConfigError, match="not a setting"):
        twin.set_params(no_such_setting=1)


@PARAMS
def test_same_seed_same_scores(family, tiny, fitted):
    _, task = tiny
    again = fit(FAMILIES[family], tiny, fitted=fitted)
    np.testing.assert_array_equal(again.score_samples(task.test), fitted[family].score_samples(task.test))
    for name in again.score_names:
        np.testing.assert_array_equal(again.train_scores_[name], fitted[family].train_scores_[name])


@PARAMS
def test_save_load_scores_bit_identically(family, tiny, fitted, tmp_path):
    _, task = tiny
    det = fitted[family]
    folder = det.save(tmp_path / family)
    back = Detector.load(folder)
    assert type(back) is type(det)
    assert back.thresholds_ == det.thresholds_ and back.machines_ == det.machines_
    a, b = det.score_all(task.test), back.score_all(task.test)
    for name in det.score_names:
        np.testing.assert_array_equal(a[name], b[name])
        np.testing.assert_array_equal(back.train_scores_[name], det.train_scores_[name])
    kept = {k: v for k, v in det.get_params().items() if k not in det.transient_params}
    assert repr({k: back.get_params()[k] for k in kept}) == repr(kept)
    assert type(det).load(folder).score_key == det.score_key
    assert not list(tmp_path.glob(".*"))                    # no temporary folder left behind


@PARAMS
def test_scoring_does_not_change_the_detector(family, tiny, fitted):
    _, task = tiny
    det = fitted[family]
    before = {k: copy.copy(v) for k, v in vars(det).items()}
    det.score_all(task.test)
    assert sorted(vars(det)) == sorted(before), "score_all must not add attributes (no caches)"
    for k, v in before.items():
        now = vars(det)[k]
        if isinstance(v, np.ndarray):
            np.testing.assert_array_equal(now, v)
        elif isinstance(v, dict) and all(isinstance(x, np.ndarray) for x in v.values()):
            assert sorted(now) == sorted(v) and all(np.array_equal(now[x], v[x]) for x in v)


@PARAMS
def test_unfitted_detector_says_so(family, tiny, tmp_path):
    _, task = tiny
    det = FAMILIES[family].build(BuildContext(device="cpu"))
    for call in (lambda: det.score_samples(task.test), lambda: det.score_all(task.test),
                 lambda: det.decision([0.0, 1.0]), lambda: det.save(tmp_path / "x")):
        with pytest.raises(NotFittedError, match="not fitted"):
            call()
    assert not (tmp_path / "x").exists()


@PARAMS
def test_bad_input_gives_an_asdkit_error_naming_the_argument(family, tiny, fitted):
    _, task = tiny
    det = FAMILIES[family].build(BuildContext(device="cpu"))
    with pytest.raises(ConfigError, match="train"):
        det.fit(task.train["path"].iloc[0])
    with pytest.raises(ConfigError, match="train"):
        det.fit(np.zeros((4, 16000), np.float32))
    with pytest.raises(ConfigError, match="train"):
        det.fit(task.train.drop(columns="path"))
    with pytest.raises(ConfigError, match="clips"):
        fitted[family].score_all(pd.DataFrame({"file": ["a.wav"]}))
    with pytest.raises(AsdkitError):
        fitted[family].decision(np.zeros((2, 2)))
