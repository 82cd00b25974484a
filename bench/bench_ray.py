"""Wall time of one ``asdkit run`` in-process against the same run on Ray, and Ray's own overhead per task.

In one process, one after the other, each with a fresh feature cache:

1. ``run_experiment(..., executor="local")``: every job in this process (torch's and BLAS's
   default thread counts, as ``asdkit run`` without options);
2. ``run_experiment(..., executor="ray")`` on a local Ray instance of ``--workers`` CPUs, one
   CPU (and one thread) per job, so ``--workers`` jobs run side by side;

and prints both wall times, their ratio, each run's busy time (the jobs' own seconds summed) and
whether the two runs' official scores agree. Then Ray's overhead per task, two ways:

* a no-op Ray task, submitted and awaited one at a time (scheduling and a round trip);
* a run of tiny jobs (the nearest-neighbour reference on the quick dataset, five seeds, no
  dependencies between them): ``(workers x wall - the jobs' own seconds) / jobs``, what a job costs beyond
  its work (shipping its inputs, a worker process's first import of asdkit, sending the result).

    python bench/bench_ray.py --data data/paper --preset cpu --out runs/bench-ray [--workers 2]

On a machine of 2 cores the two runs share the same 2 cores: Ray can only overlap what one
process leaves idle (single-threaded stretches, feature extraction, scoring), so the ratio is
bounded near 1 there; it grows with the cores and GPUs of a cluster.

Measured on the development machine (2 cores, idle; the paper data with the cpu preset, 2026-12-02, and the
quick data with the quick preset, 2026-12-01): see README,
*Beyond one machine*.
"""
from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd


def _busy(res) -> float:
    done = res.jobs[res.jobs["status"] == "done"]
    return float(done["seconds"].sum())


def main(argv=None) -> int:
    from asdkit.experiments.run import run_experiment
    from asdkit.experiments.seeds import run_seeds
    from asdkit.synth.dataset import synthesize

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="data/paper")
    p.add_argument("--preset", default="cpu")
    p.add_argument("--systems", nargs="+", default=["all"])
    p.add_argument("--out", default="runs/bench-ray")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--tiny-seeds", type=int, default=5, help="seeds of the tiny-job run (4 jobs each)")
    p.add_argument("--skip-runs", action="store_true", help="only the overhead measurements")
    args = p.parse_args(argv)
    import ray

    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)                       # fresh feature caches: features count in the time
    systems = "all" if args.systems == ["all"] else args.systems
    say = lambda m: print(m, flush=True)         # noqa: E731
    if not args.skip_runs:
        t0 = time.perf_counter()
        local = run_experiment(args.data, systems=systems, preset=args.preset, out=out / "local", log=say)
        t_local = time.perf_counter() - t0
        ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False, configure_logging=False)
        t0 = time.perf_counter()
        remote = run_experiment(args.data, systems=systems, preset=args.preset, out=out / "ray", executor="ray",
                                log=say)
        t_ray = time.perf_counter() - t0
        ray.shutdown()
        same = local.table.columns.equals(remote.table.columns)
        diff = (float(np.nanmax(np.abs(local.table.to_numpy() - remote.table.to_numpy()))) if same else float("nan"))
        print(f"\n{args.data}, preset {args.preset}, systems {args.systems}: {len(local.jobs)} jobs")
        print(f"in-process : wall {t_local:8.1f} s, jobs' own time {_busy(local):8.1f} s")
        print(f"Ray x {args.workers}    : wall {t_ray:8.1f} s, jobs' own time {_busy(remote):8.1f} s "
              f"(workers busy {_busy(remote) / (args.workers * t_ray):.0%} of the wall time)")
        print(f"in-process / Ray wall time: {t_local / t_ray:.2f}")
        print(f"largest difference between the two results tables: {diff:.2e} points")

    # Ray's own overhead per task
    ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False, configure_logging=False)

    @ray.remote(num_cpus=1)
    def noop(x):
        return x

    ray.get([noop.remote(i) for i in range(2 * args.workers)])            # workers started
    n = 200
    t0 = time.perf_counter()
    for i in range(n):
        ray.get(noop.remote(i))
    per_noop = (time.perf_counter() - t0) / n
    quick = out / "quick-data"
    synthesize(quick, preset="quick", seed=0, progress=False)
    t0 = time.perf_counter()
    tiny = run_seeds(quick, seeds=range(args.tiny_seeds), systems=["reference-knn"], preset="quick",
                     out=out / "tiny", executor="ray", plots=False, log=None)
    wall = time.perf_counter() - t0
    ray.shutdown()
    table = pd.concat([r.jobs for r in tiny.runs.values()])
    jobs = len(table)
    busy = float(table["seconds"].sum())
    per_job = (args.workers * wall - busy) / jobs
    print(f"\nRay overhead: a no-op task {1000 * per_noop:.2f} ms (submitted and awaited one at a time); "
          f"an asdkit job {per_job:.2f} s beyond its work ({jobs} reference jobs of "
          f"{busy / jobs:.2f} s on average on {args.workers} fresh workers, wall {wall:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
