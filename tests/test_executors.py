"""Jobs and executors: a run's plan, its job folders, --resume, and Ray giving the files of an in-process run."""
from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest

from asdkit.cli import main
from asdkit.errors import ConfigError
from asdkit.experiments.jobs import Job, plan_jobs, read_result
from asdkit.experiments.run import run_experiment
from asdkit.experiments.seeds import run_seeds
from asdkit.experiments.systems import SYSTEMS, resolve_systems

pytestmark = pytest.mark.usefixtures("one_thread")

TWO = ["SynFan", "SynValve"]


def _official(folder: Path) -> dict[str, bytes]:
    """Every official score and decision file below a run folder, by relative path."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*_test.csv"))
            if p.name.startswith(("anomaly_score_", "decision_result_"))}


# ---------------------------------------------------------------------- the plan
def test_plan_roots_first_then_one_job_per_family_machine_and_seed(quick_table, tmp_path):
    specs = resolve_systems("all")
    runs = {0: tmp_path / "seed_0", 1: tmp_path / "seed_1"}
    jobs = plan_jobs(quick_table, specs, runs)
    machines = sorted(quick_table["machine"].unique())
    families = {s.family for s in specs}
    roots = [j for j in jobs if j.is_root]
    assert [(j.family, j.seed) for j in roots] == [("classifier", 0), ("classifier", 1)]
    assert len(jobs) == len(roots) + len(families) * len(machines) * len(runs)
    assert len({j.key for j in jobs}) == len(jobs)
    seen = set()
    for j in jobs:                                   # every job after the jobs it needs
        assert all(d.key in seen for d in j.needs), j.name
        assert all(d.seed == j.seed and d.run == j.run for d in j.needs)
        seen.add(j.key)
    ens = next(j for j in jobs if j.family == "ensemble" and j.machine == "SynFan" and j.seed == 1)
    assert sorted(d.family for d in ens.needs) == ["classifier", "oevae"]
    assert all(d.machine == "SynFan" for d in ens.needs)
    clf = next(j for j in jobs if j.family == "classifier" and j.machine == "SynPress" and j.seed == 0)
    assert [d.is_root for d in clf.needs] == [True] and clf.needs[0].seed == 0
    assert ens.folder == tmp_path / "seed_1" / "jobs" / "ensemble" / "SynFan"
    assert roots[0].folder.name == "_root" and "root model" in roots[0].name


def test_plan_of_some_machine_types_and_of_a_family_only_others_need(quick_table, tmp_path):
    jobs = plan_jobs(quick_table, resolve_systems(["ensemble"]), {3: tmp_path}, machines=["SynGearbox"])
    assert [(j.family, j.machine) for j in jobs] == [("classifier", None), ("classifier", "SynGearbox"),
                                                     ("oevae", "SynGearbox"), ("ensemble", "SynGearbox")]
    assert {j.seed for j in jobs} == {3}


# ---------------------------------------------------------------------- in-process jobs, their folders, --resume
@pytest.fixture(scope="module")
def local_run(quick_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "run"
    res = run_experiment(quick_root, systems=["reference-knn", "baseline-mahala"], machines=TWO, out=out,
                         plots=False, log=None)
    return out, res


def test_every_job_keeps_its_log_and_result(local_run):
    out, res = local_run
    jobs = pd.read_csv(out / "jobs.csv")
    assert len(jobs) == 4 and set(jobs["status"]) == {"done"} and (jobs["seconds"] > 0).all()
    for family in ("reference", "baseline"):
        for machine in TWO:
            folder = out / "jobs" / family / machine
            assert "fitted on" in (folder / "log.txt").read_text()
            assert (folder / "result" / "result.json").is_file()
    config = json.loads((out / "config.json").read_text())
    assert config["executor"] == "local" and config["jobs"] == {"total": 4, "run": 4, "reused": 0, "failed": []}
    assert json.loads((out / "plan.json").read_text())["preset"] == "quick"
    assert res.failures == [] and not res.jobs.empty


def test_a_job_result_reads_back_as_it_was(local_run, quick_root):
    out, res = local_run
    job = Job("baseline", "dev", "SynValve", 0, str(out))
    back = read_result(job)
    frame = res.scores["baseline-mahala"]
    pd.testing.assert_frame_equal(back.frames["baseline-mahala"], frame[frame["machine"] == "SynValve"]
                                  .reset_index(drop=True))
    assert sorted(back.scores) == ["mahala", "mahala_lw", "mse"]
    assert back.history is not None and back.history.to_dict() == res.histories[("baseline", "SynValve")].to_dict()
    assert back.timings == {k: v for k, v in res.timings.items() if k == "baseline/SynValve/dev"}


def test_resume_runs_only_the_jobs_without_a_result(local_run, tmp_path):
    first, res = local_run
    out = tmp_path / "run"
    shutil.copytree(first, out)
    before = _official(out)
    shutil.rmtree(out / "jobs" / "baseline" / "SynFan" / "result")       # as if it had been stopped there
    (out / "baseline-mahala" / "anomaly_score_SynFan_section_00_test.csv").unlink()
    again = run_experiment(_root(first), systems=["reference-knn", "baseline-mahala"], machines=TWO, out=out,
                           plots=False, log=None, resume=True)
    jobs = again.jobs.set_index("job")["status"]
    assert jobs["baseline SynFan (dev, seed 0)"] == "done"
    assert (jobs.drop("baseline SynFan (dev, seed 0)") == "reused").all()
    assert _official(out) == before
    pd.testing.assert_frame_equal(again.table, res.table)
    assert json.loads((out / "config.json").read_text())["jobs"]["reused"] == 3


def _root(run: Path) -> str:
    return json.loads((run / "plan.json").read_text())["data"]


def test_resume_refuses_a_folder_of_other_settings(local_run, tmp_path):
    first, _ = local_run
    out = tmp_path / "run"
    shutil.copytree(first, out)
    with pytest.raises(ConfigError, match="preset: 'quick' then, 'cpu' now"):
        run_experiment(_root(first), systems=["reference-knn"], machines=TWO, out=out, preset="cpu", log=None,
                       resume=True)


def test_resume_reruns_a_job_whose_result_lacks_a_system_asked_now(local_run, tmp_path):
    first, _ = local_run
    out = tmp_path / "run"
    shutil.copytree(first, out)
    again = run_experiment(_root(first), systems=["reference-knn", "baseline-mse"], machines=TWO, out=out,
                           plots=False, log=None, resume=True)
    status = again.jobs.set_index("family")["status"]
    assert (status["reference"] == "reused").all() and (status["baseline"] == "done").all()
    assert "baseline-mse" in again.table.columns


def test_without_resume_an_earlier_result_is_not_kept(local_run, tmp_path):
    first, _ = local_run
    out = tmp_path / "run"
    shutil.copytree(first, out)
    again = run_experiment(_root(first), systems=["reference-knn"], machines=TWO, out=out, plots=False, log=None)
    assert set(again.jobs["status"]) == {"done"}


# ---------------------------------------------------------------------- options that are refused
@pytest.mark.parametrize("argv, message", [
    (["--address", "auto"], "are for --executor ray"),
    (["--cpus-per-job", "2"], "are for --executor ray"),
    (["--executor", "ray", "--cpus-per-job", "0"], "--cpus-per-job 0"),
    (["--executor", "ray", "--device", "cuda"], "needs --gpus-per-job"),
])
def test_run_refuses_executor_options(argv, message, quick_root, tmp_path, capsys, monkeypatch):
    if "--device" in argv:
        pytest.importorskip("ray")
    assert main(["run", "--data", str(quick_root), "--out", str(tmp_path / "o"), *argv]) == 2
    assert message in capsys.readouterr().err


def test_ray_missing_is_a_clear_error(quick_root, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)          # import ray raises ImportError
    assert main(["run", "--data", str(quick_root), "--out", str(tmp_path / "o"), "--executor", "ray"]) == 2
    assert 'pip install "asdkit[ray]"' in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_the_local_executor_imports_no_ray(quick_root, tmp_path):
    import subprocess

    code = ("import sys; from asdkit.experiments.run import run_experiment; "
            f"run_experiment({str(quick_root)!r}, systems=['reference-knn'], machines=['SynFan'], "
            f"out={str(tmp_path / 'o')!r}, plots=False, log=None); print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------------- Ray: a local instance of 2 CPUs
@pytest.fixture(scope="module")
def ray_local():
    if os.environ.get("CI"):
        import ray  # CI installs the ray extra: never skipped there
    else:
        ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_gives_the_official_files_of_the_in_process_run(ray_local, quick_root, tmp_path):
    """Every system and seed its own jobs on 2 Ray workers: the same bytes as the in-process run (1 thread each)."""
    kwargs = dict(systems="all", machines=TWO, seeds=[0, 1], plots=False, log=None)
    local = run_seeds(quick_root, out=tmp_path / "local", **kwargs)
    remote = run_seeds(quick_root, out=tmp_path / "ray", executor="ray", **kwargs)
    files = _official(tmp_path / "local")
    assert len(files) == 2 * len(SYSTEMS) * 2 * len(TWO)   # seeds x systems x (score, decision) x machine types
    assert _official(tmp_path / "ray") == files
    pd.testing.assert_frame_equal(remote.table, local.table)
    for seed in (0, 1):
        jobs = remote.runs[seed].jobs
        assert len(jobs) == 1 + 6 * len(TWO) and set(jobs["status"]) == {"done"}
        assert jobs["worker"].nunique() == 2                # the jobs ran side by side
        config = json.loads((tmp_path / "ray" / f"seed_{seed}" / "config.json").read_text())
        assert config["executor"] == "ray" and config["cpus_per_job"] == 1
        assert (tmp_path / "ray" / f"seed_{seed}" / "models" / "ensemble" / "SynFan" / "detector.json").is_file()
        log = (tmp_path / "ray" / f"seed_{seed}" / "jobs" / "oevae" / "SynFan" / "log.txt").read_text()
        assert "oevae SynFan (dev, seed" in log and "fitted on" in log
    cells = (tmp_path / "ray" / "results.md").read_text()
    assert " ± " in cells and "seeds 0, 1" in cells


@pytest.mark.slow
def test_ray_reports_a_failed_job_finishes_the_others_and_resumes_it(ray_local, tmp_path, capsys):
    from asdkit.synth.dataset import synthesize

    root = tmp_path / "data"
    table = synthesize(root, preset="quick", seed=0, machines=["SynFan", "SynPress", "SynValve"], progress=False)
    clip = Path(table[(table["machine"] == "SynValve") & (table["split"] == "test")]["path"].iloc[0])
    good = clip.read_bytes()
    clip.write_bytes(b"RIFF\x00\x00\x00\x00WAVEdamaged")
    out = tmp_path / "run"
    argv = ["run", "--data", str(root), "--system", "reference-knn", "baseline-mahala", "--out", str(out),
            "--executor", "ray", "--no-plots"]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert "reference SynValve (dev, seed 0)" in captured.out and clip.name in captured.out
    assert "--resume" in captured.err
    jobs = pd.read_csv(out / "jobs.csv").set_index("job")
    failed = jobs[jobs["status"] == "failed"]
    assert sorted(failed.index) == ["baseline SynValve (dev, seed 0)", "reference SynValve (dev, seed 0)"]
    assert (jobs.drop(failed.index)["status"] == "done").all()
    assert "Traceback" in (out / "jobs" / "baseline" / "SynValve" / "log.txt").read_text()
    assert not (out / "results.csv").exists()                # no system has every machine type
    assert (out / "baseline-mahala" / "anomaly_score_SynPress_section_00_test.csv").is_file()

    clip.write_bytes(good)
    assert main(argv + ["--resume"]) == 0
    status = pd.read_csv(out / "jobs.csv").set_index("job")["status"]
    assert (status[failed.index] == "done").all() and (status.drop(failed.index) == "reused").all()
    table = pd.read_csv(out / "results.csv", index_col=[0, 1])
    assert list(table.columns) == ["reference-knn", "baseline-mahala"] and len(table) == 3 * 3 + 3 + 4
