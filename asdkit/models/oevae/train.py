"""OEVAE's training step: the joint loss, its optimiser, the segment data and one training run.

Everything the training engine (:func:`asdkit.training.engine.fit`) is given
is defined here at module level:

* :func:`oevae_loss` -- the joint loss of one batch and its per-batch statistics;
* :class:`OEVAEBatchLoss` -- the engine's ``loss_fn``: draws the batch's
  pseudo-anomalies; the engine averages the statistics it returns over each
  epoch (``History.stats``, the detector's ``epoch_log_``);
* :func:`oevae_optimizer` -- the engine's ``optimizer_factory`` (with
  :func:`functools.partial`);
* :class:`SegmentDataset` -- the normal segments and their ``v``;
* :func:`smote_segments` and :func:`train_network` -- SMOTE before training,
  and the whole run.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from asdkit.features.augment import mixup, smote
from asdkit.models.oevae.config import OEVAEConfig
from asdkit.models.oevae.torch_model import OEVAENet
from asdkit.training.engine import History, TrainConfig, seeded
from asdkit.training.engine import fit as engine_fit

__all__ = ["oevae_loss", "OEVAEBatchLoss", "oevae_optimizer", "SegmentDataset", "smote_segments",
           "train_network", "epoch_frame"]


def oevae_loss(net: OEVAENet, x_normal: torch.Tensor, prior_mean_d: torch.Tensor, x_outlier: torch.Tensor, *,
               lambda_vae: float, mixup_alpha: float | None = None, rng=None) -> tuple[torch.Tensor, dict]:
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

    Returns
    -------
    loss : Tensor
        The scalar loss (float32).
    stats : dict of str to (Tensor, int)
        Detached batch means, each with the count it is a mean over (the
        engine weighs them so): ``machine_loss`` (BCE, B + B' segments),
        ``kl`` and ``recon`` (per normal segment, B) and ``oe_accuracy``
        (share of the B + B' segments on the right side of the classifier).
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
    with torch.no_grad():
        stats = {"machine_loss": (l_machine.detach(), b + b_out), "kl": (kl.detach().mean(), b),
                 "recon": (recon.detach().mean(), b),
                 "oe_accuracy": (((logits > 0).float() == t).float().mean(), b + b_out)}
    return loss, stats


class OEVAEBatchLoss:
    """The engine's ``loss_fn(model, batch)``: :func:`oevae_loss` with pseudo-anomalies drawn for the batch.

    Parameters
    ----------
    outliers : Tensor of shape (n_outlier_segments, n_mels, n_frames)
        Pseudo-anomaly segments (CPU); as many as the batch's normal segments
        are drawn uniformly with replacement for each batch.
    k : float
        The prior's scale: ``z_d ~ N(k v, 1)``.
    lambda_vae : float
    mixup_alpha : float or None
        None: no Mixup.

    Notes
    -----
    The draw and Mixup are seeded from one number taken from the global torch
    RNG, which the engine seeds from ``TrainConfig.seed``.
    """

    def __init__(self, outliers: torch.Tensor, k: float, *, lambda_vae: float, mixup_alpha: float | None):
        self.outliers, self.k = outliers, k
        self.lambda_vae, self.mixup_alpha = lambda_vae, mixup_alpha

    def __call__(self, model: OEVAENet, batch) -> tuple[torch.Tensor, dict]:
        x, prior = batch
        gen = torch.randint(0, 2**31 - 1, (1,)).item()            # from the engine's seeded global RNG
        pick = torch.from_numpy(np.random.default_rng(gen).integers(0, len(self.outliers), x.shape[0]))
        xo = self.outliers[pick].to(x.device, dtype=torch.float32)
        return oevae_loss(model, x, self.k * prior, xo, lambda_vae=self.lambda_vae, mixup_alpha=self.mixup_alpha,
                          rng=gen)


def oevae_optimizer(params, lr: float, *, vae: nn.Module, lambda_vae: float) -> torch.optim.Adam:
    """One Adam over all parameters whose VAE group has ``eps = 1e-8 * lambda_vae``.

    Give it to the engine as ``functools.partial(oevae_optimizer, vae=net.vae, lambda_vae=...)``.

    Parameters
    ----------
    params : iterable of Parameter
        All the network's parameters (the engine passes ``model.parameters()``).
    lr : float
    vae : nn.Module
        The VAE, whose parameters form the second group.
    lambda_vae : float

    Notes
    -----
    Adam's steps do not depend on the scale of the loss except through
    ``eps``; the VAE's gradients are scaled by ``lambda_vae`` and would
    otherwise sit at ``eps``, so its ``eps`` is scaled alike.
    """
    vae_ids = {id(p) for p in vae.parameters()}
    params = list(params)
    other = [p for p in params if id(p) not in vae_ids]
    own = [p for p in params if id(p) in vae_ids]
    return torch.optim.Adam([{"params": other}, {"params": own, "eps": 1e-8 * lambda_vae}], lr=lr)


class SegmentDataset(torch.utils.data.Dataset):
    """Normal segments and their ``v``: items ``(x, v)`` of shapes (n_mels, n_frames) and (), float32.

    Parameters
    ----------
    x : ndarray of shape (n_segments, n_mels, n_frames)
        May be a memmap; read batch by batch (``__getitems__``).
    prior : ndarray of shape (n_segments,)
    """

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


def smote_segments(segs: np.ndarray, seg_v: np.ndarray, seg_clip: np.ndarray, seg_group: np.ndarray, *,
                   config: OEVAEConfig, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """SMOTE in the log-mel input space: every group raised to ``smote_ratio`` x the largest group's size.

    Parameters
    ----------
    segs : ndarray of shape (n, n_mels, n_frames)
    seg_v : ndarray of shape (n,)
        ``v`` of each segment (interpolated alongside).
    seg_clip : ndarray of shape (n,)
        Clip of each segment; each new segment is its own clip, ``-1, -2, ...``.
    seg_group : ndarray of shape (n,)
        Group of each segment (``"domain|v"``).
    config : OEVAEConfig
        ``smote``, ``smote_ratio``, ``smote_k``.
    seed : int

    Returns
    -------
    segs, seg_v, seg_clip : ndarrays of shape (n + n_new, ...)
        The real segments first, then the new ones.
    counts : dict of str to (int, int)
        Segments per group before and after; empty when nothing was added.
    """
    if not config.smote:
        return segs, seg_v, seg_clip, {}
    names, counts = np.unique(seg_group, return_counts=True)
    if names.size < 2:
        return segs, seg_v, seg_clip, {}
    target_n = int(math.ceil(config.smote_ratio * counts.max()))
    strategy = {n: max(int(c), target_n) for n, c in zip(names, counts)}
    if not any(strategy[n] > c for n, c in zip(names, counts)):
        return segs, seg_v, seg_clip, {}
    res = smote(segs, seg_group, values=seg_v, sampling_strategy=strategy, k_neighbors=config.smote_k,
                random_state=int(seed))
    plain = {str(g): (int(a), int(b)) for g, (a, b) in res.counts.items()}
    return (np.concatenate([segs, res.X]), np.concatenate([seg_v, res.values]),
            np.concatenate([seg_clip, -1 - np.arange(len(res.X))]), plain)


def train_network(config: OEVAEConfig, segs: np.ndarray, seg_v: np.ndarray, outlier_segs: np.ndarray, *,
                  k: float, seed: int, device: torch.device, progress: bool = False,
                  checkpoint_dir=None) -> tuple[OEVAENet, History, pd.DataFrame]:
    """Build :class:`OEVAENet` under ``seed`` and train it with the engine.

    Parameters
    ----------
    config : OEVAEConfig
    segs : ndarray of shape (n, n_mels, n_frames)
        Normal segments (SMOTE's included).
    seg_v : ndarray of shape (n,)
    outlier_segs : ndarray of shape (n_out, n_mels, n_frames)
        Pseudo-anomaly segments.
    k : float
    seed : int
    device : torch.device
    progress : bool
    checkpoint_dir : path, optional
        Engine checkpoints (resume after an interruption).

    Returns
    -------
    net : OEVAENet
        Trained, on ``device``, in eval mode.
    history : History
        Joint loss per epoch.
    epoch_log : DataFrame
        ``History.stats`` indexed by ``epoch``: ``machine_loss``, ``kl``,
        ``recon`` (per normal segment) and ``oe_accuracy``.
    """
    with seeded(int(seed)):
        net = OEVAENet(config)
    loss_fn = OEVAEBatchLoss(torch.from_numpy(outlier_segs), k, lambda_vae=config.lambda_vae,
                             mixup_alpha=config.mixup_alpha if config.mixup else None)
    train_cfg = TrainConfig(epochs=config.epochs, batch_size=config.batch_size // 2, lr=config.lr, seed=int(seed),
                            val_fraction=0.0, amp=True, progress=progress,
                            checkpoint_dir=None if checkpoint_dir is None else str(checkpoint_dir))
    history = engine_fit(net, loss_fn, SegmentDataset(segs, seg_v), config=train_cfg,
                         optimizer_factory=functools.partial(oevae_optimizer, vae=net.vae,
                                                             lambda_vae=config.lambda_vae),
                         device=device)
    return net.eval(), history, epoch_frame(history)


def epoch_frame(history: History) -> pd.DataFrame:
    """The engine's per-epoch statistics as a table indexed by ``epoch`` (empty before the first epoch)."""
    if not history.stats:
        return pd.DataFrame()
    return pd.DataFrame(history.stats, index=pd.RangeIndex(1, len(history.stats) + 1, name="epoch"))
