"""The ``asdkit`` command line.

Subcommands::

    asdkit synth ROOT [--preset quick|paper] [--seed N] [--machines ...] [--year 2025|2026]
    asdkit download ROOT [--year 2024|2025|2026] [--parts dev train test] [--machines ...] [--mirror URL] [--list]
    asdkit info ROOT
    asdkit prepare ROOT --out DIR [--features quick|paper] [--cache DIR] [--device cpu|cuda]
    asdkit evaluate SCORE_DIR --data ROOT [--out FILE]
    asdkit run --data ROOT --system NAME... --preset quick|cpu|paper --out DIR [--machines ...] [--cache DIR]
               [--seed N | --seeds N...] [--threads N] [--save-models] [--channels auto|near|far|both|denoised]
               [--supplemental machine noise] [--executor local|ray] [--address auto|ray://HOST:PORT]
               [--cpus-per-job N] [--gpus-per-job N] [--resume]
    asdkit seeds FOLDER
    asdkit compare RUN_FOLDER RUN_FOLDER...
    asdkit score --model DIR (--data ROOT | --clips WAV...) --out DIR [--score NAME]
    asdkit systems
    asdkit demo [--data DIR] [--out DIR]

Every user-fixable problem ends with one line ``asdkit: error: ...`` and exit
status 2, never a traceback.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from asdkit.data.channels import CHANNELS
from asdkit.errors import AsdkitError
from asdkit.runtime import device_name, set_threads, show_progress

__all__ = ["main", "build_parser"]


def _progress() -> bool:
    return show_progress(sys.stderr.isatty())


def _device(name: str | None) -> str:
    try:
        return device_name(name)
    except AsdkitError as e:
        raise AsdkitError(f"--device {name}: {e}") from None


def cmd_synth(args) -> int:
    from asdkit.data.dataset import summarize
    from asdkit.synth.dataset import synthesize

    t0 = time.perf_counter()
    table = synthesize(args.root, preset=args.preset, seed=args.seed, machines=args.machines,
                       progress=_progress(), year=args.year)
    print(summarize(table).to_string())
    print(f"\nwrote {len(table)} clips of {table['machine'].nunique()} machine types under "
          f"{args.root} in {time.perf_counter() - t0:.1f} s")
    return 0


def cmd_download(args) -> int:
    from asdkit.data.download import download, plan_downloads

    if args.list:
        for item in plan_downloads(parts=args.parts, machines=args.machines, mirror=args.mirror, year=args.year):
            print(f"{item.part:5s} {item.machine:15s} {item.url}")
        return 0
    dirs = download(args.root, parts=args.parts, machines=args.machines, mirror=args.mirror,
                    progress=_progress(), retries=args.retries, year=args.year, verify=not args.no_verify)
    for d in dirs:
        print(d)
    return 0


def cmd_info(args) -> int:
    from asdkit.data.dataset import clip_formats, scan_root, summarize

    table = scan_root(args.root, machines=args.machines, strict=not args.lenient)
    counts = summarize(table)
    print(counts.join(clip_formats(table)).to_string())
    print(f"\n{len(table)} clips, {table['machine'].nunique()} machine types")
    return 0


def cmd_prepare(args) -> int:
    from asdkit.features.prepare import prepare

    t0 = time.perf_counter()
    res = prepare(args.root, args.out, features=args.features, machines=args.machines,
                  cache=args.cache, device=_device(args.device), progress=_progress(), channels=args.channels)
    print(res["summary"].to_string())
    print(f"\nlog-mel features ({args.features} preset) of {len(res['table'])} clips in "
          f"{time.perf_counter() - t0:.1f} s; wrote:")
    for f in res["files"]:
        print(f"  {f}")
    return 0


def cmd_evaluate(args) -> int:
    from asdkit.evaluation.evaluate import evaluate_scores, format_result, save_result

    result = evaluate_scores(args.score_dir, args.data, machines=args.machines)
    print(format_result(result))
    out = Path(args.out) if args.out else Path(args.score_dir) / "evaluation.csv"
    written = save_result(result, out)
    print(f"\nwrote {', '.join(str(p) for p in (written if isinstance(written, (list, tuple)) else [written]))}")
    return 0


def _threads(n: int | None) -> None:
    if n is not None and n < 1:
        raise AsdkitError(f"--threads {n}: give a positive number of CPU threads.")
    set_threads(n)                  # torch's, numpy's and scipy's, for the rest of the process


def _run_config(args):
    """The :class:`~asdkit.experiments.config.RunConfig` that ``asdkit run``'s options give."""
    from asdkit.experiments.config import RunConfig

    executor = getattr(args, "executor", "local")
    address = getattr(args, "address", None)
    cpus, gpus = getattr(args, "cpus_per_job", 1), getattr(args, "gpus_per_job", 0)
    if executor != "ray" and (address is not None or cpus != 1 or gpus != 0):
        raise AsdkitError("--address, --cpus-per-job and --gpus-per-job are for --executor ray.")
    if cpus <= 0 or gpus < 0:
        raise AsdkitError(f"--cpus-per-job {cpus:g} --gpus-per-job {gpus:g}: give a positive number of CPUs and "
                          "zero or more GPUs per job.")
    if executor == "ray":
        from asdkit.experiments.executors import import_ray

        import_ray()                         # a clear message before any work when Ray is missing
        # each job resolves "auto" on the machine it runs on; only an explicit device is checked here
        device = "auto" if args.device in (None, "auto") else args.device
        if gpus == 0 and device.startswith("cuda"):
            raise AsdkitError(f"--device {device} with --executor ray needs --gpus-per-job (e.g. 1): Ray hides GPUs "
                              "from jobs that do not ask for one.")
    else:
        device = _device(args.device)
    return RunConfig(data=args.data, systems=tuple(args.system), preset=args.preset, machines=args.machines,
                     device=device, progress=_progress(), plots=not args.no_plots, cache=getattr(args, "cache", None),
                     save_models=getattr(args, "save_models", False), channels=getattr(args, "channels", "auto"),
                     supplemental=getattr(args, "supplemental", None) or (), executor=executor, address=address,
                     resume=getattr(args, "resume", False), cpus_per_job=cpus, gpus_per_job=gpus,
                     threads=getattr(args, "threads", None) if executor == "local" else None)


def _failed(failures) -> int:
    if not failures:
        return 0
    print(f"\nasdkit: error: {len(failures)} job(s) did not finish (listed above; each job's log.txt has the "
          "traceback); fix them and run the same command with --resume.", file=sys.stderr)
    return 1


def cmd_run(args) -> int:
    from asdkit.experiments.run import format_table, run_experiment

    _threads(getattr(args, "threads", None))
    if getattr(args, "seeds", None):
        return _run_seeds(args)
    res = run_experiment(_run_config(args), out=args.out, seed=args.seed)
    if not res.table.empty:
        print()
        print(format_table(res.table))
        print(f"\nwrote {res.out}/results.csv, results.md, config.json and one folder per system")
    else:
        print(f"\nwrote scores to {res.out} (no test labels: nothing to evaluate)")
    return _failed(res.failures)


def _run_seeds(args) -> int:
    from asdkit.experiments.seeds import format_seeds_table, run_seeds

    res = run_seeds(_run_config(args), seeds=args.seeds, out=args.out)
    if not res.table.empty:
        print()
        print(format_seeds_table(res.table))
        print(f"\nwrote {res.out}/results.csv, results.md, config.json and one folder per seed (seed_<n>/)")
    else:
        print(f"\nwrote scores to {res.out}/seed_<n>/ (no test labels: nothing to evaluate)")
    return _failed([f for r in res.runs.values() for f in r.failures])


def cmd_compare(args) -> int:
    from asdkit.experiments.ablation import compare_runs

    names = [str(f).rstrip("/").split("/")[-1] for f in args.folders]
    if len(set(names)) != len(names):
        names = [str(f) for f in args.folders]
    table = compare_runs(dict(zip(names, args.folders)))
    print(table.to_string())
    return 0


def cmd_seeds(args) -> int:
    from asdkit.experiments.seeds import format_seeds_table, summarise_seeds

    table = summarise_seeds(args.folder)
    print(format_seeds_table(table))
    print(f"\nwrote {args.folder}/results.csv and results.md")
    return 0


def cmd_score(args) -> int:
    from asdkit.experiments.score import score_clips

    res = score_clips(args.model, out=args.out, data=args.data, clips=args.clips, device=_device(args.device),
                      score=args.score)
    print(f"{res.detector!r} (fitted on {res.n_train} clips of {', '.join(res.machines) or '?'}), score {res.key!r}")
    print(f"scored {res.n_clips} clips; wrote {len(res.files)} official files to {args.out}")
    if res.evaluation is not None:
        from asdkit.evaluation.evaluate import format_result

        print()
        print(format_result(res.evaluation))
    return 0


def cmd_systems(args) -> int:
    from asdkit.experiments.systems import SYSTEMS

    for spec in SYSTEMS.values():
        print(f"{spec.name:18s} {spec.description}")
    return 0


def cmd_demo(args) -> int:
    from asdkit.data.dataset import find_machines

    data = Path(args.data)
    try:
        find_machines(data)
        print(f"using the dataset already at {data}")
    except AsdkitError:
        from asdkit.synth.dataset import synthesize

        t0 = time.perf_counter()
        table = synthesize(data, preset="demo", seed=0, progress=_progress())
        print(f"wrote the embedded demo dataset ({len(table)} clips: 120 source + 10 target training clips and "
              f"100 test clips per machine type) to {data} in {time.perf_counter() - t0:.1f} s")
    print("training every system (the organisers' baseline, OEVAE, the classification-based model, the ensemble and "
          "the nearest-neighbour reference; quick preset) on each machine type")
    args_run = argparse.Namespace(data=data, system=["all"], preset="quick", out=args.out, machines=None,
                                  device=args.device, seed=0, no_plots=False)
    return cmd_run(args_run)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="asdkit", description="Anomalous sound detection under domain shift "
                                "(DCASE Task 2): data, features, metrics.")
    from asdkit import __version__

    p.add_argument("--version", action="version", version=f"asdkit {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("synth", help="write the embedded synthetic dataset in the DCASE 2024 layout")
    s.add_argument("root", type=Path, help="folder to write (dev_data/raw/<machine>/... below it)")
    s.add_argument("--preset", default="quick", help="quick (small, default), demo (what asdkit demo writes) or "
                   "paper (DCASE sizes)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--machines", nargs="+", help="only these machine types")
    s.add_argument("--year", type=int, choices=[2024, 2025, 2026],
                   help="2024 (default): mono clips; 2025: the same clips plus supplemental/ machine-only and "
                        "noise-only clips; 2026: two-channel clips (near, far microphone) with noise scenes by domain")
    s.set_defaults(func=cmd_synth)

    d = sub.add_parser("download", help="download DCASE Task 2 zips (2024, 2025 or 2026) from Zenodo and unpack them")
    d.add_argument("root", type=Path, help="dataset root (dev_data/ and eval_data/ are made below it)")
    d.add_argument("--parts", nargs="+", default=["dev"], help="dev, train (additional training), test (eval)")
    d.add_argument("--machines", nargs="+", help="only these machine types (default: all of each part)")
    d.add_argument("--mirror", help="base URL to download from instead of Zenodo")
    d.add_argument("--year", type=int, default=2024, choices=[2024, 2025, 2026],
                   help="DCASE year (default 2024); keep one root per year")
    d.add_argument("--retries", type=int, default=3)
    d.add_argument("--list", action="store_true", help="print what would be downloaded and stop")
    d.add_argument("--no-verify", action="store_true",
                   help="skip the check of each zip against its published MD5 sum (Zenodo's, or a mirror's "
                        "md5sums.txt)")
    d.set_defaults(func=cmd_download)

    i = sub.add_parser("info", help="print the clips of a DCASE-layout root per machine/domain/split")
    i.add_argument("root", type=Path)
    i.add_argument("--machines", nargs="+")
    i.add_argument("--lenient", action="store_true", help="skip files with unknown names instead of stopping")
    i.set_defaults(func=cmd_info)

    r = sub.add_parser("prepare", help="extract log-mel features of every clip of a root")
    r.add_argument("root", type=Path)
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--features", default="quick", help="feature preset: quick (64 mels) or paper (224 mels)")
    r.add_argument("--machines", nargs="+")
    r.add_argument("--cache", type=Path, help="feature cache folder (reused across runs)")
    r.add_argument("--device", default="auto", help="auto, cpu or cuda")
    r.add_argument("--channels", default="auto", choices=list(CHANNELS),
                   help="which microphone(s): auto, mono, near, far, both (adds a channel axis) or denoised")
    r.set_defaults(func=cmd_prepare)

    e = sub.add_parser("evaluate", help="score a folder of official-format anomaly score CSVs")
    e.add_argument("score_dir", type=Path)
    e.add_argument("--data", type=Path, required=True, help="the DCASE-layout root the scores are for")
    e.add_argument("--machines", nargs="+")
    e.add_argument("--out", type=Path, help="result CSV (default: SCORE_DIR/evaluation.csv)")
    e.set_defaults(func=cmd_evaluate)

    u = sub.add_parser("run", help="train and score systems on a DCASE-layout root; official files, table, plots")
    u.add_argument("--data", type=Path, required=True, help="any DCASE-layout root, real or synthetic")
    u.add_argument("--system", nargs="+", default=["baseline-mse", "baseline-mahala"],
                   help="system names (see 'asdkit systems') or 'all'")
    u.add_argument("--preset", default="quick", choices=["quick", "cpu", "paper"])
    u.add_argument("--out", type=Path, required=True)
    u.add_argument("--machines", nargs="+")
    u.add_argument("--device", default="auto", help="auto, cpu or cuda")
    u.add_argument("--channels", default="auto", choices=list(CHANNELS),
                   help="which microphone(s) the models read: auto (mono clips as they are, the near microphone of "
                        "DCASE 2026 two-channel clips, as the organisers), mono (refuse two-channel clips), near, far, "
                        "both (far as a second input channel) or denoised (near with the far one's noise cancelled)")
    u.add_argument("--supplemental", nargs="+", choices=["machine", "noise"],
                   help="use DCASE 2025 supplemental clips in training: machine (machine-only clips as extra normals), "
                        "noise (half the training clips mixed with noise-only clips at 5-15 dB)")
    seeds = u.add_mutually_exclusive_group()
    seeds.add_argument("--seed", type=int, default=0)
    seeds.add_argument("--seeds", type=int, nargs="+", help="several seeds, each run in OUT/seed_<n>/; the table "
                       "shows mean ± std across them")
    u.add_argument("--no-plots", action="store_true", help="skip the ROC and score-histogram PNGs")
    u.add_argument("--cache", type=Path, help="feature cache folder shared across runs (default: OUT/.feature_cache)")
    u.add_argument("--threads", type=int, help="CPU threads for torch and numpy's BLAS (default: their choice; use 1 "
                   "on cores shared with other jobs, where two threads stall each other; a Ray job uses "
                   "--cpus-per-job)")
    u.add_argument("--save-models", action="store_true",
                   help="keep every fitted detector under OUT/models/<family>/<machine>/ (for 'asdkit score'; "
                        "always on with --executor ray)")
    u.add_argument("--executor", default="local", choices=["local", "ray"],
                   help="local (default): every job in this process; ray: every job (root model; system family x "
                        "machine type x seed) a Ray task, side by side (pip install \"asdkit[ray]\")")
    u.add_argument("--address", help="with --executor ray: auto (the cluster of 'ray start' on this machine) or "
                   "ray://HOST:PORT (Ray Client); default: a local Ray instance for this run")
    u.add_argument("--cpus-per-job", type=float, default=1,
                   help="with --executor ray: CPUs each job declares, also its torch threads (default 1)")
    u.add_argument("--gpus-per-job", type=float, default=0,
                   help="with --executor ray: GPUs each job declares (default 0; e.g. 1, or 0.5 to share one)")
    u.add_argument("--resume", action="store_true",
                   help="run only the jobs without a finished result in OUT (after a failure or an interruption); "
                        "the same data, preset, seed(s), channels and supplemental clips as before")
    u.set_defaults(func=cmd_run)

    e = sub.add_parser("seeds", help="mean ± std across seeds of runs written to FOLDER/seed_<n>/ (one asdkit run "
                       "--seed N each, e.g. side by side)")
    e.add_argument("folder", type=Path)
    e.set_defaults(func=cmd_seeds)
    k = sub.add_parser("compare", help="the systems of several asdkit run folders side by side, with differences "
                       "to the first (e.g. --channels auto / both / denoised)")
    k.add_argument("folders", type=Path, nargs="+")
    k.set_defaults(func=cmd_compare)

    c = sub.add_parser("score", help="score clips with a saved detector; write the official score and decision files")
    c.add_argument("--model", type=Path, required=True,
                   help="a saved detector folder (asdkit run --save-models writes OUT/models/<family>/<machine>)")
    src = c.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", type=Path, help="a DCASE-layout root: its test clips of the detector's machine type")
    src.add_argument("--clips", nargs="+", type=Path, help="wav files named in the DCASE way (section_00_...)")
    c.add_argument("--out", type=Path, required=True, help="folder for the official files")
    c.add_argument("--score", help="which of the detector's scores (e.g. mahala of a saved baseline; default its own)")
    c.add_argument("--device", default="auto", help="auto, cpu or cuda")
    c.set_defaults(func=cmd_score)

    y = sub.add_parser("systems", help="list the systems 'asdkit run' knows")
    y.set_defaults(func=cmd_systems)

    m = sub.add_parser("demo", help="the README's main job: make the demo dataset, run every system, print the table")
    m.add_argument("--data", type=Path, default=Path("data/demo"))
    m.add_argument("--out", type=Path, default=Path("runs/demo"))
    m.add_argument("--device", default="auto")
    m.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``asdkit`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except AsdkitError as e:
        print(f"asdkit: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("asdkit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
