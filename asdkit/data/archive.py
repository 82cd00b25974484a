"""Unpacking a downloaded DCASE zip into the organisers' layout: :func:`unpack`.

The zip is checked (CRC of every member, no paths that leave the root),
extracted into a temporary folder beside the destination and moved into place
machine folder by machine folder, merging with what is already there (the
``train`` and ``test`` zips of an evaluation machine share its folder;
``attributes_00.csv`` files are merged row by row).
"""
from __future__ import annotations

import filecmp
import os
import re
import shutil
import tempfile
import time
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from asdkit.errors import DownloadError

__all__ = ["unpack"]

_TMP_PREFIX = ".asdkit-unpack-"


def _pid_alive(pid: int) -> bool:
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _clean_stale_tmp(dest_root: Path) -> None:
    """Remove temporary unpack folders left by killed runs (so no half archive is ever scanned)."""
    for d in dest_root.glob(_TMP_PREFIX + "*"):
        m = re.match(re.escape(_TMP_PREFIX) + r"(\d+)-", d.name)
        if not d.is_dir() or not m:
            continue
        pid = int(m.group(1))
        stale = (pid != os.getpid() and not _pid_alive(pid)) if os.name == "posix" \
            else (time.time() - d.stat().st_mtime > 6 * 3600)
        if stale:
            shutil.rmtree(d, ignore_errors=True)


def _unsafe_member(name: str) -> bool:
    norm = name.replace("\\", "/")
    if not norm or norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
        return True
    return ".." in PurePosixPath(norm).parts


def _merge_csv(src: Path, dst: Path) -> None:
    """Append the rows of ``src`` that ``dst`` lacks (the header once) to ``dst``, atomically."""
    old = dst.read_bytes()
    new = src.read_bytes()
    nl = b"\r\n" if b"\r\n" in old else b"\n"
    old_lines = old.splitlines()
    seen = set(old_lines)
    add = [line for line in new.splitlines() if line.strip() and line not in seen]
    if not add:
        return
    body = old if (not old or old.endswith((b"\n", b"\r"))) else old + nl
    tmp = dst.with_name(dst.name + ".merge-tmp")
    tmp.write_bytes(body + nl.join(add) + nl)
    os.replace(tmp, dst)


def _merge_conflicts(src: Path, dst: Path) -> list[str]:
    """Paths where ``src`` and ``dst`` hold a file and a folder under the same name."""
    out = []
    for child in src.iterdir():
        target = dst / child.name
        if not target.exists():
            continue
        if child.is_dir() != target.is_dir():
            out.append(str(target))
        elif child.is_dir():
            out.extend(_merge_conflicts(child, target))
    return out


def _merge_into(src: Path, dst: Path) -> None:
    """Move ``src``'s content into the existing folder ``dst`` entry by entry."""
    for child in sorted(src.iterdir()):
        target = dst / child.name
        if not target.exists():
            os.replace(child, target)
        elif child.is_dir():
            _merge_into(child, target)
        elif filecmp.cmp(child, target, shallow=False):
            continue
        elif child.suffix.lower() == ".csv":
            _merge_csv(child, target)
        else:
            os.replace(child, target)


def unpack(zip_path: str | os.PathLike, dest_root: str | os.PathLike) -> list[str]:
    """Check a zip and unpack it into ``dest_root`` without leaving half a machine folder.

    The archive is verified first (:func:`zipfile.is_zipfile` and
    :meth:`zipfile.ZipFile.testzip`, which reads every member and checks its
    CRC), and members with absolute paths or ``..`` are refused. It is then
    extracted into a temporary folder inside ``dest_root`` and each top-level
    entry (the organisers' zips hold one ``<machine>/`` folder with
    ``train/``, ``test/`` and ``attributes_00.csv``) is moved into place with
    :func:`os.replace`. Where the machine folder exists already (the eval
    ``train`` and ``test`` zips both hold ``<machine>/``) the content is
    merged entry by entry: new files and subfolders are moved in, identical
    files are left alone, CSV files (``attributes_00.csv``) get the rows they
    lack appended, and any other file of the same name is replaced by the
    archive's. Temporary folders left by killed runs are removed.

    Parameters
    ----------
    zip_path : path-like
        The archive.
    dest_root : path-like
        The folder that receives the machine folders (created if needed), e.g.
        ``<root>/dev_data/raw``.

    Returns
    -------
    list of str
        Names of the top-level entries unpacked (normally one machine type), sorted.

    Raises
    ------
    DownloadError
        If the archive is missing, is not a valid zip, fails its CRC check or
        holds unsafe member names: the archive is then deleted (the message
        says so) so that a re-run downloads it again, and nothing is moved
        into ``dest_root``. Also if extraction fails for another reason (a
        full disk): the archive is then kept.

    Examples
    --------
    >>> unpack("data/.downloads/dev_fan.zip", "data/dev_data/raw")  # doctest: +SKIP
    ['fan']
    """
    zip_path = Path(zip_path)
    dest_root = Path(dest_root)
    if not zip_path.is_file():
        raise DownloadError(f"archive {str(zip_path)!r} does not exist; download it again.")

    def bad(reason: str) -> DownloadError:
        zip_path.unlink(missing_ok=True)
        return DownloadError(f"archive {str(zip_path)!r} {reason}; it has been deleted so that a re-run "
                             "downloads it again.")

    if not zipfile.is_zipfile(zip_path):
        raise bad("is not a zip file (corrupt or incomplete download)")
    try:
        with zipfile.ZipFile(zip_path) as zf:
            infos = zf.infolist()
            unsafe = [i.filename for i in infos if _unsafe_member(i.filename)]
            if unsafe:
                raise bad(f"holds member(s) with an absolute path or '..', refused for safety: {unsafe[:5]}")
            first_bad = zf.testzip()
    except DownloadError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, ValueError) as e:
        raise bad(f"is corrupt ({type(e).__name__}: {e})") from None
    if first_bad is not None:
        raise bad(f"is corrupt (member {first_bad!r} fails its CRC check)")
    if not infos:
        raise bad("is empty")

    dest_root.mkdir(parents=True, exist_ok=True)
    _clean_stale_tmp(dest_root)
    tmp = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{os.getpid()}-", dir=dest_root))
    try:
        try:
            with zipfile.ZipFile(zip_path) as zf:
                zf.extractall(tmp)
        except (zipfile.BadZipFile, zlib.error, EOFError) as e:
            raise bad(f"is corrupt ({type(e).__name__}: {e})") from None
        except OSError as e:
            raise DownloadError(f"could not unpack {str(zip_path)!r} into {str(dest_root)!r} ({e}); nothing "
                                "was moved into place and the archive is kept. Fix the cause (disk space, "
                                "permissions) and run again.") from None
        names = sorted(p.name for p in tmp.iterdir())
        conflicts = []
        for name in names:
            src, target = tmp / name, dest_root / name
            if target.exists():
                if src.is_dir() != target.is_dir():
                    conflicts.append(str(target))
                elif src.is_dir():
                    conflicts.extend(_merge_conflicts(src, target))
        if conflicts:
            raise DownloadError(f"cannot unpack {str(zip_path)!r}: these paths exist as a file where the "
                                f"archive has a folder, or the reverse: {conflicts[:5]}. Move them away and "
                                "run again; nothing was changed.")
        for name in names:
            src, target = tmp / name, dest_root / name
            if not target.exists():
                os.replace(src, target)
            elif src.is_dir():
                _merge_into(src, target)
            elif not filecmp.cmp(src, target, shallow=False):
                if src.suffix.lower() == ".csv":
                    _merge_csv(src, target)
                else:
                    os.replace(src, target)
        return names
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


