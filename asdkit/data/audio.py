"""Loading and shaping audio clips: ``load_clip -> standardize -> segment``.

Each step is a small function that can be tested and used alone; the feature
functions in :mod:`asdkit.features.spectra` take their output.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from asdkit.data.channels import select_channels
from asdkit.errors import AudioError, ConfigError

__all__ = ["SAMPLE_RATE", "load_clip", "standardize", "segment", "segment_starts"]

#: The sample rate of all DCASE Task 2 data, and asdkit's working rate.
SAMPLE_RATE = 16000


def load_clip(path: str | Path, *, sr: int = SAMPLE_RATE, resample: bool = False,
              channel: int | None = None, channels: str | None = None, min_seconds: float = 2.0) -> np.ndarray:
    """Read one clip as a validated float32 waveform.

    Parameters
    ----------
    path : path-like
        A wav (or any format libsndfile reads).
    sr : int, default 16000
        The sample rate the caller works at.
    resample : bool, default False
        If the file's rate differs from ``sr``: False refuses with an
        :class:`AudioError`; True resamples with :func:`librosa.resample`.
    channel : int, optional
        For a multi-channel file, the channel to keep (0 = first), whatever it holds.
    channels : str, optional
        The channel policy of :mod:`asdkit.data.channels`: ``"auto"``, ``"mono"``,
        ``"near"``, ``"far"``, ``"both"`` or ``"denoised"`` (the near microphone with
        the far one's noise cancelled). Every model reads clips through it. With
        neither ``channel`` nor ``channels`` a multi-channel file is refused.
    min_seconds : float, default 2.0
        Refuse clips shorter than this (one segment of the default features).

    Returns
    -------
    ndarray of shape (n_samples,), or (2, n_samples) for ``channels="both"``; float32

    Raises
    ------
    AudioError
        Missing, empty or corrupt file; wrong sample rate without ``resample``;
        a channel policy the file cannot meet (see :mod:`asdkit.data.channels`);
        several channels without ``channel``; shorter than ``min_seconds``;
        NaN or infinite samples. The message names the file and the fix.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{str(path)!r}: no such audio file. Check the path or re-scan the dataset root.")
    if path.stat().st_size == 0:
        raise AudioError(f"{str(path)!r}: the file is empty (0 bytes). Delete it and re-download or "
                         "re-generate the dataset.")
    try:
        data, file_sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        raise AudioError(f"{str(path)!r}: not a readable audio file ({e}). It may be truncated or "
                         "corrupt: delete it and re-download or re-generate the dataset.") from None
    if data.shape[0] == 0:
        raise AudioError(f"{str(path)!r}: the file holds no samples. Delete it and re-download or "
                         "re-generate the dataset.")
    if channels is not None:
        if not np.all(np.isfinite(data)):
            raise AudioError(f"{str(path)!r}: holds NaN or infinite samples. The file is damaged: "
                             "re-download or re-generate it.")
        if channel is not None:
            raise ConfigError("load_clip: pass channel (an index) or channels (a policy), not both.")
        y = select_channels(data, channels, path=str(path))
    elif data.shape[1] > 1:
        if channel is None:
            raise AudioError(f"{str(path)!r}: has {data.shape[1]} channels, DCASE clips are mono. "
                             "Pass channel=0 (or another index) to keep one channel, or a channel policy "
                             "channels='auto'|'near'|'far'|'both'|'denoised' (DCASE 2026 near/far microphones).")
        if not 0 <= channel < data.shape[1]:
            raise ConfigError(f"channel={channel} is out of range for {str(path)!r}, "
                              f"which has {data.shape[1]} channels.")
        y = data[:, channel]
    else:
        y = data[:, 0]
    if not np.all(np.isfinite(y)):
        raise AudioError(f"{str(path)!r}: holds NaN or infinite samples. The file is damaged: "
                         "re-download or re-generate it.")
    if file_sr != sr:
        if not resample:
            raise AudioError(f"{str(path)!r}: sample rate is {file_sr} Hz, asdkit works at {sr} Hz. "
                             "Pass resample=True to resample it, or convert the file.")
        import librosa

        y = librosa.resample(y, orig_sr=file_sr, target_sr=sr, axis=-1).astype(np.float32)
    if y.shape[-1] < int(round(min_seconds * sr)):
        raise AudioError(f"{str(path)!r}: is {y.shape[-1] / sr:.2f} s long, shorter than the "
                         f"{min_seconds:g} s needed. Remove it from the dataset or lower min_seconds.")
    return np.ascontiguousarray(y, dtype=np.float32)


def standardize(y: np.ndarray, *, axis: int = -1, eps: float = 1e-12) -> np.ndarray:
    """Scale a waveform to mean 0 and variance 1 (the report's amplitude standardisation).

    A silent (constant) clip becomes all zeros rather than NaN.

    Parameters
    ----------
    y : ndarray of shape (..., n_samples)
    axis : int, default -1
        The time axis.

    Returns
    -------
    ndarray, same shape, float32
    """
    y = np.asarray(y, dtype=np.float32)
    mean = y.mean(axis=axis, keepdims=True, dtype=np.float64)
    std = y.std(axis=axis, keepdims=True, dtype=np.float64)
    out = (y - mean) / np.where(std > eps, std, 1.0)
    return np.where(std > eps, out, 0.0).astype(np.float32)


def segment_starts(n_samples: int, *, segment_length: int, n_segments: int, align: int = 1) -> np.ndarray:
    """Start sample of each of ``n_segments`` evenly spaced segments.

    The first segment starts at 0 and the last ends at the clip's end (or, with
    ``align > 1``, less than ``align`` samples before it); segments overlap when
    ``n_segments * segment_length > n_samples`` (8 x 2 s in a 10 s clip).

    Parameters
    ----------
    n_samples, segment_length, n_segments : int
    align : int, default 1
        Round every start to a multiple of this many samples. The feature
        pipeline aligns starts to the STFT hop, so that overlapping segments
        share their STFT frames (a start moves by at most half a hop, 8 ms).
    """
    if n_samples < segment_length:
        raise AudioError(f"a clip of {n_samples} samples is shorter than one segment "
                         f"({segment_length} samples).")
    if n_segments < 1:
        raise ConfigError(f"n_segments must be at least 1, got {n_segments}.")
    if align < 1:
        raise ConfigError(f"align must be at least 1, got {align}.")
    last = (n_samples - segment_length) // align
    return (np.linspace(0, last, n_segments).round().astype(np.int64)) * align


def segment(y: np.ndarray, *, sr: int = SAMPLE_RATE, n_segments: int = 8,
            seconds: float = 2.0, align: int = 1) -> np.ndarray:
    """Cut a waveform into ``n_segments`` evenly spaced segments of ``seconds`` each.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
    sr : int, default 16000
    n_segments : int, default 8
    seconds : float, default 2.0
    align : int, default 1
        Round segment starts to multiples of this (see :func:`segment_starts`).

    Returns
    -------
    ndarray of shape (n_segments, round(seconds * sr))

    Examples
    --------
    >>> segment(np.zeros(160000, dtype=np.float32)).shape
    (8, 32000)
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ConfigError(f"segment() takes one mono waveform of shape (n_samples,), got shape {y.shape}.")
    length = int(round(seconds * sr))
    starts = segment_starts(y.shape[0], segment_length=length, n_segments=n_segments, align=align)
    idx = starts[:, None] + np.arange(length)[None, :]
    return y[idx]

