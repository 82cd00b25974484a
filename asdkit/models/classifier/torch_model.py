"""The networks of the classification-based model: branches, :class:`ClassifierNet` and the Sub-Cluster AdaCos loss.

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
* :class:`ClassifierWithLoss`: the network and its loss in one module, what
  the training engine trains.

Only computation here; training is in :mod:`asdkit.models.classifier.train`.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from asdkit.data.channels import n_channels
from asdkit.errors import ConfigError
from asdkit.features.spectra import TorchFeatures
from asdkit.models.classifier.config import ClassifierConfig

__all__ = ["FFTBranch", "SpectrogramBranch", "ClassifierNet", "SubClusterAdaCos", "ClassifierWithLoss"]


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

    def __init__(self, n_bins: int, channels: int = 128, embedding_dim: int = 128, in_channels: int = 1):
        super().__init__()
        k1 = max(8, n_bins // 64)
        s1 = max(1, k1 // 4)
        layers, length, c_in = [], n_bins, in_channels
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
        """``x`` of shape (batch, bins), or (batch, in_channels, bins)."""
        return self.head(self.body(x.unsqueeze(1) if x.dim() == 2 else x).flatten(1))


class ClassifierNet(nn.Module):
    """The multi-branch network on raw 2-s waveforms ``(batch, segment_length)``.

    Under ``channels="both"`` the waveforms are ``(batch, 2, segment_length)``
    (near, far) and every branch takes both microphones' features as input channels.

    ``branch_embeddings(x)`` returns one ``(batch, embedding_dim)`` tensor per
    branch; ``forward(x)`` their concatenation, ``(batch, total_embedding_dim)``.
    The features are computed inside (no gradient): ``fft`` = FFT magnitude
    (log-compressed, averaged over ``fft_pool`` bins), ``mel`` = log-mel in dB
    minus its temporal mean, ``phase`` = ``cos`` and ``sin`` of every
    ``phase_stride``-th STFT bin's phase.
    """

    def __init__(self, config: ClassifierConfig):
        super().__init__()
        self.config = config
        fc = config.feature_config
        self.features = TorchFeatures(fc)
        self.n_channels = n_channels(config.channels)
        branches = {}
        for name in config.branches:
            if name == "fft":
                n_bins = (fc.segment_length // 2 + 1) // config.fft_pool
                branches[name] = FFTBranch(n_bins, config.fft_channels, config.embedding_dim,
                                           in_channels=self.n_channels)
            else:
                branches[name] = SpectrogramBranch(self.n_channels * (1 if name == "mel" else 2), config.width,
                                                   config.blocks, config.embedding_dim)
        self.branches = nn.ModuleDict(branches)

    def inputs(self, x: torch.Tensor) -> dict:
        """The branch inputs of waveforms ``x`` (no gradient): name -> tensor of the branch's input shape."""
        c = self.config
        if x.dim() == 3:                                  # (batch, channels, samples): channels stacked per branch
            B, C, L = x.shape
            flat = self.inputs(x.reshape(B * C, L))
            # fft (B*C, bins) -> (B, C, bins); mel (B*C, 1, M, T) -> (B, C, M, T); phase (B*C, 2, F, T) -> (B, 2C, F, T)
            return {name: v.reshape(B, -1, *v.shape[-2:]) if v.dim() == 4 else v.reshape(B, C, v.shape[-1])
                    for name, v in flat.items()}
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
        """One ``(batch, embedding_dim)`` embedding per branch, in ``config.branches`` order."""
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
        """The most likely class of each embedding, ``(batch,)`` int64."""
        return self.cosines(emb).amax(-1).argmax(-1)


class ClassifierWithLoss(nn.Module):
    """The network and its loss in one module (what the training engine trains).

    Parameters
    ----------
    config : ClassifierConfig
    n_classes : int
        Classes of the training clips; the loss has ``3 n_classes`` outputs
        with FeatEx (kept, and both halves of an exchanged sample).
    seed : int
        Seed of the loss's sub-cluster centres (the network's initial weights
        come from the global torch RNG: build it under
        :func:`asdkit.training.engine.seeded`).

    Attributes
    ----------
    net : ClassifierNet
    loss : SubClusterAdaCos
    """

    def __init__(self, config: ClassifierConfig, n_classes: int, seed: int):
        super().__init__()
        self.net = ClassifierNet(config)
        n_out = 3 * n_classes if config.featex else n_classes
        self.loss = SubClusterAdaCos(config.total_embedding_dim, n_out, config.sub_clusters, seed=seed)

    def forward(self, x):
        """The embeddings of waveforms ``x``: ``(batch, segment_length) -> (batch, total_embedding_dim)``."""
        return self.net(x)
