"""A simple reference detector: k nearest neighbours on per-clip log-mel statistics.

:class:`MelStatsKNN` is deliberately plain: each clip becomes the mean and the
standard deviation over time of each band of its log-mel spectrogram
(:func:`clip_statistics`), the features are standardised with the training
statistics, and a test clip's anomaly score is its mean Euclidean distance to
its ``n_neighbors`` nearest training clips. It calibrates the synthetic data of
:mod:`asdkit.data.synth` and is a floor that every real model should beat.

Scores follow the DCASE convention: **higher = more anomalous** (the opposite
of scikit-learn's ``score_samples``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import librosa
import numpy as np
from sklearn.neighbors import NearestNeighbors

from asdkit.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from asdkit.data.synth import SynthPreset

__all__ = ["clip_statistics", "MelStatsKNN", "synthetic_aucs"]


def _as_clips(waveforms) -> list[np.ndarray]:
    if isinstance(waveforms, np.ndarray) and waveforms.ndim == 1:
        raise ConfigError("waveforms must be a 2-D array (n_clips, n_samples) or a list of 1-D arrays; "
                          "wrap a single clip as [y].")
    clips = [np.asarray(y, dtype=np.float32) for y in waveforms]
    for i, y in enumerate(clips):
        if y.ndim != 1 or y.size == 0:
            raise ConfigError(f"clip {i}: expected a non-empty 1-D waveform, got shape {y.shape}.")
        if not np.all(np.isfinite(y)):
            raise ConfigError(f"clip {i}: holds NaN or infinite samples.")
    return clips


def clip_statistics(waveforms: Sequence[np.ndarray] | np.ndarray, sr: int = 16000, n_mels: int = 64, *,
                    n_fft: int = 1024, hop_length: int = 512) -> np.ndarray:
    """Mean and standard deviation over time of each log-mel band, per clip.

    Each clip is first amplitude-standardised (zero mean, unit standard
    deviation), so its overall level does not matter.

    Parameters
    ----------
    waveforms : ndarray of shape (n_clips, n_samples) or sequence of 1-D arrays
        The clips (lengths may differ in a sequence).
    sr : int, default 16000
        Sample rate.
    n_mels : int, default 64
        Mel bands (0 Hz to ``sr / 2``).
    n_fft, hop_length : int
        STFT size and hop (defaults 1024 and 512, as the DCASE baseline).

    Returns
    -------
    ndarray of shape (n_clips, 2 * n_mels), float64
        Per clip, the ``n_mels`` band means of ``10 log10(max(mel power, 1e-10))``
        followed by the ``n_mels`` band standard deviations.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> clip_statistics(rng.standard_normal((3, 16000)), n_mels=32).shape
    (3, 64)
    """
    clips = _as_clips(waveforms)
    if not isinstance(n_mels, (int, np.integer)) or n_mels < 1:
        raise ConfigError(f"n_mels={n_mels!r}: must be a positive integer.")
    fb = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels)
    out = np.empty((len(clips), 2 * n_mels))
    for i, y in enumerate(clips):
        y = y.astype(np.float64)
        y = (y - y.mean()) / (y.std() + 1e-12)
        power = np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop_length)) ** 2
        log_mel = 10.0 * np.log10(np.maximum(fb @ power, 1e-10))
        out[i, :n_mels] = log_mel.mean(axis=1)
        out[i, n_mels:] = log_mel.std(axis=1)
    return out


class MelStatsKNN:
    """k-nearest-neighbour anomaly detector on per-clip log-mel statistics.

    Parameters
    ----------
    n_neighbors : int, default 1
        Neighbours averaged in the score.
    n_mels : int, default 64
        Mel bands of :func:`clip_statistics`.
    sr : int, default 16000
        Sample rate of the clips.

    Attributes
    ----------
    mean_, scale_ : ndarray of shape (2 * n_mels,)
        Training feature statistics used to standardise.
    nn_ : sklearn.neighbors.NearestNeighbors
        Index of the standardised training features.
    n_train_ : int
        Number of training clips.

    Notes
    -----
    :meth:`score_samples` returns **higher = more anomalous** (the DCASE
    convention), the opposite of scikit-learn's outlier detectors.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> train = rng.standard_normal((20, 16000))
    >>> det = MelStatsKNN(n_neighbors=2, n_mels=32).fit(train)
    >>> det.score_samples(rng.standard_normal((3, 16000))).shape
    (3,)
    """

    def __init__(self, n_neighbors: int = 1, n_mels: int = 64, sr: int = 16000):
        self.n_neighbors = n_neighbors
        self.n_mels = n_mels
        self.sr = sr

    def _features(self, X) -> np.ndarray:
        return clip_statistics(X, sr=self.sr, n_mels=self.n_mels)

    def fit(self, X, domains=None) -> "MelStatsKNN":
        """Learn the normal training clips.

        Parameters
        ----------
        X : ndarray of shape (n_clips, n_samples) or sequence of 1-D arrays
            Normal training waveforms (source and target together).
        domains : array-like of shape (n_clips,), optional
            Accepted for the common scorer contract; the detector ignores it.

        Returns
        -------
        self
        """
        if not isinstance(self.n_neighbors, (int, np.integer)) or self.n_neighbors < 1:
            raise ConfigError(f"n_neighbors={self.n_neighbors!r}: must be a positive integer.")
        feats = self._features(X)
        if domains is not None and len(domains) != len(feats):
            raise ConfigError(f"domains has {len(domains)} entries for {len(feats)} clips.")
        if len(feats) < self.n_neighbors:
            raise ConfigError(f"n_neighbors={self.n_neighbors} exceeds the {len(feats)} training clips.")
        self.mean_ = feats.mean(axis=0)
        self.scale_ = feats.std(axis=0) + 1e-8
        self.nn_ = NearestNeighbors(n_neighbors=self.n_neighbors).fit((feats - self.mean_) / self.scale_)
        self.n_train_ = len(feats)
        return self

    def score_samples(self, X) -> np.ndarray:
        """Anomaly scores: mean distance to the nearest training clips.

        Parameters
        ----------
        X : ndarray of shape (n_clips, n_samples) or sequence of 1-D arrays

        Returns
        -------
        ndarray of shape (n_clips,)
            **Higher = more anomalous** (the opposite of scikit-learn's convention).
        """
        if not hasattr(self, "nn_"):
            raise ConfigError("MelStatsKNN is not fitted: call fit(train_waveforms) first.")
        z = (self._features(X) - self.mean_) / self.scale_
        dist, _ = self.nn_.kneighbors(z)
        return dist.mean(axis=1)


class _OnStatistics(MelStatsKNN):
    """MelStatsKNN fed with :func:`clip_statistics` rows computed beforehand."""

    def _features(self, X) -> np.ndarray:
        return np.asarray(X, dtype=np.float64)


def synthetic_aucs(machine: str, *, preset: "str | SynthPreset" = "paper", seed: int = 0,
                   n_neighbors: int = 1, n_mels: int = 64) -> tuple[float, float]:
    """AUC(source) and AUC(target) of :class:`MelStatsKNN` on one synthetic machine type.

    The clips of :func:`asdkit.data.synth.synthesize` (same seeds, same conditions) are
    generated in memory, one at a time, and reduced to their statistics; the
    detector is fitted on all training clips (source and target) and scores the
    test clips. The AUCs follow the official pooling: all anomalies of both
    domains in each.

    Parameters
    ----------
    machine : str
        A machine type of :data:`asdkit.data.synth.MACHINES`.
    preset : str or SynthPreset, default "paper"
        Counts and clip length (a name of :data:`asdkit.data.synth.PRESETS` or a preset).
    seed : int, default 0
    n_neighbors, n_mels : int
        Hyperparameters of :class:`MelStatsKNN`.

    Returns
    -------
    (float, float)
        ``(auc_source, auc_target)``.
    """
    from asdkit.data import synth
    from asdkit.evaluation.metrics import auc_source_target

    spec = synth.machine_spec(machine)
    cfg = synth.synth_preset(preset)
    feats, is_train, labels, domains = [], [], [], []
    for split, domain, label, index, cond in synth.clip_plan(spec, cfg):
        rng = np.random.default_rng(synth.clip_seed(seed, spec.name, split, domain, label, index))
        y = synth.generate_clip(spec.name, domain=domain, label=label, attributes=cond, rng=rng,
                                seconds=cfg.clip_seconds, sr=cfg.sr)
        feats.append(clip_statistics([y], sr=cfg.sr, n_mels=n_mels)[0])
        is_train.append(split == "train")
        if split == "test":
            labels.append(int(label == "anomaly"))
            domains.append(domain)
    feats, is_train = np.array(feats), np.array(is_train)
    detector = _OnStatistics(n_neighbors=n_neighbors, n_mels=n_mels, sr=cfg.sr).fit(feats[is_train])
    return auc_source_target(labels, detector.score_samples(feats[~is_train]), domains)
