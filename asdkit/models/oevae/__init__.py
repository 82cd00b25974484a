"""OEVAE: an outlier-exposed ResNet18 trained jointly with a domain-invariant VAE, and a KNN inlier model.

Section 3.2 and 4 of the technical report, as asdkit blocks:

* ``f_FE`` (:class:`asdkit.models.resnet.ResNet18`) maps a 2-s log-mel segment to an
  embedding;
* ``g_machine`` (:class:`MachineHead`) tells the target machine type's clips
  (t = 1) from clips of the root's other machine types (t = 0, pseudo-anomalies,
  drawn 1:1 in every batch): binary cross-entropy ``L_machine``;
* a VAE (:class:`DomainVAE`) on the embeddings of the normal clips only, with a
  64-channel latent split into ``z_d`` (8 channels, prior N(k v, 1)) and ``z_c``
  (56 channels, prior N(0, 1)); ``L_vae1`` is the two KL terms, ``L_vae2`` the
  squared error of the reconstructed embedding;
* ``L = L_machine + lambda_vae (L_vae1 + L_vae2)`` trained end to end with Adam
  (:func:`oevae_loss`);
* then the anomaly scores of a 2-s segment: ``alpha = -log N(mu_c; 0, I)`` (the
  VAE's posterior mean of ``z_c``) and ``beta`` = the mean Euclidean distance to
  the ``n_neighbors`` nearest embeddings of the normal training segments
  (:class:`asdkit.scoring.knn.KNNScorer`); a clip's score is the mean over its
  8 segments, and the final score ``w * alpha + (1 - w) * beta`` on scores
  standardised by the training clips' statistics
  (:class:`asdkit.scoring.normalize.ScoreNormalizer`,
  :func:`asdkit.scoring.normalize.weighted_sum`). Higher = more anomalous.

Modules: :mod:`~asdkit.models.oevae.config` (settings and presets),
:mod:`~asdkit.models.oevae.attributes` (the attribute value ``v``),
:mod:`~asdkit.models.oevae.torch_model` (the networks),
:mod:`~asdkit.models.oevae.train` (loss, optimiser, one training run),
:mod:`~asdkit.models.oevae.detector` (:class:`OEVAEDetector`).

Where the report leaves a choice open, :class:`OEVAEConfig` and
:class:`OEVAEDetector` document what asdkit does: the attribute value ``v``
(:func:`attribute_values`), ``k``, the normalisation of alpha and beta, where
SMOTE and Mixup act, and the optimiser settings of the VAE.
"""
from asdkit.models.oevae.attributes import AttributeValues, attribute_values
from asdkit.models.oevae.config import AUGMENTATION_VARIANTS, OEVAE_PRESETS, OEVAEConfig, oevae_config
from asdkit.models.oevae.detector import OEVAEDetector
from asdkit.models.oevae.torch_model import DomainVAE, MachineHead, OEVAENet, VAEOutput
from asdkit.models.oevae.train import (
                                       OEVAEBatchLoss,
                                       SegmentDataset,
                                       oevae_loss,
                                       oevae_optimizer,
                                       smote_segments,
                                       train_network,
)

__all__ = [
    "OEVAEConfig", "OEVAE_PRESETS", "oevae_config", "AUGMENTATION_VARIANTS", "attribute_values", "AttributeValues",
    "MachineHead", "VAEOutput", "DomainVAE", "OEVAENet", "oevae_loss", "OEVAEBatchLoss",
    "oevae_optimizer", "SegmentDataset", "smote_segments", "train_network", "OEVAEDetector",
]
