"""An on-disk cache of clip features, keyed by the feature config and the audio file.

Layout::

    <directory>/<kind>-<config hash>/config.json
    <directory>/<kind>-<config hash>/<aa>/<file hash>.npy

The file hash is the SHA-1 of the audio file's bytes, so a renamed or copied
file hits the cache and a re-generated file with other content misses it. A
cheap in-memory index (path, size, mtime) avoids hashing a file twice in one
process. Writes go to a temporary file that is renamed into place, so a killed
run never leaves a half-written entry.

Log-mel values in dB and phases in radians are stored as float16: their
round-off (under 0.02 dB for levels within +-64 dB, under 1e-3 rad for phases) is
far below anything a model or a plot can use. FFT magnitudes span too wide a
range for float16 and are stored as float32.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np

from asdkit.errors import ConfigError
from asdkit.io import atomic_write_bytes

__all__ = ["FeatureCache", "STORAGE_DTYPES"]

#: Storage dtype per feature kind.
STORAGE_DTYPES = {"log_mel": np.float16, "phase": np.float16, "fft": np.float32}

_VERSION = 1




def _file_hash(path: str | Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class FeatureCache:
    """Features of audio files stored on disk.

    Parameters
    ----------
    directory : path-like
        Where the cache lives (created on first write).

    Examples
    --------
    >>> from asdkit.features.spectra import extract, FEATURE_PRESETS
    >>> cache = FeatureCache(".asdkit_cache")                    # doctest: +SKIP
    >>> X = extract(table, config=FEATURE_PRESETS["quick"], cache=cache)  # doctest: +SKIP
    """

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self._hashes: dict[tuple[str, int, int], str] = {}
        self.hits = 0
        self.misses = 0

    def _config_dir(self, kind: str, config) -> Path:
        if kind not in STORAGE_DTYPES:
            raise ConfigError(f"unknown feature kind {kind!r}; choose one of {sorted(STORAGE_DTYPES)}")
        blob = json.dumps({"kind": kind, "config": config.to_dict(), "version": _VERSION}, sort_keys=True)
        return self.directory / f"{kind}-{hashlib.sha1(blob.encode()).hexdigest()[:16]}"

    def _entry(self, path: str | Path, kind: str, config) -> Path:
        st = os.stat(path)
        key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
        digest = self._hashes.get(key)
        if digest is None:
            digest = self._hashes[key] = _file_hash(path)
        return self._config_dir(kind, config) / digest[:2] / f"{digest}.npy"

    def get(self, path: str | Path, *, kind: str, config) -> np.ndarray | None:
        """The stored feature of ``path`` as float32, or None if absent (or unreadable)."""
        entry = self._entry(path, kind, config)
        if entry.is_file():
            try:
                arr = np.load(entry)
            except (OSError, ValueError):
                entry.unlink(missing_ok=True)
            else:
                self.hits += 1
                return arr.astype(np.float32)
        self.misses += 1
        return None

    @staticmethod
    def as_stored(feature: np.ndarray, kind: str) -> np.ndarray:
        """``feature`` at the precision :meth:`get` returns it (float16 round trip for log-mels and phases), float32.

        A computed feature passed through this equals the same feature read back from the cache, so a run
        gives the same results whether its cache was empty or full.
        """
        return np.asarray(feature).astype(STORAGE_DTYPES[kind]).astype(np.float32)

    def put(self, path: str | Path, feature: np.ndarray, *, kind: str, config) -> Path:
        """Store the feature of ``path``; returns the entry's path."""
        entry = self._entry(path, kind, config)
        cdir = entry.parent.parent
        meta = cdir / "config.json"
        if not meta.exists():
            atomic_write_bytes(meta, json.dumps({"kind": kind, "config": config.to_dict(),
                                                 "version": _VERSION}, indent=2).encode())

        buf = io.BytesIO()
        np.save(buf, np.asarray(feature).astype(STORAGE_DTYPES[kind]))
        atomic_write_bytes(entry, buf.getvalue())
        return entry

    def clear(self) -> None:
        """Delete every cached entry."""
        import shutil

        if self.directory.exists():
            shutil.rmtree(self.directory)
        self._hashes.clear()
