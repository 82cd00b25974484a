"""The baseline's input: log-mel spectrograms of whole clips and 5-frame vectors of them.

``waveforms --baseline_log_mel--> (n_clips, 128, n_frames) dB --frame_vectors / FrameDataset-->
640-dim vectors`` (5 consecutive frames, frame-major), and :func:`log_mel_batches`,
which reads wav files and yields the log-mels of equal-length clips in batches on a device.
"""
from __future__ import annotations

import mmap
from typing import Iterator, Sequence

import numpy as np
import torch

from asdkit.data.audio import load_clip
from asdkit.errors import ConfigError
from asdkit.features.spectra import TorchFeatures
from asdkit.models.baseline.config import BASELINE_PRESETS, BaselineConfig
from asdkit.training.engine import select_device

__all__ = ["baseline_log_mel", "frame_vectors", "torch_frame_vectors", "average_frame_vectors", "FrameDataset",
           "log_mel_batches"]


def _as_waveform_batch(waveforms) -> torch.Tensor:
    if isinstance(waveforms, torch.Tensor):
        x = waveforms.detach().float()
    elif isinstance(waveforms, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(waveforms, dtype=np.float32))
    else:
        clips = [np.asarray(w, dtype=np.float32) for w in waveforms]
        if not clips:
            return torch.zeros((0, 0))
        lengths = {c.shape for c in clips}
        if len(lengths) != 1 or clips[0].ndim != 1:
            raise ConfigError(f"baseline_log_mel needs 1-D clips of equal length, got shapes {sorted(lengths)}; "
                              "compute clips of different lengths separately.")
        x = torch.from_numpy(np.stack(clips))
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2:
        raise ConfigError(f"waveforms must have shape (n_clips, n_samples), got {tuple(x.shape)}.")
    return x


def _features_module(config: BaselineConfig, n_samples: int, device: torch.device) -> TorchFeatures:
    return TorchFeatures(config.feature_config(n_samples)).to(device)


def baseline_log_mel(waveforms, config: BaselineConfig = BASELINE_PRESETS["paper"], *,
                     device: str | torch.device = "cpu", batch_size: int = 32) -> np.ndarray:
    """Log-mel spectrograms of whole clips, as the baseline computes them.

    No amplitude standardisation (unlike :meth:`asdkit.features.spectra.TorchFeatures.clips`):
    the official baseline works on the raw waveform scale.

    Parameters
    ----------
    waveforms : array-like of shape (n_clips, n_samples) or (n_samples,)
        Float waveforms (a sequence of equal-length 1-D arrays is accepted).
    config : BaselineConfig, default the paper settings
    device : str or torch.device, default "cpu"
    batch_size : int, default 32
        Clips per batch.

    Returns
    -------
    ndarray of shape (n_clips, n_mels, n_frames), or (n_mels, n_frames) for one 1-D clip; float32
        ``10 log10(max(mel power, config.amin))`` in dB, with
        ``n_frames = 1 + n_samples // hop_length`` (313 for a 10-s clip).

    Examples
    --------
    >>> baseline_log_mel(np.zeros((2, 16000), np.float32)).shape
    (2, 128, 32)
    >>> baseline_log_mel(np.zeros(16000, np.float32)).shape
    (128, 32)
    """
    if isinstance(waveforms, (np.ndarray, torch.Tensor)) and waveforms.ndim == 1:
        return baseline_log_mel(waveforms[None], config, device=device, batch_size=batch_size)[0]
    x = _as_waveform_batch(waveforms)
    dev = select_device(device)
    n_clips, n = x.shape
    if n < config.min_samples:
        raise ConfigError(f"clips of {n} samples give fewer than n_frames={config.n_frames} STFT frames; "
                          f"they need at least {config.min_samples} samples.")
    out = np.empty((n_clips, config.n_mels, config.n_time_frames(n)), dtype=np.float32)
    module = _features_module(config, n, dev)
    with torch.inference_mode():
        for s in range(0, n_clips, batch_size):
            out[s:s + batch_size] = module.log_mel(x[s:s + batch_size].to(dev)).float().cpu().numpy()
    return out


def log_mel_batches(paths: Sequence[str], config: BaselineConfig, device: torch.device, *,
                    batch_clips: int = 16) -> Iterator[tuple[list[int], torch.Tensor]]:
    """Read wav files and yield their log-mels, clips of equal length batched together.

    Parameters
    ----------
    paths : sequence of str
        Wav files (read with :func:`asdkit.data.audio.load_clip` at ``config.sr``).
    config : BaselineConfig
    device : torch.device
        Where the features are computed and left.
    batch_clips : int, default 16
        Clips read per batch (a batch is split further by clip length).

    Yields
    ------
    indices : list of int
        Positions in ``paths`` of the clips of this batch.
    log_mel : Tensor of shape (len(indices), n_bands, n_time_frames), float32
        As :func:`baseline_log_mel` computes it, on ``device``; under ``channels="both"``
        the far microphone's bands follow the near one's (``n_bands = 2 * n_mels``).
    """
    modules: dict[int, TorchFeatures] = {}
    min_seconds = config.min_samples / config.sr
    for s in range(0, len(paths), batch_clips):
        idx = list(range(s, min(s + batch_clips, len(paths))))
        waves = {i: load_clip(paths[i], sr=config.sr, min_seconds=min_seconds, channels=config.channels)
                 for i in idx}
        groups: dict[int, list[int]] = {}
        for i in idx:
            groups.setdefault(waves[i].shape[-1], []).append(i)
        for n, group in groups.items():
            if n < config.min_samples:
                raise ConfigError(f"{paths[group[0]]!r} has {n} samples, too short for n_frames={config.n_frames} "
                                  f"frames (at least {config.min_samples}).")
            if n not in modules:
                modules[n] = _features_module(config, n, device)
            x = torch.from_numpy(np.stack([waves[i] for i in group]).astype(np.float32, copy=False)).to(device)
            with torch.inference_mode():
                if x.ndim == 3:                      # channels="both": near bands, then far bands
                    B, C, _ = x.shape
                    feats = modules[n].log_mel(x.reshape(B * C, n)).float()
                    feats = feats.reshape(B, C * feats.shape[1], feats.shape[2])
                else:
                    feats = modules[n].log_mel(x).float()
            yield group, feats


def frame_vectors(log_mel, n_frames: int = 5, *, stride: int = 1) -> np.ndarray:
    """Stack ``n_frames`` consecutive frames into vectors (the baseline's input).

    Parameters
    ----------
    log_mel : array-like of shape (..., n_mels, n_time_frames)
    n_frames : int, default 5
    stride : int, default 1
        Keep every ``stride``-th vector.

    Returns
    -------
    ndarray of shape (..., n_vectors, n_mels * n_frames)
        ``n_vectors = (n_time_frames - n_frames) // stride + 1``; frame-major:
        ``out[..., i, t * n_mels + m] = log_mel[..., m, i * stride + t]``.
        A copy (5x the input); for training use :class:`FrameDataset`, which
        serves vectors without making it.
    """
    lm = np.asarray(log_mel)
    if lm.ndim < 2:
        raise ConfigError(f"log_mel must have shape (..., n_mels, n_time_frames), got {lm.shape}.")
    if n_frames < 1 or stride < 1:
        raise ConfigError(f"n_frames={n_frames} and stride={stride} must be positive.")
    if lm.shape[-1] < n_frames:
        raise ConfigError(f"log_mel has {lm.shape[-1]} frames, fewer than n_frames={n_frames}.")
    win = np.lib.stride_tricks.sliding_window_view(lm, n_frames, axis=-1)[..., ::stride, :]
    # (..., n_mels, n_vectors, n_frames) -> (..., n_vectors, n_frames, n_mels)
    win = np.moveaxis(win, -3, -1)
    return np.ascontiguousarray(win).reshape(*win.shape[:-2], n_frames * lm.shape[-2])


def torch_frame_vectors(log_mel: torch.Tensor, n_frames: int) -> torch.Tensor:
    """:func:`frame_vectors` (stride 1) of a batch of tensors, on their device.

    Parameters
    ----------
    log_mel : Tensor of shape (batch, n_mels, n_time_frames)
    n_frames : int

    Returns
    -------
    Tensor of shape (batch, n_vectors, n_frames * n_mels)
        ``n_vectors = n_time_frames - n_frames + 1``, frame-major as :func:`frame_vectors`.
    """
    win = log_mel.unfold(-1, n_frames, 1)                  # (B, n_mels, n_vectors, n_frames)
    return win.permute(0, 2, 3, 1).reshape(log_mel.shape[0], -1, n_frames * log_mel.shape[1])


def average_frame_vectors(vectors: torch.Tensor, n_mels: int, n_frames: int) -> torch.Tensor:
    """Undo :func:`torch_frame_vectors`: each time frame as the mean of the vectors that hold it.

    Parameters
    ----------
    vectors : Tensor of shape (batch, n_vectors, n_frames * n_mels)
        Frame-major vectors (e.g. the autoencoder's reconstructions).
    n_mels, n_frames : int

    Returns
    -------
    Tensor of shape (batch, n_mels, n_vectors + n_frames - 1)
        Frame ``j`` is the mean over the (up to ``n_frames``) vectors ``i`` with
        ``i <= j < i + n_frames`` of their frame ``j - i``.
    """
    B, n, _ = vectors.shape
    r = vectors.reshape(B, n, n_frames, n_mels)
    T = n + n_frames - 1
    total = torch.zeros((B, T, n_mels), device=r.device)
    count = torch.zeros((T, 1), device=r.device)
    for t in range(n_frames):                             # frame t of vector i is time frame i + t
        total[:, t:t + n] += r[:, :, t]
        count[t:t + n] += 1
    return (total / count).transpose(1, 2)


class FrameDataset(torch.utils.data.Dataset):
    """Stacked-frame vectors served on the fly from per-clip log-mels.

    Item ``i`` is the vector of clip ``i // n_per_clip`` starting at frame
    ``(i % n_per_clip) * stride``, equal to ``frame_vectors(log_mel, n_frames,
    stride=stride).reshape(-1, input_dim)[i]``, read straight from ``log_mel``:
    the 5x duplicated stack is never built, and a :class:`numpy.memmap` stays on
    disk (only the frames of a batch are read). ``__getitems__`` serves a whole
    batch with one vectorised read (the DataLoader uses it).

    Parameters
    ----------
    log_mel : ndarray or memmap of shape (n_clips, n_mels, n_time_frames)
    n_frames : int, default 5
    stride : int, default 1

    Attributes
    ----------
    n_per_clip : int
        Vectors per clip.
    input_dim : int
        ``n_mels * n_frames``.
    """

    def __init__(self, log_mel: np.ndarray, n_frames: int = 5, *, stride: int = 1):
        if getattr(log_mel, "ndim", 0) != 3:
            raise ConfigError("FrameDataset takes log-mels of shape (n_clips, n_mels, n_time_frames), got "
                              f"{getattr(log_mel, 'shape', type(log_mel).__name__)}.")
        if n_frames < 1 or stride < 1:
            raise ConfigError(f"n_frames={n_frames} and stride={stride} must be positive.")
        if log_mel.shape[-1] < n_frames:
            raise ConfigError(f"clips have {log_mel.shape[-1]} frames, fewer than n_frames={n_frames}.")
        self.log_mel = log_mel
        self.n_frames = int(n_frames)
        self.stride = int(stride)
        self.n_per_clip = (log_mel.shape[-1] - n_frames) // stride + 1
        self.input_dim = log_mel.shape[1] * n_frames
        self._offsets = np.arange(n_frames)

    def __len__(self) -> int:
        return self.log_mel.shape[0] * self.n_per_clip

    def __getstate__(self) -> dict:
        # A memmap is pickled (for DataLoader workers) as its file, not as a copy of its data.
        state = self.__dict__.copy()
        lm = self.log_mel
        if isinstance(lm, np.memmap) and lm.filename is not None and isinstance(lm.base, mmap.mmap) \
                and (lm.flags.c_contiguous or lm.flags.f_contiguous):
            state["log_mel"] = ("memmap", lm.filename, lm.dtype.str, lm.shape, int(lm.offset),
                                "F" if np.isfortran(lm) else "C")
        return state

    def __setstate__(self, state: dict) -> None:
        lm = state["log_mel"]
        if isinstance(lm, tuple) and lm and lm[0] == "memmap":
            _, filename, dtype, shape, offset, order = lm
            state["log_mel"] = np.memmap(filename, dtype=dtype, mode="r", shape=shape, offset=offset, order=order)
        self.__dict__.update(state)

    def positions(self, idx) -> tuple[np.ndarray, np.ndarray]:
        """(clip index, first frame) of items ``idx``."""
        idx = np.asarray(idx, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"FrameDataset index out of range [0, {len(self)})")
        clip, k = np.divmod(idx, self.n_per_clip)
        return clip, k * self.stride

    def _gather(self, idx) -> np.ndarray:
        clip, start = self.positions(idx)
        frames = start[:, None] + self._offsets                   # (B, n_frames)
        block = self.log_mel[clip[:, None], :, frames]            # (B, n_frames, n_mels)
        return np.asarray(block, dtype=np.float32).reshape(len(clip), self.input_dim)

    def __getitem__(self, i) -> torch.Tensor:
        """Vector ``i``, Tensor of shape (input_dim,), float32."""
        return torch.from_numpy(self._gather([int(i)])[0])

    def __getitems__(self, indices: Sequence[int]) -> list[torch.Tensor]:
        """Vectors ``indices`` in one read, a list of Tensors of shape (input_dim,)."""
        return list(torch.from_numpy(self._gather(indices)).unbind(0))
