"""Plots for notebooks and reports. Each takes ``ax=`` (made if None) and returns it.

Computation lives elsewhere (:mod:`asdkit.features.spectra`, :mod:`asdkit.plots.explore`);
these functions only draw what they are given.
"""
from __future__ import annotations

import numpy as np

from asdkit.evaluation.metrics import as_labels
from asdkit.features.spectra import FEATURE_PRESETS, FeatureConfig

__all__ = ["plot_log_mel", "plot_band_profiles", "plot_embedding", "plot_attribute_counts", "plot_roc",
           "plot_score_histogram", "plot_history", "plot_jobs"]

_DOMAIN_COLOURS = {"source": "tab:blue", "target": "tab:orange"}
_LABEL_MARKERS = {"normal": "o", "anomaly": "x"}


def _ax(ax):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots()
    return ax


def plot_log_mel(S: np.ndarray, *, config: FeatureConfig = FEATURE_PRESETS["paper"], ax=None,
                 title: str | None = None, vmin: float | None = None, vmax: float | None = None,
                 colorbar: bool = False):
    """Show one log-mel spectrogram.

    Parameters
    ----------
    S : ndarray of shape (n_mels, n_frames)
        Log-mel in dB, as from :func:`asdkit.features.spectra.log_mel`.
    config : FeatureConfig
        For the time (s) and frequency (Hz) axes.
    ax : matplotlib Axes, optional
    title : str, optional
    vmin, vmax : float, optional
        Colour range in dB (default: the top 80 dB of ``S``).
    colorbar : bool, default False

    Returns
    -------
    matplotlib Axes
    """
    import librosa

    ax = _ax(ax)
    S = np.asarray(S)
    if vmax is None:
        vmax = float(S.max())
    if vmin is None:
        vmin = vmax - 80.0
    duration = S.shape[1] * config.hop_length / config.sr
    im = ax.imshow(S, origin="lower", aspect="auto", cmap="magma", vmin=vmin, vmax=vmax,
                   extent=[0, duration, 0, S.shape[0]], interpolation="nearest")
    mel_hz = librosa.mel_frequencies(n_mels=S.shape[0] + 2, fmin=config.fmin, fmax=config.fmax)[1:-1]
    ticks = np.linspace(0, S.shape[0] - 1, 5).round().astype(int)
    ax.set_yticks(ticks + 0.5)
    ax.set_yticklabels([f"{mel_hz[t] / 1000:.1f}k" if mel_hz[t] >= 1000 else f"{mel_hz[t]:.0f}" for t in ticks])
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (Hz)")
    if title:
        ax.set_title(title, fontsize=9)
    if colorbar:
        ax.figure.colorbar(im, ax=ax, label="dB")
    return ax


def plot_band_profiles(profiles, *, config: FeatureConfig = FEATURE_PRESETS["paper"], ax=None,
                       title: str | None = None):
    """Draw mean log-mel band levels per group (e.g. per domain and label).

    Parameters
    ----------
    profiles : pandas.DataFrame
        One row per group (the index names it), one column per mel band, as
        from :func:`asdkit.plots.explore.band_profiles`.
    """
    import librosa

    ax = _ax(ax)
    hz = librosa.mel_frequencies(n_mels=profiles.shape[1] + 2, fmin=config.fmin, fmax=config.fmax)[1:-1]
    for name, row in profiles.iterrows():
        label = " / ".join(map(str, name)) if isinstance(name, tuple) else str(name)
        domain = name[0] if isinstance(name, tuple) else name
        style = "--" if isinstance(name, tuple) and name[-1] == "anomaly" else "-"
        ax.plot(hz, row.to_numpy(), style, color=_DOMAIN_COLOURS.get(domain), label=label, lw=1.2)
    ax.set_xscale("log")
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel("mean level (dB)")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def plot_embedding(points: np.ndarray, *, domains=None, labels=None, ax=None, title: str | None = None,
                   colour_by=None, cmap: str = "viridis"):
    """Scatter a 2-D embedding of clips, coloured by domain (or ``colour_by``), marked by label.

    Parameters
    ----------
    points : ndarray of shape (n_clips, 2)
    domains, labels : array-like of shape (n_clips,), optional
        ``"source"``/``"target"`` and ``"normal"``/``"anomaly"``.
    colour_by : array-like of shape (n_clips,), optional
        Colour by these values instead of the domain (numbers use ``cmap``,
        other values one colour each).
    """
    ax = _ax(ax)
    points = np.asarray(points)
    n = len(points)
    labels = np.asarray(labels if labels is not None else ["normal"] * n, dtype=object)
    if colour_by is not None:
        values = np.asarray(colour_by, dtype=object)
        try:
            numeric = values.astype(float)
        except (TypeError, ValueError):
            numeric = None
        if numeric is not None:
            for lab, marker in _LABEL_MARKERS.items():
                m = labels == lab
                sc = ax.scatter(points[m, 0], points[m, 1], c=numeric[m], cmap=cmap, marker=marker, s=14,
                                vmin=np.nanmin(numeric), vmax=np.nanmax(numeric))
            ax.figure.colorbar(sc, ax=ax)
        else:
            import matplotlib.pyplot as plt

            cats = sorted({str(v) for v in values})
            colours = plt.get_cmap("tab10")
            for i, cat in enumerate(cats):
                for lab, marker in _LABEL_MARKERS.items():
                    m = (values.astype(str) == cat) & (labels == lab)
                    if m.any():
                        ax.scatter(points[m, 0], points[m, 1], color=colours(i % 10), marker=marker, s=14,
                                   label=f"{cat} / {lab}")
            ax.legend(fontsize=7, markerscale=1.2)
    else:
        domains = np.asarray(domains if domains is not None else ["source"] * n, dtype=object)
        for dom, colour in _DOMAIN_COLOURS.items():
            for lab, marker in _LABEL_MARKERS.items():
                m = (domains == dom) & (labels == lab)
                if m.any():
                    ax.scatter(points[m, 0], points[m, 1], color=colour, marker=marker, s=14,
                               label=f"{dom} / {lab}", alpha=0.8)
        ax.legend(fontsize=7)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def plot_attribute_counts(counts, *, ax=None, title: str | None = None):
    """Bar chart of clip counts per attribute value and domain.

    Parameters
    ----------
    counts : pandas.DataFrame
        Index = attribute values, columns = domains (as from
        :func:`asdkit.plots.explore.attribute_counts`).
    """
    ax = _ax(ax)
    colours = [_DOMAIN_COLOURS.get(c, "grey") for c in counts.columns]
    counts.plot.bar(ax=ax, color=colours, rot=0, logy=True, width=0.8)
    ax.set_ylabel("clips (log scale)")
    ax.set_xlabel(counts.index.name or "value")
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def plot_roc(scores, *, labels, domains, ax=None, title: str | None = None):
    """ROC curves of AUC(source) and AUC(target) as the official evaluator pools them.

    The source curve uses source-domain normals and all anomalies; the target
    curve target-domain normals and all anomalies.

    Parameters
    ----------
    scores : array-like of shape (n_clips,)
        Higher = more anomalous.
    labels : array-like of shape (n_clips,)
        ``"normal"``/``"anomaly"`` (or 0/1).
    domains : array-like of shape (n_clips,)
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    ax = _ax(ax)
    s = np.asarray(scores, dtype=float)
    y = as_labels(labels, name="labels")
    d = np.asarray(domains, dtype=object)
    for dom, colour in _DOMAIN_COLOURS.items():
        m = ((d == dom) & (y == 0)) | (y == 1)
        if (y[m] == 0).any() and (y[m] == 1).any():
            fpr, tpr, _ = roc_curve(y[m], s[m])
            ax.plot(fpr, tpr, color=colour, label=f"{dom}: AUC {100 * roc_auc_score(y[m], s[m]):.1f}%")
    ax.plot([0, 1], [0, 1], ":", color="grey", lw=0.8)
    ax.axvspan(0, 0.1, color="grey", alpha=0.08, lw=0)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(fontsize=8, loc="lower right")
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def plot_score_histogram(scores, *, labels, domains, ax=None, threshold: float | None = None,
                         title: str | None = None, bins: int = 30):
    """Histograms of anomaly scores by domain (colour) and label (filled = normal, outline = anomaly)."""
    ax = _ax(ax)
    s = np.asarray(scores, dtype=float)
    y = as_labels(labels, name="labels")
    d = np.asarray(domains, dtype=object)
    edges = np.histogram_bin_edges(s[np.isfinite(s)], bins=bins)
    for dom, colour in _DOMAIN_COLOURS.items():
        for lab, kw in ((0, {"alpha": 0.45, "histtype": "stepfilled"}), (1, {"histtype": "step", "lw": 1.6})):
            m = (d == dom) & (y == lab)
            if m.any():
                ax.hist(s[m], bins=edges, color=colour, label=f"{dom} / {'anomaly' if lab else 'normal'}", **kw)
    if threshold is not None and np.isfinite(threshold):
        ax.axvline(threshold, color="k", ls="--", lw=1, label="threshold")
    ax.set_xlabel("anomaly score")
    ax.set_ylabel("clips")
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def plot_history(history, *, ax=None, title: str | None = None, log: bool = True):
    """Training (and validation) loss per epoch from an :class:`asdkit.training.engine.History`."""
    ax = _ax(ax)
    train = list(getattr(history, "train_loss", []))
    val = [v for v in getattr(history, "val_loss", []) if v is not None]
    epochs = np.arange(1, len(train) + 1)
    ax.plot(epochs, train, "o-", ms=3, label="training")
    if val:
        ax.plot(epochs[:len(val)], val, "s--", ms=3, label="validation")
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def plot_jobs(jobs, *, ax=None, title: str | None = None):
    """A run's jobs on a time line, one row per worker process, coloured by family.

    Parameters
    ----------
    jobs : pandas.DataFrame
        ``ExperimentResult.jobs`` or a run's ``jobs.csv`` (columns ``family``, ``worker``,
        ``started``, ``finished``, ``status``); several runs' tables may be concatenated.
        Jobs reused from an earlier run (``--resume``) or not finished are left out.
    """
    ax = _ax(ax)
    ran = jobs[jobs["status"] == "done"]
    if ran.empty:
        ax.set_title(title or "no job ran", fontsize=9)
        return ax
    t0 = float(ran["started"].min())
    workers = sorted(ran["worker"].unique())
    families = list(dict.fromkeys(ran["family"]))
    colours = {f: f"C{i % 10}" for i, f in enumerate(families)}
    for _, r in ran.iterrows():
        ax.barh(workers.index(r["worker"]), r["finished"] - r["started"], left=r["started"] - t0, height=0.6,
                color=colours[r["family"]], edgecolor="white", linewidth=0.5)
    ax.set_yticks(range(len(workers)), [w.rsplit(":", 1)[-1] if len(workers) > 1 else w for w in workers],
                  fontsize=8)
    ax.set_ylabel("worker (pid)" if len(workers) > 1 else "worker")
    ax.set_xlabel("seconds since the first job started")
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color=colours[f], label=f) for f in families], fontsize=7, loc="upper right")
    if title:
        ax.set_title(title, fontsize=9)
    return ax
