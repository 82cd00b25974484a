"""Small computations for exploring a dataset: examples, band profiles, attribute counts, 2-D maps.

They return DataFrames or arrays; :mod:`asdkit.plots.figures` draws them.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from asdkit.errors import ConfigError

__all__ = ["pick_examples", "clip_band_stats", "band_profiles", "attribute_counts", "domain_gaps",
           "embed_2d"]


def pick_examples(table: pd.DataFrame, machine: str, *, split: str = "test") -> pd.DataFrame:
    """The first clip (lowest index) of each domain/label cell of one machine.

    Returns
    -------
    pandas.DataFrame
        Rows of ``table`` indexed by ``(domain, label)``.
    """
    sub = table[(table["machine"] == machine) & (table["split"] == split)]
    if sub.empty:
        raise ConfigError(f"no {split} clips of machine {machine!r} in the table; it has "
                          f"{sorted(table['machine'].unique())}")
    first = sub.sort_values("index", kind="stable").groupby(["domain", "label"], sort=True).head(1)
    return first.set_index(["domain", "label"]).sort_index()


def clip_band_stats(X: np.ndarray) -> np.ndarray:
    """Per-clip mean and standard deviation over time of each band, averaged over segments.

    Parameters
    ----------
    X : ndarray of shape (n_clips, n_segments, n_bands, n_frames)

    Returns
    -------
    ndarray of shape (n_clips, 2 * n_bands)
    """
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 4:
        raise ConfigError(f"X must have shape (n_clips, n_segments, n_bands, n_frames), got {X.shape}")
    return np.concatenate([X.mean(axis=-1).mean(axis=1), X.std(axis=-1).mean(axis=1)], axis=1)


def band_profiles(table: pd.DataFrame, X: np.ndarray, *, by=("domain", "label")) -> pd.DataFrame:
    """Mean level of each band per group of clips.

    Parameters
    ----------
    table : DataFrame of n_clips rows, aligned with ``X``
    X : ndarray of shape (n_clips, n_segments, n_bands, n_frames)
    by : column name(s) of ``table``

    Returns
    -------
    pandas.DataFrame
        One row per group, one column per band (dB).
    """
    if len(table) != len(X):
        raise ConfigError(f"table has {len(table)} rows but X has {len(X)} clips; pass aligned inputs")
    levels = np.asarray(X, dtype=np.float32).mean(axis=(1, 3))
    frame = pd.DataFrame(levels, index=pd.MultiIndex.from_frame(table[list(by)].reset_index(drop=True))
                         if len(by) > 1 else table[by[0]].to_numpy())
    return frame.groupby(level=list(range(len(by))) if len(by) > 1 else 0, sort=True).mean()


def attribute_counts(table: pd.DataFrame, machine: str, param: str, *, split: str = "train") -> pd.DataFrame:
    """Clips per value of one attribute and domain.

    Returns
    -------
    pandas.DataFrame
        Index = attribute values (sorted), columns = domains.
    """
    sub = table[(table["machine"] == machine) & (table["split"] == split)]
    values = [a.get(param) if isinstance(a, dict) else None for a in sub["attributes"]]
    if all(v is None for v in values):
        raise ConfigError(f"machine {machine!r} has no attribute {param!r} in its {split} names")
    frame = pd.DataFrame({param: values, "domain": sub["domain"].to_numpy()}).dropna()
    counts = frame.groupby([param, "domain"]).size().unstack("domain", fill_value=0)
    return counts.sort_index()


def domain_gaps(table: pd.DataFrame, X: np.ndarray) -> pd.DataFrame:
    """How far apart domains and labels are, in mean band level, per machine.

    For each machine: the root-mean-square difference (dB, over bands) between
    the mean band profile of source normals and (a) target normals, (b) source
    anomalies. When (a) is larger than (b), the domain shift moves the sound more
    than the anomalies do, and a detector fitted on source data mistakes target
    normals for anomalies.

    Returns
    -------
    pandas.DataFrame
        Indexed by machine, columns ``source_vs_target_normal_db`` and
        ``normal_vs_anomaly_source_db``.
    """
    rows = {}
    for machine in sorted(table["machine"].unique()):
        m = (table["machine"] == machine).to_numpy()
        prof = band_profiles(table[m], X[m])
        try:
            sn = prof.loc[("source", "normal")].to_numpy()
            tn = prof.loc[("target", "normal")].to_numpy()
            sa = prof.loc[("source", "anomaly")].to_numpy()
        except KeyError:
            continue
        rows[machine] = {"source_vs_target_normal_db": float(np.sqrt(np.mean((sn - tn) ** 2))),
                         "normal_vs_anomaly_source_db": float(np.sqrt(np.mean((sn - sa) ** 2)))}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("machine")


def embed_2d(features: np.ndarray, *, method: str = "pca", random_state: int = 0, fit_mask=None) -> np.ndarray:
    """Map per-clip feature vectors to 2-D for plotting.

    Parameters
    ----------
    features : ndarray of shape (n_clips, n_features)
    method : {"pca", "umap"}
        PCA (scikit-learn) is instant; UMAP (umap-learn) shows clusters better
        but its first call compiles code for about half a minute.
    random_state : int
    fit_mask : array of bool of shape (n_clips,), optional
        Fit the map on these rows only (e.g. training clips) and apply it to all.

    Returns
    -------
    ndarray of shape (n_clips, 2)
    """
    from sklearn.preprocessing import StandardScaler

    F = np.asarray(features, dtype=np.float64)
    fit = F if fit_mask is None else F[np.asarray(fit_mask, dtype=bool)]
    scaler = StandardScaler().fit(fit)
    if method == "pca":
        from sklearn.decomposition import PCA

        model = PCA(n_components=2, random_state=random_state).fit(scaler.transform(fit))
    elif method == "umap":
        import umap

        model = umap.UMAP(n_components=2, random_state=random_state, n_jobs=1).fit(scaler.transform(fit))
    else:
        raise ConfigError(f"method must be 'pca' or 'umap', got {method!r}")
    return model.transform(scaler.transform(F))
