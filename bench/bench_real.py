"""Every system on a DCASE development root over several seeds, beside the published figures.

    python bench/bench_real.py --data ROOT [--seeds 0 1 2] [--preset cpu] [--out runs/real]
                               [--others ROOT2] [--systems all] [--threads 1]

ROOT is any DCASE-layout development root: the real data of a DCASE download
(``asdkit download``), or one machine type of it assembled elsewhere. OEVAE and
the classifier learn from the other machine types' training clips (OEVAE's
pseudo-anomalies); a root of a single machine type borrows them from
``--others`` (default: the embedded ``quick`` dataset, written on first use
to ``data/quick``). The run root is a folder of symbolic links under
``OUT/root``; only ROOT's machine types are scored.

Prints and writes to ``OUT/``:

* ``results.md``: every value as mean ± std over the seeds (:func:`asdkit.experiments.seeds.run_seeds`);
* ``summary.md``: per machine type and system, AUC(source), AUC(target), pAUC and their
  harmonic mean (mean ± std over seeds), with the published figures of the report's Table 1
  (organisers' MSE and MAHALA baselines, the report's OEVAES) where the machine type has them;
* ``levers.md``: :func:`asdkit.experiments.ablation.lever_table`, each lever's paired gain.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import hmean

#: The report's Table 1 (DCASE 2024 development set, %): AUC(source), AUC(target), pAUC.
PUBLISHED = {
    "organisers' MSE (published)": {
        "bearing": (65.92, 55.75, 50.42), "fan": (80.19, 36.18, 59.04), "gearbox": (60.31, 60.78, 53.22),
        "slider": (70.31, 48.77, 56.37), "valve": (55.35, 50.69, 51.18), "ToyCar": (70.10, 46.89, 52.47),
        "ToyTrain": (57.93, 57.02, 48.57)},
    "organisers' MAHALA (published)": {
        "bearing": (65.16, 55.28, 51.33), "fan": (87.10, 45.98, 59.33), "gearbox": (71.88, 70.78, 54.34),
        "slider": (84.02, 73.29, 54.72), "valve": (56.31, 51.40, 51.08), "ToyCar": (74.53, 43.42, 49.18),
        "ToyTrain": (55.98, 43.42, 48.13)},
    "report's OEVAES (published)": {
        "bearing": (63.80, 69.34, 60.36), "fan": (70.02, 33.00, 48.95), "gearbox": (61.12, 63.92, 50.47),
        "slider": (65.00, 61.36, 48.89), "valve": (50.04, 52.54, 50.94), "ToyCar": (47.66, 51.62, 51.21),
        "ToyTrain": (67.32, 42.24, 48.78)},
}

METRICS = ("AUC(source)", "AUC(target)", "pAUC")


def run_root(data: Path, others: Path | None, out: Path, machines: list[str] | None = None) -> tuple[Path, list[str]]:
    """A root of links to ``data``'s machine folders (and ``others``' when ``data`` has one type).

    Returns the root and the machine types to score (``machines``, default: all of ``data``'s).
    """
    from asdkit.data.dataset import find_machines

    own = find_machines(data)
    if not own:
        sys.exit(f"bench_real: no machine folders with wav files below {str(data)!r}; give a DCASE-layout root.")
    unknown = sorted(set(machines or ()) - set(own))
    if unknown:
        sys.exit(f"bench_real: machine type(s) {unknown} are not below {str(data)!r}; it holds {sorted(own)}.")
    folders = {m: p for m, p in own.items()}
    if len(own) < 2:
        if others is None:
            others = Path("data/quick")
            if not others.exists():
                from asdkit.synth.dataset import synthesize

                synthesize(others, preset="quick")
        extra = {m: p for m, p in find_machines(others).items() if m not in own}
        if not extra:
            sys.exit(f"bench_real: {str(others)!r} has no other machine types for OEVAE's pseudo-anomalies.")
        folders.update(extra)
    root = out / "root"
    for machine, paths in folders.items():
        for path in paths:
            rel = Path(path).resolve()
            part = "eval_data" if "eval_data" in rel.parts else "dev_data"
            link = root / part / "raw" / machine
            link.parent.mkdir(parents=True, exist_ok=True)
            if link.is_symlink() or link.exists():
                if link.resolve() == rel:
                    continue
                link.unlink()
            os.symlink(rel, link)
    return root, sorted(machines or own)


def summary(table: pd.DataFrame, machines: list[str]) -> pd.DataFrame:
    """Per machine type and system: the three metrics and their harmonic mean, mean ± std over seeds.

    With one machine type the harmonic mean is the official score of each seed, averaged over the seeds (the
    published rows: of their three values); with several, the harmonic mean of the seed-averaged values.
    """
    rows = []
    systems = list(dict.fromkeys(table.columns.get_level_values(0)))
    for machine in machines:
        for system in systems:
            means = [table.loc[(machine, m), (system, "mean")] for m in METRICS]
            stds = [table.loc[(machine, m), (system, "std")] for m in METRICS]
            if len(machines) == 1:
                h = _cell(table.loc[("official score", "h-mean"), (system, "mean")],
                          table.loc[("official score", "h-mean"), (system, "std")])
            else:
                h = f"{hmean(means):.2f}"
            rows.append({"machine": machine, "system": system,
                         **{m: _cell(v, s) for m, v, s in zip(METRICS, means, stds)}, "h-mean": h})
        for name, fig in PUBLISHED.items():
            if machine in fig:
                values = {m: f"{v:.2f}" for m, v in zip(METRICS, fig[machine])}
                rows.append({"machine": machine, "system": name, **values, "h-mean": f"{hmean(fig[machine]):.2f}"})
    return pd.DataFrame(rows)


def _cell(mean: float, std: float) -> str:
    return f"{mean:.2f}" if not np.isfinite(std) else f"{mean:.2f} ± {std:.2f}"


def markdown(frame: pd.DataFrame) -> str:
    head = "| " + " | ".join(frame.columns) + " |"
    text_columns = ("machine", "system", "lever", "metric")
    sep = "|" + "|".join("---" if c in text_columns else "---:" for c in frame.columns) + "|"
    return "\n".join([head, sep, *("| " + " | ".join(map(str, r)) + " |" for r in frame.itertuples(index=False))])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", required=True, type=Path, help="DCASE-layout development root")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="seeds, each a separate run")
    p.add_argument("--preset", default="cpu", choices=("quick", "cpu", "paper"), help="model settings")
    p.add_argument("--out", default=Path("runs/real"), type=Path, help="output folder")
    p.add_argument("--others", type=Path, default=None,
                   help="root whose machine types serve as other machine types when DATA has only one "
                        "(None: the embedded quick dataset, written to data/quick if absent)")
    p.add_argument("--systems", nargs="+", default=["all"], help="system names or 'all'")
    p.add_argument("--machines", nargs="+", default=None,
                   help="score only these machine types of DATA (the others still train the classifier and "
                        "serve as OEVAE's pseudo-anomalies); None: all")
    p.add_argument("--threads", type=int, default=1, help="torch and BLAS threads per job")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--executor", default="local", choices=("local", "ray"),
                   help="ray: the seeds' jobs side by side on a local Ray instance, one CPU each")
    p.add_argument("--tables-only", action="store_true",
                   help="train nothing: write summary.md and levers.md again from OUT's finished seeds")
    args = p.parse_args(argv)

    from asdkit.experiments.seeds import run_seeds, summarise_seeds

    args.out.mkdir(parents=True, exist_ok=True)
    root, machines = run_root(args.data, args.others, args.out, args.machines)
    if args.tables_only:
        table = summarise_seeds(args.out)
        seeds = sorted(int(p.parent.name.split("_", 1)[1]) for p in args.out.glob("seed_*/results.csv"))
    else:
        table = run_seeds(root, seeds=args.seeds, out=args.out, preset=args.preset,
                          systems=args.systems if args.systems != ["all"] else "all", machines=machines,
                          device=args.device, save_models=True, plots=False, executor=args.executor,
                          **({"cpus_per_job": args.threads} if args.executor == "ray" else {"threads": args.threads}),
                          log=lambda m: print(m, flush=True)).table
        seeds = args.seeds
    if table.empty:
        sys.exit("bench_real: the test clips carry no labels; bench_real needs development data.")
    write_tables(args.out, table, machines, seeds,
                 f"{args.data} (machine types {', '.join(machines)}), preset {args.preset}, seeds "
                 f"{', '.join(map(str, seeds))}, {args.threads} thread(s) per job, device {args.device}")
    return 0


def write_tables(out: Path, table: pd.DataFrame, machines: list[str], seeds, what: str) -> None:
    """``summary.md`` and ``levers.md`` in ``out``, printed too."""
    from asdkit.errors import ConfigError
    from asdkit.experiments.ablation import lever_table

    head = (f"Data: {what}. AUC and pAUC in %, mean ± std over the seeds; h-mean: "
            + ("the official score (harmonic mean of the three values) of each seed, mean ± std."
               if len(machines) == 1 else "the harmonic mean of the seed-averaged values."))
    text = head + "\n\n" + markdown(summary(table, machines)) + "\n"
    (out / "summary.md").write_text(text)
    print("\n" + text)
    try:
        lev = lever_table(out).reset_index()
    except ConfigError as e:                        # levers need both systems of a pair
        print(f"(no lever table: {e})")
        return
    text = (f"Data: {what}. Each lever's two systems share one fitted model per seed: off, on (mean ± std over "
            "the seeds, %) and the paired gain (mean ± std of the per-seed differences).\n\n" + markdown(lev) + "\n")
    (out / "levers.md").write_text(text)
    print(text)


if __name__ == "__main__":
    sys.exit(main())
