"""Evaluate a folder of DCASE score files against a DCASE-layout dataset root.

:func:`evaluate_scores` is asdkit's version of the organisers' evaluator: it
reads every ``anomaly_score_<machine>_section_<ss>_test.csv`` below a folder
(and the matching ``decision_result_*`` files where present), takes labels and
domains of the test clips from :func:`asdkit.data.dataset.scan_root` (file names on
the development set, ground-truth CSVs for anonymised evaluation clips), and
computes the per-section metrics and the official score of
:mod:`asdkit.evaluation.metrics`. Unlike the organisers' script, which pairs rows by
sorting both files, clips are matched **by file name**, and a score file that
misses clips or names unknown ones is an error, not a silent misalignment.

:func:`format_result` renders the result like the DCASE tables (percent, two
decimals); :func:`save_result` writes it as CSV and Markdown.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from asdkit.data.dataset import find_machines, scan_root
from asdkit.errors import ConfigError, DatasetError, ScoreFileError
from asdkit.evaluation.metrics import (
    DOMAINS,
    METRIC_COLUMNS,
    arithmetic_mean,
    decision_metrics,
    domain_auc,
    evaluator_ci95,
    floored_hmean,
    jackknife_interval,
    official_score,
    official_values,
    pauc,
)
from asdkit.evaluation.outputs import find_decision_files, find_score_files, read_decision_file, read_score_file
from asdkit.io import atomic_write_text

__all__ = ["EvaluationResult", "TABLE_COLUMNS", "DECISION_COLUMNS", "evaluate_scores",
           "format_result", "save_result", "evaluate_frame", "MIN_JACKKNIFE_SECTIONS"]

#: Fewest machine/sections for the leave-one-out jackknife interval of the official score; with 2-3
#: sections leaving one out swings the harmonic mean so much that the interval says nothing.
MIN_JACKKNIFE_SECTIONS = 4

#: Precision/recall/F1 columns, NaN where a section has no decision file.
DECISION_COLUMNS = [f"{m}_{d}" for m in ("precision", "recall", "f1") for d in DOMAINS]

#: Columns of :attr:`EvaluationResult.table`, in order.
TABLE_COLUMNS = (["machine", "section", "part", "n_clips", *METRIC_COLUMNS, *DECISION_COLUMNS,
                  "score_file", "decision_file"])

_DISPLAY = {
    "auc_source": "AUC (source)", "auc_target": "AUC (target)", "pauc": "pAUC",
    **{f"{m}_{d}": f"{label} ({d})" for m, label in (("precision", "precision"), ("recall", "recall"),
                                                     ("f1", "F1")) for d in DOMAINS},
}
_N_EXAMPLES = 3


@dataclass(frozen=True)
class EvaluationResult:
    """What :func:`evaluate_scores` computes.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per machine type and section, columns :data:`TABLE_COLUMNS`:
        ``machine``, ``section``, ``part`` (``"dev"``/``"eval"``), ``n_clips``,
        ``auc_source``, ``auc_target``, ``pauc`` (fractions in [0, 1]; an AUC is
        NaN for a domain with no test clip, as in DCASE 2020), precision/recall/F1
        per domain (NaN without a decision file), and the paths read.
    official_score : float
        Harmonic mean of all AUC(source), AUC(target) and pAUC values, each
        floored at :data:`asdkit.evaluation.metrics.EPS`.
    arithmetic_mean : float
        Arithmetic mean of the same values.
    jackknife : (float, float)
        95 % jackknife interval of the official score, leaving one
        machine/section (its three values) out at a time
        (:func:`asdkit.evaluation.metrics.jackknife_interval`), clipped to
        [0, 1]; ``(nan, nan)`` with fewer than :data:`MIN_JACKKNIFE_SECTIONS`
        machine/sections, where leaving one out says little (a run on two real
        machine types gave -0.195 to 1.437 unclipped): then only ``ci95`` is shown.
    ci95 : float
        The official evaluator's "official score ci95": mean half-width of the
        leave-one-clip-out jackknife intervals of the pooled AUC and pAUC
        (:func:`asdkit.evaluation.metrics.evaluator_ci95`).
    n_values : int
        How many values entered the official score.
    score_dir, data_root : str
        What was evaluated.
    """

    table: pd.DataFrame
    official_score: float
    arithmetic_mean: float
    jackknife: tuple[float, float]
    ci95: float
    n_values: int
    score_dir: str
    data_root: str

    def __str__(self) -> str:
        return format_result(self)


# --------------------------------------------------------------------------- helpers
def _examples(names: Sequence[str]) -> str:
    shown = ", ".join(repr(n) for n in list(names)[:_N_EXAMPLES])
    return shown + (", ..." if len(names) > _N_EXAMPLES else "")


def _require_ground_truth(sub: pd.DataFrame, machine: str, section: str, where: Path) -> None:
    no_label = sub["label"].isna().to_numpy()
    no_domain = sub["domain"].isna().to_numpy()
    lacking = no_label | no_domain
    if not lacking.any():
        odd = sub[~sub["label"].isin(["normal", "anomaly"]) | ~sub["domain"].isin(list(DOMAINS))]
        if len(odd):
            r = odd.iloc[0]
            raise DatasetError(
                f"{len(odd)} test clips of {machine} section {section} have an unexpected label or "
                f"domain, e.g. {r['file']!r}: label {r['label']!r}, domain {r['domain']!r}. Check the "
                f"ground-truth CSVs below {str(where)!r} (values must be 0/1).")
        return
    what = " and ".join(w for w, m in (("labels", no_label), ("domains", no_domain)) if m.any())
    gt = f"ground_truth_{machine}_section_{section}_test.csv"
    raise DatasetError(
        f"{int(lacking.sum())} of {len(sub)} test clips of {machine} section {section} have no {what}, "
        f"e.g. {_examples(sub.loc[lacking, 'file'].tolist())} (anonymised evaluation names). "
        f"Their ground truth comes from the evaluator's CSVs ground_truth_data/{gt} (file,0|1 with "
        f"1 = anomaly) and ground_truth_domain/{gt} (file,0|1 with 0 = source), which scan_root looks "
        f"for anywhere below {str(where)!r}. Get them from the organisers' evaluator repository "
        "(e.g. nttcslab/dcase2024_task2_evaluator) and put them there, or pass ground_truth=FOLDER."
    )


def _align(path: Path, read: pd.DataFrame, column: str, sub: pd.DataFrame, machine: str,
           section: str, root: Path) -> np.ndarray:
    """Values of ``read[column]`` in the order of ``sub['file']``; error on missing or extra names."""
    expected = sub["file"].tolist()
    have = set(read["file"])
    missing = [f for f in expected if f not in have]
    expected_set = set(expected)
    extra = [f for f in read["file"] if f not in expected_set]
    problems = []
    if missing:
        problems.append(f"{len(missing)} of the {len(expected)} test clips of {machine} section {section} "
                        f"have no row, e.g. {_examples(missing)}")
    if extra:
        problems.append(f"{len(extra)} row(s) name clips that are not test clips of {machine} section "
                        f"{section} under {str(root)!r}, e.g. {_examples(extra)}")
    if problems:
        raise ScoreFileError(f"{str(path)!r}: " + "; ".join(problems) +
                             ". Write one row per test clip of the section, named by its file name.")
    return read.set_index("file").loc[expected, column].to_numpy()


def _metrics_row(machine: str, section: str, sub: pd.DataFrame, scores: np.ndarray,
                 decisions: np.ndarray | None, root: str) -> tuple[dict, np.ndarray]:
    """The table row of one machine/section from its test clips (in order) and their scores / decisions."""
    y = (sub["label"] == "anomaly").to_numpy().astype(np.int64)
    domains = sub["domain"].to_numpy()
    row: dict = {"machine": machine, "section": section,
                 "part": ",".join(sorted(sub["part"].unique())), "n_clips": len(sub)}
    try:
        for d in DOMAINS:
            row[f"auc_{d}"] = domain_auc(y, scores, domains, d) if (domains == d).any() else math.nan
        row["pauc"] = pauc(y, scores)
    except ConfigError as e:
        raise DatasetError(f"{machine} section {section} under {root!r}: {e}. The test set of a "
                           "section needs normal and anomalous clips in each domain it has.") from e
    if decisions is not None:
        row.update(decision_metrics(y, decisions, domains))
    else:
        row.update({c: math.nan for c in DECISION_COLUMNS})
    return row, y


def _result(rows: list[dict], pooled_y: list, pooled_s: list, score_dir: str, data_root: str) -> EvaluationResult:
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    values = table[list(METRIC_COLUMNS)].to_numpy(dtype=np.float64)
    if len(table) >= MIN_JACKKNIFE_SECTIONS:
        jk = jackknife_interval(values, statistic=floored_hmean)
        interval = (max(jk.low, 0.0), min(jk.high, 1.0))        # a score lies in [0, 1]
    else:
        interval = (math.nan, math.nan)
    return EvaluationResult(
        table=table, official_score=official_score(table), arithmetic_mean=arithmetic_mean(table),
        jackknife=interval, ci95=evaluator_ci95(np.concatenate(pooled_y), np.concatenate(pooled_s)),
        n_values=int(official_values(table).size),
        score_dir=str(score_dir), data_root=str(data_root),
    )


def evaluate_frame(frame: pd.DataFrame, *, score_dir: str = "", data_root: str = "") -> EvaluationResult:
    """Evaluate scores held in memory, exactly as :func:`evaluate_scores` evaluates the files they would be.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per test clip: ``machine``, ``section``, ``part``, ``file``,
        ``domain``, ``label``, ``score`` and optionally ``decision`` (0/1).
    score_dir, data_root : str
        Recorded in the result (where the files are, what the clips are of).

    Returns
    -------
    EvaluationResult
        Its ``score_file`` / ``decision_file`` columns are None.

    Raises
    ------
    DatasetError
        Clips without labels or domains, or a section without normal and
        anomalous clips.
    """
    needed = ["machine", "section", "part", "file", "domain", "label", "score"]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise ConfigError(f"evaluate_frame: the score table lacks the column(s) {missing}.")
    rows, pooled_y, pooled_s = [], [], []
    for (machine, section), sub in frame.groupby(["machine", "section"], sort=True):
        _require_ground_truth(sub, machine, section, Path(data_root or "."))
        scores = sub["score"].to_numpy(dtype=np.float64)
        dec = sub["decision"].to_numpy() if "decision" in sub.columns else None
        row, y = _metrics_row(machine, section, sub, scores, dec, data_root)
        row["score_file"] = row["decision_file"] = None
        rows.append(row)
        pooled_y.append(y)
        pooled_s.append(scores)
    if not rows:
        raise ConfigError("evaluate_frame: no scores to evaluate.")
    return _result(rows, pooled_y, pooled_s, score_dir, data_root)


def _section_row(machine: str, section: str, sub: pd.DataFrame, score_path: Path,
                 decision_path: Path | None, root: Path) -> tuple[dict, np.ndarray, np.ndarray]:
    scores = _align(score_path, read_score_file(score_path), "score", sub, machine, section, root)
    dec = None if decision_path is None else _align(decision_path, read_decision_file(decision_path), "decision",
                                                    sub, machine, section, root)
    row, y = _metrics_row(machine, section, sub, scores, dec, str(root))
    row["score_file"] = str(score_path)
    row["decision_file"] = str(decision_path) if decision_path is not None else None
    return row, y, scores


# --------------------------------------------------------------------------- evaluation
def evaluate_scores(score_dir: str | Path, data_root: str | Path, *,
                    machines: Sequence[str] | None = None,
                    ground_truth: str | Path | None = None) -> EvaluationResult:
    """Evaluate every score file below ``score_dir`` against the test clips of ``data_root``.

    Parameters
    ----------
    score_dir : path-like
        Folder holding ``anomaly_score_<machine>_section_<ss>_test.csv`` files
        (subfolders are searched too) and, optionally, the matching
        ``decision_result_*`` files.
    data_root : path-like
        Any DCASE-layout root (:func:`asdkit.data.dataset.scan_root`). Only its
        ``test`` clips are used; malformed names outside ``test`` folders are ignored.
    machines : sequence of str, optional
        Evaluate only these machine types (each must have a score file).
    ground_truth : path-like, optional
        Folder holding the evaluator's ``ground_truth_data`` and
        ``ground_truth_domain`` folders, for anonymised evaluation clips; by
        default they are searched below ``data_root``.

    Returns
    -------
    EvaluationResult

    Raises
    ------
    ScoreFileError
        If no score file is found, a score file is for a machine (or section)
        with no test clips in the root, misses test clips or names clips that are
        not test clips of its section, or is malformed.
    DatasetError
        If the root is not a DCASE layout, test clips lack labels or domains
        (ground-truth CSVs missing), a test file name is malformed, or a section
        lacks normal or anomalous clips.
    """
    score_dir, data_root = Path(score_dir), Path(data_root)
    score_files = find_score_files(score_dir)
    if not score_files:
        raise ScoreFileError(
            f"no anomaly score files under {str(score_dir)!r} (searched subfolders too); expected names "
            "like 'anomaly_score_<machine>_section_<ss>_test.csv', e.g. "
            "'anomaly_score_ToyCar_section_00_test.csv'.")
    if machines is not None:
        machines = [machines] if isinstance(machines, str) else list(machines)
        have = sorted({m for m, _ in score_files})
        lacking = sorted(set(machines) - set(have))
        if lacking:
            raise ScoreFileError(f"no anomaly score file for machine(s) {lacking} under "
                                 f"{str(score_dir)!r}; it has files for {have}")
        score_files = {k: p for k, p in score_files.items() if k[0] in machines}
    decision_files = find_decision_files(score_dir)

    available = find_machines(data_root)
    for (machine, _), path in score_files.items():
        if machine not in available:
            raise ScoreFileError(
                f"{str(path)!r} is for machine {machine!r}, which has no folder under "
                f"{str(data_root)!r} (it holds: {sorted(available)}). Point data_root to the dataset "
                "the scores were computed on, or remove the file.")
    wanted = sorted({m for m, _ in score_files})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # malformed training names are irrelevant here
        clips = scan_root(data_root, machines=wanted, strict=False, ground_truth=ground_truth)
    bad_test = [p for p in clips.attrs.get("rejected", []) if Path(p).parent.name == "test"]
    if bad_test:
        raise DatasetError(f"{len(bad_test)} test file(s) under {str(data_root)!r} follow no DCASE name "
                           f"pattern, e.g. {_examples(bad_test)}; rename or remove them.")
    test = clips[clips["split"] == "test"]

    rows, pooled_y, pooled_s = [], [], []
    for (machine, section), path in score_files.items():
        sub = test[(test["machine"] == machine) & (test["section"] == section)]
        if sub.empty:
            sections = sorted(test.loc[test["machine"] == machine, "section"].unique())
            raise ScoreFileError(f"{str(path)!r}: {machine} has no test clips of section {section} under "
                                 f"{str(data_root)!r}; its test sections are {sections}")
        dup = sub.loc[sub["file"].duplicated(), "file"].tolist()
        if dup:
            raise DatasetError(f"{len(dup)} test file name(s) of {machine} section {section} occur in "
                               f"two folders under {str(data_root)!r}, e.g. {_examples(dup)}; the score "
                               "file cannot tell them apart. Evaluate one part (dev or eval) at a time.")
        _require_ground_truth(sub, machine, section,
                              Path(ground_truth) if ground_truth is not None else data_root)
        row, y, scores = _section_row(machine, section, sub, path, decision_files.get((machine, section)),
                                      data_root)
        rows.append(row)
        pooled_y.append(y)
        pooled_s.append(scores)

    return _result(rows, pooled_y, pooled_s, str(score_dir), str(data_root))


# --------------------------------------------------------------------------- display and saving
def _display_frame(result: EvaluationResult) -> pd.DataFrame:
    """Per-section table with metrics as percent strings (two decimals, '-' for NaN)."""
    t = result.table
    cols = list(METRIC_COLUMNS)
    if t[DECISION_COLUMNS].notna().any().any():
        cols += DECISION_COLUMNS
    out = t[["machine", "section"]].copy()
    for c in cols:
        out[_DISPLAY[c]] = [("-" if pd.isna(v) else f"{100 * v:.2f}") for v in t[c]]
    return out


def _summary_lines(result: EvaluationResult) -> list[str]:
    low, high = result.jackknife
    jk = (f"n/a (needs at least {MIN_JACKKNIFE_SECTIONS} machine/sections)" if math.isnan(low)
          else f"[{100 * low:.2f}, {100 * high:.2f}]")
    return [
        f"official score (harmonic mean of {result.n_values} AUC/pAUC values): "
        f"{100 * result.official_score:.2f}",
        f"arithmetic mean: {100 * result.arithmetic_mean:.2f}",
        f"official score ci95 (the evaluator's leave-one-clip-out jackknife half-width): "
        f"{100 * result.ci95:.2f}",
        f"95% jackknife interval of the official score (leave one machine/section out): {jk}",
    ]


def format_result(result: EvaluationResult) -> str:
    """Render a result as a plain-text table (percent, two decimals) plus the summary lines.

    Parameters
    ----------
    result : EvaluationResult

    Returns
    -------
    str
    """
    return "\n".join([_display_frame(result).to_string(index=False), "", *_summary_lines(result)])


def _markdown(result: EvaluationResult) -> str:
    frame = _display_frame(result)
    header = "| " + " | ".join(frame.columns) + " |"
    align = "| " + " | ".join("---" if c in ("machine", "section") else "---:" for c in frame.columns) + " |"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    summary = [f"- {line}" for line in _summary_lines(result)]
    return "\n".join([
        "# DCASE Task 2 evaluation", "",
        f"Scores: `{result.score_dir}`; dataset: `{result.data_root}`. Values in percent.", "",
        header, align, *body, "", *summary, "",
    ])


def save_result(result: EvaluationResult, out_path: str | Path) -> tuple[Path, Path]:
    """Write the per-section table as CSV and a Markdown report next to it, atomically.

    The CSV holds :attr:`EvaluationResult.table` with fractions in [0, 1]; the
    Markdown file (same name, ``.md``) holds the table in percent and the
    official score, arithmetic mean and jackknife interval.

    Parameters
    ----------
    result : EvaluationResult
    out_path : path-like
        Path of the CSV, e.g. ``results/eval.csv`` (folders are created).

    Returns
    -------
    (pathlib.Path, pathlib.Path)
        The CSV and Markdown paths.

    Raises
    ------
    ConfigError
        If ``out_path`` ends in ``.md`` (the Markdown file would overwrite it).
    """
    csv_path = Path(out_path)
    if csv_path.suffix.lower() == ".md":
        raise ConfigError(f"out_path {str(csv_path)!r} must be the CSV path; the Markdown report "
                          "is written next to it with the suffix .md")
    md_path = csv_path.with_suffix(".md")
    atomic_write_text(csv_path, result.table.to_csv(index=False))
    atomic_write_text(md_path, _markdown(result))
    return csv_path, md_path
