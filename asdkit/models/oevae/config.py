"""OEVAE's settings: :class:`OEVAEConfig`, the named presets and the augmentation variants of its ablation."""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from asdkit.data.channels import check_channels
from asdkit.errors import ConfigError
from asdkit.features.spectra import FEATURE_PRESETS, FeatureConfig
from asdkit.presets import check_integers, named_preset
from asdkit.scoring.normalize import check_prior

__all__ = ["OEVAEConfig", "OEVAE_PRESETS", "oevae_config", "AUGMENTATION_VARIANTS"]


@dataclass(frozen=True)
class OEVAEConfig:
    """Settings of OEVAE (frozen; vary with :func:`oevae_config`).

    Attributes
    ----------
    features : str
        Log-mel preset of :data:`asdkit.features.spectra.FEATURE_PRESETS` (``"paper"``:
        224 bands, 8 segments of 2 s per clip).
    width : int
        ResNet18 width (64 = the standard ResNet18; embedding = ``8 * width``).
    vae_hidden : int
        Hidden units of the VAE's encoder and decoder (one hidden layer each).
    latent, n_zd : int
        Latent channels, of which the first ``n_zd`` are ``z_d``.
    k_scale : float
        ``k = k_scale / (smallest distance between distinct v)`` (report: 5).
    lambda_vae : float
        Weight of the VAE terms in the joint loss (report: 1e-7).
    epochs, batch_size, lr : int, int, float
        Adam; ``batch_size`` counts both halves of a batch (normal clips and
        pseudo-anomalies, 1:1).
    mixup, mixup_alpha : bool, float
        Mix each normal segment with another normal segment (and each
        pseudo-anomaly with another pseudo-anomaly) of the batch,
        ``lam ~ Beta(alpha, alpha)``, ``v`` mixed with the same weight.
    smote, smote_ratio, smote_k : bool, float, int
        SMOTE in the log-mel input space over groups domain x attribute value:
        every group is raised to ``smote_ratio`` x the largest group's size.
    n_neighbors : int
        KNN neighbours for beta (report: chosen from 1, 2, 4).
    w : float
        Weight of alpha in the final score.
    target_prior : float
        Per-domain scoring: weight, in clips, of the source domain's statistics
        in the target domain's, for alpha and beta alike
        (:func:`asdkit.scoring.normalize.shrink_toward`; 0: each domain by its
        own clips, ``math.inf``: both on the source's scale).
    max_outliers : int or None
        Cap on the pseudo-anomaly clips (drawn evenly over the other machine
        types, seeded); None = all.
    channels : str
        Channel policy of :mod:`asdkit.data.channels` (``"auto"``, ``"mono"``, ``"near"``, ``"far"``,
        ``"both"``: the far microphone as a second input channel, ``"denoised"``: the near one with the
        far one's noise cancelled).
    """

    features: str = "paper"
    width: int = 64
    vae_hidden: int = 256
    latent: int = 64
    n_zd: int = 8
    k_scale: float = 5.0
    lambda_vae: float = 1e-7
    epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-3
    mixup: bool = True
    mixup_alpha: float = 0.2
    smote: bool = True
    smote_ratio: float = 1.0
    smote_k: int = 5
    n_neighbors: int = 1
    w: float = 0.5
    target_prior: float = 10.0
    max_outliers: int | None = None
    channels: str = "auto"

    def __post_init__(self):
        check_channels(self.channels, name="OEVAEConfig.channels")
        check_prior(self.target_prior, name="OEVAEConfig.target_prior")
        if self.features not in FEATURE_PRESETS:
            raise ConfigError(f"OEVAEConfig.features={self.features!r}: choose one of {sorted(FEATURE_PRESETS)}.")
        check_integers(self, ("width", "vae_hidden", "latent", "n_zd", "epochs", "batch_size", "n_neighbors",
                              "smote_k"))
        if self.n_zd >= self.latent:
            raise ConfigError(f"OEVAEConfig: n_zd={self.n_zd} must be smaller than latent={self.latent}.")
        if self.batch_size < 4 or self.batch_size % 2:
            raise ConfigError(f"OEVAEConfig.batch_size={self.batch_size}: must be even and at least 4 "
                              "(half normal clips, half pseudo-anomalies).")
        if not 0 <= self.w <= 1:
            raise ConfigError(f"OEVAEConfig.w={self.w!r}: must lie in [0, 1].")
        if not self.lambda_vae > 0 or not self.lr > 0 or not self.k_scale > 0:
            raise ConfigError("OEVAEConfig: lambda_vae, lr and k_scale must be positive.")
        if not 0 < self.smote_ratio <= 1:
            raise ConfigError(f"OEVAEConfig.smote_ratio={self.smote_ratio!r}: must lie in (0, 1].")

    @property
    def feature_config(self) -> FeatureConfig:
        return replace(FEATURE_PRESETS[self.features], channels=self.channels)

    @property
    def embedding_dim(self) -> int:
        return 8 * self.width

    def to_dict(self) -> dict:
        return asdict(self)


#: Named settings.
#:
#: ``paper``: the report's (224 mels, ResNet18 of width 64, 20 epochs, batch
#: 128, Adam 1e-3, lambda 1e-7, 64 latent channels of which 8 are z_d); a GPU job.
#: ``cpu``: 64 mels, width 16 (embedding 128), 4 epochs, batch 64, SMOTE up to
#: half the largest group, at most 1500 pseudo-anomaly clips; for the embedded
#: paper dataset on 2 CPU cores within the shared 30-minute budget (measured on
#: paper-size SynFan: 66 s per epoch of 9 240 segments, 0.23 s per step). With
#: 2 epochs the outlier-exposure loss is already near zero, but the embeddings
#: still improve: per-domain OEVAE on the embedded paper dataset, seed 0,
#: official score 57.9 % after 2 epochs, 59.4 % after 4 (2026-12-01).
#: ``quick``: 64 mels, width 8, 3 epochs, batch 32; tests, notebooks, demo.
OEVAE_PRESETS: dict[str, OEVAEConfig] = {
    "paper": OEVAEConfig(),
    "cpu": OEVAEConfig(features="quick", width=16, vae_hidden=128, epochs=4, batch_size=64, smote_ratio=0.5,
                       max_outliers=1500),
    "quick": OEVAEConfig(features="quick", width=8, vae_hidden=64, epochs=3, batch_size=32),
}


def oevae_config(preset: str | OEVAEConfig = "paper", **overrides) -> OEVAEConfig:
    """A named :class:`OEVAEConfig`, optionally with some fields replaced.

    >>> oevae_config("quick", epochs=1).epochs
    1
    """
    return named_preset(OEVAE_PRESETS, preset, "OEVAE", "oevae_config", **overrides)


#: The augmentation variants of OEVAE's ablation (config overrides by name): Mixup and SMOTE on and off.
AUGMENTATION_VARIANTS = {
    "none": {"mixup": False, "smote": False},
    "Mixup": {"mixup": True, "smote": False},
    "SMOTE": {"mixup": False, "smote": True},
    "Mixup + SMOTE": {"mixup": True, "smote": True},
}
