"""A DCASE-layout dataset root as one tidy table.

:func:`scan_root` walks any folder that holds DCASE Task 2 machine folders,
in the organisers' layout (``<root>/dev_data/raw/<machine>/{train,test}``,
``<root>/eval_data/raw/<machine>/...``), the 2020 layout
(``<root>/dev_data/<machine>/{train,test}``) or simply
``<root>/<machine>/{train,test}``, and returns a :class:`pandas.DataFrame`
with one row per clip. Machines are discovered from the folders present, so
the real DCASE data and asdkit's synthetic data read the same way.

Ground truth of anonymised evaluation clips is joined in from the
organisers' evaluator CSVs where they are present: ``ground_truth_data/
ground_truth_<machine>_section_<ss>_test.csv`` (``file,0|1``; 1 = anomaly) and
``ground_truth_domain/ground_truth_<machine>_section_<ss>_test.csv``
(``file,0|1`` with 0 = source, 1 = target; the words are accepted too),
searched anywhere below the root or in the folder given as ``ground_truth``.
The organisers' ``eval_data_list_<year>.csv`` of the 2025 and 2026 baseline
(a line naming the machine type, then ``anonymised,original-name`` rows; their
``rename_eval_wav.py`` reads it) gives label and domain through the original
names in the same way.

DCASE 2025 machine folders may hold a ``supplemental/`` folder of
machine-only and noise-only clips: they get the split ``"supplemental"`` and
their kind as label, so they are never taken for training normals or test
clips (a supplemental name in ``train/`` or ``test/`` is an error).
"""
from __future__ import annotations

import csv
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from asdkit.data.names import NO_ATTRIBUTE, parse_filename
from asdkit.errors import DatasetError, FileNameError

__all__ = ["scan_root", "find_machines", "summarize", "read_attributes_csv", "COLUMNS"]

#: The columns of the clip table, in order.
COLUMNS = [
    "path", "file", "machine", "part", "section", "split", "domain", "label",
    "index", "attributes", "has_attributes", "pattern",
]

_SPLITS = ("train", "test")
#: The folders of a machine folder that hold clips: the splits and the 2025 supplemental clips.
_FOLDERS = (*_SPLITS, "supplemental")


def _part_of(machine_dir: Path, root: Path) -> str:
    """``"eval"`` or ``"dev"``: the deepest ``eval_data``/``dev_data`` folder above the machine folder.

    The path below the root is read first, then the absolute path, so a root
    given as ``.../eval_data/raw`` still marks its clips as evaluation data.
    """
    rel = machine_dir.relative_to(root).parts if machine_dir.is_relative_to(root) else ()
    for parts in (rel, machine_dir.resolve().parts):
        for p in reversed([p.lower() for p in parts]):
            if p.startswith("eval_data"):
                return "eval"
            if p.startswith("dev_data"):
                return "dev"
    return "dev"


def find_machines(root: str | Path) -> dict[str, list[Path]]:
    """Find the machine folders below a DCASE-layout root.

    A machine folder is one that holds a ``train``, ``test`` or ``supplemental``
    subfolder with ``.wav`` files in it.

    Parameters
    ----------
    root : path-like
        The dataset root.

    Returns
    -------
    dict
        Machine name -> list of its folders (one per part, dev and eval), sorted.

    Raises
    ------
    DatasetError
        If the root does not exist or holds no machine folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset root {str(root)!r} does not exist or is not a folder. "
                           "Pass the folder that holds dev_data/ (or make one with 'asdkit synth ROOT').")
    found: dict[str, list[Path]] = {}
    candidates = set(_split_folders(root))
    for d in sorted(candidates):
        found.setdefault(d.name, []).append(d)
    if not found:
        raise DatasetError(
            f"no machine folders under {str(root)!r}: expected <machine>/train/*.wav or "
            "<machine>/test/*.wav, e.g. dev_data/raw/fan/train/section_00_source_train_normal_0000_....wav. "
            "Check the path, unpack the downloaded zips there ('asdkit download'), or make the "
            "embedded dataset with 'asdkit synth ROOT'."
        )
    return dict(sorted(found.items()))


def _split_folders(root: Path):
    """Each ``<machine>`` folder below ``root`` with a ``train/`` or ``test/`` folder of wav files.

    Symbolic links to folders are followed (data on another disk linked into the root is the usual set-up
    on shared servers); a folder reached twice through links is walked once.
    """
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        here = Path(dirpath)
        if here.name in _FOLDERS and any(f.lower().endswith(".wav") for f in filenames):
            yield here.parent


def read_attributes_csv(path: str | Path) -> dict[str, dict[str, str]]:
    """Read an organisers' ``attributes_SS.csv``.

    Rows are ``file_name,d1p,d1v,d2p,d2v,...`` where ``file_name`` is
    ``<machine>/<split>/<file>.wav``. Returns base file name -> ``{param: value}``
    (empty for ``noAttribute``).
    """
    path = Path(path)
    out: dict[str, dict[str, str]] = {}
    try:
        with open(path, newline="") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"{str(path)!r}: cannot read attribute CSV ({e}). Re-download or delete it.") from e
    if not rows:
        return out
    start = 1 if rows[0] and rows[0][0] == "file_name" else 0
    for row in rows[start:]:
        if not row or not row[0]:
            continue
        cells = [c for c in row[1:]]
        while cells and cells[-1] == "":
            cells.pop()
        attrs: dict[str, str] = {}
        if cells and cells[0] != NO_ATTRIBUTE:
            for k, v in zip(cells[0::2], cells[1::2]):
                if k:
                    attrs[k] = v
        out[Path(row[0]).name] = attrs
    return out


def _read_truth(path: Path) -> dict[str, str]:
    out = {}
    with open(path, newline="") as fh:
        for row in csv.reader(fh):
            if len(row) >= 2 and row[0].endswith(".wav"):
                out[row[0].strip()] = row[1].strip()
    return out


def _read_eval_list(path: Path) -> dict[str, dict[str, str]]:
    """An organisers' ``eval_data_list_<year>.csv``: machine -> {anonymised name: original name}."""
    out: dict[str, dict[str, str]] = {}
    machine = None
    with open(path, newline="") as fh:
        for row in csv.reader(fh):
            cells = [c.strip() for c in row if c.strip()]
            if len(cells) == 1:
                machine = cells[0]
            elif len(cells) >= 2 and machine is not None:
                out.setdefault(machine, {})[cells[0]] = cells[1]
    return out


class _TruthFiles:
    """The ground-truth files below one folder, found in a single walk on first use.

    The evaluator's ``ground_truth_*.csv`` by file name (in path order), and the organisers'
    ``eval_data_list_*.csv``, each read once (the first list to name a clip wins).
    """

    def __init__(self, base: Path):
        self.base = Path(base)
        self._by_name: dict[str, list[Path]] | None = None
        self._lists: dict[str, dict[str, str]] = {}

    def _walk(self) -> dict[str, list[Path]]:
        if self._by_name is None:
            self._by_name = {}
            for p in sorted(self.base.rglob("*.csv")):
                if p.name.startswith("ground_truth_"):
                    self._by_name.setdefault(p.name, []).append(p)
                elif p.name.startswith("eval_data_list_"):
                    for machine, names in _read_eval_list(p).items():
                        mine = self._lists.setdefault(machine, {})
                        for f, full in names.items():
                            mine.setdefault(f, full)
        return self._by_name

    def named(self, name: str) -> list[Path]:
        """The evaluator files called ``name``."""
        return self._walk().get(name, [])

    def eval_list(self, machine: str) -> dict[str, str]:
        """Anonymised name -> original name of ``machine``'s clips in the organisers' lists."""
        self._walk()
        return self._lists.get(machine, {})


def _ground_truth(truth: _TruthFiles, machine: str, section: str):
    """Return (labels, domains) dicts for a machine/section, either possibly empty.

    ``ground_truth_data`` gives labels, ``ground_truth_domain`` domains; the
    evaluator's ``ground_truth_attributes`` (anonymised name -> full name) and the
    organisers' ``eval_data_list_<year>.csv`` fill in what those two leave open.
    """
    name = f"ground_truth_{machine}_section_{section}_test.csv"
    labels: dict[str, str] = {}
    domains: dict[str, str] = {}
    from_names: dict[str, tuple] = {}
    for p in truth.named(name):
        kind = p.parent.name
        if kind == "ground_truth_domain":
            domains.update({f: {"0": "source", "1": "target"}.get(v, v) for f, v in _read_truth(p).items()})
        elif kind == "ground_truth_data":
            labels.update({f: {"0": "normal", "1": "anomaly"}.get(v, v) for f, v in _read_truth(p).items()})
        elif kind == "ground_truth_attributes":
            for f, full in _read_truth(p).items():
                try:
                    c = parse_filename(full if full.endswith(".wav") else full + ".wav")
                except FileNameError:
                    continue
                from_names[f] = (c.label, c.domain)
    for f, full in truth.eval_list(machine).items():
        try:
            c = parse_filename(full)
        except FileNameError:
            continue
        if c.section == section:
            from_names.setdefault(f, (c.label, c.domain))
    for f, (label, domain) in from_names.items():
        labels.setdefault(f, label)
        domains.setdefault(f, domain)
    return labels, domains


def _check_folder(c, folder: str) -> None:
    """A supplemental clip lives in ``supplemental/`` and nothing else does: neither is ever taken for the other."""
    if (c.pattern == "supplemental") != (folder == "supplemental"):
        if folder == "supplemental":
            raise FileNameError(f"{c.file!r} is in a supplemental/ folder but is not named as a supplemental clip "
                                "('section_SS_{machine|noise}_[source_]NNNN[_attrs].wav'). Move it to train/ or test/.")
        raise FileNameError(f"{c.file!r} is a supplemental ({c.label}-only) clip in a {folder}/ folder: it would be "
                            f"taken for a {'training normal' if folder == 'train' else 'test clip'}. Move it to the "
                            "machine's supplemental/ folder.")


def _row(path: Path, c, machine: str, part: str, split: str | None, **known) -> dict:
    """One clip-table row (:data:`COLUMNS`) of a parsed file name; ``known`` overrides what the name says."""
    row = dict(path=str(path.resolve()), file=c.file, machine=machine, part=part, section=c.section, split=split,
               domain=c.domain, label=c.label, index=c.index, attributes=dict(c.attributes),
               has_attributes=c.has_attributes, pattern=c.pattern)
    row.update(known)
    return row


def scan_root(root: str | Path, *, machines: list[str] | None = None, strict: bool = True,
              ground_truth: str | Path | None = None) -> pd.DataFrame:
    """List every clip of a DCASE-layout root in one tidy table.

    Parameters
    ----------
    root : path-like
        The dataset root (any DCASE Task 2 layout, 2020-2024).
    machines : list of str, optional
        Keep only these machine types. Unknown names raise :class:`DatasetError`.
    strict : bool, default True
        If True, a file whose name follows no DCASE pattern raises
        :class:`FileNameError`; if False it is skipped, and the skipped files are
        listed in ``table.attrs["rejected"]`` with a warning.
    ground_truth : path-like, optional
        Folder holding the evaluator's ``ground_truth_data`` and
        ``ground_truth_domain`` folders; by default the root is searched.

    Returns
    -------
    pandas.DataFrame
        One row per clip with the columns :data:`COLUMNS`, sorted by machine,
        part, split, section, domain, label and index. ``path`` is absolute;
        ``attributes`` is a dict. Attribute values of anonymised clips are taken
        from ``attributes_SS.csv`` where it lists them. ``domain`` and ``label``
        are None where neither the name nor a ground-truth CSV says.
    """
    root = Path(root)
    found = find_machines(root)
    if machines:
        unknown = sorted(set(machines) - set(found))
        if unknown:
            raise DatasetError(f"machine(s) {unknown} not found under {str(root)!r}; "
                               f"it holds: {sorted(found)}")
        found = {m: found[m] for m in machines}
    truth = _TruthFiles(Path(ground_truth) if ground_truth is not None else root)   # walked on first need
    rows, rejected = [], []
    for machine, dirs in found.items():
        for mdir in dirs:
            part = _part_of(mdir, root)
            attr_csv: dict[str, dict[str, str]] = {}
            for p in sorted(mdir.glob("attributes_*.csv")):
                attr_csv.update(read_attributes_csv(p))
            truth_cache: dict[str, tuple[dict, dict]] = {}
            for split in _FOLDERS:
                sdir = mdir / split
                if not sdir.is_dir():
                    continue
                for wav in sorted(sdir.glob("*.wav")):
                    try:
                        c = parse_filename(wav.name)
                        _check_folder(c, split)
                    except FileNameError as e:
                        if strict:
                            raise FileNameError(f"{wav}: {e}") from None
                        rejected.append(str(wav))
                        continue
                    domain, label = c.domain, c.label
                    attrs, has = dict(c.attributes), c.has_attributes
                    if c.pattern == "anonymous":
                        if c.section not in truth_cache:
                            truth_cache[c.section] = _ground_truth(truth, machine, c.section)
                        labels, domains = truth_cache[c.section]
                        label = labels.get(c.file, label)
                        domain = domains.get(c.file, domain)
                    if c.file in attr_csv and not attrs:
                        attrs = dict(attr_csv[c.file])
                        if has is None and attrs:
                            has = True
                    rows.append(_row(wav, c, machine, part, split, domain=domain, label=label, attributes=attrs,
                                     has_attributes=has))
    if rejected:
        warnings.warn(f"{len(rejected)} file(s) under {str(root)!r} follow no DCASE name pattern and "
                      f"were skipped, e.g. {rejected[0]!r}; see table.attrs['rejected'].", stacklevel=2)
    table = pd.DataFrame(rows, columns=COLUMNS)
    table = table.sort_values(["machine", "part", "split", "section", "domain", "label", "index"],
                              na_position="last", kind="stable").reset_index(drop=True)
    table.attrs["root"] = str(root.resolve())
    table.attrs["rejected"] = rejected
    return table


def attribute_frame(table: pd.DataFrame) -> pd.DataFrame:
    """Spread the ``attributes`` dicts of a clip table into one column per parameter.

    Returns a DataFrame indexed like ``table`` with one column ``attr_<param>``
    per parameter name found (missing values are NaN).
    """
    wide = pd.DataFrame([a if isinstance(a, dict) else {} for a in table["attributes"]], index=table.index)
    return wide.add_prefix("attr_")


def summarize(table: pd.DataFrame) -> pd.DataFrame:
    """Count clips per machine, part, split, domain and label.

    Returns
    -------
    pandas.DataFrame
        Indexed by (machine, part, split), with one column per
        ``<domain>/<label>`` present and a ``total`` column. Unknown domains or
        labels (anonymised clips without ground truth) count as ``"?"``.
    """
    t = table.assign(domain=table["domain"].fillna("?"), label=table["label"].fillna("?"))
    t = t.assign(cell=t["domain"] + "/" + t["label"])
    counts = t.pivot_table(index=["machine", "part", "split"], columns="cell", values="file",
                           aggfunc="count", fill_value=0)
    counts.columns.name = None
    counts["total"] = counts.sum(axis=1)
    return counts.astype(np.int64)




def clip_table(clips, *, name: str = "clips") -> pd.DataFrame:
    """The clip table of ``clips``: a table is checked and re-indexed, a list of paths is parsed.

    Every detector's ``fit`` and ``score_samples`` take clips this way.

    Parameters
    ----------
    clips : pandas.DataFrame with a ``path`` column, or sequence of path-like
        Rows of :func:`scan_root`, or wav paths of any DCASE layout (each
        file name is parsed; the machine type is the name of the folder above
        ``train``/``test``, and the split that folder's name).
    name : str
        The argument's name, for error messages.

    Returns
    -------
    pandas.DataFrame
        With the columns :data:`COLUMNS` (a table keeps its own extra columns),
        index ``0 .. n-1``.

    Raises
    ------
    ConfigError
        ``clips`` is a single path, a table without a ``path`` column, an
        array of waveforms, or holds something other than paths.
    FileNameError
        A path's file name follows no DCASE pattern.
    """
    from asdkit.errors import ConfigError

    if isinstance(clips, pd.DataFrame):
        if "path" not in clips.columns:
            raise ConfigError(f"{name}: a clip table needs a 'path' column (rows of asdkit.scan_root).")
        return clips.reset_index(drop=True)
    if isinstance(clips, (str, Path)):
        raise ConfigError(f"{name}={str(clips)!r} is a single path; pass a list of paths or a clip table "
                          "(asdkit.scan_root rows).")
    if isinstance(clips, np.ndarray) and clips.dtype.kind in "fiuc":
        raise ConfigError(f"{name}: got an array of shape {clips.shape}; detectors take clips as a clip table or "
                          "a list of wav paths (write waveforms with soundfile.write first).")
    items = list(clips)
    bad = [type(x).__name__ for x in items if not isinstance(x, (str, Path))]
    if bad:
        raise ConfigError(f"{name}: expected wav paths or a clip table, got items of type {sorted(set(bad))}.")
    rows = []
    for item in items:
        path = Path(item)
        try:
            c = parse_filename(path.name)
        except FileNameError as e:
            raise FileNameError(f"{path}: {e}") from None
        folder = path.parent.name if path.parent.name in _FOLDERS else None
        if folder is not None:
            try:
                _check_folder(c, folder)
            except FileNameError as e:
                raise FileNameError(f"{path}: {e}") from None
        machine = path.parent.parent.name if folder else path.parent.name
        rows.append(_row(path, c, machine, _part_of(path.parent.parent, path.parent.parent), folder or c.split))
    return pd.DataFrame(rows, columns=COLUMNS)


def clip_formats(table: pd.DataFrame) -> pd.DataFrame:
    """Channels, sample rate and length of each machine type's clips, read from the headers of its files.

    Returns
    -------
    pandas.DataFrame
        Indexed by (machine, part, split), columns ``channels``, ``samplerate``, ``seconds``: one value
        where every clip agrees, else the distinct values as text (``"1, 2"``), so a root that mixes mono
        and two-channel clips shows at once.
    """
    import soundfile as sf

    def one(values):
        values = sorted(set(values))
        return values[0] if len(values) == 1 else ", ".join(map(str, values))

    rows = []
    for (machine, part, split), sub in table.groupby(["machine", "part", "split"], sort=True):
        infos = []
        for p in sub["path"]:
            try:
                infos.append(sf.info(str(p)))
            except (sf.LibsndfileError, RuntimeError):
                continue
        rows.append(dict(machine=machine, part=part, split=split,
                         channels=one(i.channels for i in infos) if infos else None,
                         samplerate=one(i.samplerate for i in infos) if infos else None,
                         seconds=one(round(i.duration, 2) for i in infos) if infos else None))
    return pd.DataFrame(rows).set_index(["machine", "part", "split"])


__all__ += ["attribute_frame", "clip_table", "clip_formats"]
