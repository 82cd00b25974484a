"""OEVAE: an outlier-exposed ResNet18 trained jointly with a domain-invariant VAE, and a KNN inlier model.

Section 3.2 and 4 of the technical report, as asdkit blocks:

* ``f_FE`` (:class:`asdkit.models.resnet.ResNet18`) maps a 2-s log-mel segment to an
  embedding;
* ``g_machine`` (:class:`MachineHead`) tells the target machine type's clips
  (t = 1) from clips of the root's other machine types (t = 0, pseudo-anomalies,
  drawn 1:1 in every batch): binary cross-entropy ``L_machine``;
* a VAE (:class:`DomainVAE`) on the embeddings of the normal clips only, with a
  64-channel latent split into ``z_d`` (8 channels, prior N(k v, 1)) and ``z_c``
  (56 channels, prior N(0, 1)); ``L_vae1`` is the two KL terms, ``L_vae2`` the
  squared error of the reconstructed embedding;
* ``L = L_machine + lambda_vae (L_vae1 + L_vae2)`` trained end to end with Adam;
* then the anomaly scores of a 2-s segment: ``alpha = -log N(mu_c; 0, I)`` (the
  VAE's posterior mean of ``z_c``) and ``beta`` = the mean Euclidean distance to
  the ``n_neighbors`` nearest embeddings of the normal training segments
  (:class:`sklearn.neighbors.NearestNeighbors`); a clip's score is the mean over
  its 8 segments, and the final score ``w * alpha + (1 - w) * beta`` on
  normalised scores (:class:`ScoreNormalizer`).

Where the report leaves a choice open, :class:`OEVAEConfig` and
:class:`OEVAEDetector` document what asdkit does: the attribute value ``v``
(:func:`attribute_values`), ``k``, the normalisation of alpha and beta, where
SMOTE and Mixup act, and the optimiser settings of the VAE.
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import NamedTuple, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from asdkit.features.augment import mixup, smote
from asdkit.training.engine import History, TrainConfig, fit as engine_fit, seeded, select_device
from asdkit.errors import ConfigError, DatasetError
from asdkit.presets import named_preset
from asdkit.features.spectra import FEATURE_PRESETS, FeatureConfig, extract
from asdkit.scoring.threshold import gamma_threshold
from asdkit.models.resnet import ResNet18

__all__ = [
    "OEVAEConfig", "OEVAE_PRESETS", "oevae_config", "attribute_values", "AttributeValues", "MachineHead",
    "DomainVAE", "VAEOutput", "OEVAENet", "oevae_loss", "ScoreNormalizer", "KNNInlier", "OEVAEDetector",
    "SCORE_KEYS", "ablation_table", "AUGMENTATION_VARIANTS",
]

#: Scores :meth:`OEVAEDetector.score_all` returns.
SCORE_KEYS = ("alpha", "beta", "oevae")


# --------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class OEVAEConfig:
    """Settings of OEVAE (frozen; vary with :func:`oevae_config`).

    Attributes
    ----------
    features : str
        Log-mel preset of :data:`asdkit.features.spectra.FEATURE_PRESETS` (``"paper"``:
        224 bands, 8 segments of 2 s per clip).
    width : int
        ResNet18 width (64 = the standard ResNet18; embedding = ``8 * width``).
    vae_hidden : int
        Hidden units of the VAE's encoder and decoder (one hidden layer each).
    latent, n_zd : int
        Latent channels, of which the first ``n_zd`` are ``z_d``.
    k_scale : float
        ``k = k_scale / (smallest distance between distinct v)`` (report: 5).
    lambda_vae : float
        Weight of the VAE terms in the joint loss (report: 1e-7).
    epochs, batch_size, lr : int, int, float
        Adam; ``batch_size`` counts both halves of a batch (normal clips and
        pseudo-anomalies, 1:1).
    mixup, mixup_alpha : bool, float
        Mix each normal segment with another normal segment (and each
        pseudo-anomaly with another pseudo-anomaly) of the batch,
        ``lam ~ Beta(alpha, alpha)``, ``v`` mixed with the same weight.
    smote, smote_ratio, smote_k : bool, float, int
        SMOTE in the log-mel input space over groups domain x attribute value:
        every group is raised to ``smote_ratio`` x the largest group's size.
    n_neighbors : int
        KNN neighbours for beta (report: chosen from 1, 2, 4).
    w : float
        Weight of alpha in the final score.
    max_outliers : int or None
        Cap on the pseudo-anomaly clips (drawn evenly over the other machine
        types, seeded); None = all.
    """

    features: str = "paper"
    width: int = 64
    vae_hidden: int = 256
    latent: int = 64
    n_zd: int = 8
    k_scale: float = 5.0
    lambda_vae: float = 1e-7
    epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-3
    mixup: bool = True
    mixup_alpha: float = 0.2
    smote: bool = True
    smote_ratio: float = 1.0
    smote_k: int = 5
    n_neighbors: int = 1
    w: float = 0.5
    max_outliers: int | None = None

    def __post_init__(self):
        if self.features not in FEATURE_PRESETS:
            raise ConfigError(f"OEVAEConfig.features={self.features!r}: choose one of {sorted(FEATURE_PRESETS)}.")
        for name in ("width", "vae_hidden", "latent", "n_zd", "epochs", "batch_size", "n_neighbors", "smote_k"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ConfigError(f"OEVAEConfig.{name}={v!r}: must be a positive integer.")
        if self.n_zd >= self.latent:
            raise ConfigError(f"OEVAEConfig: n_zd={self.n_zd} must be smaller than latent={self.latent}.")
        if self.batch_size < 4 or self.batch_size % 2:
            raise ConfigError(f"OEVAEConfig.batch_size={self.batch_size}: must be even and at least 4 "
                              "(half normal clips, half pseudo-anomalies).")
        if not 0 <= self.w <= 1:
            raise ConfigError(f"OEVAEConfig.w={self.w!r}: must lie in [0, 1].")
        if not self.lambda_vae > 0 or not self.lr > 0 or not self.k_scale > 0:
            raise ConfigError("OEVAEConfig: lambda_vae, lr and k_scale must be positive.")
        if not 0 < self.smote_ratio <= 1:
            raise ConfigError(f"OEVAEConfig.smote_ratio={self.smote_ratio!r}: must lie in (0, 1].")

    @property
    def feature_config(self) -> FeatureConfig:
        return FEATURE_PRESETS[self.features]

    @property
    def embedding_dim(self) -> int:
        return 8 * self.width

    def to_dict(self) -> dict:
        return asdict(self)


#: Named settings.
#:
#: ``paper``: the report's (224 mels, ResNet18 of width 64, 20 epochs, batch
#: 128, Adam 1e-3, lambda 1e-7, 64 latent channels of which 8 are z_d); a GPU job.
#: ``cpu``: 64 mels, width 16 (embedding 128), 2 epochs, batch 64, SMOTE up to
#: half the largest group, at most 1500 pseudo-anomaly clips; for the embedded
#: paper dataset on 2 CPU cores within the shared 30-minute budget (measured on
#: paper-size SynFan: 66 s per epoch of 9 240 segments, 0.23 s per step).
#: ``quick``: 64 mels, width 8, 3 epochs, batch 32; tests, notebooks, demo.
OEVAE_PRESETS: dict[str, OEVAEConfig] = {
    "paper": OEVAEConfig(),
    "cpu": OEVAEConfig(features="quick", width=16, vae_hidden=128, epochs=2, batch_size=64, smote_ratio=0.5,
                       max_outliers=1500),
    "quick": OEVAEConfig(features="quick", width=8, vae_hidden=64, epochs=3, batch_size=32),
}


def oevae_config(preset: str | OEVAEConfig = "paper", **overrides) -> OEVAEConfig:
    """A named :class:`OEVAEConfig`, optionally with some fields replaced.

    >>> oevae_config("quick", epochs=1).epochs
    1
    """
    return named_preset(OEVAE_PRESETS, preset, "OEVAE", "oevae_config", **overrides)


# --------------------------------------------------------------------------- the attribute value v
class AttributeValues(NamedTuple):
    """What :func:`attribute_values` returns.

    Attributes
    ----------
    v : ndarray of shape (n_clips,)
        The value of each clip, centred on the training clips' mean.
    k : float
        ``k_scale / (smallest distance between distinct values)``.
    source : str
        ``"attribute <name>"`` (numeric), ``"attribute <name> (categorical: a=0, b=1, ...)"``
        or ``"power (dB, rounded to 1 dB)"``.
    codes : dict or None
        Categorical value -> number.
    """

    v: np.ndarray
    k: float
    source: str
    codes: dict | None


def _mean_power_db(paths, sr: int) -> np.ndarray:
    from asdkit.data.audio import load_clip

    return np.array([10 * np.log10(np.mean(np.square(load_clip(p, sr=sr), dtype=np.float64)) + 1e-12)
                     for p in paths])


_NUMBER = re.compile(r"^([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)([A-Za-z%]*)$")


def _numeric(raw) -> tuple[np.ndarray, str] | None:
    """Numbers with one common unit suffix (``1200rpm``, ``40kg``, ``3``), else None."""
    parsed = [_NUMBER.match(str(r).strip()) for r in raw]
    if not all(parsed) or len({m.group(2) for m in parsed}) != 1:
        return None
    return np.array([float(m.group(1)) for m in parsed]), parsed[0].group(2)


def attribute_values(clips: pd.DataFrame, *, attribute: str | None = None, k_scale: float = 5.0,
                     sr: int = 16000) -> AttributeValues:
    """The value ``v`` of each clip that ``z_d`` follows (prior ``N(k v, 1)``).

    The report trains with "a randomly selected attribute parameter", or the
    clip's average power for machine types without attributes. asdkit chooses
    deterministically:

    * ``attribute`` if given; else the first attribute (in file-name order)
      whose training values differ between the source and the target domain
      (the one most likely to cause the shift); else the first attribute;
    * numeric attributes (a number with one common unit suffix, ``1200rpm``)
      are used as numbers; categorical ones are mapped to 0, 1, 2, ... in
      sorted order of their values;
    * without attributes (``noAttribute``), the clip's mean power
      ``10 log10(mean(y**2))`` of the raw waveform in dB, **rounded to 1 dB**
      so that "the smallest distance between distinct values" is defined (1 dB).

    ``v`` is centred on its mean over ``clips`` (the prior's means ``k v`` then
    lie around 0; the distances, hence ``k``, do not change).

    Parameters
    ----------
    clips : DataFrame
        A clip table of one machine type (``attributes``, ``domain``, ``path``
        columns), normally its training clips.
    attribute : str, optional
    k_scale : float, default 5.0
    sr : int, default 16000

    Returns
    -------
    AttributeValues
    """
    attrs = [a if isinstance(a, dict) else {} for a in clips["attributes"]]
    names = list(dict.fromkeys(k for a in attrs for k in a))
    codes = None
    if attribute is not None and attribute not in names:
        raise ConfigError(f"attribute {attribute!r} is not in these clips' names; they have {names or 'none'}.")
    if names:
        if attribute is None:
            dom = clips["domain"].to_numpy()
            attribute = names[0]
            for n in names:
                src = {a.get(n) for a, d in zip(attrs, dom) if d == "source"}
                tgt = {a.get(n) for a, d in zip(attrs, dom) if d == "target"}
                if src and tgt and src != tgt:
                    attribute = n
                    break
        raw = [a.get(attribute) for a in attrs]
        if any(r is None for r in raw):
            raise DatasetError(f"attribute {attribute!r} is missing from some clips' names.")
        numeric = _numeric(raw)
        if numeric is not None:
            values, unit = numeric
            source = f"attribute {attribute}" + (f" ({unit})" if unit else "")
        else:
            levels = sorted(set(map(str, raw)))
            codes = {lv: i for i, lv in enumerate(levels)}
            values = np.array([codes[str(r)] for r in raw], dtype=float)
            source = f"attribute {attribute} (categorical: " + ", ".join(f"{k}={v}" for k, v in codes.items()) + ")"
    else:
        values = np.round(_mean_power_db(clips["path"], sr))
        source = "power (dB, rounded to 1 dB)"
    distinct = np.unique(values)
    step = float(np.min(np.diff(distinct))) if distinct.size > 1 else 1.0
    return AttributeValues(v=values - values.mean(), k=float(k_scale / step), source=source, codes=codes)


# --------------------------------------------------------------------------- networks
class MachineHead(nn.Module):
    """``g_machine``: a fully connected binary classifier on the embedding (logit of "target machine")."""

    def __init__(self, dim: int, hidden: int = 128):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 1))

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        return self.net(e).squeeze(-1)


class VAEOutput(NamedTuple):
    """``mu``, ``logvar`` (batch, latent), ``recon`` (batch, dim)."""

    mu: torch.Tensor
    logvar: torch.Tensor
    recon: torch.Tensor


class DomainVAE(nn.Module):
    """VAE on embeddings whose latent is split into ``z_d`` (first ``n_zd`` channels) and ``z_c``.

    Encoder ``dim -> hidden -> (mu, logvar)``, decoder ``latent -> hidden -> dim``,
    ReLU. In training the latent is sampled (reparameterisation); in eval mode
    the decoder reads ``mu``.
    """

    def __init__(self, dim: int, hidden: int = 256, latent: int = 64, n_zd: int = 8):
        super().__init__()
        self.latent, self.n_zd = latent, n_zd
        self.encoder = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(inplace=True))
        self.mu = nn.Linear(hidden, latent)
        self.logvar = nn.Linear(hidden, latent)
        self.decoder = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, dim))

    def forward(self, e: torch.Tensor) -> VAEOutput:
        h = self.encoder(e)
        mu, logvar = self.mu(h), self.logvar(h).clamp(-10.0, 10.0)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        return VAEOutput(mu, logvar, self.decoder(z))

    def kl(self, out: VAEOutput, prior_mean_d: torch.Tensor) -> torch.Tensor:
        """Per-sample KL of the posterior to ``N(prior_mean_d, 1)`` on ``z_d`` and ``N(0, 1)`` on ``z_c``."""
        prior = torch.zeros_like(out.mu)
        prior[:, :self.n_zd] = prior_mean_d.reshape(-1, 1).to(out.mu.dtype)
        return 0.5 * (out.logvar.exp() + (out.mu - prior) ** 2 - 1 - out.logvar).sum(dim=1)

    def nll_zc(self, mu: torch.Tensor) -> torch.Tensor:
        """``alpha = -log N(mu_c; 0, I)`` per sample."""
        zc = mu[:, self.n_zd:].double()
        return 0.5 * (zc ** 2).sum(dim=1) + 0.5 * zc.shape[1] * math.log(2 * math.pi)


class OEVAENet(nn.Module):
    """``f_FE`` + ``g_machine`` + the VAE, trained together by :func:`oevae_loss`."""

    def __init__(self, config: OEVAEConfig):
        super().__init__()
        self.extractor = ResNet18(width=config.width)
        d = self.extractor.embedding_dim
        self.head = MachineHead(d, hidden=max(32, d // 4))
        self.vae = DomainVAE(d, hidden=config.vae_hidden, latent=config.latent, n_zd=config.n_zd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embeddings of log-mel segments ``(batch, n_mels, n_frames)``."""
        return self.extractor(x)


class _Meter:
    """Per-epoch sums of the loss terms and the classifier's accuracy (filled by :func:`oevae_loss`)."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.sums = {"machine": 0.0, "kl": 0.0, "recon": 0.0, "correct": 0.0, "n": 0, "n_vae": 0}

    def means(self) -> dict:
        s = self.sums
        n, nv = max(s["n"], 1), max(s["n_vae"], 1)
        return {"machine_loss": s["machine"] / n, "kl": s["kl"] / nv, "recon": s["recon"] / nv,
                "oe_accuracy": s["correct"] / n}


def oevae_loss(net: OEVAENet, x_normal: torch.Tensor, prior_mean_d: torch.Tensor, x_outlier: torch.Tensor, *,
               lambda_vae: float, mixup_alpha: float | None = None, rng=None, meter: _Meter | None = None):
    """The joint loss ``L_machine + lambda_vae * (L_vae1 + L_vae2)`` of one batch.

    Parameters
    ----------
    net : OEVAENet
    x_normal : Tensor of shape (B, n_mels, n_frames)
        Segments of the target machine type (t = 1).
    prior_mean_d : Tensor of shape (B,)
        ``k * v`` of each normal segment.
    x_outlier : Tensor of shape (B', n_mels, n_frames)
        Pseudo-anomalies (t = 0).
    lambda_vae : float
    mixup_alpha : float, optional
        Mix normal with normal (``k v`` mixed alike) and pseudo-anomaly with
        pseudo-anomaly segments, ``lam ~ Beta(alpha, alpha)``.
    rng : numpy Generator or int, optional
        For Mixup.
    meter : optional
        Accumulates the terms and the accuracy for the epoch's record.

    Returns
    -------
    Tensor
        The scalar loss (float32).
    """
    b, b_out = x_normal.shape[0], x_outlier.shape[0]
    x = torch.cat([x_normal, x_outlier])
    t = torch.cat([torch.ones(b, device=x.device), torch.zeros(b_out, device=x.device)])
    prior = prior_mean_d.float()
    if mixup_alpha:
        pad = torch.cat([prior, torch.zeros(b_out, device=x.device)])
        m = mixup(x, pad, alpha=mixup_alpha, groups=t.cpu().numpy(), rng=rng)
        x, prior = m.x, m.targets[0][:b]
    e = net(x)
    logits = net.head(e).float()
    l_machine = F.binary_cross_entropy_with_logits(logits, t)
    out = net.vae(e[:b].float())
    kl = net.vae.kl(out, prior)
    recon = ((e[:b].float() - out.recon.float()) ** 2).sum(dim=1)
    loss = l_machine + lambda_vae * (kl.mean() + recon.mean())
    if meter is not None:
        with torch.no_grad():
            meter.sums["machine"] += float(l_machine) * (b + b_out)
            meter.sums["kl"] += float(kl.sum())
            meter.sums["recon"] += float(recon.sum())
            meter.sums["correct"] += float(((logits > 0).float() == t).sum())
            meter.sums["n"] += b + b_out
            meter.sums["n_vae"] += b
    return loss


# --------------------------------------------------------------------------- scoring blocks
class ScoreNormalizer:
    """Standardise scores by the mean and standard deviation of the **training** clips' scores.

    ``fit(train_scores)`` stores the statistics; ``transform(scores)`` returns
    ``(scores - mean_) / scale_``. Test scores never enter the statistics.
    """

    def fit(self, train_scores) -> "ScoreNormalizer":
        s = np.asarray(train_scores, dtype=np.float64)
        if s.ndim != 1 or s.size < 2 or not np.isfinite(s).all():
            raise ConfigError("ScoreNormalizer.fit needs at least two finite training scores (1-D).")
        self.mean_ = float(s.mean())
        self.scale_ = float(s.std()) or 1.0
        return self

    def transform(self, scores) -> np.ndarray:
        if not hasattr(self, "mean_"):
            raise ConfigError("ScoreNormalizer is not fitted: call fit(train_scores) first.")
        return (np.asarray(scores, dtype=np.float64) - self.mean_) / self.scale_


class KNNInlier:
    """The inlier model ``h``: mean Euclidean distance to the ``n_neighbors`` nearest training embeddings.

    Parameters
    ----------
    n_neighbors : int, default 1

    Notes
    -----
    :meth:`training_scores` scores each training embedding against the others
    of **other clips** (``groups``): the 8 segments of a clip overlap, so a
    segment's nearest neighbours are otherwise its own clip's segments and the
    training scores would be far below those of unseen clips.
    """

    def __init__(self, n_neighbors: int = 1):
        self.n_neighbors = n_neighbors

    def fit(self, embeddings, groups=None) -> "KNNInlier":
        from sklearn.neighbors import NearestNeighbors

        E = np.asarray(embeddings, dtype=np.float32)
        if E.ndim != 2 or len(E) <= self.n_neighbors:
            raise ConfigError(f"KNNInlier.fit needs more than n_neighbors={self.n_neighbors} embeddings (2-D), "
                              f"got shape {E.shape}.")
        self.embeddings_ = E
        self.groups_ = None if groups is None else np.asarray(groups)
        self.nn_ = NearestNeighbors(n_neighbors=self.n_neighbors).fit(E)
        return self

    def score(self, embeddings) -> np.ndarray:
        """Mean distance of each embedding to its ``n_neighbors`` nearest training embeddings."""
        d, _ = self.nn_.kneighbors(np.asarray(embeddings, dtype=np.float32), n_neighbors=self.n_neighbors)
        return d.mean(axis=1)

    def training_scores(self, n_real: int | None = None) -> np.ndarray:
        """Leave-one-clip-out scores of the first ``n_real`` training embeddings (see Notes).

        Only those ``n_real`` embeddings (the real clips' segments) serve as
        neighbours here: augmented embeddings made from a real segment lie close
        to it and would make its score too small.
        """
        from sklearn.neighbors import NearestNeighbors

        n = len(self.embeddings_) if n_real is None else int(n_real)
        E = self.embeddings_[:n]
        g = None if self.groups_ is None else self.groups_[:n]
        nn_ = self.nn_ if n == len(self.embeddings_) else NearestNeighbors().fit(E)
        if g is None:
            d, _ = nn_.kneighbors(E, n_neighbors=min(self.n_neighbors + 1, n))
            return d[:, 1:].mean(axis=1)
        per_group = int(np.max(np.unique(g, return_counts=True)[1]))
        k = min(self.n_neighbors + per_group, n)
        d, idx = nn_.kneighbors(E, n_neighbors=k)
        other = g[idx] != g[:, None]
        out = np.empty(n)
        for i in range(n):
            keep = d[i][other[i]][:self.n_neighbors]
            if keep.size == 0:
                raise ConfigError("KNNInlier.training_scores: every neighbour belongs to the same clip; "
                                  "leave-one-clip-out scores need at least two clips.")
            out[i] = keep.mean()
        return out


# --------------------------------------------------------------------------- the estimator
class _SegmentSet(torch.utils.data.Dataset):
    def __init__(self, x: np.ndarray, prior: np.ndarray):
        self.x, self.prior = x, prior.astype(np.float32)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i):
        return torch.from_numpy(np.asarray(self.x[i], dtype=np.float32)), torch.tensor(self.prior[i])

    def __getitems__(self, idx):
        idx = np.sort(np.asarray(idx))
        x = torch.from_numpy(np.asarray(self.x[idx], dtype=np.float32))
        p = torch.from_numpy(self.prior[idx])
        return list(zip(x, p))


def _paths(X) -> tuple[list[str], pd.DataFrame | None]:
    if isinstance(X, pd.DataFrame):
        if "path" not in X.columns:
            raise ConfigError("a clip table needs a 'path' column (as from asdkit.scan_root).")
        return [str(p) for p in X["path"]], X
    return [str(p) for p in X], None


class OEVAEDetector:
    """OEVAE as an estimator: ``fit`` / ``score_all`` / ``score_samples`` / ``decision``.

    Parameters
    ----------
    preset : str or OEVAEConfig, default "quick"
    seed : int, default 0
    device : str, default "auto"
    attribute : str, optional
        The attribute ``v`` follows (default: see :func:`attribute_values`).
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
    smote_counts_ : dict
        Segments per group before and after SMOTE (empty when off).
    knn_ : KNNInlier
    normalizers_ : dict of str to ScoreNormalizer
        For ``"alpha"`` and ``"beta"``, fitted on training clips only.
    train_scores_ : dict of str to ndarray
        Per training clip (real clips only): ``alpha``, ``beta`` (leave one clip
        out), and the normalised combination ``oevae``.
    thresholds_ : dict of str to float
        Gamma-fit 0.9 quantile of the training scores, per score.

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
      parameter group has ``eps = 1e-8 * lambda_vae``. Adam's steps do not
      depend on the scale of the loss except through ``eps``; with
      ``lambda_vae = 1e-7`` the VAE's gradients (~1e-7) would otherwise sit at
      ``eps`` and the VAE would barely train. So ``lambda_vae`` weighs how much
      the VAE shapes the extractor, as the report intends, while the VAE itself
      trains at Adam's usual pace.
    * **alpha** uses the posterior mean ``mu_c``; **beta** the KNN on
      embeddings; each is standardised by the mean and standard deviation of
      its training-clip scores (beta's from leave-one-clip-out neighbours) before
      ``w * alpha + (1 - w) * beta``.
    """

    def __init__(self, preset: str | OEVAEConfig = "quick", seed: int = 0, device: str = "auto", *,
                 attribute: str | None = None, cache=None, progress: bool = False, checkpoint_dir=None):
        self.preset = preset
        self.seed = seed
        self.device = device
        self.attribute = attribute
        self.cache = cache
        self.progress = progress
        self.checkpoint_dir = checkpoint_dir

    # ---- features
    def _features(self, paths: Sequence[str]) -> np.ndarray:
        return extract(list(paths), kind="log_mel", config=self.config_.feature_config, cache=self.cache,
                       device=self.device_, progress=self.progress, dtype=np.float32)

    def _embed(self, segs: np.ndarray, batch: int = 256) -> np.ndarray:
        """Embeddings of segments ``(n, n_mels, n_frames)``."""
        out = []
        self.net_.eval()
        with torch.inference_mode():
            for s in range(0, len(segs), batch):
                x = torch.from_numpy(np.asarray(segs[s:s + batch], dtype=np.float32)).to(self.device_)
                out.append(self.net_(x).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.config_.embedding_dim), np.float32)

    def _alpha(self, emb: np.ndarray, n_clips: int, n_seg: int) -> np.ndarray:
        """Clip alpha: ``-log p(mu_c)`` of each segment embedding, averaged over the clip's segments."""
        nll = self.net_.vae.nll_zc(torch.from_numpy(self._latent_mu(emb))).numpy()
        return nll.reshape(n_clips, n_seg).mean(axis=1)

    def _latent_mu(self, emb: np.ndarray) -> np.ndarray:
        self.net_.eval()
        with torch.inference_mode():
            return self.net_.vae(torch.from_numpy(emb).to(self.device_)).mu.float().cpu().numpy()

    # ---- fit
    def fit(self, X, domains=None, *, outliers=None) -> "OEVAEDetector":
        """Train on the normal training clips of one machine type, with other machine types as outliers.

        Parameters
        ----------
        X : clip table (rows of :func:`asdkit.scan_root`)
            Training clips of the target machine type (``path``, ``domain``,
            ``attributes`` columns).
        domains : ignored when ``X`` is a table (its ``domain`` column is used)
        outliers : clip table or list of paths
            Training clips of other machine types (pseudo-anomalies).

        Returns
        -------
        self
        """
        config = oevae_config(self.preset)
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ConfigError(f"seed={self.seed!r}: must be a non-negative integer.")
        if not isinstance(X, pd.DataFrame):
            raise ConfigError("OEVAEDetector.fit needs a clip table (asdkit.scan_root rows) of the training clips, "
                              "for their domains and attributes.")
        if len(X) < 2:
            raise ConfigError("OEVAEDetector.fit got fewer than two training clips.")
        out_paths, _ = _paths(outliers if outliers is not None else [])
        if not out_paths:
            raise ConfigError("OEVAE needs pseudo-anomalies: pass outliers= with training clips of other machine "
                              "types (asdkit run does this from the other machine types in the root; a root with "
                              "one machine type cannot train OEVAE).")
        self.config_ = config
        self.device_ = select_device(self.device)
        rng = np.random.default_rng(self.seed)
        if config.max_outliers is not None and len(out_paths) > config.max_outliers:
            pick = np.sort(rng.choice(len(out_paths), config.max_outliers, replace=False))
            out_paths = [out_paths[i] for i in pick]

        train = X.reset_index(drop=True)
        attr = attribute_values(train, attribute=self.attribute, k_scale=config.k_scale,
                                sr=config.feature_config.sr)
        self.attribute_ = attr
        feats = self._features(train["path"])                      # (n_clips, 8, n_mels, T)
        n_clips, n_seg = feats.shape[:2]
        segs = feats.reshape(n_clips * n_seg, *feats.shape[2:])
        seg_v = np.repeat(attr.v, n_seg)
        seg_clip = np.repeat(np.arange(n_clips), n_seg)
        seg_group = np.repeat((train["domain"].astype(str) + "|" + pd.Series(attr.v).round(6).astype(str)).to_numpy(),
                              n_seg)
        self.smote_counts_ = {}
        if config.smote:
            names, counts = np.unique(seg_group, return_counts=True)
            if names.size > 1:
                target_n = int(math.ceil(config.smote_ratio * counts.max()))
                strategy = {n: max(int(c), target_n) for n, c in zip(names, counts)}
                if any(strategy[n] > c for n, c in zip(names, counts)):
                    res = smote(segs, seg_group, values=seg_v, sampling_strategy=strategy, k_neighbors=config.smote_k,
                                random_state=int(self.seed))
                    self.smote_counts_ = res.counts
                    segs = np.concatenate([segs, res.X])
                    seg_v = np.concatenate([seg_v, res.values])
                    seg_clip = np.concatenate([seg_clip, -1 - np.arange(len(res.X))])   # each its own "clip"
        out_feats = self._features(out_paths)
        out_segs = out_feats.reshape(-1, *out_feats.shape[2:])
        del out_feats

        with seeded(int(self.seed)):
            net = OEVAENet(config)
        vae_params = list(net.vae.parameters())
        vae_ids = {id(p) for p in vae_params}
        other = [p for p in net.parameters() if id(p) not in vae_ids]

        def optimizer(_params, lr):
            return torch.optim.Adam([{"params": other}, {"params": vae_params, "eps": 1e-8 * config.lambda_vae}],
                                    lr=lr)

        meter = _Meter()
        log: list[dict] = []
        out_tensor = torch.from_numpy(out_segs)
        half = config.batch_size // 2

        def loss_fn(model, batch):
            x, prior = batch
            gen = torch.randint(0, 2**31 - 1, (1,)).item()            # from the engine's seeded global RNG
            pick = torch.from_numpy(np.random.default_rng(gen).integers(0, len(out_tensor), x.shape[0]))
            xo = out_tensor[pick].to(x.device, dtype=torch.float32)
            return oevae_loss(model, x, attr.k * prior, xo, lambda_vae=config.lambda_vae,
                              mixup_alpha=config.mixup_alpha if config.mixup else None, rng=gen, meter=meter)

        def record(epoch, history, model):
            log.append({"epoch": epoch, **meter.means()})
            meter.reset()

        train_cfg = TrainConfig(epochs=config.epochs, batch_size=half, lr=config.lr, seed=int(self.seed),
                                val_fraction=0.0, amp=True, progress=self.progress,
                                checkpoint_dir=None if self.checkpoint_dir is None else str(self.checkpoint_dir))
        self.history_: History = engine_fit(net, loss_fn, _SegmentSet(segs, seg_v), config=train_cfg,
                                            optimizer_factory=optimizer, device=self.device_, callbacks=[record])
        self.net_ = net.eval()
        self.epoch_log_ = pd.DataFrame(log).set_index("epoch") if log else pd.DataFrame()

        # second step: the inlier model and the score statistics, from training data only
        emb = self._embed(segs)
        self.knn_ = KNNInlier(config.n_neighbors).fit(emb, groups=seg_clip)
        n_real = n_clips * n_seg
        self._n_segments = n_seg
        beta = self.knn_.training_scores(n_real).reshape(n_clips, n_seg).mean(axis=1)
        alpha = self._alpha(emb[:n_real], n_clips, n_seg)
        self.normalizers_ = {"alpha": ScoreNormalizer().fit(alpha), "beta": ScoreNormalizer().fit(beta)}
        self.train_scores_ = {"alpha": alpha, "beta": beta, "oevae": self.combine(alpha, beta)}
        self.thresholds_ = {k: gamma_threshold(s, 0.9) for k, s in self.train_scores_.items()}
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "net_"):
            raise ConfigError("OEVAEDetector is not fitted: call fit(train_table, outliers=...) first.")

    # ---- scoring
    def combine(self, alpha, beta, w: float | None = None) -> np.ndarray:
        """``w * alpha_n + (1 - w) * beta_n`` with the training-fitted normalisers (``w`` default: config)."""
        w = self.config_.w if w is None else w
        if not 0 <= w <= 1:
            raise ConfigError(f"w={w!r}: must lie in [0, 1].")
        return w * self.normalizers_["alpha"].transform(alpha) + (1 - w) * self.normalizers_["beta"].transform(beta)

    def embed(self, X) -> np.ndarray:
        """``f_FE`` embeddings of the clips' segments, shape (n_clips, 8, embedding_dim)."""
        self._check_fitted()
        paths, _ = _paths(X)
        feats = self._features(paths)
        n, s = feats.shape[:2]
        return self._embed(feats.reshape(n * s, *feats.shape[2:])).reshape(n, s, -1)

    def latents(self, X) -> np.ndarray:
        """The VAE's posterior means of the clips' segments, shape (n_clips, 8, latent); ``[..., :n_zd]`` is z_d."""
        emb = self.embed(X)
        n, s, d = emb.shape
        return self._latent_mu(emb.reshape(n * s, d)).reshape(n, s, -1)

    def _knn(self, k: int) -> KNNInlier:
        if k == self.knn_.n_neighbors:
            return self.knn_
        self._knn_cache = getattr(self, "_knn_cache", {})
        if k not in self._knn_cache:
            self._knn_cache[k] = KNNInlier(k).fit(self.knn_.embeddings_, groups=self.knn_.groups_)
        return self._knn_cache[k]

    def beta_normalizer(self, n_neighbors: int | None = None) -> ScoreNormalizer:
        """The beta normaliser for ``n_neighbors`` (fitted on the training clips' leave-one-clip-out scores)."""
        self._check_fitted()
        k = self.knn_.n_neighbors if n_neighbors is None else int(n_neighbors)
        if k == self.knn_.n_neighbors:
            return self.normalizers_["beta"]
        self._beta_norms = getattr(self, "_beta_norms", {})
        if k not in self._beta_norms:
            n_clips, s = len(self.train_scores_["beta"]), self._n_segments
            train = self._knn(k).training_scores(n_clips * s).reshape(n_clips, s).mean(axis=1)
            self._beta_norms[k] = ScoreNormalizer().fit(train)
        return self._beta_norms[k]

    def score_all(self, X, *, n_neighbors: int | None = None) -> dict[str, np.ndarray]:
        """``alpha``, ``beta`` and the combined ``oevae`` score of each clip (mean over its segments).

        ``n_neighbors`` scores beta with another k (its normaliser fitted on the
        training clips for that k); the w/k sweep uses it.
        """
        emb = self.embed(X)
        n, s, d = emb.shape
        flat = emb.reshape(n * s, d)
        alpha = self._alpha(flat, n, s)
        k = self.knn_.n_neighbors if n_neighbors is None else int(n_neighbors)
        beta = self._knn(k).score(flat).reshape(n, s).mean(axis=1)
        combined = (self.config_.w * self.normalizers_["alpha"].transform(alpha)
                    + (1 - self.config_.w) * self.beta_normalizer(k).transform(beta))
        return {"alpha": alpha, "beta": beta, "oevae": combined}

    def score_samples(self, X) -> np.ndarray:
        """The combined OEVAE score of each clip (**higher = more anomalous**)."""
        return self.score_all(X)["oevae"]

    def decision(self, scores, key: str = "oevae") -> np.ndarray:
        """0/1 decisions: ``scores > thresholds_[key]``."""
        self._check_fitted()
        return (np.asarray(scores, dtype=np.float64) > self.thresholds_[key]).astype(np.int64)


#: The augmentation variants of :func:`ablation_table`.
AUGMENTATION_VARIANTS = {
    "none": {"mixup": False, "smote": False},
    "Mixup": {"mixup": True, "smote": False},
    "SMOTE": {"mixup": False, "smote": True},
    "Mixup + SMOTE": {"mixup": True, "smote": True},
}


def ablation_table(table: pd.DataFrame, *, variants: dict | None = None, preset: str | OEVAEConfig = "quick",
                   machines: Sequence[str] | None = None, seed: int = 0, device: str = "cpu", cache=None,
                   score: str = "oevae") -> pd.DataFrame:
    """Train OEVAE with and without Mixup and SMOTE on each machine type and compare the official metrics.

    Parameters
    ----------
    table : DataFrame
        A whole DCASE-layout root (``asdkit.scan_root``): each machine type is
        trained on its training clips with the others' as pseudo-anomalies and
        evaluated on its test clips (labels needed).
    variants : dict of name to config overrides, default :data:`AUGMENTATION_VARIANTS`
    preset : str or OEVAEConfig, default "quick"
    machines : sequence of str, optional
        Default: every machine type of ``table``.
    seed, device, cache
        As :class:`OEVAEDetector`.
    score : {"oevae", "alpha", "beta"}, default "oevae"

    Returns
    -------
    pandas.DataFrame
        One row per variant: harmonic means over machine types of AUC(source),
        AUC(target), pAUC and the official score, in %.
    """
    from asdkit.evaluation.metrics import section_metrics, summary_percent

    variants = AUGMENTATION_VARIANTS if variants is None else variants
    machines = sorted(table["machine"].unique()) if machines is None else list(machines)
    rows = {}
    for name, overrides in variants.items():
        config = oevae_config(preset, **overrides)
        per = []
        for machine in machines:
            mine = table[table["machine"] == machine]
            train = mine[mine["split"] == "train"].reset_index(drop=True)
            test = mine[mine["split"] == "test"].reset_index(drop=True)
            others = table[(table["machine"] != machine) & (table["split"] == "train")]
            det = OEVAEDetector(preset=config, seed=seed, device=device, cache=cache).fit(train, outliers=others)
            s = det.score_all(test)[score]
            y = (test["label"] == "anomaly").to_numpy().astype(int)
            per.append({"machine": machine, **section_metrics(y, s, test["domain"].to_numpy())})
        t = pd.DataFrame(per)
        rows[name] = summary_percent(t)
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("augmentation")
