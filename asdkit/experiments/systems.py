"""The registry of named systems: what ``asdkit run --system`` accepts.

A *system* is a detector class with settings and the name of the score it
reports. Systems of one *family* share one fitted detector per machine type
(``baseline-mse`` and ``baseline-mahala`` are two scores of the same
autoencoder), so a run fits each family once. A family may declare

* that it learns from the other machine types' training clips
  (``uses_outliers``: OEVAE's pseudo-anomalies, the classifier's extra classes);
* a *root-level model*, trained once per part of a root on the training clips
  of every machine type and handed to each machine type's detector
  (``root_model``: the classifier's one network);
* the families whose fitted detectors it is built on (``needs``: the ensemble).

Registering a system (:func:`register_system`) is all a new model needs to be
run by ``asdkit run`` and checked by the contract suite (``tests/test_contract.py``).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from asdkit.errors import ConfigError

__all__ = ["BuildContext", "SystemSpec", "SYSTEMS", "PRESETS", "register_system", "resolve_systems", "family_members"]

#: The presets every system knows: ``quick`` (CI, notebooks, demo: seconds to minutes on 2 CPU cores),
#: ``cpu`` (the largest settings with which all systems finish the embedded paper dataset on 2 CPU
#: cores in about 30 minutes), ``paper`` (the report's settings, for a GPU).
PRESETS = ("quick", "cpu", "paper")


@dataclass(frozen=True)
class BuildContext:
    """What a system's ``build`` and ``root_model`` get.

    Attributes
    ----------
    preset : str or a model config
        A name of :data:`PRESETS`, or a config object of the model (ablations pass one).
    seed : int
    device : str
    progress : bool
    cache : FeatureCache or None
        Feature cache shared by the run.
    root : object or None
        The family's root-level model (``SystemSpec.root_model``), when it has one.
    channels : str
        Channel policy of :mod:`asdkit.data.channels` every model reads its clips under
        (``--channels``); ``"auto"`` keeps each model's settings as they are.
    """

    preset: Any = "quick"
    seed: int = 0
    device: str = "cpu"
    progress: bool = False
    cache: Any = None
    root: Any = None
    channels: str = "auto"


@dataclass(frozen=True)
class SystemSpec:
    """A named system of the registry.

    Attributes
    ----------
    name : str
        What ``--system`` accepts, e.g. ``"baseline-mahala"``.
    family : str
        Systems of one family share one fitted detector per machine type.
    score_key : str
        Which of the detector's ``score_names`` is this system's score.
    description : str
    build : callable
        ``build(context: BuildContext) -> Detector`` (unfitted).
    uses_outliers : bool
        ``fit`` gets ``outliers=``: the training clips of the root's other
        machine types (same part).
    root_model : callable, optional
        ``root_model(train_table, context) -> object``: trained once per part
        of the root on every machine type's training clips; ``build`` then
        finds it in ``context.root``.
    needs : tuple of str
        Families whose fitted detectors (same machine type) ``fit`` gets as
        ``members={family: detector}``; a run fits them first, also when none
        of their systems was asked for.
    configure : callable, optional
        ``configure(preset, **overrides) -> config``: the model's named
        settings with some fields replaced (what an ablation varies).
    """

    name: str
    family: str
    score_key: str
    description: str
    build: Callable = field(repr=False, compare=False)
    uses_outliers: bool = False
    root_model: Callable | None = field(default=None, repr=False, compare=False)
    needs: tuple = ()
    configure: Callable | None = field(default=None, repr=False, compare=False)


SYSTEMS: dict[str, SystemSpec] = {}


def register_system(spec: SystemSpec) -> SystemSpec:
    """Add a system to :data:`SYSTEMS`; the families it ``needs`` must be registered already."""
    known = {s.family for s in SYSTEMS.values()}
    missing = [f for f in spec.needs if f not in known]
    if missing:
        raise ConfigError(f"system {spec.name!r} needs the famil(ies) {missing}, which no registered system has; "
                          "register those first.")
    SYSTEMS[spec.name] = spec
    return spec


def resolve_systems(systems: Sequence[str] | str) -> list[SystemSpec]:
    """The specs of system names (``"all"`` = every registered system), in the order given, each once."""
    names = [systems] if isinstance(systems, str) else list(systems)
    if names == ["all"]:
        names = list(SYSTEMS)
    unknown = [n for n in names if n not in SYSTEMS]
    if unknown or not names:
        raise ConfigError(f"unknown system(s) {unknown or names}; choose from {sorted(SYSTEMS)} or 'all'")
    return [SYSTEMS[n] for n in dict.fromkeys(names)]


def family_members(family: str) -> list[SystemSpec]:
    """The registered systems of a family, in registration order."""
    return [s for s in SYSTEMS.values() if s.family == family]


# ---------------------------------------------------------------------- the systems of asdkit
def _baseline(ctx: BuildContext):
    from asdkit.models.baseline import AutoencoderBaseline

    return AutoencoderBaseline(preset=_settings(ctx, "asdkit.models.baseline", "baseline_config"), seed=ctx.seed,
                               device=ctx.device, progress=ctx.progress)


def _oevae(ctx: BuildContext):
    from asdkit.models.oevae import OEVAEDetector

    return OEVAEDetector(preset=_settings(ctx, "asdkit.models.oevae", "oevae_config"), seed=ctx.seed,
                         device=ctx.device, progress=ctx.progress, cache=ctx.cache)


def _classifier_network(train, ctx: BuildContext):
    from asdkit.models.classifier import train_classifier

    # the same clips in the same order, however the root was listed
    train = train.sort_values("path", kind="stable").reset_index(drop=True)
    return [train_classifier(train, preset=_settings(ctx, "asdkit.models.classifier", "classifier_config"),
                             seed=ctx.seed, device=ctx.device, progress=ctx.progress)]


def _classifier(ctx: BuildContext):
    from asdkit.models.classifier import ClassifierDetector

    return ClassifierDetector(preset=_settings(ctx, "asdkit.models.classifier", "classifier_config"), seed=ctx.seed,
                              device=ctx.device, progress=ctx.progress, models=ctx.root)


def _ensemble(ctx: BuildContext):
    from asdkit.models.ensemble import EnsembleDetector

    return EnsembleDetector()


def _ensemble_report(ctx: BuildContext):
    from asdkit.models.ensemble import REPORT_MEMBERS, EnsembleDetector

    return EnsembleDetector(keys=REPORT_MEMBERS)


def _settings(ctx: BuildContext, module: str, function: str):
    """The context's preset, with its channel policy where the run sets one (``--channels``)."""
    if ctx.channels == "auto":
        return ctx.preset
    return _named_config(module, function, ctx.preset, channels=ctx.channels)


def _named_config(module: str, function: str, preset, **overrides):
    import importlib

    return getattr(importlib.import_module(module), function)(preset, **overrides)


def _configure(module: str, function: str) -> Callable:
    """``configure(preset, **overrides)`` of a model's ``<name>_config`` function, imported on first use."""
    return functools.partial(_named_config, module, function)


def _reference(ctx: BuildContext):
    from asdkit.models.reference import ReferenceKNN

    return ReferenceKNN(channels=ctx.channels)


register_system(SystemSpec("reference-knn", "reference", "reference",
                           "reference: nearest neighbours on per-clip log-mel statistics (mean, std per band)",
                           _reference))
register_system(SystemSpec("baseline-mse", "baseline", "mse",
                           "organisers' dense autoencoder, mean squared reconstruction error", _baseline,
                           configure=_configure("asdkit.models.baseline", "baseline_config")))
register_system(SystemSpec("baseline-mahala", "baseline", "mahala",
                           "organisers' dense autoencoder, their selective Mahalanobis: per-domain 128 x 128 "
                           "covariances of residual frames, min over source/target",
                           _baseline, configure=_configure("asdkit.models.baseline", "baseline_config")))
register_system(SystemSpec("baseline-mahala-lw", "baseline", "mahala_lw",
                           "the same autoencoder, asdkit's selective Mahalanobis variant: per-domain Ledoit-Wolf "
                           "640 x 640 covariances of whole residual vectors",
                           _baseline, configure=_configure("asdkit.models.baseline", "baseline_config")))
register_system(SystemSpec("oevae", "oevae", "oevae",
                           "OEVAE: outlier-exposed ResNet18 + domain-invariant VAE + KNN, w*alpha + (1-w)*beta, "
                           "scored per domain (the ten target clips' statistics shrunk toward the source's)",
                           _oevae, uses_outliers=True, configure=_configure("asdkit.models.oevae", "oevae_config")))
register_system(SystemSpec("oevae-alpha", "oevae", "alpha",
                           "OEVAE, alpha only: -log p(z_c) of the VAE's domain-invariant latent",
                           _oevae, uses_outliers=True, configure=_configure("asdkit.models.oevae", "oevae_config")))
register_system(SystemSpec("oevae-beta", "oevae", "beta",
                           "OEVAE, beta only: KNN distance of the ResNet18 embeddings to the normal training data "
                           "(per-domain banks)",
                           _oevae, uses_outliers=True, configure=_configure("asdkit.models.oevae", "oevae_config")))
register_system(SystemSpec("oevae-domain", "oevae", "oevae_domain",
                           "OEVAE scored per domain, each domain's statistics from its own clips alone (no "
                           "shrinkage of the ten target clips' toward the source's; the same network as oevae)",
                           _oevae, uses_outliers=True, configure=_configure("asdkit.models.oevae", "oevae_config")))
register_system(SystemSpec("oevae-report", "oevae", "oevae_pooled",
                           "OEVAE scored as the report: one pooled KNN bank, alpha and beta standardised over all "
                           "training clips (the same network as oevae)",
                           _oevae, uses_outliers=True, configure=_configure("asdkit.models.oevae", "oevae_config")))
register_system(SystemSpec("classifier", "classifier", "classifier",
                           "classification-based model: FFT, mel and phase branches, Sub-Cluster AdaCos, FeatEx, "
                           "Mixup; one network for the root; per machine type the distance to the nearest source "
                           "centroid and target clip, each standardised per domain (the ten target clips' "
                           "statistics shrunk toward the source's), the smaller",
                           _classifier, uses_outliers=True, root_model=_classifier_network,
                           configure=_configure("asdkit.models.classifier", "classifier_config")))
register_system(SystemSpec("classifier-domain", "classifier", "classifier_domain",
                           "the classifier scored per domain, each domain's statistics from its own clips alone (no "
                           "shrinkage; the same network as classifier)",
                           _classifier, uses_outliers=True, root_model=_classifier_network,
                           configure=_configure("asdkit.models.classifier", "classifier_config")))
register_system(SystemSpec("classifier-report", "classifier", "classifier_kmeans",
                           "the classifier scored as the report (Wilkinghoff): smallest raw cosine distance to the "
                           "source centroids and the target clips (the same network as classifier)",
                           _classifier, uses_outliers=True, root_model=_classifier_network,
                           configure=_configure("asdkit.models.classifier", "classifier_config")))
register_system(SystemSpec("ensemble", "ensemble", "ensemble",
                           "classifier + OEVAE, each standardised by its training clips' scores, equal weights",
                           _ensemble, needs=("classifier", "oevae")))
register_system(SystemSpec("ensemble-report", "ensemble-report", "ensemble",
                           "the report's ensemble: classifier-report + oevae-report, standardised, equal weights",
                           _ensemble_report, needs=("classifier", "oevae")))
