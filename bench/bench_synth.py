"""Time the synthetic dataset, and check its calibration with the reference detector.

Usage::

    python bench/bench_synth.py                      # write the quick dataset (all machines)
    python bench/bench_synth.py --paper-machine SynFan   # also one machine type at the paper size
    python bench/bench_synth.py --calibrate --seeds 0 1 2   # AUCs of the reference KNN at the paper counts

The calibration generates the clips in memory (no files) in ``--jobs``
processes and prints, per machine type and seed, AUC(source) and AUC(target)
of the reference detector (:func:`asdkit.experiments.calibration.synthetic_aucs`) fitted on all training clips
(source + target), with the official pooling (all anomalies in both AUCs).
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from asdkit.experiments.calibration import synthetic_aucs
from asdkit.synth import dataset as synth


def _folder_mb(root: Path) -> float:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 1e6


def bench_write(preset: str, machines: list[str] | None) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench_synth_"))
    try:
        t0 = time.perf_counter()
        table = synth.synthesize(tmp, preset=preset, seed=0, machines=machines, progress=False)
        seconds = time.perf_counter() - t0
        print(f"preset={preset:6s} machines={','.join(sorted(table['machine'].unique()))}: "
              f"{len(table)} clips, {seconds:.1f} s, {_folder_mb(tmp):.1f} MB written, "
              f"{1000 * seconds / len(table):.1f} ms per clip")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="quick", help="preset to write (default quick)")
    parser.add_argument("--machines", nargs="+", help="machine types (default all)")
    parser.add_argument("--paper-machine", help="also write this one machine type at the paper size")
    parser.add_argument("--calibrate", action="store_true", help="compute the reference AUCs instead of writing")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--counts", nargs=4, type=float, metavar=("SOURCE", "TARGET", "CELL", "SECONDS"),
                        help="calibration counts and clip length (default: the paper preset)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    if args.calibrate:
        preset = synth.PRESETS["paper"]
        if args.counts:
            s, t, c, sec = args.counts
            preset = synth.SynthPreset(int(s), int(t), int(c), float(sec))
        print(f"calibration of the reference KNN (n_neighbors=1, n_mels=64) on {preset}")
        t0 = time.perf_counter()
        tasks = [(m, s) for m in args.machines or list(synth.MACHINES) for s in args.seeds]
        with ProcessPoolExecutor(args.jobs) as pool:
            futures = [pool.submit(synthetic_aucs, m, preset=preset, seed=s) for m, s in tasks]
            for (machine, seed), future in zip(tasks, futures):
                auc_s, auc_t = future.result()
                print(f"{machine:11s} seed {seed}: AUC(source) {auc_s:.3f}  AUC(target) {auc_t:.3f}  "
                      f"gap {auc_s - auc_t:+.3f}", flush=True)
        print(f"({time.perf_counter() - t0:.0f} s with {args.jobs} processes)")
        return

    bench_write(args.preset, args.machines)
    if args.paper_machine:
        bench_write("paper", [args.paper_machine])


if __name__ == "__main__":
    main()
