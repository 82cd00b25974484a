"""One frozen, validated description of a run: :class:`RunConfig`.

The command line (``asdkit run``) and the Python API (:func:`asdkit.run_experiment`,
:func:`asdkit.run_seeds`) both build one; ``plan.json`` of every run folder
stores it, and every job receives it. A config says *what* to run and *how*;
where it goes (``out``) and with which seed are given beside it, so that one
config serves every seed of :func:`asdkit.run_seeds`.

Examples
--------
>>> cfg = RunConfig(data="data/quick", systems="all", preset="quick", threads=1)
>>> cfg.preset, cfg.remote, len(cfg.systems) > 10
('quick', False, True)
>>> RunConfig(data="data/quick", preset="huge")
Traceback (most recent call last):
...
asdkit.errors.ConfigError: RunConfig.preset='huge': choose one of ['quick', 'cpu', 'paper'].
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from asdkit.data.channels import check_channels
from asdkit.data.supplemental import SUPPLEMENTAL_USES
from asdkit.errors import ConfigError
from asdkit.experiments.systems import PRESETS, SystemSpec, resolve_systems
from asdkit.presets import check_integer

__all__ = ["RunConfig", "EXECUTORS"]

#: Where the jobs of a run can execute (:mod:`asdkit.experiments.executors`).
EXECUTORS = ("local", "ray")
#: What ``--resume`` must find unchanged in a run folder (with the seed).
PINNED = ("data", "preset", "channels", "supplemental")


@dataclass(frozen=True)
class RunConfig:
    """Everything that decides a run except its output folder and seed.

    Parameters
    ----------
    data : str
        Any DCASE-layout root (real or from ``asdkit synth``).
    systems : tuple of str
        Names of :data:`asdkit.experiments.systems.SYSTEMS` (``"all"``: every registered one); kept
        in the order given, each once.
    preset : {"quick", "cpu", "paper"}
        Model settings.
    machines : tuple of str or None
        Only these machine types (the others still serve as other machine types).
    device : str
        ``"auto"`` is resolved where each job runs (a GPU when that machine has one).
    channels : str
        The channel policy every model reads its clips under (:mod:`asdkit.data.channels`).
    supplemental : tuple of {"machine", "noise"}
        The DCASE 2025 supplemental clips used in training (:mod:`asdkit.data.supplemental`).
    threads : int or None
        torch's and the BLAS threads while each in-process job runs (None leaves them as they are).
        Results differ in the last digits between thread counts.
    executor : {"local", "ray"}
        Where the jobs run; ``address``, ``cpus_per_job`` and ``gpus_per_job`` are Ray's.
    progress, plots, save_models : bool
        Progress bars, ROC and histogram PNGs, every fitted detector saved under ``<out>/models``.
    cache : str or None
        Feature cache folder (None: ``<out>/.feature_cache``).
    resume : bool
        Run only the jobs that have no finished result in the output folder yet.
    """

    data: str
    systems: tuple[str, ...] = ("baseline-mse", "baseline-mahala")
    preset: str = "quick"
    machines: tuple[str, ...] | None = None
    device: str = "auto"
    channels: str = "auto"
    supplemental: tuple[str, ...] = ()
    threads: int | None = None
    executor: str = "local"
    address: str | None = None
    cpus_per_job: float = 1
    gpus_per_job: float = 0
    progress: bool = False
    plots: bool = True
    save_models: bool = False
    cache: str | None = None
    resume: bool = False

    def __post_init__(self):
        def put(name, value):
            object.__setattr__(self, name, value)

        if not isinstance(self.data, (str, Path)) or not str(self.data):
            raise ConfigError(f"RunConfig.data={self.data!r}: give the folder of a DCASE-layout root.")
        put("data", str(self.data))
        put("systems", tuple(s.name for s in resolve_systems(self.systems)))
        if self.preset not in PRESETS:
            raise ConfigError(f"RunConfig.preset={self.preset!r}: choose one of {list(PRESETS)}.")
        if self.machines is not None:
            machines = (self.machines,) if isinstance(self.machines, str) else tuple(self.machines)
            put("machines", tuple(dict.fromkeys(machines)) or None)
        check_channels(self.channels)
        supplemental = (self.supplemental,) if isinstance(self.supplemental, str) else tuple(self.supplemental or ())
        bad = sorted(set(supplemental) - set(SUPPLEMENTAL_USES))
        if bad:
            raise ConfigError(f"RunConfig.supplemental: {bad}; choose from {list(SUPPLEMENTAL_USES)}.")
        put("supplemental", tuple(sorted(set(supplemental))))
        if self.threads is not None:
            put("threads", check_integer(self.threads, "threads", who="RunConfig"))
        if self.executor not in EXECUTORS:
            raise ConfigError(f"RunConfig.executor={self.executor!r}: choose one of {list(EXECUTORS)}.")
        if not self.remote and (self.address is not None or self.cpus_per_job != 1 or self.gpus_per_job != 0):
            raise ConfigError("RunConfig: address, cpus_per_job and gpus_per_job are for executor='ray'.")
        if not self.cpus_per_job > 0 or not self.gpus_per_job >= 0:
            raise ConfigError(f"RunConfig: cpus_per_job={self.cpus_per_job!r}, gpus_per_job={self.gpus_per_job!r}; "
                              "give a positive number of CPUs and zero or more GPUs per job.")
        if self.cache is not None:
            put("cache", str(self.cache))
        for name in ("progress", "plots", "save_models", "resume"):
            put(name, bool(getattr(self, name)))

    # ------------------------------------------------------------------ derived
    @property
    def remote(self) -> bool:
        """True when the jobs may run in other processes or on other machines (Ray)."""
        return self.executor != "local"

    @property
    def specs(self) -> list[SystemSpec]:
        """The registered systems of :attr:`systems`."""
        return resolve_systems(self.systems)

    @property
    def keeps_models(self) -> bool:
        """Whether each family job saves its detector (always on Ray: dependent jobs and ``--resume`` read them)."""
        return self.save_models or self.remote

    @property
    def job_threads(self) -> int | None:
        """torch's and the BLAS threads while a job runs: a Ray job's ``cpus_per_job``, else :attr:`threads`."""
        return max(1, int(self.cpus_per_job)) if self.remote else self.threads

    @property
    def job_progress(self) -> bool:
        """Progress bars inside the jobs (in-process only; Ray shows one bar over the jobs)."""
        return self.progress and not self.remote

    def replace(self, **changes) -> "RunConfig":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def for_output(self, out: str | Path) -> "RunConfig":
        """This config with the feature cache and, for remote jobs, the data as absolute paths beside ``out``."""
        cache = self.cache if self.cache is not None else str(Path(out) / ".feature_cache")
        if self.remote:                             # workers may run elsewhere: every path they get is absolute
            return self.replace(data=str(Path(self.data).absolute()), cache=str(Path(cache).absolute()))
        return self.replace(cache=cache)

    # ------------------------------------------------------------------ saved form
    def to_dict(self) -> dict[str, Any]:
        """Plain values (lists for tuples), as ``plan.json`` stores them."""
        out = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "RunConfig":
        """The config :meth:`to_dict` wrote; unknown keys are refused with their names."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ConfigError(f"RunConfig.from_dict: unknown setting(s) {unknown}; known: {sorted(names)}.")
        return cls(**dict(values))

    def pinned(self) -> dict[str, Any]:
        """What ``--resume`` must find unchanged (:data:`PINNED`), as plain values."""
        values = self.to_dict()
        values["data"] = str(Path(self.data).absolute())
        return {k: values[k] for k in PINNED}


def as_config(data: str | Path | RunConfig, settings: Mapping[str, Any]) -> RunConfig:
    """A :class:`RunConfig` from a root and keyword settings, or a config with some settings changed."""
    if isinstance(data, RunConfig):
        return data.replace(**settings) if settings else data
    known = {f.name for f in dataclasses.fields(RunConfig)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ConfigError(f"unknown run setting(s) {unknown}; the settings of a run are {sorted(known - {'data'})}.")
    return RunConfig(data=data, **settings)


def check_seeds(seeds: Sequence[int]) -> list[int]:
    """Distinct non-negative integer seeds, or a :class:`ConfigError`."""
    from asdkit.presets import is_integer

    seeds = list(seeds)
    bad = [s for s in seeds if not is_integer(s) or s < 0]
    if not seeds or bad or len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds={seeds!r}: give distinct non-negative integers, e.g. --seeds 0 1 2.")
    return [int(s) for s in seeds]
