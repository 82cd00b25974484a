"""Weighted combinations of two normalised scores, evaluated with the official metrics.

OEVAE's final score is ``w * alpha + (1 - w) * beta`` (alpha and beta
standardised by their training statistics), and the KNN behind beta has a
neighbour count ``k``. This module evaluates that family of scores on test clips
whose labels are known:

* :func:`oevae_components` collects, for fitted :class:`~asdkit.models.oevae.OEVAEDetector`
  models (one per machine type), the normalised alpha and beta of every test
  clip for each ``k``;
* :func:`evaluate_weight` scores one ``(w, k)``: per machine AUC(source),
  AUC(target), pAUC and the official score (what the widget of
  ``notebooks/03_w_sweep.ipynb`` redraws);
* :func:`sweep_table` evaluates a grid of ``w`` (and ``k``) at once.

Choosing ``w`` by the test clips' labels, as a sweep invites, measures how much
the weight *could* matter; it is not a fair result. :func:`sweep_table` reports it
beside the fixed default.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from asdkit.errors import ConfigError
from asdkit.evaluation.metrics import floored_hmean, official_score, section_metrics, summary_percent

__all__ = ["oevae_components", "combine", "evaluate_weight", "sweep_table", "sweep_widget"]

_NEEDED = ("machine", "section", "domain", "label", "k", "alpha", "beta")


def oevae_components(detectors: Mapping, tests: Mapping[str, pd.DataFrame],
                     ks: Sequence[int] = (1, 2, 4)) -> pd.DataFrame:
    """Normalised alpha and beta of every test clip, for each KNN neighbour count.

    Parameters
    ----------
    detectors : mapping of machine type to fitted OEVAEDetector
    tests : mapping of machine type to its test clip table (rows of ``scan_root``)
    ks : sequence of int, default (1, 2, 4)
        Neighbour counts (the report chooses from 1, 2 and 4).

    Returns
    -------
    pandas.DataFrame
        One row per clip and ``k``: machine, section, file, domain, label, k,
        alpha, beta (each standardised by its training-clip statistics).
    """
    rows = []
    for machine, det in detectors.items():
        test = tests[machine]
        for k in ks:
            s = det.score_all(test, n_neighbors=int(k))
            beta_norm = det.beta_normalizer(int(k))
            rows.append(test[["machine", "section", "file", "domain", "label"]].assign(
                k=int(k), alpha=det.normalizers_["alpha"].transform(s["alpha"]), beta=beta_norm.transform(s["beta"])))
    if not rows:
        raise ConfigError("oevae_components: no detectors given.")
    return pd.concat(rows, ignore_index=True)


def _check(components: pd.DataFrame) -> None:
    missing = [c for c in _NEEDED if c not in components.columns]
    if missing:
        raise ConfigError(f"score components lack the column(s) {missing}; build them with oevae_components().")
    if components["label"].isna().any() or components["domain"].isna().any():
        raise ConfigError("score components need known test labels and domains to be evaluated.")


def combine(components: pd.DataFrame, w: float) -> np.ndarray:
    """``w * alpha + (1 - w) * beta`` for every row."""
    if not 0 <= w <= 1:
        raise ConfigError(f"w={w!r}: must lie in [0, 1].")
    return w * components["alpha"].to_numpy() + (1 - w) * components["beta"].to_numpy()


def evaluate_weight(components: pd.DataFrame, w: float, k: int | None = None) -> tuple[pd.DataFrame, float]:
    """Official metrics of ``w * alpha + (1 - w) * beta`` with ``k`` neighbours.

    Parameters
    ----------
    components : DataFrame from :func:`oevae_components`
    w : float in [0, 1]
    k : int, optional
        Default: the smallest ``k`` in ``components``.

    Returns
    -------
    table : pandas.DataFrame
        One row per machine type and section: auc_source, auc_target, pauc.
    score : float
        The official score (harmonic mean of all values).
    """
    _check(components)
    k = int(components["k"].min()) if k is None else int(k)
    sub = components[components["k"] == k]
    if sub.empty:
        raise ConfigError(f"k={k}: not among the components' neighbour counts {sorted(components['k'].unique())}.")
    s = combine(sub, w)
    rows = []
    for (machine, section), idx in sub.groupby(["machine", "section"], sort=True).groups.items():
        pos = sub.index.get_indexer(idx)
        m = section_metrics(sub["label"].to_numpy()[pos], s[pos], sub["domain"].to_numpy()[pos])
        rows.append({"machine": machine, "section": section, **m})
    table = pd.DataFrame(rows)
    return table, official_score(table)


def sweep_table(components: pd.DataFrame, ws: Sequence[float] = tuple(np.round(np.linspace(0, 1, 11), 2)),
                ks: Sequence[int] | None = None) -> pd.DataFrame:
    """Harmonic means of AUC(source), AUC(target), pAUC and the official score over a grid of ``(k, w)``.

    Returns
    -------
    pandas.DataFrame
        Index ``(k, w)``; columns ``AUC(source)``, ``AUC(target)``, ``pAUC``,
        ``official score`` (harmonic means over machine types, in %).
    """
    _check(components)
    ks = sorted(components["k"].unique()) if ks is None else ks
    out = {}
    for k in ks:
        for w in ws:
            table, _ = evaluate_weight(components, float(w), int(k))
            out[(int(k), float(w))] = summary_percent(table)
    frame = pd.DataFrame.from_dict(out, orient="index")
    frame.index = pd.MultiIndex.from_tuples(frame.index, names=["k", "w"])
    return frame


def _summary_html(table: pd.DataFrame, score: float, w: float, k: int) -> str:
    head = (f"<b>official score: {100 * score:.2f} %</b> &nbsp; (w = {w:.2f}, k = {k}) &nbsp; harmonic means: "
            f"AUC(source) {100 * floored_hmean(table['auc_source']):.2f} %, "
            f"AUC(target) {100 * floored_hmean(table['auc_target']):.2f} %, "
            f"pAUC {100 * floored_hmean(table['pauc']):.2f} %")
    rows = "".join(f"<tr><td>{r.machine}</td><td>{100 * r.auc_source:.2f}</td><td>{100 * r.auc_target:.2f}</td>"
                   f"<td>{100 * r.pauc:.2f}</td></tr>" for r in table.itertuples())
    return (head + "<table><tr><th>machine</th><th>AUC(source) %</th><th>AUC(target) %</th><th>pAUC %</th></tr>"
            + rows + "</table>")


def sweep_widget(components: pd.DataFrame, *, w: float = 0.5, plots: bool = True):
    """An ipywidgets panel: a slider for ``w``, a choice of ``k``, the metrics and the plots, redrawn live.

    Parameters
    ----------
    components : DataFrame from :func:`oevae_components`
    w : float, default 0.5
        Starting weight.
    plots : bool, default True
        Draw, per machine type, the ROC curves and the score histograms of the
        combined score below the metrics.

    Returns
    -------
    ipywidgets.VBox
        Its ``children`` are ``(HBox(w slider, k dropdown), HTML summary, Output)``;
        the summary starts with ``official score: <value> %``.
    """
    import ipywidgets as widgets

    _check(components)
    ks = sorted(int(k) for k in components["k"].unique())
    w_slider = widgets.FloatSlider(value=w, min=0.0, max=1.0, step=0.05, description="w", readout_format=".2f",
                                   continuous_update=False)
    k_choice = widgets.Dropdown(options=ks, value=ks[0], description="k")
    summary = widgets.HTML()
    out = widgets.Output()

    def redraw(*_):
        wv, kv = float(w_slider.value), int(k_choice.value)
        table, score = evaluate_weight(components, wv, kv)
        summary.value = _summary_html(table, score, wv, kv)
        if not plots:
            return
        import matplotlib.pyplot as plt

        from asdkit.plots.figures import plot_roc, plot_score_histogram

        sub = components[components["k"] == kv]
        s = combine(sub, wv)
        machines = sorted(sub["machine"].unique())
        with out:
            out.clear_output(wait=True)
            fig, axes = plt.subplots(2, len(machines), figsize=(3.6 * len(machines), 6.2), squeeze=False)
            for j, m in enumerate(machines):
                sel = (sub["machine"] == m).to_numpy()
                plot_roc(s[sel], labels=sub["label"].to_numpy()[sel], domains=sub["domain"].to_numpy()[sel],
                         ax=axes[0, j], title=m)
                plot_score_histogram(s[sel], labels=sub["label"].to_numpy()[sel],
                                     domains=sub["domain"].to_numpy()[sel], ax=axes[1, j], bins=15)
            fig.tight_layout()
            plt.show()

    w_slider.observe(redraw, names="value")
    k_choice.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([w_slider, k_choice]), summary, out])
