"""Training of the classification-based model: Mixup, FeatEx, the crop dataset, the step and :func:`train_classifier`.

Everything the training engine calls is defined here at module level: the
training step :func:`training_step` (given to the engine with
:func:`functools.partial`; the engine averages the statistics it returns over
each epoch) and the Adamax factory.
"""
from __future__ import annotations

import functools
from typing import NamedTuple, Sequence

import numpy as np
import pandas as pd
import torch
from torch.nn import functional as F

from asdkit.data.audio import load_clip, standardize
from asdkit.errors import ConfigError
from asdkit.features.spectra import FeatureConfig
from asdkit.models.base import check_seed
from asdkit.models.classifier.config import ClassifierConfig, classifier_config
from asdkit.models.classifier.labels import class_labels
from asdkit.models.classifier.torch_model import ClassifierNet, ClassifierWithLoss, SubClusterAdaCos
from asdkit.training.engine import History, TrainConfig, seeded, select_device
from asdkit.training.engine import fit as engine_fit

__all__ = ["waveform_mixup", "featex", "CropDataset", "load_standardized", "training_step", "ClassifierModel",
           "train_classifier", "epoch_frame"]


def waveform_mixup(x: torch.Tensor, y: torch.Tensor, *, p: float = 0.5, generator: torch.Generator | None = None):
    """Mixup on waveforms: with probability ``p`` a sample is mixed with a random partner, ``lambda ~ U(0, 1)``.

    Parameters
    ----------
    x : Tensor of shape (batch, ...)
    y : Tensor of shape (batch, n_classes)
        One-hot or soft labels.
    p : float
    generator : torch.Generator, optional

    Returns
    -------
    (Tensor like x, Tensor like y)
        Mixed inputs and labels, with the same weights.
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


class CropDataset(torch.utils.data.Dataset):
    """Random crops of ``length`` samples of standardised clips (float16 in memory); ``crops`` per clip per epoch.

    Item ``i`` is ``(waveform crop (length,) float32, class index)`` of clip
    ``i % n_clips``; the crop start is drawn from the global torch RNG (which
    the training engine seeds).
    """

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
            start = int(gen.integers(0, w.shape[-1] - self.length + 1))
            out.append((torch.from_numpy(w[..., start:start + self.length].astype(np.float32)),
                        torch.tensor(int(self.labels[i % len(self.waves)]))))
        return out


def load_standardized(paths: Sequence[str], config: FeatureConfig) -> list:
    """Standardised clips (float16 arrays), each at least one segment long.

    Read under ``config.channels``: shape (n_samples,), or (2, n_samples) under ``"both"``
    (each channel standardised alone).
    """
    return [standardize(load_clip(p, sr=config.sr, min_seconds=config.segment_seconds, channels=config.channels))
            .astype(np.float16) for p in paths]


def training_step(model: ClassifierWithLoss, batch, config: ClassifierConfig, n_classes: int):
    """The loss of one batch, with Mixup and FeatEx as ``config`` says.

    Parameters
    ----------
    model : ClassifierWithLoss
    batch : (Tensor (batch, segment_length), Tensor (batch,) int64)
        Waveform crops and class indices.
    config : ClassifierConfig
    n_classes : int

    Returns
    -------
    loss : Tensor, scalar
    stats : dict
        For the engine to average over the epoch: ``loss``; ``accuracy``, the
        share of the samples neither mixed nor exchanged that the loss's
        nearest sub-cluster puts in their own class (weighted by their count);
        ``scale``, the AdaCos scale after the step (each step counts once).
    """
    x, label = batch
    gen = torch.Generator().manual_seed(int(torch.randint(0, 2**31 - 1, (1,)).item()))
    onehot = F.one_hot(label, n_classes).float()
    clean = torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
    if config.mixup:
        x, onehot = waveform_mixup(x, onehot, p=config.mixup_p, generator=gen)
        clean &= onehot.amax(-1) > 0.999
    parts = model.net.branch_embeddings(x)
    if config.featex:
        emb, target, swap = featex(parts, onehot, p=config.featex_p, generator=gen)
        clean &= ~swap
    else:
        emb, target = torch.cat(parts, -1), onehot
    loss = model.loss(emb, target)
    with torch.no_grad():
        pred = model.loss.predict(emb)
        n_clean = int(clean.sum())
        correct = int(((pred == target.argmax(-1)) & clean).sum())
        stats = {"loss": loss.detach(), "accuracy": (correct / max(n_clean, 1), n_clean),
                 "scale": (float(model.loss.scale), 1)}
    return loss, stats


def epoch_frame(history: History) -> pd.DataFrame:
    """The engine's per-epoch statistics as a table indexed by ``epoch`` (empty before the first epoch)."""
    if not history.stats:
        return pd.DataFrame()
    return pd.DataFrame(history.stats, index=pd.RangeIndex(1, len(history.stats) + 1, name="epoch"))


class ClassifierModel(NamedTuple):
    """A trained network with what it was trained on (:func:`train_classifier`)."""

    net: ClassifierNet
    loss: SubClusterAdaCos
    classes: list
    config: ClassifierConfig
    history: History
    epoch_log: pd.DataFrame
    seed: int

    def __repr__(self) -> str:
        return (f"ClassifierModel(seed={self.seed}, classes={len(self.classes)}, epochs={self.history.epochs}, "
                f"branches={self.config.branches})")

    def get_state(self) -> dict:
        """Everything to rebuild it: weights and buffers of net and loss, classes, config, logs, seed."""
        return {"net": dict(self.net.state_dict()), "loss": dict(self.loss.state_dict()),
                "classes": list(self.classes), "config": self.config.to_dict(), "history": self.history.to_dict(),
                "epoch_log": self.epoch_log, "seed": int(self.seed)}

    @classmethod
    def from_state(cls, state: dict, device: str | torch.device = "cpu") -> "ClassifierModel":
        """The model :meth:`get_state` described, in eval mode on ``device``."""
        config = ClassifierConfig(**state["config"])
        seed = int(state["seed"])
        with seeded(seed):                  # the initial weights are overwritten; no global RNG side effect
            module = ClassifierWithLoss(config, len(state["classes"]), seed)
        module.net.load_state_dict(state["net"])
        module.loss.load_state_dict(state["loss"])
        module.to(device).eval()
        return cls(module.net, module.loss, list(state["classes"]), config, History.from_dict(state["history"]),
                   state["epoch_log"], seed)


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
        ``epoch_log`` has per epoch the mean loss, the mean AdaCos scale and the share of
        training crops put in their own class (``accuracy``, counted on
        samples neither mixed nor exchanged).
    """
    config = classifier_config(preset)
    seed = check_seed(seed)
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
    waves = load_standardized(clips["path"].tolist(), fc)
    y = labels.map({c: i for i, c in enumerate(classes)}).to_numpy()
    with seeded(seed):
        model = ClassifierWithLoss(config, len(classes), seed)
    train_cfg = TrainConfig(epochs=config.epochs, batch_size=config.batch_size, lr=config.lr, seed=seed,
                            val_fraction=0.0, amp=True, progress=progress)
    history = engine_fit(model, functools.partial(training_step, config=config, n_classes=len(classes)),
                         CropDataset(waves, y, fc.segment_length, config.crops_per_clip), config=train_cfg,
                         optimizer_factory=functools.partial(torch.optim.Adamax, weight_decay=config.weight_decay),
                         device=device_)
    model.eval()
    return ClassifierModel(model.net, model.loss, classes, config, history, epoch_frame(history), seed)
