import pytest

from asdkit import DatasetError, FileNameError, scan_root, summarize
from asdkit.data.dataset import attribute_frame


def touch(root, rel):
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"")
    return p


@pytest.fixture
def dcase_root(tmp_path):
    """Empty files named as the organisers' layout (scan_root only reads names)."""
    dev = "dev_data/raw"
    for i in range(3):
        touch(tmp_path, f"{dev}/fan/train/section_00_source_train_normal_{i:04d}_vel_6_loc_A.wav")
    touch(tmp_path, f"{dev}/fan/train/section_00_target_train_normal_0000_vel_10_loc_B.wav")
    for d in ("source", "target"):
        for lab in ("normal", "anomaly"):
            touch(tmp_path, f"{dev}/fan/test/section_00_{d}_test_{lab}_0000_vel_6_loc_A.wav")
            touch(tmp_path, f"{dev}/gearbox/test/section_00_{d}_test_{lab}_0000_noAttribute.wav")
    touch(tmp_path, f"{dev}/gearbox/train/section_00_source_train_normal_0000_noAttribute.wav")
    # evaluation part with anonymised test names and the evaluator's ground truth
    touch(tmp_path, "eval_data/raw/Scanner/train/section_00_source_train_normal_0000_a_1.wav")
    for i in range(1, 5):
        touch(tmp_path, f"eval_data/raw/Scanner/test/section_00_{i:04d}.wav")
    gt = tmp_path / "ground_truth_data"
    gt.mkdir()
    (gt / "ground_truth_Scanner_section_00_test.csv").write_text(
        "section_00_0001.wav,0\nsection_00_0002.wav,1\nsection_00_0003.wav,0\nsection_00_0004.wav,1\n")
    gd = tmp_path / "ground_truth_domain"
    gd.mkdir()
    (gd / "ground_truth_Scanner_section_00_test.csv").write_text(
        "section_00_0001.wav,0\nsection_00_0002.wav,0\nsection_00_0003.wav,1\nsection_00_0004.wav,1\n")
    (tmp_path / "eval_data/raw/Scanner/attributes_00.csv").write_text(
        "file_name,d1p,d1v\nScanner/test/section_00_0001.wav,a,2\n")
    return tmp_path


def test_scan_root_tidy_table(dcase_root):
    t = scan_root(dcase_root)
    assert set(t["machine"]) == {"fan", "gearbox", "Scanner"}
    assert len(t) == 4 + 4 + 1 + 4 + 4 + 1
    fan_train = t[(t.machine == "fan") & (t.split == "train")]
    assert fan_train["domain"].tolist().count("target") == 1
    assert fan_train.iloc[0]["attributes"] == {"vel": "6", "loc": "A"}
    gear = t[t.machine == "gearbox"]
    assert (gear["has_attributes"] == False).all()  # noqa: E712
    assert set(t.loc[t.machine == "Scanner", "part"]) == {"eval"}
    assert set(t.loc[t.machine == "fan", "part"]) == {"dev"}


def test_scan_root_joins_ground_truth_and_attributes(dcase_root):
    t = scan_root(dcase_root).set_index("file")
    assert t.loc["section_00_0002.wav", "label"] == "anomaly"
    assert t.loc["section_00_0003.wav", "domain"] == "target"
    assert t.loc["section_00_0001.wav", "attributes"] == {"a": "2"}


def test_scan_root_without_ground_truth_leaves_unknowns(dcase_root, tmp_path_factory):
    other = tmp_path_factory.mktemp("nogt")
    t = scan_root(dcase_root, ground_truth=other)
    anon = t[t.pattern == "anonymous"]
    assert anon["label"].isna().all() and anon["domain"].isna().all()
    s = summarize(t)
    assert s.loc[("Scanner", "eval", "test"), "?/?"] == 4


def test_summary_counts(dcase_root):
    s = summarize(scan_root(dcase_root, machines=["fan"]))
    assert s.loc[("fan", "dev", "train"), "source/normal"] == 3
    assert s.loc[("fan", "dev", "test"), "total"] == 4


def test_attribute_frame(dcase_root):
    t = scan_root(dcase_root, machines=["fan"])
    a = attribute_frame(t)
    assert {"attr_vel", "attr_loc"} <= set(a.columns)


def test_any_layout_2020(tmp_path):
    for name in ("normal_id_00_00000000.wav", "anomaly_id_00_00000001.wav"):
        touch(tmp_path, f"dev_data/ToyCar/test/{name}")
    touch(tmp_path, "dev_data/ToyCar/train/normal_id_00_00000002.wav")
    t = scan_root(tmp_path)
    assert t["machine"].unique().tolist() == ["ToyCar"]
    assert set(t["split"]) == {"train", "test"}
    assert t.loc[t.file.str.startswith("anomaly"), "label"].item() == "anomaly"


def test_bad_roots(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        scan_root(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no machine folders"):
        scan_root(tmp_path / "empty")


def test_unknown_machine(dcase_root):
    with pytest.raises(DatasetError, match="not found"):
        scan_root(dcase_root, machines=["pump"])


def test_unknown_file_name_pattern(dcase_root):
    bad = touch(dcase_root, "dev_data/raw/fan/train/recording_17.wav")
    with pytest.raises(FileNameError, match="recording_17.wav"):
        scan_root(dcase_root)
    with pytest.warns(UserWarning, match="skipped"):
        t = scan_root(dcase_root, strict=False)
    assert t.attrs["rejected"] == [str(bad)]
    assert "recording_17.wav" not in set(t["file"])


def test_ground_truth_attributes_fill_labels_and_domains(tmp_path):
    for i in (1, 2):
        touch(tmp_path, f"eval_data/raw/Scanner/test/section_00_{i:04d}.wav")
    ga = tmp_path / "gt" / "ground_truth_attributes"
    ga.mkdir(parents=True)
    (ga / "ground_truth_Scanner_section_00_test.csv").write_text(
        "section_00_0001.wav,section_00_target_test_anomaly_0001_mdl_B_spd_2\n"
        "section_00_0002.wav,section_00_source_test_normal_0007_mdl_A_spd_1\n")
    t = scan_root(tmp_path).set_index("file")
    assert t.loc["section_00_0001.wav", ["label", "domain"]].tolist() == ["anomaly", "target"]
    assert t.loc["section_00_0002.wav", ["label", "domain"]].tolist() == ["normal", "source"]


def test_part_from_a_root_inside_eval_data(dcase_root):
    t = scan_root(dcase_root / "eval_data" / "raw")
    assert set(t["part"]) == {"eval"}


def test_free_form_attribute_tails_do_not_stop_the_scan(tmp_path):
    # real DCASE 2021 development names carry tails that are not param_value pairs
    for i, tail in enumerate(["strength_1_ambient", "strength_2_ambient"]):
        touch(tmp_path, f"dev_data/raw/pump/train/section_00_source_train_normal_{i:04d}_{tail}.wav")
    touch(tmp_path, "dev_data/raw/pump/train/section_00_target_train_normal_0000_strength_3_ambient.wav")
    t = scan_root(tmp_path)
    assert len(t) == 3 and t.attrs["rejected"] == []
    assert sorted(a["raw"] for a in t["attributes"]) == ["strength_1_ambient", "strength_2_ambient",
                                                         "strength_3_ambient"]


def test_symbolically_linked_machine_folders_are_followed(tmp_path):
    elsewhere = tmp_path / "other_disk"
    touch(elsewhere, "fan/train/section_00_source_train_normal_0000_vel_6.wav")
    touch(elsewhere, "fan/test/section_00_source_test_anomaly_0000_vel_6.wav")
    raw = tmp_path / "root" / "dev_data" / "raw"
    raw.mkdir(parents=True)
    (raw / "fan").symlink_to(elsewhere / "fan", target_is_directory=True)
    (raw / "loop").symlink_to(tmp_path / "root", target_is_directory=True)      # a cycle is walked once
    t = scan_root(tmp_path / "root")
    assert set(t["machine"]) == {"fan"} and sorted(t["split"]) == ["test", "train"]


# --------------------------------------------------------------------------- DCASE 2025 and 2026


@pytest.fixture
def root_2025(tmp_path):
    """A 2025 development machine folder with supplemental clips of both kinds."""
    dev = "dev_data/raw/fan"
    for i in range(2):
        touch(tmp_path, f"{dev}/train/section_00_source_train_normal_{i:04d}_noAttribute.wav")
        touch(tmp_path, f"{dev}/supplemental/section_00_machine_source_{i:04d}_noAttribute.wav")
        touch(tmp_path, f"{dev}/supplemental/section_00_noise_source_{i:04d}_noAttribute.wav")
    touch(tmp_path, f"{dev}/supplemental/section_00_machine_0100_.wav")         # the organisers' listing
    touch(tmp_path, f"{dev}/test/section_00_target_test_anomaly_0000_noAttribute.wav")
    return tmp_path


def test_supplemental_clips_are_their_own_split(root_2025):
    t = scan_root(root_2025)
    sup = t[t["split"] == "supplemental"]
    assert len(sup) == 5 and set(sup["label"]) == {"machine", "noise"}
    assert set(sup["pattern"]) == {"supplemental"}
    # never a training normal, never a test clip
    assert set(t[t["split"] == "train"]["label"]) == {"normal"} and len(t[t["split"] == "train"]) == 2
    assert len(t[t["split"] == "test"]) == 1
    assert summarize(t).loc[("fan", "dev", "supplemental"), "total"] == 5


@pytest.mark.parametrize("folder, name, words", [
    ("test", "section_00_noise_source_0000_noAttribute.wav", "supplemental .*noise-only.* test clip"),
    ("train", "section_00_machine_source_0003_noAttribute.wav", "training normal"),
    ("supplemental", "section_00_source_train_normal_0009_noAttribute.wav", "not named as a supplemental"),
])
def test_supplemental_clip_in_the_wrong_folder(root_2025, folder, name, words):
    bad = touch(root_2025, f"dev_data/raw/fan/{folder}/{name}")
    with pytest.raises(FileNameError, match=words):
        scan_root(root_2025)
    with pytest.warns(UserWarning, match="skipped"):
        t = scan_root(root_2025, strict=False)
    assert t.attrs["rejected"] == [str(bad)] and str(bad.resolve()) not in set(t["path"])


def test_clip_table_of_paths_keeps_supplemental_apart(root_2025):
    from asdkit.data.dataset import clip_table

    sup = sorted((root_2025 / "dev_data/raw/fan/supplemental").iterdir())
    t = clip_table(sup)
    assert set(t["split"]) == {"supplemental"} and set(t["machine"]) == {"fan"}
    wrong = touch(root_2025, "dev_data/raw/fan/test/section_00_machine_source_0007_noAttribute.wav")
    with pytest.raises(FileNameError, match="supplemental"):
        clip_table([wrong])


def test_eval_data_list_of_2025_joins_labels_and_domains(tmp_path):
    # the organisers' datasets/eval_data_list_2025.csv: a machine line, then anonymised,original rows
    for i in range(3):
        touch(tmp_path, f"eval_data/raw/AutoTrash/test/section_00_{i:04d}.wav")
    touch(tmp_path, "eval_data/raw/ToyPet/test/section_00_0000.wav")
    (tmp_path / "eval_data_list_2025.csv").write_text(
        "AutoTrash\n"
        "section_00_0000.wav,section_00_target_test_anomaly_0012_id_C1_spd_2_mic_2.wav\n"
        "section_00_0001.wav,section_00_target_test_normal_0031_id_C1_spd_2_mic_2.wav\n"
        "section_00_0002.wav,section_00_source_test_normal_0031_id_B2_spd_1_mic_2.wav\n"
        "ToyPet\n"
        "section_00_0000.wav,section_00_source_test_anomaly_0001_noAttribute.wav\n")
    t = scan_root(tmp_path).set_index(["machine", "file"])
    assert t.loc[("AutoTrash", "section_00_0000.wav"), ["label", "domain"]].tolist() == ["anomaly", "target"]
    assert t.loc[("AutoTrash", "section_00_0002.wav"), ["label", "domain"]].tolist() == ["normal", "source"]
    assert t.loc[("ToyPet", "section_00_0000.wav"), ["label", "domain"]].tolist() == ["anomaly", "source"]


def test_2026_names_carry_the_noise_scene(tmp_path):
    touch(tmp_path, "dev_data/raw/ToyCarEmu/test/section_00_source_test_normal_0000_car_A2_spd_28V_mic_1_noise_1.wav")
    t = scan_root(tmp_path)
    assert t["attributes"][0] == {"car": "A2", "spd": "28V", "mic": "1", "noise": "1"}
