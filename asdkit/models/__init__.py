"""Models: pure ``nn.Module`` networks, their configurations and training steps, and the detectors.

Every detector derives from :class:`asdkit.models.base.Detector` (one contract:
``fit`` / ``score_samples`` / ``score_all`` / ``decision`` / ``save`` / ``load``).
"""
