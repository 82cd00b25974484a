"""Spectral features of 2-s segments: log-mel, FFT magnitude and STFT phase.

Two paths compute the same thing:

* numpy/librosa functions (:func:`log_mel`, :func:`fft_spectrum`,
  :func:`phase_spectrum`) for one clip or a small array, the reference;
* :class:`TorchFeatures`, a batched torch module that runs on CPU or GPU and
  matches librosa within :data:`LOG_MEL_TOLERANCE_DB` over the top
  :data:`TOLERANCE_RANGE_DB` of each segment (shown in the tests).

:func:`extract` chains ``load_clip -> standardize -> segment -> feature`` over a
clip table in batches, with an optional on-disk :class:`~asdkit.features.cache.FeatureCache`.

The report's settings (:data:`FEATURE_PRESETS` ``"paper"``): 16 kHz, eight 2-s
segments per clip, 64 ms Hann window (``n_fft = 1024``), 16 ms hop (256),
224 mel bands between 50 and 7800 Hz, power spectrogram in dB
(``10 log10(max(S, 1e-10))``). A 2-s segment gives 126 frames.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
import torch

from asdkit.data.audio import SAMPLE_RATE, load_clip, segment, segment_starts, standardize
from asdkit.data.channels import check_channels
from asdkit.errors import ConfigError
from asdkit.presets import named_preset

__all__ = [
    "FeatureConfig", "FEATURE_PRESETS", "feature_config", "KINDS", "LOG_MEL_TOLERANCE_DB",
    "TOLERANCE_RANGE_DB", "PHASE_TOLERANCE_RAD",
    "log_mel", "fft_spectrum", "phase_spectrum", "feature_shape",
    "TorchFeatures", "clip_segments", "extract", "clip_paths",
]

#: Largest absolute difference (dB) between the torch and librosa log-mel paths, in float32, for
#: every bin within :data:`TOLERANCE_RANGE_DB` of its segment's peak. Further down, float32
#: round-off of the FFT (about 140 dB below full scale) dominates both paths.
LOG_MEL_TOLERANCE_DB = 1e-2
#: Dynamic range below a segment's peak over which :data:`LOG_MEL_TOLERANCE_DB` holds.
TOLERANCE_RANGE_DB = 80.0
#: Largest phase difference (radians) for STFT bins within 60 dB of the segment's largest magnitude;
#: the phase of a bin with (almost) no energy is numerical noise in any implementation.
PHASE_TOLERANCE_RAD = 1e-3

#: The feature kinds :func:`extract` can compute.
KINDS = ("log_mel", "fft", "phase")


@dataclass(frozen=True)
class FeatureConfig:
    """Parameters of the segment features (frozen; use :func:`dataclasses.replace` to vary).

    Attributes
    ----------
    sr : int
        Sample rate (Hz).
    n_segments : int
        Segments per clip, evenly spaced (overlapping for 10-12 s clips).
    segment_seconds : float
        Length of one segment.
    n_fft : int
        STFT window and FFT length in samples (1024 = 64 ms at 16 kHz).
    hop_length : int
        STFT hop in samples (256 = 16 ms).
    n_mels : int
        Mel bands.
    fmin, fmax : float
        Band edges of the mel filterbank (Hz).
    amin : float
        Floor of the power spectrogram before the log.
    channels : str
        The channel policy of :mod:`asdkit.data.channels` (``"auto"``: mono files
        as they are, the near microphone of two-channel files). Under ``"both"``
        every feature gains a channel axis of 2 (near, far) after the segment axis.
    """

    sr: int = SAMPLE_RATE
    n_segments: int = 8
    segment_seconds: float = 2.0
    n_fft: int = 1024
    hop_length: int = 256
    n_mels: int = 224
    fmin: float = 50.0
    fmax: float = 7800.0
    amin: float = 1e-10
    channels: str = "auto"

    def __post_init__(self):
        check_channels(self.channels, name="FeatureConfig.channels")
        if self.sr <= 0 or self.n_fft <= 0 or self.hop_length <= 0 or self.n_mels <= 0:
            raise ConfigError(f"FeatureConfig: sr, n_fft, hop_length and n_mels must be positive: {self}")
        if not 0 <= self.fmin < self.fmax <= self.sr / 2:
            raise ConfigError(f"FeatureConfig: need 0 <= fmin < fmax <= sr/2, got fmin={self.fmin}, "
                              f"fmax={self.fmax}, sr={self.sr}")
        if self.n_segments < 1 or self.segment_seconds <= 0:
            raise ConfigError("FeatureConfig: n_segments must be >= 1 and segment_seconds > 0")

    @property
    def segment_length(self) -> int:
        """Samples per segment."""
        return int(round(self.segment_seconds * self.sr))

    @property
    def n_frames(self) -> int:
        """STFT frames per segment (centred frames)."""
        return 1 + self.segment_length // self.hop_length

    def to_dict(self) -> dict:
        """Plain dict of the parameters (for JSON and cache keys)."""
        return asdict(self)


#: Named feature settings: the report's (``paper``) and a small one for CPU work (``quick``).
FEATURE_PRESETS = {
    "paper": FeatureConfig(),
    "quick": FeatureConfig(n_mels=64),
}


def feature_config(preset: str | FeatureConfig = "paper", **overrides) -> FeatureConfig:
    """Return a named :class:`FeatureConfig`, optionally with some fields replaced."""
    return named_preset(FEATURE_PRESETS, preset, "feature", "feature_config", **overrides)


def feature_shape(kind: str, config: FeatureConfig) -> tuple[int, ...]:
    """Shape of one segment's feature of ``kind`` (without the clip and segment axes).

    Under ``channels="both"`` the shape starts with the channel axis (2).
    """
    if config.channels == "both":
        return (2, *feature_shape(kind, replace(config, channels="auto")))
    if kind == "log_mel":
        return (config.n_mels, config.n_frames)
    if kind == "fft":
        return (config.segment_length // 2 + 1,)
    if kind == "phase":
        return (config.n_fft // 2 + 1, config.n_frames)
    raise ConfigError(f"unknown feature kind {kind!r}; choose one of {KINDS}")


# --------------------------------------------------------------------------- numpy / librosa


def log_mel(y: np.ndarray, *, config: FeatureConfig = FEATURE_PRESETS["paper"]) -> np.ndarray:
    """Log-mel power spectrogram in dB, computed with librosa.

    Parameters
    ----------
    y : ndarray of shape (..., n_samples)
        One or more waveforms (e.g. the segments of a clip).
    config : FeatureConfig

    Returns
    -------
    ndarray of shape (..., n_mels, n_frames), float32
    """
    import librosa

    S = librosa.feature.melspectrogram(
        y=np.asarray(y, dtype=np.float32), sr=config.sr, n_fft=config.n_fft, hop_length=config.hop_length,
        window="hann", center=True, pad_mode="constant", power=2.0, n_mels=config.n_mels,
        fmin=config.fmin, fmax=config.fmax,
    )
    return librosa.power_to_db(S, ref=1.0, amin=config.amin, top_db=None).astype(np.float32)


def fft_spectrum(y: np.ndarray) -> np.ndarray:
    """Magnitude of the full-length real FFT along the last axis.

    Parameters
    ----------
    y : ndarray of shape (..., n_samples)

    Returns
    -------
    ndarray of shape (..., n_samples // 2 + 1), float32
    """
    return np.abs(np.fft.rfft(np.asarray(y, dtype=np.float32), axis=-1)).astype(np.float32)


def phase_spectrum(y: np.ndarray, *, config: FeatureConfig = FEATURE_PRESETS["paper"]) -> np.ndarray:
    """Phase (radians, in [-pi, pi]) of the STFT, with the same framing as :func:`log_mel`.

    Returns
    -------
    ndarray of shape (..., n_fft // 2 + 1, n_frames), float32
    """
    import librosa

    D = librosa.stft(np.asarray(y, dtype=np.float32), n_fft=config.n_fft, hop_length=config.hop_length,
                     window="hann", center=True, pad_mode="constant")
    return np.angle(D).astype(np.float32)


# --------------------------------------------------------------------------- torch, batched


class TorchFeatures(torch.nn.Module):
    """Batched log-mel, FFT and phase features in torch (CPU or GPU).

    Two entry points:

    * ``log_mel(x)``, ``phase(x)``, ``fft(x)`` take a batch of waveforms (e.g.
      segments) of shape ``(batch, n_samples)``;
    * ``clips(x, kind)`` takes whole clips ``(batch, n_samples)``, standardises
      them and returns every segment's feature ``(batch, n_segments, ...)``.

    The Hann window and the mel filterbank (from :func:`librosa.filters.mel`) are
    buffers, so ``.to(device)`` moves them. Framing, zero padding and the dB floor
    follow :func:`log_mel` exactly. What makes it faster than a per-clip librosa
    loop: frames are cut with ``unfold`` and transformed in one batched ``rfft``;
    the mel projection is one matrix product restricted to the FFT bins the
    filterbank uses; and in ``clips`` the overlapping segments of a clip (eight
    2-s segments of a 10-s clip cover 16 s) share the STFT frames that lie
    inside both, since segment starts are aligned to the hop
    (:func:`segment_starts`): only the few frames that touch a segment's zero
    padding are computed per segment.

    Parameters
    ----------
    config : FeatureConfig

    Examples
    --------
    >>> tf = TorchFeatures(FEATURE_PRESETS["quick"])
    >>> tf.log_mel(torch.zeros(3, 32000)).shape
    torch.Size([3, 64, 126])
    >>> tf.clips(torch.randn(2, 160000), "log_mel").shape
    torch.Size([2, 8, 64, 126])
    """

    def __init__(self, config: FeatureConfig = FEATURE_PRESETS["paper"]):
        super().__init__()
        import librosa

        self.config = config
        fb = librosa.filters.mel(sr=config.sr, n_fft=config.n_fft, n_mels=config.n_mels,
                                 fmin=config.fmin, fmax=config.fmax)
        # Only the FFT bins that some mel band uses take part in the product.
        used = np.flatnonzero(np.abs(fb).sum(axis=0) > 0)
        self._lo, self._hi = int(used.min()), int(used.max()) + 1
        self.register_buffer("mel_basis_t", torch.from_numpy(fb[:, self._lo:self._hi].T.copy().astype(np.float32)),
                             persistent=False)
        self.register_buffer("window", torch.hann_window(config.n_fft, periodic=True), persistent=False)

    # ---- frame-level transforms: (..., n_fft) frames -> (..., feature) per frame
    def _frame_log_mel(self, frames: torch.Tensor) -> torch.Tensor:
        spec = torch.fft.rfft(frames * self.window, dim=-1)[..., self._lo:self._hi]
        power = spec.real.square() + spec.imag.square()
        mel = power.reshape(-1, power.shape[-1]) @ self.mel_basis_t
        db = mel.clamp_(min=self.config.amin).log10_().mul_(10.0)
        return db.reshape(*frames.shape[:-1], self.config.n_mels)

    def _frame_phase(self, frames: torch.Tensor) -> torch.Tensor:
        return torch.angle(torch.fft.rfft(frames * self.window, dim=-1))

    def _segment_frames(self, x: torch.Tensor) -> torch.Tensor:
        """Centred, zero-padded frames: ``(batch, n_samples) -> (batch, n_frames, n_fft)``."""
        half = self.config.n_fft // 2
        return torch.nn.functional.pad(x, (half, half)).unfold(-1, self.config.n_fft, self.config.hop_length)

    # ---- waveforms (e.g. segments)
    def log_mel(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, n_samples) -> (batch, n_mels, n_frames)`` log-mel in dB."""
        return self._frame_log_mel(self._segment_frames(x)).transpose(-1, -2)

    def phase(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, n_samples) -> (batch, n_fft // 2 + 1, n_frames)`` STFT phase."""
        return self._frame_phase(self._segment_frames(x)).transpose(-1, -2)

    def fft(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, n_samples) -> (batch, n_samples // 2 + 1)`` FFT magnitude."""
        return torch.fft.rfft(x, dim=-1).abs()

    def forward(self, x: torch.Tensor, kind: str = "log_mel") -> torch.Tensor:
        """Feature of each waveform of ``x``, ``(batch, n_samples) -> (batch, ...)``."""
        if kind == "log_mel":
            return self.log_mel(x)
        if kind == "fft":
            return self.fft(x)
        if kind == "phase":
            return self.phase(x)
        raise ConfigError(f"unknown feature kind {kind!r}; choose one of {KINDS}")

    # ---- whole clips
    def _shared_frame_plan(self, n_samples: int):
        """Frame sources of every segment: ``(starts, clip_frame_index, edge_j)``.

        Returns the segment starts, a ``(n_segments, n_frames)`` index into the
        concatenation ``[clip frames, edge frames]``, and the frame numbers ``j``
        of a segment whose window reaches into its zero padding.
        """
        c = self.config
        half, hop, L = c.n_fft // 2, c.hop_length, c.segment_length
        starts = segment_starts(n_samples, segment_length=L, n_segments=c.n_segments, align=hop)
        j = np.arange(c.n_frames)
        inside = (j * hop >= half) & (j * hop + half <= L)
        edge_j = j[~inside]
        n_clip_frames = 1 + (n_samples - c.n_fft) // hop
        index = np.empty((c.n_segments, c.n_frames), dtype=np.int64)
        for k, s in enumerate(starts):
            index[k, inside] = (s + j[inside] * hop - half) // hop
            index[k, ~inside] = n_clip_frames + k * edge_j.size + np.arange(edge_j.size)
        return starts, index, edge_j, n_clip_frames

    def clips(self, x: torch.Tensor, kind: str = "log_mel") -> torch.Tensor:
        """Standardise whole clips, cut them into segments and compute each segment's feature.

        Parameters
        ----------
        x : Tensor of shape (batch, n_samples) or (batch, n_channels, n_samples)
            Clips of equal length, at least one segment long. Each channel is
            standardised and computed alone.
        kind : {"log_mel", "phase", "fft"}

        Returns
        -------
        Tensor of shape (batch, n_segments, *feature_shape(kind, config))
            Equal (to float32 round-off) to :func:`log_mel` / :func:`phase_spectrum` /
            :func:`fft_spectrum` of :func:`clip_segments` of each clip. A channel axis
            of the input comes after the segment axis.
        """
        if x.ndim == 3:
            B, C, n = x.shape
            out = self.clips(x.reshape(B * C, n), kind)
            return out.reshape(B, C, *out.shape[1:]).transpose(1, 2)
        c = self.config
        std, mean = torch.std_mean(x, dim=-1, keepdim=True, unbiased=False)
        x = torch.where(std > 1e-12, (x - mean) / torch.where(std > 1e-12, std, 1.0), 0.0)
        B, n = x.shape
        starts, index, edge_j, n_clip = self._shared_frame_plan(n)
        if kind == "fft" or c.hop_length * 2 > c.n_fft or (c.n_fft // 2) % c.hop_length:
            idx = torch.as_tensor(starts, device=x.device)[:, None] + torch.arange(c.segment_length, device=x.device)
            segs = x[:, idx].reshape(B * c.n_segments, -1)
            return self.forward(segs, kind).reshape(B, c.n_segments, *feature_shape(kind, replace(c, channels="auto")))
        frame_fn = self._frame_log_mel if kind == "log_mel" else self._frame_phase
        if kind not in ("log_mel", "phase"):
            raise ConfigError(f"unknown feature kind {kind!r}; choose one of {KINDS}")
        clip_frames = x.unfold(-1, c.n_fft, c.hop_length)[:, :n_clip]              # (B, n_clip, n_fft)
        half = c.n_fft // 2
        edges = []
        for s in starts:
            seg = torch.nn.functional.pad(x[:, s:s + c.segment_length], (half, half))
            edges.append(torch.stack([seg[:, jj * c.hop_length: jj * c.hop_length + c.n_fft] for jj in edge_j], 1))
        frames = torch.cat([clip_frames, *edges], dim=1)                             # (B, n_all, n_fft)
        per_frame = frame_fn(frames)                                                 # (B, n_all, F)
        out = per_frame[:, torch.as_tensor(index, device=x.device)]                  # (B, n_seg, n_frames, F)
        return out.transpose(-1, -2)


# --------------------------------------------------------------------------- clip tables


def clip_segments(y: np.ndarray, *, config: FeatureConfig = FEATURE_PRESETS["paper"]) -> np.ndarray:
    """Standardise one clip and cut it into the segments the features are computed on.

    Segment starts are aligned to the STFT hop (see :func:`~asdkit.data.audio.segment_starts`).

    Returns
    -------
    ndarray of shape (n_segments, segment_length), float32
        For a two-channel clip ``y`` of shape (2, n_samples) (``channels="both"``), shape
        (n_segments, 2, segment_length), each channel standardised alone.
    """
    y = np.asarray(y)
    if y.ndim == 2:
        return np.stack([clip_segments(ch, config=config) for ch in y], axis=1)
    return segment(standardize(y), sr=config.sr, n_segments=config.n_segments,
                   seconds=config.segment_seconds, align=config.hop_length)


def clip_paths(clips, caller: str = "extract()") -> list[str]:
    """The paths of a clip table (its ``path`` column) or of an iterable of paths; ``caller`` names who asked."""
    if hasattr(clips, "columns"):
        if "path" not in clips.columns:
            raise ConfigError(f"{caller} takes a clip table with a 'path' column (see asdkit.scan_root) "
                              "or a list of file paths.")
        return [str(p) for p in clips["path"]]
    if isinstance(clips, (str, bytes)):
        raise ConfigError(f"{caller} takes a list of paths or a clip table, not a single string.")
    return [str(p) for p in clips]


def extract(clips, *, kind: str = "log_mel", config: FeatureConfig = FEATURE_PRESETS["paper"],
            cache=None, device: str | torch.device = "cpu", batch_size: int = 8, progress: bool = False,
            resample: bool = False, dtype=np.float32) -> np.ndarray:
    """Compute one feature kind for many clips: ``load -> standardize -> segment -> feature``.

    Parameters
    ----------
    clips : DataFrame with a ``path`` column, or iterable of paths
    kind : {"log_mel", "fft", "phase"}
    config : FeatureConfig
    cache : FeatureCache, optional
        Reuse features stored on disk for the same file content, kind and
        config; compute and store the missing ones.
    device : str or torch.device, default "cpu"
    batch_size : int, default 8
        Clips per batch on the device (8 keeps a batch's frames in a CPU's cache;
        raise it on a GPU).
    progress : bool, default False
        Show a tqdm bar.
    resample : bool, default False
        Passed to :func:`~asdkit.data.audio.load_clip`.
    dtype : numpy dtype, default float32
        dtype of the returned array.

    Returns
    -------
    ndarray of shape (n_clips, n_segments, *feature_shape(kind, config))
    """
    from tqdm.auto import tqdm

    if kind not in KINDS:
        raise ConfigError(f"unknown feature kind {kind!r}; choose one of {KINDS}")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
    paths = clip_paths(clips)
    shape = (len(paths), config.n_segments, *feature_shape(kind, config))
    out = np.empty(shape, dtype=dtype)
    todo = list(range(len(paths)))
    if cache is not None:
        todo = []
        for i, p in enumerate(paths):
            hit = cache.get(p, kind=kind, config=config)
            if hit is None:
                todo.append(i)
            else:
                out[i] = hit
    if not todo:
        return out
    module = TorchFeatures(config).to(device)
    bar = tqdm(total=len(todo), desc=f"{kind} features", unit="clip", disable=not progress)
    with torch.inference_mode():
        for start in range(0, len(todo), batch_size):
            idx = todo[start:start + batch_size]
            waves = {i: load_clip(paths[i], sr=config.sr, resample=resample, min_seconds=config.segment_seconds,
                                  channels=config.channels)
                     for i in idx}
            by_length: dict[int, list[int]] = {}
            for i in idx:
                by_length.setdefault(waves[i].shape[-1], []).append(i)
            for group in by_length.values():
                x = torch.from_numpy(np.stack([waves[i] for i in group])).to(device)
                feats = module.clips(x, kind).float().cpu().numpy()
                # with a cache, a computed feature is returned as a cached one would be: same results either way
                out[group] = feats if cache is None else cache.as_stored(feats, kind)
                if cache is not None:
                    for j, i in enumerate(group):
                        cache.put(paths[i], feats[j], kind=kind, config=config)
            bar.update(len(idx))
    bar.close()
    return out

