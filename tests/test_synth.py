"""Tests of asdkit.synth (the embedded synthetic dataset) and asdkit.models.reference."""
from __future__ import annotations

import csv
import hashlib
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from asdkit.data.dataset import COLUMNS, read_attributes_csv, scan_root
from asdkit.data.names import parse_filename
from asdkit.errors import ConfigError, DatasetError
from asdkit.experiments.calibration import synthetic_aucs
from asdkit.models.reference import ReferenceKNN, clip_statistics
from asdkit.synth import dataset as synth
from asdkit.synth.dataset import MACHINES, PRESETS, SynthPreset, generate_clip, synthesize

#: A very small preset for the byte-level tests: 13 one-second clips per machine type.
TINY = SynthPreset(n_source_train=3, n_target_train=2, n_test_per_cell=2, clip_seconds=1.0)

#: Machine names of the real DCASE Task 2 data (2020-2024), which ours must not reuse.
DCASE_MACHINES = {
    "bearing", "fan", "gearbox", "slider", "toycar", "toytrain", "valve", "pump", "toyconveyor", "3dprinter",
    "aircompressor", "scanner", "toycircuit", "hoveringdrone", "hairdryer", "toothbrush", "roboticarm",
    "brushlessmotor", "shaker", "toydrone", "toynscale", "vacuum", "bandsealer", "coffeegrinder",
    "electricfan", "grinder", "toytank", "toynscaletrain",
}


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """The full quick dataset, written once for the module."""
    root = tmp_path_factory.mktemp("synth_quick")
    table = synthesize(root, preset="quick", seed=0, progress=False)
    return root, table


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny preset with all machines, seed 0."""
    root = tmp_path_factory.mktemp("synth_tiny")
    synthesize(root, preset=TINY, seed=0, progress=False)
    return root


# --------------------------------------------------------------------------- registry and presets
def test_registry_has_four_physics_and_a_concealed_machine():
    assert len(MACHINES) >= 4
    assert any(not spec.attributes_written for spec in MACHINES.values())
    assert all(spec.attributes_written for spec in list(MACHINES.values())[:3])
    ids = [spec.machine_id for spec in MACHINES.values()]
    assert len(set(ids)) == len(ids)
    for name, spec in MACHINES.items():
        assert name == spec.name and name.lower() not in DCASE_MACHINES
        assert len(spec.anomalies) >= 2


def test_target_conditions_differ_from_source():
    for spec in MACHINES.values():
        source = {tuple(sorted(c.items())) for c in spec.conditions("source")}
        target = {tuple(sorted(c.items())) for c in spec.conditions("target")}
        assert source and target and not source & target, spec.name
        if spec.attributes_written:
            for cond in spec.conditions("source") + spec.conditions("target"):
                assert all("_" not in k and "_" not in v and k and v for k, v in cond.items())


def test_target_training_clips_spread_over_many_conditions():
    # like real DCASE targets: the ten target training clips cover eight
    # conditions, so their own statistics describe the domain loosely
    from asdkit.synth.dataset import clip_plan
    for spec in MACHINES.values():
        assert len(spec.conditions("target")) >= 8, spec.name
        conds = {tuple(sorted(c.items())) for split, domain, _, _, c in clip_plan(spec, PRESETS["paper"])
                 if split == "train" and domain == "target"}
        assert len(conds) >= 8, spec.name


def test_presets():
    assert PRESETS["paper"] == SynthPreset(990, 10, 50, 10.0)
    quick = PRESETS["quick"]
    assert quick.sr == 16000 and quick.clip_seconds >= 4.0
    assert quick.n_source_train < 990 and quick.n_target_train == 10
    with pytest.raises(ConfigError, match="n_source_train"):
        SynthPreset(0, 10, 10, 6.0)
    with pytest.raises(ConfigError, match="clip_seconds"):
        SynthPreset(10, 10, 10, 0.2)


# --------------------------------------------------------------------------- the written dataset
def test_layout_counts_match_preset(quick):
    root, _ = quick
    preset = PRESETS["quick"]
    table = scan_root(root)
    assert sorted(table["machine"].unique()) == sorted(MACHINES)
    assert (table["part"] == "dev").all() and (table["section"] == "00").all()
    counts = table.groupby(["machine", "split", "domain", "label"]).size()
    for machine in MACHINES:
        assert counts[(machine, "train", "source", "normal")] == preset.n_source_train
        assert counts[(machine, "train", "target", "normal")] == preset.n_target_train
        for domain in ("source", "target"):
            for label in ("normal", "anomaly"):
                assert counts[(machine, "test", domain, label)] == preset.n_test_per_cell
        assert ((table["machine"] == machine) & (table["split"] == "train")
                & (table["label"] == "anomaly")).sum() == 0
    # indices run 0000.. within each cell
    for _, cell in table.groupby(["machine", "split", "domain", "label"]):
        assert sorted(cell["index"]) == list(range(len(cell)))
    assert not list((root / "dev_data" / "raw").glob(".*")), "temporary folders were left behind"


def test_returned_table_matches_scan(quick):
    root, table = quick
    scanned = scan_root(root)
    assert list(table.columns[:len(COLUMNS)]) == COLUMNS
    assert {"condition", "anomaly", "severity"} <= set(table.columns)
    pd.testing.assert_frame_equal(table[COLUMNS].reset_index(drop=True), scanned[COLUMNS].reset_index(drop=True),
                                  check_dtype=False)
    anomalies = table[table["label"] == "anomaly"]
    assert anomalies["anomaly"].notna().all() and anomalies["severity"].between(0, 1).all()
    assert table.loc[table["label"] == "normal", "anomaly"].isna().all()
    for machine, sub in anomalies.groupby("machine"):
        assert set(sub["anomaly"]) <= set(MACHINES[machine].anomalies)


def test_names_and_attribute_csv_agree(quick):
    root, table = quick
    for machine, spec in MACHINES.items():
        mdir = root / "dev_data" / "raw" / machine
        path = mdir / "attributes_00.csv"
        with open(path, newline="") as fh:
            rows = list(csv.reader(fh))
        header = rows[0]
        assert header[0] == "file_name" and header[1:3] == ["d1p", "d1v"]
        assert header[1:] == [f"d{i}{c}" for i in range(1, len(header) // 2 + 1) for c in "pv"]
        sub = table[table["machine"] == machine]
        assert len(rows) - 1 == len(sub)
        listed = {row[0] for row in rows[1:]}
        assert listed == {f"{machine}/{s}/{f}" for s, f in zip(sub["split"], sub["file"])}
        from_csv = read_attributes_csv(path)
        for file in sub["file"]:
            name = parse_filename(file)
            assert from_csv[file] == name.attributes
            if spec.attributes_written:
                assert name.has_attributes is True and sorted(name.attributes) == sorted(spec.params)
            else:
                assert file.endswith("_noAttribute.wav") and name.has_attributes is False
        if not spec.attributes_written:
            assert all(row[1:] == ["noAttribute", ""] for row in rows[1:])


def test_target_attributes_differ_in_the_data(quick):
    _, table = quick
    for machine, sub in table.groupby("machine"):
        source = {tuple(sorted(a.items())) for a in sub.loc[sub["domain"] == "source", "attributes"]}
        target = {tuple(sorted(a.items())) for a in sub.loc[sub["domain"] == "target", "attributes"]}
        if MACHINES[machine].attributes_written:
            assert len(source) >= 2 and not source & target
        else:
            assert source == target == {()}
            hidden_s = {tuple(sorted(c.items())) for c in sub.loc[sub["domain"] == "source", "condition"]}
            hidden_t = {tuple(sorted(c.items())) for c in sub.loc[sub["domain"] == "target", "condition"]}
            assert not hidden_s & hidden_t  # the shift is physical, though concealed


def test_wav_properties(quick):
    root, table = quick
    preset = PRESETS["quick"]
    for path in table["path"]:
        info = sf.info(path)
        assert (info.samplerate, info.channels, info.subtype, info.format) == (16000, 1, "PCM_16", "WAV")
        assert info.frames == preset.n_samples
    for path in table.groupby("machine")["path"].head(15):
        data, _ = sf.read(path, dtype="int16")
        assert np.abs(data.astype(np.int32)).max() < 32000  # headroom: no clipping
        assert np.abs(data).max() > 300  # and not silent
        y, _ = sf.read(path, dtype="float32")
        assert np.isfinite(y).all()


# --------------------------------------------------------------------------- reproducibility
def test_same_seed_gives_identical_bytes(tiny, tmp_path):
    synthesize(tmp_path, preset=TINY, seed=0, progress=False)
    first, second = _hashes(tiny), _hashes(tmp_path)
    assert first == second
    assert len(first) == len(MACHINES) * (TINY.clips_per_machine + 1)


def test_other_seed_differs(tiny, tmp_path):
    synthesize(tmp_path, preset=TINY, seed=1, machines=["SynFan"], progress=False)
    ours = _hashes(tmp_path)
    theirs = {k: v for k, v in _hashes(tiny).items() if "SynFan" in k}
    assert ours.keys() == theirs.keys()
    wavs = [k for k in ours if k.endswith(".wav")]
    assert all(ours[k] != theirs[k] for k in wavs)


def test_subset_of_machines_gives_the_same_bytes(tiny, tmp_path):
    table = synthesize(tmp_path, preset=TINY, seed=0, machines=["SynValve", "SynFan"], progress=False)
    assert sorted(table["machine"].unique()) == ["SynFan", "SynValve"]
    subset = _hashes(tmp_path)
    full = {k: v for k, v in _hashes(tiny).items() if "SynValve" in k or "SynFan" in k}
    assert subset == full


def test_generate_clip_in_memory():
    y = generate_clip("SynPress", domain="target", label="anomaly", rng=np.random.default_rng(3), seconds=2.0)
    assert y.shape == (32000,) and y.dtype == np.float32
    assert np.isfinite(y).all() and 0.0 < np.abs(y).max() < 1.0
    again = generate_clip("SynPress", domain="target", label="anomaly", rng=np.random.default_rng(3), seconds=2.0)
    assert np.array_equal(y, again)
    y, info = generate_clip("SynFan", label="anomaly", anomaly="bearing", severity=0.5,
                            attributes={"spd": "1450rpm", "mic": "2"}, rng=0, seconds=1.0, return_info=True)
    assert info == {"condition": {"spd": "1450rpm", "mic": "2"}, "anomaly": "bearing", "severity": 0.5}
    _, info = generate_clip("SynValve", domain="target", rng=1, seconds=1.0, return_info=True)
    assert info["condition"] in MACHINES["SynValve"].conditions("target") and info["anomaly"] is None


def test_same_seed_with_and_without_anomaly_is_the_same_machine():
    normal = generate_clip("SynGearbox", rng=7, seconds=2.0)
    faint = generate_clip("SynGearbox", label="anomaly", anomaly="lubrication", severity=0.0, rng=7, seconds=2.0)
    strong = generate_clip("SynGearbox", label="anomaly", anomaly="lubrication", severity=1.0, rng=7, seconds=2.0)
    corr = [np.corrcoef(normal, other)[0, 1] for other in (faint, strong)]
    assert corr[0] > 0.95 and corr[1] < corr[0]


# --------------------------------------------------------------------------- errors and atomic writes
def test_bad_preset_machine_and_arguments(tmp_path):
    with pytest.raises(ConfigError, match="quick"):
        synthesize(tmp_path, preset="huge", progress=False)
    with pytest.raises(ConfigError, match="SynFan"):
        synthesize(tmp_path, machines=["fan"], progress=False)
    with pytest.raises(ConfigError, match="seed"):
        synthesize(tmp_path, preset=TINY, seed=-1, progress=False)
    with pytest.raises(ConfigError, match="SynFan"):
        generate_clip("pump")
    with pytest.raises(ConfigError, match="domain"):
        generate_clip("SynFan", domain="other")
    with pytest.raises(ConfigError, match="anomaly"):
        generate_clip("SynFan", label="anomaly", anomaly="leak")
    with pytest.raises(ConfigError, match="spd"):
        generate_clip("SynFan", attributes={"mic": "1"})
    with pytest.raises(ConfigError, match="mic"):
        generate_clip("SynFan", attributes={"spd": "1450rpm", "mic": "9"})
    with pytest.raises(ConfigError, match="rpm"):
        generate_clip("SynFan", attributes={"spd": "fast", "mic": "1"})
    assert not (tmp_path / "dev_data").exists() or not any((tmp_path / "dev_data" / "raw").iterdir())


def test_existing_machine_needs_overwrite(tmp_path):
    synthesize(tmp_path, preset=TINY, machines=["SynFan"], progress=False)
    before = _hashes(tmp_path)
    with pytest.raises(DatasetError, match="overwrite"):
        synthesize(tmp_path, preset=TINY, machines=["SynFan"], seed=1, progress=False)
    assert _hashes(tmp_path) == before
    synthesize(tmp_path, preset=TINY, machines=["SynFan"], seed=1, progress=False, overwrite=True)
    after = _hashes(tmp_path)
    assert after.keys() == before.keys() and after != before
    assert [p.name for p in (tmp_path / "dev_data" / "raw").iterdir()] == ["SynFan"]


def test_interrupted_run_leaves_no_half_written_machine(tmp_path, monkeypatch):
    real_write = synth._write_wav
    calls = {"n": 0}

    def failing_write(path, y, sr):
        calls["n"] += 1
        if calls["n"] > TINY.clips_per_machine + 5:  # the first machine completes, the second fails
            raise KeyboardInterrupt
        real_write(path, y, sr)

    monkeypatch.setattr(synth, "_write_wav", failing_write)
    with pytest.raises(KeyboardInterrupt):
        synthesize(tmp_path, preset=TINY, machines=["SynFan", "SynPress"], progress=False)
    raw = tmp_path / "dev_data" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == ["SynFan"]
    assert len(list((raw / "SynFan").rglob("*.wav"))) == TINY.clips_per_machine
    assert not list(raw.rglob("*.part"))


# --------------------------------------------------------------------------- reference detector
def test_clip_statistics_and_reference_detector(rng, write_wav):
    noise = rng.standard_normal((6, 32000))
    feats = clip_statistics(noise, sr=16000, n_mels=32)
    assert feats.shape == (6, 64) and np.isfinite(feats).all()
    # amplitude-standardised: the level does not matter
    np.testing.assert_allclose(clip_statistics(noise * 100.0, n_mels=32), feats, atol=1e-6)
    train = [write_wav(f"fan/train/section_00_source_train_normal_{i:04d}_a_1.wav", 0.1 * y)
             for i, y in enumerate(noise)]
    det = ReferenceKNN(n_neighbors=2, n_mels=32)
    assert det.fit(train) is det
    tone = np.sin(2 * np.pi * 1000 * np.arange(32000) / 16000) + 0.1 * rng.standard_normal(32000)
    quiet = 0.1 * (noise[0] + 0.01 * rng.standard_normal(32000))
    test = [write_wav("fan/test/section_00_source_test_normal_0000_a_1.wav", quiet),
            write_wav("fan/test/section_00_source_test_anomaly_0000_a_1.wav", 0.1 * tone)]
    scores = det.score_samples(test)
    assert scores.shape == (2,) and scores[1] > scores[0]  # higher = more anomalous
    with pytest.raises(ConfigError):
        ReferenceKNN().score_samples(test)
    with pytest.raises(ConfigError):
        clip_statistics(noise[0])


@pytest.mark.slow
def test_calibration_reference_detector_auc():
    """Every machine is detectable but not trivially, and the domain shift hurts.

    The dataset is generated in memory at reduced counts (300 + 10 training
    clips, 50 per test cell, 5-s clips, seed 0), two machine types per process.
    At these counts seeds 0-4 all give AUC(source) 0.68-0.84 and gaps
    AUC(source) - AUC(target) of 0.10-0.36 (the official pooling: all anomalies
    in both AUCs); for the paper counts see ``python bench/bench_synth.py --calibrate``.
    """
    preset = SynthPreset(300, 10, 50, 5.0)
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        aucs = list(pool.map(partial(synthetic_aucs, preset=preset, seed=0), list(MACHINES)))
    results = dict(zip(MACHINES, aucs))
    for machine, (auc_s, auc_t) in results.items():
        assert 0.62 <= auc_s <= 0.95, (machine, results)
        assert auc_t <= auc_s - 0.05, (machine, results)
