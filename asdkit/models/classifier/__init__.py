"""The classification-based model (Section 3.1 of the report, after Wilkinghoff).

A network learns to tell apart the *classes* of the normal training clips of
every machine type of a root, where a class is one combination of machine type,
section, domain and attribute values. Its embeddings of normal clips then sit
close to their class's training embeddings, and an anomalous clip lands farther
away: its anomaly score is the smallest cosine distance to k-means centroids of
its section's source-domain training embeddings and to every target-domain
training embedding (**higher = more anomalous**).

Modules: :mod:`~asdkit.models.classifier.config` (settings and presets),
:mod:`~asdkit.models.classifier.labels` (the classes),
:mod:`~asdkit.models.classifier.torch_model` (branches, network, Sub-Cluster
AdaCos), :mod:`~asdkit.models.classifier.train` (Mixup, FeatEx, the training
step, :func:`train_classifier`) and :mod:`~asdkit.models.classifier.detector`
(:class:`ClassifierDetector`, what ``asdkit run --system classifier`` uses).
"""
from asdkit.models.classifier.config import (  # noqa: F401
                                             BRANCH_VARIANTS,
                                             BRANCHES,
                                             CLASSIFIER_PRESETS,
                                             ClassifierConfig,
                                             classifier_config,
)
from asdkit.models.classifier.detector import ClassifierDetector  # noqa: F401
from asdkit.models.classifier.labels import class_labels  # noqa: F401
from asdkit.models.classifier.torch_model import (  # noqa: F401
                                             ClassifierNet,
                                             ClassifierWithLoss,
                                             FFTBranch,
                                             SpectrogramBranch,
                                             SubClusterAdaCos,
)
from asdkit.models.classifier.train import ClassifierModel, featex, train_classifier, waveform_mixup  # noqa: F401

__all__ = ["BRANCHES", "ClassifierConfig", "CLASSIFIER_PRESETS", "classifier_config", "BRANCH_VARIANTS",
           "class_labels", "FFTBranch", "SpectrogramBranch", "ClassifierNet", "SubClusterAdaCos",
           "ClassifierWithLoss", "featex", "waveform_mixup", "ClassifierModel", "train_classifier",
           "ClassifierDetector"]
