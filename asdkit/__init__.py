"""asdkit: anomalous sound detection under domain shift (DCASE Task 2), notebook first."""
from __future__ import annotations

__version__ = "0.1.0"

from .errors import (AsdkitError, AudioError, ConfigError, DatasetError, DownloadError,  # noqa: F401
                     FileNameError, ScoreFileError)
from .names import ClipName, format_filename, parse_filename  # noqa: F401
from .dataset import attribute_frame, find_machines, scan_root, summarize  # noqa: F401
