"""Data: DCASE file names, root scanning, the embedded synthetic dataset, downloads, audio loading.

The lowest layer above :mod:`asdkit.errors` and :mod:`asdkit.io`: nothing here
imports features, models or evaluation.
"""
import importlib

_NAMES = {
    "SAMPLE_RATE": "audio", "load_clip": "audio", "segment": "audio", "segment_starts": "audio",
    "standardize": "audio",
    "COLUMNS": "dataset", "find_machines": "dataset", "read_attributes_csv": "dataset", "scan_root": "dataset",
    "summarize": "dataset",
    "NO_ATTRIBUTE": "names", "ClipName": "names", "format_filename": "names", "parse_attributes": "names",
    "parse_filename": "names",
}
__all__ = list(_NAMES)


def __getattr__(name: str):
    # imported on first use (PEP 562): asdkit.data.channels and .names load without pandas
    if name not in _NAMES:
        raise AttributeError(f"module 'asdkit.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"asdkit.data.{_NAMES[name]}"), name)
    globals()[name] = value
    return value
