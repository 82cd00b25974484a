"""Which microphone(s) of a clip the pipeline reads: the channel policy.

DCASE Task 2 clips of 2020-2025 are mono. From 2026 every clip has two
channels recorded at once: channel 0 (left) by a microphone **near** the
machine, channel 1 (right) by one **far** from it, which hears relatively more
of the environment's noise and less of the machine. The organisers' 2026
baseline reads channel 0 only.

Every model and feature function takes ``channels``, one of:

``"auto"`` (default)
    A mono file is read as it is; a two-channel file gives its near
    microphone (channel 0), as the organisers' baseline does. Works for every year.
``"mono"``
    The file must be mono (2020-2025); a two-channel file is an error.
``"near"``, ``"far"``
    The file must have two channels; one of them is read.
``"both"``
    The file must have two channels; both are read, shape ``(2, n)``, and the
    models take the far one as a second input channel (a noise reference).
``"denoised"``
    The file must have two channels; the near channel with the noise the far
    channel hears subtracted (spectral subtraction, :func:`cancel_far_noise`),
    one waveform. Every model family can use it unchanged.

A request the file cannot meet (a mono file asked for ``"far"``, a stereo file
under ``"mono"``, a silent far channel asked for ``"far"``/``"both"``/
``"denoised"``) raises :class:`~asdkit.errors.AudioError` naming the file and
the option.
"""
from __future__ import annotations

import numpy as np

from asdkit.errors import AudioError, ConfigError

__all__ = ["CHANNELS", "CHANNELS_BY_YEAR", "NEAR", "FAR", "check_channels", "n_channels", "select_channels",
           "cancel_far_noise"]

#: The channel policies (see the module's documentation).
CHANNELS = ("auto", "mono", "near", "far", "both", "denoised")
#: Channel index of the near and the far microphone in DCASE 2026 files.
NEAR, FAR = 0, 1
#: Channels per clip of each DCASE Task 2 year.
CHANNELS_BY_YEAR = {2020: 1, 2021: 1, 2022: 1, 2023: 1, 2024: 1, 2025: 1, 2026: 2}
#: Below this RMS a channel counts as silent.
SILENT_RMS = 1e-7


def check_channels(channels: str, *, name: str = "channels") -> str:
    """Return ``channels`` if it is one of :data:`CHANNELS`, else raise ConfigError naming ``name``."""
    if channels not in CHANNELS:
        raise ConfigError(f"{name}={channels!r} is not a channel policy; choose one of {list(CHANNELS)} "
                          "('auto' reads mono files as they are and the near microphone of two-channel files).")
    return channels


def n_channels(channels: str) -> int:
    """Input channels a model sees under a policy: 2 for ``"both"``, else 1."""
    return 2 if check_channels(channels) == "both" else 1


def cancel_far_noise(near: np.ndarray, far: np.ndarray, *, n_fft: int = 1024, hop_length: int = 256,
                     quantile: float = 0.2, smooth_bins: int = 33, floor_db: float = -20.0) -> np.ndarray:
    """The near channel with the noise that the far channel hears subtracted (spectral subtraction).

    The far microphone hears mostly the environment, so its power spectrogram
    ``|F|^2``, scaled by how much weaker the near microphone hears that noise,
    estimates the noise in the near channel: ``|N|^2 - c(f) |F|^2``, floored at
    ``floor_db`` below ``|N|^2``, with the near channel's phase, back to a waveform.

    The scale ``c(f)`` is estimated from the clip itself, robustly against the
    machine: per frequency bin, a low ``quantile`` over time of ``|N|^2 / |F|^2``
    (frames where the noise dominates the near channel too: impacts, loud
    passages), then a running median over ``smooth_bins`` bins, so that the
    machine's own tones, which also leak into the far channel but occupy few
    bins, do not raise it. (A complex least-squares canceller per bin would
    cancel those tones along with the noise.)

    Parameters
    ----------
    near, far : ndarray of shape (n_samples,)
    n_fft, hop_length : int
        STFT window and hop (64 ms / 16 ms at 16 kHz).
    quantile : float, default 0.2
    smooth_bins : int, default 33
        Width (odd) of the running median over frequency (about 500 Hz).
    floor_db : float, default -20
        The most any time-frequency bin is attenuated.

    Returns
    -------
    ndarray of shape (n_samples,), float32
    """
    import librosa
    from scipy.ndimage import median_filter

    near = np.asarray(near, dtype=np.float32)
    far = np.asarray(far, dtype=np.float32)
    if near.shape != far.shape or near.ndim != 1:
        raise ConfigError(f"cancel_far_noise takes two waveforms of one shape (n,), got {near.shape} and {far.shape}.")
    N = librosa.stft(near, n_fft=n_fft, hop_length=hop_length)
    pn = np.abs(N).astype(np.float64) ** 2 + 1e-20
    pf = np.abs(librosa.stft(far, n_fft=n_fft, hop_length=hop_length)).astype(np.float64) ** 2 + 1e-20
    ratio = np.quantile(np.log(pn / pf), quantile, axis=1)
    scale = np.exp(median_filter(ratio, size=smooth_bins, mode="nearest"))[:, None]
    gain = np.sqrt(np.maximum(1.0 - scale * pf / pn, 10 ** (floor_db / 10)))
    out = librosa.istft(N * gain, hop_length=hop_length, n_fft=n_fft, length=near.shape[0])
    return out.astype(np.float32)


def select_channels(data: np.ndarray, channels: str, *, path: str = "") -> np.ndarray:
    """Apply a channel policy to a file's samples.

    Parameters
    ----------
    data : ndarray of shape (n_samples, n_channels)
        As :func:`soundfile.read` with ``always_2d=True`` returns it.
    channels : one of :data:`CHANNELS`
    path : str
        The file, named in error messages.

    Returns
    -------
    ndarray of shape (n_samples,), or (2, n_samples) for ``"both"``; float32
    """
    check_channels(channels)
    where = repr(str(path)) if path else "the clip"
    have = data.shape[1]
    if have > 2:
        raise AudioError(f"{where}: has {have} channels; DCASE clips have one (2020-2025) or two (2026, near and far "
                         "microphones). Convert the file, or pass another file.")
    if have == 1:
        if channels in ("auto", "mono"):
            return np.ascontiguousarray(data[:, 0], dtype=np.float32)
        raise AudioError(f"{where}: is mono, but channels={channels!r} needs the two-channel (near/far microphone) "
                         "clips of DCASE 2026. Pass channels='auto' (or --channels auto) for mono data.")
    if channels == "mono":
        raise AudioError(f"{where}: has two channels (near and far microphones, DCASE 2026), but channels='mono' "
                         "requires mono clips. Pass channels='auto' or 'near' (the organisers' choice), 'far', "
                         "'both' or 'denoised' (or --channels ...).")
    near = np.ascontiguousarray(data[:, NEAR], dtype=np.float32)
    if channels in ("auto", "near"):
        return near
    far = np.ascontiguousarray(data[:, FAR], dtype=np.float32)
    if np.sqrt(np.mean(np.square(far, dtype=np.float64))) < SILENT_RMS:
        raise AudioError(f"{where}: the far microphone (channel 1) is silent, so channels={channels!r} has nothing "
                         "to read. The file may be a mono recording stored as stereo: pass channels='near'.")
    if channels == "far":
        return far
    if channels == "both":
        return np.stack([near, far])
    return cancel_far_noise(near, far)
