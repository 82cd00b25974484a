"""asdkit: anomalous sound detection under domain shift (DCASE Task 2), notebook first.

The package is laid out in data-flow order; a module imports only from its own
layer or the ones above it in this list:

1. :mod:`asdkit.errors`, :mod:`asdkit.io`, :mod:`asdkit.presets`: the error
   types, atomic writes, named presets;
2. :mod:`asdkit.data`: file names, :func:`scan_root` (any DCASE-layout root as
   one clip table), :func:`load_clip` with its channel policy for the two
   microphones of 2026 (:mod:`asdkit.data.channels`), the embedded synthetic
   dataset (:mod:`asdkit.data.synth`, the 2025/2026 variants in
   :mod:`asdkit.data.synth_years`), the 2025 supplemental clips
   (:mod:`asdkit.data.supplemental`), downloads (:mod:`asdkit.data.download`,
   :mod:`asdkit.data.releases`);
3. :mod:`asdkit.features`: standardised 2-s segments, log-mel / FFT / phase
   spectra, :func:`extract` with a :class:`FeatureCache`, Mixup and SMOTE;
4. :mod:`asdkit.scoring`: scoring backends on any embedding array (KNN,
   k-means + target samples, Mahalanobis, normalisation and weighted
   combination, the gamma threshold);
5. :mod:`asdkit.training`: the one training engine;
6. :mod:`asdkit.models`: the detectors (:class:`AutoencoderBaseline`,
   :class:`OEVAEDetector`, :class:`ClassifierDetector`,
   :class:`EnsembleDetector`, :class:`ReferenceKNN`) on one contract,
   :class:`Detector`;
7. :mod:`asdkit.evaluation`: the official metrics, files and evaluator;
8. :mod:`asdkit.plots`: figures and data exploration;
9. :mod:`asdkit.experiments`: named systems, the experiment protocol,
   ``asdkit run``, ablations and weight sweeps; then :mod:`asdkit.cli`.

Anomaly scores follow the DCASE convention everywhere: higher = more anomalous.
"""
from __future__ import annotations

__version__ = "0.1.0"

from asdkit import (
                           features,  # noqa: F401
                           plots,  # noqa: F401
)
from asdkit.data import audio, channels, supplemental, synth, synth_years  # noqa: F401
from asdkit.data.audio import load_clip, segment, standardize  # noqa: F401
from asdkit.data.channels import CHANNELS, cancel_far_noise  # noqa: F401
from asdkit.data.dataset import attribute_frame, clip_formats, clip_table, find_machines, scan_root, summarize  # noqa: F401
from asdkit.data.names import ClipName, format_filename, parse_filename  # noqa: F401
from asdkit.data.synth import synthesize  # noqa: F401
from asdkit.errors import (  # noqa: F401
                           AsdkitError,
                           AudioError,
                           ConfigError,
                           DatasetError,
                           DownloadError,
                           FileNameError,
                           NotFittedError,
                           ScoreFileError,
)
from asdkit.evaluation import metrics, outputs  # noqa: F401
from asdkit.evaluation.evaluate import evaluate_scores  # noqa: F401
from asdkit.experiments.notebook import notebook_setup  # noqa: F401
from asdkit.experiments.run import run_experiment  # noqa: F401
from asdkit.experiments.seeds import run_seeds  # noqa: F401
from asdkit.experiments.systems import SYSTEMS, register_system  # noqa: F401
from asdkit.features import (  # noqa: F401
                           FEATURE_PRESETS,
                           FeatureCache,
                           FeatureConfig,
                           TorchFeatures,
                           extract,
                           fft_spectrum,
                           log_mel,
                           phase_spectrum,
)
from asdkit.models.base import Detector  # noqa: F401
from asdkit.models.baseline import AutoencoderBaseline  # noqa: F401
from asdkit.models.classifier import ClassifierDetector  # noqa: F401
from asdkit.models.ensemble import EnsembleDetector  # noqa: F401
from asdkit.models.oevae import OEVAEDetector  # noqa: F401
from asdkit.models.reference import ReferenceKNN  # noqa: F401
from asdkit.plots import explore  # noqa: F401
