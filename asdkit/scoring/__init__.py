"""Scoring backends: small blocks on embedding arrays that turn embeddings into anomaly scores.

Every backend follows one contract: ``fit(X, domains=None)`` on the normal
training embeddings, ``score_samples(X)`` returns **higher = more anomalous**
(the DCASE convention, the opposite of scikit-learn's), so any embedding
(ResNet18, classifier, autoencoder residuals, a user's pretrained model) meets
any backend.
"""
from asdkit.scoring.threshold import gamma_threshold  # noqa: F401
