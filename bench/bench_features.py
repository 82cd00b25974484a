"""Feature extraction throughput: batched torch path against a per-clip librosa loop.

Both paths do the same work on the same wav files (load, standardise, cut eight
2-s segments, log-mel); the script prints clips per second of each and their
ratio, measured in this one run, for the paper (224 mels) and quick (64 mels)
feature presets, plus the speed-up of a second run served by the feature cache.

    python bench/bench_features.py [--clips 64] [--threads N]

Target (issue #2): batched / per-clip >= 2 on 2 CPU cores.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from asdkit.data.audio import load_clip
from asdkit.features.cache import FeatureCache
from asdkit.features.spectra import FEATURE_PRESETS, clip_segments, extract, log_mel


def make_clips(folder: Path, n: int, seconds: float = 10.0, sr: int = 16000) -> list[Path]:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * sr)) / sr
    paths = []
    for i in range(n):
        y = 0.1 * rng.standard_normal(t.size) + 0.2 * np.sin(2 * np.pi * (100 + 10 * i) * t)
        p = folder / f"section_00_source_train_normal_{i:04d}_noAttribute.wav"
        sf.write(p, y.astype(np.float32), sr, subtype="PCM_16")
        paths.append(p)
    return paths


def per_clip_librosa(paths, config) -> float:
    t0 = time.perf_counter()
    for p in paths:
        log_mel(clip_segments(load_clip(p), config=config), config=config)
    return time.perf_counter() - t0


def batched(paths, config, **kw) -> float:
    t0 = time.perf_counter()
    extract(paths, config=config, **kw)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=64)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.clips} clips of 10 s")
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_clips(Path(tmp), args.clips)
        for name in ("paper", "quick"):
            cfg = FEATURE_PRESETS[name]
            per_clip_librosa(paths[:2], cfg)          # warm up both paths (imports, numba, allocator)
            batched(paths[:2], cfg)
            t_ref = per_clip_librosa(paths, cfg)
            t_bat = batched(paths, cfg)
            cache = FeatureCache(Path(tmp) / f"cache-{name}")
            batched(paths, cfg, cache=cache)
            t_hit = batched(paths, cfg, cache=FeatureCache(Path(tmp) / f"cache-{name}"))
            n = len(paths)
            print(f"[{name:5s}] per-clip librosa {n / t_ref:7.1f} clips/s | batched torch {n / t_bat:7.1f} clips/s "
                  f"| ratio {t_ref / t_bat:4.2f}x | cached re-run {n / t_hit:7.1f} clips/s "
                  f"({t_bat / t_hit:4.1f}x the batched run)")


if __name__ == "__main__":
    main()
