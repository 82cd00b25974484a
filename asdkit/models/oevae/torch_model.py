"""OEVAE's networks, pure ``nn.Module`` s that only compute: ``f_FE`` + ``g_machine`` + the domain VAE.

* ``f_FE`` (:class:`asdkit.models.resnet.ResNet18`) maps a 2-s log-mel segment to an
  embedding;
* ``g_machine`` (:class:`MachineHead`) gives the logit of "target machine type"
  (t = 1) against clips of the root's other machine types (t = 0);
* :class:`DomainVAE` encodes the embeddings of the normal clips into a latent
  split into ``z_d`` (prior ``N(k v, 1)``) and ``z_c`` (prior ``N(0, 1)``).

:class:`OEVAENet` holds the three; :func:`asdkit.models.oevae.train.oevae_loss`
trains them together.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from asdkit.data.channels import n_channels
from asdkit.models.oevae.config import OEVAEConfig
from asdkit.models.resnet import ResNet18

__all__ = ["MachineHead", "VAEOutput", "DomainVAE", "OEVAENet"]


class MachineHead(nn.Module):
    """``g_machine``: a fully connected binary classifier on the embedding (logit of "target machine")."""

    def __init__(self, dim: int, hidden: int = 128):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 1))

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        """Logits of shape (batch,) of embeddings ``e`` of shape (batch, dim)."""
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
        """Posterior and reconstruction of embeddings ``e`` of shape (batch, dim)."""
        h = self.encoder(e)
        mu, logvar = self.mu(h), self.logvar(h).clamp(-10.0, 10.0)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        return VAEOutput(mu, logvar, self.decoder(z))

    def kl(self, out: VAEOutput, prior_mean_d: torch.Tensor) -> torch.Tensor:
        """Per-sample KL of the posterior to ``N(prior_mean_d, 1)`` on ``z_d`` and ``N(0, 1)`` on ``z_c``.

        ``prior_mean_d`` has shape (batch,) (``k v``); returns shape (batch,).
        """
        prior = torch.zeros_like(out.mu)
        prior[:, :self.n_zd] = prior_mean_d.reshape(-1, 1).to(out.mu.dtype)
        return 0.5 * (out.logvar.exp() + (out.mu - prior) ** 2 - 1 - out.logvar).sum(dim=1)

    def nll_zc(self, mu: torch.Tensor) -> torch.Tensor:
        """``alpha = -log N(mu_c; 0, I)`` per sample: shape (batch,), float64, **higher = more anomalous**.

        ``mu`` is the posterior mean of shape (batch, latent); its channels after
        the first ``n_zd`` are ``mu_c``.
        """
        zc = mu[:, self.n_zd:].double()
        return 0.5 * (zc ** 2).sum(dim=1) + 0.5 * zc.shape[1] * math.log(2 * math.pi)


class OEVAENet(nn.Module):
    """``f_FE`` + ``g_machine`` + the VAE, trained together by :func:`asdkit.models.oevae.train.oevae_loss`.

    Calling it gives the embeddings; ``net.head`` and ``net.vae`` read them.
    """

    def __init__(self, config: OEVAEConfig):
        super().__init__()
        self.extractor = ResNet18(width=config.width, in_channels=n_channels(config.channels))
        d = self.extractor.embedding_dim
        self.head = MachineHead(d, hidden=max(32, d // 4))
        self.vae = DomainVAE(d, hidden=config.vae_hidden, latent=config.latent, n_zd=config.n_zd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embeddings of shape (batch, embedding_dim) of log-mel segments of shape (batch, n_mels, n_frames)."""
        return self.extractor(x)
