"""Data augmentation blocks usable by any model: Mixup and SMOTE.

* :func:`mixup` (Zhang et al., 2018): convex combinations of the samples of a
  batch and, with the same weights, of their targets (one-hot labels, soft
  labels, or continuous values such as an attribute value). ``groups=`` keeps
  each sample's partner within its own group (e.g. normal clips mixed only with
  normal clips).
* :func:`smote` (Chawla et al., 2002, via imbalanced-learn's
  :class:`~imblearn.over_sampling.SMOTE`): new samples of the minority groups
  on the line segments between a sample and one of its nearest neighbours of
  the same group, until the groups are balanced. Continuous targets passed as
  ``values=`` are interpolated with the same weights as the features, so a
  synthetic sample's attribute value matches its position.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from asdkit.errors import ConfigError

__all__ = ["mixup", "MixupResult", "smote", "SmoteResult"]


@dataclass
class MixupResult:
    """What :func:`mixup` returns.

    Attributes
    ----------
    x : torch.Tensor
        Mixed inputs, ``lam * x + (1 - lam) * x[partner]`` (``lam`` broadcast over
        the non-batch axes).
    targets : list of torch.Tensor
        Each target mixed with the same weights (cast to float).
    lam : torch.Tensor of shape (batch,)
        The weight of each sample's own input.
    partner : torch.Tensor of shape (batch,), long
        Index of the sample each one was mixed with.
    """

    x: torch.Tensor
    targets: list
    lam: torch.Tensor
    partner: torch.Tensor


def _rng(rng) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _partners(n: int, groups, rng: np.random.Generator) -> np.ndarray:
    if groups is None:
        return rng.permutation(n)
    g = np.asarray(groups.cpu() if isinstance(groups, torch.Tensor) else groups).reshape(-1)
    if g.size != n:
        raise ConfigError(f"mixup: groups has {g.size} entries for a batch of {n}.")
    partner = np.arange(n)
    for value in np.unique(g):
        idx = np.flatnonzero(g == value)
        partner[idx] = idx[rng.permutation(idx.size)]
    return partner


def mixup(x: torch.Tensor, *targets, alpha: float = 0.2, groups=None, rng=None) -> MixupResult:
    """Mix each sample of a batch with a random partner from the same batch.

    Parameters
    ----------
    x : torch.Tensor of shape (batch, ...)
    *targets : torch.Tensor of shape (batch, ...)
        Labels or values to mix with the same weights (one-hot classes, 0/1
        targets, attribute values).
    alpha : float, default 0.2
        ``lam ~ Beta(alpha, alpha)`` per sample; small alpha keeps most samples
        close to one parent, ``alpha=1`` draws ``lam`` uniformly.
    groups : array-like of shape (batch,), optional
        Partners are drawn within the same group only.
    rng : numpy.random.Generator or int, optional
        Source of the partners and weights (a seed or a generator; reproducible).

    Returns
    -------
    MixupResult

    Examples
    --------
    >>> x = torch.arange(4.0).reshape(4, 1)
    >>> r = mixup(x, torch.eye(4), alpha=1.0, rng=0)
    >>> bool(torch.allclose(r.targets[0] @ torch.arange(4.0), r.x.reshape(-1)))
    True
    """
    if isinstance(alpha, bool) or not (isinstance(alpha, (int, float)) and alpha > 0):
        raise ConfigError(f"mixup alpha={alpha!r}: must be a positive number.")
    if x.dim() < 1 or x.shape[0] < 1:
        raise ConfigError("mixup needs a batch with at least one sample.")
    n = x.shape[0]
    for i, t in enumerate(targets):
        if t.shape[0] != n:
            raise ConfigError(f"mixup: target {i} has {t.shape[0]} rows for a batch of {n}.")
    gen = _rng(rng)
    lam_np = gen.beta(alpha, alpha, size=n)
    partner = torch.from_numpy(_partners(n, groups, gen)).to(x.device)
    lam = torch.from_numpy(lam_np).to(device=x.device, dtype=x.dtype if x.is_floating_point() else torch.float32)

    def mix(a: torch.Tensor) -> torch.Tensor:
        a = a.float() if not a.is_floating_point() else a
        w = lam.to(a.dtype).reshape((n,) + (1,) * (a.dim() - 1))
        return w * a + (1 - w) * a[partner]

    return MixupResult(mix(x), [mix(t) for t in targets], lam, partner)


@dataclass
class SmoteResult:
    """What :func:`smote` returns: the synthetic samples only (the originals are unchanged).

    Attributes
    ----------
    X : ndarray of shape (n_new, *sample_shape)
    groups : ndarray of shape (n_new,)
        The group each synthetic sample was made for.
    values : ndarray of shape (n_new, ...) or None
        The ``values`` interpolated with the same weights as the features.
    counts : dict
        Samples per group before and after: ``{group: (n_before, n_after)}``.
    """

    X: np.ndarray
    groups: np.ndarray
    values: np.ndarray | None
    counts: dict


def smote(X, groups, *, values=None, sampling_strategy="not majority", k_neighbors: int = 5,
          random_state: int = 0) -> SmoteResult:
    """Balance groups with SMOTE (imbalanced-learn), interpolating ``values`` alongside.

    Samples are flattened to vectors for imbalanced-learn; ``values`` (e.g.
    the attribute value ``v`` of each sample) are appended to each vector as
    extra columns scaled to a negligible weight in the neighbour search, so
    that every synthetic sample carries the value interpolated with its own
    weight, then split off again.

    Parameters
    ----------
    X : array-like of shape (n_samples, ...)
        Samples in the space to interpolate in (log-mel segments, embeddings).
    groups : array-like of shape (n_samples,)
        Class of each sample (e.g. ``"source|1200"``, ``"target|2250"``); SMOTE
        balances these.
    values : array-like of shape (n_samples,) or (n_samples, n_values), optional
    sampling_strategy : str, float or dict, default "not majority"
        As :class:`imblearn.over_sampling.SMOTE`'s (``"not majority"``: raise
        every group to the size of the largest).
    k_neighbors : int, default 5
        Nearest neighbours of the same group to interpolate towards; lowered
        to ``smallest group - 1`` when a group is smaller.
    random_state : int, default 0

    Returns
    -------
    SmoteResult
        Only the new samples (append them to the originals).

    Raises
    ------
    ConfigError
        Fewer than two groups, a group with a single sample, or shapes that do
        not match.
    """
    from imblearn.over_sampling import SMOTE

    X = np.asarray(X)
    g = np.asarray(groups)
    if X.ndim < 2:
        raise ConfigError(f"smote: X must have shape (n_samples, ...), got {X.shape}.")
    if g.shape != (X.shape[0],):
        raise ConfigError(f"smote: groups must have shape ({X.shape[0]},), got {g.shape}.")
    names, counts = np.unique(g, return_counts=True)
    if names.size < 2:
        raise ConfigError(f"smote needs at least two groups to balance, got {names.tolist()}.")
    if counts.min() < 2:
        raise ConfigError(f"smote: group {names[counts.argmin()]!r} has a single sample; SMOTE needs two "
                          "per group to interpolate. Merge it with another group or drop it.")
    flat = X.reshape(X.shape[0], -1).astype(np.float32, copy=False)
    v = None
    if values is not None:
        v = np.asarray(values, dtype=np.float64)
        if v.shape[0] != X.shape[0]:
            raise ConfigError(f"smote: values has {v.shape[0]} rows for {X.shape[0]} samples.")
        v2 = v.reshape(v.shape[0], -1)
        # a tiny scale keeps the values out of the neighbour search; interpolation is linear, so the
        # scale is undone exactly afterwards
        scale = 1e-6 * (float(np.std(flat)) + 1e-12) / (float(np.std(v2)) + 1e-12)
        flat = np.concatenate([flat, (v2 * scale).astype(np.float32)], axis=1)
    k = int(min(k_neighbors, counts.min() - 1))
    sampler = SMOTE(sampling_strategy=sampling_strategy, k_neighbors=k, random_state=random_state)
    X_res, g_res = sampler.fit_resample(flat, g)
    new_X, new_g = X_res[len(flat):], np.asarray(g_res[len(flat):])
    new_v = None
    if v is not None:
        n_v = v.reshape(v.shape[0], -1).shape[1]
        new_v = new_X[:, -n_v:].astype(np.float64) / scale
        new_v = new_v.reshape((len(new_X),) + v.shape[1:])
        new_X = new_X[:, :-n_v]
    after = dict(zip(*np.unique(np.concatenate([g, new_g]), return_counts=True)))
    return SmoteResult(X=np.ascontiguousarray(new_X).reshape((len(new_X),) + X.shape[1:]).astype(X.dtype, copy=False),
                       groups=new_g, values=new_v,
                       counts={n: (int(c), int(after[n])) for n, c in zip(names, counts)})
