"""``asdkit run``: fit named systems on a DCASE-layout root, score its test clips, evaluate, write everything.

For each system (:data:`asdkit.experiments.systems.SYSTEMS`), :func:`run_experiment`
writes below ``<out>/<system>/``:

* ``anomaly_score_<machine>_section_<ss>_test.csv`` and
  ``decision_result_<machine>_section_<ss>_test.csv`` (the official formats);
* ``results.csv``: AUC(source), AUC(target), pAUC per machine type and section
  (when the test labels are known);
* ``plots/roc_<machine>.png`` and ``plots/scores_<machine>.png``;

and ``<out>/results.csv``, ``<out>/results.md`` (all systems side by side),
``<out>/config.json`` (everything needed to repeat the run) and, with
``save_models=True``, every fitted detector under
``<out>/models/<family>/<machine>/`` (``asdkit score --model`` reads them).

The walk over the root is :func:`asdkit.experiments.protocol.tasks`; the
evaluation runs on the scores in memory (:func:`asdkit.evaluation.evaluate.evaluate_frame`),
which gives the same table as evaluating the written files.
"""
from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from asdkit.data.supplemental import apply_supplemental
from asdkit.data.channels import check_channels
from asdkit.data.dataset import scan_root
from asdkit.errors import ConfigError
from asdkit.evaluation.evaluate import EvaluationResult, evaluate_frame, save_result
from asdkit.evaluation.outputs import write_submission
from asdkit.experiments.protocol import META_COLUMNS, Task, part_training, tasks
from asdkit.experiments.systems import PRESETS, BuildContext, SystemSpec, family_members, resolve_systems
from asdkit.io import atomic_write_bytes

__all__ = ["run_experiment", "ExperimentResult", "results_table", "format_table", "score_frame", "fit_family",
           "RootModels"]


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
        Per system, one row per test clip: machine, section, part, file, domain, label, score,
        decision, threshold.
    histories : dict
        ``(family, machine) -> History`` of the fits that trained a network.
    timings : dict
        Seconds per ``family/machine/part`` for fitting and scoring (and ``family/root/part`` for
        root-level models).
    out : Path
    models : dict
        ``(family, machine) -> fitted Detector`` (for a look inside in a notebook:
        embeddings, training scores, an ensemble's members).
    """

    evaluations: dict
    table: pd.DataFrame
    scores: dict
    histories: dict
    timings: dict
    out: Path
    models: dict = field(default_factory=dict)


class RootModels:
    """Root-level models of a run, trained on first use: one per (family, part)."""

    def __init__(self, table: pd.DataFrame, context: BuildContext, log: Callable[[str], None]):
        self.table, self.context, self.log = table, context, log
        self.models: dict = {}
        self.timings: dict = {}

    def get(self, spec: SystemSpec, part: str):
        if spec.root_model is None:
            return None
        key = (spec.family, part)
        if key not in self.models:
            train = part_training(self.table, part)
            t0 = time.perf_counter()
            self.models[key] = spec.root_model(train, self.context)
            seconds = time.perf_counter() - t0
            self.timings[f"{spec.family}/root/{part}"] = {"fit_s": round(seconds, 2)}
            self.log(f"{spec.family:10s} root model ({part}): trained on {len(train)} clips of "
                     f"{train['machine'].nunique()} machine types in {seconds:.1f} s")
        return self.models[key]


def fit_family(spec: SystemSpec, task: Task, context: BuildContext, *, members: dict | None = None):
    """Build and fit one family's detector on one task (the protocol's training and other clips).

    Parameters
    ----------
    spec : SystemSpec
        Any system of the family.
    task : Task
    context : BuildContext
        With ``root`` set when the family has a root-level model.
    members : dict, optional
        Fitted detectors of the families ``spec.needs``.

    Returns
    -------
    Detector
        Fitted.
    """
    det = spec.build(context)
    return det.fit(task.train, outliers=task.others if spec.uses_outliers else None,
                   members={f: members[f] for f in spec.needs} if spec.needs else None)


def score_frame(task: Task, detector, scores: np.ndarray, key: str) -> pd.DataFrame:
    """One system's rows of a task: the test clips' metadata, score, the detector's decision and threshold."""
    scores = np.asarray(scores, dtype=np.float64)
    return task.test[META_COLUMNS].assign(score=scores, decision=detector.decision(scores, key),
                                          threshold=float(detector.thresholds_[key]))


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


def _families(specs: Sequence[SystemSpec]) -> dict[str, list[SystemSpec]]:
    """Family -> the systems asked of it, the families others need first (fitted, written only when asked for)."""
    families: dict[str, list[SystemSpec]] = {}
    for s in specs:
        for need in s.needs:
            families.setdefault(need, [])
        families.setdefault(s.family, []).append(s)
    return families


class _Run:
    """What one run collects while it walks the tasks (scores, timings, histories, fitted detectors)."""

    def __init__(self, specs, out: Path, *, plots: bool, save_models: bool, say):
        self.out, self.plots, self.save_models, self.say = out, plots, save_models, say
        self.rows: dict[str, list[pd.DataFrame]] = {s.name: [] for s in specs}
        self.histories, self.timings, self.model_configs, self.models = {}, {}, {}, {}

    def fitted(self, family: str, task: Task, det, fit_s: float, score_s: float) -> None:
        self.models[(family, task.machine)] = det
        self.timings[f"{family}/{task.machine}/{task.part}"] = {"fit_s": round(fit_s, 2), "score_s": round(score_s, 2)}
        if getattr(det, "history_", None) is not None:
            self.histories[(family, task.machine)] = det.history_
        config = getattr(det, "config_", None)
        if config is not None:
            self.model_configs[family] = config.to_dict() if hasattr(config, "to_dict") else repr(config)
        if self.save_models:
            det.save(self.out / "models" / family / (task.machine if task.part == "dev" else f"{task.machine}_{task.part}"))
        self.say(f"{family:10s} {task.key}: fitted on {len(task.train)} clips in {fit_s:.1f} s, "
                 f"scored {len(task.test)} in {score_s:.1f} s")

    def write(self, spec: SystemSpec, task: Task, det, scores: dict) -> None:
        frame = score_frame(task, det, scores[spec.score_key], spec.score_key)
        folder = self.out / spec.name
        write_submission(folder, frame, frame["score"], decisions=frame["decision"])
        self.rows[spec.name].append(frame)
        if self.plots and frame["label"].notna().all() and frame["domain"].notna().all():
            _plots(frame, float(frame["threshold"].iloc[0]), folder / "plots", task.machine, spec.name)


def _run_task(task: Task, families: dict, builders: dict, base: BuildContext, roots: RootModels, run: _Run) -> None:
    """Fit every family on one task (members first), score its test clips once, write the systems asked for."""
    fitted, test_scores = {}, {}
    for family, asked in families.items():
        spec = builders[family]
        context = replace(base, root=roots.get(spec, task.part))   # trained on first use, timed on its own
        t0 = time.perf_counter()
        det = fit_family(spec, task, context, members=fitted)
        t1 = time.perf_counter()
        if spec.needs and hasattr(det, "combine_scores"):      # built on members already scored
            scores = det.combine_scores({f: test_scores[f] for f in spec.needs})
        else:
            scores = det.score_all(task.test)
        fitted[family], test_scores[family] = det, scores
        run.fitted(family, task, det, t1 - t0, time.perf_counter() - t1)
        for s in asked:
            run.write(s, task, det, scores)


def _evaluate(specs, scores: dict, out: Path, data, caption: str, say) -> tuple[dict, pd.DataFrame]:
    """Evaluate each system's in-memory scores where the labels are known; write its and the combined tables."""
    evaluations = {}
    for spec in specs:
        frame = scores[spec.name]
        if frame.empty or frame["label"].isna().any() or frame["domain"].isna().any():
            say(f"{spec.name}: test labels unknown, scores written without evaluation")
            continue
        evaluations[spec.name] = evaluate_frame(frame, score_dir=str(out / spec.name), data_root=str(data))
        save_result(evaluations[spec.name], out / spec.name / "results.csv")
    combined = results_table(evaluations) if evaluations else pd.DataFrame()
    if not combined.empty:
        atomic_write_bytes(out / "results.csv", combined.to_csv().encode())
        atomic_write_bytes(out / "results.md", _markdown(combined, caption).encode())
    return evaluations, combined


def run_experiment(data: str | Path, *, systems: Sequence[str] | str = ("baseline-mse", "baseline-mahala"),
                   preset: str = "quick", out: str | Path = "runs/experiment", machines: Sequence[str] | None = None,
                   device: str = "auto", seed: int = 0, progress: bool = False, plots: bool = True,
                   log: Callable[[str], None] | None = print, cache: str | Path | None = None,
                   save_models: bool = False, channels: str = "auto",
                   supplemental: Sequence[str] = ()) -> ExperimentResult:
    """Fit and score systems on every machine type of a DCASE-layout root.

    Each machine type (and part: development or evaluation data) is fitted on
    its own ``train`` clips (source and target together) and scores its
    ``test`` clips (:func:`asdkit.experiments.protocol.tasks`). Where the test
    labels and domains are known, the run is evaluated with the official metrics.

    Parameters
    ----------
    data : path-like
        Any DCASE-layout root (real or from ``asdkit synth``).
    systems : sequence of str or "all"
        Names from :data:`asdkit.experiments.systems.SYSTEMS`.
    preset : {"quick", "cpu", "paper"}
    out : path-like
        Output folder (created).
    machines : sequence of str, optional
        Only these machine types (the others still serve as other machine types).
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
        (default ``<out>/.feature_cache``).
    save_models : bool, default False
        Save every fitted detector under ``<out>/models/<family>/<machine>/``
        (``<machine>_eval`` for evaluation data).
    channels : str, default "auto"
        Channel policy every model reads its clips under (:mod:`asdkit.data.channels`): ``"auto"``
        (mono clips as they are, the near microphone of DCASE 2026 clips), ``"mono"``, ``"near"``,
        ``"far"``, ``"both"`` (the far microphone as a second input channel) or ``"denoised"``.
    supplemental : sequence of {"machine", "noise"}
        Use the DCASE 2025 supplemental clips in training (:mod:`asdkit.data.supplemental`):
        ``"machine"`` adds the machine-only clips as normals, ``"noise"`` replaces half of the
        training clips by their mixture with noise-only clips (5-15 dB, written under
        ``<out>/.supplemental/``). Machine types without such clips train as before.

    Returns
    -------
    ExperimentResult
    """
    import torch

    from asdkit import __version__
    from asdkit.features.cache import FeatureCache

    say = log or (lambda _msg: None)
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of {list(PRESETS)}")
    specs = resolve_systems(systems)
    check_channels(channels)
    out = Path(out)
    table = scan_root(data)                                   # the one scan of the root
    table = apply_supplemental(table, list(supplemental), out=out / ".supplemental", seed=seed)
    unknown = sorted(set(machines or ()) - set(table["machine"]))
    if unknown:
        raise ConfigError(f"machine(s) {unknown} not found under {str(data)!r}; it holds "
                          f"{sorted(table['machine'].unique())}")
    families = _families(specs)
    builders = {f: (asked[0] if asked else family_members(f)[0]) for f, asked in families.items()}
    base = BuildContext(preset=preset, seed=seed, device=device, progress=progress, channels=channels,
                        cache=FeatureCache(Path(cache) if cache is not None else out / ".feature_cache"))
    roots = RootModels(table, base, say)
    run = _Run(specs, out, plots=plots, save_models=save_models, say=say)
    for task in tasks(table, machines=list(machines) if machines else None, log=say):
        _run_task(task, families, builders, base, roots, run)
    run.timings.update(roots.timings)

    scores = {k: (pd.concat(v, ignore_index=True) if v else pd.DataFrame()) for k, v in run.rows.items()}
    caption = (f"Results on `{Path(data).name}` with the `{preset}` preset, seed {seed}"
               + (f", channels `{channels}`" if channels != "auto" else "")
               + (f", supplemental clips: {', '.join(supplemental)}" if supplemental else "") + " "
               f"(AUC and pAUC in %; official score = harmonic mean of all values).")
    evaluations, combined = _evaluate(specs, scores, out, data, caption, say)
    config = {
        "data": str(Path(data)), "systems": [s.name for s in specs], "preset": preset, "seed": seed,
        "device": device, "channels": channels, "supplemental": list(supplemental), "machines": sorted(machines) if machines else sorted(table["machine"].unique()),
        "asdkit": __version__, "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(), "timings": run.timings, "models": run.model_configs,
        "saved_models": str(out / "models") if save_models else None,
    }
    atomic_write_bytes(out / "config.json", json.dumps(config, indent=2, default=str).encode())
    return ExperimentResult(evaluations=evaluations, table=combined, scores=scores, histories=run.histories,
                            timings=run.timings, out=out, models=run.models)
