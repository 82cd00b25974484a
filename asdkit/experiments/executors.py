"""Where the jobs of a run execute: in this process (the default) or as Ray tasks.

:func:`execute` takes the jobs of :func:`asdkit.experiments.jobs.plan_jobs`
and runs each once the jobs it needs have finished:

* ``executor="local"``: one after the other in this process; fitted detectors
  and root models pass between jobs in memory. A job that raises stops the run
  (with its traceback), as a run always has; what finished before stays on disk.
* ``executor="ray"``: every job is a Ray task with the resources it declares
  (``cpus_per_job``, ``gpus_per_job``), on a local Ray instance started for the
  run or on a cluster (``address="auto"`` or ``"ray://HOST:PORT"``). A job is
  submitted when the jobs it needs have finished; the ensemble's jobs read their
  members' saved detectors and the classifier's jobs their root model from the
  run folder, so the data root and the output folder must lie at the same path
  on every node (a shared file system). A job that fails is reported with its
  machine type and error, the jobs that need it are not run, every other job
  finishes.

With ``resume=True`` both run only the jobs without a finished result in their
folder (or whose result lacks a system asked for now).

Ray is an optional dependency (``pip install "asdkit[ray]"``): it is imported
only by ``executor="ray"``.
"""
from __future__ import annotations

import time
from typing import Callable, Sequence

import pandas as pd

from asdkit.errors import AsdkitError, ConfigError
from asdkit.experiments.config import EXECUTORS  # noqa: F401  (public here too)
from asdkit.experiments.jobs import Job, JobFailure, JobSettings, read_result, run_job

__all__ = ["EXECUTORS", "execute", "ExecutionReport", "import_ray"]



class ExecutionReport:
    """What :func:`execute` did.

    Attributes
    ----------
    results : dict
        ``Job.key -> JobResult`` of every finished job (run now or before).
    failures : list of JobFailure
    reused : set
        Keys of the jobs whose results an earlier run left (``resume``).
    times : dict
        ``Job.key -> (submitted, received)``: when the driver handed the job out and got its result
        (seconds since the epoch), for the jobs run now.
    """

    def __init__(self):
        self.results: dict = {}
        self.failures: list[JobFailure] = []
        self.reused: set = set()
        self.times: dict = {}

    def table(self, jobs: Sequence[Job]) -> pd.DataFrame:
        """One row per job: name, family, machine, part, seed, status, seconds, worker, peak memory, start/end times."""
        failed = {f.job.key: f.error for f in self.failures}
        rows = []
        for j in jobs:
            r = self.results.get(j.key)
            submitted, received = self.times.get(j.key, (float("nan"), float("nan")))
            rows.append({"job": j.name, "family": j.family, "machine": j.machine or "(root)", "part": j.part,
                         "seed": j.seed,
                         "status": ("reused" if j.key in self.reused else "done") if r is not None else
                         ("failed" if not failed.get(j.key, "").startswith("not run") else "not run"),
                         "seconds": round(r.seconds, 3) if r is not None else float("nan"),
                         "worker": r.worker if r is not None else "",
                         "rss_peak_mib": r.memory.get("rss_peak_mib", float("nan")) if r else float("nan"),
                         "gpu_peak_mib": r.memory.get("gpu_peak_mib", float("nan")) if r else float("nan"),
                         "started": r.started if r else float("nan"),
                         "finished": r.finished if r else float("nan"), "submitted": submitted,
                         "received": received, "error": failed.get(j.key, "")})
        return pd.DataFrame(rows)


def import_ray():
    """The ``ray`` module, or an asdkit error that says how to install it."""
    try:
        import ray
    except ImportError:
        raise AsdkitError("--executor ray needs Ray, an optional dependency: pip install \"asdkit[ray]\" "
                          "(or leave --executor at local).") from None
    return ray


def _resumable(jobs: Sequence[Job], settings: JobSettings) -> dict:
    """Results of earlier runs that this run can reuse: finished, with every system asked now, and with
    the state on disk that the jobs still to run read (a root model; a saved detector)."""
    found = {}
    for j in jobs:
        if not j.done():
            continue
        r = read_result(j)
        if not j.is_root and not {s.name for s in settings.specs[j.family]} <= set(r.frames):
            continue
        found[j.key] = r
    while True:
        stale = set()
        for j in jobs:
            if j.key in found:
                continue
            for d in j.needs:
                if d.key in found and not d.is_root and not (d.model_dir / "detector.json").is_file():
                    stale.add(d.key)
        if not stale:
            return found
        for k in stale:
            found.pop(k)


def execute(jobs: Sequence[Job], tables: dict, settings: JobSettings, *,
            say: Callable[[str], None] | None = print) -> ExecutionReport:
    """Run the jobs of a run, where its config says (``settings.config``: executor, Ray's address and resources,
    ``resume``, ``progress``).

    Parameters
    ----------
    jobs : sequence of Job
        Each after the jobs it needs (:func:`~asdkit.experiments.jobs.plan_jobs`).
    tables : dict
        ``Job.run -> clip table`` the jobs of that run read.
    settings : JobSettings
        The run's :class:`~asdkit.experiments.config.RunConfig` and the systems asked of each family.
        With ``resume`` what earlier runs finished in the same folders is reused; on Ray one tqdm bar
        goes over the jobs when ``progress`` is on, and each job declares ``cpus_per_job`` (also its
        torch thread count) and ``gpus_per_job``.
    say : callable or None

    Returns
    -------
    ExecutionReport
    """
    config = settings.config
    say = say or (lambda _m: None)
    report = ExecutionReport()
    if config.resume:
        report.results.update(_resumable(jobs, settings))
        report.reused = set(report.results)
        if report.reused:
            say(f"resuming: {len(report.reused)} of {len(jobs)} jobs finished before, {len(jobs) - len(report.reused)} "
                "to run")
    from tqdm.auto import tqdm

    progress = config.progress and config.remote
    bar = tqdm(total=len(jobs), initial=len(report.reused), unit="job", desc="jobs", disable=not progress)
    tell = (lambda m: bar.write(m)) if progress else say
    try:
        if config.executor == "local":
            _local(jobs, tables, settings, report, bar, tell)
        else:
            _ray(jobs, tables, settings, report, bar, tell, address=config.address, cpus=config.cpus_per_job,
                 gpus=config.gpus_per_job)
    finally:
        bar.close()
    return report


def _local(jobs, tables, settings, report, bar, tell) -> None:
    seeds = len({j.seed for j in jobs}) > 1
    last_seed = None
    for job in jobs:
        if job.key in report.results:
            continue
        if seeds and job.seed != last_seed:
            tell(f"--- seed {job.seed} ---")
            last_seed = job.seed
        submitted = time.time()
        result = run_job(job, tables[job.run], settings, {d.key: report.results[d.key] for d in job.needs}, say=tell)
        report.results[job.key] = result
        report.times[job.key] = (submitted, time.time())
        bar.update()


def _remote_job(job: Job, table: pd.DataFrame, settings: JobSettings, deps: dict):
    """A Ray task: run the job, keep its log in its folder, send back the result (or the error) without models."""
    try:
        return run_job(job, table, settings, deps, capture=True).without_models()
    except Exception as e:        # reported by the driver; the traceback is in the job's log.txt
        return JobFailure(job, f"{type(e).__name__}: {e}", job.folder / "log.txt")


def _ray(jobs, tables, settings, report, bar, tell, *, address, cpus, gpus) -> None:
    ray = import_ray()
    started_here = False
    if not ray.is_initialized():
        try:
            if address is None:
                ray.init(log_to_driver=False, include_dashboard=False, configure_logging=False)
            else:
                ray.init(address=address, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise AsdkitError(f"could not start or reach Ray (address {address or 'local'}): {e}. For a cluster, "
                              "run 'ray start --head' on one machine and 'ray start --address HEAD:6379' on the "
                              "others, then --address auto from a node of it.") from None
        started_here = True
    try:
        total = ray.cluster_resources()
        if cpus > total.get("CPU", 0) or gpus > total.get("GPU", 0):
            raise ConfigError(f"each job asks for {cpus} CPU(s) and {gpus} GPU(s), but the Ray cluster has "
                              f"{total.get('CPU', 0):g} CPUs and {total.get('GPU', 0):g} GPUs in all; lower "
                              "--cpus-per-job / --gpus-per-job or add nodes.")
        # each job runs at config.job_threads (its cpus_per_job), without bars, and keeps its models
        remote = ray.remote(_remote_job).options(num_cpus=cpus, num_gpus=gpus, max_retries=0)
        table_refs = {run: ray.put(t) for run, t in tables.items()}
        failed: dict = {}
        pending = [j for j in jobs if j.key not in report.results]
        in_flight: dict = {}
        while pending or in_flight:
            still = []
            for job in pending:
                broken = [d for d in job.needs if d.key in failed]
                if broken:
                    failed[job.key] = JobFailure(job, f"not run: it needs {broken[0].name}, which failed")
                    report.failures.append(failed[job.key])
                    bar.update()
                elif all(d.key in report.results for d in job.needs):
                    deps = {d.key: report.results[d.key] for d in job.needs}
                    ref = remote.remote(job, table_refs[job.run], settings, deps)
                    in_flight[ref] = (job, time.time())
                else:
                    still.append(job)
            pending = still
            if not in_flight:
                continue
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in ready:
                job, submitted = in_flight.pop(ref)
                try:
                    out = ray.get(ref)
                except Exception as e:     # the worker died (out of memory, node lost): not the job's own error
                    out = JobFailure(job, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
                                     job.folder / "log.txt")
                report.times[job.key] = (submitted, time.time())
                if isinstance(out, JobFailure):
                    failed[job.key] = out
                    report.failures.append(out)
                    tell(f"FAILED {out}")
                else:
                    report.results[job.key] = out
                    tell(f"{job.name}: done in {out.seconds:.1f} s on {out.worker}")
                bar.update()
    finally:
        if started_here:
            ray.shutdown()
