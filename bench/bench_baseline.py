"""Autoencoder baseline on one paper-size synthetic machine type: throughput, time, memory, AUC.

Writes one machine type of the synthetic dataset at DCASE size (990 + 10
training clips and 200 test clips of 10 s; done in a child process so that its
memory does not count), then, in this process, runs the whole baseline:
features, training, fitting both scorers and thresholds, scoring the test
clips. Prints

* training throughput: vectors per second through the optimiser (one vector
  = 5 stacked log-mel frames = 640 values);
* end-to-end time (features + training + scoring) and its parts;
* peak memory of this process (``resource.getrusage(...).ru_maxrss``);
* AUC over all test clips, AUC(source), AUC(target), pAUC of both scorers.

    python bench/bench_baseline.py [--preset cpu] [--machine SynFan] [--threads N]
                                   [--device auto] [--root DIR] [--memmap]

``--root`` reuses a dataset root that already holds the machine (it is written
there if missing); without it a temporary folder is used and removed.

On cores shared with other jobs use ``--threads 1``: two OpenMP threads stall
each other at every parallel region when a core is taken (measured at load 5-7:
the former 20-epoch ``cpu`` preset took 5.5 min end-to-end with one thread and
did not finish in 17 min with two).

Measured (SynFan, 2 threads, idle development machine, 2026-11-24):
``--preset cpu --memmap``: 13 700 training vectors/s, 98.7 s end-to-end, peak
RSS 0.91 GB, AUC MSE 0.64 / MAHALA 0.71; ``--preset paper --epochs 2``:
13 800 vectors/s, 71.5 s (100 epochs at that rate: about 34 min).
"""
from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from asdkit.data.dataset import scan_root
from asdkit.evaluation.metrics import section_metrics
from asdkit.models.baseline import BASELINE_PRESETS, AutoencoderBaseline, baseline_config


def write_data(root: Path, machine: str) -> float:
    """Synthesize the paper-size machine in a child process; returns seconds."""
    if (root / "dev_data" / "raw" / machine).exists():
        return 0.0
    code = ("import sys; from asdkit.synth.dataset import synthesize; "
            "synthesize(sys.argv[1], preset='paper', machines=[sys.argv[2]], seed=0, progress=False)")
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, str(root), machine], check=True)
    return time.perf_counter() - t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="cpu", choices=sorted(BASELINE_PRESETS))
    ap.add_argument("--machine", default="SynFan")
    ap.add_argument("--epochs", type=int, default=None, help="override the preset's epochs")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--root", default=None, help="dataset root to reuse (default: a temporary folder)")
    ap.add_argument("--memmap", action="store_true", help="keep the training log-mels in a memory-mapped file")
    ap.add_argument("--progress", action="store_true")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    config = baseline_config(args.preset, **({"epochs": args.epochs} if args.epochs else {}))

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.root) if args.root else Path(tmp) / "data"
        t_synth = write_data(root, args.machine)
        table = scan_root(root, machines=[args.machine])
        train = table[table.split == "train"].reset_index(drop=True)
        test = table[table.split == "test"].reset_index(drop=True)

        print(f"machine {args.machine}: {len(train)} training clips "
              f"({(train.domain == 'source').sum()} source + {(train.domain == 'target').sum()} target), "
              f"{len(test)} test clips" + (f"; written in {t_synth:.0f} s" if t_synth else ""))
        print(f"preset {args.preset!r}: epochs {config.epochs}, batch {config.batch_size}, lr {config.lr}, "
              f"frame_stride {config.frame_stride}; torch threads {torch.get_num_threads()}, device {args.device}")

        det = AutoencoderBaseline(score="mse", preset=config, seed=0, device=args.device, progress=args.progress,
                                  memmap_dir=Path(tmp) / "memmap" if args.memmap else None)
        t0 = time.perf_counter()
        det.fit(train)
        t_fit = time.perf_counter() - t0
        scores = det.score_all(test)
        t_total = time.perf_counter() - t0

    h = det.history_
    t_train = float(np.sum(h.epoch_seconds))
    vectors = h.n_train * h.epochs
    print(f"\ntraining: {h.epochs} epochs x {h.n_train} vectors ({h.n_val} held out), {t_train:.1f} s "
          f"-> {vectors / t_train:,.0f} vectors/s ({5 * vectors / t_train:,.0f} frames/s counting 5 per vector)")
    print("train loss per epoch: " + " ".join(f"{v:.2f}" for v in h.train_loss))
    print(f"val loss (last epoch): {h.val_loss[-1]:.2f}")
    print(f"end-to-end: {t_total:.1f} s = fit {t_fit:.1f} s (training {t_train:.1f} s, features + scorer "
          f"fitting + training scores {t_fit - t_train:.1f} s) + test scoring {t_total - t_fit:.1f} s")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (ru_maxrss): {peak_mb:,.0f} MB")
    print(f"Mahalanobis shrinkage (source, target): {np.round(det.mahala_scorer_.shrinkage_, 4).tolist()}")

    y = (test.label == "anomaly").to_numpy().astype(int)
    print("\nscore    AUC    AUC(src) AUC(tgt) pAUC   threshold")
    for name, s in scores.items():
        m = section_metrics(y, s, test.domain.to_numpy())
        print(f"{name:<8} {roc_auc_score(y, s):.3f}  {m['auc_source']:.3f}    {m['auc_target']:.3f}    "
              f"{m['pauc']:.3f}  {det.thresholds_[name]:.4g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
