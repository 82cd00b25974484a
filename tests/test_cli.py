"""The asdkit command line, end to end on a small embedded dataset."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from asdkit.cli import main
from asdkit.errors import ConfigError
from asdkit.evaluation.outputs import write_scores

MACHINES = ["SynFan", "SynValve"]


def test_info_prints_counts(quick_root, capsys):
    assert main(["info", str(quick_root)]) == 0
    out = capsys.readouterr().out
    assert "SynFan" in out and "source/normal" in out and "target/anomaly" in out


def test_prepare_writes_features_and_table(quick_root, tmp_path, capsys):
    out = tmp_path / "prep"
    assert main(["prepare", str(quick_root), "--out", str(out), "--features", "quick", "--cache",
                 str(tmp_path / "cache"), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "clips.csv" in printed and "log_mel_SynFan.npy" in printed
    clips = pd.read_csv(out / "clips.csv")
    X = np.load(out / "log_mel_SynFan.npy")
    n_fan = int((clips["machine"] == "SynFan").sum())
    assert X.shape == (n_fan, 8, 64, 126) and X.dtype == np.float16
    assert sorted(clips.loc[clips["machine"] == "SynFan", "row"]) == list(range(n_fan))
    assert json.loads((out / "features.json").read_text())["config"]["n_mels"] == 64
    assert not list(out.glob(".*.tmp"))
    # a second run is served by the cache and gives the same arrays
    assert main(["prepare", str(quick_root), "--out", str(tmp_path / "prep2"), "--features", "quick",
                 "--cache", str(tmp_path / "cache"), "--device", "cpu"]) == 0
    assert np.array_equal(np.load(tmp_path / "prep2" / "log_mel_SynFan.npy"), X)


def test_evaluate_scores_folder(quick_root, tmp_path, capsys):
    from asdkit import scan_root

    table = scan_root(quick_root)
    test = table[table["split"] == "test"]
    for machine, sub in test.groupby("machine"):
        perfect = (sub["label"] == "anomaly").astype(float).to_numpy()  # an oracle: AUC 1
        write_scores(tmp_path / "scores" / "sub", machine, "00", sub["file"].tolist(), perfect)
    assert main(["evaluate", str(tmp_path / "scores"), "--data", str(quick_root)]) == 0
    out = capsys.readouterr().out
    assert "official score" in out and "100.00" in out
    assert (tmp_path / "scores" / "evaluation.csv").is_file()


@pytest.mark.parametrize("argv, message", [
    (["run", "--data", ".", "--out", "o", "--threads", "0"], "--threads 0"),
    (["info", "/nonexistent/root"], "does not exist"),
    (["synth", "ROOT", "--preset", "huge"], "preset"),
    (["synth", "ROOT", "--machines", "pump"], "pump"),
    (["prepare", "/nonexistent/root", "--out", "OUT"], "does not exist"),
    (["download", "ROOT", "--machines", "pump", "--list"], "pump"),
])
def test_errors_are_one_line_and_exit_2(argv, message, tmp_path, capsys):
    argv = [str(tmp_path / a) if a in ("ROOT", "OUT") else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("asdkit: error:") and message in err and "Traceback" not in err


def test_evaluate_reports_missing_clips(quick_root, tmp_path, capsys):
    from asdkit import scan_root

    test = scan_root(quick_root, machines=["SynFan"]).query("split == 'test'")
    write_scores(tmp_path / "s", "SynFan", "00", test["file"].tolist()[:-3], np.zeros(len(test) - 3))
    assert main(["evaluate", str(tmp_path / "s"), "--data", str(quick_root)]) == 2
    err = capsys.readouterr().err
    assert "anomaly_score_SynFan_section_00_test.csv" in err and "3 of the" in err


def test_download_list_plans_urls(capsys):
    assert main(["download", "ROOT", "--parts", "dev", "--machines", "fan", "--list"]) == 0
    assert "https://zenodo.org/record/10902294/files/dev_fan.zip" in capsys.readouterr().out


@pytest.mark.slow
def test_run_writes_official_files_table_config_and_plots(quick_root, tmp_path, capsys):
    out = tmp_path / "run"
    import torch

    before = torch.get_num_threads()
    try:
        assert main(["run", "--data", str(quick_root), "--system", "baseline-mse", "baseline-mahala", "--preset",
                     "quick", "--out", str(out), "--machines", "SynFan", "--device", "cpu", "--threads", "1"]) == 0
    finally:
        torch.set_num_threads(before)
    printed = capsys.readouterr().out
    assert "official score" in printed
    for system in ("baseline-mse", "baseline-mahala"):
        scores = pd.read_csv(out / system / "anomaly_score_SynFan_section_00_test.csv", header=None)
        decisions = pd.read_csv(out / system / "decision_result_SynFan_section_00_test.csv", header=None)
        assert len(scores) == len(decisions) == 40 and set(decisions[1]) <= {0, 1}
        assert (out / system / "plots" / "roc_SynFan.png").stat().st_size > 1000
        assert (out / system / "plots" / "scores_SynFan.png").stat().st_size > 1000
        assert (out / system / "results.csv").is_file()
    table = pd.read_csv(out / "results.csv", index_col=[0, 1])
    assert list(table.columns) == ["baseline-mse", "baseline-mahala"]
    assert 0 <= table.loc[("official score", "h-mean"), "baseline-mahala"] <= 100
    # one machine section: no leave-one-machine-out interval, but the evaluator's ci95 is there
    assert table.loc[("official score", "95% interval low")].isna().all()
    assert (table.loc[("official score", "evaluator ci95 (+-)")] >= 0).all()
    assert "n/a" in (out / "results.md").read_text()
    config = json.loads((out / "config.json").read_text())
    assert config["preset"] == "quick" and config["models"]["baseline"]["epochs"] > 0
    assert config["torch_threads"] == 1


@pytest.mark.slow
def test_run_with_seeds_gives_mean_and_std_across_seeds(quick_root, tmp_path, capsys):
    import torch

    out = tmp_path / "seeds"
    before = torch.get_num_threads()
    try:
        assert main(["run", "--data", str(quick_root), "--system", "reference-knn", "baseline-mahala", "--preset",
                     "quick", "--out", str(out), "--machines", "SynFan", "SynValve", "--device", "cpu",
                     "--threads", "1", "--seeds", "0", "1", "--no-plots"]) == 0
    finally:
        torch.set_num_threads(before)
    printed = capsys.readouterr().out
    assert "--- seed 1 ---" in printed and "±" in printed
    per_seed = [pd.read_csv(out / f"seed_{s}" / "results.csv", index_col=[0, 1]) for s in (0, 1)]
    assert json.loads((out / "seed_1" / "config.json").read_text())["seed"] == 1
    table = pd.read_csv(out / "results.csv", index_col=[0, 1], header=[0, 1])
    for system in ("reference-knn", "baseline-mahala"):
        both = np.array([t.loc[("official score", "h-mean"), system] for t in per_seed])
        assert table.loc[("official score", "h-mean"), (system, "mean")] == pytest.approx(both.mean())
        assert table.loc[("official score", "h-mean"), (system, "std")] == pytest.approx(both.std(ddof=1))
        auc = np.array([t.loc[("SynFan", "AUC(target)"), system] for t in per_seed])
        assert table.loc[("SynFan", "AUC(target)"), (system, "mean")] == pytest.approx(auc.mean())
    # the reference has no seed; the trained baseline differs between seeds
    assert table.loc[("official score", "h-mean"), ("reference-knn", "std")] == pytest.approx(0)
    assert table.loc[("official score", "h-mean"), ("baseline-mahala", "std")] > 0
    # two machine types: no leave-one-machine-out interval
    assert table.loc[("official score", "95% interval low")].isna().all()
    md = (out / "results.md").read_text()
    assert "seeds 0, 1" in md and " ± " in md
    assert json.loads((out / "config.json").read_text())["seeds"] == [0, 1]
    # the same table from the seed folders alone (seeds run as separate processes)
    (out / "results.csv").unlink()
    assert main(["seeds", str(out)]) == 0
    again = pd.read_csv(out / "results.csv", index_col=[0, 1], header=[0, 1])
    pd.testing.assert_frame_equal(again, table, check_exact=False, rtol=1e-9)
    assert main(["seeds", str(tmp_path / "none")]) == 2


def test_run_seeds_rejects_bad_seeds(quick_root, tmp_path, capsys):
    from asdkit.experiments.seeds import run_seeds

    for seeds in ([], [0, 0], [-1]):
        with pytest.raises(ConfigError, match="distinct non-negative"):
            run_seeds(quick_root, seeds=seeds, out=tmp_path)
    with pytest.raises(SystemExit) as stop:                 # argparse: --seed and --seeds exclude each other
        main(["run", "--data", str(quick_root), "--out", str(tmp_path), "--seed", "3", "--seeds", "1"])
    assert stop.value.code == 2 and "not allowed with argument --seed" in capsys.readouterr().err


def test_run_rejects_unknown_system(quick_root, tmp_path, capsys):
    assert main(["run", "--data", str(quick_root), "--system", "oracle", "--out", str(tmp_path)]) == 2
    assert "unknown system" in capsys.readouterr().err


@pytest.mark.slow
def test_demo_runs_every_system_and_prints_the_table(quick_root, tmp_path, capsys):
    from asdkit.experiments.systems import SYSTEMS

    out = tmp_path / "demo"
    assert main(["demo", "--data", str(quick_root), "--out", str(out), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert f"using the dataset already at {quick_root}" in printed
    assert "official score" in printed and all(name in printed for name in SYSTEMS)
    table = pd.read_csv(out / "results.csv", index_col=[0, 1])
    assert set(MACHINES) <= set(table.index.get_level_values(0))
    assert list(table.columns) == list(SYSTEMS)


@pytest.mark.slow
def test_run_oevae_uses_the_other_machine_types_as_outliers(quick_root, tmp_path, capsys):
    out = tmp_path / "oevae"
    assert main(["run", "--data", str(quick_root), "--system", "oevae", "oevae-alpha", "oevae-beta", "--preset",
                 "quick", "--out", str(out), "--machines", "SynFan", "--device", "cpu", "--no-plots"]) == 0
    table = pd.read_csv(out / "results.csv", index_col=[0, 1])
    assert list(table.columns) == ["oevae", "oevae-alpha", "oevae-beta"]
    for system in table.columns:
        assert len(pd.read_csv(out / system / "anomaly_score_SynFan_section_00_test.csv", header=None)) == 40
    config = json.loads((out / "config.json").read_text())
    assert config["models"]["oevae"]["features"] == "quick"
    assert any((out / ".feature_cache").iterdir())                  # features were cached for the run


def test_run_oevae_needs_another_machine_type(tmp_path, capsys):
    root = tmp_path / "one"
    assert main(["synth", str(root), "--machines", "SynValve"]) == 0
    capsys.readouterr()
    assert main(["run", "--data", str(root), "--system", "oevae", "--out", str(tmp_path / "o")]) == 2
    assert "other machine type" in capsys.readouterr().err


@pytest.mark.slow
def test_run_classifier_and_ensemble(quick_root, tmp_path, capsys):
    out = tmp_path / "ens"
    assert main(["run", "--data", str(quick_root), "--system", "classifier", "ensemble", "--preset", "quick",
                 "--out", str(out), "--device", "cpu", "--no-plots", "--threads", "1", "--machines", *MACHINES]) == 0
    printed = capsys.readouterr().out
    assert "oevae      SynFan: fitted on" in printed       # the ensemble's other member
    table = pd.read_csv(out / "results.csv", index_col=[0, 1])
    assert list(table.columns) == ["classifier", "ensemble"]
    assert set(table.index.get_level_values(0)) >= set(MACHINES)
    for system in table.columns:
        for machine in MACHINES:
            scores = pd.read_csv(out / system / f"anomaly_score_{machine}_section_00_test.csv", header=None)
            assert len(scores) == 40 and scores[1].notna().all()
    assert not (out / "oevae").exists()                 # fitted for the ensemble, not written
    # the ensemble is neither member alone: its ranking differs from the classifier's
    clf = pd.read_csv(out / "classifier" / "anomaly_score_SynFan_section_00_test.csv", header=None)[1]
    ens = pd.read_csv(out / "ensemble" / "anomaly_score_SynFan_section_00_test.csv", header=None)[1]
    assert 0.2 < clf.corr(ens, method="spearman") < 0.99
    # one network for the whole root (every machine type's training clips, also those not run), trained once
    config = json.loads((out / "config.json").read_text())
    assert config["models"]["classifier"]["branches"] == ["fft", "mel", "phase"]
    assert printed.count("classifier root model (dev): trained on 280 clips of 4 machine types") == 1
    assert "classifier/root/dev" in config["timings"]


@pytest.mark.slow
def test_saved_models_score_new_clips_like_the_run(quick_root, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "--data", str(quick_root), "--system", "reference-knn", "baseline-mahala", "--preset",
                 "quick", "--out", str(out), "--machines", "SynValve", "--device", "cpu", "--no-plots",
                 "--save-models"]) == 0
    capsys.readouterr()
    for family, system, score in (("reference", "reference-knn", []), ("baseline", "baseline-mahala",
                                                                        ["--score", "mahala"])):
        model = out / "models" / family / "SynValve"
        assert (model / "detector.json").is_file()
        assert main(["score", "--model", str(model), "--data", str(quick_root), "--out", str(tmp_path / family),
                     *score]) == 0
        printed = capsys.readouterr().out
        assert "official score" in printed and "scored 40 clips" in printed
        name = "anomaly_score_SynValve_section_00_test.csv"
        assert (tmp_path / family / name).read_bytes() == (out / system / name).read_bytes()
    # clips named one by one, no labels known: scores only
    clips = sorted((quick_root / "dev_data" / "raw" / "SynValve" / "test").glob("*.wav"))[:3]
    assert main(["score", "--model", str(out / "models" / "reference" / "SynValve"), "--clips", *map(str, clips),
                 "--out", str(tmp_path / "few")]) == 0
    assert len(pd.read_csv(tmp_path / "few" / "anomaly_score_SynValve_section_00_test.csv", header=None)) == 3


def test_score_errors_are_one_line(tmp_path, capsys):
    assert main(["score", "--model", str(tmp_path), "--clips", "x.wav", "--out", str(tmp_path / "o")]) == 2
    assert "holds no saved asdkit detector" in capsys.readouterr().err


@pytest.mark.slow
def test_in_memory_evaluation_equals_evaluating_the_written_files(quick_root, tmp_path, capsys):
    from asdkit.evaluation.evaluate import evaluate_scores

    out = tmp_path / "run"
    assert main(["run", "--data", str(quick_root), "--system", "reference-knn", "--out", str(out),
                 "--no-plots"]) == 0
    table = pd.read_csv(out / "results.csv", index_col=[0, 1])
    from_files = evaluate_scores(out / "reference-knn", quick_root)
    assert table.loc[("official score", "h-mean"), "reference-knn"] == pytest.approx(100 * from_files.official_score,
                                                                                      abs=1e-9)
    per_section = pd.read_csv(out / "reference-knn" / "results.csv")
    cols = ["auc_source", "auc_target", "pauc", "f1_source", "f1_target"]
    np.testing.assert_allclose(per_section[cols].to_numpy(), from_files.table[cols].to_numpy(), atol=1e-12)


def test_synth_years_and_info_shows_the_channels(tmp_path, capsys):
    assert main(["synth", str(tmp_path / "y26"), "--year", "2026", "--machines", "SynValve"]) == 0
    capsys.readouterr()
    assert main(["info", str(tmp_path / "y26")]) == 0
    out = capsys.readouterr().out
    assert "channels" in out and "SynValve" in out
    line = next(x for x in out.splitlines() if x.lstrip().startswith("SynValve"))
    assert line.split()[-3:] == ["2", "16000", "6.0"]
    assert main(["synth", str(tmp_path / "y25"), "--year", "2025", "--machines", "SynFan"]) == 0
    assert "supplemental" in capsys.readouterr().out


def test_run_with_a_policy_the_clips_cannot_meet_is_one_clear_line(quick_root, tmp_path, capsys):
    assert main(["run", "--data", str(quick_root), "--system", "reference-knn", "--out", str(tmp_path / "r"),
                 "--machines", "SynFan", "--channels", "far", "--no-plots"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("asdkit: error:") and "is mono" in err and "--channels auto" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as stop:
        main(["run", "--data", str(quick_root), "--system", "reference-knn", "--out", str(tmp_path / "r"),
              "--channels", "left"])
    assert stop.value.code == 2 and "invalid choice: 'left'" in capsys.readouterr().err


def test_compare_runs_side_by_side(tmp_path, capsys):
    from asdkit.experiments.ablation import compare_runs

    idx = pd.MultiIndex.from_tuples([("official score", "h-mean"), ("harmonic mean", "AUC(source)"),
                                     ("harmonic mean", "AUC(target)")], names=["machine", "metric"])
    for name, base in (("auto", 60.0), ("both", 63.5)):
        (tmp_path / name).mkdir()
        pd.DataFrame({"reference-knn": [base, 80.0, 50.0], "classifier": [base + 1, 70.0, 55.0]},
                     index=idx).to_csv(tmp_path / name / "results.csv")
    table = compare_runs({"auto": tmp_path / "auto", "both": tmp_path / "both"})
    assert table.loc[("official score", "classifier"), "both - auto"] == 3.5
    assert table.loc[("h-mean AUC(target)", "reference-knn"), "both - auto"] == 0.0
    assert main(["compare", str(tmp_path / "auto"), str(tmp_path / "both")]) == 0
    assert "both - auto" in capsys.readouterr().out
    assert main(["compare", str(tmp_path / "auto"), str(tmp_path / "missing")]) == 2
    assert "results.csv" in capsys.readouterr().err


def test_version_flag(capsys):
    from asdkit import __version__
    from asdkit.cli import main

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"asdkit {__version__}"
