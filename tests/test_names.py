import pytest

from asdkit import FileNameError, format_filename, parse_filename
from asdkit.data.names import RAW_ATTRIBUTE


@pytest.mark.parametrize("name, expected", [
    ("section_00_source_train_normal_0000_car_A2_spd_28V_mic_1_noise_1.wav",
     dict(section="00", domain="source", split="train", label="normal", index=0,
          attributes={"car": "A2", "spd": "28V", "mic": "1", "noise": "1"}, has_attributes=True)),
    ("section_00_target_test_anomaly_0049_noAttribute.wav",
     dict(section="00", domain="target", split="test", label="anomaly", index=49, attributes={},
          has_attributes=False)),
    ("section_02_source_test_normal_0003.wav",  # 2021: no attribute field
     dict(section="02", domain="source", split="test", label="normal", index=3, attributes={},
          has_attributes=None)),
    ("section_00_0001.wav",
     dict(section="00", domain=None, split=None, label=None, index=1, pattern="anonymous")),
    ("anomaly_id_04_00000123.wav",
     dict(section="04", domain="source", split=None, label="anomaly", index=123, pattern="dcase2020")),
    ("/some/dir/normal_id_00_00000000.wav", dict(label="normal", section="00")),
])
def test_parse_known_patterns(name, expected):
    c = parse_filename(name)
    for k, v in expected.items():
        assert getattr(c, k) == v, k


@pytest.mark.parametrize("bad", [
    "clip.wav", "section_0_source_train_normal_0000.wav",
    "section_00_source_valid_normal_0000.wav", "section_00_source_train_normal_0000.flac",
])
def test_parse_rejects_unknown_patterns_with_a_clear_message(bad):
    with pytest.raises(FileNameError, match="DCASE|pairs"):
        parse_filename(bad)


@pytest.mark.parametrize("name, tail", [
    ("section_00_source_train_normal_0050_strength_1_ambient.wav", "strength_1_ambient"),   # real DCASE 2021 dev
    ("section_02_target_test_anomaly_0003_vel.wav", "vel"),
    ("section_00_source_train_normal_0000_vel__6.wav", "vel__6"),
])
def test_free_form_attribute_tails_are_kept_whole(name, tail):
    c = parse_filename(name)
    assert c.attributes == {RAW_ATTRIBUTE: tail} and c.has_attributes is True
    assert (c.domain, c.split) in {("source", "train"), ("target", "test")} and c.pattern == "dcase2021+"


def test_format_round_trips():
    attrs = {"spd": "1450rpm", "mic": "2", "bg": "B"}
    name = format_filename(section=0, domain="target", split="test", label="anomaly", index=12, attributes=attrs)
    c = parse_filename(name)
    assert (c.domain, c.split, c.label, c.index, c.attributes) == ("target", "test", "anomaly", 12, attrs)
    assert format_filename(section=0, domain="source", split="train", label="normal", index=0).endswith(
        "_0000_noAttribute.wav")


@pytest.mark.parametrize("kwargs", [dict(domain="src"), dict(split="dev"), dict(label="bad"),
                                    dict(attributes={"a_b": "1"}), dict(attributes={"a": ""})])
def test_format_rejects_bad_fields(kwargs):
    base = dict(section=0, domain="source", split="train", label="normal", index=0)
    with pytest.raises(FileNameError):
        format_filename(**{**base, **kwargs})


@pytest.mark.parametrize("name, label, domain, index", [
    ("section_00_machine_source_0000_noAttribute.wav", "machine", "source", 0),
    ("section_00_noise_source_0042_noAttribute.wav", "noise", "source", 42),
    ("section_00_machine_0100_.wav", "machine", None, 100),
    ("section_01_noise_target_0003.wav", "noise", "target", 3),
])
def test_supplemental_names_of_2025(name, label, domain, index):
    c = parse_filename(name)
    assert (c.split, c.label, c.domain, c.index, c.pattern) == ("supplemental", label, domain, index, "supplemental")
    assert c.attributes == {}
