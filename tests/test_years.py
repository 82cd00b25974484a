"""DCASE 2025 and 2026 data end to end: the synthetic years, every model family on two channels, supplemental clips."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from asdkit import AudioError, DatasetError, scan_root
from asdkit.data.channels import cancel_far_noise
from asdkit.data.supplemental import apply_supplemental, as_normals, mix_noise, supplemental_rows
from asdkit.synth.dataset import SynthPreset, synthesize
from asdkit.synth.years import SCENES_BY_DOMAIN, generate_two_channel, n_supplemental

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = SynthPreset(n_source_train=16, n_target_train=4, n_test_per_cell=3, clip_seconds=3.0)


def _hashes(root: Path, skip: str | None = None) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and (skip is None or skip not in p.parts)}


@pytest.fixture(scope="module")
def table2026(tmp_path_factory):
    return synthesize(tmp_path_factory.mktemp("y2026"), preset=TINY, seed=0, progress=False, year=2026)


@pytest.fixture(scope="module")
def table2025(tmp_path_factory):
    return synthesize(tmp_path_factory.mktemp("y2025"), preset=TINY, seed=0, progress=False, year=2025)


# --------------------------------------------------------------------------- the synthetic years


def test_2026_clips_are_two_channel_with_a_scene_per_domain(table2026):
    root = Path(table2026.attrs["root"])
    info = sf.info(table2026["path"][0])
    assert (info.channels, info.samplerate, info.subtype) == (2, 16000, "PCM_16")
    t = scan_root(root)
    assert len(t) == len(table2026) == 4 * (16 + 4 + 12)
    fan = t[t["machine"] == "SynFan"]
    for domain, scenes in SCENES_BY_DOMAIN.items():
        assert {a["noise"] for a in fan[fan["domain"] == domain]["attributes"]} == set(scenes)
    # concealed attributes stay concealed
    assert all(a == {} for a in t[t["machine"] == "SynValve"]["attributes"])


def test_2026_same_seed_same_bytes_and_default_unchanged(table2026, tmp_path):
    root = Path(table2026.attrs["root"])
    synthesize(tmp_path / "again", preset=TINY, seed=0, progress=False, year=2026, machines=["SynPress"])
    ours = _hashes(tmp_path / "again")
    theirs = {k: v for k, v in _hashes(root).items() if "SynPress" in k}
    assert ours == theirs
    synthesize(tmp_path / "y2024", preset=TINY, seed=0, progress=False, year=2024, machines=["SynPress"])
    synthesize(tmp_path / "default", preset=TINY, seed=0, progress=False, machines=["SynPress"])
    assert _hashes(tmp_path / "y2024") == _hashes(tmp_path / "default")


def test_far_microphone_hears_the_machine_weaker_and_the_noise_stronger():
    # an anomaly draws on its own stream: the twin with and without it differ by the machine's fault alone
    share = {"near": [], "far": []}
    for seed in range(4):
        normal = generate_two_channel("SynFan", rng=seed, seconds=3.0)
        fault = generate_two_channel("SynFan", label="anomaly", anomaly="imbalance", severity=1.0, rng=seed,
                                     seconds=3.0)
        for ch, name in enumerate(("near", "far")):
            share[name].append(np.sum((fault[ch] - normal[ch]) ** 2) / np.sum(normal[ch] ** 2))
    assert np.median(share["far"]) < 0.1 * np.median(share["near"])


def test_the_noise_varies_by_domain_and_the_canceller_finds_it():
    removed = {}
    for domain in ("source", "target"):
        out = []
        for seed in range(4):
            near, far = generate_two_channel("SynGearbox", domain=domain, rng=seed, seconds=3.0)
            clean = cancel_far_noise(near, far)
            out.append(1 - np.sum(clean.astype(float) ** 2) / np.sum(near.astype(float) ** 2))
        removed[domain] = np.mean(out)
    assert 0.05 < removed["source"] < removed["target"]      # the target domain's scene is louder


def test_2025_adds_supplemental_clips_and_keeps_every_other_byte(table2025, tmp_path):
    root = Path(table2025.attrs["root"])
    t = scan_root(root)
    sup = t[t["split"] == "supplemental"]
    n = n_supplemental(TINY)
    assert sup.groupby(["machine", "label"]).size().to_dict() == {
        (m, k): n for m in ("SynFan", "SynGearbox", "SynPress", "SynValve") for k in ("machine", "noise")}
    assert sf.info(sup["path"].iloc[0]).channels == 1
    synthesize(tmp_path / "default", preset=TINY, seed=0, progress=False)
    assert _hashes(root, skip="supplemental") == _hashes(tmp_path / "default")


def test_synth_year_is_checked(tmp_path):
    from asdkit import ConfigError

    with pytest.raises(ConfigError, match="2025 or 2026"):
        synthesize(tmp_path, preset=TINY, year=2023, progress=False)


# --------------------------------------------------------------------------- every model family on two channels


@pytest.fixture(scope="module")
def gearbox2026(table2026):
    t = scan_root(Path(table2026.attrs["root"]))
    train = t[(t["machine"] == "SynGearbox") & (t["split"] == "train")].reset_index(drop=True)
    test = t[(t["machine"] == "SynGearbox") & (t["split"] == "test")].reset_index(drop=True)
    others = t[(t["machine"] != "SynGearbox") & (t["split"] == "train")].reset_index(drop=True)
    return train, test, others


@pytest.mark.parametrize("channels", ["both", "denoised", "far"])
def test_reference_and_baseline_read_the_policy(gearbox2026, channels, tmp_path):
    from asdkit.models.base import Detector
    from asdkit.models.baseline import AutoencoderBaseline, baseline_config
    from asdkit.models.reference import ReferenceKNN

    train, test, _ = gearbox2026
    ref = ReferenceKNN(channels=channels).fit(train)
    assert ref.mean_.shape == ((4 if channels == "both" else 2) * ref.n_mels,)
    cfg = baseline_config("quick", epochs=2, channels=channels)
    det = AutoencoderBaseline(preset=cfg, seed=0, device="cpu").fit(train)
    assert det.model_.input_dim == cfg.n_frames * cfg.n_mels * (2 if channels == "both" else 1)
    scores = det.score_all(test)
    assert all(np.isfinite(v).all() and v.shape == (len(test),) for v in scores.values())
    if channels == "both":                                   # the policy is saved with the detector
        det.save(tmp_path / "b")
        back = Detector.load(tmp_path / "b")
        assert back.config_.channels == "both"
        assert np.allclose(back.score_all(test)["mahala"], scores["mahala"])


def test_oevae_takes_the_far_microphone_as_a_second_input_channel(gearbox2026):
    from asdkit.models.oevae import OEVAEDetector, oevae_config

    train, test, others = gearbox2026
    cfg = oevae_config("quick", epochs=1, channels="both")
    det = OEVAEDetector(preset=cfg, seed=0, device="cpu").fit(train, outliers=others)
    assert det.net_.extractor.stem[0].in_channels == 2
    assert np.isfinite(det.score_samples(test)).all()


def test_classifier_takes_both_microphones_in_every_branch(gearbox2026):
    import torch

    from asdkit.models.classifier import ClassifierDetector, classifier_config, train_classifier

    train, test, _ = gearbox2026
    cfg = classifier_config("quick", epochs=1, channels="both")
    model = train_classifier(train, preset=cfg, seed=0, device="cpu")
    net = model.net
    x = torch.zeros(3, 2, cfg.feature_config.segment_length)
    inputs = net.inputs(x)
    assert inputs["mel"].shape[1] == 2 and inputs["phase"].shape[1] == 4 and inputs["fft"].shape[1] == 2
    det = ClassifierDetector(preset=cfg, seed=0, device="cpu", models=[model]).fit(train)
    assert np.isfinite(det.score_samples(test)).all()


def test_a_mono_root_asked_for_the_far_microphone_fails_clearly(quick_table):
    from asdkit.models.reference import ReferenceKNN

    fan = quick_table[(quick_table.machine == "SynFan") & (quick_table.split == "train")]
    with pytest.raises(AudioError, match=r"section_00_.*\.wav.*is mono.*channels='far'"):
        ReferenceKNN(channels="far").fit(fan)


# --------------------------------------------------------------------------- supplemental clips in training


def test_mix_noise_replaces_a_share_at_the_asked_ratio(table2025, tmp_path):
    t = scan_root(Path(table2025.attrs["root"]))
    train = t[(t["machine"] == "SynFan") & (t["split"] == "train")].reset_index(drop=True)
    noise = supplemental_rows(t, "SynFan", "dev", "noise")
    mixed = mix_noise(train, noise, tmp_path / "mix", fraction=0.5, snr_db=(10.0, 10.0), seed=1)
    changed = mixed["mixed_noise"] != ""
    assert 0 < changed.sum() < len(train) and (mixed.loc[~changed, "path"] == train.loc[~changed, "path"]).all()
    i = int(np.flatnonzero(changed)[0])
    y, _ = sf.read(train["path"][i])
    m, _ = sf.read(mixed["path"][i])
    assert Path(mixed["path"][i]).name == train["file"][i]          # same name: same domain and attributes
    snr = 10 * np.log10(np.sum(y ** 2) / np.sum((m - y) ** 2))
    assert abs(snr - 10.0) < 0.5
    again = mix_noise(train, noise, tmp_path / "mix2", fraction=0.5, snr_db=(10.0, 10.0), seed=1)
    assert (again["mixed_noise"] == mixed["mixed_noise"]).all()


def test_machine_only_clips_as_normals_and_the_whole_table(table2025, tmp_path):
    t = scan_root(Path(table2025.attrs["root"]))
    extra = as_normals(supplemental_rows(t, "SynFan", "dev", "machine"))
    assert set(extra["split"]) == {"train"} and set(extra["label"]) == {"normal"}
    with pytest.raises(DatasetError, match="noise-only"):
        as_normals(supplemental_rows(t, "SynFan", "dev", "noise"))
    both = apply_supplemental(t, ["machine", "noise"], out=tmp_path / "sup", seed=0)
    train = both[both["split"] == "train"]
    assert len(train) == len(t[t["split"] == "train"]) + 4 * n_supplemental(TINY)
    assert (both[both["split"] == "test"]["path"].to_numpy() == t[t["split"] == "test"]["path"].to_numpy()).all()


def test_oevae_attribute_values_centre_machine_only_normals(table2025):
    from asdkit.models.oevae.attributes import attribute_values

    t = scan_root(Path(table2025.attrs["root"]))
    train = t[(t["machine"] == "SynFan") & (t["split"] == "train")]
    extra = as_normals(supplemental_rows(t, "SynFan", "dev", "machine"))
    plain = attribute_values(train)
    joint = attribute_values(pd.concat([train, extra], ignore_index=True))
    assert joint.k == plain.k                                  # k from the clips' own values only
    assert np.allclose(joint.v[len(train):], joint.v[len(train):][0])
    broken = train.copy()
    broken.at[broken.index[0], "attributes"] = {}
    with pytest.raises(DatasetError, match="missing"):
        attribute_values(broken)


def test_run_with_supplemental_and_channels_records_them(table2025, tmp_path):
    import json

    from asdkit.experiments.run import run_experiment

    res = run_experiment(table2025.attrs["root"], systems=["reference-knn"], out=tmp_path / "run", plots=False,
                         log=None, supplemental=["noise"], machines=["SynFan"])
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["supplemental"] == ["noise"] and config["channels"] == "auto"
    assert any((tmp_path / "run" / ".supplemental").rglob("*.wav"))
    assert "supplemental clips: noise" in (tmp_path / "run" / "results.md").read_text()
    assert not res.table.empty
