"""Atomic file writes: a reader never sees a half-written file.

Everything asdkit writes (features, checkpoints, official CSVs, saved
detectors, tables) goes through :func:`atomic_write_bytes` or
:func:`atomic_write_text`.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write_bytes", "atomic_write_text"]

def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; create the parent folder.

    The bytes go to a temporary file in the same folder, are flushed to disk,
    and replace ``path`` with :func:`os.replace`; on any error the temporary
    file is removed and ``path`` is left as it was. Returns ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically; create the parent folder.

    The text goes to a temporary file in the same folder, is flushed to disk,
    and replaces ``path`` with :func:`os.replace`; on any error the temporary
    file is removed and ``path`` is left as it was.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    return atomic_write_bytes(path, text.encode("utf-8"))
