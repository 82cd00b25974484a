"""The one error family of asdkit.

Every problem that a user can fix (a bad file, a wrong argument, a broken
download) is raised as a subclass of :class:`AsdkitError`, whose message
names the file or argument and says what to do. ``AsdkitError`` derives from
``ValueError`` so that code catching ``ValueError`` keeps working.
"""
from __future__ import annotations

__all__ = [
    "AsdkitError",
    "AudioError",
    "FileNameError",
    "DatasetError",
    "ScoreFileError",
    "DownloadError",
    "ConfigError",
    "NotFittedError",
]


class AsdkitError(ValueError):
    """Base class of all asdkit errors."""


class AudioError(AsdkitError):
    """An audio file cannot be used: unreadable, empty, wrong rate, too short, not finite."""


class FileNameError(AsdkitError):
    """A file name follows none of the DCASE Task 2 naming patterns."""


class DatasetError(AsdkitError):
    """A dataset root does not have the DCASE layout, or lacks what a step needs."""


class ScoreFileError(AsdkitError):
    """An anomaly-score or decision CSV is malformed, misses clips or names unknown ones."""


class DownloadError(AsdkitError):
    """A download failed, was interrupted for good, or gave a corrupt archive."""


class ConfigError(AsdkitError):
    """An argument or configuration value is out of range or unknown."""


class NotFittedError(ConfigError):
    """A detector or scorer is used before ``fit`` (or ``load``): fit it first."""
