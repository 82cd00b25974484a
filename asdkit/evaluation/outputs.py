"""The files a DCASE Task 2 system hands to the official evaluator.

Two CSV files per machine type and section, no header:

* ``anomaly_score_<machine>_section_<ss>_test.csv``: rows ``file_name,score``
  (higher score = more anomalous);
* ``decision_result_<machine>_section_<ss>_test.csv``: rows ``file_name,0|1``
  (1 = anomaly).

Writers are atomic (a temporary file in the same folder, then
:func:`os.replace`), so an interrupted run never leaves a half-written file.
Readers check every row and raise :class:`~asdkit.errors.ScoreFileError`
naming the file and line. :func:`find_score_files` also recognises the names
the organisers' evaluators accept besides the official one: the DCASE 2020
``anomaly_score_<machine>_id_<ss>.csv`` and the baseline's
``anomaly_score_DCASE2024T2<machine>_section_<ss>_test_seed<seed><tag>_Eval.csv``.
"""
from __future__ import annotations

import csv
import re
from collections import Counter
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from asdkit.errors import ConfigError, ScoreFileError
from asdkit.io import atomic_write_text

__all__ = [
    "SCORE_KIND", "DECISION_KIND",
    "score_file_name", "decision_file_name", "parse_output_name",
    "write_scores", "write_decisions", "write_submission", "atomic_write_text",
    "read_score_file", "read_decision_file", "find_score_files", "find_decision_files",
]

SCORE_KIND = "anomaly_score"
DECISION_KIND = "decision_result"

_OUTPUT_NAME = re.compile(
    r"^(?P<kind>anomaly_score|decision_result)_(?:DCASE20\d\dT2)?(?P<machine>.+?)_"
    r"(?:section_(?P<section>\d{2})_test(?:_seed.*)?|id_(?P<id>\d{2}))\.csv$"
)
_MACHINE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


# --------------------------------------------------------------------------- names
def _section(section: int | str) -> str:
    text = str(section)
    if not text.isdigit() or not 0 <= int(text) <= 99:
        raise ConfigError(f"section must be an integer 0-99 or a two-digit string like '00', got {section!r}")
    return f"{int(text):02d}"


def _machine(machine: str) -> str:
    if not isinstance(machine, str) or not _MACHINE.match(machine):
        raise ConfigError(f"machine must be a name of letters, digits, '_' or '-' (e.g. 'ToyCar', "
                          f"'3DPrinter'), got {machine!r}")
    return machine


def score_file_name(machine: str, section: int | str) -> str:
    """``anomaly_score_<machine>_section_<ss>_test.csv``.

    Examples
    --------
    >>> score_file_name("3DPrinter", 0)
    'anomaly_score_3DPrinter_section_00_test.csv'
    """
    return f"{SCORE_KIND}_{_machine(machine)}_section_{_section(section)}_test.csv"


def decision_file_name(machine: str, section: int | str) -> str:
    """``decision_result_<machine>_section_<ss>_test.csv``."""
    return f"{DECISION_KIND}_{_machine(machine)}_section_{_section(section)}_test.csv"


def parse_output_name(name: str | Path) -> tuple[str, str, str] | None:
    """Read kind, machine and section from an output file name.

    Parameters
    ----------
    name : str or path-like
        Only the base name is read.

    Returns
    -------
    (kind, machine, section) or None
        ``kind`` is ``"anomaly_score"`` or ``"decision_result"``; ``section`` is
        two digits. None if the name is not an output file name.

    Examples
    --------
    >>> parse_output_name("anomaly_score_ToyCar_section_00_test.csv")
    ('anomaly_score', 'ToyCar', '00')
    >>> parse_output_name("anomaly_score_DCASE2024T2fan_section_00_test_seed13711_id(0_)_Eval.csv")
    ('anomaly_score', 'fan', '00')
    >>> parse_output_name("anomaly_score_pump_id_02.csv")
    ('anomaly_score', 'pump', '02')
    """
    m = _OUTPUT_NAME.match(Path(name).name)
    if not m:
        return None
    return m.group("kind"), m.group("machine"), m.group("section") or m.group("id")


# --------------------------------------------------------------------------- writing


def _file_names(files: Iterable[str | Path], n_expected: int | None = None) -> list[str]:
    names = [Path(f).name for f in files]
    if not names:
        raise ConfigError("no files given: an output file needs at least one clip")
    if any(not n or "," in n or "\n" in n for n in names):
        raise ConfigError("file names must be non-empty and free of ',' and newlines")
    dup = [n for n, c in Counter(names).items() if c > 1]
    if dup:
        raise ConfigError(f"{len(dup)} file name(s) appear more than once, e.g. {dup[0]!r}; "
                          "each clip needs exactly one row")
    if n_expected is not None and len(names) != n_expected:
        raise ConfigError(f"{len(names)} file names but {n_expected} values; give one value per file")
    return names


def write_scores(out_dir: str | Path, machine: str, section: int | str,
                 files: Sequence[str | Path], scores) -> Path:
    """Write ``anomaly_score_<machine>_section_<ss>_test.csv`` atomically.

    Parameters
    ----------
    out_dir : path-like
        Folder to write into (created if needed).
    machine : str
        Machine type, e.g. ``"ToyCar"``.
    section : int or str
        Section, e.g. ``0`` or ``"00"``.
    files : sequence of str or path-like, length n_clips
        Clip file names; only the base name is written.
    scores : array-like of shape (n_clips,)
        Finite anomaly scores; higher = more anomalous. Written with ``repr`` so
        that reading gives back the same float.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    ConfigError
        On a bad machine or section, duplicate or empty file names, a length
        mismatch, or a non-finite score.
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1:
        raise ConfigError(f"scores must be one-dimensional (n_clips,), got shape {s.shape}")
    names = _file_names(files, len(s))
    bad = np.flatnonzero(~np.isfinite(s))
    if bad.size:
        raise ConfigError(f"{bad.size} score(s) are NaN or infinite, e.g. for {names[bad[0]]!r}; "
                          "the evaluator needs a finite score for every clip")
    text = "".join(f"{n},{float(v)!r}\n" for n, v in zip(names, s))
    return atomic_write_text(Path(out_dir) / score_file_name(machine, section), text)


def write_decisions(out_dir: str | Path, machine: str, section: int | str,
                    files: Sequence[str | Path], decisions) -> Path:
    """Write ``decision_result_<machine>_section_<ss>_test.csv`` atomically.

    Parameters
    ----------
    out_dir : path-like
        Folder to write into (created if needed).
    machine : str
    section : int or str
    files : sequence of str or path-like, length n_clips
        Clip file names; only the base name is written.
    decisions : array-like of shape (n_clips,)
        1 (or True) = anomaly, 0 (or False) = normal.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ConfigError
        As :func:`write_scores`, or if a decision is not 0/1.
    """
    d = np.asarray(decisions)
    if d.ndim != 1:
        raise ConfigError(f"decisions must be one-dimensional (n_clips,), got shape {d.shape}")
    names = _file_names(files, len(d))
    if d.dtype.kind not in "biuf" or not np.isin(d, (0, 1)).all():
        raise ConfigError("decisions must be 0 (normal) or 1 (anomaly)")
    text = "".join(f"{n},{int(v)}\n" for n, v in zip(names, d))
    return atomic_write_text(Path(out_dir) / decision_file_name(machine, section), text)


def write_submission(out_dir: str | Path, table: pd.DataFrame, scores,
                     thresholds: Mapping[str, float] | None = None, *, decisions=None) -> list[Path]:
    """Write the score (and decision) files of every machine/section of a clip table.

    Parameters
    ----------
    out_dir : path-like
    table : pandas.DataFrame
        One row per test clip with columns ``file``, ``machine`` and ``section``
        (e.g. :func:`asdkit.data.dataset.scan_root` restricted to ``split == "test"``).
    scores : array-like of shape (n_clips,)
        Anomaly scores aligned with the rows of ``table``.
    thresholds : mapping of str to float, optional
        Machine -> decision threshold (e.g. :func:`asdkit.scoring.threshold.gamma_threshold`
        of its training scores). A clip is decided anomalous when its score is
        strictly above the threshold. Without it (or ``decisions``), no decision file is written.
    decisions : array-like of shape (n_clips,), optional
        0/1 decisions aligned with the rows of ``table`` (a detector's
        ``decision(scores)``), written instead of thresholding here.

    Returns
    -------
    list of pathlib.Path
        The files written, sorted.

    Raises
    ------
    ConfigError
        If columns are missing, lengths differ, or a machine has no threshold.
    """
    missing = [c for c in ("file", "machine", "section") if c not in table.columns]
    if missing:
        raise ConfigError(f"table lacks column(s) {missing}")
    s = np.asarray(scores, dtype=np.float64)
    if s.shape != (len(table),):
        raise ConfigError(f"scores must have shape ({len(table)},) like the table, got {s.shape}")
    if thresholds is not None and decisions is not None:
        raise ConfigError("give thresholds or decisions, not both")
    if thresholds is not None:
        lacking = sorted(set(table["machine"]) - set(thresholds))
        if lacking:
            raise ConfigError(f"no threshold for machine(s) {lacking}")
    d = None if decisions is None else np.asarray(decisions, dtype=np.int64)
    if d is not None and d.shape != (len(table),):
        raise ConfigError(f"decisions must have shape ({len(table)},) like the table, got {d.shape}")
    written = []
    for (machine, section), idx in table.groupby(["machine", "section"], sort=True).indices.items():
        files = table["file"].to_numpy()[idx]
        written.append(write_scores(out_dir, machine, section, files, s[idx]))
        if thresholds is not None:
            dec = (s[idx] > float(thresholds[machine])).astype(np.int64)
            written.append(write_decisions(out_dir, machine, section, files, dec))
        elif d is not None:
            written.append(write_decisions(out_dir, machine, section, files, d[idx]))
    return sorted(written)


# --------------------------------------------------------------------------- reading
def _read_rows(path: Path, what: str) -> list[tuple[int, str, str]]:
    """Return (line number, file name, value text) of each non-blank row."""
    if not path.is_file():
        raise ScoreFileError(f"{str(path)!r}: {what} file not found")
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise ScoreFileError(f"{str(path)!r}: cannot read the {what} file ({e})") from e
    out = []
    for lineno, row in enumerate(rows, start=1):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != 2:
            raise ScoreFileError(f"{str(path)!r}, line {lineno}: expected 2 fields 'file_name,value', "
                                 f"got {len(row)}: {','.join(row)!r}")
        name, value = row[0].strip(), row[1].strip()
        if not name:
            raise ScoreFileError(f"{str(path)!r}, line {lineno}: empty file name")
        out.append((lineno, name, value))
    if not out:
        raise ScoreFileError(f"{str(path)!r}: the {what} file has no rows")
    return out


def _check_unique(path: Path, rows: list[tuple[int, str, str]]) -> None:
    first: dict[str, int] = {}
    for lineno, name, _ in rows:
        if name in first:
            raise ScoreFileError(f"{str(path)!r}, line {lineno}: {name!r} already appears on line "
                                 f"{first[name]}; each clip must have exactly one row")
        first[name] = lineno


def _number(path: Path, lineno: int, name: str, value: str, what: str) -> float:
    try:
        v = float(value)
    except ValueError:
        hint = (" The official format has no header row." if lineno == 1 and not name.endswith(".wav")
                else "")
        raise ScoreFileError(f"{str(path)!r}, line {lineno}: {what} {value!r} of {name!r} is not a "
                             f"number.{hint}") from None
    if not np.isfinite(v):
        raise ScoreFileError(f"{str(path)!r}, line {lineno}: {what} of {name!r} is {value!r}; "
                             "it must be finite")
    return v


def read_score_file(path: str | Path) -> pd.DataFrame:
    """Read an ``anomaly_score_*.csv`` file (rows ``file_name,score``, no header).

    Blank lines are skipped; surrounding spaces are stripped.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    pandas.DataFrame
        Columns ``file`` (str) and ``score`` (float64), in file order.

    Raises
    ------
    ScoreFileError
        Naming the file and line, if the file is missing or empty, a row does not
        have exactly two fields, a score is not a number or not finite, or a file
        name appears twice.
    """
    path = Path(path)
    rows = _read_rows(path, "anomaly score")
    scores = [_number(path, ln, name, v, "score") for ln, name, v in rows]
    _check_unique(path, rows)
    return pd.DataFrame({"file": [r[1] for r in rows], "score": np.asarray(scores, dtype=np.float64)})


def read_decision_file(path: str | Path) -> pd.DataFrame:
    """Read a ``decision_result_*.csv`` file (rows ``file_name,0|1``, no header).

    Parameters
    ----------
    path : path-like

    Returns
    -------
    pandas.DataFrame
        Columns ``file`` (str) and ``decision`` (int64, 1 = anomaly), in file order.

    Raises
    ------
    ScoreFileError
        As :func:`read_score_file`, or if a decision is not 0 or 1.
    """
    path = Path(path)
    rows = _read_rows(path, "decision")
    decisions = []
    for ln, name, v in rows:
        x = _number(path, ln, name, v, "decision")
        if x not in (0.0, 1.0):
            raise ScoreFileError(f"{str(path)!r}, line {ln}: decision of {name!r} is {v!r}; "
                                 "it must be 0 (normal) or 1 (anomaly)")
        decisions.append(int(x))
    _check_unique(path, rows)
    return pd.DataFrame({"file": [r[1] for r in rows], "decision": np.asarray(decisions, dtype=np.int64)})


def _find(score_dir: str | Path, kind: str) -> dict[tuple[str, str], Path]:
    score_dir = Path(score_dir)
    if not score_dir.is_dir():
        raise ScoreFileError(f"score folder {str(score_dir)!r} does not exist or is not a folder")
    found: dict[tuple[str, str], Path] = {}
    for p in sorted(score_dir.rglob("*.csv")):
        parsed = parse_output_name(p.name)
        if parsed is None or parsed[0] != kind or not p.is_file():
            continue
        key = (parsed[1], parsed[2])
        if key in found:
            raise ScoreFileError(
                f"two {kind} files for {key[0]} section {key[1]} under {str(score_dir)!r}: "
                f"{str(found[key])!r} and {str(p)!r}. Keep one, or point to the folder of one system.")
        found[key] = p
    return dict(sorted(found.items()))


def find_score_files(score_dir: str | Path) -> dict[tuple[str, str], Path]:
    """Find the anomaly-score files below a folder (subfolders too).

    Parameters
    ----------
    score_dir : path-like

    Returns
    -------
    dict
        ``(machine, section) -> path``, sorted; empty if there is none. The
        machine name is read from the file name (:func:`parse_output_name`).

    Raises
    ------
    ScoreFileError
        If the folder does not exist, or two files claim the same machine and
        section (e.g. the same system in two subfolders).
    """
    return _find(score_dir, SCORE_KIND)


def find_decision_files(score_dir: str | Path) -> dict[tuple[str, str], Path]:
    """Find the decision files below a folder (subfolders too); as :func:`find_score_files`."""
    return _find(score_dir, DECISION_KIND)
