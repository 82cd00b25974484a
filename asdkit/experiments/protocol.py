"""The experiment protocol: which clips train, which are scored, which serve as the other machine types.

Every experiment of asdkit (``asdkit run``, the ablations, the notebooks)
walks a root the same way: :func:`tasks` yields one :class:`Task` per part
(development / evaluation data) and machine type, with

* ``train``: the machine type's normal training clips, source and target together;
* ``test``: its test clips, evaluated per section;
* ``others``: the training clips of every *other* machine type of the same
  part (pseudo-anomalies for OEVAE, extra classes for the classifier), also
  of machine types that were not selected.

The root is scanned once (:func:`asdkit.scan_root`); everything else is a
view of that table.
"""
from __future__ import annotations

from typing import Iterator, NamedTuple, Sequence

import pandas as pd

from asdkit.errors import DatasetError

__all__ = ["Task", "tasks", "part_training", "META_COLUMNS"]

#: The columns of a test clip that every score table carries.
META_COLUMNS = ["machine", "section", "part", "file", "domain", "label"]


class Task(NamedTuple):
    """One machine type of one part of a root.

    Attributes
    ----------
    part : str
        ``"dev"`` or ``"eval"``.
    machine : str
    train, test, others : pandas.DataFrame
        Clip tables (index ``0 .. n-1``).
    """

    part: str
    machine: str
    train: pd.DataFrame
    test: pd.DataFrame
    others: pd.DataFrame

    @property
    def sections(self) -> list[str]:
        """The test sections, sorted."""
        return sorted(self.test["section"].unique())

    @property
    def key(self) -> str:
        """``"<machine>"``, or ``"<machine> (<part>)"`` for evaluation data."""
        return self.machine if self.part == "dev" else f"{self.machine} ({self.part})"


def part_training(table: pd.DataFrame, part: str) -> pd.DataFrame:
    """The training clips of every machine type of one part (what a root-level model learns from)."""
    return table[(table["part"] == part) & (table["split"] == "train")].reset_index(drop=True)


def tasks(table: pd.DataFrame, *, machines: Sequence[str] | None = None, log=None) -> Iterator[Task]:
    """The tasks of a scanned root, sorted by machine type and part.

    Parameters
    ----------
    table : pandas.DataFrame
        The whole root (:func:`asdkit.scan_root`); ``others`` come from all of it.
    machines : sequence of str, optional
        Only these machine types.
    log : callable, optional
        Told about machine types that are skipped (no training or no test clips).

    Yields
    ------
    Task

    Raises
    ------
    DatasetError
        Training clips whose names carry no domain (the 2020 naming).
    """
    wanted = None if machines is None else set(machines)
    for (machine, part), sub in table.groupby(["machine", "part"], sort=True):
        if wanted is not None and machine not in wanted:
            continue
        train, test = sub[sub["split"] == "train"], sub[sub["split"] == "test"]
        if train.empty or test.empty:
            if log is not None:
                log(f"skipping {machine} ({part}): it has {len(train)} training and {len(test)} test clips")
            continue
        if train["domain"].isna().any():
            raise DatasetError(f"{machine} ({part}): training clips without a domain in their names; "
                               "asdkit needs the 2021-2024 naming for training data")
        others = table[(table["machine"] != machine) & (table["part"] == part) & (table["split"] == "train")]
        yield Task(part, machine, train.reset_index(drop=True), test.reset_index(drop=True),
                   others.reset_index(drop=True))
