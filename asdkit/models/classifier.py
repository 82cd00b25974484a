"""The classification-based model (Section 3.1 of the report, after Wilkinghoff).

A network learns to tell apart the *classes* of the normal training clips of
every machine type of a root, where a class is one combination of machine type,
section, domain and attribute values. Its embeddings of normal clips then sit
close to their class's training embeddings, and an anomalous clip lands farther
away: its anomaly score is the smallest cosine distance to k-means centroids of
its section's source-domain training embeddings and to every target-domain
training embedding.

Blocks:

* :class:`FFTBranch`: 1-D convolutions over the magnitude of the FFT of a 2-s
  segment;
* :class:`SpectrogramBranch`: 2-D residual convolutions over the log-mel
  spectrogram (temporal mean removed) or over the STFT phase (as ``cos`` and
  ``sin``, so the wrap at ``+-pi`` is no edge); the phase branch has the same
  structure as the mel branch;
* :class:`ClassifierNet`: the branches on the same waveforms, embeddings
  concatenated; PReLU after every layer, no biases;
* :class:`SubClusterAdaCos`: the Sub-Cluster AdaCos loss (16 fixed sub-cluster
  centres per class, adaptive scale initialised at ``sqrt(2) ln(C K - 1)``);
* :func:`featex`: Feature Exchange, the self-supervised task;
* :func:`train_classifier` and :class:`ClassifierDetector`, the estimator
  ``asdkit run --system classifier`` uses.

Scores follow the DCASE convention: **higher = more anomalous**.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import NamedTuple, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from asdkit.data.audio import load_clip
from asdkit.training.engine import History, TrainConfig, fit as engine_fit, seeded, select_device
from asdkit.errors import ConfigError
from asdkit.features.spectra import FEATURE_PRESETS, FeatureConfig, TorchFeatures, clip_paths, clip_segments
from asdkit.data.names import parse_filename
from asdkit.presets import named_preset

__all__ = ["BRANCHES", "ClassifierConfig", "CLASSIFIER_PRESETS", "classifier_config", "class_labels",
           "FFTBranch", "SpectrogramBranch", "ClassifierNet", "SubClusterAdaCos", "featex", "waveform_mixup",
           "ClassifierModel", "train_classifier", "ClassifierDetector", "ablation_table", "BRANCH_VARIANTS"]

#: The branch names a :class:`ClassifierConfig` may list.
BRANCHES = ("fft", "mel", "phase")


@dataclass(frozen=True)
class ClassifierConfig:
    """Settings of the classification-based model (frozen; vary with :func:`classifier_config`).

    Attributes
    ----------
    features : str
        :data:`~asdkit.features.spectra.FEATURE_PRESETS` name: segment length, STFT
        framing and mel bands of the branches' inputs.
    branches : tuple of str
        Which of :data:`BRANCHES` the network has (the first is the one FeatEx
        keeps; the others are exchanged).
    width : int
        Channels of the first stage of a spectrogram branch (doubled in each of
        its four stages).
    blocks : int
        Residual blocks per stage.
    fft_channels : int
        Channels of the FFT branch's convolutions.
    fft_pool : int
        Average FFT magnitude bins in groups of this size before the branch
        (1 = the full 16001 bins of a 2-s segment).
    phase_stride : int
        Keep every ``phase_stride``-th STFT bin of the phase.
    embedding_dim : int
        Embedding size of each branch (the network's embedding concatenates them).
    sub_clusters : int
        Sub-cluster centres per class in :class:`SubClusterAdaCos`.
    domain_in_class : bool
        Classes also split by domain (source / target).
    featex : bool
        Feature Exchange on (class set tripled).
    featex_p : float
        Probability that a sample's exchanged branches come from its partner.
    mixup : bool
        Mixup on the waveforms.
    mixup_p : float
        Probability that a sample is mixed (``lambda ~ U(0, 1)``).
    epochs, batch_size, lr : int, int, float
        Adamax training.
    weight_decay : float
        L2 penalty of Adamax.
    crops_per_clip : int
        Random 2-s crops of each training clip per epoch.
    n_clusters : int
        k-means clusters of a section's source-domain training embeddings.
    n_models : int
        Independently trained networks (seeds ``seed, seed+1, ...``); their
        cosine distances are averaged.
    """

    features: str = "paper"
    branches: tuple = BRANCHES
    width: int = 16
    blocks: int = 2
    fft_channels: int = 128
    fft_pool: int = 1
    phase_stride: int = 1
    embedding_dim: int = 128
    sub_clusters: int = 16
    domain_in_class: bool = True
    featex: bool = True
    featex_p: float = 0.5
    mixup: bool = True
    mixup_p: float = 0.5
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-5
    crops_per_clip: int = 4
    n_clusters: int = 16
    n_models: int = 1

    def __post_init__(self):
        branches = tuple(self.branches)
        object.__setattr__(self, "branches", branches)
        if not branches or any(b not in BRANCHES for b in branches) or len(set(branches)) != len(branches):
            raise ConfigError(f"ClassifierConfig.branches={self.branches!r}: name one or more of {BRANCHES}, "
                              "each once.")
        if self.featex and len(branches) < 2:
            raise ConfigError("ClassifierConfig: FeatEx exchanges branch embeddings and needs two branches or more; "
                              "set featex=False for a single branch.")
        for name in ("width", "blocks", "fft_channels", "fft_pool", "phase_stride", "embedding_dim", "sub_clusters",
                     "epochs", "batch_size", "crops_per_clip", "n_clusters", "n_models"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ConfigError(f"ClassifierConfig.{name}={v!r}: must be a positive integer.")
        for name in ("featex_p", "mixup_p"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0 <= v <= 1):
                raise ConfigError(f"ClassifierConfig.{name}={v!r}: must lie in [0, 1].")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0):
            raise ConfigError(f"ClassifierConfig.lr={self.lr!r}: must be a positive number.")
        if not (isinstance(self.weight_decay, (int, float)) and self.weight_decay >= 0):
            raise ConfigError(f"ClassifierConfig.weight_decay={self.weight_decay!r}: must be >= 0.")
        if self.features not in FEATURE_PRESETS:
            raise ConfigError(f"ClassifierConfig.features={self.features!r}: choose one of {sorted(FEATURE_PRESETS)}.")

    @property
    def feature_config(self) -> FeatureConfig:
        return FEATURE_PRESETS[self.features]

    @property
    def total_embedding_dim(self) -> int:
        return self.embedding_dim * len(self.branches)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["branches"] = list(self.branches)
        return d


#: ``paper``: Wilkinghoff's sizes on the report's features (for a GPU); ``cpu``: the largest that fits the
#: 30-minute budget of all systems on the embedded paper dataset on 2 CPU cores; ``quick``: CI and notebooks.
CLASSIFIER_PRESETS: dict[str, ClassifierConfig] = {
    "paper": ClassifierConfig(),
    "cpu": ClassifierConfig(features="quick", width=8, blocks=1, fft_channels=32, fft_pool=4, phase_stride=4,
                            epochs=8, batch_size=64, crops_per_clip=1),
    "quick": ClassifierConfig(features="quick", width=8, blocks=1, fft_channels=32, fft_pool=4, phase_stride=4,
                              embedding_dim=64, epochs=8, batch_size=32, crops_per_clip=2),
}


def classifier_config(preset: str | ClassifierConfig = "paper", **overrides) -> ClassifierConfig:
    """A named :class:`ClassifierConfig`, optionally with some fields replaced.

    >>> classifier_config("quick", branches=("fft", "mel")).branches
    ('fft', 'mel')
    """
    return named_preset(CLASSIFIER_PRESETS, preset, "classifier", "classifier_config", **overrides)


# --------------------------------------------------------------------------- labels


def class_labels(clips: pd.DataFrame, *, domain_in_class: bool = True) -> pd.Series:
    """The class of each clip: machine type, section, (domain,) and attribute values, as one string.

    >>> t = pd.DataFrame({"machine": ["fan", "fan"], "section": ["00", "00"], "domain": ["source", "target"],
    ...                   "attributes": [{"spd": "1200rpm"}, {}]})
    >>> class_labels(t).tolist()
    ['fan|00|source|spd=1200rpm', 'fan|00|target|noAttribute']
    """
    missing = [c for c in ("machine", "section", "attributes") if c not in clips.columns]
    if missing:
        raise ConfigError(f"class_labels needs a clip table (asdkit.scan_root rows); it lacks {missing}.")

    def attrs(a) -> str:
        if not isinstance(a, dict) or not a:
            return "noAttribute"
        return "_".join(f"{k}={v}" for k, v in a.items())

    parts = [clips["machine"].astype(str), clips["section"].astype(str)]
    if domain_in_class:
        if "domain" not in clips.columns or clips["domain"].isna().any():
            raise ConfigError("class_labels: domain_in_class needs every clip's domain (training clips of the "
                              "2021-2024 naming).")
        parts.append(clips["domain"].astype(str))
    parts.append(clips["attributes"].map(attrs))
    out = parts[0]
    for p in parts[1:]:
        out = out + "|" + p
    return out.rename("class")


# --------------------------------------------------------------------------- network


class _ResBlock2d(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.act1 = nn.PReLU(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.act2 = nn.PReLU(c_out)
        self.skip = (nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
                     if stride != 1 or c_in != c_out else nn.Identity())

    def forward(self, x):
        y = self.act1(self.bn1(self.conv1(x)))
        return self.act2(self.bn2(self.conv2(y)) + self.skip(x))


class SpectrogramBranch(nn.Module):
    """2-D residual branch: ``(batch, channels, freq, time) -> (batch, embedding_dim)``.

    A 7x7 stride-2 convolution and a 3x3 max pool, four stages of residual
    blocks (``width, 2 width, 4 width, 8 width`` channels, stride 2 from the
    second stage), max over frequency and mean over time, then a linear map.
    PReLU after every convolution, no biases.
    """

    def __init__(self, in_channels: int = 1, width: int = 16, blocks: int = 2, embedding_dim: int = 128):
        super().__init__()
        layers = [nn.Conv2d(in_channels, width, 7, 2, 3, bias=False), nn.BatchNorm2d(width), nn.PReLU(width),
                  nn.MaxPool2d(3, 2, 1)]
        c = width
        for stage in range(4):
            c_out = width * 2 ** stage
            for b in range(blocks):
                layers.append(_ResBlock2d(c, c_out, 2 if (stage > 0 and b == 0) else 1))
                c = c_out
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(c, embedding_dim, bias=False)

    def forward(self, x):
        h = self.body(x)
        return self.head(h.amax(dim=2).mean(dim=-1))


class FFTBranch(nn.Module):
    """1-D convolutional branch over an FFT magnitude: ``(batch, bins) -> (batch, embedding_dim)``.

    Three strided convolutions with large kernels and strides (kernel about
    1/64 of the bins with stride a quarter of it, then kernel 16 stride 8, then
    kernel 8 stride 4, after Wilkinghoff's FFT branch), flattened, then two
    linear layers. PReLU after every layer, no biases.
    """

    def __init__(self, n_bins: int, channels: int = 128, embedding_dim: int = 128):
        super().__init__()
        k1 = max(8, n_bins // 64)
        s1 = max(1, k1 // 4)
        layers, length, c_in = [], n_bins, 1
        for k, s in ((k1, s1), (16, 8), (8, 4)):
            k = min(k, length)
            s = min(s, k)
            layers += [nn.Conv1d(c_in, channels, k, s, bias=False), nn.BatchNorm1d(channels), nn.PReLU(channels)]
            length = (length - k) // s + 1
            c_in = channels
        self.body = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(channels * length, embedding_dim, bias=False),
                                  nn.BatchNorm1d(embedding_dim), nn.PReLU(embedding_dim),
                                  nn.Linear(embedding_dim, embedding_dim, bias=False))

    def forward(self, x):
        return self.head(self.body(x.unsqueeze(1)).flatten(1))


class ClassifierNet(nn.Module):
    """The multi-branch network on raw 2-s waveforms ``(batch, segment_length)``.

    ``branch_embeddings(x)`` returns one ``(batch, embedding_dim)`` tensor per
    branch; ``forward(x)`` their concatenation. The features are computed
    inside (no gradient): ``fft`` = FFT magnitude (log-compressed, averaged
    over ``fft_pool`` bins), ``mel`` = log-mel in dB minus its temporal mean,
    ``phase`` = ``cos`` and ``sin`` of every ``phase_stride``-th STFT bin's phase.
    """

    def __init__(self, config: ClassifierConfig):
        super().__init__()
        self.config = config
        fc = config.feature_config
        self.features = TorchFeatures(fc)
        branches = {}
        for name in config.branches:
            if name == "fft":
                n_bins = (fc.segment_length // 2 + 1) // config.fft_pool
                branches[name] = FFTBranch(n_bins, config.fft_channels, config.embedding_dim)
            else:
                branches[name] = SpectrogramBranch(1 if name == "mel" else 2, config.width, config.blocks,
                                                   config.embedding_dim)
        self.branches = nn.ModuleDict(branches)

    def inputs(self, x: torch.Tensor) -> dict:
        """The branch inputs of waveforms ``x`` (no gradient)."""
        c = self.config
        out = {}
        with torch.no_grad():
            x = x.float()
            for name in c.branches:
                if name == "fft":
                    mag = self.features.fft(x)
                    n = mag.shape[-1] // c.fft_pool * c.fft_pool
                    mag = mag[..., :n].reshape(x.shape[0], -1, c.fft_pool).mean(-1)
                    out[name] = torch.log1p(mag)
                elif name == "mel":
                    m = self.features.log_mel(x)
                    out[name] = (m - m.mean(dim=-1, keepdim=True)).unsqueeze(1) / 10.0
                else:
                    p = self.features.phase(x)[:, ::c.phase_stride]
                    out[name] = torch.stack([torch.cos(p), torch.sin(p)], dim=1)
        return out

    def branch_embeddings(self, x: torch.Tensor) -> list:
        inputs = self.inputs(x)
        return [self.branches[name](inputs[name]) for name in self.config.branches]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(self.branch_embeddings(x), dim=-1)


class SubClusterAdaCos(nn.Module):
    """Sub-Cluster AdaCos: softmax over cosine similarities to fixed sub-cluster centres, adaptive scale.

    Each of ``n_classes`` classes has ``sub_clusters`` centres, drawn at
    random once and never trained. A class's probability is the sum of the
    softmax over all ``n_classes * sub_clusters`` scaled cosines of its own
    centres; the loss is the cross-entropy with (soft) class labels. In
    training mode the scale ``s`` is re-estimated on every batch before the
    loss (AdaCos): ``s = log(B_avg) / cos(min(pi/4, theta_med))``, with
    ``B_avg`` the batch mean of the summed ``exp(s cos)`` over the sub-clusters
    of the other classes and ``theta_med`` the median angle to the own class's
    nearest centre. It starts at ``sqrt(2) ln(C K - 1)``.

    Parameters
    ----------
    dim : int
        Embedding size.
    n_classes : int
    sub_clusters : int, default 16
    seed : int, default 0
        Seed of the centres.
    """

    def __init__(self, dim: int, n_classes: int, sub_clusters: int = 16, seed: int = 0):
        super().__init__()
        if n_classes < 2:
            raise ConfigError(f"SubClusterAdaCos needs at least two classes, got {n_classes}.")
        gen = torch.Generator().manual_seed(int(seed))
        bound = math.sqrt(6.0 / (dim + n_classes * sub_clusters))
        centres = (torch.rand(n_classes * sub_clusters, dim, generator=gen) * 2 - 1) * bound
        self.register_buffer("centres", centres)
        self.n_classes, self.sub_clusters = n_classes, sub_clusters
        self.register_buffer("scale", torch.tensor(math.sqrt(2.0) * math.log(n_classes * sub_clusters - 1)))

    def cosines(self, emb: torch.Tensor) -> torch.Tensor:
        """``(batch, n_classes, sub_clusters)`` cosine similarities, in float32 also under autocast."""
        with torch.autocast(emb.device.type, enabled=False):
            cos = F.normalize(emb.float(), dim=-1) @ F.normalize(self.centres.float(), dim=-1).T
        return cos.reshape(-1, self.n_classes, self.sub_clusters)

    def forward(self, emb: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of the class probabilities with ``target`` ``(batch, n_classes)`` (rows sum to 1)."""
        cos = self.cosines(emb)
        if self.training:
            with torch.no_grad():
                other = (target <= 0).float().unsqueeze(-1)
                b_avg = (torch.exp(self.scale * cos) * other).sum(dim=(1, 2)).mean()
                own = (cos.amax(dim=-1) * target).sum(-1) / target.sum(-1).clamp_min(1e-12)
                theta = torch.acos(own.clamp(-1 + 1e-7, 1 - 1e-7)).median()
                new = torch.log(b_avg.clamp_min(1e-12)) / torch.cos(torch.clamp(theta, max=math.pi / 4))
                if torch.isfinite(new) and new > 0:
                    self.scale.copy_(new)
        with torch.autocast(emb.device.type, enabled=False):
            logp = torch.log_softmax(self.scale * cos.reshape(cos.shape[0], -1), dim=-1)
            class_logp = torch.logsumexp(logp.reshape(cos.shape), dim=-1)
            return -(target.float() * class_logp).sum(-1).mean()

    def predict(self, emb: torch.Tensor) -> torch.Tensor:
        """The most likely class of each embedding."""
        return self.cosines(emb).amax(-1).argmax(-1)


def waveform_mixup(x: torch.Tensor, y: torch.Tensor, *, p: float = 0.5, generator: torch.Generator | None = None):
    """Mixup on waveforms: with probability ``p`` a sample is mixed with a random partner, ``lambda ~ U(0, 1)``.

    Returns ``(x_mixed, y_mixed)``; ``y`` (one-hot or soft labels) is mixed with the same weights.
    """
    n = x.shape[0]
    lam = torch.rand(n, generator=generator)
    lam = torch.where(torch.rand(n, generator=generator) < p, lam, torch.ones(n)).to(x.device)
    partner = torch.randperm(n, generator=generator).to(x.device)
    w = lam.reshape(n, *([1] * (x.dim() - 1)))
    return w * x + (1 - w) * x[partner], lam[:, None] * y + (1 - lam[:, None]) * y[partner]


def featex(embeddings: Sequence[torch.Tensor], y: torch.Tensor, *, p: float = 0.5,
           generator: torch.Generator | None = None):
    """Feature Exchange: swap the embeddings of every branch but the first with the reversed batch's.

    With probability ``p`` a sample's branches 2..n come from its partner in
    the reversed batch (sample ``i`` pairs with ``batch - 1 - i``). Labels
    extend to three blocks of ``n_classes``: ``[y, 0, 0]`` for a sample left
    as it is, ``[0, y / 2, y_partner / 2]`` for an exchanged one, so the
    network must also tell which classes were put together.

    Returns
    -------
    (Tensor of shape (batch, sum of dims), Tensor of shape (batch, 3 n_classes), Tensor of bool (batch,))
        Concatenated embeddings, extended labels and which samples were exchanged.
    """
    n = y.shape[0]
    rev = torch.arange(n - 1, -1, -1, device=y.device)
    # the middle sample of an odd batch would pair with itself: it is never exchanged
    swap = (torch.rand(n, generator=generator) < p).to(y.device) & (rev != torch.arange(n, device=y.device))
    out = [embeddings[0]]
    for e in embeddings[1:]:
        out.append(torch.where(swap[:, None], e[rev], e))
    s = swap[:, None].float()
    labels = torch.cat([y * (1 - s), 0.5 * y * s, 0.5 * y[rev] * s], dim=-1)
    return torch.cat(out, dim=-1), labels, swap


class _Model(nn.Module):
    def __init__(self, config: ClassifierConfig, n_classes: int, seed: int):
        super().__init__()
        self.net = ClassifierNet(config)
        n_out = 3 * n_classes if config.featex else n_classes
        self.loss = SubClusterAdaCos(config.total_embedding_dim, n_out, config.sub_clusters, seed=seed)

    def forward(self, x):
        return self.net(x)


class _CropSet(torch.utils.data.Dataset):
    """Random 2-s crops of standardised clips (float16 in memory); ``crops`` per clip per epoch."""

    def __init__(self, waves: list, labels: np.ndarray, length: int, crops: int):
        self.waves, self.labels, self.length, self.crops = waves, labels, length, crops

    def __len__(self):
        return len(self.waves) * self.crops

    def __getitem__(self, i):
        return self.__getitems__([i])[0]

    def __getitems__(self, idx):
        gen = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,)).item()))
        out = []
        for i in idx:
            w = self.waves[i % len(self.waves)]
            start = int(gen.integers(0, w.shape[0] - self.length + 1))
            out.append((torch.from_numpy(w[start:start + self.length].astype(np.float32)),
                        torch.tensor(int(self.labels[i % len(self.waves)]))))
        return out


def _load_standardized(paths: Sequence[str], config: FeatureConfig) -> list:
    """Standardised clips (float16), each at least one segment long."""
    from asdkit.data.audio import standardize

    return [standardize(load_clip(p, sr=config.sr, min_seconds=config.segment_seconds)).astype(np.float16)
            for p in paths]


class ClassifierModel(NamedTuple):
    """A trained network with what it was trained on (:func:`train_classifier`)."""

    net: ClassifierNet
    loss: SubClusterAdaCos
    classes: list
    config: ClassifierConfig
    history: History
    epoch_log: pd.DataFrame
    seed: int


def train_classifier(clips: pd.DataFrame, *, preset: str | ClassifierConfig = "quick", seed: int = 0,
                     device: str = "auto", progress: bool = False) -> ClassifierModel:
    """Train one network on the normal training clips of every machine type in ``clips``.

    Parameters
    ----------
    clips : clip table (rows of :func:`asdkit.scan_root`)
        Training clips; their classes come from :func:`class_labels`.
    preset : str or ClassifierConfig
    seed : int
        Initial weights, centres, crops, Mixup and FeatEx draws.
    device : str
    progress : bool

    Returns
    -------
    ClassifierModel
        ``epoch_log`` has per epoch the loss, the AdaCos scale and the share of
        training crops put in their own class (``accuracy``, counted on
        samples neither mixed nor exchanged).
    """
    config = classifier_config(preset)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed={seed!r}: must be a non-negative integer.")
    if not isinstance(clips, pd.DataFrame) or "path" not in clips.columns:
        raise ConfigError("train_classifier needs a clip table (asdkit.scan_root rows) of training clips.")
    labels = class_labels(clips, domain_in_class=config.domain_in_class)
    classes = sorted(labels.unique())
    if len(classes) < 2:
        raise ConfigError(f"train_classifier: the training clips form a single class {classes}; the model learns "
                          "by telling classes apart: give it clips of several machine types, sections or "
                          "attribute values.")
    fc = config.feature_config
    device_ = select_device(device)
    waves = _load_standardized(clips["path"].tolist(), fc)
    index = {c: i for i, c in enumerate(classes)}
    y = labels.map(index).to_numpy()
    n_classes = len(classes)
    with seeded(int(seed)):
        model = _Model(config, n_classes, seed)
    log, meter = [], {"loss": 0.0, "n": 0, "correct": 0, "clean": 0}

    def loss_fn(m, batch):
        x, label = batch
        gen = torch.Generator().manual_seed(int(torch.randint(0, 2**31 - 1, (1,)).item()))
        onehot = F.one_hot(label, n_classes).float()
        clean = torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
        if config.mixup:
            x, onehot = waveform_mixup(x, onehot, p=config.mixup_p, generator=gen)
            clean &= onehot.amax(-1) > 0.999
        parts = m.net.branch_embeddings(x)
        if config.featex:
            emb, target, swap = featex(parts, onehot, p=config.featex_p, generator=gen)
            clean &= ~swap
        else:
            emb, target = torch.cat(parts, -1), onehot
        loss = m.loss(emb, target)
        with torch.no_grad():
            pred = m.loss.predict(emb)
            meter["correct"] += int(((pred == target.argmax(-1)) & clean).sum())
            meter["clean"] += int(clean.sum())
            meter["loss"] += float(loss) * x.shape[0]
            meter["n"] += x.shape[0]
        return loss

    def record(epoch, history, m):
        log.append({"epoch": epoch, "loss": meter["loss"] / max(meter["n"], 1), "scale": float(m.loss.scale),
                    "accuracy": meter["correct"] / max(meter["clean"], 1)})
        meter.update(loss=0.0, n=0, correct=0, clean=0)

    train_cfg = TrainConfig(epochs=config.epochs, batch_size=config.batch_size, lr=config.lr, seed=int(seed),
                            val_fraction=0.0, amp=True, progress=progress)

    def optimizer(params, lr):
        return torch.optim.Adamax(params, lr=lr, weight_decay=config.weight_decay)

    history = engine_fit(model, loss_fn, _CropSet(waves, y, fc.segment_length, config.crops_per_clip),
                         config=train_cfg, optimizer_factory=optimizer, device=device_, callbacks=[record])
    model.eval()
    return ClassifierModel(model.net, model.loss, classes, config, history,
                           pd.DataFrame(log).set_index("epoch") if log else pd.DataFrame(), int(seed))


# --------------------------------------------------------------------------- the estimator


def _paths_and_sections(X) -> tuple[list[str], list[str]]:
    """Paths of a clip table or path list, and each clip's section (the table's column, else the file name's)."""
    paths = clip_paths(X, caller="ClassifierDetector")
    if isinstance(X, pd.DataFrame) and "section" in X.columns:
        return paths, X["section"].astype(str).tolist()
    return paths, [parse_filename(p).section or "00" for p in paths]


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


@dataclass
class _SectionModel:
    centroids: np.ndarray                # (k, d) unit rows
    target: np.ndarray                   # (n_target, d) unit rows
    train_scores: np.ndarray = field(default=None)


class ClassifierDetector:
    """The classification-based model as an estimator: ``fit`` / ``score_all`` / ``score_samples`` / ``decision``.

    Parameters
    ----------
    preset : str or ClassifierConfig, default "quick"
    seed : int, default 0
    device : str, default "auto"
    progress : bool, default False
    models : list of ClassifierModel, optional
        Networks already trained (e.g. on the whole root, shared by every
        machine type's detector); ``fit`` then only fits the k-means scorer.
    memo : dict, optional
        Trained networks keyed by their training clips, settings and seed:
        ``asdkit run`` passes one per run, so the network trained on a root's
        training clips serves every machine type of it.
    branches : sequence of str, optional
        Score with these branches' parts of the embedding only (default: all
        of the network's); shows what each branch contributes without
        training again.

    Attributes
    ----------
    models_ : list of ClassifierModel
    sections_ : dict of str to _SectionModel
        Per section: the k-means centroids of the source training embeddings
        and every target training embedding (unit length).
    train_scores_ : dict
        ``{"classifier": ndarray}``, per training clip of the machine type:
        for source clips the smallest cosine distance to centroids fitted on
        the other source clips (5 folds) and to the target embeddings, for
        target clips the distance to the centroids and the other target
        embeddings: no clip is scored against itself.
    thresholds_ : dict
        ``{"classifier": 90th percentile of train_scores_}``.
    history_ : History
        Of the first network.
    """

    def __init__(self, preset: str | ClassifierConfig = "quick", seed: int = 0, device: str = "auto", *,
                 progress: bool = False, models: list | None = None, memo: dict | None = None,
                 branches: Sequence[str] | None = None):
        self.branches = branches
        self.preset = preset
        self.seed = seed
        self.device = device
        self.progress = progress
        self.models = models
        self.memo = memo

    # ---- networks
    def _networks(self, pool: pd.DataFrame) -> list:
        from dataclasses import replace

        config = self.config_
        # the same clips in the same order, whichever machine type asked first
        pool = pool.assign(_key=pool["path"].astype(str)).sort_values("_key", kind="stable").drop(columns="_key")
        pool = pool.reset_index(drop=True)
        training_fields = replace(config, n_clusters=1, n_models=1)       # scoring-only fields do not retrain
        out = []
        for i in range(config.n_models):
            seed = int(self.seed) + i
            key = ("classifier", training_fields, seed, tuple(pool["path"].astype(str)))
            if self.memo is not None and key in self.memo:
                out.append(self.memo[key])
                continue
            m = train_classifier(pool, preset=config, seed=seed, device=self.device, progress=self.progress)
            if self.memo is not None:
                self.memo[key] = m
            out.append(m)
        return out

    def embed(self, X, *, batch: int = 128) -> np.ndarray:
        """Clip embeddings: the mean over a clip's 8 segments of each network's embedding, unit length.

        Returns
        -------
        ndarray of shape (n_models, n_clips, embedding_dim)
            ``embedding_dim`` counts the scored branches only (``branches=``).
        """
        self._check_models()
        paths, _ = _paths_and_sections(X)
        fc = self.config_.feature_config
        device = select_device(self.device)
        cols = self._columns()
        out = np.zeros((len(self.models_), len(paths), len(cols)), np.float32)
        per = max(1, batch // fc.n_segments)
        for j, m in enumerate(self.models_):
            m.net.to(device).eval()
            with torch.inference_mode():
                for s in range(0, len(paths), per):
                    segs = np.stack([clip_segments(load_clip(p, sr=fc.sr, min_seconds=fc.segment_seconds), config=fc)
                                     for p in paths[s:s + per]])
                    x = torch.from_numpy(segs.reshape(-1, segs.shape[-1])).to(device)
                    e = m.net(x).float().cpu().numpy().reshape(len(segs), fc.n_segments, -1)
                    out[j, s:s + len(segs)] = _unit(e.mean(axis=1)[:, cols])
        return out

    def _columns(self) -> np.ndarray:
        """Indices of the embedding entries of the scored branches."""
        c = self.config_
        if self.branches is None:
            return np.arange(c.total_embedding_dim)
        wanted = [self.branches] if isinstance(self.branches, str) else list(self.branches)
        missing = [b for b in wanted if b not in c.branches]
        if missing or not wanted:
            raise ConfigError(f"ClassifierDetector: branches={self.branches!r}; the network has {list(c.branches)}.")
        d = c.embedding_dim
        return np.concatenate([np.arange(c.branches.index(b) * d, (c.branches.index(b) + 1) * d) for b in wanted])

    def _check_models(self) -> None:
        if not hasattr(self, "models_"):
            raise ConfigError("ClassifierDetector is not fitted: call fit(train_table) first.")

    # ---- fit
    def fit(self, X, domains=None, *, outliers=None) -> "ClassifierDetector":
        """Train (or reuse) the network(s) and fit the k-means scorer of one machine type.

        Parameters
        ----------
        X : clip table
            Training clips of the machine type to score (``domain`` column needed).
        domains : ignored (the table's ``domain`` column is used)
        outliers : clip table, optional
            Training clips of the root's other machine types; the network trains
            on ``X`` and these together (more classes make better embeddings).
            Ignored when ``models`` were given.

        Returns
        -------
        self
        """
        self.config_ = classifier_config(self.preset)
        if not isinstance(X, pd.DataFrame) or "domain" not in X.columns:
            raise ConfigError("ClassifierDetector.fit needs a clip table (asdkit.scan_root rows) of the training "
                              "clips.")
        if X["domain"].isna().any():
            raise ConfigError("ClassifierDetector.fit: every training clip needs its domain (2021-2024 file names).")
        train = X.reset_index(drop=True)
        if self.models is not None:
            self.models_ = list(self.models)
            if not self.models_:
                raise ConfigError("ClassifierDetector: models= is an empty list.")
            self.config_ = self.models_[0].config
            self._columns()
        else:
            self._columns()
            pool = train
            if outliers is not None:
                if not isinstance(outliers, pd.DataFrame):
                    raise ConfigError("ClassifierDetector.fit: outliers= must be a clip table (its classes come "
                                      "from the machine, section, domain and attribute columns).")
                pool = pd.concat([train, outliers], ignore_index=True)
            self.models_ = self._networks(pool)
        self.history_ = self.models_[0].history
        emb = self.embed(train)                                            # (n_models, n, d)
        _, sections = _paths_and_sections(train)
        sections = np.asarray(sections)
        domain = train["domain"].to_numpy()
        self.sections_ = {}
        train_scores = np.zeros((len(self.models_), len(train)))
        for sec in np.unique(sections):
            models = []
            for j in range(len(self.models_)):
                src = emb[j][(sections == sec) & (domain == "source")]
                tgt = emb[j][(sections == sec) & (domain == "target")]
                sm = _SectionModel(self._centroids(src), tgt)
                models.append(sm)
                idx = np.flatnonzero(sections == sec)
                d = self._distances(sm, emb[j][idx])
                is_tgt = domain[idx] == "target"
                if is_tgt.any():                                 # leave each target clip out of its own score
                    pos = np.flatnonzero(is_tgt)
                    own = len(sm.centroids) + np.arange(len(pos))
                    d[pos, own] = np.inf
                train_scores[j, idx] = d.min(axis=1)
                # source clips: against centroids fitted without them (5 folds), not their own
                src_pos = np.flatnonzero(~is_tgt)
                if len(src_pos) >= 2:
                    rng = np.random.default_rng(int(self.seed))
                    fold = rng.permutation(len(src_pos)) % min(5, len(src_pos))
                    for f in np.unique(fold):
                        held = src_pos[fold == f]
                        cv = _SectionModel(self._centroids(emb[j][idx][src_pos[fold != f]]), tgt)
                        train_scores[j, idx[held]] = self._distances(cv, emb[j][idx[held]]).min(axis=1)
            if not np.isfinite(train_scores[:, sections == sec]).all():
                raise ConfigError(f"ClassifierDetector: section {sec} has a single training clip; a clip cannot be "
                                  "scored against the others. Give each section at least two training clips.")
            self.sections_[sec] = models
        self.train_scores_ = {"classifier": train_scores.mean(axis=0)}
        self.thresholds_ = {"classifier": float(np.percentile(self.train_scores_["classifier"], 90))}
        return self

    def _centroids(self, src: np.ndarray) -> np.ndarray:
        """Unit-length k-means centroids of source embeddings (k = n_clusters, at most one per clip)."""
        from sklearn.cluster import KMeans

        if not len(src):
            return np.zeros((0, src.shape[-1]), np.float32)
        k = min(self.config_.n_clusters, len(src))
        km = KMeans(n_clusters=k, n_init=3, random_state=int(self.seed)).fit(src)
        return _unit(km.cluster_centers_).astype(np.float32)

    @staticmethod
    def _distances(sm: _SectionModel, emb: np.ndarray) -> np.ndarray:
        refs = np.concatenate([sm.centroids, sm.target]) if len(sm.target) else sm.centroids
        if not len(refs):
            raise ConfigError("ClassifierDetector: a section has no training clips to score against.")
        return 1.0 - emb @ refs.T

    # ---- scoring
    def score_all(self, X) -> dict:
        """``{"classifier": score}``: per clip, the smallest cosine distance, averaged over the networks."""
        if not hasattr(self, "sections_"):
            raise ConfigError("ClassifierDetector is not fitted: call fit(train_table) first.")
        _, sections = _paths_and_sections(X)
        emb = self.embed(X)
        scores = np.zeros(len(sections))
        sections = np.asarray(sections)
        for sec in np.unique(sections):
            if sec not in self.sections_:
                raise ConfigError(f"ClassifierDetector: section {sec} has no training clips "
                                  f"(trained sections: {sorted(self.sections_)}).")
            idx = np.flatnonzero(sections == sec)
            scores[idx] = np.mean([self._distances(sm, emb[j][idx]).min(axis=1)
                                   for j, sm in enumerate(self.sections_[sec])], axis=0)
        return {"classifier": scores}

    def score_samples(self, X) -> np.ndarray:
        """The anomaly score of each clip (**higher = more anomalous**)."""
        return self.score_all(X)["classifier"]

    def decision(self, scores) -> np.ndarray:
        """0/1 decisions: ``scores > thresholds_["classifier"]``."""
        self._check_models()
        return (np.asarray(scores, dtype=np.float64) > self.thresholds_["classifier"]).astype(np.int64)


#: The variants of :func:`ablation_table`: the report's model and what each part adds.
BRANCH_VARIANTS = {
    "FFT + mel + phase": {},
    "FFT + mel": {"branches": ("fft", "mel")},
    "no FeatEx": {"featex": False},
    "no Mixup": {"mixup": False},
}


def ablation_table(table: pd.DataFrame, *, variants: dict | None = None, preset: str | ClassifierConfig = "quick",
                   seed: int = 0, device: str = "cpu", progress: bool = False) -> pd.DataFrame:
    """Train each variant on a root's training clips and evaluate every machine type's test clips.

    Parameters
    ----------
    table : clip table of a whole root (``asdkit.scan_root``), test labels known
    variants : dict of name to ClassifierConfig overrides, default :data:`BRANCH_VARIANTS`
    preset, seed, device, progress

    Returns
    -------
    pandas.DataFrame
        One row per variant: harmonic means of AUC(source), AUC(target) and
        pAUC over machine types, the official score, and the final training
        loss and accuracy.
    """
    from asdkit.evaluation.metrics import section_metrics, summary_percent

    variants = BRANCH_VARIANTS if variants is None else variants
    train = table[table["split"] == "train"].reset_index(drop=True)
    test = table[table["split"] == "test"].reset_index(drop=True)
    if test["label"].isna().any() or test["domain"].isna().any():
        raise ConfigError("ablation_table needs test clips with known labels and domains (a development root).")
    rows = {}
    for name, overrides in variants.items():
        config = classifier_config(preset, **overrides)
        model = train_classifier(train, preset=config, seed=seed, device=device, progress=progress)
        per = []
        for machine, sub in train.groupby("machine", sort=True):
            det = ClassifierDetector(config, seed, device, models=[model]).fit(sub)
            t = test[test["machine"] == machine]
            y = (t["label"] == "anomaly").to_numpy().astype(int)
            per.append({"machine": machine, **section_metrics(y, det.score_samples(t), t["domain"].to_numpy())})
        t = pd.DataFrame(per)
        last = model.epoch_log.iloc[-1]
        rows[name] = {**summary_percent(t), "final loss": float(last["loss"]), "train accuracy (%)": 100 * float(last["accuracy"])}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("variant")
