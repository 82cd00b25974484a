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
from asdkit.scoring.mahalanobis import DOMAINS, MSEScorer, SelectiveMahalanobisScorer, domain_array
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
        doms = domain_array(["source"] * len(items) if domains is None else domains)
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
