"""What the two-microphone policies cost: feature extraction of two-channel clips under each channel policy.

Writes two-channel 10-s clips (DCASE 2026's form) with the 2026 variant of the embedded data, then times
``extract`` (load, channel policy, standardise, eight 2-s segments, log-mel; no cache) under ``near``, ``far``,
``both`` (two feature maps per segment) and ``denoised`` (spectral subtraction before the features), and prints
clips per second and the ratio to ``near``, measured in this one run.

    python bench/bench_channels.py [--clips 48] [--threads N] [--features paper|quick]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from asdkit.features.spectra import extract, feature_config
from asdkit.synth.dataset import SynthPreset, synthesize


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=48)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--features", default="paper")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        preset = SynthPreset(n_source_train=args.clips, n_target_train=1, n_test_per_cell=1, clip_seconds=10.0)
        table = synthesize(Path(tmp), preset=preset, machines=["SynFan"], progress=False, year=2026)
        paths = table[table["split"] == "train"]["path"].tolist()[:args.clips]
        extract(paths[:2], config=feature_config(args.features))                     # warm-up
        rates = {}
        for policy in ("near", "far", "both", "denoised"):
            cfg = feature_config(args.features, channels=policy)
            t0 = time.perf_counter()
            X = extract(paths, config=cfg)
            rates[policy] = len(paths) / (time.perf_counter() - t0)
            assert np.isfinite(X).all()
        print(f"{len(paths)} two-channel 10-s clips, {args.features} features, torch threads {torch.get_num_threads()}")
        for policy, rate in rates.items():
            print(f"  {policy:9s} {rate:7.1f} clips/s   {rate / rates['near']:.2f} x near")


if __name__ == "__main__":
    main()
