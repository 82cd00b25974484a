"""The organisers' autoencoder baseline of DCASE 2023/2024 Task 2, rebuilt on the asdkit engine.

The pieces chain like the rest of asdkit::

    waveforms --baseline_log_mel--> (n_clips, 128, n_frames) dB
              --frame_vectors / FrameDataset--> 640-dim vectors (5 stacked frames)
              --DenseAE--> AEOutput(recon, code)
              --residual = recon - x--> MSEScorer / SelectiveMahalanobisScorer --> clip scores

and :class:`AutoencoderBaseline` wires them together in the scikit-learn
manner (``fit`` / ``score_samples`` / ``decision``), with training done by
:func:`asdkit.training.engine.fit`.

Faithful to the official system (``nttcslab/dcase2023_task2_baseline_ae``,
2024 release; see ``dcase-facts.md``):

* log-mel power spectrogram of the raw waveform (no amplitude
  standardisation): n_fft 1024, hop 512, 128 mels from 0 to 8000 Hz, power 2,
  ``10 log10(max(mel, eps))`` with ``eps = sys.float_info.epsilon``, centred
  frames; 5 consecutive frames stacked into 640-dim vectors, frame-major
  (``vector[t * 128 + m] = log_mel[m, i + t]``);
* dense AE 640-128-128-128-128-8-128-128-128-128-640, every hidden layer
  (the bottleneck included) Linear + BatchNorm1d(momentum 0.01, eps 1e-3) +
  ReLU, linear output; MSE loss, Adam lr 1e-3, batch 256, 100 epochs, 10 %
  of the training vectors held out for validation; source and target clips
  trained together;
* MSE score: mean squared reconstruction error over a clip's vectors;
* selective Mahalanobis ("MAHALA"): residual statistics computed separately
  on the source and on the target training clips; the clip score is the
  smaller of the two per-domain scores;
* decision threshold: 0.9 quantile of a gamma distribution fitted to the
  training clips' scores (:func:`asdkit.evaluation.metrics.gamma_threshold`).

Deliberate differences, each documented where it lives: the Mahalanobis
covariance is a Ledoit-Wolf estimate by default (the official code inverts
the empirical one), and the residual mean is subtracted (the official code
centres the covariance but scores the raw residual). See
:class:`SelectiveMahalanobisScorer`.

Scores follow the DCASE convention: **higher = more anomalous**.
"""
from __future__ import annotations

import mmap
import os
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from asdkit.data.audio import load_clip
from asdkit.training.engine import History, TrainConfig, fit as engine_fit, seeded, select_device
from asdkit.errors import ConfigError
from asdkit.presets import named_preset
from asdkit.features.spectra import FeatureConfig, TorchFeatures
from asdkit.scoring.threshold import gamma_threshold

__all__ = [
    "BaselineConfig", "BASELINE_PRESETS", "baseline_config", "baseline_log_mel", "frame_vectors",
    "FrameDataset", "AEOutput", "DenseAE", "ae_loss", "MSEScorer", "SelectiveMahalanobisScorer",
    "AutoencoderBaseline", "SCORERS", "DOMAINS",
]

#: The log floor of the official baseline (``sys.float_info.epsilon``).
EPS = sys.float_info.epsilon
#: Scorer names of :class:`AutoencoderBaseline`.
SCORERS = ("mse", "mahala")
#: Domain names, in the order of the Mahalanobis statistics.
DOMAINS = ("source", "target")


# --------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class BaselineConfig:
    """Settings of the autoencoder baseline (frozen; vary with :func:`baseline_config`).

    Attributes
    ----------
    sr : int
        Sample rate (Hz).
    n_fft, hop_length : int
        STFT window / FFT length and hop, in samples.
    n_mels : int
        Mel bands (from ``fmin`` to ``fmax``).
    fmin, fmax : float
        Band edges of the mel filterbank (Hz).
    amin : float
        Floor of the mel power before the log (``sys.float_info.epsilon``).
    n_frames : int
        Consecutive frames stacked into one vector (``input_dim = n_mels * n_frames``).
    frame_stride : int
        Training only: keep every ``frame_stride``-th vector of a clip (1 = all,
        as the official system). Consecutive vectors share 4 of their 5 frames,
        so a stride of 2-3 costs little information and divides the epoch time.
        Scoring and the Mahalanobis statistics always use every vector.
    hidden, bottleneck : int
        Width of the hidden layers and of the code.
    n_layers : int
        Hidden layers on each side of the bottleneck.
    epochs, batch_size, lr, val_fraction
        Training (Adam), see :class:`asdkit.training.engine.TrainConfig`.
    """

    sr: int = 16000
    n_fft: int = 1024
    hop_length: int = 512
    n_mels: int = 128
    fmin: float = 0.0
    fmax: float = 8000.0
    amin: float = EPS
    n_frames: int = 5
    frame_stride: int = 1
    hidden: int = 128
    bottleneck: int = 8
    n_layers: int = 4
    epochs: int = 100
    batch_size: int = 256
    lr: float = 1e-3
    val_fraction: float = 0.1

    def __post_init__(self):
        for name in ("sr", "n_fft", "hop_length", "n_mels", "n_frames", "frame_stride", "hidden", "bottleneck",
                     "n_layers", "epochs", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ConfigError(f"BaselineConfig.{name}={v!r}: must be a positive integer.")
        if not 0 <= self.fmin < self.fmax <= self.sr / 2:
            raise ConfigError(f"BaselineConfig: need 0 <= fmin < fmax <= sr/2, got fmin={self.fmin}, "
                              f"fmax={self.fmax}, sr={self.sr}.")
        if not self.amin > 0:
            raise ConfigError(f"BaselineConfig.amin={self.amin!r}: must be positive.")
        if not self.lr > 0:
            raise ConfigError(f"BaselineConfig.lr={self.lr!r}: must be positive.")
        if not 0 <= self.val_fraction < 1:
            raise ConfigError(f"BaselineConfig.val_fraction={self.val_fraction!r}: must lie in [0, 1).")

    @property
    def input_dim(self) -> int:
        """Length of one stacked vector (640 for the paper settings)."""
        return self.n_mels * self.n_frames

    def n_time_frames(self, n_samples: int) -> int:
        """STFT frames of a clip of ``n_samples`` (centred framing)."""
        return 1 + int(n_samples) // self.hop_length

    def feature_config(self, n_samples: int) -> FeatureConfig:
        """The :class:`~asdkit.features.spectra.FeatureConfig` of a whole clip of ``n_samples`` (one segment)."""
        return FeatureConfig(sr=self.sr, n_segments=1, segment_seconds=int(n_samples) / self.sr, n_fft=self.n_fft,
                             hop_length=self.hop_length, n_mels=self.n_mels, fmin=self.fmin, fmax=self.fmax,
                             amin=self.amin)

    def train_config(self, *, seed: int = 0, **kwargs) -> TrainConfig:
        """The engine's :class:`~asdkit.training.engine.TrainConfig` for these settings (extra fields by keyword)."""
        return TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, seed=seed,
                           val_fraction=self.val_fraction, **kwargs)

    def to_dict(self) -> dict:
        """Plain dict of the parameters."""
        return asdict(self)


#: Named settings.
#:
#: ``paper``: the official system (100 epochs over every vector of every clip).
#: On the 2 CPU cores of the project machine the AE trains at 13 800 vectors/s
#: (batch 256, idle cores; ``bench/bench_baseline.py --preset paper --epochs 2``),
#: so one paper-size machine type (1000 clips x 309 vectors, 278 000 after the
#: validation split) costs 20 s per epoch, about 34 min for 100 epochs: a GPU job.
#:
#: ``cpu``: the same network and features, trained on every 3rd vector
#: (``frame_stride=3``: 92 700 training vectors per epoch) for 10 epochs, 3.3 %
#: of the paper's optimiser steps; the training loss is flat from the 6th epoch
#: (8.3 -> 8.2). Measured with ``bench/bench_baseline.py --preset cpu`` on
#: paper-size synthetic SynFan, idle cores: training 68 s, end-to-end (features,
#: training, both scorers, thresholds, 200 test clips) 99 s, peak RSS 0.9 GB;
#: AUC(source) / AUC(target) MSE 0.89 / 0.40, MAHALA 0.91 / 0.51. The four
#: paper-size machine types of the embedded dataset take about 6.5 min, leaving
#: most of the 30-minute budget of the ``cpu`` preset to the other systems.
#:
#: ``quick``: the same network, 5 epochs in batches of 64; trains in about 10 s
#: on one machine type of the ``quick`` synthetic dataset (70 clips of 6 s,
#: 12 900 vectors) for tests and notebooks. Why batches of 64: with 256 an epoch
#: of that data is only 45 optimiser steps, and the AE needs some 800-1000 Adam
#: steps (lr 1e-3) to bring its output to the dB level of the features and to
#: settle its BatchNorm running statistics (momentum 0.01); after 5 x 45 steps
#: the training loss is still 8x its plateau. 5 x 180 steps get close to it.
BASELINE_PRESETS: dict[str, BaselineConfig] = {
    "paper": BaselineConfig(),
    "cpu": BaselineConfig(epochs=10, frame_stride=3),
    "quick": BaselineConfig(epochs=5, batch_size=64),
}


def baseline_config(preset: str | BaselineConfig = "paper", **overrides) -> BaselineConfig:
    """Return a named :class:`BaselineConfig`, optionally with some fields replaced.

    >>> baseline_config("quick", epochs=2).epochs
    2
    """
    return named_preset(BASELINE_PRESETS, preset, "baseline", "baseline_config", **overrides)


# --------------------------------------------------------------------------- features
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
    if n < (config.n_frames - 1) * config.hop_length:
        raise ConfigError(f"clips of {n} samples give fewer than n_frames={config.n_frames} STFT frames; "
                          f"they need at least {(config.n_frames - 1) * config.hop_length} samples.")
    out = np.empty((n_clips, config.n_mels, config.n_time_frames(n)), dtype=np.float32)
    module = _features_module(config, n, dev)
    with torch.inference_mode():
        for s in range(0, n_clips, batch_size):
            out[s:s + batch_size] = module.log_mel(x[s:s + batch_size].to(dev)).float().cpu().numpy()
    return out


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


def _torch_frame_vectors(lm: torch.Tensor, n_frames: int) -> torch.Tensor:
    """``(B, n_mels, T) -> (B, n_vectors, n_frames * n_mels)``, as :func:`frame_vectors`."""
    win = lm.unfold(-1, n_frames, 1)                  # (B, n_mels, n_vectors, n_frames)
    return win.permute(0, 2, 3, 1).reshape(lm.shape[0], -1, n_frames * lm.shape[1])


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
        return torch.from_numpy(self._gather([int(i)])[0])

    def __getitems__(self, indices: Sequence[int]) -> list[torch.Tensor]:
        return list(torch.from_numpy(self._gather(indices)).unbind(0))


# --------------------------------------------------------------------------- network
class AEOutput(NamedTuple):
    """What :class:`DenseAE` returns (the same in train and eval mode).

    Attributes
    ----------
    recon : Tensor of shape (batch, input_dim)
        Reconstruction of the input vectors.
    code : Tensor of shape (batch, bottleneck)
        Bottleneck activations (after BatchNorm and ReLU).
    """

    recon: torch.Tensor
    code: torch.Tensor


def _block(n_in: int, n_out: int) -> list[nn.Module]:
    return [nn.Linear(n_in, n_out), nn.BatchNorm1d(n_out, momentum=0.01, eps=1e-3), nn.ReLU()]


class DenseAE(nn.Module):
    """The baseline's dense autoencoder: 640-128-128-128-128-8-128-128-128-128-640.

    Every hidden layer, the bottleneck included, is Linear + BatchNorm1d
    (momentum 0.01, eps 1e-3, as the official network) + ReLU; the output
    layer is linear. A pure module: it only computes.

    Parameters
    ----------
    input_dim : int, default 640
    hidden : int, default 128
    bottleneck : int, default 8
    n_layers : int, default 4
        Hidden layers on each side of the bottleneck.

    Examples
    --------
    >>> out = DenseAE()(torch.randn(4, 640))
    >>> out.recon.shape, out.code.shape
    (torch.Size([4, 640]), torch.Size([4, 8]))
    """

    def __init__(self, input_dim: int = 640, hidden: int = 128, bottleneck: int = 8, n_layers: int = 4):
        super().__init__()
        self.input_dim = input_dim
        enc = [input_dim] + [hidden] * n_layers + [bottleneck]
        self.encoder = nn.Sequential(*[m for a, b in zip(enc[:-1], enc[1:]) for m in _block(a, b)])
        dec = [bottleneck] + [hidden] * n_layers
        self.decoder = nn.Sequential(*[m for a, b in zip(dec[:-1], dec[1:]) for m in _block(a, b)],
                                     nn.Linear(hidden, input_dim))

    @classmethod
    def from_config(cls, config: BaselineConfig) -> "DenseAE":
        return cls(config.input_dim, config.hidden, config.bottleneck, config.n_layers)

    def forward(self, x: torch.Tensor) -> AEOutput:
        """``(batch, input_dim) -> AEOutput(recon (batch, input_dim), code (batch, bottleneck))``."""
        code = self.encoder(x)
        return AEOutput(self.decoder(code), code)


def ae_loss(model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """The baseline's training loss for :func:`asdkit.training.engine.fit`: MSE of the reconstruction (float32)."""
    return nn.functional.mse_loss(model(batch).recon.float(), batch.float())


# --------------------------------------------------------------------------- scorers
def _residual_chunks(residuals) -> Iterator[np.ndarray]:
    """Yield float32 arrays of shape (n_clips_in_chunk, n_vectors, dim).

    ``residuals`` is one array of shape (n_clips, n_vectors, dim), or an
    iterable whose items are one clip (n_vectors, dim) or a chunk of clips
    (n, n_vectors, dim).
    """
    if isinstance(residuals, (np.ndarray, torch.Tensor)):
        residuals = [residuals]
    for r in residuals:
        r = r.detach().cpu().numpy() if isinstance(r, torch.Tensor) else np.asarray(r)
        if r.ndim == 2:
            r = r[None]
        if r.ndim != 3 or r.shape[1] < 1:
            raise ConfigError("residuals must be (n_clips, n_vectors, dim) or clips of shape (n_vectors, dim), "
                              f"got an item of shape {r.shape}.")
        yield r.astype(np.float32, copy=False)


def _check_dim(scorer, dim: int) -> None:
    if dim != scorer.n_features_in_:
        raise ConfigError(f"{type(scorer).__name__} was fitted on {scorer.n_features_in_}-dim residuals, "
                          f"got {dim}-dim ones.")


class MSEScorer:
    """Clip score = mean squared reconstruction error over the clip's vectors.

    The official baseline's "MSE" score. Nothing is learned from the
    training residuals beyond their dimension; ``fit`` exists for the common
    scorer contract.

    Attributes
    ----------
    n_features_in_ : int
        Residual dimension seen in ``fit``.

    Notes
    -----
    :meth:`score_samples` returns **higher = more anomalous** (the DCASE
    convention, the opposite of scikit-learn's outlier detectors).
    """

    def fit(self, residuals, domains=None) -> "MSEScorer":
        """Record the residual dimension.

        Parameters
        ----------
        residuals : ndarray of shape (n_clips, n_vectors, dim), or iterable of clips / chunks
            Reconstruction residuals ``recon - x`` of the training clips.
        domains : array-like of shape (n_clips,), optional
            Ignored.

        Returns
        -------
        self
        """
        dims = {c.shape[-1] for c in _residual_chunks(residuals)}
        if len(dims) != 1:
            raise ConfigError(f"MSEScorer.fit needs residuals of one dimension, got {sorted(dims) or 'none'}.")
        self.n_features_in_ = dims.pop()
        return self

    def score_samples(self, residuals) -> np.ndarray:
        """Mean squared residual of each clip.

        Parameters
        ----------
        residuals : ndarray of shape (n_clips, n_vectors, dim), or iterable of clips / chunks

        Returns
        -------
        ndarray of shape (n_clips,)
            **Higher = more anomalous.**
        """
        if not hasattr(self, "n_features_in_"):
            raise ConfigError("MSEScorer is not fitted: call fit(train_residuals) first.")
        out = []
        for c in _residual_chunks(residuals):
            _check_dim(self, c.shape[-1])
            out.append(np.square(c, dtype=np.float64).mean(axis=(1, 2)))
        return np.concatenate(out) if out else np.zeros(0)


def _gram(x: np.ndarray) -> np.ndarray:
    """``x^T x`` (batched over leading axes) as float64, computed by a float32 torch matmul.

    The products are the costly part of the Mahalanobis scorer (640 x 640 per
    clip); float32 BLAS is about twice as fast as float64 and the callers centre
    ``x`` first, so its round-off (relative 1e-6) is far below the estimation error.
    """
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    return torch.matmul(t.transpose(-1, -2), t).double().numpy()


class _Moments:
    """Streaming moments of vectors, shifted by the first batch's mean for accuracy.

    Enough for the mean, the empirical covariance and the Ledoit-Wolf shrinkage.
    """

    def __init__(self, dim: int):
        self.n = 0
        self.shift = None
        self.s1 = np.zeros(dim)          # sum x
        self.m2 = np.zeros((dim, dim))   # sum x x^T
        self.s2 = 0.0                    # sum |x|^2
        self.q = np.zeros(dim)           # sum |x|^2 x
        self.s4 = 0.0                    # sum |x|^4

    def add(self, x: np.ndarray) -> None:
        """Add vectors ``x`` of shape (n, dim)."""
        x = np.asarray(x, dtype=np.float64)
        if self.shift is None:
            self.shift = x.mean(axis=0)
        x = x - self.shift
        sq = np.einsum("ij,ij->i", x, x)
        self.n += x.shape[0]
        self.s1 += x.sum(axis=0)
        self.m2 += _gram(x)
        self.s2 += float(sq.sum())
        self.q += sq @ x
        self.s4 += float(sq @ sq)

    def finish(self, estimator: str) -> tuple[np.ndarray, np.ndarray, float]:
        """(location, covariance, shrinkage): biased (1/n) empirical covariance, optionally Ledoit-Wolf shrunk.

        The shrinkage is the one of :func:`sklearn.covariance.ledoit_wolf_shrinkage`,
        with its sums over samples replaced by the streamed moments.
        """
        n, p = self.n, self.s1.size
        mu = self.s1 / n
        cov = self.m2 / n - np.outer(mu, mu)
        cov = (cov + cov.T) / 2
        shrinkage = 0.0
        if estimator == "ledoit_wolf":
            # sum_k |x_k - mu|^4, expanded in the streamed sums
            mm = float(mu @ mu)
            s4c = (self.s4 - 4 * float(mu @ self.q) + 4 * float(mu @ self.m2 @ mu) + 2 * mm * self.s2
                   - 4 * mm * float(mu @ self.s1) + n * mm * mm)
            trace = float(np.trace(cov))
            mean_var = trace / p
            delta_ = float(np.sum(cov * cov))            # |X^T X / n|_F^2 of the centred data X
            beta = (s4c / n - delta_) / (p * n)
            delta = (delta_ - 2.0 * mean_var * trace + p * mean_var ** 2) / p
            beta = min(beta, delta)
            shrinkage = 0.0 if beta <= 0 else beta / delta
            cov = (1.0 - shrinkage) * cov
            cov.flat[::p + 1] += shrinkage * mean_var
        return mu + self.shift, cov, float(shrinkage)


class SelectiveMahalanobisScorer:
    """Selective Mahalanobis score ("MAHALA"): the smaller of a source and a target Mahalanobis score.

    ``fit`` computes, separately on the source and on the target training
    clips, the mean ``mu_d`` and covariance ``C_d`` of the reconstruction
    residual vectors. The score of a clip under domain ``d`` is the mean over
    its residual vectors ``r`` of the squared Mahalanobis distance
    ``(r - mu_d)^T C_d^{-1} (r - mu_d)`` (squared, as the official code), and
    the clip score is the minimum over the domains: a clip is normal if it
    looks normal for either domain.

    Parameters
    ----------
    covariance : {"ledoit_wolf", "empirical"}, default "ledoit_wolf"
        ``"ledoit_wolf"``: the Ledoit-Wolf shrunk covariance, the estimate of
        :class:`sklearn.covariance.LedoitWolf`, computed here from streamed
        moments so that the residuals of 300 000 training vectors never sit in
        memory at once. Why: the 10 target clips give few vectors for a
        640 x 640 covariance (1 840 for 6-s clips, 3 090 for 10-s clips), and
        consecutive vectors share 4 of their 5 frames, so the empirical target
        covariance is ill-conditioned; with fewer or shorter clips (fewer than
        640 vectors) it is singular and cannot be inverted at all. Measured on
        the quick SynFan data: empirical target covariance condition number
        1e4-3e4 (source 1e3), Ledoit-Wolf shrinkage 0.01-0.07 bringing it to
        6e2-8e3, the same AUC (within 0.005); shrinkage 0.17 on paper-size
        SynFan. On the source domain the shrinkage is about 0.003 and the
        estimate is practically the empirical one.
        ``"empirical"``: :class:`sklearn.covariance.EmpiricalCovariance`'s
        (biased) estimate, inverted with a pseudo-inverse when singular: as
        close to the official code as the two differences below allow.

    Attributes
    ----------
    domains_ : tuple of str
        Domains seen in training (``("source", "target")``, or one of them;
        with one domain the score is that domain's score, as the official
        code, which copies the source covariance when there is no target data).
    location_ : ndarray of shape (n_domains, dim)
        Mean residual of each domain.
    covariance_ : ndarray of shape (n_domains, dim, dim)
    precision_ : ndarray of shape (n_domains, dim, dim)
        Inverse of ``covariance_``.
    shrinkage_ : ndarray of shape (n_domains,)
        Ledoit-Wolf shrinkage (0 for ``"empirical"``).
    n_vectors_ : ndarray of shape (n_domains,)
        Training vectors of each domain.
    n_features_in_ : int

    Notes
    -----
    Differences from the official code, both deliberate: the residual mean is
    subtracted before the distance (the official code centres the covariance
    but scores the raw residual), and the clip's distance is the mean of its
    vectors' distances (the official ``mean(delta @ P @ delta.T)`` over a whole
    clip is, by linearity, the distance of the clip's mean residual, which
    lets errors of opposite sign cancel).

    :meth:`score_samples` returns **higher = more anomalous** (the DCASE
    convention, the opposite of scikit-learn's outlier detectors).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> res = rng.standard_normal((4, 50, 3))
    >>> sc = SelectiveMahalanobisScorer().fit(res, ["source", "source", "target", "target"])
    >>> sc.score_samples(res).shape
    (4,)
    """

    def __init__(self, covariance: str = "ledoit_wolf"):
        self.covariance = covariance

    def fit(self, residuals, domains) -> "SelectiveMahalanobisScorer":
        """Compute the per-domain residual statistics.

        Parameters
        ----------
        residuals : ndarray of shape (n_clips, n_vectors, dim), or iterable of clips / chunks
            Residuals ``recon - x`` of the normal training clips, read once.
        domains : array-like of shape (n_clips,)
            ``"source"`` or ``"target"`` per clip.

        Returns
        -------
        self
        """
        if self.covariance not in ("ledoit_wolf", "empirical"):
            raise ConfigError(f"covariance={self.covariance!r}: choose 'ledoit_wolf' or 'empirical'.")
        doms = _domain_array(domains)
        moments: dict[str, _Moments] = {}
        i = 0
        for chunk in _residual_chunks(residuals):
            b = chunk.shape[0]
            if i + b > doms.size:
                raise ConfigError(f"got more residual clips than the {doms.size} domains given.")
            for d in DOMAINS:
                sel = np.flatnonzero(doms[i:i + b] == d)
                if sel.size == 0:
                    continue
                m = moments.get(d)
                if m is None:
                    m = moments[d] = _Moments(chunk.shape[-1])
                elif m.s1.size != chunk.shape[-1]:
                    raise ConfigError("all residuals must have the same dimension.")
                m.add(chunk[sel].reshape(-1, chunk.shape[-1]))
            i += b
        if i != doms.size:
            raise ConfigError(f"got {i} residual clips for {doms.size} domains.")
        if not moments:
            raise ConfigError("SelectiveMahalanobisScorer.fit got no training residuals.")
        self.domains_ = tuple(d for d in DOMAINS if d in moments)
        dims = {moments[d].s1.size for d in self.domains_}
        if len(dims) != 1:
            raise ConfigError(f"residual dimensions differ between domains: {sorted(dims)}.")
        loc, cov, prec, shr, nvec = [], [], [], [], []
        for d in self.domains_:
            m = moments[d]
            if m.n < 2:
                raise ConfigError(f"the {d} domain has {m.n} residual vector(s); a covariance needs at least 2.")
            mu, c, s = m.finish(self.covariance)
            loc.append(mu)
            cov.append(c)
            prec.append(_inverse(c, pseudo=self.covariance == "empirical"))
            shr.append(s)
            nvec.append(m.n)
        self.location_ = np.stack(loc)
        self.covariance_ = np.stack(cov)
        self.precision_ = np.stack(prec)
        self.shrinkage_ = np.asarray(shr)
        self.n_vectors_ = np.asarray(nvec)
        self.n_features_in_ = dims.pop()
        return self

    def domain_scores(self, residuals) -> np.ndarray:
        """Per-domain scores: mean squared Mahalanobis distance of each clip's residual vectors.

        Parameters
        ----------
        residuals : ndarray of shape (n_clips, n_vectors, dim), or iterable of clips / chunks

        Returns
        -------
        ndarray of shape (n_clips, n_domains)
            Column ``k`` is the score under ``domains_[k]``; higher = more anomalous.
        """
        if not hasattr(self, "precision_"):
            raise ConfigError("SelectiveMahalanobisScorer is not fitted: call fit(train_residuals, domains) first.")
        P = self.precision_                                        # (K, d, d)
        K, d = self.location_.shape
        center = self.location_.mean(axis=0)                       # common reference, against round-off
        mu = self.location_ - center                               # (K, d)
        Pmu = np.einsum("kde,ke->kd", P, mu)                       # (K, d)
        muPmu = np.einsum("kd,kd->k", Pmu, mu)                     # (K,)
        Pflat = P.reshape(K, d * d)
        out = []
        for c in _residual_chunks(residuals):
            _check_dim(self, c.shape[-1])
            x = c - center.astype(np.float32)
            # mean_i (x_i - mu)^T P (x_i - mu) = tr(P A) - 2 mu^T P m + mu^T P mu, with
            # A = mean_i x_i x_i^T and m = mean_i x_i: one d x d product per clip serves every domain.
            for s in range(0, len(x), 4):                          # 4 clips at a time bounds the memory
                xs = x[s:s + 4]
                A = _gram(xs) / xs.shape[1]                        # (b, d, d)
                m = xs.mean(axis=1, dtype=np.float64)              # (b, d)
                out.append(A.reshape(len(A), d * d) @ Pflat.T - 2 * m @ Pmu.T + muPmu)
        return np.concatenate(out) if out else np.zeros((0, len(self.domains_)))

    def score_samples(self, residuals) -> np.ndarray:
        """Selective Mahalanobis score of each clip: the minimum over domains of :meth:`domain_scores`.

        Parameters
        ----------
        residuals : ndarray of shape (n_clips, n_vectors, dim), or iterable of clips / chunks

        Returns
        -------
        ndarray of shape (n_clips,)
            **Higher = more anomalous.**
        """
        return self.domain_scores(residuals).min(axis=1)


def _inverse(cov: np.ndarray, *, pseudo: bool) -> np.ndarray:
    """Inverse of a symmetric positive (semi-)definite matrix.

    Cholesky first (fast and exact for a positive definite matrix); for a
    singular one, the pseudo-inverse (``pseudo=True``) or a :class:`ConfigError`.
    (LAPACK's divide-and-conquer ``eigh`` of a 640 x 640 matrix can take seconds
    under OpenBLAS on a busy machine, hence no eigendecomposition by default.)
    """
    import scipy.linalg

    try:
        factor = scipy.linalg.cho_factor(cov, lower=True, check_finite=True)
        inv = scipy.linalg.cho_solve(factor, np.eye(cov.shape[0]))
        return (inv + inv.T) / 2
    except (np.linalg.LinAlgError, scipy.linalg.LinAlgError):
        pass
    if not pseudo:
        raise ConfigError("the residual covariance is singular even after shrinkage; the training "
                          "residuals are (nearly) constant. Check the features.")
    return scipy.linalg.pinvh(cov)


def _domain_array(domains) -> np.ndarray:
    d = np.asarray(list(domains), dtype=object)
    bad = sorted({str(x) for x in d if x not in DOMAINS})
    if bad:
        raise ConfigError(f"domains must be 'source' or 'target', got {bad}.")
    return d.astype(str)


# --------------------------------------------------------------------------- the estimator
def _clip_inputs(X) -> tuple[list, str]:
    """Normalise the clip argument: (items, kind) with kind 'paths' or 'waves'."""
    if hasattr(X, "columns"):
        if "path" not in X.columns:
            raise ConfigError("a clip table needs a 'path' column (see asdkit.scan_root).")
        return [str(p) for p in X["path"]], "paths"
    if isinstance(X, (str, os.PathLike)):
        raise ConfigError("pass a list of paths or waveforms, not a single path.")
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().numpy()
    if isinstance(X, np.ndarray):
        if X.ndim != 2 or X.dtype.kind not in "fiu":
            raise ConfigError(f"waveforms must be a float array of shape (n_clips, n_samples), got {X.shape} "
                              f"{X.dtype}.")
        return list(X), "waves"
    items = list(X)
    if all(isinstance(x, (str, os.PathLike)) for x in items):
        return [str(x) for x in items], "paths"
    return [np.asarray(x, dtype=np.float32) for x in items], "waves"


class AutoencoderBaseline:
    """The organisers' autoencoder baseline as an estimator: ``fit`` / ``score_samples`` / ``decision``.

    Parameters
    ----------
    scorer : {"mse", "mahala"}, default "mse"
        The score :meth:`score_samples` returns and the threshold is set for:
        mean squared reconstruction error, or selective Mahalanobis
        (:class:`SelectiveMahalanobisScorer`). Both are fitted either way
        (:meth:`score_all` gives both).
    preset : str or BaselineConfig, default "quick"
        A name of :data:`BASELINE_PRESETS` (``"paper"``, ``"cpu"``, ``"quick"``)
        or a :class:`BaselineConfig` (e.g. ``baseline_config("quick", epochs=2)``).
    seed : int, default 0
        Weight initialisation, validation split and batch order derive from it;
        two fits with the same seed on CPU give identical scores.
    device : str, default "auto"
        See :func:`asdkit.training.engine.select_device`.
    covariance : {"ledoit_wolf", "empirical"}, default "ledoit_wolf"
        Covariance estimate of the Mahalanobis scorer.
    progress : bool, default False
        tqdm bars while training (never under CI).
    checkpoint_dir : path, optional
        Engine checkpoints; a fit interrupted during training resumes there.
    memmap_dir : path, optional
        Write the training log-mels to a temporary memory-mapped file in this
        folder (deleted at the end of ``fit``) instead of keeping them in RAM
        (160 MB for a paper-size machine type).
    batch_clips : int, default 16
        Clips per batch when computing features and scores.
    amp : bool, default True
        Mixed precision on CUDA (ignored on CPU).

    Attributes
    ----------
    config_ : BaselineConfig
    model_ : DenseAE
        The trained network (eval mode, on the device).
    history_ : asdkit.training.engine.History
        Per-epoch training and validation loss.
    mse_scorer_ : MSEScorer
    mahala_scorer_ : SelectiveMahalanobisScorer
    train_scores_ : dict of str to ndarray of shape (n_train_clips,)
        Training clips' scores per scorer.
    thresholds_ : dict of str to float
        Gamma-fit 0.9-quantile threshold per scorer.
    threshold_ : float
        ``thresholds_[scorer]``.
    n_time_frames_ : int
        STFT frames of a training clip.

    Notes
    -----
    Scores are **higher = more anomalous** (the DCASE convention, the opposite
    of scikit-learn's ``score_samples``).

    Examples
    --------
    >>> from asdkit.data.synth import generate_clip
    >>> train = np.stack([generate_clip("SynFan", rng=i, seconds=2.0) for i in range(8)])
    >>> det = AutoencoderBaseline(preset=baseline_config("quick", epochs=1), device="cpu")
    >>> det.fit(train, ["source"] * 6 + ["target"] * 2).score_samples(train[:3]).shape
    (3,)
    """

    def __init__(self, scorer: str = "mse", preset: str | BaselineConfig = "quick", seed: int = 0,
                 device: str = "auto", *, covariance: str = "ledoit_wolf", progress: bool = False,
                 checkpoint_dir: str | os.PathLike | None = None, memmap_dir: str | os.PathLike | None = None,
                 batch_clips: int = 16, amp: bool = True):
        self.scorer = scorer
        self.preset = preset
        self.seed = seed
        self.device = device
        self.covariance = covariance
        self.progress = progress
        self.checkpoint_dir = checkpoint_dir
        self.memmap_dir = memmap_dir
        self.batch_clips = batch_clips
        self.amp = amp

    # ---- parameter checks (in fit, as scikit-learn does)
    def _check_params(self) -> BaselineConfig:
        if self.scorer not in SCORERS:
            raise ConfigError(f"unknown scorer {self.scorer!r}; choose one of {list(SCORERS)}.")
        if self.covariance not in ("ledoit_wolf", "empirical"):
            raise ConfigError(f"covariance={self.covariance!r}: choose 'ledoit_wolf' or 'empirical'.")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ConfigError(f"seed={self.seed!r}: must be a non-negative integer.")
        if isinstance(self.batch_clips, bool) or not isinstance(self.batch_clips, (int, np.integer)) \
                or self.batch_clips < 1:
            raise ConfigError(f"batch_clips={self.batch_clips!r}: must be a positive integer.")
        return baseline_config(self.preset)

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise ConfigError("AutoencoderBaseline is not fitted: call fit(train_clips, domains) first.")

    # ---- features
    def _load(self, item, kind: str, config: BaselineConfig) -> np.ndarray:
        if kind == "paths":
            return load_clip(item, sr=config.sr, min_seconds=(config.n_frames - 1) * config.hop_length / config.sr)
        if item.ndim != 1:
            raise ConfigError(f"each waveform must be 1-D (n_samples,), got shape {item.shape}.")
        return item

    def _log_mel_batches(self, items, kind, config, dev) -> Iterator[tuple[list[int], torch.Tensor]]:
        """Yield (clip indices, log-mel tensor (B, n_mels, T) on the device), clips of equal length batched."""
        modules: dict[int, TorchFeatures] = {}
        for s in range(0, len(items), self.batch_clips):
            idx = list(range(s, min(s + self.batch_clips, len(items))))
            waves = {i: self._load(items[i], kind, config) for i in idx}
            groups: dict[int, list[int]] = {}
            for i in idx:
                groups.setdefault(waves[i].shape[0], []).append(i)
            for n, group in groups.items():
                if n < (config.n_frames - 1) * config.hop_length:
                    raise ConfigError(f"clip {group[0]} has {n} samples, too short for {config.n_frames} frames.")
                if n not in modules:
                    modules[n] = _features_module(config, n, dev)
                x = torch.from_numpy(np.stack([waves[i] for i in group]).astype(np.float32, copy=False)).to(dev)
                with torch.inference_mode():
                    feats = modules[n].log_mel(x).float()
                yield group, feats

    def _residuals(self, log_mel: torch.Tensor) -> torch.Tensor:
        """``(B, n_mels, T) -> (B, n_vectors, input_dim)`` residuals recon - x, all vectors."""
        vec = _torch_frame_vectors(log_mel, self.config_.n_frames)
        B, n, d = vec.shape
        with torch.inference_mode():
            recon = self.model_(vec.reshape(B * n, d)).recon.float()
        return (recon.reshape(B, n, d) - vec)

    def _stored_residual_chunks(self, lm: np.ndarray, dev) -> Iterator[np.ndarray]:
        for s in range(0, lm.shape[0], self.batch_clips):
            x = torch.from_numpy(np.asarray(lm[s:s + self.batch_clips], dtype=np.float32)).to(dev)
            yield self._residuals(x).cpu().numpy()

    # ---- fit
    def fit(self, X, domains=None) -> "AutoencoderBaseline":
        """Train the autoencoder on normal clips and fit both scorers and thresholds.

        Parameters
        ----------
        X : paths, clip table (``path`` column), ndarray of shape (n_clips, n_samples), or 1-D waveforms
            Normal training clips, source and target together, all of the same length.
        domains : array-like of shape (n_clips,), optional
            ``"source"`` / ``"target"`` per clip. Default: the ``domain`` column
            of a clip table, else every clip is taken as source.

        Returns
        -------
        self

        Raises
        ------
        ConfigError
            Unknown scorer, preset or covariance; bad seed; no training clips;
            ``domains`` of the wrong length or with other values; clips of
            different lengths.
        """
        config = self._check_params()
        if domains is None and hasattr(X, "columns") and "domain" in X.columns:
            domains = X["domain"].tolist()
        items, kind = _clip_inputs(X)
        if not items:
            raise ConfigError("AutoencoderBaseline.fit got no training clips; pass at least two normal clips.")
        doms = _domain_array(["source"] * len(items) if domains is None else domains)
        if doms.size != len(items):
            raise ConfigError(f"domains has {doms.size} entries for {len(items)} training clips.")
        dev = select_device(self.device)
        self.config_ = config
        self.device_ = dev

        tmp_path = None
        lm = None
        try:
            for group, feats in self._log_mel_batches(items, kind, config, dev):
                if lm is None:
                    shape = (len(items), *feats.shape[1:])
                    if self.memmap_dir is not None:
                        Path(self.memmap_dir).mkdir(parents=True, exist_ok=True)
                        fd, tmp_path = tempfile.mkstemp(prefix="baseline-log-mel-", suffix=".npy",
                                                        dir=self.memmap_dir)
                        os.close(fd)
                        lm = np.lib.format.open_memmap(tmp_path, mode="w+", dtype=np.float32, shape=shape)
                    else:
                        lm = np.empty(shape, dtype=np.float32)
                if tuple(feats.shape[1:]) != lm.shape[1:]:
                    raise ConfigError("AutoencoderBaseline.fit needs training clips of one length; clip "
                                      f"{group[0]} gives {feats.shape[-1]} frames, the first clip "
                                      f"{lm.shape[-1]}. Trim or pad them to one length.")
                lm[group] = feats.cpu().numpy()
            self.n_time_frames_ = int(lm.shape[-1])

            with seeded(self.seed):
                model = DenseAE.from_config(config)
            train_cfg = config.train_config(seed=int(self.seed), progress=self.progress, amp=self.amp,
                                             checkpoint_dir=None if self.checkpoint_dir is None
                                             else str(self.checkpoint_dir))
            dataset = FrameDataset(lm, config.n_frames, stride=config.frame_stride)
            self.history_: History = engine_fit(model, ae_loss, dataset, config=train_cfg, device=dev)
            self.model_ = model.eval()

            self.mse_scorer_ = MSEScorer().fit(next(self._stored_residual_chunks(lm, dev)))
            self.mahala_scorer_ = SelectiveMahalanobisScorer(self.covariance).fit(
                self._stored_residual_chunks(lm, dev), doms)
            scores = self._score_chunks(self._stored_residual_chunks(lm, dev))
        finally:
            if tmp_path is not None:
                del lm
                os.unlink(tmp_path)
        self.train_scores_ = scores
        self.thresholds_ = {name: gamma_threshold(s, 0.9) for name, s in scores.items()}
        self.threshold_ = self.thresholds_[self.scorer]
        return self

    def _score_chunks(self, chunks: Iterable[np.ndarray]) -> dict[str, np.ndarray]:
        mse, mahala = [], []
        for c in chunks:
            mse.append(self.mse_scorer_.score_samples(c))
            mahala.append(self.mahala_scorer_.score_samples(c))
        return {"mse": np.concatenate(mse), "mahala": np.concatenate(mahala)}

    # ---- scoring
    def score_all(self, X) -> dict[str, np.ndarray]:
        """Both scores of each clip, in one pass over the clips.

        Parameters
        ----------
        X : paths, clip table (``path`` column), ndarray of shape (n_clips, n_samples), or 1-D waveforms
            Clips may differ in length.

        Returns
        -------
        dict with keys "mse", "mahala" of ndarray of shape (n_clips,)
            **Higher = more anomalous.**
        """
        self._check_fitted()
        items, kind = _clip_inputs(X)
        out = {name: np.empty(len(items)) for name in SCORERS}
        for group, feats in self._log_mel_batches(items, kind, self.config_, self.device_):
            res = self._residuals(feats).cpu().numpy()
            out["mse"][group] = self.mse_scorer_.score_samples(res)
            out["mahala"][group] = self.mahala_scorer_.score_samples(res)
        return out

    def domain_scores(self, X) -> pd.DataFrame:
        """The Mahalanobis score of each clip under each training domain's residual statistics.

        The selective Mahalanobis score (``score_all(X)["mahala"]``) is the
        row-wise minimum of this table.

        Parameters
        ----------
        X : paths, clip table (``path`` column), ndarray of shape (n_clips, n_samples), or 1-D waveforms

        Returns
        -------
        pandas.DataFrame of shape (n_clips, n_domains)
            One column per domain of ``mahala_scorer_.domains_``; higher = more anomalous.
        """
        self._check_fitted()
        items, kind = _clip_inputs(X)
        cols = list(self.mahala_scorer_.domains_)
        out = np.empty((len(items), len(cols)))
        for group, feats in self._log_mel_batches(items, kind, self.config_, self.device_):
            out[group] = self.mahala_scorer_.domain_scores(self._residuals(feats).cpu().numpy())
        return pd.DataFrame(out, columns=cols)

    def reconstruct(self, X) -> tuple[np.ndarray, np.ndarray]:
        """The log-mel spectrogram of each clip and the autoencoder's reconstruction of it.

        The network reconstructs 5-frame vectors; each frame lies in up to 5 of
        them, and its reconstruction here is the mean of those (what the
        network "hears" at that moment). Clips must be of one length.

        Parameters
        ----------
        X : paths, clip table (``path`` column), ndarray of shape (n_clips, n_samples), or 1-D waveforms

        Returns
        -------
        log_mel, reconstruction : ndarray of shape (n_clips, n_mels, n_time_frames)
            In dB, ``log_mel`` as :func:`baseline_log_mel` computes it.
        """
        self._check_fitted()
        items, kind = _clip_inputs(X)
        c = self.config_
        inputs: dict[int, np.ndarray] = {}
        recons: dict[int, np.ndarray] = {}
        for group, feats in self._log_mel_batches(items, kind, c, self.device_):
            vec = _torch_frame_vectors(feats, c.n_frames)
            B, n, d = vec.shape
            with torch.inference_mode():
                r = self.model_(vec.reshape(B * n, d)).recon.float().reshape(B, n, c.n_frames, c.n_mels)
            T = feats.shape[-1]
            total = torch.zeros((B, T, c.n_mels), device=r.device)
            count = torch.zeros((T, 1), device=r.device)
            for t in range(c.n_frames):                     # frame t of vector i is time frame i + t
                total[:, t:t + n] += r[:, :, t]
                count[t:t + n] += 1
            rec = (total / count).transpose(1, 2).cpu().numpy()
            for j, i in enumerate(group):
                inputs[i], recons[i] = feats[j].cpu().numpy(), rec[j]
        shapes = {a.shape for a in inputs.values()}
        if len(shapes) > 1:
            raise ConfigError("reconstruct needs clips of one length; pass clips of equal duration "
                              f"(got spectrogram shapes {sorted(shapes)}).")
        order = range(len(items))
        return np.stack([inputs[i] for i in order]), np.stack([recons[i] for i in order])

    def score_samples(self, X) -> np.ndarray:
        """Anomaly score of each clip with the chosen ``scorer``.

        Parameters
        ----------
        X : paths, clip table (``path`` column), ndarray of shape (n_clips, n_samples), or 1-D waveforms

        Returns
        -------
        ndarray of shape (n_clips,)
            **Higher = more anomalous** (the opposite of scikit-learn's convention).
        """
        return self.score_all(X)[self.scorer]

    def decision(self, scores) -> np.ndarray:
        """0/1 decisions (1 = anomalous): ``scores > threshold_``.

        Parameters
        ----------
        scores : array-like of shape (n_clips,)
            Scores of the chosen scorer (from :meth:`score_samples`).

        Returns
        -------
        ndarray of shape (n_clips,), int
        """
        self._check_fitted()
        s = np.asarray(scores, dtype=np.float64)
        if s.ndim != 1:
            raise ConfigError(f"scores must be one-dimensional (n_clips,), got shape {s.shape}.")
        return (s > self.threshold_).astype(np.int64)
