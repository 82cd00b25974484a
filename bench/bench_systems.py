"""Time per system of a full ``asdkit run`` (every system, one preset) and the results table.

Runs :func:`asdkit.experiments.run.run_experiment` with ``systems="all"`` on a DCASE-layout
root with a fresh feature cache, then prints, per family of systems, the
seconds spent fitting and scoring summed over machine types, their share of
the total, the total against a budget (30 minutes: the ``cpu`` preset's target
on the embedded ``paper`` dataset on 2 CPU cores), and the results table.

    python bench/bench_systems.py --data data/paper --preset cpu --out runs/all-paper-cpu [--threads N]

The classifier's time includes training the one network of the root (its
root-level model); the ensemble's time is its own (standardising and combining
the members' test scores), its members being fitted once for their own systems.

Measured on the development machine (2 cores, idle, 2026-11-24): see README, *Results*.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import torch

from asdkit.experiments.run import format_table, run_experiment
from asdkit.experiments.systems import PRESETS


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="data/paper")
    p.add_argument("--preset", default="cpu", choices=PRESETS)
    p.add_argument("--out", default="runs/all-paper-cpu")
    p.add_argument("--systems", nargs="+", default=["all"])
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--budget-min", type=float, default=30.0)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)                       # a fresh feature cache: features count in the time
    t0 = time.perf_counter()
    res = run_experiment(args.data, systems=args.systems if args.systems != ["all"] else "all", preset=args.preset,
                         out=out, device=args.device, log=lambda m: print(m, flush=True))
    total = time.perf_counter() - t0
    per: dict[str, float] = {}
    for key, t in res.timings.items():
        family = key.split("/")[0]
        per[family] = per.get(family, 0.0) + t["fit_s"] + t.get("score_s", 0.0)
    print(f"\n{args.data}, preset {args.preset}, {torch.get_num_threads()} torch threads, device {args.device}")
    print(f"{'family':12s} {'seconds':>9s} {'share':>7s}")
    for family, s in per.items():
        print(f"{family:12s} {s:9.1f} {s / total:7.1%}")
    rest = total - sum(per.values())
    print(f"{'(rest)':12s} {rest:9.1f} {rest / total:7.1%}   scanning, official files, evaluation, plots")
    print(f"{'total':12s} {total:9.1f}   = {total / 60:.1f} min, {total / (60 * args.budget_min):.2f} x the "
          f"{args.budget_min:g}-minute budget")
    if not res.table.empty:
        print()
        print(format_table(res.table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
