"""evaluate_scores on tiny DCASE-layout roots made of empty files (scan_root reads names only)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from asdkit.errors import ConfigError, DatasetError, ScoreFileError
from asdkit.evaluation.evaluate import EvaluationResult, evaluate_scores, format_result, save_result
from asdkit.evaluation.metrics import EPS, floored_hmean, jackknife_interval
from asdkit.evaluation.outputs import write_decisions, write_scores

# pAUC when the top-scored clip is a normal and there are 4 normals (FPR step 0.25 > 0.1):
# TPR = 0 on [0, 0.1] -> A = 0 -> 0.5 * (1 + (0 - 0.005) / 0.095)
PAUC_ZERO_AREA = 0.5 * (1 - 0.005 / 0.095)

# fan: the hand case of test_metrics (AUC source 3/4, AUC target 1/4)
FAN = {
    "section_00_source_test_normal_0000_vel_6.wav": 0.1,
    "section_00_source_test_normal_0001_vel_6.wav": 0.4,
    "section_00_target_test_normal_0000_vel_8.wav": 0.3,
    "section_00_target_test_normal_0001_vel_8.wav": 0.6,
    "section_00_source_test_anomaly_0000_vel_6.wav": 0.5,
    "section_00_target_test_anomaly_0000_vel_8.wav": 0.2,
}
# ToyCar: every anomaly above every normal -> AUC 1, 1 and pAUC 1
TOYCAR = {
    "section_00_source_test_normal_0000_noAttribute.wav": 0.0,
    "section_00_source_test_normal_0001_noAttribute.wav": 1.0,
    "section_00_target_test_normal_0000_noAttribute.wav": 2.0,
    "section_00_target_test_normal_0001_noAttribute.wav": 3.0,
    "section_00_source_test_anomaly_0000_noAttribute.wav": 10.0,
    "section_00_target_test_anomaly_0000_noAttribute.wav": 11.0,
}
TRAIN = ["section_00_source_train_normal_0000_vel_6.wav", "section_00_target_train_normal_0000_vel_8.wav"]

# anonymised evaluation clips of 3DPrinter with their ground truth
#   file                 label(1=anomaly) domain(0=source) score
EVAL = [("section_00_0001.wav", 0, 0, 0.1), ("section_00_0002.wav", 0, 0, 0.4),
        ("section_00_0003.wav", 0, 1, 0.3), ("section_00_0004.wav", 0, 1, 0.6),
        ("section_00_0005.wav", 1, 0, 0.5), ("section_00_0006.wav", 1, 1, 0.2)]


def touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")


def make_dev_root(root: Path) -> Path:
    for machine, clips in (("fan", FAN), ("ToyCar", TOYCAR)):
        for f in clips:
            touch(root / "dev_data" / "raw" / machine / "test" / f)
        for f in TRAIN:
            touch(root / "dev_data" / "raw" / machine / "train" / f)
    # a malformed training name (like the 2024 RoboticArm files) must not stop evaluation
    touch(root / "dev_data" / "raw" / "fan" / "train" / "section_00_source_train_normal_0001_vel.wav")
    return root


def write_dev_scores(out: Path, fan=None, toycar=None) -> Path:
    fan = FAN if fan is None else fan
    toycar = TOYCAR if toycar is None else toycar
    write_scores(out, "fan", 0, list(fan), list(fan.values()))
    write_scores(out / "sub", "ToyCar", "00", list(toycar), list(toycar.values()))
    return out


def make_eval_root(root: Path, gt_dir: Path | None = None, with_truth: bool = True) -> Path:
    for f, *_ in EVAL:
        touch(root / "eval_data" / "raw" / "3DPrinter" / "test" / f)
    touch(root / "eval_data" / "raw" / "3DPrinter" / "train" / TRAIN[0])
    if with_truth:
        gt = gt_dir or root
        name = "ground_truth_3DPrinter_section_00_test.csv"
        (gt / "ground_truth_data").mkdir(parents=True, exist_ok=True)
        (gt / "ground_truth_domain").mkdir(parents=True, exist_ok=True)
        (gt / "ground_truth_data" / name).write_text("".join(f"{f},{y}\n" for f, y, _, _ in EVAL))
        (gt / "ground_truth_domain" / name).write_text("".join(f"{f},{d}\n" for f, _, d, _ in EVAL))
    return root


def write_eval_scores(out: Path) -> Path:
    write_scores(out, "3DPrinter", 0, [e[0] for e in EVAL], [e[3] for e in EVAL])
    return out


@pytest.fixture
def dev(tmp_path):
    return make_dev_root(tmp_path / "data"), write_dev_scores(tmp_path / "scores")


def test_dev_table_values(dev):
    root, scores = dev
    r = evaluate_scores(scores, root)
    assert isinstance(r, EvaluationResult)
    t = r.table.set_index("machine")
    assert list(t.index) == ["ToyCar", "fan"]
    assert t.loc["fan", "auc_source"] == 0.75
    assert t.loc["fan", "auc_target"] == 0.25
    assert t.loc["fan", "pauc"] == pytest.approx(PAUC_ZERO_AREA)
    assert t.loc["ToyCar", ["auc_source", "auc_target", "pauc"]].tolist() == [1, 1, 1]
    assert t.loc["fan", "n_clips"] == 6
    assert t.loc["fan", "section"] == "00" and t.loc["fan", "part"] == "dev"
    assert t["precision_source"].isna().all()  # no decision files
    values = [0.75, 1.0, 0.25, 1.0, PAUC_ZERO_AREA, 1.0]
    assert r.official_score == pytest.approx(scipy.stats.hmean(values))
    assert r.arithmetic_mean == pytest.approx(sum(values) / 6)
    assert r.n_values == 6
    # two machine types: too few to leave one out (unclipped the interval would reach beyond [0, 1])
    jk = jackknife_interval([[0.75, 0.25, PAUC_ZERO_AREA], [1, 1, 1]], statistic=floored_hmean)
    assert jk.low < 0 or jk.high > 1
    assert all(math.isnan(v) for v in r.jackknife) and "needs at least 4" in str(r)


def test_jackknife_interval_from_four_sections_clipped_to_0_1():
    from asdkit.evaluation.evaluate import MIN_JACKKNIFE_SECTIONS, _result

    rows = [{"machine": f"m{i}", "section": "00", "part": "dev", "n_clips": 4, "auc_source": a,
             "auc_target": b, "pauc": c} for i, (a, b, c) in
            enumerate([(0.9, 0.8, 0.7), (0.95, 0.9, 0.85), (0.99, 0.97, 0.95), (0.6, 0.02, 0.5)])]
    assert len(rows) == MIN_JACKKNIFE_SECTIONS
    values = [[r["auc_source"], r["auc_target"], r["pauc"]] for r in rows]
    jk = jackknife_interval(values, statistic=floored_hmean)
    r = _result(rows, [np.array([0, 1, 0, 1])], [np.array([0.1, 0.9, 0.3, 0.2])], "scores", "root")
    assert r.jackknife == pytest.approx((max(jk.low, 0), min(jk.high, 1)))
    assert 0 <= r.jackknife[0] <= r.official_score <= r.jackknife[1] <= 1


def test_dev_decisions(dev, tmp_path):
    root, scores = dev
    # fan source clips: normals 0000, 0001 -> decisions 1, 0; anomaly -> 1: TP 1, FP 1, FN 0
    #   precision 1/2, recall 1, F1 2/3
    # fan target clips: normals -> 0, 0; anomaly -> 0: TP 0 -> precision 0, recall 0, F1 0
    dec = {f: 0 for f in FAN}
    dec["section_00_source_test_normal_0000_vel_6.wav"] = 1
    dec["section_00_source_test_anomaly_0000_vel_6.wav"] = 1
    write_decisions(scores / "sub", "fan", 0, list(dec), list(dec.values()))
    t = evaluate_scores(scores, root).table.set_index("machine")
    assert t.loc["fan", "precision_source"] == 0.5
    assert t.loc["fan", "recall_source"] == 1.0
    assert t.loc["fan", "f1_source"] == pytest.approx(2 / 3)
    assert t.loc["fan", ["precision_target", "recall_target", "f1_target"]].tolist() == [0, 0, 0]
    assert math.isnan(t.loc["ToyCar", "f1_source"])


def test_machines_filter(dev):
    root, scores = dev
    r = evaluate_scores(scores, root, machines=["fan"])
    assert r.table["machine"].tolist() == ["fan"]
    assert all(math.isnan(v) for v in r.jackknife)  # one machine/section cannot be jackknifed
    with pytest.raises(ScoreFileError, match=r"no anomaly score file for machine\(s\) \['pump'\]"):
        evaluate_scores(scores, root, machines=["pump"])


def test_eval_layout_with_ground_truth_below_root(tmp_path):
    root = make_eval_root(tmp_path / "data")
    r = evaluate_scores(write_eval_scores(tmp_path / "scores"), root)
    row = r.table.iloc[0]
    assert (row["machine"], row["part"], row["n_clips"]) == ("3DPrinter", "eval", 6)
    assert (row["auc_source"], row["auc_target"]) == (0.75, 0.25)  # same hand case as fan


def test_eval_layout_with_separate_ground_truth_folder(tmp_path):
    root = make_eval_root(tmp_path / "data", gt_dir=tmp_path / "evaluator")
    scores = write_eval_scores(tmp_path / "scores")
    with pytest.raises(DatasetError):
        evaluate_scores(scores, root)  # not below the root
    r = evaluate_scores(scores, root, ground_truth=tmp_path / "evaluator")
    assert r.table.loc[0, "auc_source"] == 0.75


def test_eval_layout_without_ground_truth_explains(tmp_path):
    root = make_eval_root(tmp_path / "data", with_truth=False)
    with pytest.raises(DatasetError) as e:
        evaluate_scores(write_eval_scores(tmp_path / "scores"), root)
    msg = str(e.value)
    assert "6 of 6 test clips of 3DPrinter section 00 have no labels and domains" in msg
    assert "ground_truth_data/ground_truth_3DPrinter_section_00_test.csv" in msg
    assert "ground_truth_domain/" in msg and "ground_truth=" in msg and str(root) in msg


def test_dcase2020_layout_single_domain(tmp_path):
    # 2020 names carry no domain: everything is 'source', so AUC(target) is NaN and left out
    root = tmp_path / "data"
    clips = {"normal_id_00_00000000.wav": 0.1, "normal_id_00_00000001.wav": 0.3,
             "anomaly_id_00_00000000.wav": 0.2, "anomaly_id_00_00000001.wav": 0.9}
    for f in clips:
        touch(root / "dev_data" / "fan" / "test" / f)
    scores = tmp_path / "scores"
    scores.mkdir()
    (scores / "anomaly_score_fan_id_00.csv").write_text("".join(f"{f},{s}\n" for f, s in clips.items()))
    r = evaluate_scores(scores, root)
    row = r.table.iloc[0]
    # AUC: anomalies {0.2, 0.9} vs normals {0.1, 0.3}: 0.2>0.1, 0.9>0.1, 0.9>0.3 -> 3/4
    assert row["auc_source"] == 0.75 and math.isnan(row["auc_target"])
    assert r.n_values == 2


# --------------------------------------------------------------------------- error cases
def test_missing_clips(dev):
    root, scores = dev
    fan = dict(FAN)
    del fan["section_00_target_test_normal_0001_vel_8.wav"]
    write_dev_scores(scores, fan=fan)
    with pytest.raises(ScoreFileError) as e:
        evaluate_scores(scores, root)
    msg = str(e.value)
    assert "anomaly_score_fan_section_00_test.csv" in msg
    assert "1 of the 6 test clips of fan section 00 have no row" in msg
    assert "section_00_target_test_normal_0001_vel_8.wav" in msg


def test_unknown_clips(dev):
    root, scores = dev
    write_dev_scores(scores, fan={**FAN, "section_00_source_test_normal_0099_vel_6.wav": 0.3})
    with pytest.raises(ScoreFileError, match=r"anomaly_score_fan_section_00_test\.csv.*1 row\(s\) name clips "
                                             r"that are not test clips.*0099_vel_6\.wav"):
        evaluate_scores(scores, root)


def test_decision_file_missing_clips(dev):
    root, scores = dev
    write_decisions(scores, "fan", 0, list(FAN)[:5], [0] * 5)
    with pytest.raises(ScoreFileError, match=r"decision_result_fan_section_00_test\.csv.*1 of the 6"):
        evaluate_scores(scores, root)


def test_machine_not_in_root(dev):
    root, scores = dev
    write_scores(scores, "pump", 0, ["a.wav"], [1.0])
    with pytest.raises(ScoreFileError, match=r"anomaly_score_pump_section_00_test\.csv.*'pump'.*"
                                             r"no folder.*\['ToyCar', 'fan'\]"):
        evaluate_scores(scores, root)


def test_section_not_in_root(dev):
    root, scores = dev
    write_scores(scores, "fan", 1, ["a.wav"], [1.0])
    with pytest.raises(ScoreFileError, match=r"no test clips of section 01.*\['00'\]"):
        evaluate_scores(scores, root)


def test_no_score_files(dev, tmp_path):
    root, _ = dev
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.csv").write_text("x,1\n")
    with pytest.raises(ScoreFileError, match="no anomaly score files"):
        evaluate_scores(empty, root)


def test_malformed_score_file(dev):
    root, scores = dev
    (scores / "anomaly_score_fan_section_00_test.csv").write_text("a.wav,0.1\nb.wav,oops\n")
    with pytest.raises(ScoreFileError, match="line 2"):
        evaluate_scores(scores, root)


def test_not_a_dataset_root(dev, tmp_path):
    _, scores = dev
    with pytest.raises(DatasetError):
        evaluate_scores(scores, tmp_path / "nowhere")


def test_malformed_test_name(dev):
    root, scores = dev
    touch(root / "dev_data" / "raw" / "fan" / "test" / "clip_0001.wav")
    with pytest.raises(DatasetError, match="clip_0001.wav"):
        evaluate_scores(scores, root)


def test_section_without_target_normals(tmp_path):
    root = tmp_path / "data"
    clips = {f: s for f, s in FAN.items() if "target_test_normal" not in f}
    for f in clips:
        touch(root / "dev_data" / "raw" / "fan" / "test" / f)
    scores = tmp_path / "scores"
    write_scores(scores, "fan", 0, list(clips), list(clips.values()))
    with pytest.raises(DatasetError, match=r"fan section 00.*AUC\(target\).*0 target normal"):
        evaluate_scores(scores, root)


def test_bad_ground_truth_values(tmp_path):
    root = make_eval_root(tmp_path / "data")
    name = "ground_truth_3DPrinter_section_00_test.csv"
    (root / "ground_truth_domain" / name).write_text("".join(f"{f},7\n" for f, *_ in EVAL))
    with pytest.raises(DatasetError, match="unexpected label or domain"):
        evaluate_scores(write_eval_scores(tmp_path / "scores"), root)


# --------------------------------------------------------------------------- display and saving
def test_format_result(dev):
    root, scores = dev
    r = evaluate_scores(scores, root)
    text = format_result(r)
    assert str(r) == text
    lines = text.splitlines()
    assert "AUC (source)" in lines[0] and "pAUC" in lines[0] and "F1" not in lines[0]
    fan = next(line for line in lines if line.lstrip().startswith("fan"))
    assert fan.split() == ["fan", "00", "75.00", "25.00", f"{100 * PAUC_ZERO_AREA:.2f}"]
    assert f"official score (harmonic mean of 6 AUC/pAUC values): {100 * r.official_score:.2f}" in text
    assert "arithmetic mean" in text and "jackknife" in text


def test_save_result(dev, tmp_path):
    root, scores = dev
    r = evaluate_scores(scores, root)
    out = tmp_path / "results" / "run1.csv"
    csv_path, md_path = save_result(r, out)
    assert (csv_path, md_path) == (out, tmp_path / "results" / "run1.md")
    back = pd.read_csv(csv_path, dtype={"section": str})
    pd.testing.assert_frame_equal(back[["machine", "section", "auc_source", "auc_target", "pauc"]],
                                  r.table[["machine", "section", "auc_source", "auc_target", "pauc"]])
    md = md_path.read_text()
    assert "| fan | 00 | 75.00 | 25.00 |" in md
    assert "official score" in md
    assert sorted(p.name for p in out.parent.iterdir()) == ["run1.csv", "run1.md"]  # no temp files
    with pytest.raises(ConfigError, match="CSV path"):
        save_result(r, tmp_path / "x.md")


def test_official_score_with_zero_auc(tmp_path):
    # all fan anomalies below all normals: AUCs 0 -> floored at EPS, score tiny but finite
    root = make_dev_root(tmp_path / "data")
    fan = {f: (-1.0 if "anomaly" in f else 1.0 + i) for i, f in enumerate(FAN)}
    r = evaluate_scores(write_dev_scores(tmp_path / "scores", fan=fan), root)
    assert r.table.set_index("machine").loc["fan", "auc_source"] == 0.0
    assert 0 < r.official_score < 100 * EPS


@pytest.mark.parametrize("year", [2025, 2026])
def test_eval_layout_with_the_organisers_eval_data_list(tmp_path, year):
    # 2025/2026: the organisers' datasets/eval_data_list_<year>.csv maps anonymised to labelled names
    root = make_eval_root(tmp_path / "data", with_truth=False)
    lines = ["3DPrinter"] + [f"{f},section_00_{'target' if d else 'source'}_test_{'anomaly' if y else 'normal'}_"
                             f"{i:04d}_noAttribute.wav" for i, (f, y, d, _) in enumerate(EVAL)]
    (tmp_path / "evaluator").mkdir()
    (tmp_path / "evaluator" / f"eval_data_list_{year}.csv").write_text("\n".join(lines) + "\n")
    r = evaluate_scores(write_eval_scores(tmp_path / "scores"), root, ground_truth=tmp_path / "evaluator")
    row = r.table.iloc[0]
    assert (row["part"], row["n_clips"], row["auc_source"], row["auc_target"]) == ("eval", 6, 0.75, 0.25)
