"""Data: DCASE file names, root scanning, the embedded synthetic dataset, downloads, audio loading.

The lowest layer above :mod:`asdkit.errors` and :mod:`asdkit.io`: nothing here
imports features, models or evaluation.
"""
from asdkit.data.audio import SAMPLE_RATE, load_clip, segment, segment_starts, standardize  # noqa: F401
from asdkit.data.dataset import COLUMNS, find_machines, read_attributes_csv, scan_root, summarize  # noqa: F401
from asdkit.data.names import NO_ATTRIBUTE, ClipName, format_filename, parse_attributes, parse_filename  # noqa: F401
