"""The classification-based model as a :class:`~asdkit.models.base.Detector`: :class:`ClassifierDetector`."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from asdkit.data.audio import load_clip
from asdkit.data.names import parse_filename
from asdkit.errors import ConfigError, NotFittedError
from asdkit.features.spectra import clip_paths, clip_segments
from asdkit.models.base import Detector, check_seed
from asdkit.models.classifier.config import ClassifierConfig, classifier_config
from asdkit.models.classifier.train import ClassifierModel, train_classifier
from asdkit.scoring.kmeans import KMeansTargetScorer, unit_rows
from asdkit.training.engine import select_device

__all__ = ["ClassifierDetector", "branch_columns"]


def branch_columns(config: ClassifierConfig, branches: Sequence[str] | str | None) -> np.ndarray:
    """Indices of the embedding entries of ``branches`` (all of the network's when None), ndarray of int."""
    if branches is None:
        return np.arange(config.total_embedding_dim)
    wanted = [branches] if isinstance(branches, str) else list(branches)
    missing = [b for b in wanted if b not in config.branches]
    if missing or not wanted:
        raise ConfigError(f"ClassifierDetector: branches={branches!r}; the network has {list(config.branches)}.")
    d = config.embedding_dim
    return np.concatenate([np.arange(config.branches.index(b) * d, (config.branches.index(b) + 1) * d)
                           for b in wanted])


def _sections(table: pd.DataFrame) -> np.ndarray:
    """Each clip's section as a string: the table's column, else the file name's (``"00"`` where it has none)."""
    if "section" in table.columns:
        values = table["section"].tolist()
    else:
        values = [parse_filename(Path(p).name).section for p in table["path"]]
    return np.asarray(["00" if s is None or (isinstance(s, float) and np.isnan(s)) else str(s) for s in values],
                      dtype=str)


def _variant(score: str) -> dict:
    """The scorer's keywords for one of the detector's scores (the fitted ``target_prior`` for the default)."""
    return {"classifier": {}, "classifier_domain": {"target_prior": 0.0},
            "classifier_kmeans": {"raw": True}}[score]


def _as_before(raw: np.ndarray) -> np.ndarray:
    """Raw clip embeddings ``(n, dim)`` laid out column-major, as the scorers get them.

    Numpy sums a row-major row's squares pairwise but a column-major row's one
    after another, so the unit-length scaling (``unit_rows``) differs in the
    last bit between the layouts. Before the scorers were shared, the
    classifier scaled column-major arrays (a fancy-indexed column selection);
    keeping that layout keeps its embeddings and scores bit-identical.
    """
    return np.asfortranarray(raw)


class ClassifierDetector(Detector):
    """The classification-based model (Section 3.1 of the report, after Wilkinghoff) as a detector.

    A network (:func:`train_classifier`) learns to tell apart the classes of the
    normal training clips (machine type, section, domain, attribute values) of
    the machine type and its ``outliers``; a clip's embedding is the mean over
    its segments of the network's embedding. Per section, a
    :class:`~asdkit.scoring.kmeans.KMeansTargetScorer` keeps k-means centroids
    of the source-domain training embeddings and every target-domain one; the
    scores, each averaged over the networks, are

    * ``"classifier"`` (asdkit's default): the smaller of the distance to the
      nearest source centroid and to the nearest target embedding, each
      standardised by out-of-sample training distances: the source's by its
      own, the target's by its ten clips' statistics shrunk toward the
      source's by ``config.target_prior`` clips (10 by default); where a
      section has fewer than two training clips of a domain, the raw minimum;
    * ``"classifier_domain"``: the same without shrinkage, each domain by its
      own clips alone;
    * ``"classifier_kmeans"``: the report's (Wilkinghoff's) smallest cosine
      distance to the centroids and the target embeddings on one raw scale.

    Ten target clips lie farther from one another than a thousand source clips
    from their centroids, so on the raw scale a normal target clip looks as
    strange as a source anomaly. Standardised by its own ten clips alone,
    though, the target side is measured against noisy statistics, and the
    smaller of the two scores lets the target domain's anomalies through: on
    real DCASE ToyCar recordings they then rank below the source domain's
    normal clips and AUC(source) falls toward chance. The shrunk statistics
    sit between the two (:class:`~asdkit.scoring.kmeans.KMeansTargetScorer`).

    Parameters
    ----------
    preset : str or ClassifierConfig, default "quick"
    seed : int, default 0
        The networks' seeds (``seed, seed+1, ...``) and the k-means scorers'.
    device : str, default "auto"
    score : {"classifier", "classifier_domain", "classifier_kmeans"}, default "classifier"
        What :meth:`score_samples` returns.
    progress : bool, default False
    models : list of ClassifierModel, optional
        Networks already trained (e.g. ``train_classifier(root_training_table)``
        on every machine type of a root, shared by every machine type's
        detector); ``fit`` then only fits the scorers, with the networks'
        config (``n_clusters`` included). Not saved: a loaded detector has
        the fitted networks in its state.
    branches : sequence of str, optional
        Score with these branches' parts of the embedding only (default: all
        of the network's); shows what each branch contributes without
        training again.

    Attributes
    ----------
    models_ : list of ClassifierModel
    config_ : ClassifierConfig
        The networks' settings.
    sections_ : dict of str to list of KMeansTargetScorer
        Per section, one scorer per network.
    history_ : History
        Of the first network.
    train_scores_ : dict
        Each score of the training clips, ndarray of shape (n_train,), out of
        sample: a target clip is scored against the centroids and the other
        target embeddings, a source clip against centroids fitted without its
        fold (5 folds) and the target embeddings (**higher = more anomalous**).

    Notes
    -----
    Without ``models``, ``fit`` trains ``n_models`` networks on the training
    clips and ``outliers`` together, sorted by path: the same clips give the
    same network whichever machine type asks.
    """

    score_names = ("classifier", "classifier_domain", "classifier_kmeans")
    capabilities = frozenset({"target_prior"})
    transient_params = Detector.transient_params + ("models",)

    def __init__(self, preset: str | ClassifierConfig = "quick", seed: int = 0, device: str = "auto", *,
                 score: str = "classifier", progress: bool = False, models: list | None = None,
                 branches: Sequence[str] | None = None):
        self.preset = preset
        self.score = score
        self.seed = seed
        self.device = device
        self.progress = progress
        self.models = models
        self.branches = branches

    # ------------------------------------------------------------------ networks
    def _given_models(self) -> list:
        models = [self.models] if isinstance(self.models, ClassifierModel) else list(self.models)
        if not models:
            raise ConfigError("ClassifierDetector: models= is an empty list; give trained ClassifierModels "
                              "(train_classifier) or None to train in fit.")
        bad = sorted({type(m).__name__ for m in models if not isinstance(m, ClassifierModel)})
        if bad:
            raise ConfigError(f"ClassifierDetector: models= holds {bad}; give the ClassifierModels that "
                              "train_classifier returns.")
        return models

    def _train_networks(self, pool: pd.DataFrame, config: ClassifierConfig, seed: int) -> list:
        # the same clips in the same order, whichever machine type asked
        pool = pool.assign(_key=pool["path"].astype(str)).sort_values("_key", kind="stable").drop(columns="_key")
        pool = pool.reset_index(drop=True)
        return [train_classifier(pool, preset=config, seed=seed + i, device=self.device, progress=self.progress)
                for i in range(config.n_models)]

    def _raw_embeddings(self, paths: list, batch: int = 128) -> np.ndarray:
        """Per network, the mean over each clip's segments of the (scored branches') embedding, not normalised.

        Returns
        -------
        ndarray of shape (n_models, n_clips, dim), float32
        """
        fc = self.config_.feature_config
        device = select_device(self.device)
        cols = branch_columns(self.config_, self.branches)
        out = np.zeros((len(self.models_), len(paths), len(cols)), np.float32)
        per = max(1, batch // fc.n_segments)
        for j, m in enumerate(self.models_):
            m.net.to(device).eval()                       # no-op where it already is
            with torch.inference_mode():
                for s in range(0, len(paths), per):
                    segs = np.stack([clip_segments(load_clip(p, sr=fc.sr, min_seconds=fc.segment_seconds,
                                                             channels=fc.channels), config=fc)
                                     for p in paths[s:s + per]])               # (clips, n_seg, [2,] length)
                    x = torch.from_numpy(segs.reshape(-1, *segs.shape[2:])).to(device)
                    e = m.net(x).float().cpu().numpy().reshape(len(segs), fc.n_segments, -1)
                    out[j, s:s + len(segs)] = e.mean(axis=1)[:, cols]
        return out

    def embed(self, clips, *, batch: int = 128) -> np.ndarray:
        """Clip embeddings: the mean over a clip's segments of each network's embedding, unit length.

        Parameters
        ----------
        clips : clip table or list of wav paths
        batch : int, default 128
            Segments per forward pass.

        Returns
        -------
        ndarray of shape (n_models, n_clips, embedding_dim), float32
            ``embedding_dim`` counts the scored branches only (``branches=``).
        """
        if not hasattr(self, "models_"):
            raise NotFittedError("ClassifierDetector is not fitted: call fit(train_clips) first, or "
                                 "Detector.load(folder) for a saved one.")
        raw = self._raw_embeddings(clip_paths(clips, caller="ClassifierDetector.embed"), batch)
        return np.stack([unit_rows(_as_before(r)) for r in raw])

    # ------------------------------------------------------------------ fit / score
    def _fit(self, train: pd.DataFrame, *, outliers: pd.DataFrame | None,
             members: Mapping[str, Detector] | None) -> dict[str, np.ndarray]:
        seed = check_seed(self.seed)
        config = classifier_config(self.preset)
        if "domain" not in train.columns or train["domain"].isna().any():
            raise ConfigError("ClassifierDetector.fit: every training clip needs its domain (file names of the "
                              "2021-2024 naming, or a 'domain' column).")
        models = None
        if self.models is not None:
            models = self._given_models()
            config = models[0].config
        branch_columns(config, self.branches)                     # a wrong branch name fails before training
        if models is None:
            pool = train if outliers is None else pd.concat([train, outliers], ignore_index=True)
            models = self._train_networks(pool, config, seed)
        self.models_, self.config_, self.history_ = models, config, models[0].history

        raw = self._raw_embeddings(train["path"].astype(str).tolist())             # (n_models, n, d)
        sections, domains = _sections(train), train["domain"].to_numpy()
        scores = {name: np.zeros((len(models), len(train))) for name in self.score_names}
        self.sections_ = {}
        for sec in np.unique(sections):
            idx = np.flatnonzero(sections == sec)
            per_domain = min((domains[idx] == "source").sum(), (domains[idx] == "target").sum()) >= 2
            scorers = []
            for j in range(len(models)):
                # raw means: the scorer scales each to unit length once, as embed() does
                sc = KMeansTargetScorer(config.n_clusters, random_state=seed, per_domain=bool(per_domain),
                                        target_prior=config.target_prior)
                sc.fit(_as_before(raw[j][idx]), domains[idx])
                try:
                    for name in self.score_names:
                        scores[name][j, idx] = sc.training_scores(**_variant(name))
                except ConfigError:
                    raise ConfigError(f"ClassifierDetector: section {sec} has a single training clip; a clip "
                                      "cannot be scored against the others. Give each section at least two "
                                      "training clips.") from None
                scorers.append(sc)
            self.sections_[str(sec)] = scorers
        return {name: s.mean(axis=0) for name, s in scores.items()}

    def _score_all(self, clips: pd.DataFrame) -> dict[str, np.ndarray]:
        """Each of :attr:`score_names`, ndarray of shape (n_clips,), averaged over the networks.

        **Higher = more anomalous.**
        """
        sections = _sections(clips)
        unknown = sorted(set(sections) - set(self.sections_))
        if unknown:
            raise ConfigError(f"ClassifierDetector: section(s) {unknown} have no training clips (trained "
                              f"sections: {sorted(self.sections_)}); score clips of the trained sections.")
        raw = self._raw_embeddings(clips["path"].astype(str).tolist())
        out = {name: np.zeros(len(clips)) for name in self.score_names}
        for sec in np.unique(sections):
            idx = np.flatnonzero(sections == sec)
            for name in self.score_names:
                out[name][idx] = np.mean([sc.score_samples(_as_before(raw[j][idx]), **_variant(name))
                                          for j, sc in enumerate(self.sections_[sec])], axis=0)
        return out

    def prior_scores(self, clips, priors) -> dict:
        """The default score of ``clips`` under several ``target_prior`` values, from this one fit.

        Parameters
        ----------
        clips : clip table
        priors : sequence of float
            Weights, in clips, of the source's statistics in the target's (0: the
            ``classifier_domain`` score; ``math.inf``: the raw minimum's ranking).

        Returns
        -------
        dict of float to ndarray of shape (n_clips,)
            **Higher = more anomalous.**
        """
        self.check_fitted()
        sections = _sections(clips)
        raw = self._raw_embeddings(clips["path"].astype(str).tolist())
        out = {float(p): np.zeros(len(clips)) for p in priors}
        for sec in np.unique(sections):
            idx = np.flatnonzero(sections == sec)
            for p in out:
                out[p][idx] = np.mean([sc.score_samples(_as_before(raw[j][idx]), target_prior=p)
                                       for j, sc in enumerate(self.sections_[str(sec)])], axis=0)
        return out

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> dict:
        return {"networks": [m.get_state() for m in self.models_],
                "sections": {sec: [sc.get_state() for sc in scorers] for sec, scorers in self.sections_.items()}}

    def _set_state(self, state: dict) -> None:
        device = select_device(self.device)
        self.models_ = [ClassifierModel.from_state(s, device) for s in state["networks"]]
        self.config_ = self.models_[0].config
        self.history_ = self.models_[0].history
        self.sections_ = {str(sec): [KMeansTargetScorer.from_state(s) for s in scorers]
                          for sec, scorers in state["sections"].items()}
