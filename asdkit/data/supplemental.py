"""Using the DCASE 2025 supplemental clips in training.

The 2025 data adds, per machine type, clips of the machine alone (``machine``)
and of the site's noise alone (``noise``); :func:`asdkit.scan_root` lists them
with the split ``"supplemental"``, apart from every training and test clip.
Two ways to use them, each a function of a clip table, so that every model
family can take them unchanged:

* :func:`as_normals`: the machine-only clips as extra training normals;
* :func:`mix_noise`: noise augmentation: a share of the training clips is
  replaced by the clip mixed with a randomly chosen noise-only clip at a
  random signal-to-noise ratio, written as new wav files.

``asdkit run --supplemental noise machine`` applies them to every machine type
that has supplemental clips (:func:`apply_supplemental`, before anything is
trained, so that root-level models and the other machine types' clips used as
outliers see the same training clips).
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import soundfile as sf

from asdkit.errors import ConfigError, DatasetError
from asdkit.io import atomic_write_bytes

__all__ = ["SUPPLEMENTAL_USES", "supplemental_rows", "as_normals", "mix_noise", "with_supplemental",
           "apply_supplemental"]

#: What ``--supplemental`` accepts: the machine-only clips as normals, the noise-only clips as augmentation.
SUPPLEMENTAL_USES = ("machine", "noise")


def supplemental_rows(table: pd.DataFrame, machine: str, part: str, kind: str) -> pd.DataFrame:
    """The supplemental clips of one kind (``"machine"`` or ``"noise"``) of a machine type and part."""
    if kind not in SUPPLEMENTAL_USES:
        raise ConfigError(f"kind={kind!r}: supplemental clips are {list(SUPPLEMENTAL_USES)}.")
    keep = (table["machine"] == machine) & (table["part"] == part) & (table["split"] == "supplemental") \
        & (table["label"] == kind)
    return table[keep].reset_index(drop=True)


def as_normals(rows: pd.DataFrame) -> pd.DataFrame:
    """Machine-only supplemental clips as training normals (split ``train``, label ``normal``).

    Their domain is the one their name gives, else ``source``; they keep the
    pattern ``"supplemental"``, so a table still tells them apart.
    """
    if len(rows) and not set(rows["label"]) <= {"machine"}:
        raise DatasetError("as_normals takes machine-only supplemental clips; noise-only clips are no normals "
                           "(use them with mix_noise).")
    return rows.assign(split="train", label="normal", domain=rows["domain"].fillna("source"))


def _read(path) -> tuple[np.ndarray, int]:
    from asdkit.data.audio import load_clip

    info = sf.info(str(path))
    if info.channels != 1:
        raise DatasetError(f"{str(path)!r}: noise augmentation mixes mono clips (DCASE 2025); this one has "
                           f"{info.channels} channels.")
    return load_clip(path, sr=info.samplerate, channels="mono", min_seconds=0.1), info.samplerate


def mix_noise(train: pd.DataFrame, noise: pd.DataFrame, out: str | Path, *, fraction: float = 0.5,
              snr_db: tuple[float, float] = (5.0, 15.0), seed: int = 0) -> pd.DataFrame:
    """Replace a share of the training clips by their mixture with noise-only clips.

    Parameters
    ----------
    train : DataFrame
        Training clips (a clip table of one machine type).
    noise : DataFrame
        Noise-only supplemental clips (:func:`supplemental_rows` with ``"noise"``).
    out : path-like
        Folder the mixed clips are written to, as ``<out>/train/<the clip's own name>`` (so its
        domain and attributes stay what they were), each to a temporary file renamed into place.
    fraction : float, default 0.5
        Share of the training clips replaced (drawn at random, the same in every domain).
    snr_db : (low, high), default (5, 15)
        The clip-to-noise ratio in dB, drawn uniformly per mixed clip.
    seed : int

    Returns
    -------
    DataFrame
        ``train`` with the ``path`` of the mixed clips replaced, and a column ``mixed_noise``
        naming the noise clip mixed in (empty for clips left as they were).
    """
    if not 0 < fraction <= 1:
        raise ConfigError(f"fraction={fraction!r}: must lie in (0, 1].")
    lo, hi = snr_db
    if not lo <= hi:
        raise ConfigError(f"snr_db={snr_db!r}: give (low, high) with low <= high.")
    if noise.empty:
        raise DatasetError("mix_noise: no noise-only clips given (the machine type has no supplemental/ noise clips).")
    rng = np.random.default_rng(seed)
    order = np.argsort(train["path"].to_numpy(), kind="stable")          # the same draw however the table is sorted
    chosen = np.zeros(len(train), dtype=bool)
    chosen[order[rng.random(len(train)) < fraction]] = True
    folder = Path(out) / "train"
    folder.mkdir(parents=True, exist_ok=True)
    paths, mixed = train["path"].astype(str).tolist(), [""] * len(train)
    noise_paths = noise["path"].astype(str).tolist()
    noise_waves: dict[int, tuple[np.ndarray, int]] = {}                 # each noise clip read once
    for i in order:
        if not chosen[i]:
            continue
        j, snr, offset = int(rng.integers(len(noise_paths))), rng.uniform(lo, hi), rng.random()
        y, sr = _read(paths[i])
        if j not in noise_waves:
            noise_waves[j] = _read(noise_paths[j])
        n, nsr = noise_waves[j]
        if nsr != sr:
            raise DatasetError(f"{noise_paths[j]!r} is at {nsr} Hz, the training clip {paths[i]!r} at {sr} Hz.")
        n = np.tile(n, int(np.ceil(y.size / n.size)) + 1)
        start = int(offset * (n.size - y.size))
        n = n[start:start + y.size].astype(np.float64)
        y = y.astype(np.float64)
        gain = np.sqrt(np.mean(y ** 2) / max(np.mean(n ** 2), 1e-20)) * 10 ** (-snr / 20)
        mix = y + gain * n
        peak = np.max(np.abs(mix))
        if peak > 0.99:
            mix *= 0.99 / peak
        target = folder / Path(paths[i]).name
        buf = io.BytesIO()
        sf.write(buf, mix.astype(np.float32), sr, subtype="PCM_16", format="WAV")
        atomic_write_bytes(target, buf.getvalue())
        paths[i], mixed[i] = str(target.resolve()), Path(noise_paths[j]).name
    return train.assign(path=paths, mixed_noise=mixed)


def with_supplemental(train: pd.DataFrame, table: pd.DataFrame, uses: Sequence[str], *, machine: str, part: str,
                      out: str | Path, seed: int = 0) -> pd.DataFrame:
    """A task's training clips with the supplemental clips used as ``uses`` asks (see the module).

    Machine types without supplemental clips of a kind keep their training clips as they are for that kind.
    Noise is mixed into the original training clips only, never into machine-only clips added as normals.
    """
    bad = sorted(set(uses) - set(SUPPLEMENTAL_USES))
    if bad:
        raise ConfigError(f"supplemental uses {bad} unknown; choose from {list(SUPPLEMENTAL_USES)} "
                          "('machine': machine-only clips as extra normals, 'noise': noise-only clips mixed in).")
    out_train = train
    if "noise" in uses:
        noise = supplemental_rows(table, machine, part, "noise")
        if len(noise):
            out_train = mix_noise(train, noise, Path(out) / f"{machine}_{part}", seed=seed)
    if "machine" in uses:
        extra = as_normals(supplemental_rows(table, machine, part, "machine"))
        if len(extra):
            out_train = pd.concat([out_train, extra], ignore_index=True)
    return out_train.reset_index(drop=True)


def apply_supplemental(table: pd.DataFrame, uses: Sequence[str], *, out: str | Path, seed: int = 0) -> pd.DataFrame:
    """A whole root's clip table with every machine type's training clips as :func:`with_supplemental` makes them.

    Rows other than training clips are kept as they are. ``uses`` empty returns ``table`` itself.
    """
    if not uses:
        return table
    parts = [table[table["split"] != "train"]]
    for (machine, part), train in table[table["split"] == "train"].groupby(["machine", "part"], sort=True):
        parts.append(with_supplemental(train.reset_index(drop=True), table, uses, machine=machine, part=part,
                                       out=out, seed=seed))
    out_table = pd.concat(parts, ignore_index=True)
    out_table.attrs = dict(table.attrs)
    return out_table
