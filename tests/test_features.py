import numpy as np
import pytest
import torch

from asdkit import ConfigError
from asdkit.features.cache import FeatureCache
from asdkit.features.spectra import (
    FEATURE_PRESETS,
    LOG_MEL_TOLERANCE_DB,
    PHASE_TOLERANCE_RAD,
    TOLERANCE_RANGE_DB,
    TorchFeatures,
    clip_segments,
    extract,
    feature_config,
    feature_shape,
    fft_spectrum,
    log_mel,
    phase_spectrum,
)


def signals(rng, n=32000):
    t = np.arange(n) / 16000
    return np.stack([
        rng.standard_normal(n),                                   # white noise
        1e-3 * rng.standard_normal(n),                            # quiet
        np.sin(2 * np.pi * 440 * t) + 0.3 * np.sin(2 * np.pi * 3100 * t),  # tones
        np.r_[np.zeros(n // 2), rng.standard_normal(n - n // 2)],  # silence then noise
    ]).astype(np.float32)


def test_paper_shapes():
    cfg = FEATURE_PRESETS["paper"]
    assert (cfg.n_fft, cfg.hop_length, cfg.n_mels, cfg.fmin, cfg.fmax) == (1024, 256, 224, 50.0, 7800.0)
    assert cfg.n_fft / cfg.sr == 0.064 and cfg.hop_length / cfg.sr == 0.016
    assert feature_shape("log_mel", cfg) == (224, 126)
    assert feature_shape("phase", cfg) == (513, 126)
    assert feature_shape("fft", cfg) == (16001,)


@pytest.mark.parametrize("preset", ["paper", "quick"])
def test_torch_log_mel_matches_librosa(rng, preset):
    cfg = FEATURE_PRESETS[preset]
    y = signals(rng)
    ref = log_mel(y, config=cfg)
    got = TorchFeatures(cfg).log_mel(torch.from_numpy(y)).numpy()
    assert got.shape == ref.shape == (4, cfg.n_mels, 126)
    peak = ref.max(axis=(-1, -2), keepdims=True)
    inside = ref > peak - TOLERANCE_RANGE_DB
    assert inside.mean() > 0.5
    assert np.abs(got - ref)[inside].max() < LOG_MEL_TOLERANCE_DB


def test_torch_phase_and_fft_match_numpy(rng):
    import librosa

    cfg = FEATURE_PRESETS["quick"]
    y = signals(rng)
    tf = TorchFeatures(cfg)
    p_ref, p = phase_spectrum(y, config=cfg), tf.phase(torch.from_numpy(y)).numpy()
    mag = np.abs(librosa.stft(y, n_fft=1024, hop_length=256, pad_mode="constant"))
    strong = mag > 1e-3 * mag.max(axis=(-1, -2), keepdims=True)
    assert p.shape == p_ref.shape == (4, 513, 126)
    assert np.abs(np.angle(np.exp(1j * (p - p_ref))))[strong].max() < PHASE_TOLERANCE_RAD
    f_ref, f = fft_spectrum(y), tf.fft(torch.from_numpy(y)).numpy()
    assert np.allclose(f, f_ref, rtol=1e-4, atol=1e-3 * f_ref.max())


def test_log_mel_of_silence_is_finite():
    out = log_mel(np.zeros((1, 32000), np.float32), config=FEATURE_PRESETS["quick"])
    assert np.isfinite(out).all() and out.max() == pytest.approx(-100.0)


def test_feature_config_validation():
    with pytest.raises(ConfigError):
        feature_config("huge")
    with pytest.raises(ConfigError):
        feature_config("paper", fmax=9000.0)
    assert feature_config("paper", n_mels=128).n_mels == 128


@pytest.fixture
def clips(write_wav, rng):
    return [write_wav(f"c{i}.wav", 0.2 * rng.standard_normal(16000 * 10)) for i in range(3)]


@pytest.mark.parametrize("kind", ["log_mel", "fft", "phase"])
def test_extract_matches_per_clip_reference(clips, kind):
    from asdkit.data.audio import load_clip

    cfg = FEATURE_PRESETS["quick"]
    X = extract(clips, kind=kind, config=cfg, batch_size=2)
    assert X.shape == (3, 8, *feature_shape(kind, cfg))
    segs = clip_segments(load_clip(clips[1]), config=cfg)
    ref = {"log_mel": lambda s: log_mel(s, config=cfg), "fft": fft_spectrum,
           "phase": lambda s: phase_spectrum(s, config=cfg)}[kind](segs)
    if kind == "phase":
        assert np.median(np.abs(np.angle(np.exp(1j * (X[1] - ref))))) < 1e-4
    else:
        assert np.allclose(X[1], ref, rtol=1e-3, atol=1e-2)


def test_extract_bad_arguments(clips):
    with pytest.raises(ConfigError):
        extract(clips, kind="mfcc")
    with pytest.raises(ConfigError):
        extract(str(clips[0]))


def test_cache_reuses_and_is_keyed_by_config_and_content(clips, tmp_path, write_wav, rng):
    cfg = FEATURE_PRESETS["quick"]
    cache = FeatureCache(tmp_path / "cache")
    first = extract(clips, config=cfg, cache=cache)
    assert cache.misses == 3 and cache.hits == 0
    again = extract(clips, config=cfg, cache=FeatureCache(tmp_path / "cache"))
    # a miss returns what a hit returns (float16 storage): results do not depend on the cache's state
    np.testing.assert_array_equal(again, first)
    # ... and float16 storage costs below 0.02 dB for levels within +-64 dB against the uncached features
    plain = extract(clips, config=cfg)
    assert np.abs(plain - first).max() < 0.07
    assert np.abs(plain - first)[np.abs(first) < 64].max() < 0.02
    other = FeatureCache(tmp_path / "cache")
    extract(clips, config=feature_config("quick", n_mels=32), cache=other)
    assert other.hits == 0                                  # another config misses
    # the same content under another name hits, other content misses
    copy = tmp_path / "copy.wav"
    copy.write_bytes(clips[0].read_bytes())
    c2 = FeatureCache(tmp_path / "cache")
    extract([copy, write_wav("new.wav", 0.2 * rng.standard_normal(16000 * 10))], config=cfg, cache=c2)
    assert (c2.hits, c2.misses) == (1, 1)
    assert not list((tmp_path / "cache").rglob("*.tmp"))


@pytest.mark.parametrize("n_samples", [160000, 192000, 161234, 32000])
@pytest.mark.parametrize("kind", ["log_mel", "phase", "fft"])
def test_shared_frame_clip_path_equals_per_segment_reference(rng, n_samples, kind):
    """TorchFeatures.clips shares STFT frames between overlapping segments; the result must not change."""
    cfg = FEATURE_PRESETS["paper"]
    y = (0.3 * rng.standard_normal(n_samples) + np.sin(0.05 * np.arange(n_samples))).astype(np.float32)
    got = TorchFeatures(cfg).clips(torch.from_numpy(np.stack([y, 3 * y - 1])), kind).numpy()
    segs = clip_segments(y, config=cfg)
    assert got.shape == (2, 8, *feature_shape(kind, cfg))
    if kind == "log_mel":
        ref = log_mel(segs, config=cfg)
        inside = ref > ref.max(axis=(-1, -2), keepdims=True) - TOLERANCE_RANGE_DB
        for g in got:  # standardisation makes both clips the same
            assert np.abs(g - ref)[inside].max() < LOG_MEL_TOLERANCE_DB
    elif kind == "phase":
        ref = phase_spectrum(segs, config=cfg)
        assert np.median(np.abs(np.angle(np.exp(1j * (got[0] - ref))))) < 1e-5
    else:
        ref = fft_spectrum(segs)
        assert np.allclose(got[0], ref, rtol=1e-4, atol=1e-4 * ref.max())
