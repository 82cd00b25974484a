"""Weights of two standardised scores, evaluated with the official metrics: OEVAE's w and the ensemble's.

OEVAE's final score is ``w * alpha + (1 - w) * beta`` (alpha and beta
standardised by their training statistics; beta's KNN has ``k`` neighbours),
and the ensemble's ``w * member_1 + (1 - w) * member_2`` (each standardised
the same way). Both are :func:`asdkit.scoring.normalize.weighted_sum`; this
module evaluates such combinations on test clips whose labels are known:

* a *components* table has one row per test clip: ``machine``, ``section``,
  ``file``, ``domain``, ``label``, optionally ``k``, and the two standardised
  score columns (:func:`oevae_components`: ``alpha``, ``beta``;
  :func:`ensemble_components`: one column per member); or, for per-domain
  scoring, each of the two once per training domain (``alpha@source``,
  ``alpha@target``, ``beta@source``, ``beta@target``), in which case the
  combined score is the smaller over the domains of the weighted sums;
* :func:`evaluate_weights` scores one ``w`` (or one per machine type): per
  section AUC(source), AUC(target), pAUC and the official score;
* :func:`sweep_table` evaluates a grid of ``w`` (and ``k``);
* :func:`weight_table` puts the label-free default beside the best ``w``
  per machine type chosen **with the test labels**;
* :func:`weight_widget`: sliders that redraw the metrics (one ``w``, or one
  per machine type).

Choosing ``w`` by the test clips' labels measures how much the weight *could*
matter; it is not a fair result, and the tables say so beside the fixed default.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from asdkit.errors import ConfigError
from asdkit.evaluation.metrics import floored_hmean, official_score, section_metrics, summary_percent
from asdkit.scoring.normalize import weighted_sum

__all__ = ["oevae_components", "ensemble_components", "score_columns", "combine", "evaluate_weights",
           "sweep_table", "weight_table", "weight_widget", "DEFAULT_GRID"]

_META = ("machine", "section", "file", "domain", "label")
#: The ``w`` grid of the tables: 0, 0.1, ..., 1.
DEFAULT_GRID = tuple(np.round(np.linspace(0, 1, 11), 2))


# ---------------------------------------------------------------------- components
def oevae_components(detectors: Mapping, tests: Mapping[str, pd.DataFrame],
                     ks: Sequence[int] = (1, 2, 4)) -> pd.DataFrame:
    """Standardised alpha and beta of every test clip, for each KNN neighbour count ``k``.

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
        alpha, beta (each standardised by the training clips' statistics for that k),
        or ``alpha@<domain>`` and ``beta@<domain>`` per training domain for
        detectors with per-domain scoring.
    """
    rows = []
    for machine, det in detectors.items():
        test = tests[machine].reset_index(drop=True)
        comp = det.components(test, ks=tuple(int(k) for k in ks))
        for k in ks:
            sub = comp[comp["k"] == int(k)].reset_index(drop=True)
            rows.append(test[list(_META)].assign(k=int(k), **{c: sub[c].to_numpy() for c in sub.columns
                                                               if c not in ("row", "k")}))
    if not rows:
        raise ConfigError("oevae_components: no detectors given.")
    return pd.concat(rows, ignore_index=True)


def ensemble_components(ensembles: Mapping, tests: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """The standardised member scores of every test clip, one column per member.

    Parameters
    ----------
    ensembles : mapping of machine type to fitted EnsembleDetector
    tests : mapping of machine type to its test clip table

    Returns
    -------
    pandas.DataFrame
        machine, section, file, domain, label and one column per member.
    """
    if not ensembles:
        raise ConfigError("ensemble_components: no ensembles given.")
    rows = []
    for machine, ens in ensembles.items():
        test = tests[machine].reset_index(drop=True)
        rows.append(test[list(_META)].assign(**ens.normalised_scores(test)))
    return pd.concat(rows, ignore_index=True)


# ---------------------------------------------------------------------- evaluation
def _layout(components: pd.DataFrame) -> tuple[str, str, list]:
    """The two score names of a components table and its domain suffixes (``[]`` when not per domain)."""
    missing = [c for c in _META if c not in components.columns]
    if missing:
        raise ConfigError(f"score components lack the column(s) {missing}; build them with oevae_components() "
                          "or ensemble_components().")
    cols = [c for c in components.columns if c not in _META and c != "k"]
    names = list(dict.fromkeys(c.split("@")[0] for c in cols))
    suffixes = sorted({c.split("@", 1)[1] for c in cols if "@" in c})
    expected = [f"{n}@{x}" for n in names for x in suffixes] if suffixes else names
    if len(names) != 2 or sorted(cols) != sorted(expected):
        raise ConfigError(f"score components need exactly two score columns (or each of two once per domain, "
                          f"name@domain), got {cols}; build them with oevae_components() or ensemble_components().")
    if components["label"].isna().any() or components["domain"].isna().any():
        raise ConfigError("score components need known test labels and domains to be evaluated.")
    return names[0], names[1], suffixes


def score_columns(components: pd.DataFrame) -> tuple[str, str]:
    """The two scores of a components table (the first is the one ``w`` weighs), without domain suffixes."""
    a, b, _ = _layout(components)
    return a, b


def _at_k(components: pd.DataFrame, k: int | None) -> pd.DataFrame:
    if "k" not in components.columns:
        if k is not None:
            raise ConfigError(f"k={k}: these components have no neighbour count column.")
        return components
    k = int(components["k"].min()) if k is None else int(k)
    sub = components[components["k"] == k]
    if sub.empty:
        raise ConfigError(f"k={k}: not among the components' neighbour counts {sorted(components['k'].unique())}.")
    return sub


def _row_weights(components: pd.DataFrame, w) -> np.ndarray:
    if np.isscalar(w):
        ws = np.full(len(components), float(w))
    else:
        missing = sorted(set(components["machine"]) - set(w))
        if missing:
            raise ConfigError(f"no weight for {missing}; give one per machine type or a single w.")
        ws = components["machine"].map({m: float(v) for m, v in w.items()}).to_numpy(dtype=float)
    bad = sorted({float(v) for v in ws if not 0 <= v <= 1})
    if bad:
        raise ConfigError(f"w={bad[0]!r}: must lie in [0, 1].")
    return ws


def combine(components: pd.DataFrame, w: float | Mapping[str, float]) -> np.ndarray:
    """``w * first + (1 - w) * second`` score column for every row (``w`` one number or one per machine type).

    The combination is :func:`asdkit.scoring.normalize.weighted_sum`, as in the detectors; with per-domain
    columns, the smaller over the domains of the domains' weighted sums (as OEVAE's per-domain scoring).
    """
    a, b, suffixes = _layout(components)
    ws = _row_weights(components, w)
    out = np.empty(len(components))
    for value in np.unique(ws):
        rows = ws == value
        per = [weighted_sum({a: components[a + x].to_numpy()[rows], b: components[b + x].to_numpy()[rows]},
                            {a: value, b: 1 - value}) for x in ([f"@{d}" for d in suffixes] or [""])]
        out[rows] = np.min(per, axis=0)
    return out


def evaluate_weights(components: pd.DataFrame, w: float | Mapping[str, float],
                     k: int | None = None) -> tuple[pd.DataFrame, float]:
    """Official metrics of ``w * first + (1 - w) * second`` score, with one ``w`` or one per machine type.

    Parameters
    ----------
    components : DataFrame from :func:`oevae_components` or :func:`ensemble_components`
    w : float in [0, 1], or mapping of machine type to float
    k : int, optional
        Neighbour count (components with a ``k`` column; default the smallest).

    Returns
    -------
    table : pandas.DataFrame
        One row per machine type and section: w, auc_source, auc_target, pauc.
    score : float
        The official score (harmonic mean of all values).
    """
    sub = _at_k(components, k).reset_index(drop=True)
    s = combine(sub, w)
    ws = _row_weights(sub, w)
    rows = []
    for (machine, section), idx in sub.groupby(["machine", "section"], sort=True).groups.items():
        pos = np.asarray(idx)
        rows.append({"machine": machine, "section": section, "w": float(ws[pos[0]]),
                     **section_metrics(sub["label"].to_numpy()[pos], s[pos], sub["domain"].to_numpy()[pos])})
    table = pd.DataFrame(rows)
    return table, official_score(table)


def sweep_table(components: pd.DataFrame, ws: Sequence[float] = DEFAULT_GRID,
                ks: Sequence[int] | None = None) -> pd.DataFrame:
    """Harmonic means of AUC(source), AUC(target), pAUC and the official score over a grid of ``(k, w)``.

    Returns
    -------
    pandas.DataFrame
        Index ``(k, w)`` (``k`` is 0 for components without neighbour counts);
        columns ``AUC(source)``, ``AUC(target)``, ``pAUC``, ``official score``
        (harmonic means over machine types and sections, in %).
    """
    score_columns(components)
    has_k = "k" in components.columns
    ks = (sorted(components["k"].unique()) if ks is None else ks) if has_k else [None]
    out = {}
    for k in ks:
        for w in ws:
            table, _ = evaluate_weights(components, float(w), None if k is None else int(k))
            out[(0 if k is None else int(k), float(w))] = summary_percent(table)
    frame = pd.DataFrame.from_dict(out, orient="index")
    frame.index = pd.MultiIndex.from_tuples(frame.index, names=["k", "w"])
    return frame


def weight_table(components: pd.DataFrame, grid: Sequence[float] = DEFAULT_GRID, default: float = 0.5,
                 k: int | None = None) -> pd.DataFrame:
    """The label-free default weight beside the best weight per machine type chosen **with the test labels**.

    Returns
    -------
    pandas.DataFrame
        Per machine type: the official score of its own values at ``w = default``,
        at each score alone, and at the ``w`` of the grid that maximises it
        (that ``w`` too); a last row ``all`` has the official scores over all
        machine types.
    """
    a, b = score_columns(components)
    comp = _at_k(components, k)
    rows, best_w = {}, {}
    for machine, sub in comp.groupby("machine", sort=True):
        scores = {float(w): evaluate_weights(sub, float(w))[1] for w in grid}
        w_best = max(scores, key=lambda w: (scores[w], -abs(w - default)))
        best_w[machine] = w_best
        rows[machine] = {f"{a} only": 100 * evaluate_weights(sub, 1.0)[1],
                         f"{b} only": 100 * evaluate_weights(sub, 0.0)[1],
                         f"w = {default:g} (label-free)": 100 * evaluate_weights(sub, default)[1],
                         "best w (test labels)": w_best,
                         "score at best w": 100 * scores[w_best]}
    rows["all"] = {f"{a} only": 100 * evaluate_weights(comp, 1.0)[1],
                   f"{b} only": 100 * evaluate_weights(comp, 0.0)[1],
                   f"w = {default:g} (label-free)": 100 * evaluate_weights(comp, default)[1],
                   "best w (test labels)": np.nan,
                   "score at best w": 100 * evaluate_weights(comp, best_w)[1]}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("machine")


# ---------------------------------------------------------------------- the widget
def _summary_html(table: pd.DataFrame, score: float, a: str, b: str) -> str:
    head = (f"<b>official score: {100 * score:.2f} %</b> &nbsp; (w weighs {a}, 1 - w {b}; harmonic means: "
            f"AUC(source) {100 * floored_hmean(table['auc_source']):.2f} %, "
            f"AUC(target) {100 * floored_hmean(table['auc_target']):.2f} %, "
            f"pAUC {100 * floored_hmean(table['pauc']):.2f} %)")
    rows = "".join(f"<tr><td>{r.machine}</td><td>{r.section}</td><td>{r.w:.2f}</td><td>{100 * r.auc_source:.2f}</td>"
                   f"<td>{100 * r.auc_target:.2f}</td><td>{100 * r.pauc:.2f}</td></tr>" for r in table.itertuples())
    return (head + "<table><tr><th>machine</th><th>section</th><th>w</th><th>AUC(source) %</th><th>AUC(target) %</th>"
            "<th>pAUC %</th></tr>" + rows + "</table>")


def weight_widget(components: pd.DataFrame, *, w: float = 0.5, per_machine: bool = False, plots: bool = True):
    """An ipywidgets panel: weight slider(s), the neighbour count where there is one, the metrics and plots.

    Parameters
    ----------
    components : DataFrame from :func:`oevae_components` or :func:`ensemble_components`
    w : float, default 0.5
        Starting weight.
    per_machine : bool, default False
        One slider per machine type (labelled by it) instead of one ``w``.
    plots : bool, default True
        Draw, per machine type, the ROC curves and score histograms of the
        combined score below the metrics.

    Returns
    -------
    ipywidgets.VBox
        Its ``children`` are ``(HBox of the controls, HTML summary, Output)``;
        the controls are the slider(s) (description ``w`` or the machine type)
        and, for components with several ``k``, a ``k`` dropdown; the summary
        starts with ``official score: <value> %``.
    """
    import ipywidgets as widgets

    a, b = score_columns(components)
    machines = sorted(components["machine"].unique())
    names = machines if per_machine else ["w"]
    sliders = {n: widgets.FloatSlider(value=w, min=0.0, max=1.0, step=0.05, description=n, readout_format=".2f",
                                      continuous_update=False, style={"description_width": "initial"})
               for n in names}
    controls = list(sliders.values())
    ks = sorted(int(k) for k in components["k"].unique()) if "k" in components.columns else []
    k_choice = widgets.Dropdown(options=ks, value=ks[0], description="k") if len(ks) > 1 else None
    if k_choice is not None:
        controls.append(k_choice)
    summary = widgets.HTML()
    out = widgets.Output()

    def weights():
        return {m: float(s.value) for m, s in sliders.items()} if per_machine else float(sliders["w"].value)

    def redraw(*_):
        k = None if k_choice is None else int(k_choice.value)
        if k is None and ks:
            k = ks[0]
        table, score = evaluate_weights(components, weights(), k)
        summary.value = _summary_html(table, score, a, b)
        if not plots:
            return
        import matplotlib.pyplot as plt

        from asdkit.plots.figures import plot_roc, plot_score_histogram

        sub = _at_k(components, k).reset_index(drop=True)
        s = combine(sub, weights())
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

    for c in controls:
        c.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox(controls), summary, out])
