"""The channel policy (DCASE 2026 near/far microphones) from the file to the features."""
import numpy as np
import pytest

from asdkit import AudioError, ConfigError, load_clip
from asdkit.data.channels import CHANNELS, cancel_far_noise, check_channels, n_channels
from asdkit.features.cache import FeatureCache
from asdkit.features.spectra import extract, feature_config, feature_shape


@pytest.fixture
def stereo(write_wav, rng):
    near = 0.1 * rng.standard_normal(32000)
    far = 0.05 * rng.standard_normal(32000)
    return write_wav("section_00_source_train_normal_0000_noAttribute.wav", np.stack([near, far], 1)), near, far


@pytest.fixture
def mono(write_wav, rng):
    return write_wav("mono/section_00_source_train_normal_0001_noAttribute.wav", 0.1 * rng.standard_normal(32000))


def test_policies_read_the_right_channel(stereo):
    path, near, far = stereo
    q = 1 / 32768                                   # 16-bit PCM
    assert np.allclose(load_clip(path, channels="auto"), near, atol=q)
    assert np.allclose(load_clip(path, channels="near"), near, atol=q)
    assert np.allclose(load_clip(path, channels="far"), far, atol=q)
    both = load_clip(path, channels="both")
    assert both.shape == (2, 32000) and both.dtype == np.float32
    assert np.allclose(both, np.stack([near, far]), atol=q)
    assert load_clip(path, channels="denoised").shape == (32000,)


def test_mono_file_under_auto_and_mono(mono):
    assert load_clip(mono, channels="auto").shape == (32000,)
    assert np.array_equal(load_clip(mono, channels="mono"), load_clip(mono, channels="auto"))


@pytest.mark.parametrize("policy", ["near", "far", "both", "denoised"])
def test_mono_file_asked_for_two_channels_names_file_and_option(mono, policy):
    with pytest.raises(AudioError, match=rf"{mono.name}.*is mono.*channels='{policy}'.*channels='auto'"):
        load_clip(mono, channels=policy)


def test_stereo_file_where_mono_is_required(stereo):
    path = stereo[0]
    with pytest.raises(AudioError, match=rf"{path.name}.*two channels.*channels='mono'.*--channels"):
        load_clip(path, channels="mono")
    with pytest.raises(AudioError, match="2 channels.*channels='auto'"):
        load_clip(path)                              # no policy: refused as before, the message names the policies


@pytest.mark.parametrize("policy", ["far", "both", "denoised"])
def test_silent_far_channel_is_refused_where_it_is_read(write_wav, rng, policy):
    y = np.stack([0.1 * rng.standard_normal(32000), np.zeros(32000)], 1)
    path = write_wav("silent_far.wav", y)
    with pytest.raises(AudioError, match=r"silent_far.wav.*far microphone \(channel 1\) is silent.*channels='near'"):
        load_clip(path, channels=policy)
    assert load_clip(path, channels="near").shape == (32000,)       # the near one alone is fine


def test_three_channels_and_bad_policy(write_wav, rng):
    path = write_wav("three.wav", 0.1 * rng.standard_normal((32000, 3)))
    with pytest.raises(AudioError, match="3 channels"):
        load_clip(path, channels="near")
    with pytest.raises(ConfigError, match="channels='left'.*auto"):
        check_channels("left")
    with pytest.raises(ConfigError, match="not both"):
        load_clip(path, channel=0, channels="near")
    assert [n_channels(c) for c in CHANNELS] == [1, 1, 1, 1, 2, 1]


def test_canceller_subtracts_the_noise_the_far_microphone_hears_and_keeps_the_machine(rng):
    sr, n = 16000, 5 * 16000
    t = np.arange(n) / sr
    machine = np.sin(2 * np.pi * 440 * t) + 0.5 * np.sin(2 * np.pi * 1320 * t)
    noise = rng.standard_normal(n) * (1 + 2 * (np.sin(2 * np.pi * 0.5 * t) > 0.7))   # with loud passages
    near = machine + 1.0 * np.roll(noise, 40)                 # the path to the near microphone: 2.5 ms
    far = 0.1 * machine + 3.0 * noise                         # the machine leaks into the far microphone
    out = cancel_far_noise(near.astype(np.float32), far.astype(np.float32))
    core = slice(2048, n - 2048)

    def snr(y):
        err = y[core] - machine[core] * (y[core] @ machine[core]) / (machine[core] @ machine[core])
        return 10 * np.log10(np.sum(machine[core] ** 2) / np.sum(err ** 2))

    assert snr(out) > snr(near) + 6                            # most of the noise is gone
    spec = lambda y: np.abs(np.fft.rfft(y[core]))              # noqa: E731
    tones = [int(round(f * (n - 4096) / sr)) for f in (440, 1320)]
    kept = spec(out)[tones] / spec(near)[tones]
    assert np.all(kept > 0.85)                                 # the machine's tones are not subtracted with it


def test_features_and_cache_keep_the_channels_apart(stereo, tmp_path):
    path = stereo[0]
    cache = FeatureCache(tmp_path / "cache")
    cfg = feature_config("quick")
    near = extract([path], config=feature_config(cfg, channels="near"), cache=cache)
    far = extract([path], config=feature_config(cfg, channels="far"), cache=cache)
    both = extract([path], config=feature_config(cfg, channels="both"), cache=cache)
    assert cache.misses == 3 and cache.hits == 0               # three entries: the key holds the policy
    assert both.shape == (1, cfg.n_segments, 2, cfg.n_mels, cfg.n_frames)
    assert feature_shape("log_mel", feature_config(cfg, channels="both")) == (2, cfg.n_mels, cfg.n_frames)
    assert np.array_equal(both[:, :, 0], near) and np.array_equal(both[:, :, 1], far)
    assert not np.allclose(near, far)
    again = extract([path], config=feature_config(cfg, channels="both"), cache=cache)
    assert cache.hits == 1 and np.array_equal(again, both)
    # the torch path on a (batch, 2, n) batch equals each channel computed alone
    for kind in ("fft", "phase"):
        b = extract([path], kind=kind, config=feature_config(cfg, channels="both"))
        f = extract([path], kind=kind, config=feature_config(cfg, channels="far"))
        assert np.allclose(b[:, :, 1], f, atol=1e-5)
