"""asdkit.io: atomic writes that honour the umask, and the one folder swap."""
from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from asdkit.io import atomic_dir, atomic_write_text, current_umask, dir_mode, file_mode, replace_dir


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(p) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


def test_current_umask_reads_without_changing():
    old = os.umask(0o027)
    try:
        assert current_umask() == 0o027 and current_umask() == 0o027
        assert file_mode() == 0o640 and dir_mode() == 0o750
    finally:
        os.umask(old)


def test_written_files_and_folders_are_readable_by_others_under_umask_022(tmp_path, umask_022):
    f = atomic_write_text(tmp_path / "a" / "table.md", "x")
    assert f.read_text() == "x" and _mode(f) == 0o644
    with atomic_dir(tmp_path / "model") as tmp:
        (tmp / "state.json").write_text("{}")
    assert _mode(tmp_path / "model") == 0o755 and _mode(tmp_path / "model" / "state.json") == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "model"]


def test_atomic_dir_replaces_or_leaves_the_old_folder(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "new.txt").write_text("new")
            raise RuntimeError("half-way")
    assert [p.name for p in target.iterdir()] == ["old.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]          # no temporary folder left behind
    with atomic_dir(target) as tmp:
        (tmp / "new.txt").write_text("new")
    assert [p.name for p in target.iterdir()] == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_replace_dir_puts_the_old_folder_back_when_the_move_fails(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(OSError):
        replace_dir(tmp_path / "missing", target)
    assert [p.name for p in target.iterdir()] == ["old.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_saved_detector_and_synthetic_data_follow_the_umask(tmp_path, umask_022):
    from asdkit.synth.dataset import SynthPreset, synthesize

    table = synthesize(tmp_path / "root", preset=SynthPreset(4, 2, 1, 2.0), seed=0, machines=["SynFan"],
                       progress=False)
    machine = tmp_path / "root" / "dev_data" / "raw" / "SynFan"
    assert _mode(machine) == 0o755 and _mode(machine / "attributes_00.csv") == 0o644
    assert _mode(table.path.iloc[0]) == 0o644

    from asdkit import ReferenceKNN
    det = ReferenceKNN().fit(table[table.split == "train"])
    out = det.save(tmp_path / "det")
    assert _mode(out) == 0o755
    assert all(_mode(p) == 0o644 for p in out.rglob("*") if p.is_file())
    np.testing.assert_allclose(type(det).load(out).score_samples(table[table.split == "test"]),
                               det.score_samples(table[table.split == "test"]))
