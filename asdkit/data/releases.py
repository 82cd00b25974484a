"""What the organisers published for each DCASE Task 2 year that ``asdkit download`` fetches.

One :class:`Release` per year: the machine types of the development and the
evaluation data, the Zenodo record of each part, re-released file names, and
how many channels the clips have. The names and records are those of the
organisers' download lists (``datasets/download_path_<year>.yaml`` of their
baseline repository, ``nttcslab/dcase2023_task2_baseline_ae``).

Parts: ``"dev"`` = development data of the dev machines (train + test),
``"train"`` = additional training data of the eval machines, ``"test"`` =
evaluation test data (anonymised clips) of the eval machines.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from asdkit.errors import ConfigError

__all__ = ["Release", "RELEASES", "release", "DEFAULT_YEAR"]

#: The year ``asdkit download`` fetches when none is given.
DEFAULT_YEAR = 2024


@dataclass(frozen=True)
class Release:
    """One year's published Task 2 data.

    Attributes
    ----------
    year : int
    dev_machines, eval_machines : tuple of str
        Machine types, spelt as the organisers do.
    records : dict of str to str
        Part -> base URL of its Zenodo record's files.
    renamed : dict of (str, str) to str
        (machine, part) -> file name where a zip was re-released under another
        name (``dev_ToyCar_r2.zip``).
    channels : int
        Channels per clip (2 from 2026: near and far microphone).
    note : str
        What the user should know about this year's files.
    """

    year: int
    dev_machines: tuple[str, ...]
    eval_machines: tuple[str, ...]
    records: dict = field(default_factory=dict)
    renamed: dict = field(default_factory=dict)
    channels: int = 1
    note: str = ""

    def filename(self, machine: str, part: str) -> str:
        """The zip of ``machine``'s ``part``: ``dev_<M>.zip``, ``eval_data_<M>_train.zip`` or ``..._test.zip``."""
        if (machine, part) in self.renamed:
            return self.renamed[(machine, part)]
        if part == "dev":
            return f"dev_{machine}.zip"
        return f"eval_data_{machine}_{part}.zip"

    def machines(self, part: str) -> tuple[str, ...]:
        return self.dev_machines if part == "dev" else self.eval_machines


def _zenodo(record: int) -> str:
    return f"https://zenodo.org/records/{record}/files"


#: Every year ``asdkit download`` knows.
RELEASES: dict[int, Release] = {r.year: r for r in (
    Release(
        2024,
        dev_machines=("bearing", "fan", "gearbox", "slider", "ToyCar", "ToyTrain", "valve"),
        eval_machines=("3DPrinter", "AirCompressor", "Scanner", "ToyCircuit", "HoveringDrone", "HairDryer",
                       "ToothBrush", "RoboticArm", "BrushlessMotor"),
        records={"dev": "https://zenodo.org/record/10902294/files", "train": _zenodo(11259435),
                 "test": _zenodo(11363076)},
        renamed={("3DPrinter", "train"): "eval_data_3DPrinter_train_r2.zip",
                 ("RoboticArm", "train"): "eval_data_RoboticArm_train_r2.zip"},
    ),
    Release(
        2025,
        dev_machines=("ToyCar", "ToyTrain", "bearing", "fan", "gearbox", "slider", "valve"),
        eval_machines=("ToyRCCar", "ToyPet", "HomeCamera", "AutoTrash", "Polisher", "ScrewFeeder", "BandSealer",
                       "CoffeeGrinder"),
        records={"dev": _zenodo(15097779), "train": _zenodo(15392814), "test": _zenodo(15519362)},
        note="machine folders may hold supplemental/ clips (machine-only and noise-only); the evaluation "
             "ground truth is the organisers' datasets/eval_data_list_2025.csv",
    ),
    Release(
        2026,
        dev_machines=("ToyCar", "ToyCarEmu", "bearingEmu", "fan", "gearboxEmu", "sliderEmu", "valveEmu"),
        eval_machines=("ToyDrone", "ToothBrush", "SewingMachine", "BlowerDustCollector", "Sander"),
        records={"dev": _zenodo(19336329), "train": _zenodo(20151556), "test": _zenodo(20437238)},
        renamed={("ToyCar", "dev"): "dev_ToyCar_r2.zip"},
        channels=2,
        note="two-channel clips (near, far microphone); the evaluation test zips are assumed to follow the "
             "2025 naming (eval_data_<machine>_test.zip), which the organisers' download list does not yet name",
    ),
)}


def release(year: int | None) -> Release:
    """The :class:`Release` of ``year`` (None: :data:`DEFAULT_YEAR`); ConfigError for a year asdkit does not know."""
    year = DEFAULT_YEAR if year is None else year
    if isinstance(year, bool) or year not in RELEASES:
        raise ConfigError(f"year={year!r}: asdkit downloads the DCASE Task 2 data of {sorted(RELEASES)}. "
                          "Older years (2020-2023) are read and evaluated but must be downloaded by hand.")
    return RELEASES[year]
