"""Writers and readers of the official score and decision files."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from asdkit.errors import ConfigError, ScoreFileError
from asdkit.evaluation.outputs import (
    decision_file_name,
    find_decision_files,
    find_score_files,
    parse_output_name,
    read_decision_file,
    read_score_file,
    score_file_name,
    write_decisions,
    write_scores,
    write_submission,
)
from asdkit.io import atomic_write_text

FILES = ["section_00_0001.wav", "section_00_0002.wav", "section_00_0003.wav"]


def test_names():
    assert score_file_name("ToyCar", 0) == "anomaly_score_ToyCar_section_00_test.csv"
    assert decision_file_name("3DPrinter", "01") == "decision_result_3DPrinter_section_01_test.csv"
    with pytest.raises(ConfigError):
        score_file_name("fan", 100)
    with pytest.raises(ConfigError):
        score_file_name("a/b", 0)


@pytest.mark.parametrize("name, expected", [
    ("anomaly_score_ToyCar_section_00_test.csv", ("anomaly_score", "ToyCar", "00")),
    ("anomaly_score_3DPrinter_section_00_test.csv", ("anomaly_score", "3DPrinter", "00")),
    ("decision_result_AirCompressor_section_02_test.csv", ("decision_result", "AirCompressor", "02")),
    ("anomaly_score_DCASE2024T2ToyCar_section_00_test_seed13711_id(0_)_Eval.csv",
     ("anomaly_score", "ToyCar", "00")),
    ("anomaly_score_ToyConveyor_id_04.csv", ("anomaly_score", "ToyConveyor", "04")),
    ("anomaly_score_fan_section_00_train.csv", None),
    ("result.csv", None),
])
def test_parse_output_name(name, expected):
    assert parse_output_name(name) == expected


def test_round_trip(tmp_path):
    scores = np.array([0.1, -2.5e-7, 1234.56789012345678])
    path = write_scores(tmp_path, "ToyCar", 0, FILES, scores)
    assert path == tmp_path / "anomaly_score_ToyCar_section_00_test.csv"
    df = read_score_file(path)
    assert df["file"].tolist() == FILES
    np.testing.assert_array_equal(df["score"].to_numpy(), scores)  # exact: written with repr
    dpath = write_decisions(tmp_path, "ToyCar", "00", FILES, [0, 1, True])
    dec = read_decision_file(dpath)
    assert dec["decision"].tolist() == [0, 1, 1]


def test_no_header_and_base_names_only(tmp_path):
    path = write_scores(tmp_path / "new" / "dir", "fan", 0, [Path("/data/fan/test") / f for f in FILES],
                        [1, 2, 3])
    lines = path.read_text().splitlines()
    assert lines == ["section_00_0001.wav,1.0", "section_00_0002.wav,2.0", "section_00_0003.wav,3.0"]


def test_atomic_write_leaves_no_temp_file(tmp_path):
    write_scores(tmp_path, "fan", 0, FILES, [1, 2, 3])
    write_scores(tmp_path, "fan", 0, FILES, [3, 2, 1])  # overwrite
    assert sorted(p.name for p in tmp_path.iterdir()) == ["anomaly_score_fan_section_00_test.csv"]
    assert read_score_file(tmp_path / "anomaly_score_fan_section_00_test.csv")["score"].tolist() == [3, 2, 1]


def test_atomic_write_failure_keeps_old_file(tmp_path, monkeypatch):
    target = tmp_path / "x.csv"
    atomic_write_text(target, "old\n")

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write_text(target, "new\n")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["x.csv"]


@pytest.mark.parametrize("files, scores, match", [
    (FILES, [1, 2], "3 file names but 2"),
    (FILES, [1, np.nan, 3], "NaN or infinite"),
    (FILES[:1] * 2, [1, 2], "more than once"),
    ([], [], "no files"),
    (FILES, [[1, 2, 3]], "one-dimensional"),
])
def test_write_scores_rejects_bad_arguments(tmp_path, files, scores, match):
    with pytest.raises(ConfigError, match=match):
        write_scores(tmp_path, "fan", 0, files, scores)
    assert list(tmp_path.iterdir()) == []


def test_write_decisions_rejects_non_binary(tmp_path):
    with pytest.raises(ConfigError, match="0 .normal. or 1"):
        write_decisions(tmp_path, "fan", 0, FILES, [0, 1, 2])


def _write(tmp_path, text, name="anomaly_score_fan_section_00_test.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize("text, match", [
    ("a.wav,0.1\nb.wav\n", r"line 2: expected 2 fields"),
    ("a.wav,0.1,7\n", r"line 1: expected 2 fields"),
    ("a.wav,0.1\nb.wav,high\n", r"line 2: score 'high' of 'b.wav' is not a number"),
    ("file_name,score\na.wav,0.1\n", r"line 1: .*not a number\. The official format has no header"),
    ("a.wav,0.1\nb.wav,nan\n", r"line 2: score of 'b.wav' is 'nan'; it must be finite"),
    ("a.wav,0.1\nb.wav,-inf\n", r"line 2: .*must be finite"),
    ("a.wav,0.1\nb.wav,0.2\na.wav,0.3\n", r"line 3: 'a.wav' already appears on line 1"),
    ("", r"has no rows"),
    ("\n\n", r"has no rows"),
    (",0.5\n", r"line 1: empty file name"),
])
def test_read_score_file_errors_name_file_and_line(tmp_path, text, match):
    p = _write(tmp_path, text)
    with pytest.raises(ScoreFileError, match=match) as e:
        read_score_file(p)
    assert p.name in str(e.value)


def test_read_score_file_missing_and_blank_lines(tmp_path):
    with pytest.raises(ScoreFileError, match="not found"):
        read_score_file(tmp_path / "nope.csv")
    df = read_score_file(_write(tmp_path, "a.wav, 0.5 \n\nb.wav,1e-3\n"))
    assert df["file"].tolist() == ["a.wav", "b.wav"]
    assert df["score"].tolist() == [0.5, 1e-3]


@pytest.mark.parametrize("text, match", [
    ("a.wav,2\n", "must be 0 .normal. or 1"),
    ("a.wav,0.5\n", "must be 0 .normal. or 1"),
    ("a.wav,yes\n", "not a number"),
    ("a.wav,1\na.wav,0\n", "already appears"),
])
def test_read_decision_file_errors(tmp_path, text, match):
    with pytest.raises(ScoreFileError, match=match):
        read_decision_file(_write(tmp_path, text, "decision_result_fan_section_00_test.csv"))


def test_find_score_files_recursive(tmp_path):
    write_scores(tmp_path / "sys" / "dev", "ToyCar", 0, FILES, [1, 2, 3])
    write_scores(tmp_path / "sys" / "eval", "3DPrinter", 0, FILES, [1, 2, 3])
    write_scores(tmp_path, "fan", 1, FILES, [1, 2, 3])
    write_decisions(tmp_path, "fan", 1, FILES, [0, 1, 0])
    (tmp_path / "notes.csv").write_text("x,y\n")
    found = find_score_files(tmp_path)
    assert list(found) == [("3DPrinter", "00"), ("ToyCar", "00"), ("fan", "01")]
    assert found[("ToyCar", "00")] == tmp_path / "sys" / "dev" / "anomaly_score_ToyCar_section_00_test.csv"
    assert list(find_decision_files(tmp_path)) == [("fan", "01")]
    assert find_score_files(tmp_path / "sys" / "dev") == {("ToyCar", "00"): found[("ToyCar", "00")]}


def test_find_score_files_errors(tmp_path):
    with pytest.raises(ScoreFileError, match="does not exist"):
        find_score_files(tmp_path / "missing")
    assert find_score_files(tmp_path) == {}
    write_scores(tmp_path / "a", "fan", 0, FILES, [1, 2, 3])
    write_scores(tmp_path / "b", "fan", 0, FILES, [1, 2, 3])
    with pytest.raises(ScoreFileError, match="two anomaly_score files for fan section 00"):
        find_score_files(tmp_path)


def test_write_submission(tmp_path):
    table = pd.DataFrame({"file": FILES + ["section_00_0001.wav"],
                          "machine": ["fan"] * 3 + ["pump"], "section": ["00"] * 4})
    paths = write_submission(tmp_path, table, [0.1, 0.9, 0.5, 0.2], thresholds={"fan": 0.5, "pump": 0.1})
    assert [p.name for p in paths] == [
        "anomaly_score_fan_section_00_test.csv", "anomaly_score_pump_section_00_test.csv",
        "decision_result_fan_section_00_test.csv", "decision_result_pump_section_00_test.csv"]
    assert read_decision_file(tmp_path / "decision_result_fan_section_00_test.csv")["decision"].tolist() \
        == [0, 1, 0]  # 0.5 is not above 0.5
    with pytest.raises(ConfigError, match="no threshold"):
        write_submission(tmp_path, table, [0.1, 0.9, 0.5, 0.2], thresholds={"fan": 0.5})
    # a detector's own decisions are written as given
    write_submission(tmp_path / "d", table, [0.1, 0.9, 0.5, 0.2], decisions=[1, 0, 1, 1])
    assert read_decision_file(tmp_path / "d" / "decision_result_fan_section_00_test.csv")["decision"].tolist() \
        == [1, 0, 1]
    with pytest.raises(ConfigError, match="not both"):
        write_submission(tmp_path, table, [0.1] * 4, thresholds={"fan": 0.5, "pump": 0.1}, decisions=[0] * 4)
    with pytest.raises(ConfigError, match="decisions must have shape"):
        write_submission(tmp_path, table, [0.1] * 4, decisions=[0] * 3)
