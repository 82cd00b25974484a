"""OEVAE as an asdkit :class:`~asdkit.models.base.Detector`: :class:`OEVAEDetector`."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from asdkit.data.dataset import clip_table
from asdkit.errors import ConfigError
from asdkit.features.spectra import extract
from asdkit.models.base import Detector, check_seed
from asdkit.models.oevae.attributes import AttributeValues, attribute_values
from asdkit.models.oevae.config import OEVAEConfig, oevae_config
from asdkit.models.oevae.torch_model import OEVAENet
from asdkit.models.oevae.train import smote_segments, train_network
from asdkit.presets import is_integer
from asdkit.scoring.domain import DomainKNNScorer
from asdkit.scoring.knn import KNNScorer
from asdkit.scoring.normalize import ScoreNormalizer, shrink_domains
from asdkit.training.engine import History, seeded, select_device

__all__ = ["OEVAEDetector"]


class OEVAEDetector(Detector):
    """OEVAE: an outlier-exposed ResNet18 trained jointly with a domain-invariant VAE, and a KNN inlier model.

    Scores (:meth:`score_all`; **higher = more anomalous** for each):
    ``alpha`` = ``-log N(mu_c; 0, I)`` of the VAE's posterior mean of ``z_c``;
    ``beta`` = the mean Euclidean distance to the ``n_neighbors`` nearest
    embeddings of normal training segments; a clip's alpha and beta are means
    over its 8 segments; ``oevae`` = ``w * alpha + (1 - w) * beta`` on
    standardised scores. Two ways of banking the training segments and
    standardising the scores, both fitted and scored every time:

    * ``"beta"``, ``"oevae"`` (asdkit's default): beta from a source bank and
      a target bank of real training segments, each standardised by its own
      domain's leave-one-clip-out clip scores, the target's ten clips'
      statistics shrunk toward the source's by ``config.target_prior`` clips
      (:class:`~asdkit.scoring.domain.DomainKNNScorer`), the smaller of the
      two; alpha standardised likewise by each domain's training clips; ``oevae`` = the
      smaller over the domains of ``w * alpha_d + (1 - w) * beta_d`` (where a
      domain has fewer than two training clips, the pooled scores);
    * ``"oevae_domain"``: as ``"oevae"`` without shrinkage, each domain by its
      own clips alone;
    * ``"beta_pooled"``, ``"oevae_pooled"`` (the report's): one bank of every
      training segment (SMOTE's included), alpha and beta standardised by all
      training clips.

    Parameters
    ----------
    preset : str or OEVAEConfig, default "quick"
        A name of :data:`~asdkit.models.oevae.config.OEVAE_PRESETS` or a config.
    seed : int, default 0
    device : str, default "auto"
    score : {"oevae", "alpha", "beta", "oevae_pooled", "beta_pooled", "oevae_domain"}, default "oevae"
        What :meth:`score_samples` returns.
    attribute : str, optional
        The attribute ``v`` follows (default: see
        :func:`~asdkit.models.oevae.attributes.attribute_values`).
    cache : FeatureCache, optional
        Log-mel features are read from / stored in it.
    progress : bool, default False
    checkpoint_dir : path, optional
        Engine checkpoints (resume after an interruption).

    Attributes
    ----------
    config_ : OEVAEConfig
    net_ : OEVAENet
    history_ : asdkit.training.engine.History
        Joint loss per epoch.
    epoch_log_ : pandas.DataFrame
        Per epoch: ``machine_loss``, ``kl``, ``recon`` (per normal segment) and
        ``oe_accuracy`` (share of the batch segments the classifier put on the
        right side, pseudo-anomalies included).
    attribute_ : AttributeValues
        ``v`` of the training clips, ``k`` and where ``v`` came from.
    smote_counts_ : dict of str to (int, int)
        Segments per group before and after SMOTE (empty when off).
    knn_ : asdkit.scoring.knn.KNNScorer
        On the embeddings of the training segments (SMOTE's included), grouped
        by clip: the pooled bank (``beta_pooled``).
    beta_scorer_ : asdkit.scoring.domain.DomainKNNScorer or None
        The per-domain banks (None where a domain has fewer than two training clips).
    normalizers_ : dict of str to asdkit.scoring.normalize.ScoreNormalizer
        ``"alpha"`` and ``"beta"`` (pooled: fitted on all training clips) and,
        with per-domain banks, ``"alpha@source"`` and ``"alpha@target"``.
    n_segments_ : int
        Segments per clip.
    train_scores_, thresholds_, threshold_, n_train_
        See :class:`~asdkit.models.base.Detector`; the training clips' ``beta``
        is leave-one-clip-out.

    Notes
    -----
    * **Features**: log-mel of 8 segments of 2 s per clip (the report's
      preprocessing, :func:`asdkit.features.spectra.extract`).
    * **Pseudo-anomalies**: training clips of the root's other machine types
      (``outliers=``), all of their segments, drawn uniformly at random, as
      many per batch as normal segments.
    * **SMOTE** interpolates in the **log-mel input space** (flattened 2-s
      segments) within groups "domain | v" of the target machine type's
      training segments, before training; the new segments train the
      extractor and the VAE (``v`` interpolated alongside) and join the KNN's
      inlier set.
    * **Mixup** acts on the training batches only (normal with normal,
      pseudo-anomaly with pseudo-anomaly; ``k v`` mixed with the same weight).
    * **VAE optimiser**: one Adam over all parameters, but the VAE's
      parameter group has ``eps = 1e-8 * lambda_vae``
      (:func:`~asdkit.models.oevae.train.oevae_optimizer`). Adam's steps do
      not depend on the scale of the loss except through ``eps``; with
      ``lambda_vae = 1e-7`` the VAE's gradients (~1e-7) would otherwise sit at
      ``eps`` and the VAE would barely train. So ``lambda_vae`` weighs how much
      the VAE shapes the extractor, as the report intends, while the VAE itself
      trains at Adam's usual pace.
    * **alpha** uses the posterior mean ``mu_c``; **beta** the KNN on
      embeddings; each is standardised by the mean and standard deviation of
      its training-clip scores (beta's from leave-one-clip-out neighbours) before
      ``w * alpha + (1 - w) * beta``.
    * **Per-domain banks** hold real segments only: SMOTE's segments lie next
      to the clips they were made from and would shrink a target clip's
      leave-one-clip-out distance, so the target domain's spread; they still
      train the network.
    """

    score_names = ("oevae", "alpha", "beta", "oevae_pooled", "beta_pooled", "oevae_domain")
    capabilities = frozenset({"target_prior"})

    def __init__(self, preset: str | OEVAEConfig = "quick", seed: int = 0, device: str = "auto", *,
                 score: str = "oevae", attribute: str | None = None, cache=None, progress: bool = False,
                 checkpoint_dir=None):
        self.preset = preset
        self.seed = seed
        self.device = device
        self.score = score
        self.attribute = attribute
        self.cache = cache
        self.progress = progress
        self.checkpoint_dir = checkpoint_dir

    # ------------------------------------------------------------------ features and embeddings
    def _features(self, paths: Sequence[str]) -> np.ndarray:
        """Log-mel segments of the clips, shape (n_clips, n_segments, n_mels, n_frames), float32."""
        return extract([str(p) for p in paths], kind="log_mel", config=self.config_.feature_config,
                       cache=self.cache, device=self.device_, progress=self.progress, dtype=np.float32)

    def _embed_segments(self, segs: np.ndarray, batch: int = 256) -> np.ndarray:
        """Embeddings of segments (n, n_mels, n_frames): shape (n, embedding_dim), float32."""
        out = []
        with torch.inference_mode():
            for s in range(0, len(segs), batch):
                x = torch.from_numpy(np.asarray(segs[s:s + batch], dtype=np.float32)).to(self.device_)
                out.append(self.net_(x).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.config_.embedding_dim), np.float32)

    def _latent_mu(self, emb: np.ndarray) -> np.ndarray:
        """The VAE's posterior means of embeddings (n, dim): shape (n, latent)."""
        with torch.inference_mode():
            return self.net_.vae(torch.from_numpy(emb).to(self.device_)).mu.float().cpu().numpy()

    def _alpha(self, emb: np.ndarray, n_clips: int, n_seg: int) -> np.ndarray:
        """Clip alpha, shape (n_clips,): ``-log p(mu_c)`` of each segment embedding, averaged over the clip."""
        nll = self.net_.vae.nll_zc(torch.from_numpy(self._latent_mu(emb))).numpy()
        return nll.reshape(n_clips, n_seg).mean(axis=1)

    def embed(self, clips) -> np.ndarray:
        """``f_FE`` embeddings of the clips' segments.

        Parameters
        ----------
        clips : clip table or list of wav paths

        Returns
        -------
        ndarray of shape (n_clips, n_segments, embedding_dim), float32
        """
        self.check_fitted()
        feats = self._features(clip_table(clips, name="clips")["path"])
        n, s = feats.shape[:2]
        return self._embed_segments(feats.reshape(n * s, *feats.shape[2:])).reshape(n, s, -1)

    def latents(self, clips) -> np.ndarray:
        """The VAE's posterior means of the clips' segments.

        Returns
        -------
        ndarray of shape (n_clips, n_segments, latent), float32
            ``[..., :n_zd]`` is ``z_d``, the rest ``z_c``.
        """
        emb = self.embed(clips)
        n, s, d = emb.shape
        return self._latent_mu(emb.reshape(n * s, d)).reshape(n, s, -1)

    # ------------------------------------------------------------------ fit
    def _fit(self, train: pd.DataFrame, *, outliers: pd.DataFrame | None,
             members: Mapping[str, Detector] | None) -> dict[str, np.ndarray]:
        config = oevae_config(self.preset)
        seed = check_seed(self.seed)
        if outliers is None or len(outliers) == 0:
            raise ConfigError("OEVAE needs pseudo-anomalies: pass outliers= with training clips of other machine "
                              "types (asdkit run does this from the other machine types in the root; a root with "
                              "one machine type cannot train OEVAE).")
        out_paths = [str(p) for p in outliers["path"]]
        self.config_ = config
        self.device_ = select_device(self.device)
        rng = np.random.default_rng(seed)
        if config.max_outliers is not None and len(out_paths) > config.max_outliers:
            pick = np.sort(rng.choice(len(out_paths), config.max_outliers, replace=False))
            out_paths = [out_paths[i] for i in pick]

        attr = attribute_values(train, attribute=self.attribute, k_scale=config.k_scale,
                                sr=config.feature_config.sr, channels=config.channels)
        feats = self._features(train["path"])                      # (n_clips, 8, n_mels, T)
        n_clips, n_seg = feats.shape[:2]
        segs = feats.reshape(n_clips * n_seg, *feats.shape[2:])
        groups = (train["domain"].astype(str) + "|" + pd.Series(attr.v).round(6).astype(str)).to_numpy()
        segs, seg_v, seg_clip, counts = smote_segments(segs, np.repeat(attr.v, n_seg),
                                                       np.repeat(np.arange(n_clips), n_seg),
                                                       np.repeat(groups, n_seg), config=config, seed=seed)
        out_feats = self._features(out_paths)
        out_segs = out_feats.reshape(-1, *out_feats.shape[2:])
        del out_feats
        net, history, log = train_network(config, segs, seg_v, out_segs, k=attr.k, seed=seed, device=self.device_,
                                          progress=self.progress, checkpoint_dir=self.checkpoint_dir)
        del out_segs
        self.net_, self.history_, self.epoch_log_ = net, history, log
        self.attribute_, self.smote_counts_, self.n_segments_ = attr, counts, int(n_seg)

        # second step: the inlier model and the score statistics, from training data only
        emb = self._embed_segments(segs)
        self.knn_ = KNNScorer(config.n_neighbors).fit(emb, groups=seg_clip)
        n_real = n_clips * n_seg
        beta = self.knn_.training_scores(n=n_real).reshape(n_clips, n_seg).mean(axis=1)
        alpha = self._alpha(emb[:n_real], n_clips, n_seg)
        self.normalizers_ = {"alpha": ScoreNormalizer().fit(alpha), "beta": ScoreNormalizer().fit(beta)}
        pooled = self.combine(self.normalizers_["alpha"].transform(alpha), self.normalizers_["beta"].transform(beta))
        out = {"alpha": alpha, "beta_pooled": beta, "oevae_pooled": pooled, "beta": beta, "oevae": pooled,
               "oevae_domain": pooled}
        doms = train["domain"].astype(str).to_numpy()
        self.beta_scorer_ = None
        if min((doms == "source").sum(), (doms == "target").sum()) >= 2:
            self.beta_scorer_ = DomainKNNScorer(config.n_neighbors, target_prior=config.target_prior).fit(
                emb[:n_real].reshape(n_clips, n_seg, -1), doms)
            for d in self.beta_scorer_.domains_:
                self.normalizers_[f"alpha@{d}"] = ScoreNormalizer().fit(alpha[doms == d])
            za, zb = self._alpha_columns(alpha), self.beta_scorer_.train_domain_scores_
            out.update(beta=zb.min(axis=1), oevae=self.combine(za, zb),
                       oevae_domain=self.combine(self._alpha_columns(alpha, 0.0),
                                                 self.beta_scorer_.training_domain_scores(0.0)))
        return out

    # ------------------------------------------------------------------ scoring
    @property
    def domains_(self) -> tuple:
        """The columns of the per-domain components: the training domains (``("all",)`` without per-domain banks)."""
        return ("all",) if self.beta_scorer_ is None else self.beta_scorer_.domains_

    def _alpha_columns(self, alpha: np.ndarray, target_prior: float | None = None) -> np.ndarray:
        """Alpha standardised per domain, shape (n_clips, n_domains); smaller domains shrunk as beta's (default)."""
        bs = self.beta_scorer_
        norms = shrink_domains({d: self.normalizers_[f"alpha@{d}"] for d in bs.domains_}, bs.counts_,
                               bs.target_prior if target_prior is None else target_prior)
        return np.stack([norms[d].transform(alpha) for d in bs.domains_], axis=1)

    def combine(self, alpha, beta, w: float | None = None) -> np.ndarray:
        """The ``oevae`` score from standardised alpha and beta: ``w * alpha + (1 - w) * beta``, smallest over domains.

        Parameters
        ----------
        alpha, beta : array-like of shape (n_clips,) or (n_clips, n_domains)
            **Standardised** components, as :meth:`components` gives them: one
            column per domain of ``domains_`` (per-domain), or one (pooled,
            where 1-D arrays are accepted too).
        w : float in [0, 1], optional
            Default ``config_.w``.

        Returns
        -------
        ndarray of shape (n_clips,)
            **Higher = more anomalous.**
        """
        if not hasattr(self, "normalizers_"):
            self.check_fitted()
        w = self.config_.w if w is None else w
        if isinstance(w, bool) or not isinstance(w, (int, float, np.number)) or not 0 <= w <= 1:
            raise ConfigError(f"w={w!r}: must lie in [0, 1].")
        a, b = np.asarray(alpha, dtype=np.float64), np.asarray(beta, dtype=np.float64)
        if a.shape != b.shape:
            raise ConfigError(f"OEVAEDetector.combine: alpha {a.shape} and beta {b.shape} differ in shape.")
        mixed = float(w) * a + (1 - float(w)) * b
        return mixed.min(axis=1) if mixed.ndim == 2 else mixed

    def _standardised(self, flat: np.ndarray, n: int, s: int, k: int | None = None, pooled: bool = False) -> tuple:
        """Raw alpha and the standardised (alpha, beta) columns of segment embeddings ``flat`` for ``k`` neighbours."""
        k = self.config_.n_neighbors if k is None else int(k)
        alpha = self._alpha(flat, n, s)
        if not pooled and self.beta_scorer_ is not None:
            scorer = self.beta_scorer_ if k == self.beta_scorer_.n_neighbors else DomainKNNScorer(
                k, target_prior=self.beta_scorer_.target_prior).fit(
                self._train_clip_embeddings(), self.beta_scorer_.train_domains_)
            return alpha, self._alpha_columns(alpha), scorer.domain_scores(flat.reshape(n, s, -1))
        knn, norm = self._beta_model(k)
        beta = knn.score_samples(flat).reshape(n, s).mean(axis=1)
        return alpha, self.normalizers_["alpha"].transform(alpha)[:, None], norm.transform(beta)[:, None]

    def _train_clip_embeddings(self) -> np.ndarray:
        """The real training segments' embeddings, shape (n_train, n_segments, dim)."""
        n, s = self.n_train_, self.n_segments_
        return self.knn_.embeddings_[:n * s].reshape(n, s, -1)

    def _score_all(self, clips: pd.DataFrame) -> dict[str, np.ndarray]:
        emb = self.embed(clips)
        n, s, d = emb.shape
        flat = emb.reshape(n * s, d)
        alpha = self._alpha(flat, n, s)
        beta = self.knn_.score_samples(flat).reshape(n, s).mean(axis=1)
        pooled = self.combine(self.normalizers_["alpha"].transform(alpha), self.normalizers_["beta"].transform(beta))
        out = {"alpha": alpha, "beta_pooled": beta, "oevae_pooled": pooled, "beta": beta, "oevae": pooled,
               "oevae_domain": pooled}
        if self.beta_scorer_ is not None:
            raw = self.beta_scorer_.raw_domain_scores(emb)            # the banks are searched once
            zb = self.beta_scorer_.standardise(raw)
            out.update(beta=zb.min(axis=1), oevae=self.combine(self._alpha_columns(alpha), zb),
                       oevae_domain=self.combine(self._alpha_columns(alpha, 0.0),
                                                 self.beta_scorer_.standardise(raw, 0.0)))
        return out

    def prior_scores(self, clips, priors) -> dict:
        """``{target_prior: oevae score}`` of the clips from this one fit (0: ``oevae_domain``), **higher = more
        anomalous**; without per-domain banks the pooled score for every prior."""
        if self.beta_scorer_ is None:
            pooled = self.score_all(clips)["oevae_pooled"]
            return {float(p): pooled for p in priors}
        emb = self.embed(clips)
        n, s, d = emb.shape
        alpha = self._alpha(emb.reshape(n * s, d), n, s)
        raw = self.beta_scorer_.raw_domain_scores(emb)
        return {float(p): self.combine(self._alpha_columns(alpha, float(p)),
                                       self.beta_scorer_.standardise(raw, float(p))) for p in priors}

    def _beta_model(self, k: int) -> tuple[KNNScorer, ScoreNormalizer]:
        """The pooled KNN and beta normaliser for ``k`` neighbours: the fitted ones, or new local ones."""
        if k == self.knn_.n_neighbors:
            return self.knn_, self.normalizers_["beta"]
        knn = KNNScorer(k).fit(self.knn_.embeddings_, groups=self.knn_.groups_)
        n, s = self.n_train_, self.n_segments_
        return knn, ScoreNormalizer().fit(knn.training_scores(n=n * s).reshape(n, s).mean(axis=1))

    def components(self, clips, ks: Sequence[int] = (1, 2, 4), *, pooled: bool = False) -> pd.DataFrame:
        """Standardised alpha and beta of each clip for several KNN neighbour counts (the w/k sweep's input).

        Pure: nothing is stored on the detector. For a ``k`` other than the
        fitted ``config_.n_neighbors``, the banks are rebuilt from the same
        training embeddings and beta's statistics are fitted on the training
        clips' leave-one-clip-out scores for that ``k``, on the fly.

        Parameters
        ----------
        clips : clip table or list of wav paths
        ks : sequence of int, default (1, 2, 4)
            Neighbour counts (the report chooses from 1, 2 and 4).
        pooled : bool, default False
            The report's pooled components instead of the per-domain ones.

        Returns
        -------
        pandas.DataFrame
            ``len(ks) * n_clips`` rows, ``k`` by ``k`` in the order of ``ks``
            and the clips in their order within each; columns ``row`` (the
            clip's row position in ``clips``), ``k``, and the standardised
            components (**higher = more anomalous**): ``alpha@source``,
            ``alpha@target``, ``beta@source``, ``beta@target`` (per domain), or
            ``alpha`` and ``beta`` (``pooled``, or without per-domain banks).
            At the fitted ``k``, :meth:`combine` of the alpha and the beta
            columns with weight ``w`` gives :meth:`score_all`'s ``oevae``
            (``oevae_pooled``).
        """
        self.check_fitted()
        ks = list(ks)
        bad = [k for k in ks if not is_integer(k) or not 1 <= k < self.knn_.embeddings_.shape[0]]
        if bad or not ks:
            raise ConfigError(f"OEVAEDetector.components: ks={ks!r}; give positive integer neighbour counts "
                              f"below the {self.knn_.embeddings_.shape[0]} training segments.")
        emb = self.embed(clips)
        n, s, d = emb.shape
        flat = emb.reshape(n * s, d)
        suffix = [""] if pooled or self.beta_scorer_ is None else [f"@{x}" for x in self.domains_]
        parts = []
        for k in ks:
            _, za, zb = self._standardised(flat, n, s, int(k), pooled=pooled)
            cols = {"row": np.arange(n), "k": int(k)}
            cols.update({f"alpha{x}": za[:, j] for j, x in enumerate(suffix)})
            cols.update({f"beta{x}": zb[:, j] for j, x in enumerate(suffix)})
            parts.append(pd.DataFrame(cols))
        return pd.concat(parts, ignore_index=True)

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> dict:
        return {
            "config": self.config_.to_dict(),
            "net": dict(self.net_.state_dict()),
            "history": self.history_.to_dict(),
            "epoch_log": self.epoch_log_,
            "attribute": self.attribute_.to_state(),
            "smote_counts": {str(g): (int(a), int(b)) for g, (a, b) in self.smote_counts_.items()},
            "n_segments": int(self.n_segments_),
            "knn": self.knn_.get_state(),
            "normalizers": {name: norm.get_state() for name, norm in self.normalizers_.items()},
            **({"beta_scorer": self.beta_scorer_.get_state()} if self.beta_scorer_ is not None else {}),
        }

    def _set_state(self, state: dict) -> None:
        self.config_ = OEVAEConfig(**state["config"])
        self.device_ = select_device(self.device)
        with seeded(0):                                  # the initial weights are replaced; the global RNG is kept
            net = OEVAENet(self.config_)
        net.load_state_dict(state["net"])
        self.net_ = net.to(self.device_).eval()
        self.history_ = History.from_dict(state["history"])
        self.epoch_log_ = state["epoch_log"]
        self.attribute_ = AttributeValues.from_state(state["attribute"])
        self.smote_counts_ = {g: tuple(c) for g, c in state["smote_counts"].items()}
        self.n_segments_ = int(state["n_segments"])
        self.knn_ = KNNScorer.from_state(state["knn"])
        self.normalizers_ = {name: ScoreNormalizer.from_state(s) for name, s in state["normalizers"].items()}
        self.beta_scorer_ = DomainKNNScorer.from_state(state["beta_scorer"]) if "beta_scorer" in state else None
