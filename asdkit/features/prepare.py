"""Multi-step jobs built from the library's blocks, shared by the command line and the notebooks."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from asdkit.data.dataset import scan_root, summarize
from asdkit.features.cache import FeatureCache
from asdkit.features.spectra import extract, feature_config
from asdkit.io import atomic_write_bytes

__all__ = ["prepare"]


def prepare(root, out, *, features: str = "quick", machines=None, cache=None, device: str = "cpu",
            progress: bool = False, channels: str = "auto") -> dict:
    """Scan a root, extract log-mel features of every clip and write them with the clip table.

    Writes ``<out>/clips.csv`` (the clip table, with a ``row`` column that indexes
    the feature arrays), ``<out>/summary.csv`` (clips per machine, part, split,
    domain and label), ``<out>/log_mel_<machine>.npy`` (float16 arrays of shape
    ``(n_clips, n_segments, n_mels, n_frames)``) and ``<out>/features.json``
    (the feature configuration). Every file is written to a temporary name and
    renamed into place. ``channels`` is the channel policy of
    :mod:`asdkit.data.channels`; under ``"both"`` the arrays have a channel axis
    (near, far) after the segment axis.

    Returns
    -------
    dict
        ``{"table": DataFrame, "summary": DataFrame, "files": [Path, ...]}``
    """
    cfg = feature_config(features, channels=channels)
    table = scan_root(root, machines=machines)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fcache = FeatureCache(cache) if cache else None
    files = []
    rows = np.zeros(len(table), dtype=np.int64)
    for machine, idx in table.groupby("machine", sort=True).groups.items():
        sub = table.loc[idx]
        X = extract(sub, kind="log_mel", config=cfg, cache=fcache, device=device, progress=progress)
        rows[table.index.get_indexer(idx)] = np.arange(len(sub))
        buf = io.BytesIO()
        np.save(buf, X.astype(np.float16))
        path = out / f"log_mel_{machine}.npy"
        atomic_write_bytes(path, buf.getvalue())
        files.append(path)
    flat = table.assign(row=rows, attributes=[json.dumps(a, sort_keys=True) for a in table["attributes"]])
    summary = summarize(table)
    for name, frame in (("clips.csv", flat), ("summary.csv", summary)):
        atomic_write_bytes(out / name, frame.to_csv(index=name == "summary.csv").encode())
        files.append(out / name)
    atomic_write_bytes(out / "features.json", json.dumps({"kind": "log_mel", "preset": features,
                                                          "config": cfg.to_dict()}, indent=2).encode())
    files.append(out / "features.json")
    return {"table": table, "summary": summary, "files": files}
