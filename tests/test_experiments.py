"""The experiment protocol, the system registry, the generic ablation and the notebooks' switch."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from asdkit.errors import ConfigError, DatasetError
from asdkit.experiments.ablation import ablation_table
from asdkit.experiments.notebook import in_test, notebook_setup
from asdkit.experiments.protocol import part_training, tasks
from asdkit.experiments.systems import SYSTEMS, SystemSpec, register_system, resolve_systems


def test_tasks_walk_every_machine_type_with_its_other_types(quick_table):
    seen = list(tasks(quick_table))
    assert [t.machine for t in seen] == sorted(quick_table["machine"].unique())
    for t in seen:
        assert set(t.train["split"]) == {"train"} and set(t.test["split"]) == {"test"}
        assert set(t.train["machine"]) == set(t.test["machine"]) == {t.machine}
        assert t.machine not in set(t.others["machine"]) and len(t.others) == 3 * len(t.train)
        assert t.sections == ["00"] and t.key == t.machine
        assert list(t.train.index) == list(range(len(t.train)))
    # a selection keeps the other machine types as others
    (only,) = tasks(quick_table, machines=["SynValve"])
    assert set(only.others["machine"]) == {"SynFan", "SynGearbox", "SynPress"}
    assert len(part_training(quick_table, "dev")) == 4 * len(only.train)


def test_tasks_skip_and_refuse(quick_table):
    skipped = []
    no_test = quick_table[~((quick_table.machine == "SynFan") & (quick_table.split == "test"))]
    assert "SynFan" not in [t.machine for t in tasks(no_test, log=skipped.append)]
    assert skipped and "SynFan" in skipped[0]
    no_domain = quick_table.copy()
    no_domain.loc[no_domain.split == "train", "domain"] = None
    with pytest.raises(DatasetError, match="domain"):
        next(tasks(no_domain))


def test_registry_names_and_errors():
    assert {"reference-knn", "baseline-mse", "baseline-mahala", "oevae", "classifier", "ensemble"} <= set(SYSTEMS)
    assert [s.name for s in resolve_systems(["oevae", "oevae"])] == ["oevae"]
    assert len(resolve_systems("all")) == len(SYSTEMS)
    with pytest.raises(ConfigError, match="unknown system"):
        resolve_systems(["oracle"])
    with pytest.raises(ConfigError, match="needs"):
        register_system(SystemSpec("x", "x", "x", "x", lambda ctx: None, needs=("nobody",)))
    assert "x" not in SYSTEMS


@pytest.mark.usefixtures("one_thread")
def test_ablation_varies_the_settings(quick_table):
    two = quick_table[quick_table.machine.isin(["SynFan", "SynValve"])]
    t = ablation_table(two, "baseline-mahala", {"1 epoch": {"epochs": 1}, "3 epochs": {"epochs": 3}},
                       machines=["SynFan"])
    assert list(t.index) == ["1 epoch", "3 epochs"]
    assert list(t.columns) == ["AUC(source)", "AUC(target)", "pAUC", "official score", "final loss"]
    assert t.loc["3 epochs", "final loss"] < t.loc["1 epoch", "final loss"]          # training went on
    assert ((t[["AUC(source)", "official score"]] > 0) & (t[["AUC(source)", "official score"]] <= 100)).all().all()
    with pytest.raises(ConfigError, match="no settings"):
        ablation_table(two, "reference-knn", {"a": {}})
    with pytest.raises(ConfigError, match="unknown system"):
        ablation_table(two, "nope", {"a": {}})


def test_notebook_switch(monkeypatch, quick_root, tmp_path):
    monkeypatch.delenv("ASDKIT_IN_TEST", raising=False)
    monkeypatch.setenv("CI", "true")
    assert in_test()
    monkeypatch.setattr(warnings, "formatwarning", warnings.formatwarning)   # restored after the test
    nb = notebook_setup(default=quick_root)
    assert nb.in_test and nb.preset == "quick" and nb.device == "cpu" and len(nb.table) == 440
    shown = warnings.formatwarning("gamma fit failed", RuntimeWarning, str(quick_root / "base.py"), 161)
    assert shown == "RuntimeWarning: gamma fit failed\n"                    # no file path in a saved output
    train, test, others = nb.machine("SynFan")
    assert len(train) == 70 and len(test) == 40 and "SynFan" not in set(others.machine)
    monkeypatch.setenv("CI", "false")
    monkeypatch.setenv("ASDKIT_PRESET", "cpu")
    monkeypatch.setenv("ASDKIT_DATA", str(quick_root))
    nb = notebook_setup(default=tmp_path / "never")
    assert not nb.in_test and nb.preset == "cpu" and nb.root == quick_root
    monkeypatch.setenv("ASDKIT_PRESET", "huge")
    with pytest.raises(ConfigError, match="ASDKIT_PRESET"):
        notebook_setup(default=quick_root)
    monkeypatch.setenv("ASDKIT_PRESET", "quick")
    monkeypatch.setenv("ASDKIT_DATA", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="ASDKIT_DATA"):
        notebook_setup(default=quick_root)
    with pytest.raises(ConfigError, match="SynX"):
        notebook_setup(default=quick_root, data=quick_root).machine("SynX")


def _results(values: dict) -> pd.DataFrame:
    """A results table with the rows lever_table reads, one column per system."""
    idx = pd.MultiIndex.from_tuples([("official score", "h-mean"), ("harmonic mean", "AUC(target)"),
                                     ("harmonic mean", "AUC(source)")], names=["machine", "metric"])
    return pd.DataFrame({s: v for s, v in values.items()}, index=idx)


def test_lever_table_pairs_the_systems_per_seed(tmp_path):
    from asdkit.experiments.ablation import lever_table, seed_tables

    tables = {0: _results({"classifier-report": [60, 40, 80], "classifier": [66, 60, 74]}),
              1: _results({"classifier-report": [62, 44, 82], "classifier": [65, 58, 73]})}
    t = lever_table(tables)
    name = next(n for n in t.index.get_level_values(0))
    assert name.startswith("classifier: per-domain shrunk") and len(t) == 3   # levers without systems left out
    row = t.loc[(name, "official score")]
    assert row["off"] == "61.00 ± 1.41" and row["on"] == "65.50 ± 0.71" and row["seeds"] == 2
    assert row["gain"] == f"4.50 ± {np.std([6, 3], ddof=1):.2f}"             # paired per-seed differences
    assert t.loc[(name, "h-mean AUC(target)"), "gain"].startswith("17.00")
    # the same from a --seeds folder
    for s, tab in tables.items():
        (tmp_path / f"seed_{s}").mkdir()
        tab.to_csv(tmp_path / f"seed_{s}" / "results.csv")
    assert set(seed_tables(tmp_path)) == {0, 1}
    pd.testing.assert_frame_equal(lever_table(tmp_path), t)
    with pytest.raises(ConfigError, match="no seed_<n>/results.csv"):
        seed_tables(tmp_path / "nothing")
    with pytest.raises(ConfigError, match="none of the levers"):
        lever_table({0: _results({"reference-knn": [1, 2, 3]})})
