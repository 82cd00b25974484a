"""``asdkit score``: score new clips with a saved detector and write the official files.

The path for a user's own recordings: fit once (``asdkit run --save-models``,
or ``detector.save(folder)`` in a notebook), then score any clips later, on
any machine, without training again.
"""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple, Sequence

import pandas as pd

from asdkit.data.dataset import clip_table, scan_root
from asdkit.errors import ConfigError, DatasetError
from asdkit.evaluation.evaluate import EvaluationResult, evaluate_frame
from asdkit.evaluation.outputs import write_submission
from asdkit.models.base import Detector

__all__ = ["ScoreResult", "score_clips"]


class ScoreResult(NamedTuple):
    """What :func:`score_clips` did.

    Attributes
    ----------
    detector : Detector
        The loaded detector.
    key : str
        The score written.
    machines : list of str
        Its training machine types.
    n_train, n_clips : int
        Its training clips; the clips scored.
    scores : pandas.DataFrame
        One row per clip: machine, section, file, domain, label, score, decision.
    files : list of Path
        The official files written.
    evaluation : EvaluationResult or None
        Where every clip's label and domain are known.
    """

    detector: Detector
    key: str
    machines: list
    n_train: int
    n_clips: int
    scores: pd.DataFrame
    files: list
    evaluation: EvaluationResult | None


def score_clips(model: str | Path, *, out: str | Path, data: str | Path | None = None,
                clips: Sequence[str | Path] | pd.DataFrame | None = None, device: str = "cpu",
                score: str | None = None) -> ScoreResult:
    """Score clips with a saved detector; write ``anomaly_score_*`` and ``decision_result_*`` files.

    Parameters
    ----------
    model : path-like
        A folder written by ``Detector.save`` (``asdkit run --save-models``
        writes ``OUT/models/<family>/<machine>/``).
    out : path-like
        Folder for the official files (one pair per machine type and section).
    data : path-like, optional
        A DCASE-layout root: its ``test`` clips of the detector's machine types are scored.
    clips : sequence of path-like or clip table, optional
        Instead of ``data``: wav files named in the DCASE way, e.g.
        ``section_00_0001.wav`` (evaluation naming: no label, no domain) or
        ``section_00_target_test_normal_0001_speed_10.wav``; the machine type
        is the name of the folder above ``test``/``train``, else the clip's folder.
    device : str, default "cpu"
    score : str, optional
        Which of the detector's ``score_names`` to write (default: its own
        ``score`` setting; a saved autoencoder baseline has ``"mse"`` and ``"mahala"``).

    Returns
    -------
    ScoreResult
    """
    det = Detector.load(model, device=device)
    if (data is None) == (clips is None):
        raise DatasetError("score_clips: give either data= (a dataset root) or clips= (wav files).")
    if data is not None:
        table = scan_root(data)
        table = table[table["split"] == "test"]
        if det.machines_:
            table = table[table["machine"].isin(det.machines_)]
        if table.empty:
            raise DatasetError(f"{str(data)!r} has no test clips of {det.machines_ or 'any machine type'}; "
                               "point --data at the root the detector's machine type is in, or pass --clips.")
        table = table.reset_index(drop=True)
    else:
        table = clip_table(clips, name="clips")
    key = det.score_key if score is None else score
    if key not in det.score_names:
        raise ConfigError(f"--score {key}: {type(det).__name__} has the scores {list(det.score_names)}.")
    scores = det.score_all(table)[key]
    frame = table[["machine", "section", "part", "file", "domain", "label"]].assign(
        score=scores, decision=det.decision(scores, key))
    out = Path(out)
    files = write_submission(out, frame, frame["score"], decisions=frame["decision"])
    known = frame["label"].notna().all() and frame["domain"].notna().all()
    evaluation = None
    if known:
        try:
            evaluation = evaluate_frame(frame, score_dir=str(out), data_root=str(data or ""))
        except DatasetError:                       # e.g. a section without anomalies: scores only
            evaluation = None
    return ScoreResult(det, key, list(det.machines_), det.n_train_, len(frame), frame, files, evaluation)
