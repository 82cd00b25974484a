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

A run is a set of jobs (:mod:`asdkit.experiments.jobs`): each keeps its log
and result under ``<out>/jobs/<family>/<machine>/``, ``<out>/jobs.csv`` lists
them (status, seconds, worker) and ``<out>/plan.json`` pins what ``--resume``
must match. They run in this process or on Ray
(:mod:`asdkit.experiments.executors`), with the same files as the outcome.

The walk over the root is :func:`asdkit.experiments.protocol.tasks`; the
evaluation runs on the scores in memory (:func:`asdkit.evaluation.evaluate.evaluate_frame`),
which gives the same table as evaluating the written files.
"""
from __future__ import annotations

import json
import platform
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import pandas as pd

from asdkit.data.dataset import scan_root
from asdkit.data.supplemental import apply_supplemental
from asdkit.errors import ConfigError
from asdkit.evaluation.evaluate import EvaluationResult, evaluate_frame, save_result
from asdkit.experiments.config import RunConfig, as_config, check_seeds
from asdkit.experiments.jobs import fit_family, score_frame
from asdkit.experiments.protocol import part_training
from asdkit.experiments.systems import BuildContext, SystemSpec
from asdkit.io import atomic_write_bytes

__all__ = ["run_experiment", "run_many", "ExperimentResult", "results_table", "format_table", "score_frame",
           "fit_family", "RootModels"]


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
        embeddings, training scores, an ensemble's members). In-process jobs run now only;
        with Ray, read them from ``<out>/models`` (:meth:`asdkit.Detector.load`).
    failures : list of JobFailure
        Jobs that failed or could not run (Ray); their systems are not evaluated.
    jobs : pandas.DataFrame
        One row per job (also ``<out>/jobs.csv``): status, seconds, worker, times.
    """

    evaluations: dict
    table: pd.DataFrame
    scores: dict
    histories: dict
    timings: dict
    out: Path
    models: dict = field(default_factory=dict)
    failures: list = field(default_factory=list)
    jobs: pd.DataFrame = field(default_factory=pd.DataFrame)


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



def run_experiment(data: str | Path | RunConfig, *, out: str | Path = "runs/experiment", seed: int = 0,
                   log: Callable[[str], None] | None = print, **settings) -> ExperimentResult:
    """Fit and score systems on every machine type of a DCASE-layout root.

    Each machine type (and part: development or evaluation data) is fitted on
    its own ``train`` clips (source and target together) and scores its
    ``test`` clips (:func:`asdkit.experiments.protocol.tasks`). Where the test
    labels and domains are known, the run is evaluated with the official metrics.

    The run is a list of jobs (:mod:`asdkit.experiments.jobs`): the root-level
    models first, then one job per (family, machine type). They run in this
    process (``executor="local"``) or as Ray tasks (``executor="ray"``,
    :mod:`asdkit.experiments.executors`); either way the same files come out.

    Parameters
    ----------
    data : path-like or RunConfig
        Any DCASE-layout root (real or from ``asdkit synth``), or a whole
        :class:`~asdkit.experiments.config.RunConfig`.
    out : path-like
        Output folder (created).
    seed : int, default 0
    log : callable or None
        Where progress lines go (``print`` by default; None for silence).
    **settings
        The fields of :class:`~asdkit.experiments.config.RunConfig` (``systems``, ``preset``,
        ``machines``, ``device``, ``channels``, ``supplemental``, ``threads``, ``executor``,
        ``address``, ``cpus_per_job``, ``gpus_per_job``, ``progress``, ``plots``, ``save_models``,
        ``cache``, ``resume``); with a RunConfig as ``data`` they replace its values.

    Returns
    -------
    ExperimentResult
        With ``failures`` (Ray: the jobs that failed or could not run; their systems are not evaluated).

    Examples
    --------
    >>> res = run_experiment("data/quick", systems=["reference-knn"], out="runs/ref")  # doctest: +SKIP
    """
    config = as_config(data, settings)
    (seed,) = check_seeds([seed])
    return run_many(config, {seed: Path(out)}, log=log)[seed]


def _check_plan(run: Path, config: RunConfig, seed: int) -> None:
    """Write ``plan.json``; with ``resume``, first refuse a folder that holds a run of other pinned settings."""
    path = run / "plan.json"
    pinned = {**config.pinned(), "seed": int(seed)}
    if config.resume and path.is_file():
        before = json.loads(path.read_text())
        differ = [k for k in pinned if before.get(k) != pinned[k]]
        if differ:
            raise ConfigError(f"--resume: {str(run)!r} holds a run with other settings ("
                              + ", ".join(f"{k}: {before.get(k)!r} then, {pinned[k]!r} now" for k in differ)
                              + "); resume with the same settings, or choose another --out.")
    plan = {**pinned, "systems": list(config.systems), "machines": sorted(config.machines) if config.machines else None,
            "config": config.to_dict()}
    atomic_write_bytes(path, json.dumps(plan, indent=2).encode())


def run_many(config: RunConfig, runs: Mapping[int, str | Path], *,
             log: Callable[[str], None] | None = print) -> dict[int, ExperimentResult]:
    """The runs of several seeds as one set of jobs: ``seed -> ExperimentResult``, each written to ``runs[seed]``.

    What :func:`run_experiment` (one seed) and :func:`asdkit.experiments.seeds.run_seeds` (every seed
    its own jobs, all handed to the executor at once) call.
    """
    from asdkit.experiments.executors import execute
    from asdkit.experiments.jobs import JobSettings, plan_jobs

    say = log or (lambda _msg: None)
    base = scan_root(Path(config.data).absolute() if config.remote else config.data)     # the one scan of the root
    unknown = sorted(set(config.machines or ()) - set(base["machine"]))
    if unknown:
        raise ConfigError(f"machine(s) {unknown} not found under {config.data!r}; it holds "
                          f"{sorted(base['machine'].unique())}")
    folders = {int(seed): (Path(out).absolute() if config.remote else Path(out)) for seed, out in runs.items()}
    if not folders:
        raise ConfigError("run_many: no runs given; pass {seed: output folder}.")
    config = config.for_output(next(iter(folders.values())))   # the feature cache (and, for Ray, absolute paths)
    tables, jobs, by_seed = {}, [], {}
    for seed, folder in folders.items():
        folder.mkdir(parents=True, exist_ok=True)
        _check_plan(folder, config, seed)
        table = apply_supplemental(base, list(config.supplemental), out=folder / ".supplemental", seed=seed)
        tables[str(folder)] = table
        by_seed[seed] = plan_jobs(table, config.specs, {seed: folder}, machines=config.machines, log=say)
        if not config.resume:                   # a result left by an earlier run is not this run's
            for job in by_seed[seed]:
                shutil.rmtree(job.folder / "result", ignore_errors=True)
        jobs += by_seed[seed]
    report = execute(jobs, tables, JobSettings.of(config), say=say)
    results = {seed: _gather(folder, seed, by_seed[seed], report, config, tables[str(folder)], say)
               for seed, folder in folders.items()}
    if report.failures:
        from asdkit.experiments.jobs import describe

        say(f"{len(report.failures)} of {len(jobs)} jobs did not finish:\n{describe(report.failures)}\n"
            "fix what they say and run the same command with --resume: only these jobs run again.")
    return results


def _gather(out: Path, seed: int, jobs, report, config: RunConfig, table: pd.DataFrame, say) -> ExperimentResult:
    """One seed's results from its jobs: evaluation, tables, ``jobs.csv`` and ``config.json``, as a local run writes."""
    rows: dict[str, list[pd.DataFrame]] = {s.name: [] for s in config.specs}
    histories, timings, root_timings, model_configs, models = {}, {}, {}, {}, {}
    for job in jobs:
        r = report.results.get(job.key)
        if r is None:
            continue
        if job.is_root:
            root_timings.update(r.timings)
            continue
        timings.update(r.timings)
        for name, frame in r.frames.items():
            if name in rows:
                rows[name].append(frame)
        if r.history is not None:
            histories[(job.family, job.machine)] = r.history
        if r.config is not None:
            model_configs[job.family] = r.config
        if r.detector is not None:
            models[(job.family, job.machine)] = r.detector
    timings.update(root_timings)
    missing = {j.family for j in jobs if j.key not in report.results}
    failures = [f for f in report.failures if f.job.run == str(jobs[0].run)] if jobs else []
    complete = [s for s in config.specs if s.family not in missing]
    for s in config.specs:
        if s.family in missing:
            say(f"{s.name}: not evaluated, some of its jobs did not finish")
    scores = {k: (pd.concat(v, ignore_index=True) if v else pd.DataFrame()) for k, v in rows.items()}
    caption = (f"Results on `{Path(config.data).name}` with the `{config.preset}` preset, seed {seed}"
               + (f", channels `{config.channels}`" if config.channels != "auto" else "")
               + (f", supplemental clips: {', '.join(config.supplemental)}" if config.supplemental else "") + " "
               "(AUC and pAUC in %; official score = harmonic mean of all values).")
    evaluations, combined = _evaluate(complete, scores, out, config.data, caption, say)
    jobs_table = report.table(jobs)
    atomic_write_bytes(out / "jobs.csv", jobs_table.to_csv(index=False).encode())
    record = _run_record(out, seed, config, table, timings, model_configs, jobs_table, failures)
    atomic_write_bytes(out / "config.json", json.dumps(record, indent=2, default=str).encode())
    return ExperimentResult(evaluations=evaluations, table=combined, scores=scores, histories=histories,
                            timings=timings, out=out, models=models, failures=failures, jobs=jobs_table)


def _run_record(out: Path, seed: int, config: RunConfig, table: pd.DataFrame, timings: dict, model_configs: dict,
                jobs_table: pd.DataFrame, failures) -> dict:
    """What ``config.json`` says of a finished run: its settings, versions, timings and jobs."""
    import torch

    from asdkit import __version__

    resources = {"cpus_per_job": config.cpus_per_job, "gpus_per_job": config.gpus_per_job} if config.remote else {}
    return {
        "data": config.data, "systems": list(config.systems), "preset": config.preset, "seed": seed,
        "device": config.device, "channels": config.channels, "supplemental": list(config.supplemental),
        "machines": sorted(config.machines) if config.machines else sorted(table["machine"].unique()),
        "asdkit": __version__, "torch": torch.__version__,
        "torch_threads": int(config.cpus_per_job) if config.remote else (config.threads or torch.get_num_threads()),
        "python": platform.python_version(), "timings": timings, "models": model_configs,
        "saved_models": str(out / "models") if config.keeps_models else None,
        "executor": config.executor, **resources,
        "jobs": {"total": int(len(jobs_table)), "run": int((jobs_table["status"] == "done").sum()),
                 "reused": int((jobs_table["status"] == "reused").sum()), "failed": [str(f) for f in failures]},
        "config": config.to_dict(),
    }
