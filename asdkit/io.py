"""Atomic writes that honour the user's umask: a reader never sees a half-written file or folder.

Everything asdkit writes (features, checkpoints, official CSVs, saved
detectors, job results, synthetic datasets, tables) goes through
:func:`atomic_write_bytes`, :func:`atomic_write_text` or :func:`atomic_dir`.

:func:`tempfile.mkstemp` and :func:`tempfile.mkdtemp` create private files
(0600) and folders (0700) whatever the umask says; a file or folder renamed
into place from them would stay private, so a colleague on a shared server,
or a Ray worker running as another user, could not read a run. The helpers
here give what they create the modes a plain ``open()`` or ``mkdir`` would
(:func:`file_mode`, :func:`dir_mode`).
"""
from __future__ import annotations

import contextlib
import functools
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

__all__ = ["atomic_write_bytes", "atomic_write_text", "atomic_dir", "replace_dir", "file_mode", "dir_mode",
           "current_umask"]


def current_umask() -> int:
    """The process's umask, read without changing it where Linux allows (``/proc/self/status``)."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    return _umask_by_swap()


@functools.lru_cache(maxsize=1)
def _umask_by_swap() -> int:
    # elsewhere the only way is to set it and set it back; done once per process
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode a new file gets from ``open()`` under the current umask (``0o666 & ~umask``)."""
    return 0o666 & ~current_umask()


def dir_mode() -> int:
    """The mode a new folder gets from ``mkdir`` under the current umask (``0o777 & ~umask``)."""
    return 0o777 & ~current_umask()


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; create the parent folder.

    The bytes go to a temporary file in the same folder, are flushed to disk,
    and replace ``path`` with :func:`os.replace`; on any error the temporary
    file is removed and ``path`` is left as it was. The file gets the mode of
    a plain ``open()`` (:func:`file_mode`). Returns ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), file_mode())
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically, as :func:`atomic_write_bytes`.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    return atomic_write_bytes(path, text.encode("utf-8"))


def replace_dir(src: str | Path, target: str | Path) -> Path:
    """Move the folder ``src`` to ``target``, replacing a folder already there.

    The old folder is first renamed aside (in ``target``'s parent) and removed
    only once ``src`` is in place, so ``target`` is never missing its content
    half-way; ``src`` and ``target`` must be on one file system.
    """
    src, target = Path(src), Path(target)
    if not target.exists():
        os.replace(src, target)
        return target
    aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    try:
        os.replace(target, aside / target.name)
        try:
            os.replace(src, target)
        except BaseException:
            os.replace(aside / target.name, target)         # put the old folder back
            raise
    finally:
        shutil.rmtree(aside, ignore_errors=True)
    return target


@contextlib.contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Build a folder under a temporary name beside ``target`` and move it into place at the end.

    Yields the temporary folder (mode :func:`dir_mode`). When the ``with``
    block ends normally it replaces ``target`` (:func:`replace_dir`); on any
    error it is removed and ``target`` is left as it was.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "model"
    >>> with atomic_dir(out) as tmp:
    ...     _ = (tmp / "state.json").write_text("{}")
    >>> sorted(p.name for p in out.iterdir())
    ['state.json']
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        os.chmod(tmp, dir_mode())
        yield tmp
        replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
