"""Ablations: train a system with some settings changed and compare the official metrics.

One function serves every model: the variants are overrides of the system's
named settings (its ``configure``), and each variant runs the experiment
protocol (:func:`asdkit.experiments.protocol.tasks`) exactly as ``asdkit run``
would, root-level models included. The variant dictionaries of the models
(``asdkit.models.oevae.AUGMENTATION_VARIANTS``,
``asdkit.models.classifier.BRANCH_VARIANTS``) are ready-made inputs.
"""
from __future__ import annotations

import math
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

__all__ = ["ablation_table", "lever_table", "LEVERS", "seed_tables", "compare_runs", "target_prior_sweep"]

#: The scoring levers that ``asdkit run`` measures in every run, as (without, with) pairs of systems that
#: share one fitted detector per machine type: switching the lever on changes only how it scores.
LEVERS: dict[str, tuple[str, str]] = {
    "classifier: target statistics shrunk toward the source's (vs each domain's own)": ("classifier-domain",
                                                                                         "classifier"),
    "classifier: per-domain shrunk standardisation (vs the report's raw minimum)": ("classifier-report", "classifier"),
    "OEVAE: target statistics shrunk toward the source's (vs each domain's own)": ("oevae-domain", "oevae"),
    "OEVAE: per-domain banks, shrunk statistics (vs the report's pooled bank)": ("oevae-report", "oevae"),
    "ensemble: members scored per domain, shrunk (vs the report's members)": ("ensemble-report", "ensemble"),
    "OEVAE: alpha beside beta, w = 0.5 (vs beta alone)": ("oevae-beta", "oevae"),
    "ensemble: adding OEVAE to the classifier": ("classifier", "ensemble"),
    "baseline: organisers' per-frame Mahalanobis (vs asdkit's 640 x 640 Ledoit-Wolf)": ("baseline-mahala-lw",
                                                                                        "baseline-mahala"),
}


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


def seed_tables(source) -> dict:
    """Per-seed results tables: from a :class:`~asdkit.experiments.seeds.SeedsResult`, or a ``--seeds`` run folder.

    Parameters
    ----------
    source : SeedsResult, or path-like
        A folder written by ``asdkit run --seeds`` (its ``seed_<n>/results.csv``).

    Returns
    -------
    dict of int to pandas.DataFrame
        Seed -> :func:`~asdkit.experiments.run.results_table` of that seed.
    """
    from pathlib import Path

    if hasattr(source, "runs"):
        return {int(s): r.table for s, r in source.runs.items() if not r.table.empty}
    folder = Path(source)
    found = {int(p.parent.name.split("_", 1)[1]): pd.read_csv(p, index_col=[0, 1])
             for p in sorted(folder.glob("seed_*/results.csv"))}
    if not found:
        raise ConfigError(f"seed_tables: no seed_<n>/results.csv below {str(folder)!r}; run "
                          "'asdkit run ... --seeds 0 1 2 --out FOLDER' first.")
    return found


def lever_table(source, levers: Mapping[str, tuple[str, str]] | None = None,
                metrics: Sequence[tuple[str, str]] = (("official score", "h-mean"),
                                                      ("harmonic mean", "AUC(target)"),
                                                      ("harmonic mean", "AUC(source)"))) -> pd.DataFrame:
    """Each lever off and on, mean ± std over seeds, and the paired gain, from runs with several seeds.

    Parameters
    ----------
    source : SeedsResult, path-like or mapping of seed to results table
        See :func:`seed_tables`.
    levers : mapping of name to (system without, system with), default :data:`LEVERS`
        Levers whose systems are not in the runs are left out.
    metrics : sequence of (row group, metric) of the results table
        Default: the official score and the harmonic means of AUC(target) and AUC(source).

    Returns
    -------
    pandas.DataFrame
        Index ``(lever, metric)``; columns ``off``, ``on`` (mean ± std over the
        seeds, in %), ``gain`` (mean ± std of the per-seed differences, on -
        off) and ``seeds``.
    """
    tables = source if isinstance(source, Mapping) else seed_tables(source)
    if not tables:
        raise ConfigError("lever_table: no results tables.")
    levers = LEVERS if levers is None else levers
    rows = {}

    def cell(v: np.ndarray) -> str:
        return f"{v.mean():.2f}" if len(v) < 2 else f"{v.mean():.2f} ± {v.std(ddof=1):.2f}"

    for name, (off, on) in levers.items():
        if not all(off in t.columns and on in t.columns for t in tables.values()):
            continue
        for group, metric in metrics:
            a = np.array([t.loc[(group, metric), off] for t in tables.values()], dtype=float)
            b = np.array([t.loc[(group, metric), on] for t in tables.values()], dtype=float)
            label = "official score" if group == "official score" else f"h-mean {metric}"
            rows[(name, label)] = {"off": cell(a), "on": cell(b), "gain": cell(b - a), "seeds": len(a)}
    if not rows:
        raise ConfigError("lever_table: none of the levers' systems are in these runs; run them with "
                          "--system all (or name both systems of a lever).")
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index = pd.MultiIndex.from_tuples(out.index, names=["lever", "metric"])
    return out


def _results(source) -> pd.DataFrame:
    """The results table of a run: an ExperimentResult, a table, or a run folder (its ``results.csv``)."""
    from pathlib import Path

    if isinstance(source, pd.DataFrame):
        return source
    if hasattr(source, "table"):
        return source.table
    path = Path(source) / "results.csv"
    if not path.is_file():
        raise ConfigError(f"compare_runs: {str(path)!r} not found; give folders written by 'asdkit run'.")
    return pd.read_csv(path, index_col=[0, 1])


def compare_runs(runs: Mapping[str, object], *, against: str | None = None,
                 metrics: Sequence[tuple[str, str]] = (("official score", "h-mean"),
                                                       ("harmonic mean", "AUC(source)"),
                                                       ("harmonic mean", "AUC(target)"))) -> pd.DataFrame:
    """The same systems in several runs side by side (channel policies, supplemental clips, ...), with differences.

    Parameters
    ----------
    runs : mapping of name to run
        Each an :class:`~asdkit.experiments.run.ExperimentResult`, a results table, or a folder written by
        ``asdkit run`` (its ``results.csv``), e.g. ``{"auto": "runs/y2026/auto", "both": "runs/y2026/both"}``.
    against : str, optional
        The run the others are compared with (default: the first).
    metrics : sequence of (row group, metric) of the results table

    Returns
    -------
    pandas.DataFrame
        Index ``(metric, system)`` over the systems every run has; one column per run (in %), and
        ``<run> - <against>`` for every other run.
    """
    tables = {name: _results(src) for name, src in runs.items()}
    if len(tables) < 2:
        raise ConfigError("compare_runs: give two runs or more.")
    against = next(iter(tables)) if against is None else against
    if against not in tables:
        raise ConfigError(f"compare_runs: against={against!r} is not one of the runs {list(tables)}.")
    systems = [s for s in tables[against].columns if all(s in t.columns for t in tables.values())]
    if not systems:
        raise ConfigError("compare_runs: the runs have no system in common.")
    blocks = {}
    for group, metric in metrics:
        label = "official score" if group == "official score" else f"h-mean {metric}"
        frame = pd.DataFrame({name: t.loc[(group, metric), systems].astype(float) for name, t in tables.items()})
        for name in tables:
            if name != against:
                frame[f"{name} - {against}"] = frame[name] - frame[against]
        blocks[label] = frame
    out = pd.concat(blocks, names=["metric", "system"])
    return out.round(2)


def target_prior_sweep(fitted: Mapping[str, tuple], priors: Sequence[float] = (0, 2, 5, 10, 20, 50, math.inf)
                       ) -> pd.DataFrame:
    """The per-domain score under several target priors, from fitted detectors, with the official metrics.

    The weight ``target_prior`` of the source domain's statistics in the
    target domain's (:func:`asdkit.scoring.normalize.shrink_toward`) runs from
    0 (each domain standardised by its own clips) to infinity (both on the
    source's scale: the raw minimum's ranking). Every value is scored from the
    same fit (the detector's ``prior_scores``); nothing is trained.

    Parameters
    ----------
    fitted : mapping of machine type to (detector, test clip table)
        Fitted :class:`~asdkit.models.classifier.ClassifierDetector` or
        :class:`~asdkit.models.oevae.OEVAEDetector` and labelled test clips.
    priors : sequence of float

    Returns
    -------
    pandas.DataFrame
        Index ``target_prior``; columns the harmonic means over the machine
        types of AUC(source), AUC(target) and pAUC, and the official score
        (the harmonic mean of all of them), in %.
    """
    from asdkit.evaluation.metrics import floored_hmean, section_metrics

    if not fitted:
        raise ConfigError("target_prior_sweep: no fitted detectors.")
    values: dict[float, dict[str, list]] = {float(p): {"auc_source": [], "auc_target": [], "pauc": []} for p in priors}
    for machine, (det, clips) in fitted.items():
        if "target_prior" not in getattr(det, "capabilities", ()):
            raise ConfigError(f"target_prior_sweep: the detector of {machine} ({type(det).__name__}) cannot "
                              "score under a target prior; give a ClassifierDetector or an OEVAEDetector.")
        y = (clips["label"].astype(str) == "anomaly").astype(int).to_numpy()
        for p, s in det.prior_scores(clips, list(values)).items():
            for k, v in section_metrics(y, s, clips["domain"]).items():
                values[p][k].append(v)
    rows = {p: {"h-mean AUC(source)": 100 * floored_hmean(v["auc_source"]),
                "h-mean AUC(target)": 100 * floored_hmean(v["auc_target"]),
                "h-mean pAUC": 100 * floored_hmean(v["pauc"]),
                "official score": 100 * floored_hmean(v["auc_source"] + v["auc_target"] + v["pauc"])}
            for p, v in values.items()}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("target_prior")
