"""The baseline's network: :class:`DenseAE` (a pure module) and its output :class:`AEOutput`."""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from asdkit.models.baseline.config import BaselineConfig

__all__ = ["AEOutput", "DenseAE"]


class AEOutput(NamedTuple):
    """What :class:`DenseAE` returns (the same in train and eval mode).

    Attributes
    ----------
    recon : Tensor of shape (batch, input_dim)
        Reconstruction of the input vectors.
    code : Tensor of shape (batch, bottleneck)
        Bottleneck activations (after BatchNorm and ReLU).
    """

    recon: torch.Tensor
    code: torch.Tensor


def _block(n_in: int, n_out: int) -> list[nn.Module]:
    return [nn.Linear(n_in, n_out), nn.BatchNorm1d(n_out, momentum=0.01, eps=1e-3), nn.ReLU()]


class DenseAE(nn.Module):
    """The baseline's dense autoencoder: 640-128-128-128-128-8-128-128-128-128-640.

    Every hidden layer, the bottleneck included, is Linear + BatchNorm1d
    (momentum 0.01, eps 1e-3, as the official network) + ReLU; the output
    layer is linear. A pure module: it only computes.

    Parameters
    ----------
    input_dim : int, default 640
    hidden : int, default 128
    bottleneck : int, default 8
    n_layers : int, default 4
        Hidden layers on each side of the bottleneck.

    Examples
    --------
    >>> out = DenseAE()(torch.randn(4, 640))
    >>> out.recon.shape, out.code.shape
    (torch.Size([4, 640]), torch.Size([4, 8]))
    """

    def __init__(self, input_dim: int = 640, hidden: int = 128, bottleneck: int = 8, n_layers: int = 4):
        super().__init__()
        self.input_dim = input_dim
        enc = [input_dim] + [hidden] * n_layers + [bottleneck]
        self.encoder = nn.Sequential(*[m for a, b in zip(enc[:-1], enc[1:]) for m in _block(a, b)])
        dec = [bottleneck] + [hidden] * n_layers
        self.decoder = nn.Sequential(*[m for a, b in zip(dec[:-1], dec[1:]) for m in _block(a, b)],
                                     nn.Linear(hidden, input_dim))

    @classmethod
    def from_config(cls, config: BaselineConfig) -> "DenseAE":
        """The network of ``config`` (its ``input_dim``, ``hidden``, ``bottleneck``, ``n_layers``)."""
        return cls(config.input_dim, config.hidden, config.bottleneck, config.n_layers)

    def forward(self, x: torch.Tensor) -> AEOutput:
        """``(batch, input_dim) -> AEOutput(recon (batch, input_dim), code (batch, bottleneck))``."""
        code = self.encoder(x)
        return AEOutput(self.decoder(code), code)
