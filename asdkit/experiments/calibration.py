"""Calibration of the embedded synthetic data: how hard each synthetic machine type is for the reference detector."""
from __future__ import annotations

import numpy as np

from asdkit.evaluation.metrics import auc_source_target
from asdkit.models.reference import clip_statistics
from asdkit.scoring.knn import KNNScorer
from asdkit.synth import dataset as synth
from asdkit.synth.dataset import SynthPreset

__all__ = ["synthetic_aucs"]


def synthetic_aucs(machine: str, *, preset: "str | SynthPreset" = "paper", seed: int = 0,
                   n_neighbors: int = 1, n_mels: int = 64) -> tuple[float, float]:
    """AUC(source) and AUC(target) of :class:`~asdkit.models.reference.ReferenceKNN` on one synthetic machine type.

    The clips of :func:`asdkit.synth.synthesize` (same seeds, same conditions) are
    generated in memory, one at a time, and reduced to their statistics; the
    detector is fitted on all training clips (source and target) and scores the
    test clips. The AUCs follow the official pooling: all anomalies of both
    domains in each.

    Parameters
    ----------
    machine : str
        A machine type of :data:`asdkit.synth.MACHINES`.
    preset : str or SynthPreset, default "paper"
        Counts and clip length (a name of :data:`asdkit.synth.PRESETS` or a preset).
    seed : int, default 0
    n_neighbors, n_mels : int
        Hyperparameters of :class:`~asdkit.models.reference.ReferenceKNN`.

    Returns
    -------
    (float, float)
        ``(auc_source, auc_target)``.
    """
    spec = synth.machine_spec(machine)
    cfg = synth.synth_preset(preset)
    feats, is_train, labels, domains = [], [], [], []
    for split, domain, label, index, cond in synth.clip_plan(spec, cfg):
        rng = np.random.default_rng(synth.clip_seed(seed, spec.name, split, domain, label, index))
        y = synth.generate_clip(spec.name, domain=domain, label=label, attributes=cond, rng=rng,
                                seconds=cfg.clip_seconds, sr=cfg.sr)
        feats.append(clip_statistics([y], sr=cfg.sr, n_mels=n_mels)[0])
        is_train.append(split == "train")
        if split == "test":
            labels.append(int(label == "anomaly"))
            domains.append(domain)
    feats, is_train = np.array(feats), np.array(is_train)
    train = feats[is_train]
    mean, scale = train.mean(axis=0), train.std(axis=0) + 1e-8
    knn = KNNScorer(n_neighbors).fit((train - mean) / scale)
    return auc_source_target(labels, knn.score_samples((feats[~is_train] - mean) / scale), domains)
