"""``asdkit run --seeds``: the same run with several seeds, and one table of mean +- std across them.

A single seed of a small training says little: on the embedded data two
seeds of the same system can differ by several points of official score.
:func:`run_seeds` runs :func:`asdkit.experiments.run.run_experiment`'s jobs
once per seed (every seed its own jobs, one executor for all), each seed in
``<out>/seed_<n>/`` (its own official files, table,
``config.json`` and, with ``save_models``, models), and writes to ``<out>/``:

* ``results.csv`` / ``results.md``: :func:`seeds_table`, every AUC, pAUC,
  harmonic mean and official score as mean and standard deviation across the
  seeds, beside the leave-one-machine-out jackknife interval of the official
  score of the seed-averaged values and the evaluator's ci95 (mean over seeds);
* ``config.json``: the seeds and where each seed's run lies.

Seeds run elsewhere (one process per seed, side by side or on other
machines, each ``asdkit run --seed N --out FOLDER/seed_N``) are summarised
the same way by :func:`summarise_seeds` (``asdkit seeds FOLDER``).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from asdkit.errors import ConfigError
from asdkit.evaluation.evaluate import MIN_JACKKNIFE_SECTIONS
from asdkit.evaluation.metrics import METRIC_COLUMNS, floored_hmean, jackknife_interval
from asdkit.experiments.config import RunConfig, as_config, check_seeds
from asdkit.experiments.run import run_many
from asdkit.io import atomic_write_bytes

__all__ = ["run_seeds", "SeedsResult", "seeds_table", "format_seeds_table", "summarise_seeds", "JACKKNIFE_ROWS"]

#: Rows of :func:`seeds_table` computed from the seed-averaged values (no standard deviation).
JACKKNIFE_ROWS = ("95% interval low", "95% interval high")


@dataclass
class SeedsResult:
    """What :func:`run_seeds` produced.

    Attributes
    ----------
    runs : dict of int to ExperimentResult
        Each seed's run.
    table : pandas.DataFrame
        :func:`seeds_table` of the runs (empty without test labels).
    out : Path
    """

    runs: dict
    table: pd.DataFrame
    out: Path


def seeds_table(runs) -> pd.DataFrame:
    """Mean and standard deviation across seeds of every value of the runs' results tables.

    Parameters
    ----------
    runs : dict of seed to ExperimentResult, or to ``(table, sections)``
        Runs of the same systems on the same data; ``table`` is a results
        table (:func:`asdkit.experiments.run.results_table`) and ``sections``
        maps each system to its per-section evaluation table (columns
        ``auc_source``, ``auc_target``, ``pauc`` as fractions).

    Returns
    -------
    pandas.DataFrame
        The index of :func:`asdkit.experiments.run.results_table` (``(machine,
        metric)``, percent); columns ``(system, "mean")`` and ``(system,
        "std")`` (sample standard deviation, ``ddof=1``; NaN for one seed).
        The rows ``("official score", "95% interval low"/"high")`` are the
        jackknife interval (leave one machine/section out, clipped to
        [0, 100]) of the official score of the per-section values averaged
        over the seeds, NaN with fewer than
        :data:`~asdkit.evaluation.evaluate.MIN_JACKKNIFE_SECTIONS`
        machine/sections; their ``std`` is NaN.
    """
    pairs = [(r.table, {s: ev.table for s, ev in r.evaluations.items()}) if hasattr(r, "evaluations") else r
             for r in runs.values()]
    pairs = [(t, sec) for t, sec in pairs if not t.empty]
    if not pairs:
        return pd.DataFrame()
    first = pairs[0][0]
    columns = [c for c in first.columns if all(c in t.columns for t, _ in pairs)]
    stacked = np.stack([t.loc[first.index, columns].to_numpy(dtype=float) for t, _ in pairs])
    mean = pd.DataFrame(stacked.mean(axis=0), index=first.index, columns=columns)
    std = pd.DataFrame(stacked.std(axis=0, ddof=1) if len(pairs) > 1 else np.full(stacked.shape[1:], np.nan),
                       index=first.index, columns=columns)
    for system in columns:
        sections = [sec[system] for _, sec in pairs if system in sec]
        values = np.mean([s[list(METRIC_COLUMNS)].to_numpy(dtype=float) for s in sections], axis=0)
        low = high = math.nan
        if len(values) >= MIN_JACKKNIFE_SECTIONS:
            jk = jackknife_interval(values, statistic=floored_hmean)
            low, high = 100 * max(jk.low, 0.0), 100 * min(jk.high, 1.0)
        for row, v in zip(JACKKNIFE_ROWS, (low, high)):
            mean.loc[("official score", row), system] = v
            std.loc[("official score", row), system] = math.nan
    out = pd.concat({"mean": mean, "std": std}, axis=1).swaplevel(axis=1)
    return out[[(s, k) for s in columns for k in ("mean", "std")]]


def _cell(mean: float, std: float, metric: str) -> str:
    if not np.isfinite(mean):
        return "n/a"
    digits = 4 if metric.startswith("evaluator ci95") else 2
    if not np.isfinite(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _cells(table: pd.DataFrame) -> pd.DataFrame:
    systems = list(dict.fromkeys(table.columns.get_level_values(0)))
    return pd.DataFrame({s: [_cell(table.loc[i, (s, "mean")], table.loc[i, (s, "std")], i[1]) for i in table.index]
                         for s in systems}, index=table.index)


def format_seeds_table(table: pd.DataFrame) -> str:
    """:func:`seeds_table`'s table as aligned text, ``mean ± std`` per cell."""
    return _cells(table).to_string()


def _markdown(table: pd.DataFrame, caption: str) -> str:
    cells = _cells(table)
    head = "| machine | metric | " + " | ".join(cells.columns) + " |"
    sep = "|---|---|" + "---:|" * len(cells.columns)
    body = [f"| {m} | {k} | " + " | ".join(row) + " |" for (m, k), row in cells.iterrows()]
    return "\n".join([caption, "", head, sep, *body, ""])


def run_seeds(data: str | Path | RunConfig, *, seeds: Sequence[int], out: str | Path = "runs/experiment",
              log=print, **settings) -> SeedsResult:
    """Run :func:`~asdkit.experiments.run.run_experiment` once per seed and summarise across the seeds.

    Parameters
    ----------
    data : path-like or RunConfig
    seeds : sequence of int
        Distinct seeds; each run goes to ``<out>/seed_<n>/``.
    out : path-like
    log : callable or None
    **settings
        As :func:`~asdkit.experiments.run.run_experiment`: the fields of
        :class:`~asdkit.experiments.config.RunConfig`. The feature cache defaults to
        ``<out>/.feature_cache``, shared by the seeds (the features do not depend on the seed).
        Every seed's jobs are handed to the executor at once, so with Ray the seeds run side by side.

    Returns
    -------
    SeedsResult
    """
    config = as_config(data, settings)
    seeds = check_seeds(seeds)
    out = Path(out)
    if config.cache is None:
        config = config.replace(cache=str(out / ".feature_cache"))
    runs = run_many(config, {s: out / f"seed_{s}" for s in seeds}, log=log)
    table = seeds_table(runs)
    _write(out, table, config.data, config.preset, seeds)
    record = {"data": config.data, "preset": config.preset, "seeds": seeds,
              "runs": {str(s): str(out / f"seed_{s}") for s in seeds},
              "timings_s": {str(s): round(sum(v.get("fit_s", 0) + v.get("score_s", 0) for v in r.timings.values()), 1)
                            for s, r in runs.items()},
              "config": config.to_dict()}
    atomic_write_bytes(out / "config.json", json.dumps(record, indent=2).encode())
    return SeedsResult(runs=runs, table=table, out=out)


def _write(out: Path, table: pd.DataFrame, data, preset: str, seeds) -> None:
    if table.empty:
        return
    caption = (f"Results on `{Path(data).name}` with the `{preset}` preset, seeds {', '.join(map(str, seeds))}: "
               "mean ± standard deviation across the seeds (AUC and pAUC in %; official score = harmonic mean "
               "of all values; the interval is the leave-one-machine-out jackknife of the seed-averaged values).")
    atomic_write_bytes(out / "results.csv", table.to_csv().encode())
    atomic_write_bytes(out / "results.md", _markdown(table, caption).encode())


def summarise_seeds(folder: str | Path) -> pd.DataFrame:
    """:func:`seeds_table` of runs already written below ``folder`` (``seed_<n>/``, one ``asdkit run`` each).

    Reads each seed's ``results.csv`` and each system's ``<system>/results.csv``,
    checks that the seeds ran the same data and preset (their ``config.json``),
    and writes ``results.csv`` and ``results.md`` to ``folder`` as :func:`run_seeds` does.

    Returns
    -------
    pandas.DataFrame
        :func:`seeds_table`'s table.

    Raises
    ------
    ConfigError
        No ``seed_<n>/results.csv`` below ``folder``, or seeds of different data or presets.
    """
    folder = Path(folder)
    runs, configs = {}, {}
    for path in sorted(folder.glob("seed_*/results.csv")):
        seed_dir = path.parent
        try:
            seed = int(seed_dir.name.split("_", 1)[1])
        except ValueError:
            continue
        table = pd.read_csv(path, index_col=[0, 1])
        sections = {s: pd.read_csv(seed_dir / s / "results.csv") for s in table.columns
                    if (seed_dir / s / "results.csv").is_file()}
        runs[seed] = (table, sections)
        cfg = seed_dir / "config.json"
        configs[seed] = json.loads(cfg.read_text()) if cfg.is_file() else {}
    if not runs:
        raise ConfigError(f"summarise_seeds: no seed_<n>/results.csv below {str(folder)!r}; run "
                          "'asdkit run ... --seed N --out FOLDER/seed_N' for each seed first.")
    kinds = {(c.get("data"), c.get("preset")) for c in configs.values()}
    if len(kinds) > 1:
        raise ConfigError(f"summarise_seeds: the seeds below {str(folder)!r} ran different data or presets: "
                          f"{sorted(map(str, kinds))}.")
    data, preset = next(iter(kinds))
    runs = dict(sorted(runs.items()))
    table = seeds_table(runs)
    _write(folder, table, data or folder.name, preset or "?", list(runs))
    return table
