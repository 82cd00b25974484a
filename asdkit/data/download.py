"""Download and unpack the DCASE Task 2 data (2024, 2025, 2026) from Zenodo.

Which files each year has is listed in :mod:`asdkit.data.releases`; the year
is chosen with ``year=`` (``--year`` on the command line), 2024 by default.
Keep one root per year: the zips of different years share names.

Three steps, each usable alone:

* :func:`plan_downloads` lists the zips for the chosen machines and parts as
  :class:`DownloadItem` records (no network access);
* :func:`fetch` streams one URL to a file, resuming an interrupted transfer
  with an HTTP ``Range`` request, and renames it into place only when complete;
* the zip is checked against the MD5 sum its publisher gives
  (:mod:`asdkit.data.checksums`);
* :func:`unpack` checks a zip, extracts it into a temporary folder and moves
  the machine folders into place, merging with what is already there.

:func:`download` chains them into the organisers' layout::

    <root>/dev_data/raw/<machine>/{train,test,attributes_00.csv}    (part "dev")
    <root>/eval_data/raw/<machine>/train/...                        (part "train")
    <root>/eval_data/raw/<machine>/test/...                         (part "test")
    <root>/.downloads/<zip>.done                                    (one marker per finished zip)

It is idempotent: an item whose marker exists (and whose machine folders are
still there) is skipped without any network access, so a re-run after an
interruption only does what is left, and a ``.part`` file left behind is
resumed rather than started again.

Only the standard library is used for the network (``urllib``); progress bars
come from :mod:`tqdm` and are off when ``progress=False`` or the environment
variable ``CI`` is set.

Examples
--------
>>> from asdkit.data.download import plan_downloads
>>> [i.filename for i in plan_downloads(parts=("train", "test"), machines=["RoboticArm"])]
['eval_data_RoboticArm_train_r2.zip', 'eval_data_RoboticArm_test.zip']
>>> plan_downloads(parts=("dev",), machines=["fan"])[0].url
'https://zenodo.org/record/10902294/files/dev_fan.zip'
"""
from __future__ import annotations

import http.client
import json
import logging
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from asdkit.data.archive import unpack
from asdkit.data.checksums import checksum_source, read_checksums, verify_md5
from asdkit.data.releases import RELEASES, release
from asdkit.errors import ConfigError, DownloadError
from asdkit.runtime import show_progress

__all__ = [
    "DownloadItem",
    "plan_downloads",
    "fetch",
    "unpack",
    "download",
    "DEV_MACHINES",
    "EVAL_MACHINES",
    "PARTS",
]

log = logging.getLogger(__name__)

#: Development machine types of DCASE 2024 Task 2 (part ``"dev"``); other years: :mod:`asdkit.data.releases`.
DEV_MACHINES: tuple[str, ...] = RELEASES[2024].dev_machines
#: Evaluation machine types of DCASE 2024 Task 2 (parts ``"train"`` and ``"test"``).
EVAL_MACHINES: tuple[str, ...] = RELEASES[2024].eval_machines
#: Part name -> what it is. ``"dev"``: development data (train + test);
#: ``"train"``: additional training data of the evaluation machines;
#: ``"test"``: evaluation test data (anonymised clips).
PARTS: dict[str, str] = {
    "dev": "development data of the dev machines (train + test)",
    "train": "additional training data of the eval machines",
    "test": "evaluation test data of the eval machines",
}

_DEST_SUBDIR = {"dev": "dev_data/raw", "train": "eval_data/raw", "test": "eval_data/raw"}

#: Base of the pause between attempts, in seconds (doubled each time, at most 30 s).
RETRY_BACKOFF_S: float = 1.0
_USER_AGENT = "asdkit-download/0.1 (+https://pypi.org/project/asdkit; python-urllib)"
_DOWNLOADS_DIR = ".downloads"


@dataclass(frozen=True)
class DownloadItem:
    """One zip to download: which machine and part, from where, and where it goes.

    Attributes
    ----------
    machine : str
        Machine type, spelt as the organisers do (``"ToyCar"``, ``"3DPrinter"``).
    part : {"dev", "train", "test"}
        Which part of the data (see :data:`PARTS`).
    url : str
        Full URL of the zip (Zenodo, or the mirror given to :func:`plan_downloads`).
    filename : str
        Zip file name, e.g. ``"dev_fan.zip"``.
    dest_subdir : str
        Folder below the dataset root that the zip unpacks into, with ``/``
        separators: ``"dev_data/raw"`` or ``"eval_data/raw"``.
    """

    machine: str
    part: str
    url: str
    filename: str
    dest_subdir: str


# --------------------------------------------------------------------------- planning


def _as_tuple(value, what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    try:
        out = tuple(value)
    except TypeError:
        raise ConfigError(f"{what} must be a string or a list of strings, got {value!r}") from None
    for v in out:
        if not isinstance(v, str):
            raise ConfigError(f"{what} must be strings, got {v!r} in {value!r}")
    return tuple(dict.fromkeys(out))  # de-duplicate, keep order


def plan_downloads(parts: str | Iterable[str] = ("dev",), machines: str | Iterable[str] | None = None,
                   mirror: str | None = None, *, year: int | None = None) -> list[DownloadItem]:
    """List the zips to download for the chosen parts and machines.

    No network access: this only looks the names up in the table of what the
    organisers published (see :data:`DEV_MACHINES`, :data:`EVAL_MACHINES`).

    Parameters
    ----------
    parts : str or iterable of str, default ("dev",)
        Any of ``"dev"`` (development data), ``"train"`` (additional training
        data of the eval machines) and ``"test"`` (evaluation test data).
    machines : str or iterable of str, optional
        Machine types (case-insensitive, e.g. ``"toycar"``). By default every
        machine of the chosen parts. A machine is kept for the parts that have
        it (``["fan", "HairDryer"]`` with ``parts=("dev", "test")`` gives
        ``dev_fan.zip`` and ``eval_data_HairDryer_test.zip``); a machine that
        none of the chosen parts has is an error.
    mirror : str, optional
        Base URL (``http://`` or ``https://``) that replaces the Zenodo record:
        each URL becomes ``mirror.rstrip("/") + "/" + filename``.
    year : int, optional
        The DCASE year, one of :data:`asdkit.data.releases.RELEASES` (2024, 2025,
        2026); default 2024.

    Returns
    -------
    list of DownloadItem
        In the order of ``parts``, then of ``machines`` (or the table order).

    Raises
    ------
    ConfigError
        For an unknown part or machine (the message lists the valid choices),
        a machine that none of the chosen parts has, or a malformed mirror.

    Examples
    --------
    >>> items = plan_downloads(parts=("train",), machines=["3DPrinter", "Scanner"])
    >>> [i.filename for i in items]
    ['eval_data_3DPrinter_train_r2.zip', 'eval_data_Scanner_train.zip']
    >>> plan_downloads(parts="dev", machines="fan", mirror="http://127.0.0.1:8000/z/")[0].url
    'http://127.0.0.1:8000/z/dev_fan.zip'
    """
    rel = release(year)
    parts_t = _as_tuple(parts, "parts")
    if not parts_t:
        raise ConfigError(f"parts is empty; choose from {list(PARTS)}")
    bad_parts = [p for p in parts_t if p not in PARTS]
    if bad_parts:
        raise ConfigError(f"unknown part(s) {bad_parts}; valid parts are {list(PARTS)} "
                          "('dev' = development data, 'train' = additional training data, "
                          "'test' = evaluation test data)")
    if mirror is not None:
        if not isinstance(mirror, str) or urllib.parse.urlsplit(mirror).scheme not in ("http", "https") \
                or not urllib.parse.urlsplit(mirror).netloc:
            raise ConfigError(f"mirror must be an http:// or https:// base URL, got {mirror!r}")

    def table(part: str) -> tuple[str, ...]:
        return rel.machines(part)

    if machines is None:
        chosen = None
    else:
        wanted = _as_tuple(machines, "machines")
        if not wanted:
            raise ConfigError("machines is empty; pass None for every machine of the chosen parts")
        known = {m.lower(): m for m in rel.dev_machines + rel.eval_machines}
        unknown = [m for m in wanted if m.lower() not in known]
        if unknown:
            raise ConfigError(f"unknown machine type(s) {unknown} for DCASE {rel.year}; valid machines are "
                              f"dev: {list(rel.dev_machines)}, eval: {list(rel.eval_machines)}")
        chosen = list(dict.fromkeys(known[m.lower()] for m in wanted))
        available = {m for p in parts_t for m in table(p)}
        missing = [m for m in chosen if m not in available]
        if missing:
            valid = sorted(available, key=(rel.dev_machines + rel.eval_machines).index)
            raise ConfigError(f"machine type(s) {missing} are not in part(s) {list(parts_t)}; "
                              f"valid machines for these parts are {valid} (dev machines come with "
                              "part 'dev', eval machines with parts 'train' and 'test')")

    items = []
    for part in parts_t:
        for machine in (table(part) if chosen is None else [m for m in chosen if m in table(part)]):
            name = rel.filename(machine, part)
            base = mirror.rstrip("/") if mirror is not None else rel.records[part]
            items.append(DownloadItem(machine=machine, part=part, url=f"{base}/{name}", filename=name,
                                      dest_subdir=_DEST_SUBDIR[part]))
    return items


# --------------------------------------------------------------------------- fetching


class _Retry(Exception):
    """An attempt failed in a way that another attempt may fix."""




def _parse_content_range(value: str | None) -> tuple[int | None, int | None, int | None]:
    """``"bytes 10-99/100"`` -> (10, 99, 100); ``"bytes */100"`` -> (None, None, 100)."""
    if not value:
        return None, None, None
    m = re.fullmatch(r"\s*bytes\s+(?:(\d+)-(\d+)|\*)\s*/\s*(\d+|\*)\s*", value)
    if not m:
        return None, None, None
    start = int(m.group(1)) if m.group(1) is not None else None
    end = int(m.group(2)) if m.group(2) is not None else None
    total = int(m.group(3)) if m.group(3) != "*" else None
    return start, end, total


def _int_header(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _attempt(url: str, part: Path, *, timeout: float, chunk_size: int, bar) -> None:
    """One transfer into ``part``, resuming from its size. Returns when the file is complete."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"}
    if have > 0:
        headers["Range"] = f"bytes={have}-"
    req = urllib.request.Request(url, headers=headers)
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        e.close()  # release the connection the error reply holds
        if e.code == 416 and have > 0:
            # Range not satisfiable: either the .part is already complete, or it is longer than the file.
            _, _, total = _parse_content_range(e.headers.get("Content-Range") if e.headers else None)
            if total is not None and total == have:
                return
            part.unlink(missing_ok=True)
            raise _Retry(f"the server refused to resume from byte {have} (HTTP 416); "
                         "the partial file was discarded to start again") from None
        if e.code in (408, 425, 429) or e.code >= 500:
            raise _Retry(f"HTTP {e.code} {e.reason}") from None
        raise DownloadError(f"the server answered HTTP {e.code} {e.reason} for {url}; check the machine, "
                            "part and mirror (see asdkit.data.download.plan_downloads)") from None
    with resp:
        status = resp.status
        if status == 206:
            start, _end, total = _parse_content_range(resp.headers.get("Content-Range"))
            if start is None:
                part.unlink(missing_ok=True)
                raise _Retry(f"partial reply without a usable Content-Range "
                             f"({resp.headers.get('Content-Range')!r}); starting again")
            if start > have:
                part.unlink(missing_ok=True)
                raise _Retry(f"the server resumed at byte {start}, after the {have} bytes kept; starting again")
            if total is None:
                length = _int_header(resp.headers.get("Content-Length"))
                total = start + length if length is not None else None
            mode, offset = "r+b", start
        elif status == 200:
            # Full reply (also the answer of a server that ignores Range): start from zero.
            total = _int_header(resp.headers.get("Content-Length"))
            mode, offset = "wb", 0
        else:
            raise _Retry(f"unexpected HTTP status {status}")
        if bar is not None:
            bar.reset(total=total)
            bar.update(offset)
        with open(part, mode) as fh:
            fh.seek(offset)
            fh.truncate(offset)
            got = offset
            # read1 returns what has arrived (up to chunk_size), so a timeout loses nothing received
            read = getattr(resp, "read1", resp.read)
            while True:
                chunk = read(chunk_size)
                if not chunk:
                    break
                fh.write(chunk)
                got += len(chunk)
                if bar is not None:
                    bar.update(len(chunk))
                if total is not None and got > total:
                    break
    if total is not None and got < total:
        raise _Retry(f"connection closed after {got} of {total} bytes")
    if total is not None and got > total:
        part.unlink(missing_ok=True)
        raise _Retry(f"received {got} bytes but the server announced {total}; the partial file was discarded")


def fetch(url: str, dest: str | os.PathLike, *, retries: int = 3, timeout: float = 60, progress: bool = True,
          chunk_size: int = 1 << 20, backoff: float | None = None) -> Path:
    """Download one URL to a file, resuming after interruptions.

    The bytes go to ``dest + ".part"``; only a complete transfer (as many bytes
    as ``Content-Length`` / ``Content-Range`` announced) is renamed to ``dest``
    (atomically, :func:`os.replace`). After a cut connection, a timeout or a
    short read the next attempt asks for the rest with ``Range: bytes=N-``,
    where ``N`` is the size of the ``.part`` file; a ``.part`` left by an
    earlier, killed run is resumed the same way. A ``206`` reply is appended
    at the offset it names; a server that answers ``200`` to a range request
    sends the whole file, which is then written from zero.

    Parameters
    ----------
    url : str
        ``http://`` or ``https://`` URL (redirects are followed).
    dest : path-like
        Target file; its folder is created. An existing file is replaced.
    retries : int, default 3
        How many further attempts after the first fails (so ``retries + 1``
        attempts in all), with a pause of ``backoff * 2**k`` seconds
        (at most 30 s) before the ``k``-th retry.
    timeout : float, default 60
        Seconds to wait for the connection and for each read.
    progress : bool, default True
        Show a :mod:`tqdm` bar (never when the environment variable ``CI`` is set).
    chunk_size : int, default 1 MiB
        Bytes read and written at a time.
    backoff : float, optional
        Base pause in seconds; default :data:`RETRY_BACKOFF_S` (1 s).

    Returns
    -------
    pathlib.Path
        ``dest``.

    Raises
    ------
    DownloadError
        When every attempt failed (the message names the URL and says that the
        ``.part`` file is kept, so that a re-run resumes), or at once for an
        HTTP client error such as 404.
    ConfigError
        For a negative ``retries`` or a non-positive ``timeout`` / ``chunk_size``.

    Examples
    --------
    >>> fetch("https://zenodo.org/record/10902294/files/dev_fan.zip", "data/.downloads/dev_fan.zip")  # doctest: +SKIP
    PosixPath('data/.downloads/dev_fan.zip')
    """
    if not isinstance(retries, int) or retries < 0:
        raise ConfigError(f"retries must be an integer >= 0, got {retries!r}")
    if not timeout or timeout <= 0:
        raise ConfigError(f"timeout must be > 0 seconds, got {timeout!r}")
    if not isinstance(chunk_size, int) or chunk_size <= 0:
        raise ConfigError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    backoff = RETRY_BACKOFF_S if backoff is None else float(backoff)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")

    bar = None
    if show_progress(progress):
        from tqdm.auto import tqdm
        bar = tqdm(desc=dest.name, unit="B", unit_scale=True, unit_divisor=1024, miniters=1,
                   file=sys.stderr, leave=True)
    errors: list[str] = []
    try:
        for attempt in range(retries + 1):
            if attempt:
                pause = min(backoff * 2 ** (attempt - 1), 30.0)
                log.info("retrying %s in %.1f s (attempt %d of %d): %s", url, pause, attempt + 1,
                         retries + 1, errors[-1])
                if pause > 0:
                    time.sleep(pause)
            try:
                _attempt(url, part, timeout=timeout, chunk_size=chunk_size, bar=bar)
            except _Retry as e:
                errors.append(str(e))
                continue
            except (OSError, http.client.HTTPException) as e:
                # URLError (refused, DNS), ConnectionResetError, TimeoutError, IncompleteRead, ...
                reason = getattr(e, "reason", None) or e
                errors.append(f"{type(e).__name__}: {reason}")
                continue
            os.replace(part, dest)
            return dest
    finally:
        if bar is not None:
            bar.close()
    have = part.stat().st_size if part.exists() else 0
    kept = (f"The partial file {str(part)!r} ({have} bytes) is kept; run again to resume from there."
            if have else "Nothing was received yet; check the network (or the mirror) and run again.")
    raise DownloadError(f"could not download {url} after {retries + 1} attempt(s); last error: {errors[-1]}. "
                        f"{kept}")


# --------------------------------------------------------------------------- the whole thing


_YEAR_FILE = "year"


def _check_year(dl_dir: Path, year: int) -> None:
    """Refuse a root that holds another year's downloads (the zips of different years share names)."""
    mark = dl_dir / _YEAR_FILE
    try:
        held = int(mark.read_text().strip())
    except (OSError, ValueError):
        held = None
    if held is None:
        held = 2024 if any(dl_dir.glob("*.done")) else None    # markers written before years were recorded
    if held is not None and held != year:
        raise ConfigError(f"{str(dl_dir.parent)!r} holds DCASE {held} downloads; DCASE {year} shares zip names with "
                          f"it. Download DCASE {year} into a root of its own (e.g. data/dcase{year}).")
    if held is None:
        dl_dir.mkdir(parents=True, exist_ok=True)
        tmp = mark.with_name(mark.name + ".tmp")
        tmp.write_text(f"{year}\n")
        os.replace(tmp, mark)


def _write_marker(marker: Path, item: DownloadItem, names: list[str], md5: str | None) -> None:
    tmp = marker.with_name(marker.name + ".tmp")
    tmp.write_text(json.dumps({"url": item.url, "machine": item.machine, "part": item.part,
                               "dest_subdir": item.dest_subdir, "unpacked": names, "md5": md5,
                               "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, indent=1))
    os.replace(tmp, marker)


def _read_marker(marker: Path) -> list[str] | None:
    """The names a finished item unpacked, or None if the marker is missing or unreadable."""
    try:
        data = json.loads(marker.read_text())
        names = data["unpacked"]
        if isinstance(names, list) and all(isinstance(n, str) for n in names):
            return names
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def download(root: str | os.PathLike, *, parts: str | Iterable[str] = ("dev",),
             machines: str | Iterable[str] | None = None, mirror: str | None = None, keep_zip: bool = False,
             progress: bool = True, retries: int = 3, timeout: float = 60, year: int | None = None,
             verify: bool = True) -> list[Path]:
    """Download and unpack DCASE Task 2 data of one year into the organisers' layout.

    Each item of :func:`plan_downloads` is fetched to ``<root>/.downloads/``
    (resuming a ``.part`` left by an earlier run), unpacked into
    ``<root>/dev_data/raw/`` (part ``"dev"``) or ``<root>/eval_data/raw/``
    (parts ``"train"`` and ``"test"``, merged into one folder per machine), and
    recorded as finished by a marker ``<root>/.downloads/<zip>.done``. A second
    run skips finished items without touching the network. Items are done one
    after the other; the first failure raises, and a re-run goes on from there.

    Parameters
    ----------
    root : path-like
        Dataset root (created if needed); afterwards readable by
        :func:`asdkit.data.dataset.scan_root`.
    parts : str or iterable of str, default ("dev",)
        Any of ``"dev"``, ``"train"``, ``"test"`` (see :data:`PARTS`).
    machines : str or iterable of str, optional
        Machine types; by default every machine of the chosen parts.
    mirror : str, optional
        Base URL that replaces Zenodo (see :func:`plan_downloads`).
    keep_zip : bool, default False
        Keep each zip in ``<root>/.downloads/`` after unpacking.
    progress : bool, default True
        Show progress bars (never when the environment variable ``CI`` is set).
    retries : int, default 3
        Further attempts per zip after a failed one (see :func:`fetch`).
    timeout : float, default 60
        Seconds to wait for the connection and for each read.
    year : int, optional
        2024 (default), 2025 or 2026 (:mod:`asdkit.data.releases`). A root that
        already holds another year's downloads is refused.
    verify : bool, default True
        Check each zip against the MD5 sum its publisher gives
        (:mod:`asdkit.data.checksums`: Zenodo's record metadata, or a mirror's
        ``md5sums.txt``) before unpacking it; a zip whose sum differs is deleted.

    Returns
    -------
    list of pathlib.Path
        The machine folders of the planned items (each once, in plan order),
        e.g. ``[<root>/dev_data/raw/fan, <root>/eval_data/raw/HairDryer]``.

    Raises
    ------
    ConfigError
        For an unknown part or machine, or a malformed mirror.
    DownloadError
        When a zip cannot be downloaded (a re-run resumes it), is corrupt or
        differs from its published MD5 sum (it is deleted, so a re-run
        downloads it again).

    Examples
    --------
    >>> download("data", parts=("dev",), machines=["fan", "valve"])  # doctest: +SKIP
    [PosixPath('data/dev_data/raw/fan'), PosixPath('data/dev_data/raw/valve')]
    """
    items = plan_downloads(parts=parts, machines=machines, mirror=mirror, year=year)
    rel = release(year)
    root = Path(root)
    dl_dir = root / _DOWNLOADS_DIR
    _check_year(dl_dir, rel.year)
    out: list[Path] = []
    sums: dict[str, dict[str, str]] = {}            # checksum source -> file name -> MD5, read once each

    def published_md5(item: DownloadItem) -> str | None:
        source = checksum_source(item.url)[1]
        if source not in sums:
            sums[source] = read_checksums(item.url, timeout=timeout)
        md5 = sums[source].get(item.filename)
        if md5 is None and sums[source]:
            log.warning("%s: no MD5 sum published for it; used unchecked", item.filename)
        return md5

    def add(dest_root: Path, names: list[str]) -> None:
        for name in names:
            p = dest_root / name
            if p.is_dir() and p not in out:
                out.append(p)

    for item in items:
        dest_root = root / item.dest_subdir
        zip_path = dl_dir / item.filename
        marker = dl_dir / (item.filename + ".done")
        names = _read_marker(marker) if marker.exists() else None
        if names is not None and names and all((dest_root / n).exists() for n in names):
            log.info("%s: already downloaded and unpacked, skipped", item.filename)
            add(dest_root, names)
            continue
        dl_dir.mkdir(parents=True, exist_ok=True)
        marker.unlink(missing_ok=True)
        if zip_path.is_file():
            log.info("%s: using the archive downloaded earlier", item.filename)
        else:
            fetch(item.url, zip_path, retries=retries, timeout=timeout, progress=progress)
        md5 = published_md5(item) if verify else None
        if md5 is not None:
            verify_md5(zip_path, md5)
            log.info("%s: MD5 sum matches the published one", item.filename)
        names = unpack(zip_path, dest_root)
        _write_marker(marker, item, names, md5)
        if not keep_zip:
            zip_path.unlink(missing_ok=True)
        add(dest_root, names)
    return out
