import numpy as np
import pytest

from asdkit import AudioError
from asdkit.data.audio import load_clip, segment, segment_starts, standardize


def test_load_valid_clip(write_wav, rng):
    y = 0.1 * rng.standard_normal(16000 * 3)
    x = load_clip(write_wav("ok.wav", y))
    assert x.dtype == np.float32 and x.shape == (48000,)
    assert np.allclose(x, y, atol=1 / 32768 + 1e-6)


def test_empty_file(tmp_path):
    p = tmp_path / "empty.wav"
    p.write_bytes(b"")
    with pytest.raises(AudioError, match="empty.wav.*empty"):
        load_clip(p)


def test_corrupt_file(tmp_path, write_wav, rng):
    p = write_wav("cut.wav", 0.1 * rng.standard_normal(48000))
    (tmp_path / "junk.wav").write_bytes(b"RIFF\x00\x00junk" * 10)
    with pytest.raises(AudioError, match="junk.wav.*not a readable audio file"):
        load_clip(tmp_path / "junk.wav")
    p.write_bytes(p.read_bytes()[:30])  # header cut short
    with pytest.raises(AudioError, match="cut.wav"):
        load_clip(p)


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match="no such audio file"):
        load_clip(tmp_path / "nope.wav")


def test_wrong_sample_rate_refused_or_resampled(write_wav, rng):
    p = write_wav("sr.wav", 0.1 * rng.standard_normal(44100 * 3), sr=44100)
    with pytest.raises(AudioError, match="44100 Hz.*resample=True"):
        load_clip(p)
    y = load_clip(p, resample=True)
    assert abs(y.shape[0] - 48000) <= 1


def test_multichannel_refused_or_channel_taken(write_wav, rng):
    y = 0.1 * rng.standard_normal((48000, 2))
    p = write_wav("stereo.wav", y)
    with pytest.raises(AudioError, match="2 channels.*channel=0"):
        load_clip(p)
    right = load_clip(p, channel=1)
    assert np.allclose(right, y[:, 1], atol=1e-4)


def test_too_short(write_wav):
    with pytest.raises(AudioError, match="short.wav.*1.00 s.*shorter"):
        load_clip(write_wav("short.wav", np.zeros(16000)))


def test_nan_samples(write_wav, rng):
    y = rng.standard_normal(48000).astype(np.float32)
    y[100] = np.nan
    with pytest.raises(AudioError, match="nan.wav.*NaN"):
        load_clip(write_wav("nan.wav", y, subtype="FLOAT"))


def test_standardize(rng):
    y = 3 + 5 * rng.standard_normal((2, 10000))
    z = standardize(y)
    assert np.allclose(z.mean(-1), 0, atol=1e-5) and np.allclose(z.std(-1), 1, atol=1e-4)
    silent = standardize(np.full(1000, 0.3))
    assert np.all(silent == 0) and not np.isnan(silent).any()


def test_segment_even_and_overlapping():
    y = np.arange(160000, dtype=np.float32)
    s = segment(y)
    assert s.shape == (8, 32000)
    assert s[0, 0] == 0 and s[-1, -1] == 159999
    starts = s[:, 0]
    assert np.allclose(np.diff(starts), np.diff(starts).mean(), atol=1)
    assert segment(np.arange(32000.0)).shape == (8, 32000)  # exactly one segment long: repeated


def test_segment_errors():
    with pytest.raises(AudioError):
        segment_starts(100, segment_length=200, n_segments=2)
    with pytest.raises(ValueError):
        segment(np.zeros((2, 40000)))


def test_segment_starts_aligned_to_hop():
    starts = segment_starts(160000, segment_length=32000, n_segments=8, align=256)
    assert starts[0] == 0 and starts[-1] == 128000
    assert (starts % 256 == 0).all()
    even = segment_starts(160000, segment_length=32000, n_segments=8)
    assert np.abs(starts - even).max() <= 128
    odd = segment_starts(161234, segment_length=32000, n_segments=8, align=256)
    assert (odd % 256 == 0).all() and 161234 - 256 < odd[-1] + 32000 <= 161234
