"""asdkit: anomalous sound detection under domain shift (DCASE Task 2), notebook first.

The library is a set of small blocks; notebooks and the ``asdkit`` command
chain them:

* data: :func:`scan_root` (any DCASE-layout root as one table), :func:`summarize`,
  :mod:`asdkit.synth` (the embedded synthetic dataset), :mod:`asdkit.download`;
* audio and features: :func:`load_clip`, :func:`standardize`, :func:`segment`,
  :func:`log_mel`, :func:`fft_spectrum`, :func:`phase_spectrum`, the batched
  :class:`TorchFeatures`, :func:`extract` with a :class:`FeatureCache`;
* metrics and official files: :mod:`asdkit.metrics`, :mod:`asdkit.outputs`,
  :func:`evaluate_scores`;
* exploring and plotting: :mod:`asdkit.explore`, :mod:`asdkit.plots`;
* training and models: :mod:`asdkit.engine` (the one training loop),
  :class:`AutoencoderBaseline` (the organisers' baseline), :class:`OEVAEDetector`
  (:mod:`asdkit.oevae`), :class:`ClassifierDetector` (:mod:`asdkit.classifier`),
  :class:`EnsembleDetector` (:mod:`asdkit.ensemble`), :mod:`asdkit.run`
  (named systems, experiments, ``asdkit run``).

Anomaly scores follow the DCASE convention everywhere: higher = more anomalous.
"""
from __future__ import annotations

__version__ = "0.1.0"

from . import audio, explore, features, metrics, outputs, plots  # noqa: F401
from .audio import load_clip, segment, standardize  # noqa: F401
from .baseline import AutoencoderBaseline  # noqa: F401
from .cache import FeatureCache  # noqa: F401
from .classifier import ClassifierDetector  # noqa: F401
from .dataset import attribute_frame, find_machines, scan_root, summarize  # noqa: F401
from .errors import (AsdkitError, AudioError, ConfigError, DatasetError, DownloadError,  # noqa: F401
                     FileNameError, ScoreFileError)
from .ensemble import EnsembleDetector  # noqa: F401
from .evaluate import evaluate_scores  # noqa: F401
from .features import (FEATURE_PRESETS, FeatureConfig, TorchFeatures, extract, fft_spectrum,  # noqa: F401
                       log_mel, phase_spectrum)
from .names import ClipName, format_filename, parse_filename  # noqa: F401
from .oevae import OEVAEDetector  # noqa: F401
from .run import run_experiment  # noqa: F401
from .synth import synthesize  # noqa: F401
