"""The organisers' autoencoder baseline of DCASE 2023/2024 Task 2, rebuilt on the asdkit engine.

The pieces chain like the rest of asdkit::

    wav files --baseline_log_mel / log_mel_batches--> (n_clips, 128, n_frames) dB
              --frame_vectors / FrameDataset--> 640-dim vectors (5 stacked frames)
              --DenseAE--> AEOutput(recon, code)
              --residual = recon - x--> MSEScorer / FrameMahalanobisScorer / SelectiveMahalanobisScorer
              --> clip scores

and :class:`AutoencoderBaseline` (a :class:`~asdkit.models.base.Detector`)
wires them together, with training done by :func:`asdkit.training.engine.fit`.
Modules: :mod:`~asdkit.models.baseline.config` (settings and presets),
:mod:`~asdkit.models.baseline.features` (log-mels and frame vectors),
:mod:`~asdkit.models.baseline.torch_model` (the network),
:mod:`~asdkit.models.baseline.train` (loss and optimiser),
:mod:`~asdkit.models.baseline.detector` (the detector).

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
* selective Mahalanobis ("MAHALA", score ``"mahala"``): each 640-value
  residual is cut into its 5 frames of 128 bands; per domain, the frames'
  128 x 128 covariance (the centred scatter over the number of vectors minus
  one, as their code); a clip's score under a domain is the squared
  Mahalanobis length of its mean residual frame, and the clip score the
  smaller of the two (:class:`~asdkit.scoring.frames.FrameMahalanobisScorer`);
* decision threshold: 0.9 quantile of a gamma distribution fitted to the
  training clips' scores (set by :class:`~asdkit.models.base.Detector` with
  :func:`asdkit.scoring.threshold.gamma_threshold`).

A third score, ``"mahala_lw"``, is asdkit's own variant and not the
organisers': a Ledoit-Wolf 640 x 640 covariance of whole, centred residual
vectors per domain and the mean of a clip's vectors' distances
(:class:`~asdkit.scoring.mahalanobis.SelectiveMahalanobisScorer`); before
2026-12 it was asdkit's ``"mahala"``.

Scores follow the DCASE convention: **higher = more anomalous**.
"""
from __future__ import annotations

from asdkit.models.baseline.config import BASELINE_PRESETS, EPS, BaselineConfig, baseline_config
from asdkit.models.baseline.detector import AutoencoderBaseline
from asdkit.models.baseline.features import (
                                             FrameDataset,
                                             average_frame_vectors,
                                             baseline_log_mel,
                                             frame_vectors,
                                             log_mel_batches,
                                             torch_frame_vectors,
)
from asdkit.models.baseline.torch_model import AEOutput, DenseAE
from asdkit.models.baseline.train import ae_loss, ae_optimizer
from asdkit.scoring.frames import FrameMahalanobisScorer
from asdkit.scoring.mahalanobis import DOMAINS, MSEScorer, SelectiveMahalanobisScorer

#: Score names of :class:`AutoencoderBaseline` (``AutoencoderBaseline.score_names``).
SCORERS = AutoencoderBaseline.score_names

__all__ = [
    "BaselineConfig", "BASELINE_PRESETS", "baseline_config", "EPS", "baseline_log_mel", "frame_vectors",
    "torch_frame_vectors", "average_frame_vectors", "log_mel_batches", "FrameDataset", "AEOutput", "DenseAE",
    "ae_loss", "ae_optimizer", "AutoencoderBaseline", "MSEScorer", "SelectiveMahalanobisScorer",
    "FrameMahalanobisScorer", "SCORERS",
    "DOMAINS",
]
