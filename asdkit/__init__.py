"""asdkit: anomalous sound detection under domain shift (DCASE Task 2), notebook first.

The package is laid out in data-flow order; a module imports only from its own
layer or the ones above it in this list:

1. :mod:`asdkit.errors`, :mod:`asdkit.io`, :mod:`asdkit.presets`,
   :mod:`asdkit.runtime`, :mod:`asdkit.constants`: the error types, atomic
   writes that honour the umask, named presets, the device, thread and
   progress decisions, shared constants;
2. :mod:`asdkit.data`: file names, :func:`scan_root` (any DCASE-layout root as
   one clip table), :func:`load_clip` with its channel policy for the two
   microphones of 2026 (:mod:`asdkit.data.channels`), the 2025 supplemental
   clips (:mod:`asdkit.data.supplemental`), downloads
   (:mod:`asdkit.data.download`, :mod:`asdkit.data.releases`);
3. :mod:`asdkit.synth`: the embedded synthetic dataset, its machine sounds and
   its 2025/2026 variants (:mod:`asdkit.synth.years`);
4. :mod:`asdkit.features`: standardised 2-s segments, log-mel / FFT / phase
   spectra, :func:`extract` with a :class:`FeatureCache`, Mixup and SMOTE;
5. :mod:`asdkit.scoring`: scoring backends on any embedding array (KNN,
   k-means + target samples, Mahalanobis, normalisation and weighted
   combination, the gamma threshold);
6. :mod:`asdkit.training`: the one training engine;
7. :mod:`asdkit.models`: the detectors (:class:`AutoencoderBaseline`,
   :class:`OEVAEDetector`, :class:`ClassifierDetector`,
   :class:`EnsembleDetector`, :class:`ReferenceKNN`) on one contract,
   :class:`Detector`;
8. :mod:`asdkit.evaluation`: the official metrics, files and evaluator;
9. :mod:`asdkit.plots`: figures and data exploration;
10. :mod:`asdkit.experiments`: named systems, the experiment protocol,
   ``asdkit run``, ablations and weight sweeps; then :mod:`asdkit.cli`.

``asdkit.__all__`` holds the everyday names (loading a dataset, the
detectors, running and evaluating); everything else is reached through its
subpackage. Names are imported on first use, so ``import asdkit`` is cheap.

Anomaly scores follow the DCASE convention everywhere: higher = more anomalous.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

#: The everyday names, and the module each lives in. They are imported on first use (PEP 562), so
#: ``import asdkit`` and ``asdkit --help`` do not load torch.
_PUBLIC = {
    # data
    "scan_root": "asdkit.data.dataset", "summarize": "asdkit.data.dataset", "load_clip": "asdkit.data.audio",
    "synthesize": "asdkit.synth",
    # features
    "extract": "asdkit.features", "FeatureConfig": "asdkit.features",
    # detectors
    "Detector": "asdkit.models.base", "AutoencoderBaseline": "asdkit.models.baseline",
    "OEVAEDetector": "asdkit.models.oevae", "ClassifierDetector": "asdkit.models.classifier",
    "EnsembleDetector": "asdkit.models.ensemble", "ReferenceKNN": "asdkit.models.reference",
    # evaluation and experiments
    "evaluate_scores": "asdkit.evaluation.evaluate", "run_experiment": "asdkit.experiments.run",
    "run_seeds": "asdkit.experiments.seeds", "notebook_setup": "asdkit.experiments.notebook",
    "SYSTEMS": "asdkit.experiments.systems",
    # errors
    "AsdkitError": "asdkit.errors", "ConfigError": "asdkit.errors",
}

#: Names ``import asdkit`` offered before ``__all__`` was drawn up; still reachable here, but their home is
#: the subpackage named (e.g. :func:`asdkit.features.log_mel`).
_ALSO = {
    "standardize": "asdkit.data.audio", "segment": "asdkit.data.audio",
    "CHANNELS": "asdkit.data.channels", "cancel_far_noise": "asdkit.data.channels",
    "attribute_frame": "asdkit.data.dataset", "clip_formats": "asdkit.data.dataset",
    "clip_table": "asdkit.data.dataset", "find_machines": "asdkit.data.dataset",
    "ClipName": "asdkit.data.names", "format_filename": "asdkit.data.names", "parse_filename": "asdkit.data.names",
    "AudioError": "asdkit.errors", "DatasetError": "asdkit.errors", "DownloadError": "asdkit.errors",
    "FileNameError": "asdkit.errors", "NotFittedError": "asdkit.errors", "ScoreFileError": "asdkit.errors",
    "register_system": "asdkit.experiments.systems",
    "FEATURE_PRESETS": "asdkit.features", "FeatureCache": "asdkit.features", "TorchFeatures": "asdkit.features",
    "fft_spectrum": "asdkit.features", "log_mel": "asdkit.features", "phase_spectrum": "asdkit.features",
    "explore": "asdkit.plots.explore",
}
#: Submodules that were attributes of the package, as ``asdkit.synth``; the rest are imported as usual.
_MODULES = {
    "audio": "asdkit.data.audio", "channels": "asdkit.data.channels", "supplemental": "asdkit.data.supplemental",
    "synth_years": "asdkit.synth.years", "metrics": "asdkit.evaluation.metrics",
    "outputs": "asdkit.evaluation.outputs",
}
_SUBPACKAGES = ("data", "synth", "features", "scoring", "training", "models", "evaluation", "plots", "experiments")

__all__ = [
    "__version__", "scan_root", "summarize", "load_clip", "synthesize", "extract", "FeatureConfig", "Detector",
    "AutoencoderBaseline", "OEVAEDetector", "ClassifierDetector", "EnsembleDetector", "ReferenceKNN",
    "evaluate_scores", "run_experiment", "run_seeds", "notebook_setup", "SYSTEMS", "AsdkitError", "ConfigError",
]


def __getattr__(name: str):
    if name in _PUBLIC or name in _ALSO:
        value = getattr(importlib.import_module(_PUBLIC.get(name) or _ALSO[name]), name)
    elif name in _MODULES:
        value = importlib.import_module(_MODULES[name])
    elif name in _SUBPACKAGES:
        value = importlib.import_module(f"asdkit.{name}")
    else:
        raise AttributeError(f"module 'asdkit' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | set(_SUBPACKAGES))


if TYPE_CHECKING:                                   # pragma: no cover: for type checkers and editors
    from asdkit.data.audio import load_clip
    from asdkit.data.dataset import scan_root, summarize
    from asdkit.errors import AsdkitError, ConfigError
    from asdkit.evaluation.evaluate import evaluate_scores
    from asdkit.experiments.notebook import notebook_setup
    from asdkit.experiments.run import run_experiment
    from asdkit.experiments.seeds import run_seeds
    from asdkit.experiments.systems import SYSTEMS
    from asdkit.features import FeatureConfig, extract
    from asdkit.models.base import Detector
    from asdkit.models.baseline import AutoencoderBaseline
    from asdkit.models.classifier import ClassifierDetector
    from asdkit.models.ensemble import EnsembleDetector
    from asdkit.models.oevae import OEVAEDetector
    from asdkit.models.reference import ReferenceKNN
    from asdkit.synth.dataset import synthesize
