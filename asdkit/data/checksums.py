"""MD5 sums of the published zips: where to find them, and checking a downloaded file against them.

Zenodo publishes an MD5 sum for every file of a record, in the record's
metadata (``https://zenodo.org/api/records/<id>``: ``files[].checksum =
"md5:<hex>"``). A mirror (``asdkit download --mirror URL``) may publish the
sums beside its zips in an ``md5sums.txt`` of the usual ``md5sum`` format
(``<hex>  <file name>`` per line). Where neither is found a zip is used
unchecked, with a warning; a zip whose sum differs is deleted and refused.

Hashing uses :func:`pooch.file_hash`.
"""
from __future__ import annotations

import json
import logging
import re
import urllib.error
import urllib.request
from pathlib import Path

from asdkit.errors import DownloadError

__all__ = ["checksum_source", "read_checksums", "parse_md5sums", "parse_zenodo_record", "verify_md5",
           "MD5SUMS"]

log = logging.getLogger(__name__)

#: File name of a mirror's sums, beside its zips.
MD5SUMS = "md5sums.txt"
_ZENODO_FILE = re.compile(r"^(https?://[^/]+)/records?/(\d+)/files/[^/]+$")
_MD5 = re.compile(r"^[0-9a-f]{32}$")


def checksum_source(file_url: str) -> tuple[str, str]:
    """Where the sum of ``file_url`` is published: ``("zenodo", api_url)`` or ``("md5sums", url)``."""
    m = _ZENODO_FILE.match(file_url)
    if m:
        return "zenodo", f"{m.group(1)}/api/records/{m.group(2)}"
    return "md5sums", file_url.rsplit("/", 1)[0] + "/" + MD5SUMS


def parse_zenodo_record(record: dict) -> dict[str, str]:
    """File name -> MD5 (lower-case hex) from a Zenodo record's metadata (its ``files`` list)."""
    out = {}
    for f in record.get("files") or []:
        name, checksum = f.get("key") or f.get("filename"), str(f.get("checksum", ""))
        algo, _, value = checksum.partition(":")
        if name and algo.lower() == "md5" and _MD5.match(value.lower()):
            out[name] = value.lower()
    return out


def parse_md5sums(text: str) -> dict[str, str]:
    """File name -> MD5 from ``md5sum`` output (``<hex>  <name>`` or ``<hex> *<name>`` per line)."""
    out = {}
    for line in text.splitlines():
        parts = line.strip().split(None, 1)
        if len(parts) == 2 and _MD5.match(parts[0].lower()):
            out[parts[1].lstrip("*").strip()] = parts[0].lower()
    return out


def read_checksums(file_url: str, *, timeout: float = 60) -> dict[str, str]:
    """The published MD5 sums of the files beside ``file_url`` (empty where none are published).

    Raises
    ------
    DownloadError
        The metadata exists but cannot be read (a network error other than
        "not found", or a damaged answer).
    """
    kind, url = checksum_source(file_url)
    req = urllib.request.Request(url, headers={"User-Agent": "asdkit-download"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = resp.read()
    except urllib.error.HTTPError as e:
        if e.code == 404:
            log.warning("no MD5 sums published at %s: the downloaded zips are used unchecked", url)
            return {}
        raise DownloadError(f"could not read the MD5 sums at {url} (HTTP {e.code}). Run again later, or pass "
                            "verify=False (--no-verify) to use the zips unchecked.") from None
    except (urllib.error.URLError, OSError) as e:
        raise DownloadError(f"could not read the MD5 sums at {url} ({e}). Run again later, or pass "
                            "verify=False (--no-verify) to use the zips unchecked.") from None
    try:
        if kind == "zenodo":
            return parse_zenodo_record(json.loads(body))
        return parse_md5sums(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, AttributeError) as e:
        raise DownloadError(f"the MD5 sums at {url} are damaged ({type(e).__name__}); run again, or pass "
                            "verify=False (--no-verify).") from None


def verify_md5(path: str | Path, expected: str) -> str:
    """Check ``path`` against its published MD5; delete it and raise when they differ. Returns the sum.

    Raises
    ------
    DownloadError
        The sums differ: the file is deleted, so a re-run downloads it afresh.
    """
    import pooch

    path = Path(path)
    got = pooch.file_hash(str(path), alg="md5")
    if got != expected.lower():
        path.unlink(missing_ok=True)
        raise DownloadError(f"{path.name}: its MD5 sum is {got}, the published one {expected}; the file was "
                            "damaged on the way and has been deleted. Run the same command again to download it "
                            "afresh.")
    return got
