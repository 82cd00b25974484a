"""Ablations: train a system with some settings changed and compare the official metrics.

One function serves every model: the variants are overrides of the system's
named settings (its ``configure``), and each variant runs the experiment
protocol (:func:`asdkit.experiments.protocol.tasks`) exactly as ``asdkit run``
would, root-level models included. The variant dictionaries of the models
(``asdkit.models.oevae.AUGMENTATION_VARIANTS``,
``asdkit.models.classifier.BRANCH_VARIANTS``) are ready-made inputs.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from asdkit.errors import ConfigError
from asdkit.evaluation.evaluate import evaluate_frame
from asdkit.evaluation.metrics import summary_percent
from asdkit.experiments.protocol import META_COLUMNS, tasks
from asdkit.experiments.run import RootModels, fit_family
from asdkit.experiments.systems import SYSTEMS, BuildContext

__all__ = ["ablation_table"]


def ablation_table(table: pd.DataFrame, system: str, variants: Mapping[str, Mapping], *, preset="quick",
                   machines: Sequence[str] | None = None, seed: int = 0, device: str = "cpu", progress: bool = False,
                   cache=None, score: str | None = None, log=None) -> pd.DataFrame:
    """Fit ``system`` once per variant on every machine type of a root and evaluate its test clips.

    Parameters
    ----------
    table : pandas.DataFrame
        A whole DCASE-layout root (:func:`asdkit.scan_root`) with known test labels.
    system : str
        A name of :data:`asdkit.experiments.systems.SYSTEMS` whose family has named settings.
    variants : mapping of name to mapping
        Each variant's overrides of the settings, e.g. ``{"no Mixup": {"mixup": False}}``.
    preset : str or config, default "quick"
        The settings the overrides apply to.
    machines : sequence of str, optional
        Only these machine types (the others still serve as other machine types).
    seed, device, progress, cache
        As ``asdkit run``.
    score : str, optional
        Which of the detector's scores to evaluate (default: the system's).
    log : callable, optional
        Progress lines.

    Returns
    -------
    pandas.DataFrame
        One row per variant: harmonic means over machine types and sections of
        AUC(source), AUC(target), pAUC and the official score (in %), and
        ``final loss``, the last epoch's training loss (mean over the fitted
        networks) where the model trains one.
    """
    if system not in SYSTEMS:
        raise ConfigError(f"ablation_table: unknown system {system!r}; choose from {sorted(SYSTEMS)}.")
    spec = SYSTEMS[system]
    if spec.configure is None or spec.needs:
        raise ConfigError(f"ablation_table: system {system!r} has no settings to vary.")
    key = score or spec.score_key
    say = log or (lambda _msg: None)
    rows = {}
    for name, overrides in variants.items():
        config = spec.configure(preset, **dict(overrides))
        context = BuildContext(preset=config, seed=seed, device=device, progress=progress, cache=cache)
        roots = RootModels(table, context, say)
        frames, losses = [], []
        for task in tasks(table, machines=machines):
            det = fit_family(spec, task, replace(context, root=roots.get(spec, task.part)))
            frames.append(task.test[META_COLUMNS].assign(score=det.score_all(task.test)[key]))
            history = getattr(det, "history_", None)
            if history is not None and history.train_loss:
                losses.append(history.train_loss[-1])
        if not frames:
            raise ConfigError("ablation_table: the root has no machine type with training and test clips.")
        ev = evaluate_frame(pd.concat(frames, ignore_index=True))
        rows[name] = {**summary_percent(ev.table), "final loss": float(np.mean(losses)) if losses else np.nan}
        say(f"{name}: official score {rows[name]['official score']:.2f} %")
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("variant")
