"""The reference detector: k nearest neighbours on per-clip log-mel statistics (system ``reference-knn``).

:class:`ReferenceKNN` is deliberately plain: each clip becomes the mean and the
standard deviation over time of each band of its log-mel spectrogram
(:func:`clip_statistics`), the features are standardised with the training
statistics, and a test clip's anomaly score is its mean Euclidean distance to
its ``n_neighbors`` nearest training clips (:class:`~asdkit.scoring.knn.KNNScorer`).
It calibrates the synthetic data of :mod:`asdkit.synth` and is a floor
that every learned model should beat.

Scores follow the DCASE convention: **higher = more anomalous** (the opposite
of scikit-learn's ``score_samples``).
"""
from __future__ import annotations

from typing import Sequence

import librosa
import numpy as np

from asdkit.data.audio import load_clip
from asdkit.data.channels import check_channels
from asdkit.errors import ConfigError
from asdkit.models.base import Detector
from asdkit.presets import check_integer
from asdkit.scoring.knn import KNNScorer

__all__ = ["clip_statistics", "ReferenceKNN"]


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


class ReferenceKNN(Detector):
    """k-nearest-neighbour detector on per-clip log-mel statistics: the floor every learned system must beat.

    Parameters
    ----------
    n_neighbors : int, default 1
        Neighbours averaged in the score.
    n_mels : int, default 64
        Mel bands of :func:`clip_statistics`.
    sr : int, default 16000
        Sample rate the clips are read at.
    channels : str, default "auto"
        Channel policy of :mod:`asdkit.data.channels`.

    Attributes
    ----------
    mean_, scale_ : ndarray of shape (2 * n_mels,)
        Training feature statistics used to standardise.
    knn_ : KNNScorer
        On the standardised training features.

    Notes
    -----
    Training scores are leave-one-clip-out distances. :meth:`score_samples`
    returns **higher = more anomalous**.
    """

    score_names = ("reference",)

    def __init__(self, n_neighbors: int = 1, n_mels: int = 64, sr: int = 16000, channels: str = "auto"):
        self.n_neighbors = n_neighbors
        self.n_mels = n_mels
        self.sr = sr
        self.channels = channels

    def features(self, clips) -> np.ndarray:
        """:func:`clip_statistics` of clips (a clip table or wav paths), shape (n_clips, 2 * n_mels).

        Under ``channels="both"`` the far microphone's statistics follow the near one's: (n_clips, 4 * n_mels).
        """
        from asdkit.data.dataset import clip_table

        check_channels(self.channels, name="ReferenceKNN.channels")
        paths = clip_table(clips)["path"].tolist()
        waves = [load_clip(p, sr=self.sr, channels=self.channels) for p in paths]
        if self.channels == "both":
            return np.hstack([clip_statistics([w[c] for w in waves], sr=self.sr, n_mels=self.n_mels)
                              for c in range(2)])
        return clip_statistics(waves, sr=self.sr, n_mels=self.n_mels)

    def _fit(self, train, *, outliers, members):
        check_integer(self.n_neighbors, "n_neighbors", who="ReferenceKNN")
        if len(train) <= self.n_neighbors:
            raise ConfigError(f"ReferenceKNN: n_neighbors={self.n_neighbors} needs more than {self.n_neighbors} "
                              f"training clips, got {len(train)}.")
        feats = self.features(train)
        self.mean_ = feats.mean(axis=0)
        self.scale_ = feats.std(axis=0) + 1e-8
        self.knn_ = KNNScorer(self.n_neighbors).fit((feats - self.mean_) / self.scale_)
        return {"reference": self.knn_.training_scores()}

    def _score_all(self, clips):
        return {"reference": self.knn_.score_samples((self.features(clips) - self.mean_) / self.scale_)}

    def _get_state(self) -> dict:
        return {"mean_": self.mean_, "scale_": self.scale_, "knn": self.knn_.get_state()}

    def _set_state(self, state: dict) -> None:
        self.mean_, self.scale_ = state["mean_"], state["scale_"]
        self.knn_ = KNNScorer.from_state(state["knn"])
