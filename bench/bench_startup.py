"""Start-up time of the command line: ``asdkit --help`` against ``python -c "import numpy"``.

Both commands run as fresh processes, alternately, ``--repeats`` times each; the
script prints their median wall times and the ratio, measured in this one run,
and which heavy libraries ``import asdkit`` and ``import asdkit.cli`` load.

    python bench/bench_startup.py [--repeats 7]

Target: ``asdkit --help`` under 1 s (asdkit's names are imported on first use).
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "python -c 'import numpy'": [sys.executable, "-c", "import numpy"],
    "asdkit --help": [sys.executable, "-m", "asdkit.cli", "--help"],
}
HEAVY = ("torch", "pandas", "sklearn", "librosa", "matplotlib", "scipy")


def wall(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def loaded(module: str) -> list[str]:
    code = f"import sys, {module}; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    return subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.split()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    for cmd in COMMANDS.values():           # warm the file cache
        wall(cmd)
    times = {name: [] for name in COMMANDS}
    for _ in range(args.repeats):
        for name, cmd in COMMANDS.items():
            times[name].append(wall(cmd))
    med = {name: statistics.median(t) for name, t in times.items()}
    for name, t in med.items():
        print(f"{name:28s} median {t:.3f} s over {args.repeats} runs")
    base, cli = med["python -c 'import numpy'"], med["asdkit --help"]
    print(f"ratio asdkit --help / import numpy: {cli / base:.2f}  (target: asdkit --help < 1 s: "
          f"{'met' if cli < 1.0 else 'missed'})")
    for module in ("asdkit", "asdkit.cli"):
        print(f"import {module} loads: {', '.join(loaded(module)) or 'none of ' + ', '.join(HEAVY)}")


if __name__ == "__main__":
    main()
