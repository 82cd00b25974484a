"""The organisers' autoencoder baseline as an asdkit :class:`~asdkit.models.base.Detector`.

``wav files --log_mel_batches--> log-mels --torch_frame_vectors--> 640-dim vectors --DenseAE-->
residual recon - x --> MSEScorer / SelectiveMahalanobisScorer --> clip scores``; the network
is trained by :func:`asdkit.training.engine.fit` with :func:`~asdkit.models.baseline.train.ae_loss`.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import pandas as pd
import torch

from asdkit.data.dataset import clip_table
from asdkit.errors import ConfigError
from asdkit.models.base import Detector, check_seed
from asdkit.models.baseline.config import BaselineConfig, baseline_config
from asdkit.models.baseline.features import FrameDataset, average_frame_vectors, log_mel_batches, torch_frame_vectors
from asdkit.models.baseline.torch_model import DenseAE
from asdkit.models.baseline.train import ae_loss, ae_optimizer
from asdkit.presets import check_integer
from asdkit.scoring.frames import FrameMahalanobisScorer
from asdkit.scoring.mahalanobis import COVARIANCES, DOMAINS, MSEScorer, SelectiveMahalanobisScorer, domain_array
from asdkit.training.engine import History, seeded, select_device
from asdkit.training.engine import fit as engine_fit

__all__ = ["AutoencoderBaseline"]


class AutoencoderBaseline(Detector):
    """The organisers' autoencoder baseline of DCASE 2023/2024 Task 2.

    Log-mel spectrogram of the raw waveform (no amplitude standardisation),
    5 consecutive frames stacked into 640-dim vectors, the dense autoencoder
    :class:`~asdkit.models.baseline.torch_model.DenseAE` trained on the normal
    clips of one machine type (source and target together) with MSE loss, and
    three scores of a clip from its reconstruction residuals ``recon - x``:

    * ``"mse"``: their mean square (:class:`~asdkit.scoring.mahalanobis.MSEScorer`);
    * ``"mahala"``: the organisers' selective Mahalanobis score: per domain, a
      128 x 128 covariance of the residual's 128-band frames; a clip's score
      is the squared Mahalanobis length of its mean residual frame, the
      smaller of the source's and the target's
      (:class:`~asdkit.scoring.frames.FrameMahalanobisScorer`);
    * ``"mahala_lw"``: asdkit's variant: per domain, a Ledoit-Wolf 640 x 640
      covariance of whole centred residual vectors, a clip's score the mean of
      its vectors' squared distances, the smaller of the two domains'
      (:class:`~asdkit.scoring.mahalanobis.SelectiveMahalanobisScorer`).

    All are fitted either way; :meth:`score_all` gives all, and the base
    class sets a gamma threshold for each (``thresholds_``).

    Parameters
    ----------
    score : {"mse", "mahala", "mahala_lw"}, default "mse"
        The score :meth:`score_samples` returns and ``threshold_`` is for.
    preset : str or BaselineConfig, default "quick"
        A name of :data:`~asdkit.models.baseline.config.BASELINE_PRESETS`
        (``"paper"``, ``"cpu"``, ``"quick"``) or a :class:`BaselineConfig`
        (e.g. ``baseline_config("quick", epochs=2)``).
    seed : int, default 0
        Weight initialisation, validation split and batch order derive from it;
        two fits with the same seed on CPU give identical scores.
    device : str, default "auto"
        See :func:`asdkit.training.engine.select_device`.
    covariance : {"ledoit_wolf", "empirical"}, default "ledoit_wolf"
        Covariance estimate of the ``"mahala_lw"`` scorer (the organisers'
        ``"mahala"`` always uses their plain estimate).
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
    mahala_scorer_ : FrameMahalanobisScorer
    mahala_lw_scorer_ : SelectiveMahalanobisScorer
    n_time_frames_ : int
        STFT frames of a training clip.
    train_scores_, thresholds_, threshold_, n_train_
        See :class:`~asdkit.models.base.Detector`.

    Notes
    -----
    ``fit`` takes the training clips' domains from the clip table's ``domain``
    column (parsed from the file names for a list of paths); a clip whose
    domain is neither ``"source"`` nor ``"target"`` is a :class:`ConfigError`.
    Training clips must all have one length; scored clips may differ.

    Scores are **higher = more anomalous** (the DCASE convention, the opposite
    of scikit-learn's ``score_samples``).

    Examples
    --------
    >>> table = asdkit.synthesize("data", preset="quick", machines=["SynFan"])       # doctest: +SKIP
    >>> train, test = table[table.split == "train"], table[table.split == "test"]  # doctest: +SKIP
    >>> det = AutoencoderBaseline(score="mahala", preset="quick").fit(train)       # doctest: +SKIP
    >>> det.score_samples(test).shape                                               # doctest: +SKIP
    (40,)
    """

    score_names = ("mse", "mahala", "mahala_lw")

    def __init__(self, score: str = "mse", preset: str | BaselineConfig = "quick", seed: int = 0,
                 device: str = "auto", *, covariance: str = "ledoit_wolf", progress: bool = False,
                 checkpoint_dir: str | os.PathLike | None = None, memmap_dir: str | os.PathLike | None = None,
                 batch_clips: int = 16, amp: bool = True):
        self.score = score
        self.preset = preset
        self.seed = seed
        self.device = device
        self.covariance = covariance
        self.progress = progress
        self.checkpoint_dir = checkpoint_dir
        self.memmap_dir = memmap_dir
        self.batch_clips = batch_clips
        self.amp = amp

    # ------------------------------------------------------------------ checks
    def _check_params(self) -> BaselineConfig:
        if self.covariance not in COVARIANCES:
            raise ConfigError(f"covariance={self.covariance!r}: choose one of {list(COVARIANCES)}.")
        check_seed(self.seed)
        check_integer(self.batch_clips, "batch_clips", who="AutoencoderBaseline")
        return baseline_config(self.preset)

    @staticmethod
    def _domains(table: pd.DataFrame) -> np.ndarray:
        if "domain" not in table.columns:
            raise ConfigError("train: the clip table has no 'domain' column; AutoencoderBaseline needs 'source' "
                              "or 'target' per training clip (asdkit.scan_root and clip_table give it).")
        known = table["domain"].isin(DOMAINS).to_numpy()
        if not known.all():
            first = int(np.flatnonzero(~known)[0])
            raise ConfigError(f"train: {int((~known).sum())} training clip(s) have no known domain, e.g. "
                              f"{str(table['path'].iloc[first])!r} (domain {table['domain'].iloc[first]!r}); "
                              "AutoencoderBaseline needs 'source' or 'target' per clip. Name the files the "
                              "DCASE 2022+ way or set the table's 'domain' column.")
        return domain_array(table["domain"])

    # ------------------------------------------------------------------ residuals
    def _batches(self, table: pd.DataFrame) -> Iterator[tuple[list[int], torch.Tensor]]:
        paths = [str(p) for p in table["path"]]
        return log_mel_batches(paths, self.config_, self.device_, batch_clips=self.batch_clips)

    def _residuals(self, log_mel: torch.Tensor) -> torch.Tensor:
        """``(B, n_mels, T) -> (B, n_vectors, input_dim)`` residuals recon - x, all vectors."""
        vec = torch_frame_vectors(log_mel, self.config_.n_frames)
        B, n, d = vec.shape
        with torch.inference_mode():
            recon = self.model_(vec.reshape(B * n, d)).recon.float()
        return recon.reshape(B, n, d) - vec

    def _stored_residual_chunks(self, lm: np.ndarray) -> Iterator[np.ndarray]:
        for s in range(0, lm.shape[0], self.batch_clips):
            x = torch.from_numpy(np.asarray(lm[s:s + self.batch_clips], dtype=np.float32)).to(self.device_)
            yield self._residuals(x).cpu().numpy()

    def _scorers(self) -> dict:
        return {"mse": self.mse_scorer_, "mahala": self.mahala_scorer_, "mahala_lw": self.mahala_lw_scorer_}

    def _score_chunks(self, chunks: Iterable[np.ndarray]) -> dict[str, np.ndarray]:
        out: dict[str, list] = {name: [] for name in self.score_names}
        for c in chunks:
            for name, scorer in self._scorers().items():
                out[name].append(scorer.score_samples(c))
        return {name: np.concatenate(v) for name, v in out.items()}

    # ------------------------------------------------------------------ fit
    def _fit(self, train: pd.DataFrame, *, outliers=None, members=None) -> dict[str, np.ndarray]:
        """Train the autoencoder on the training clips and fit both scorers; the training clips' scores."""
        config = self._check_params()
        doms = self._domains(train)
        self.config_ = config
        self.device_ = select_device(self.device)
        tmp_path = None
        lm = None
        try:
            for group, feats in self._batches(train):
                if lm is None:
                    lm, tmp_path = self._log_mel_store((len(train), *feats.shape[1:]))
                if tuple(feats.shape[1:]) != lm.shape[1:]:
                    raise ConfigError("train: AutoencoderBaseline needs training clips of one length; "
                                      f"{str(train['path'].iloc[group[0]])!r} gives {feats.shape[-1]} frames, "
                                      f"the first clip {lm.shape[-1]}. Trim or pad them to one length.")
                lm[group] = feats.cpu().numpy()
            self.n_time_frames_ = int(lm.shape[-1])

            with seeded(self.seed):
                model = DenseAE.from_config(config)
            train_cfg = config.train_config(seed=int(self.seed), progress=self.progress, amp=self.amp,
                                             checkpoint_dir=None if self.checkpoint_dir is None
                                             else str(self.checkpoint_dir))
            dataset = FrameDataset(lm, config.n_frames, stride=config.frame_stride)
            self.history_: History = engine_fit(model, ae_loss, dataset, config=train_cfg, device=self.device_,
                                                optimizer_factory=ae_optimizer)
            self.model_ = model.eval()

            self.mse_scorer_ = MSEScorer().fit(next(self._stored_residual_chunks(lm)))
            self.mahala_scorer_ = FrameMahalanobisScorer(config.n_bands).fit(self._stored_residual_chunks(lm), doms)
            self.mahala_lw_scorer_ = SelectiveMahalanobisScorer(self.covariance).fit(
                self._stored_residual_chunks(lm), doms)
            return self._score_chunks(self._stored_residual_chunks(lm))
        finally:
            if tmp_path is not None:
                del lm
                os.unlink(tmp_path)

    def _log_mel_store(self, shape: tuple[int, ...]) -> tuple[np.ndarray, str | None]:
        """An array for the training log-mels: in RAM, or a temporary memmap in ``memmap_dir`` (and its path)."""
        if self.memmap_dir is None:
            return np.empty(shape, dtype=np.float32), None
        Path(self.memmap_dir).mkdir(parents=True, exist_ok=True)
        fd, path = tempfile.mkstemp(prefix="baseline-log-mel-", suffix=".npy", dir=self.memmap_dir)
        os.close(fd)
        return np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=shape), path

    # ------------------------------------------------------------------ scoring
    def _score_all(self, clips: pd.DataFrame) -> dict[str, np.ndarray]:
        out = {name: np.empty(len(clips)) for name in self.score_names}
        for group, feats in self._batches(clips):
            res = self._residuals(feats).cpu().numpy()
            for name, scorer in self._scorers().items():
                out[name][group] = scorer.score_samples(res)
        return out

    def domain_scores(self, clips, *, score: str = "mahala") -> pd.DataFrame:
        """The Mahalanobis score of each clip under each training domain's residual statistics.

        The selective Mahalanobis score (``score_all(clips)[score]``) is the
        row-wise minimum of this table.

        Parameters
        ----------
        clips : clip table or list of wav paths
        score : {"mahala", "mahala_lw"}, default "mahala"
            The organisers' scorer or asdkit's variant.

        Returns
        -------
        pandas.DataFrame of shape (n_clips, n_domains)
            One column per domain of ``mahala_scorer_.domains_``; **higher = more anomalous**.
        """
        self.check_fitted()
        if score not in ("mahala", "mahala_lw"):
            raise ConfigError(f"domain_scores: score={score!r}; choose 'mahala' or 'mahala_lw'.")
        scorer = self._scorers()[score]
        table = clip_table(clips, name="clips")
        cols = list(scorer.domains_)
        out = np.empty((len(table), len(cols)))
        for group, feats in self._batches(table):
            out[group] = scorer.domain_scores(self._residuals(feats).cpu().numpy())
        return pd.DataFrame(out, columns=cols)

    def reconstruct(self, clips) -> tuple[np.ndarray, np.ndarray]:
        """The log-mel spectrogram of each clip and the autoencoder's reconstruction of it.

        The network reconstructs 5-frame vectors; each frame lies in up to 5 of
        them, and its reconstruction here is the mean of those (what the
        network "hears" at that moment). Clips must be of one length.

        Parameters
        ----------
        clips : clip table or list of wav paths

        Returns
        -------
        log_mel, reconstruction : ndarray of shape (n_clips, n_mels, n_time_frames)
            In dB, ``log_mel`` as :func:`~asdkit.models.baseline.features.baseline_log_mel` computes it.

        Raises
        ------
        ConfigError
            The clips differ in length.
        """
        self.check_fitted()
        table = clip_table(clips, name="clips")
        c = self.config_
        inputs: dict[int, np.ndarray] = {}
        recons: dict[int, np.ndarray] = {}
        for group, feats in self._batches(table):
            vec = torch_frame_vectors(feats, c.n_frames)
            B, n, d = vec.shape
            with torch.inference_mode():
                r = self.model_(vec.reshape(B * n, d)).recon.float().reshape(B, n, d)
            rec = average_frame_vectors(r, c.n_bands, c.n_frames).cpu().numpy()
            for j, i in enumerate(group):
                inputs[i], recons[i] = feats[j].cpu().numpy(), rec[j]
        shapes = {a.shape for a in inputs.values()}
        if len(shapes) > 1:
            raise ConfigError("clips: reconstruct needs clips of one length; pass clips of equal duration "
                              f"(got spectrogram shapes {sorted(shapes)}).")
        order = range(len(table))
        return np.stack([inputs[i] for i in order]), np.stack([recons[i] for i in order])

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> dict:
        return {"model": dict(self.model_.state_dict()), "config": self.config_.to_dict(),
                "history": self.history_.to_dict(), "n_time_frames_": int(self.n_time_frames_),
                "mse_scorer": self.mse_scorer_.get_state(), "mahala_scorer": self.mahala_scorer_.get_state(),
                "mahala_lw_scorer": self.mahala_lw_scorer_.get_state()}

    def _set_state(self, state: dict) -> None:
        self.config_ = BaselineConfig(**state["config"])
        self.device_ = select_device(self.device)
        model = DenseAE.from_config(self.config_)
        model.load_state_dict(state["model"])
        self.model_ = model.to(self.device_).eval()
        self.history_ = History.from_dict(state["history"])
        self.n_time_frames_ = int(state["n_time_frames_"])
        self.mse_scorer_ = MSEScorer.from_state(state["mse_scorer"])
        if "mahala_lw_scorer" not in state:
            raise ConfigError("this baseline was saved by an asdkit before the organisers' frame-wise Mahalanobis "
                              "score; fit it again (asdkit run --save-models) to save it in the current form.")
        self.mahala_scorer_ = FrameMahalanobisScorer.from_state(state["mahala_scorer"])
        self.mahala_lw_scorer_ = SelectiveMahalanobisScorer.from_state(state["mahala_lw_scorer"])
