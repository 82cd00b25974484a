"""Settings of the classification-based model: :class:`ClassifierConfig`, its presets and the branch variants."""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from asdkit.data.channels import check_channels
from asdkit.errors import ConfigError
from asdkit.features.spectra import FEATURE_PRESETS, FeatureConfig
from asdkit.presets import check_integers, named_preset
from asdkit.scoring.normalize import check_prior

__all__ = ["BRANCHES", "ClassifierConfig", "CLASSIFIER_PRESETS", "classifier_config", "BRANCH_VARIANTS"]

#: The branch names a :class:`ClassifierConfig` may list.
BRANCHES = ("fft", "mel", "phase")


@dataclass(frozen=True)
class ClassifierConfig:
    """Settings of the classification-based model (frozen; vary with :func:`classifier_config`).

    Attributes
    ----------
    features : str
        :data:`~asdkit.features.spectra.FEATURE_PRESETS` name: segment length, STFT
        framing and mel bands of the branches' inputs.
    branches : tuple of str
        Which of :data:`BRANCHES` the network has (the first is the one FeatEx
        keeps; the others are exchanged).
    width : int
        Channels of the first stage of a spectrogram branch (doubled in each of
        its four stages).
    blocks : int
        Residual blocks per stage.
    fft_channels : int
        Channels of the FFT branch's convolutions.
    fft_pool : int
        Average FFT magnitude bins in groups of this size before the branch
        (1 = the full 16001 bins of a 2-s segment).
    phase_stride : int
        Keep every ``phase_stride``-th STFT bin of the phase.
    embedding_dim : int
        Embedding size of each branch (the network's embedding concatenates them).
    sub_clusters : int
        Sub-cluster centres per class in :class:`SubClusterAdaCos`.
    domain_in_class : bool
        Classes also split by domain (source / target).
    featex : bool
        Feature Exchange on (class set tripled).
    featex_p : float
        Probability that a sample's exchanged branches come from its partner.
    mixup : bool
        Mixup on the waveforms.
    mixup_p : float
        Probability that a sample is mixed (``lambda ~ U(0, 1)``).
    epochs, batch_size, lr : int, int, float
        Adamax training.
    weight_decay : float
        L2 penalty of Adamax.
    crops_per_clip : int
        Random 2-s crops of each training clip per epoch.
    n_clusters : int
        k-means clusters of a section's source-domain training embeddings.
    target_prior : float
        The default score's weight, in clips, of the source domain's distance
        statistics in the target domain's (:func:`asdkit.scoring.normalize.shrink_toward`):
        0 standardises each domain by its own clips, ``math.inf`` puts both on
        the source's scale (the raw minimum's ranking).
    n_models : int
        Independently trained networks (seeds ``seed, seed+1, ...``); their
        cosine distances are averaged.
    channels : str
        Channel policy of :mod:`asdkit.data.channels`; under ``"both"`` every branch takes the
        near and the far microphone as two input channels.
    """

    features: str = "paper"
    branches: tuple = BRANCHES
    width: int = 16
    blocks: int = 2
    fft_channels: int = 128
    fft_pool: int = 1
    phase_stride: int = 1
    embedding_dim: int = 128
    sub_clusters: int = 16
    domain_in_class: bool = True
    featex: bool = True
    featex_p: float = 0.5
    mixup: bool = True
    mixup_p: float = 0.5
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-5
    crops_per_clip: int = 4
    n_clusters: int = 16
    target_prior: float = 10.0
    n_models: int = 1
    channels: str = "auto"

    def __post_init__(self):
        check_channels(self.channels, name="ClassifierConfig.channels")
        branches = tuple(self.branches)
        object.__setattr__(self, "branches", branches)
        if not branches or any(b not in BRANCHES for b in branches) or len(set(branches)) != len(branches):
            raise ConfigError(f"ClassifierConfig.branches={self.branches!r}: name one or more of {BRANCHES}, "
                              "each once.")
        if self.featex and len(branches) < 2:
            raise ConfigError("ClassifierConfig: FeatEx exchanges branch embeddings and needs two branches or more; "
                              "set featex=False for a single branch.")
        check_integers(self, ("width", "blocks", "fft_channels", "fft_pool", "phase_stride", "embedding_dim",
                              "sub_clusters", "epochs", "batch_size", "crops_per_clip", "n_clusters", "n_models"))
        for name in ("featex_p", "mixup_p"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0 <= v <= 1):
                raise ConfigError(f"ClassifierConfig.{name}={v!r}: must lie in [0, 1].")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0):
            raise ConfigError(f"ClassifierConfig.lr={self.lr!r}: must be a positive number.")
        if not (isinstance(self.weight_decay, (int, float)) and self.weight_decay >= 0):
            raise ConfigError(f"ClassifierConfig.weight_decay={self.weight_decay!r}: must be >= 0.")
        check_prior(self.target_prior, name="ClassifierConfig.target_prior")
        if self.features not in FEATURE_PRESETS:
            raise ConfigError(f"ClassifierConfig.features={self.features!r}: choose one of {sorted(FEATURE_PRESETS)}.")

    @property
    def feature_config(self) -> FeatureConfig:
        return replace(FEATURE_PRESETS[self.features], channels=self.channels)

    @property
    def total_embedding_dim(self) -> int:
        return self.embedding_dim * len(self.branches)

    def to_dict(self) -> dict:
        """The fields as a plain dict (``branches`` a list); ``ClassifierConfig(**d)`` reads it back."""
        d = asdict(self)
        d["branches"] = list(self.branches)
        return d


#: ``paper``: Wilkinghoff's sizes on the report's features (for a GPU); ``cpu``: the largest that fits the
#: 30-minute budget of all systems on the embedded paper dataset on 2 CPU cores; ``quick``: CI and notebooks.
CLASSIFIER_PRESETS: dict[str, ClassifierConfig] = {
    "paper": ClassifierConfig(),
    "cpu": ClassifierConfig(features="quick", width=8, blocks=1, fft_channels=32, fft_pool=4, phase_stride=4,
                            epochs=8, batch_size=64, crops_per_clip=1),
    "quick": ClassifierConfig(features="quick", width=8, blocks=1, fft_channels=32, fft_pool=4, phase_stride=4,
                              embedding_dim=64, epochs=8, batch_size=32, crops_per_clip=2),
}


def classifier_config(preset: str | ClassifierConfig = "paper", **overrides) -> ClassifierConfig:
    """A named :class:`ClassifierConfig`, optionally with some fields replaced.

    >>> classifier_config("quick", branches=("fft", "mel")).branches
    ('fft', 'mel')
    """
    return named_preset(CLASSIFIER_PRESETS, preset, "classifier", "classifier_config", **overrides)


#: Ablation variants (:func:`classifier_config` overrides): the report's model and what each part adds.
BRANCH_VARIANTS = {
    "FFT + mel + phase": {},
    "FFT + mel": {"branches": ("fft", "mel")},
    "no FeatEx": {"featex": False},
    "no Mixup": {"mixup": False},
}
