"""Features: log-mel, FFT and phase spectra of standardised 2-s segments, the feature cache, Mixup and SMOTE.

``from asdkit.features import extract, FEATURE_PRESETS, ...`` reads the
spectra module (:mod:`asdkit.features.spectra`); the cache lives in
:mod:`asdkit.features.cache`, the augmentations in :mod:`asdkit.features.augment`
and ``asdkit prepare`` in :mod:`asdkit.features.prepare`.
"""
from asdkit.features.augment import MixupResult, SmoteResult, mixup, smote  # noqa: F401
from asdkit.features.cache import STORAGE_DTYPES, FeatureCache  # noqa: F401
from asdkit.features.spectra import *  # noqa: F401,F403
from asdkit.features.spectra import __all__ as _spectra_all

__all__ = [*_spectra_all, "mixup", "MixupResult", "smote", "SmoteResult", "FeatureCache", "STORAGE_DTYPES"]
