"""A synthetic DCASE Task 2 dataset: asdkit's embedded default data.

:func:`synthesize` writes machine sounds in the exact layout and naming of the
DCASE 2024 development data::

    <root>/dev_data/raw/<machine>/train/section_00_source_train_normal_0000_<attrs>.wav
    <root>/dev_data/raw/<machine>/test/section_00_target_test_anomaly_0007_<attrs>.wav
    <root>/dev_data/raw/<machine>/attributes_00.csv

so every asdkit step (scanning, features, models, metrics) runs on it exactly as
on the real data, without a download. :func:`generate_clip` makes one clip in
memory, for notebooks and tests.

The machine types and how their sound is made live in
:mod:`asdkit.synth.machines` (:data:`MACHINES`, :func:`generate_clip`); the
DCASE 2025 and 2026 variants of the dataset (supplemental clips, two
microphones) in :mod:`asdkit.synth.years`. As in DCASE, the source domain
has several operating conditions and 990 training clips, the target domain
other conditions and 10.

Calibration: the plain reference detector :class:`asdkit.models.reference.MelStatsKNN`
(1-NN on per-clip log-mel means and standard deviations), fitted on all
training clips of a machine type at the ``paper`` counts, reaches AUC(source)
of 0.75-0.92 on every machine type and AUC(target) of 0.45-0.60, 0.2-0.4 lower
(seeds 0-2): the domain shift hurts, as on the real data. Reproduce with
``python bench/bench_synth.py --calibrate``; ``tests/test_synth.py`` checks a
reduced version.

Reproducibility: each clip's random generator is derived from
``np.random.SeedSequence([seed, machine_id, split_id, domain_id, label_id, index])``
(:func:`clip_seed`), so the same seed gives byte-identical files, and a subset
of machines gives the same bytes for those machines as a full run. The anomaly
of a clip draws on a stream of its own, so one seed gives the same clip with
and without an anomaly (``generate_clip(..., label="anomaly", anomaly=...,
severity=...)``), which lets a notebook play a fault against its normal twin.
"""
from __future__ import annotations

import csv
import io
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import soundfile as sf

from asdkit.data.names import NO_ATTRIBUTE, format_filename
from asdkit.errors import ConfigError, DatasetError
from asdkit.io import atomic_write_bytes, atomic_write_text, dir_mode, replace_dir
from asdkit.presets import check_integer, check_seed
from asdkit.runtime import show_progress
from asdkit.synth.machines import (  # noqa: F401
    BACKGROUNDS,
    DOMAINS,
    LABELS,
    MACHINES,
    MICROPHONES,
    MachineSpec,
    generate_clip,
    machine_spec,
)

__all__ = [
    "SynthPreset", "PRESETS", "MachineSpec", "MACHINES", "BACKGROUNDS", "MICROPHONES",
    "synthesize", "generate_clip", "clip_seed", "machine_spec", "synth_preset", "clip_plan",
]

_SPLIT_ID = {"train": 0, "test": 1}
_DOMAIN_ID = {d: i for i, d in enumerate(DOMAINS)}
_LABEL_ID = {lab: i for i, lab in enumerate(LABELS)}


# --------------------------------------------------------------------------- presets
@dataclass(frozen=True)
class SynthPreset:
    """How much synthetic data to write per machine type.

    Attributes
    ----------
    n_source_train : int
        Normal source-domain training clips (DCASE: 990).
    n_target_train : int
        Normal target-domain training clips (DCASE: 10).
    n_test_per_cell : int
        Test clips in each of the four cells {source, target} x {normal, anomaly}
        (DCASE: 50). Indices run 0000.. within each cell.
    clip_seconds : float
        Length of every clip (DCASE: 10 s).
    sr : int, default 16000
        Sample rate (DCASE: 16 kHz).
    """

    n_source_train: int
    n_target_train: int
    n_test_per_cell: int
    clip_seconds: float
    sr: int = 16000

    def __post_init__(self):
        for name in ("n_source_train", "n_target_train", "n_test_per_cell"):
            value = getattr(self, name)
            check_integer(value, f"SynthPreset.{name}", high=9999, hint="file names carry four-digit indices")
        if (not isinstance(self.clip_seconds, (int, float, np.integer, np.floating))
                or isinstance(self.clip_seconds, bool) or not 1.0 <= self.clip_seconds <= 60.0):
            raise ConfigError(f"SynthPreset.clip_seconds={self.clip_seconds!r}: must be between 1 and 60 s.")
        if not isinstance(self.sr, (int, np.integer)) or not 8000 <= self.sr <= 48000:
            raise ConfigError(f"SynthPreset.sr={self.sr!r}: must be an integer rate from 8000 to 48000 Hz "
                              "(DCASE uses 16000).")

    @property
    def n_samples(self) -> int:
        """Samples per clip."""
        return int(round(self.clip_seconds * self.sr))

    @property
    def clips_per_machine(self) -> int:
        """Clips written per machine type (training plus test)."""
        return self.n_source_train + self.n_target_train + 4 * self.n_test_per_cell


#: Named presets. ``"paper"`` has the DCASE 2024 development counts: 990 + 10
#: training clips, 50 per test cell, 10-s clips (1200 clips, 384 MB per machine
#: type; about a minute per machine type on one core). ``"quick"`` writes in
#: seconds and trains in seconds, for tests, CI and first steps in notebooks:
#: 60 + 10 training clips, 10 per test cell, 6-s clips (110 clips, 21 MB per
#: machine type; all four machine types in about 11 s on 2 cores, 85 MB).
#: Measure with ``python bench/bench_synth.py``.
#: ``"demo"`` is what ``asdkit demo`` writes: DCASE's imbalance in small (120 + 10
#: training clips, so the ten target clips are few beside the source clips, as in
#: the ``paper`` data and the real data) and 25 clips per test cell, so that one
#: clip moves an AUC by 4 points, not 10; 6-s clips.
PRESETS: dict[str, SynthPreset] = {
    "paper": SynthPreset(990, 10, 50, 10.0),
    "quick": SynthPreset(60, 10, 10, 6.0),
    "demo": SynthPreset(120, 10, 25, 6.0),
}


def synth_preset(preset: str | SynthPreset) -> SynthPreset:
    if isinstance(preset, SynthPreset):
        return preset
    if isinstance(preset, str) and preset in PRESETS:
        return PRESETS[preset]
    raise ConfigError(f"unknown synthetic-data preset {preset!r}; choose one of {sorted(PRESETS)} "
                      "or pass a SynthPreset(n_source_train, n_target_train, n_test_per_cell, clip_seconds).")


# --------------------------------------------------------------------------- seeds
def clip_seed(seed: int, machine: str, split: str, domain: str, label: str, index: int) -> np.random.SeedSequence:
    """The seed sequence of one clip of :func:`synthesize`.

    ``SeedSequence([seed, machine_id, split_id, domain_id, label_id, index])`` with
    ids train/test = 0/1, source/target = 0/1, normal/anomaly = 0/1.
    """
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed={seed!r}: must be a non-negative integer.")
    checks = (("split", split, _SPLIT_ID), ("domain", domain, _DOMAIN_ID), ("label", label, _LABEL_ID))
    for name, value, ids in checks:
        if value not in ids:
            raise ConfigError(f"{name} must be one of {list(ids)}, got {value!r}.")
    return np.random.SeedSequence([int(seed), machine_spec(machine).machine_id, _SPLIT_ID[split],
                                   _DOMAIN_ID[domain], _LABEL_ID[label], int(index)])


# --------------------------------------------------------------------------- writing
def _to_pcm16(y: np.ndarray) -> np.ndarray:
    return np.clip(np.round(np.asarray(y, dtype=np.float64) * 32767.0), -32768, 32767).astype(np.int16)


def _write_wav(path: Path, y: np.ndarray, sr: int) -> None:
    """Write a 16-bit PCM wav atomically (:func:`asdkit.io.atomic_write_bytes`).

    ``y`` has shape (n,) or (channels, n).
    """
    buf = io.BytesIO()
    sf.write(buf, _to_pcm16(y).T, sr, subtype="PCM_16", format="WAV")
    atomic_write_bytes(path, buf.getvalue())


def _write_attributes_csv(path: Path, machine: str, rows: list[tuple[str, str, dict[str, str]]]) -> None:
    """Write ``attributes_00.csv`` (``file_name,d1p,d1v,...``) atomically."""
    width = max([len(a) for _, _, a in rows] + [1])
    header = ["file_name"] + [f"d{i}{c}" for i in range(1, width + 1) for c in ("p", "v")]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for split, file, attrs in sorted(rows, key=lambda r: (_SPLIT_ID[r[0]], r[1])):
        cells = [x for kv in attrs.items() for x in kv] if attrs else [NO_ATTRIBUTE, ""]
        writer.writerow([f"{machine}/{split}/{file}"] + cells + [""] * (2 * width - len(cells)))
    atomic_write_text(path, buf.getvalue())


def clip_plan(spec: MachineSpec, preset: SynthPreset, *, year: int | None = None):
    """The clips of one machine: (split, domain, label, index, condition), in a fixed order.

    For ``year=2026`` the conditions are crossed with the domain's noise scenes
    (:func:`asdkit.synth.years.conditions_2026`).
    """
    from asdkit.synth.years import conditions_2026

    cells = [("train", "source", "normal", preset.n_source_train),
             ("train", "target", "normal", preset.n_target_train)]
    cells += [("test", domain, label, preset.n_test_per_cell)
              for domain in ("source", "target") for label in ("normal", "anomaly")]
    for split, domain, label, count in cells:
        conds = conditions_2026(spec, domain) if year == 2026 else spec.conditions(domain)
        for index in range(count):
            yield split, domain, label, index, conds[index % len(conds)]


def synthesize(root: str | Path, *, preset: str | SynthPreset = "quick", seed: int = 0,
               machines: Sequence[str] | None = None, progress: bool = True,
               overwrite: bool = False, year: int | None = None) -> pd.DataFrame:
    """Write the synthetic dataset in the DCASE 2024 development layout (or the 2025 or 2026 one).

    Parameters
    ----------
    root : path-like
        Dataset root; machine folders go to ``<root>/dev_data/raw/<machine>``.
    preset : str or SynthPreset, default "quick"
        A name of :data:`PRESETS` (``"paper"``: DCASE counts; ``"quick"``: small)
        or a :class:`SynthPreset`.
    seed : int, default 0
        Non-negative seed; the same seed gives byte-identical files.
    machines : sequence of str, optional
        Machine types to write (default: all of :data:`MACHINES`). A subset gives
        the same bytes for its machines as a full run.
    progress : bool, default True
        Show a tqdm progress bar (never when the environment variable ``CI`` is set).
    overwrite : bool, default False
        Replace machine folders that already exist; otherwise they raise.
    year : {None, 2024, 2025, 2026}, default None
        None and 2024: the default data. 2025: the same clips (the same bytes) plus a ``supplemental/``
        folder per machine type of machine-only and noise-only clips. 2026: two-channel clips (near and
        far microphone) with a noise scene per domain (:mod:`asdkit.synth.years`).

    Returns
    -------
    pandas.DataFrame
        One row per written clip with the columns of :func:`asdkit.data.dataset.scan_root`
        (``path``, ``file``, ``machine``, ``part``, ``section``, ``split``, ``domain``,
        ``label``, ``index``, ``attributes``, ``has_attributes``, ``pattern``) plus
        ``condition`` (the physical condition, concealed ones included),
        ``anomaly`` (kind or None) and ``severity`` (NaN for normal clips), in the
        row order of ``scan_root``. Supplemental clips (``year=2025``) have split
        ``"supplemental"`` and label ``"machine"`` or ``"noise"``.

    Raises
    ------
    ConfigError
        Unknown preset or machine, or a bad seed.
    DatasetError
        A machine folder exists and ``overwrite`` is False.

    Notes
    -----
    Each machine is written into a temporary folder beside its final place and
    renamed into place when complete, and each file is written to a temporary
    name and renamed, so an interruption never leaves a half-written machine
    folder (a stale temporary folder is removed by the next run).
    """
    from asdkit.synth import years

    cfg = synth_preset(preset)
    if year not in years.YEARS:
        raise ConfigError(f"year={year!r}: the synthetic data comes as DCASE 2024 (default), 2025 or 2026; "
                          f"choose one of {list(years.YEARS)}.")
    if machines is None:
        specs = list(MACHINES.values())
    else:
        if isinstance(machines, str):
            machines = [machines]
        specs = [machine_spec(m) for m in dict.fromkeys(machines)]
        if not specs:
            raise ConfigError(f"machines is empty; choose some of {list(MACHINES)} or pass None for all.")
    check_seed(seed)
    raw = Path(root) / "dev_data" / "raw"
    for spec in specs:
        if (raw / spec.name).exists() and not overwrite:
            raise DatasetError(f"{str(raw / spec.name)!r} already exists. Pass overwrite=True to replace it, "
                               "or choose another root.")
    raw.mkdir(parents=True, exist_ok=True)

    quiet = not show_progress(progress)
    from tqdm.auto import tqdm
    n_sup = years.n_supplemental(cfg) if year == 2025 else 0
    per_machine = cfg.clips_per_machine + 2 * n_sup
    bar = tqdm(total=per_machine * len(specs), desc="synthesize", unit="clip", disable=quiet)
    make = years.generate_two_channel if year == 2026 else generate_clip
    rows = []
    try:
        for spec in specs:
            for stale in raw.glob(f".{spec.name}.tmp-*"):
                shutil.rmtree(stale, ignore_errors=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{spec.name}.tmp-", dir=raw))
            try:
                machine_rows, csv_rows = [], []
                for split in _SPLIT_ID:
                    (tmp / split).mkdir()
                for split, domain, label, index, cond in clip_plan(spec, cfg, year=year):
                    rng = np.random.default_rng(clip_seed(seed, spec.name, split, domain, label, index))
                    y, info = make(spec.name, domain=domain, label=label, attributes=cond, rng=rng,
                                   seconds=cfg.clip_seconds, sr=cfg.sr, return_info=True)
                    attrs = dict(cond) if spec.attributes_written else {}
                    file = format_filename(section=0, domain=domain, split=split, label=label, index=index,
                                           attributes=attrs)
                    _write_wav(tmp / split / file, y, cfg.sr)
                    csv_rows.append((split, file, attrs))
                    machine_rows.append(dict(
                        path=str((raw / spec.name / split / file).resolve()), file=file, machine=spec.name,
                        part="dev", section="00", split=split, domain=domain, label=label, index=index,
                        attributes=attrs, has_attributes=bool(attrs), pattern="dcase2021+",
                        condition=info["condition"], anomaly=info["anomaly"], severity=info["severity"]))
                    bar.update()
                if n_sup:
                    (tmp / "supplemental").mkdir()
                for kind in (years.SUPPLEMENTAL_KINDS if n_sup else ()):
                    for index in range(n_sup):
                        rng = np.random.default_rng(years.supplemental_seed(seed, spec.name, kind, index))
                        y, info = years.generate_supplemental(spec.name, kind, rng=rng, seconds=cfg.clip_seconds,
                                                              sr=cfg.sr, return_info=True)
                        file = years.supplemental_name(kind, index)
                        _write_wav(tmp / "supplemental" / file, y, cfg.sr)
                        machine_rows.append(dict(
                            path=str((raw / spec.name / "supplemental" / file).resolve()), file=file,
                            machine=spec.name, part="dev", section="00", split="supplemental", domain="source",
                            label=kind, index=index, attributes={}, has_attributes=False, pattern="supplemental",
                            condition=info["condition"], anomaly=None, severity=float("nan")))
                        bar.update()
                _write_attributes_csv(tmp / "attributes_00.csv", spec.name, csv_rows)
                os.chmod(tmp, dir_mode())
                replace_dir(tmp, raw / spec.name)
                rows.extend(machine_rows)
            finally:
                if tmp.exists():
                    shutil.rmtree(tmp, ignore_errors=True)
    finally:
        bar.close()
    table = pd.DataFrame(rows)
    table = table.sort_values(["machine", "part", "split", "section", "domain", "label", "index"],
                              kind="stable").reset_index(drop=True)
    table.attrs["root"] = str(Path(root).resolve())
    table.attrs["preset"] = cfg
    table.attrs["seed"] = int(seed)
    return table
