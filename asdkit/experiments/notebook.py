"""One switch for the notebooks: small under test, the reader's choice otherwise (nbdev's ``IN_TEST`` idea).

Every notebook starts with::

    nb = asdkit.notebook_setup()

which finds (or writes) the dataset, picks the preset, tells whether the
notebook runs under test and shows warnings as ``Category: message``, without
the file path of the installation that raised them (saved outputs stay the
same on every machine). Under test (``CI`` or ``ASDKIT_IN_TEST`` set, as in
``make test``), ``nb.in_test`` is True and the notebook takes its small path
(the quick dataset and preset, fewer machine types or seeds where a notebook
says so); the saved outputs are those of that path, so nbval compares like
with like. A reader sets ``ASDKIT_DATA`` (a DCASE-layout root: real data
works too) and ``ASDKIT_PRESET`` (``quick``, ``cpu``, ``paper``) to run the
same notebook at full size.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from asdkit.data.dataset import scan_root
from asdkit.errors import ConfigError
from asdkit.experiments.protocol import Task, tasks
from asdkit.experiments.systems import PRESETS

__all__ = ["NotebookSetup", "notebook_setup", "in_test", "plain_warning", "FIGURE_DPI"]

#: Figure resolution of the notebooks (saved notebooks stay small; figures stay legible).
FIGURE_DPI = 72


def plain_warning(message, category, filename, lineno, line=None) -> str:
    """``warnings.formatwarning`` for notebooks: ``Category: message``, no file path or source line."""
    return f"{category.__name__}: {message}\n"


def in_test() -> bool:
    """True under test: the environment variable ``CI`` or ``ASDKIT_IN_TEST`` is set (and not "0"/"false")."""
    return any(os.environ.get(v, "").lower() not in ("", "0", "false", "no") for v in ("CI", "ASDKIT_IN_TEST"))


@dataclass(frozen=True)
class NotebookSetup:
    """What :func:`notebook_setup` found.

    Attributes
    ----------
    root : Path
        The dataset root.
    table : pandas.DataFrame
        Its clip table (:func:`asdkit.scan_root`).
    preset : str
        ``"quick"`` under test, else ``$ASDKIT_PRESET`` (default ``"quick"``).
    in_test : bool
        Take the small path.
    device : str
        ``"cpu"`` under test, else ``"auto"``.
    """

    root: Path
    table: pd.DataFrame = field(repr=False)
    preset: str
    in_test: bool
    device: str

    def task(self, name: str, part: str = "dev") -> Task:
        """The experiment protocol's task of one machine type (:func:`asdkit.experiments.protocol.tasks`)."""
        t = self.table
        if name not in set(t["machine"]):
            raise ConfigError(f"machine type {name!r} is not in {str(self.root)!r}; it has "
                              f"{sorted(t['machine'].unique())}.")
        for task in tasks(t, machines=[name]):
            if task.part == part:
                return task
        raise ConfigError(f"machine type {name!r} has no {part} data with training and test clips in "
                          f"{str(self.root)!r}.")

    def machine(self, name: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """``(train, test, others)`` clip tables of one machine type's task.

        ``others`` holds the other machine types' training clips.
        """
        task = self.task(name)
        return task.train, task.test, task.others


def notebook_setup(*, data: str | os.PathLike | None = None, default: str | os.PathLike = "../data/quick",
                   dpi: int = FIGURE_DPI, year: int | None = None) -> NotebookSetup:
    """Find or write the dataset, choose the preset, set the figure resolution, show warnings without paths.

    Parameters
    ----------
    data : path-like, optional
        The dataset root; default ``$ASDKIT_DATA`` (ignored under test), else ``default``.
    default : path-like, default "../data/quick"
        Where the embedded quick dataset is (written there, seed 0, when missing).
    dpi : int
        matplotlib's figure resolution for the notebook.
    year : {None, 2025, 2026}, optional
        Which kind of embedded data to write at ``default`` when it is missing
        (:func:`asdkit.synth.synthesize`'s ``year``: 2026 = two-channel clips).

    Returns
    -------
    NotebookSetup
    """
    import matplotlib

    small = in_test()
    root = Path(data if data is not None else (default if small else os.environ.get("ASDKIT_DATA", default)))
    if not root.exists():
        if Path(root) != Path(default):
            raise ConfigError(f"ASDKIT_DATA={str(root)!r} does not exist; point it at a DCASE-layout root.")
        from asdkit.synth.dataset import synthesize

        synthesize(root, preset="quick", seed=0, progress=False, year=year)
    preset = "quick" if small else os.environ.get("ASDKIT_PRESET", "quick")
    if preset not in PRESETS:
        raise ConfigError(f"ASDKIT_PRESET={preset!r}: choose one of {list(PRESETS)}.")
    matplotlib.rcParams["figure.dpi"] = dpi
    matplotlib.rcParams["savefig.dpi"] = dpi
    warnings.formatwarning = plain_warning
    return NotebookSetup(root=root, table=scan_root(root), preset=preset, in_test=small,
                         device="cpu" if small else "auto")
