"""RunConfig: one frozen, validated description of a run, built by the CLI and the Python API alike."""
from __future__ import annotations

import json

import pytest

from asdkit.errors import ConfigError
from asdkit.experiments.config import RunConfig, as_config
from asdkit.experiments.systems import SYSTEMS


def test_fields_are_normalised_and_frozen():
    cfg = RunConfig(data="d", systems=["oevae", "oevae", "classifier"], machines=["SynFan"], supplemental="noise",
                    threads=1)
    assert cfg.systems == ("oevae", "classifier") and cfg.machines == ("SynFan",)
    assert cfg.supplemental == ("noise",) and cfg.threads == 1 and not cfg.remote
    assert RunConfig(data="d", systems="all").systems == tuple(SYSTEMS)
    with pytest.raises(AttributeError):
        cfg.preset = "paper"
    assert cfg.replace(preset="cpu").preset == "cpu" and cfg.preset == "quick"


@pytest.mark.parametrize("bad,match", [
    (dict(preset="huge"), "preset"), (dict(systems=["oracle"]), "unknown system"),
    (dict(executor="slurm"), "executor"), (dict(address="auto"), "for executor='ray'"),
    (dict(cpus_per_job=2), "for executor='ray'"), (dict(executor="ray", cpus_per_job=0), "positive number"),
    (dict(threads=0), "threads"), (dict(supplemental=["music"]), "supplemental"), (dict(channels="left"), "channel"),
])
def test_bad_settings_name_the_field(bad, match):
    with pytest.raises(ConfigError, match=match):
        RunConfig(data="d", **bad)


def test_saved_form_round_trips_and_refuses_unknown_keys():
    cfg = RunConfig(data="data/quick", systems=["classifier", "ensemble"], machines=["SynFan"], executor="ray",
                    cpus_per_job=2, supplemental=["machine"])
    text = json.dumps(cfg.to_dict())
    assert RunConfig.from_dict(json.loads(text)) == cfg
    with pytest.raises(ConfigError, match="unknown setting"):
        RunConfig.from_dict({"data": "d", "epochs": 3})
    with pytest.raises(ConfigError, match="unknown run setting"):
        as_config("d", {"epochs": 3})
    assert as_config(cfg, {"preset": "cpu"}).preset == "cpu"
    remote = cfg.for_output("runs/x")
    assert remote.data.startswith("/") and remote.cache.endswith("runs/x/.feature_cache")


def test_plan_json_stores_the_config_and_resume_checks_it(quick_root, tmp_path):
    from asdkit.experiments.run import run_experiment

    out = tmp_path / "run"
    run_experiment(quick_root, systems=["reference-knn"], machines=["SynFan"], out=out, plots=False, log=None)
    plan = json.loads((out / "plan.json").read_text())
    back = RunConfig.from_dict(plan["config"])
    assert back.systems == ("reference-knn",) and back.machines == ("SynFan",) and plan["seed"] == 0
    with pytest.raises(ConfigError, match="--resume.*preset"):
        run_experiment(back.replace(preset="cpu", resume=True), out=out, log=None)


def test_job_threads_and_what_a_ray_job_keeps():
    local = RunConfig(data="d", threads=2)
    assert local.job_threads == 2 and not local.keeps_models and not local.job_progress
    ray = RunConfig(data="d", executor="ray", cpus_per_job=3, progress=True)
    assert ray.job_threads == 3 and ray.keeps_models and not ray.job_progress
