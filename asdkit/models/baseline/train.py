"""The baseline's training step for :func:`asdkit.training.engine.fit`: the loss and the optimiser."""
from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

__all__ = ["ae_loss", "ae_optimizer"]


def ae_loss(model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """The baseline's training loss: MSE of the reconstruction, in float32.

    Parameters
    ----------
    model : DenseAE
    batch : Tensor of shape (batch, input_dim)
        Stacked-frame vectors.

    Returns
    -------
    Tensor of shape ()
        Mean squared error over the batch and the vector's values.
    """
    return nn.functional.mse_loss(model(batch).recon.float(), batch.float())


def ae_optimizer(params: Iterable[torch.nn.Parameter], lr: float) -> torch.optim.Optimizer:
    """The official system's optimiser: Adam with torch's defaults and learning rate ``lr``."""
    return torch.optim.Adam(params, lr=lr)
