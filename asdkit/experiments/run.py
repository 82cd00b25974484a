"""Experiments: train named systems on a DCASE-layout root, write official files, tables and plots.

:data:`SYSTEMS` is the registry of named systems that ``asdkit run --system``
accepts. Systems of one *family* share a trained model (``baseline-mse`` and
``baseline-mahala`` are two scorers of the same autoencoder), so a run trains
each family once per machine type.

:func:`run_experiment` writes, for each system, below ``<out>/<system>/``:

* ``anomaly_score_<machine>_section_<ss>_test.csv`` and
  ``decision_result_<machine>_section_<ss>_test.csv`` (the official formats);
* ``results.csv`` / ``results.md``: AUC(source), AUC(target), pAUC per machine,
  harmonic means and the official score (when the test labels are known);
* ``plots/roc_<machine>.png`` and ``plots/scores_<machine>.png``;

and ``<out>/results.csv``, ``<out>/results.md`` (all systems side by side) and
``<out>/config.json`` (everything needed to repeat the run).
"""
from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from asdkit.io import atomic_write_bytes
from asdkit.data.dataset import scan_root
from asdkit.errors import ConfigError, DatasetError
from asdkit.evaluation.evaluate import EvaluationResult, evaluate_scores, save_result
from asdkit.evaluation.outputs import write_decisions, write_scores

__all__ = ["SystemSpec", "SYSTEMS", "PRESETS", "register_system", "run_experiment", "ExperimentResult",
           "results_table", "format_table"]

#: The presets every system knows: ``quick`` (CI, notebooks, demo: seconds to minutes on 2 CPU cores),
#: ``cpu`` (the largest settings with which all systems finish the embedded paper dataset on 2 CPU
#: cores in under 30 minutes), ``paper`` (the report's settings, for a GPU).
PRESETS = ("quick", "cpu", "paper")


@dataclass(frozen=True)
class SystemSpec:
    """A named system of the registry.

    Attributes
    ----------
    name : str
        What ``--system`` accepts, e.g. ``"baseline-mahala"``.
    family : str
        Systems of one family share one trained model per machine type.
    score_key : str
        Which of the family model's ``score_all`` outputs is this system's score.
    description : str
    build : callable
        ``build(preset, seed, device, progress, cache, context) -> estimator`` with
        ``fit(train_table, domains[, outliers=][, members=])``, ``score_all(paths) -> dict``
        and ``thresholds_`` (dict of score_key to float). ``cache`` is a
        :class:`~asdkit.features.cache.FeatureCache` or None; ``context`` is a dict that
        lives for one run (a model trained on the whole root is kept there and
        serves every machine type).
    outlier_exposure : bool
        ``fit`` also gets ``outliers=``: the training clips of the root's other
        machine types (same part): pseudo-anomalies for OEVAE, more classes for
        the classifier.
    needs : tuple of str
        Families whose fitted models (of the same machine type) ``fit`` gets as
        ``members={family: model}``; a run fits them first, also when none of
        their systems was asked for.
    """

    name: str
    family: str
    score_key: str
    description: str
    build: Callable = field(repr=False, compare=False)
    outlier_exposure: bool = False
    needs: tuple = ()


SYSTEMS: dict[str, SystemSpec] = {}


def register_system(spec: SystemSpec) -> SystemSpec:
    """Add a system to :data:`SYSTEMS`; the families it ``needs`` must be registered already."""
    known = {s.family for s in SYSTEMS.values()}
    missing = [f for f in spec.needs if f not in known]
    if missing:
        raise ConfigError(f"system {spec.name!r} needs the famil(ies) {missing}, which no registered system has; "
                          "register those first.")
    SYSTEMS[spec.name] = spec
    return spec


class _ScoreMemo:
    """A fitted model whose last ``score_all`` of a list of paths is kept (the ensemble scores them again)."""

    def __init__(self, model):
        self.model = model
        self._last = None

    def __getattr__(self, name):
        return getattr(self.model, name)

    def score_all(self, X):
        if isinstance(X, list) and self._last is not None and self._last[0] == X:
            return self._last[1]
        out = self.model.score_all(X)
        if isinstance(X, list):
            self._last = (list(X), out)
        return out


def _build_baseline(preset: str, seed: int, device: str, progress: bool, cache=None, context=None):
    from asdkit.models.baseline import AutoencoderBaseline

    return AutoencoderBaseline(preset=preset, seed=seed, device=device, progress=progress)


def _build_oevae(preset: str, seed: int, device: str, progress: bool, cache=None, context=None):
    from asdkit.models.oevae import OEVAEDetector

    return OEVAEDetector(preset=preset, seed=seed, device=device, progress=progress, cache=cache)


def _build_classifier(preset: str, seed: int, device: str, progress: bool, cache=None, context=None):
    from asdkit.models.classifier import ClassifierDetector

    return ClassifierDetector(preset=preset, seed=seed, device=device, progress=progress, memo=context)


def _build_ensemble(preset: str, seed: int, device: str, progress: bool, cache=None, context=None):
    from asdkit.models.ensemble import EnsembleDetector

    return EnsembleDetector()


register_system(SystemSpec("baseline-mse", "baseline", "mse",
                           "organisers' dense autoencoder, mean squared reconstruction error", _build_baseline))
register_system(SystemSpec("baseline-mahala", "baseline", "mahala",
                           "organisers' dense autoencoder, selective Mahalanobis (min over source/target)",
                           _build_baseline))
register_system(SystemSpec("oevae", "oevae", "oevae",
                           "OEVAE: outlier-exposed ResNet18 + domain-invariant VAE + KNN, w*alpha + (1-w)*beta",
                           _build_oevae, outlier_exposure=True))
register_system(SystemSpec("oevae-alpha", "oevae", "alpha",
                           "OEVAE, alpha only: -log p(z_c) of the VAE's domain-invariant latent",
                           _build_oevae, outlier_exposure=True))
register_system(SystemSpec("oevae-beta", "oevae", "beta",
                           "OEVAE, beta only: KNN distance of the ResNet18 embeddings to the normal training data",
                           _build_oevae, outlier_exposure=True))
register_system(SystemSpec("classifier", "classifier", "classifier",
                           "classification-based model: FFT, mel and phase branches, Sub-Cluster AdaCos, FeatEx, "
                           "Mixup; one network for the root, k-means/cosine scoring per machine type",
                           _build_classifier, outlier_exposure=True))
register_system(SystemSpec("ensemble", "ensemble", "ensemble",
                           "classifier + OEVAE, each standardised by its training clips' scores, equal weights",
                           _build_ensemble, needs=("classifier", "oevae")))


@dataclass
class ExperimentResult:
    """What :func:`run_experiment` produced.

    Attributes
    ----------
    evaluations : dict of str to EvaluationResult
        Per system; empty where the test labels are unknown.
    table : pandas.DataFrame
        All systems side by side (:func:`results_table`); empty without labels.
    scores : dict of str to pandas.DataFrame
        Per system, one row per test clip: machine, section, file, domain, label, score, decision.
    histories : dict
        ``(family, machine) -> History`` of the training runs that have one.
    timings : dict
        Seconds per ``(family, machine)`` for fitting and scoring.
    out : Path
    models : dict
        ``(family, machine) -> fitted model`` (for a look inside in a notebook:
        embeddings, training scores, an ensemble's member scores).
    """

    evaluations: dict
    table: pd.DataFrame
    scores: dict
    histories: dict
    timings: dict
    out: Path
    models: dict = field(default_factory=dict)


def _resolve_systems(systems: Sequence[str] | str) -> list[SystemSpec]:
    names = [systems] if isinstance(systems, str) else list(systems)
    if names == ["all"]:
        names = list(SYSTEMS)
    unknown = [n for n in names if n not in SYSTEMS]
    if unknown or not names:
        raise ConfigError(f"unknown system(s) {unknown or names}; choose from {sorted(SYSTEMS)} or 'all'")
    return [SYSTEMS[n] for n in dict.fromkeys(names)]


def results_table(evaluations: dict[str, EvaluationResult]) -> pd.DataFrame:
    """Systems side by side, like Table 1 of the report.

    Returns
    -------
    pandas.DataFrame
        Index ``(machine, metric)`` with metrics ``AUC(source)``, ``AUC(target)``
        and ``pAUC`` (percent), then rows ``harmonic mean`` of each metric over
        machines and ``official score``: its value (``h-mean``), the 95 %
        leave-one-machine-out jackknife interval (``95% interval low/high``,
        :func:`asdkit.evaluation.metrics.jackknife_interval`; NaN with fewer than 3
        machine sections) and the official evaluator's ``ci95`` (its
        leave-one-clip-out half-width, :func:`asdkit.evaluation.metrics.evaluator_ci95`,
        which is tiny by construction); one column per system.
    """
    from asdkit.evaluation.metrics import floored_hmean

    cols = {}
    for name, ev in evaluations.items():
        t = ev.table
        rows = {}
        for _, r in t.iterrows():
            label = r["machine"] if t["section"].nunique() == 1 else f"{r['machine']} s{r['section']}"
            rows[(label, "AUC(source)")] = 100 * r["auc_source"]
            rows[(label, "AUC(target)")] = 100 * r["auc_target"]
            rows[(label, "pAUC")] = 100 * r["pauc"]
        for metric, col in (("AUC(source)", "auc_source"), ("AUC(target)", "auc_target"), ("pAUC", "pauc")):
            rows[("harmonic mean", metric)] = 100 * floored_hmean(t[col].to_numpy(dtype=float))
        rows[("official score", "h-mean")] = 100 * ev.official_score
        low, high = ev.jackknife
        rows[("official score", "95% interval low")] = 100 * low
        rows[("official score", "95% interval high")] = 100 * high
        rows[("official score", "evaluator ci95 (+-)")] = 100 * ev.ci95
        cols[name] = pd.Series(rows)
    table = pd.DataFrame(cols)
    table.index = pd.MultiIndex.from_tuples(table.index, names=["machine", "metric"])
    return table


def _cell(value: float, metric: str) -> str:
    if not np.isfinite(value):
        return "n/a"
    return f"{value:.4f}" if metric.startswith("evaluator ci95") else f"{value:.2f}"


def format_table(table: pd.DataFrame) -> str:
    """:func:`results_table`'s table as aligned text (2 decimals; 4 for the evaluator's ci95)."""
    text = pd.DataFrame({c: [_cell(v, k) for (_, k), v in table[c].items()] for c in table.columns},
                        index=table.index)
    return text.to_string()


def _markdown(table: pd.DataFrame, caption: str) -> str:
    head = "| machine | metric | " + " | ".join(table.columns) + " |"
    sep = "|---|---|" + "---:|" * len(table.columns)
    body = [f"| {m} | {k} | " + " | ".join(_cell(v, k) for v in row) + " |"
            for (m, k), row in table.iterrows()]
    return "\n".join([caption, "", head, sep, *body, ""])


def _plots(frame: pd.DataFrame, threshold: float, folder: Path, machine: str, system: str) -> None:
    from matplotlib.figure import Figure

    from asdkit.plots.figures import plot_roc, plot_score_histogram

    folder.mkdir(parents=True, exist_ok=True)
    for kind, fn in (("roc", plot_roc), ("scores", plot_score_histogram)):
        fig = Figure(figsize=(4.5, 3.6), layout="constrained")   # no pyplot: the caller's backend is untouched
        ax = fig.add_subplot()
        kwargs = {"threshold": threshold} if kind == "scores" else {}
        fn(frame["score"].to_numpy(), labels=frame["label"].to_numpy(), domains=frame["domain"].to_numpy(),
           ax=ax, title=f"{system}: {machine}", **kwargs)
        tmp = folder / f".{kind}_{machine}.png.tmp"
        fig.savefig(tmp, format="png", dpi=110)
        tmp.replace(folder / f"{kind}_{machine}.png")


def run_experiment(data: str | Path, *, systems: Sequence[str] | str = ("baseline-mse", "baseline-mahala"),
                   preset: str = "quick", out: str | Path = "runs/experiment", machines: Sequence[str] | None = None,
                   device: str = "auto", seed: int = 0, progress: bool = False, plots: bool = True,
                   log: Callable[[str], None] | None = print, cache: str | Path | None = None) -> ExperimentResult:
    """Train and score systems on every machine type of a DCASE-layout root.

    Each machine type (and part: development or evaluation data) is trained on
    its own ``train`` clips (source and target together) and scores its
    ``test`` clips. Where the test labels and domains are known, the run is
    evaluated with the official metrics.

    Parameters
    ----------
    data : path-like
        Any DCASE-layout root (real or from ``asdkit synth``).
    systems : sequence of str or "all"
        Names from :data:`SYSTEMS`.
    preset : {"quick", "cpu", "paper"}
    out : path-like
        Output folder (created).
    machines : sequence of str, optional
        Only these machine types.
    device : str, default "auto"
    seed : int, default 0
    progress : bool, default False
        tqdm bars while training.
    plots : bool, default True
        Write ROC and score-histogram PNGs.
    log : callable or None
        Where progress lines go (``print`` by default; None for silence).
    cache : path-like, optional
        Feature cache folder for the systems that use segment features
        (default ``<out>/.feature_cache``); features of a clip are computed once
        per run however many machine types use it as a pseudo-anomaly.

    Returns
    -------
    ExperimentResult
    """
    from asdkit import __version__

    say = log or (lambda _msg: None)
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of {list(PRESETS)}")
    specs = _resolve_systems(systems)
    out = Path(out)
    from asdkit.features.cache import FeatureCache

    table = scan_root(data, machines=list(machines) if machines else None)
    feature_cache = FeatureCache(Path(cache) if cache is not None else out / ".feature_cache")
    families: dict[str, list[SystemSpec]] = {}
    for s in specs:
        for need in s.needs:                       # fitted first, written only when asked for
            families.setdefault(need, [])
        families.setdefault(s.family, []).append(s)
    builders = {f: (members[0] if members else next(s for s in SYSTEMS.values() if s.family == f))
                for f, members in families.items()}
    context: dict = {}
    # pseudo-anomalies / extra classes come from every other machine type of the root, also those not run here
    pool = scan_root(data) if machines and any(b.outlier_exposure for b in builders.values()) else table

    rows: dict[str, list[pd.DataFrame]] = {s.name: [] for s in specs}
    histories, timings, model_configs, fitted_models = {}, {}, {}, {}
    for (machine, part), sub in table.groupby(["machine", "part"], sort=True):
        train, test = sub[sub["split"] == "train"], sub[sub["split"] == "test"]
        if train.empty or test.empty:
            say(f"skipping {machine} ({part}): it has {len(train)} training and {len(test)} test clips")
            continue
        if train["domain"].isna().any():
            raise DatasetError(f"{machine} ({part}): training clips without a domain in their names; "
                               "asdkit needs the 2021-2024 naming for training data")
        models = {}
        for family, members in families.items():
            builder = builders[family]
            t0 = time.perf_counter()
            model = builder.build(preset, seed, device, progress, feature_cache, context)
            kwargs = {}
            if builder.needs:
                kwargs["members"] = {f: models[f] for f in builder.needs}
            if builder.outlier_exposure:
                # may be empty: a model that cannot do without (OEVAE) says so itself
                kwargs["outliers"] = pool[(pool["machine"] != machine) & (pool["part"] == part)
                                          & (pool["split"] == "train")].reset_index(drop=True)
            model.fit(train.reset_index(drop=True), train["domain"].tolist(), **kwargs)
            fitted_models[(family, machine)] = model
            models[family] = _ScoreMemo(model)
            t1 = time.perf_counter()
            all_scores = models[family].score_all(test["path"].tolist())
            t2 = time.perf_counter()
            timings[f"{family}/{machine}/{part}"] = {"fit_s": round(t1 - t0, 2), "score_s": round(t2 - t1, 2)}
            if getattr(model, "history_", None) is not None:
                histories[(family, machine)] = model.history_
            fitted = getattr(model, "config_", None)
            if fitted is not None:
                model_configs[family] = fitted.to_dict() if hasattr(fitted, "to_dict") else repr(fitted)
            say(f"{family:10s} {machine} ({part}): trained on {len(train)} clips in {t1 - t0:.1f} s, "
                f"scored {len(test)} in {t2 - t1:.1f} s")
            for spec in members:
                scores = np.asarray(all_scores[spec.score_key], dtype=np.float64)
                threshold = float(model.thresholds_[spec.score_key])
                frame = test[["machine", "section", "file", "domain", "label"]].assign(
                    score=scores, decision=(scores > threshold).astype(np.int64), threshold=threshold)
                folder = out / spec.name
                for section, sec in frame.groupby("section", sort=True):
                    write_scores(folder, machine, section, sec["file"].tolist(), sec["score"].to_numpy())
                    write_decisions(folder, machine, section, sec["file"].tolist(), sec["decision"].to_numpy())
                rows[spec.name].append(frame)
                if plots and frame["label"].notna().all() and frame["domain"].notna().all():
                    _plots(frame, threshold, folder / "plots", machine, spec.name)

    scores = {k: (pd.concat(v, ignore_index=True) if v else pd.DataFrame()) for k, v in rows.items()}
    evaluations = {}
    for spec in specs:
        frame = scores[spec.name]
        if frame.empty or frame["label"].isna().any() or frame["domain"].isna().any():
            say(f"{spec.name}: test labels unknown, scores written without evaluation")
            continue
        ev = evaluate_scores(out / spec.name, data, machines=sorted(frame["machine"].unique()))
        evaluations[spec.name] = ev
        save_result(ev, out / spec.name / "results.csv")
    combined = results_table(evaluations) if evaluations else pd.DataFrame()
    if not combined.empty:
        atomic_write_bytes(out / "results.csv", combined.to_csv().encode())
        caption = (f"Results on `{Path(data).name}` with the `{preset}` preset, seed {seed} "
                   f"(AUC and pAUC in %; official score = harmonic mean of all values).")
        atomic_write_bytes(out / "results.md", _markdown(combined, caption).encode())
    import torch

    config = {
        "data": str(Path(data)), "systems": [s.name for s in specs], "preset": preset, "seed": seed,
        "device": device, "machines": sorted(table["machine"].unique()), "asdkit": __version__,
        "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
        "timings": timings,
        "models": model_configs,
    }
    atomic_write_bytes(out / "config.json", json.dumps(config, indent=2, default=str).encode())
    return ExperimentResult(evaluations=evaluations, table=combined, scores=scores, histories=histories,
                            timings=timings, out=out, models=fitted_models)
