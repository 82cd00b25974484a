"""The jobs of a run: what an executor runs, what each job writes, what it hands back.

:func:`asdkit.experiments.run.run_experiment` (and ``run_seeds``) split a run
into independent jobs (:func:`plan_jobs`):

* a **root job** per (family with a root-level model, part, seed): the
  classifier's one network per root, trained on every machine type's training
  clips of that part;
* a **family job** per (family, machine type, part, seed): build the family's
  detector (on its root model and on the detectors of the families it needs,
  e.g. the ensemble's members), fit it on the machine type's training clips,
  score its test clips, write the official files and plots of the systems asked
  of it and, where asked, save the detector.

A job depends only on the jobs named in :attr:`Job.needs`; everything else runs
in any order, in this process or on a Ray cluster
(:mod:`asdkit.experiments.executors`). Every job keeps a folder below its run,
``<run>/jobs/<family>/<machine>`` (``_root`` for a root job; ``_eval`` appended
for evaluation data), holding

* ``log.txt``: what the job said, its warnings and, when it failed, the traceback;
* ``root/``: a root job's model;
* ``result/``: written last and atomically, so present only for a finished job:
  the score rows of its systems, the test scores of every score the detector
  has, its timings, training history and settings (JSON and ``.npz``; nothing
  is pickled). ``--resume`` skips the jobs that have it.

The saved detector of a family job goes where ``asdkit run --save-models`` puts
it, ``<run>/models/<family>/<machine>`` (``asdkit score --model`` reads it).
"""
from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import shutil
import socket
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from asdkit.errors import ConfigError
from asdkit.evaluation.outputs import write_submission
from asdkit.experiments.config import RunConfig
from asdkit.experiments.protocol import META_COLUMNS, Task, part_training, tasks
from asdkit.experiments.systems import BuildContext, SystemSpec, family_members
from asdkit.io import atomic_dir, atomic_write_bytes
from asdkit.runtime import device_name, thread_limit

__all__ = ["Job", "JobResult", "JobFailure", "JobSettings", "plan_jobs", "run_job", "read_result", "families",
           "fit_family", "score_frame", "save_root", "load_root"]

RESULT = "result"
LOG = "log.txt"
ROOT = "root"


# ---------------------------------------------------------------------- what a run is made of
def families(specs: Sequence[SystemSpec]) -> dict[str, list[SystemSpec]]:
    """Family -> the systems asked of it, the families others need first (fitted, written only when asked for)."""
    out: dict[str, list[SystemSpec]] = {}
    for s in specs:
        for need in s.needs:
            out.setdefault(need, [])
        out.setdefault(s.family, []).append(s)
    return out


@dataclass(frozen=True)
class Job:
    """One job of a run.

    Attributes
    ----------
    family : str
    part : str
        ``"dev"`` or ``"eval"``.
    machine : str or None
        None for a root job.
    seed : int
    run : str
        The run folder of this seed (``<out>``, or ``<out>/seed_<n>`` for ``--seeds``).
    needs : tuple of Job
        The jobs whose results it takes: its family's root job, the jobs of the families it needs.
    """

    family: str
    part: str
    machine: str | None
    seed: int
    run: str
    needs: tuple = ()

    @property
    def is_root(self) -> bool:
        return self.machine is None

    @property
    def key(self) -> tuple:
        """What identifies the job within a plan: ``(run, family, machine, part)``."""
        return (self.run, self.family, self.machine, self.part)

    @property
    def label(self) -> str:
        """``"<machine>"`` (``"_root"`` for a root job), with ``"_<part>"`` for evaluation data: the folder name."""
        name = "_root" if self.is_root else self.machine
        return name if self.part == "dev" else f"{name}_{self.part}"

    @property
    def folder(self) -> Path:
        return Path(self.run) / "jobs" / self.family / self.label

    @property
    def model_dir(self) -> Path:
        """Where a family job's detector is saved (a root job's model lies in ``folder / "root"``)."""
        return Path(self.run) / "models" / self.family / self.label

    @property
    def name(self) -> str:
        """For people: ``"classifier SynFan (dev, seed 0)"``, ``"classifier root model (dev, seed 0)"``."""
        what = "root model" if self.is_root else self.machine
        return f"{self.family} {what} ({self.part}, seed {self.seed})"

    def done(self) -> bool:
        """Whether the job has finished in an earlier run (its ``result/`` is there)."""
        return (self.folder / RESULT / "result.json").is_file()


def plan_jobs(table: pd.DataFrame, specs: Sequence[SystemSpec], runs: dict[int, Path | str], *,
              machines: Sequence[str] | None = None, log: Callable[[str], None] | None = None) -> list[Job]:
    """Every job of a run, each after the jobs it needs.

    Parameters
    ----------
    table : pandas.DataFrame
        The scanned root (:func:`asdkit.scan_root`).
    specs : sequence of SystemSpec
        The systems asked for.
    runs : dict of int to path
        Seed -> that seed's run folder.
    machines : sequence of str, optional
        Only these machine types (:func:`asdkit.experiments.protocol.tasks`).
    log : callable, optional
        Told about machine types that are skipped.

    Returns
    -------
    list of Job
        Per seed: the root jobs, then per task the families in the order they need each other.
    """
    fams = families(specs)
    builders = {f: (asked[0] if asked else family_members(f)[0]) for f, asked in fams.items()}
    task_keys = [(t.machine, t.part) for t in tasks(table, machines=list(machines) if machines else None, log=log)]
    jobs: list[Job] = []
    for seed, run in runs.items():
        run = str(run)
        roots = {}
        for part in dict.fromkeys(p for _, p in task_keys):
            for family, spec in builders.items():
                if spec.root_model is not None:
                    roots[(family, part)] = Job(family, part, None, int(seed), run)
                    jobs.append(roots[(family, part)])
        for machine, part in task_keys:
            done: dict[str, Job] = {}
            for family, spec in builders.items():
                needs = tuple(done[f] for f in spec.needs)
                if spec.root_model is not None:
                    needs = (roots[(family, part)],) + needs
                done[family] = Job(family, part, machine, int(seed), run, needs)
                jobs.append(done[family])
    return jobs


# ---------------------------------------------------------------------- settings every job shares
@dataclass(frozen=True)
class JobSettings:
    """What every job of a run shares besides the clip table: the run's config and the systems asked of it.

    Attributes
    ----------
    config : RunConfig
        The run (:mod:`asdkit.experiments.config`); ``device="auto"`` is resolved in the job, on the
        machine that runs it.
    specs : dict of str to list of SystemSpec
        Family -> the systems asked of it (:func:`families`); empty for a family only others need. The
        spec objects travel with the job, so systems registered in the driver's session run on Ray too.
    """

    config: RunConfig
    specs: dict

    @classmethod
    def of(cls, config: RunConfig) -> "JobSettings":
        return cls(config=config, specs=families(config.specs))

    def builder(self, family: str) -> SystemSpec:
        asked = self.specs[family]
        return asked[0] if asked else family_members(family)[0]

    def context(self, seed: int) -> BuildContext:
        from asdkit.features.cache import FeatureCache

        cfg = self.config
        return BuildContext(preset=cfg.preset, seed=seed, device=_resolve_device(cfg.device),
                            progress=cfg.job_progress, channels=cfg.channels,
                            cache=FeatureCache(cfg.cache) if cfg.cache is not None else None)


def _resolve_device(device: str) -> str:
    return device if device != "auto" else device_name("auto")


# ---------------------------------------------------------------------- what a job hands back
@dataclass
class JobResult:
    """What a finished job hands back (and keeps in its ``result/`` folder).

    Attributes
    ----------
    job : Job
    frames : dict of str to pandas.DataFrame
        Per system asked of the family: one row per test clip (:func:`score_frame`).
    scores : dict of str to ndarray
        Every score of the detector on the test clips (``score_all``), for the jobs that need it.
    timings : dict
        ``family/machine/part -> {fit_s, score_s}`` (``family/root/part -> {fit_s}`` for a root job).
    history : History or None
        The training record of a network the job trained.
    config : dict, str or None
        The model's settings (``to_dict()``, else their repr).
    started, finished : float
        Wall-clock times (seconds since the epoch) of the job.
    worker : str
        ``host:pid`` of the process that ran it.
    memory : dict
        ``rss_peak_mib``: the largest resident memory of that process so far (a process that ran
        several jobs reports the largest of them); ``gpu_peak_mib``: the job's own peak of allocated
        GPU memory (on a GPU only).
    detector, root : object or None
        The fitted detector, the root model: only in the process that ran the job (never saved here).
    """

    job: Job
    frames: dict = field(default_factory=dict)
    scores: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    history: Any = None
    config: dict | str | None = None
    started: float = 0.0
    finished: float = 0.0
    worker: str = ""
    memory: dict = field(default_factory=dict)
    detector: Any = None
    root: Any = None

    @property
    def seconds(self) -> float:
        return self.finished - self.started

    def without_models(self) -> "JobResult":
        """The same result without the in-memory detector and root model (what a Ray job sends back)."""
        return replace(self, detector=None, root=None)


@dataclass
class JobFailure:
    """A job that raised, or that could not run because a job it needs failed.

    Attributes
    ----------
    job : Job
    error : str
        ``"<ErrorType>: <message>"``, or ``"not run: ... failed"``.
    log : Path
        The job's ``log.txt`` (with the traceback).
    """

    job: Job
    error: str
    log: Path | None = None

    def __str__(self) -> str:
        return f"{self.job.name}: {self.error}"


def _write_result(result: JobResult) -> None:
    from asdkit.models.persistence import StateEncoder

    folder = result.job.folder
    with atomic_dir(folder / RESULT) as tmp:
        enc = StateEncoder(tmp, lambda v: False)
        frames = {name: {"frame": enc.encode(f, f"frames.{name}"), "dtypes": {c: str(t) for c, t in f.dtypes.items()}}
                  for name, f in result.frames.items()}
        record = {
            "format": "asdkit-job-result", "version": 1,
            "job": {"family": result.job.family, "part": result.job.part, "machine": result.job.machine,
                    "seed": result.job.seed},
            "frames": frames,
            "scores": enc.encode({k: np.asarray(v, dtype=np.float64) for k, v in result.scores.items()}, "scores"),
            "timings": result.timings,
            "history": result.history.to_dict() if result.history is not None else None,
            "config": result.config,
            "started": result.started, "finished": result.finished, "worker": result.worker,
            "memory": result.memory,
        }
        enc.flush()
        (tmp / "result.json").write_text(json.dumps(record, indent=1, default=str))


def read_result(job: Job) -> JobResult:
    """The result an earlier run of ``job`` left in its folder.

    Raises
    ------
    ConfigError
        The folder holds no finished result, or a damaged one.
    """
    from asdkit.models.persistence import StateDecoder
    from asdkit.training.engine import History

    folder = job.folder / RESULT
    path = folder / "result.json"
    if not path.is_file():
        raise ConfigError(f"{job.name}: no finished result in {str(folder)!r}; run the job (asdkit run ... --resume).")
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ConfigError(f"{str(path)!r} is damaged ({e}); delete {str(job.folder)!r} and run again with "
                          "--resume.") from None
    if record.get("format") != "asdkit-job-result" or record.get("version") != 1:
        raise ConfigError(f"{str(path)!r} is not a job result this asdkit reads; delete {str(job.folder)!r} and "
                          "run again with --resume.")
    dec = StateDecoder(folder, "cpu", None)
    frames = {name: dec.decode(v["frame"]).astype(v["dtypes"]) for name, v in record["frames"].items()}
    scores = {k: np.asarray(v, dtype=np.float64) for k, v in dec.decode(record["scores"]).items()}
    history = History.from_dict(record["history"]) if record["history"] is not None else None
    return JobResult(job=job, frames=frames, scores=scores, timings=record["timings"], history=history,
                     config=record["config"], started=record["started"], finished=record["finished"],
                     worker=record["worker"], memory=record.get("memory", {}))


# ---------------------------------------------------------------------- root-level models on disk
def save_root(root, folder: Path) -> Path:
    """Save a root-level model: an object, or a list of objects, with ``get_state()`` and ``from_state(state, device)``.

    The classifier's root model (a list of :class:`~asdkit.models.classifier.ClassifierModel`) is one.
    Written to a temporary folder first, then renamed.
    """
    from asdkit.models.persistence import StateEncoder

    items = list(root) if isinstance(root, (list, tuple)) else [root]
    bad = [type(m).__name__ for m in items if not (hasattr(m, "get_state") and hasattr(type(m), "from_state"))]
    if bad:
        raise ConfigError(f"a root-level model of {bad} cannot be saved: give it get_state() and a "
                          "from_state(state, device) classmethod (as asdkit's ClassifierModel), so that jobs on "
                          "other processes and --resume can read it.")
    folder = Path(folder)
    with atomic_dir(folder) as tmp:
        enc = StateEncoder(tmp, lambda v: False)
        record = {"format": "asdkit-root-model", "version": 1, "list": isinstance(root, (list, tuple)),
                  "items": [{"class": f"{type(m).__module__}:{type(m).__qualname__}",
                             "state": enc.encode(m.get_state(), f"items.{i}")} for i, m in enumerate(items)]}
        enc.flush()
        (tmp / "root.json").write_text(json.dumps(record, indent=1))
    return folder


def load_root(folder: Path, device: str = "cpu"):
    """Read a root-level model :func:`save_root` wrote (classes are looked up among asdkit's modules only)."""
    from asdkit.models.persistence import StateDecoder

    path = Path(folder) / "root.json"
    if not path.is_file():
        raise ConfigError(f"{str(folder)!r} holds no saved root-level model (no root.json); run its root job again "
                          "(asdkit run ... --resume).")
    record = json.loads(path.read_text())
    dec = StateDecoder(Path(folder), device, None)
    items = []
    for item in record["items"]:
        module, _, qual = item["class"].partition(":")
        if not module.startswith("asdkit."):
            raise ConfigError(f"{str(path)!r} names the class {item['class']!r}, outside asdkit; it is not read.")
        klass = getattr(importlib.import_module(module), qual)
        items.append(klass.from_state(dec.decode(item["state"]), device))
    return items if record["list"] else items[0]


# ---------------------------------------------------------------------- running one job
def fit_family(spec: SystemSpec, task: Task, context: BuildContext, *, members: dict | None = None):
    """Build and fit one family's detector on one task (the protocol's training and other clips).

    Parameters
    ----------
    spec : SystemSpec
        Any system of the family.
    task : Task
    context : BuildContext
        With ``root`` set when the family has a root-level model.
    members : dict, optional
        Fitted detectors of the families ``spec.needs``.

    Returns
    -------
    Detector
        Fitted.
    """
    det = spec.build(context)
    return det.fit(task.train, outliers=task.others if spec.uses_outliers else None,
                   members={f: members[f] for f in spec.needs} if spec.needs else None)


def score_frame(task: Task, detector, scores: np.ndarray, key: str) -> pd.DataFrame:
    """One system's rows of a task: the test clips' metadata, score, the detector's decision and threshold."""
    scores = np.asarray(scores, dtype=np.float64)
    return task.test[META_COLUMNS].assign(score=scores, decision=detector.decision(scores, key),
                                          threshold=float(detector.thresholds_[key]))


def plot_task(frame: pd.DataFrame, threshold: float, folder: Path, machine: str, system: str) -> None:
    """The ROC curve and score histogram of one system on one machine type.

    Written as ``roc_<machine>.png`` and ``scores_<machine>.png``.
    """
    from matplotlib.figure import Figure

    from asdkit.plots.figures import plot_roc, plot_score_histogram

    folder.mkdir(parents=True, exist_ok=True)
    for kind, fn in (("roc", plot_roc), ("scores", plot_score_histogram)):
        fig = Figure(figsize=(4.5, 3.6), layout="constrained")   # no pyplot: the caller's backend is untouched
        ax = fig.add_subplot()
        kwargs = {"threshold": threshold} if kind == "scores" else {}
        fn(frame["score"].to_numpy(), labels=frame["label"].to_numpy(), domains=frame["domain"].to_numpy(),
           ax=ax, title=f"{system}: {machine}", **kwargs)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110)
        atomic_write_bytes(folder / f"{kind}_{machine}.png", buf.getvalue())


def _task(table: pd.DataFrame, job: Job) -> Task:
    for task in tasks(table, machines=[job.machine]):
        if task.part == job.part:
            return task
    raise ConfigError(f"{job.name}: the root has no training and test clips of {job.machine} ({job.part}).")


def _root_of(dep: JobResult, device: str):
    return dep.root if dep.root is not None else load_root(dep.job.folder / ROOT, device)


def _member(dep: JobResult, device: str):
    if dep.detector is not None:
        return dep.detector
    from asdkit.models.base import Detector

    return Detector.load(dep.job.model_dir, device=device)


def run_job(job: Job, table: pd.DataFrame, settings: JobSettings, deps: dict, *,
            say: Callable[[str], None] | None = None, capture: bool = False) -> JobResult:
    """Run one job: train (and for a family job score, write and save); keep its log and result in its folder.

    Parameters
    ----------
    job : Job
    table : pandas.DataFrame
        The scanned root (the same table for every job of a run).
    settings : JobSettings
    deps : dict
        ``Job.key -> JobResult`` of the jobs in ``job.needs`` (in memory, or read back from their folders).
    say : callable, optional
        Where the job's lines go besides its ``log.txt``.
    capture : bool, default False
        Also send everything the job prints (warnings, progress) to ``log.txt`` (what a Ray worker does).

    Returns
    -------
    JobResult
        With the fitted detector / root model in memory.

    Raises
    ------
    Exception
        Whatever the job raised, after writing its traceback to ``log.txt``.
    """
    folder = job.folder
    folder.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(folder / RESULT, ignore_errors=True)      # not finished until it is written again
    with open(folder / LOG, "w", buffering=1) as log_file:
        def tell(msg: str, *, only_log: bool = False) -> None:
            log_file.write(f"{time.strftime('%H:%M:%S')} {msg}\n")
            if say is not None and not only_log:
                say(msg)

        redirect = (contextlib.ExitStack() if not capture else _captured(log_file))
        with redirect:
            tell(f"{job.name} on {socket.gethostname()} (pid {os.getpid()}), run folder {job.run}", only_log=True)
            try:
                with thread_limit(settings.config.job_threads):
                    result = _run(job, table, settings, deps, tell)
            except BaseException as e:
                log_file.write(traceback.format_exc())
                tell(f"failed: {type(e).__name__}: {e}", only_log=True)
                raise
    _write_result(result)
    return result


@contextlib.contextmanager
def _captured(log_file):
    with contextlib.redirect_stdout(log_file), contextlib.redirect_stderr(log_file):
        yield


def _memory(device: str) -> dict:
    """Peak memory so far: the process's resident set and, on a GPU, the job's allocated memory (MiB)."""
    import resource

    out = {"rss_peak_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    if str(device).startswith("cuda"):
        import torch

        out["gpu_peak_mib"] = round(torch.cuda.max_memory_allocated() / 2 ** 20, 1)
    return out


def _run(job: Job, table: pd.DataFrame, settings: JobSettings, deps: dict, tell) -> JobResult:
    started = time.time()
    spec = settings.builder(job.family)
    context = settings.context(job.seed)
    worker = f"{socket.gethostname()}:{os.getpid()}"
    if str(context.device).startswith("cuda"):
        import torch

        torch.cuda.reset_peak_memory_stats()
    if job.is_root:
        train = part_training(table, job.part)
        t0 = time.perf_counter()
        root = spec.root_model(train, context)
        seconds = time.perf_counter() - t0
        save_root(root, job.folder / ROOT)
        tell(f"{job.family:10s} root model ({job.part}): trained on {len(train)} clips of "
             f"{train['machine'].nunique()} machine types in {seconds:.1f} s")
        return JobResult(job=job, timings={f"{job.family}/root/{job.part}": {"fit_s": round(seconds, 2)}},
                         started=started, finished=time.time(), worker=worker, memory=_memory(context.device),
                         root=root)

    task = _task(table, job)
    by_family = {d.family: deps[d.key] for d in job.needs}
    if spec.root_model is not None:
        context = replace(context, root=_root_of(by_family[job.family], context.device))
    members = {f: _member(by_family[f], context.device) for f in spec.needs}
    t0 = time.perf_counter()
    det = fit_family(spec, task, context, members=members)
    t1 = time.perf_counter()
    if spec.needs and "combine" in det.capabilities:       # built on members already scored
        scores = det.combine_scores({f: by_family[f].scores for f in spec.needs})
    else:
        scores = det.score_all(task.test)
    fit_s, score_s = t1 - t0, time.perf_counter() - t1
    frames = {}
    for s in settings.specs[job.family]:
        frame = score_frame(task, det, scores[s.score_key], s.score_key)
        write_submission(Path(job.run) / s.name, frame, frame["score"], decisions=frame["decision"])
        if settings.config.plots and frame["label"].notna().all() and frame["domain"].notna().all():
            plot_task(frame, float(frame["threshold"].iloc[0]), Path(job.run) / s.name / "plots", task.machine, s.name)
        frames[s.name] = frame
    if settings.config.keeps_models:
        det.save(job.model_dir)
    tell(f"{job.family:10s} {task.key}: fitted on {len(task.train)} clips in {fit_s:.1f} s, "
         f"scored {len(task.test)} in {score_s:.1f} s")
    config = getattr(det, "config_", None)
    if config is not None:
        config = config.to_dict() if hasattr(config, "to_dict") else repr(config)
    return JobResult(job=job, frames=frames, scores={k: np.asarray(v, dtype=np.float64) for k, v in scores.items()},
                     timings={f"{job.family}/{task.machine}/{task.part}": {"fit_s": round(fit_s, 2),
                                                                            "score_s": round(score_s, 2)}},
                     history=getattr(det, "history_", None), config=config, started=started, finished=time.time(),
                     worker=worker, memory=_memory(context.device), detector=det)


def describe(failures: Sequence[JobFailure]) -> str:
    """Failed jobs, one per line, with where each one's log lies."""
    return "\n".join(f"  {f}" + (f" (log: {f.log})" if f.log is not None and f.error[:7] != "not run" else "")
                     for f in failures)

