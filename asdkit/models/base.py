"""The one contract of every asdkit detector: :class:`Detector`.

After PyOD's ``BaseDetector`` and scikit-learn's estimator rules:

* ``__init__`` stores settings only (no data, no side effect);
* ``fit(train, *, outliers=None, members=None) -> self`` learns from the
  normal training clips of one machine type (a clip table from
  :func:`asdkit.scan_root`, or a list of wav paths); ``outliers`` are training
  clips of other machine types (pseudo-anomalies or extra classes) for the
  models that use them, ``members`` fitted detectors for a model built on
  others (the ensemble);
* ``score_all(clips) -> dict`` gives every named score of the model (OEVAE:
  ``alpha``, ``beta``, ``oevae``), ``score_samples(clips)`` the chosen one;
  **higher = more anomalous** everywhere (the DCASE convention, the opposite
  of scikit-learn's);
* ``train_scores_``, ``thresholds_`` / ``threshold_`` and ``decision(scores)``
  the same way for every model: the decision threshold of a score is the 0.9
  quantile of a gamma distribution fitted to the training clips' scores
  (:func:`asdkit.scoring.threshold.gamma_threshold`, which falls back to the
  empirical quantile when the fit is implausible);
* ``save(directory)`` / ``Detector.load(directory)``: a loaded detector scores
  bit-identically on the CPU; a detector used before ``fit`` raises
  :class:`~asdkit.errors.NotFittedError`.

A model implements only what is its own: ``_fit`` (returns the training
clips' scores), ``_score_all``, and ``_get_state`` / ``_set_state`` for what
it learned.

Saved form (a folder, written atomically): ``detector.json`` (class, settings,
the fitted state's small values, training scores and thresholds),
``arrays.npz`` (numpy arrays), ``tensors.pt`` (torch tensors, read back with
``weights_only=True``) and ``members/<name>/`` (detectors it is built on).
Nothing is pickled.
"""
from __future__ import annotations

import inspect
import json
import os
from pathlib import Path
from typing import ClassVar, Mapping

import numpy as np
import pandas as pd

from asdkit.data.dataset import clip_table
from asdkit.errors import ConfigError, NotFittedError
from asdkit.io import atomic_dir
from asdkit.models.persistence import META, StateDecoder, StateEncoder, detector_class
from asdkit.presets import check_seed  # noqa: F401  (models import it from here)
from asdkit.scoring.threshold import gamma_threshold

__all__ = ["Detector", "FORMAT_VERSION", "check_seed", "threshold_quantile"]

#: Version of the saved-detector format.
FORMAT_VERSION = 1
#: The quantile of the training scores' gamma fit that is the decision threshold.
threshold_quantile = 0.9



class Detector:
    """Base class of every asdkit detector (see the module docstring for the contract).

    Subclasses set :attr:`score_names` (the default score first), implement
    ``_fit`` and ``_score_all``, and ``_get_state`` / ``_set_state`` to be saved.

    Attributes (after ``fit``)
    --------------------------
    train_scores_ : dict of str to ndarray of shape (n_train_clips,)
        Every named score of the training clips (out-of-sample where the model
        can: leave-one-clip-out neighbours, cross-fitted centroids).
    thresholds_ : dict of str to float
        Decision threshold of each score.
    threshold_ : float
        ``thresholds_[score_key]``.
    n_train_ : int
        Training clips.
    machines_ : list of str
        The machine types of the training clips (``asdkit score`` picks the test clips by them).
    """

    #: Names of :meth:`score_all`'s scores; the first is the default of :attr:`score_key`.
    score_names: ClassVar[tuple[str, ...]] = ("score",)
    #: What the detector can do beyond the contract, declared rather than probed:
    #: ``"combine"``: its scores follow from its members' ``score_all`` outputs (``combine_scores``), so a run
    #: does not score the test clips through the members again; ``"target_prior"``: ``prior_scores`` scores
    #: one fit under any target prior (:func:`asdkit.experiments.ablation.target_prior_sweep`).
    capabilities: ClassVar[frozenset[str]] = frozenset()
    #: Parameters that are not saved (run-time choices); a loaded detector has their defaults.
    transient_params: ClassVar[tuple[str, ...]] = ("device", "progress", "cache", "checkpoint_dir",
                                                    "memmap_dir")
    _classes: ClassVar[dict[str, type]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        Detector._classes[f"{cls.__module__}:{cls.__qualname__}"] = cls

    # ------------------------------------------------------------------ settings
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values()
                if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]

    def get_params(self, deep: bool = True) -> dict:
        """The settings given to ``__init__``, as scikit-learn's estimators give them.

        Parameters
        ----------
        deep : bool, default True
            Also give the settings of parameters that are estimators themselves
            (anything with ``get_params``), as ``"<param>__<setting>"``.

        Returns
        -------
        dict of str to object
        """
        params = {name: getattr(self, name) for name in self._param_names()}
        if deep:
            for name, value in list(params.items()):
                if hasattr(value, "get_params") and not isinstance(value, type):
                    params.update({f"{name}__{k}": v for k, v in value.get_params().items()})
        return params

    def set_params(self, **params) -> "Detector":
        """Change settings, as scikit-learn's ``set_params`` (``"<param>__<setting>"`` reaches a nested one).

        A fitted detector keeps its fitted state; fit it again for the new
        settings to take effect.

        Raises
        ------
        ConfigError
            A name that is not a setting of this detector.

        Returns
        -------
        self
        """
        valid = self._param_names()
        nested: dict[str, dict] = {}
        for key, value in params.items():
            name, _, sub = key.partition("__")
            if name not in valid:
                raise ConfigError(f"{type(self).__name__}.set_params: {name!r} is not a setting; its settings are "
                                  f"{valid}.")
            if sub:
                nested.setdefault(name, {})[sub] = value
            else:
                setattr(self, name, value)
        for name, sub_params in nested.items():
            inner = getattr(self, name)
            if not hasattr(inner, "set_params"):
                raise ConfigError(f"{type(self).__name__}.set_params: {name!r} is {type(inner).__name__}, which "
                                  f"has no settings to set ({sorted(sub_params)}).")
            inner.set_params(**sub_params)
        return self

    def __repr__(self) -> str:
        defaults = {p.name: p.default for p in inspect.signature(type(self).__init__).parameters.values()}
        shown = [f"{k}={v!r}" for k, v in self.get_params(deep=False).items()
                 if not (isinstance(v, (str, int, float, bool, type(None))) and defaults.get(k) == v)]
        return f"{type(self).__name__}({', '.join(shown)})"

    @property
    def score_key(self) -> str:
        """The score :meth:`score_samples` returns.

        The ``score`` setting where the model has one, else the first of :attr:`score_names`.
        """
        key = getattr(self, "score", None) or self.score_names[0]
        if key not in self.score_names:
            raise ConfigError(f"{type(self).__name__}: score={key!r}; choose one of {list(self.score_names)}.")
        return key

    # ------------------------------------------------------------------ the contract
    def fit(self, train, *, outliers=None, members: Mapping[str, "Detector"] | None = None) -> "Detector":
        """Learn the normal training clips of one machine type.

        Parameters
        ----------
        train : clip table (rows of :func:`asdkit.scan_root`) or list of wav paths
            Normal training clips, source and target domain together.
        outliers : clip table or list of wav paths, optional
            Training clips of other machine types (used by the models that
            learn from them; ignored by the others).
        members : mapping of name to fitted Detector, optional
            For models built on other detectors (the ensemble).

        Returns
        -------
        self
        """
        _ = self.score_key                               # an unknown score setting fails before any work
        table = clip_table(train, name="train")
        if len(table) < 2:
            raise ConfigError(f"{type(self).__name__}.fit got {len(table)} training clip(s); give at least two.")
        other = None if outliers is None else clip_table(outliers, name="outliers")
        scores = self._fit(table, outliers=other, members=members)
        self._set_training_scores(scores, len(table))
        self.machines_ = sorted(str(m) for m in table["machine"].dropna().unique()) if "machine" in table else []
        return self

    def _set_training_scores(self, scores: Mapping[str, np.ndarray], n: int) -> None:
        missing = [k for k in self.score_names if k not in scores]
        if missing:
            raise RuntimeError(f"{type(self).__name__}._fit returned no training scores for {missing}.")
        self.train_scores_ = {k: np.asarray(scores[k], dtype=np.float64) for k in self.score_names}
        bad = {k: v.shape for k, v in self.train_scores_.items() if v.shape != (n,)}
        if bad:
            raise RuntimeError(f"{type(self).__name__}._fit returned training scores of shapes {bad} for {n} clips.")
        self.thresholds_ = {k: gamma_threshold(v, threshold_quantile) for k, v in self.train_scores_.items()}
        self.threshold_ = self.thresholds_[self.score_key]
        self.n_train_ = int(n)

    def _fit(self, train: pd.DataFrame, *, outliers: pd.DataFrame | None,
             members: Mapping[str, "Detector"] | None) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _score_all(self, clips: pd.DataFrame) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def check_fitted(self) -> None:
        """Raise :class:`~asdkit.errors.NotFittedError` unless the detector is fitted (or loaded)."""
        if not hasattr(self, "train_scores_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit(train_clips) first, or "
                                 "Detector.load(folder) for a saved one.")

    def score_all(self, clips) -> dict[str, np.ndarray]:
        """Every named score of each clip.

        Parameters
        ----------
        clips : clip table or list of wav paths

        Returns
        -------
        dict of str to ndarray of shape (n_clips,)
            Keys :attr:`score_names`; **higher = more anomalous**.
        """
        self.check_fitted()
        table = clip_table(clips, name="clips")
        out = self._score_all(table)
        return {k: np.asarray(out[k], dtype=np.float64) for k in self.score_names}

    def score_samples(self, clips) -> np.ndarray:
        """The anomaly score (:attr:`score_key`) of each clip.

        Returns
        -------
        ndarray of shape (n_clips,)
            **Higher = more anomalous**.
        """
        return self.score_all(clips)[self.score_key]

    def decision(self, scores, key: str | None = None) -> np.ndarray:
        """0/1 decisions (1 = anomalous): ``scores > thresholds_[key]``.

        Parameters
        ----------
        scores : array-like of shape (n_clips,)
            Scores of ``key`` (default :attr:`score_key`).
        key : str, optional

        Returns
        -------
        ndarray of shape (n_clips,), int64
        """
        self.check_fitted()
        key = self.score_key if key is None else key
        if key not in self.thresholds_:
            raise ConfigError(f"{type(self).__name__}.decision: no threshold for {key!r}; it has "
                              f"{sorted(self.thresholds_)}.")
        s = np.asarray(scores, dtype=np.float64)
        if s.ndim != 1:
            raise ConfigError(f"scores must be one-dimensional (n_clips,), got shape {s.shape}.")
        return (s > self.thresholds_[key]).astype(np.int64)

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> dict:
        """What the model learned, as a tree of dicts / lists / scalars / arrays / tensors / Detectors."""
        return {}

    def _set_state(self, state: dict) -> None:
        """Restore what :meth:`_get_state` returned (settings are already in place)."""

    def save(self, directory: str | os.PathLike) -> Path:
        """Write the fitted detector to a folder (replaced atomically if it exists).

        Returns
        -------
        pathlib.Path
            The folder. :meth:`Detector.load` reads it back.
        """
        self.check_fitted()
        target = Path(directory)
        with atomic_dir(target) as tmp:
            self._write(tmp)
        return target

    def _write(self, folder: Path) -> None:
        from asdkit import __version__

        enc = StateEncoder(folder, lambda v: isinstance(v, Detector))
        params = {k: enc.param(k, v) for k, v in self.get_params(deep=False).items() if k not in self.transient_params}
        meta = {
            "format": "asdkit-detector", "version": FORMAT_VERSION, "asdkit": __version__,
            "class": f"{type(self).__module__}:{type(self).__qualname__}",
            "params": params,
            "state": enc.encode(self._get_state(), "state"),
            "train_scores_": enc.encode(self.train_scores_, "train_scores_"),
            "thresholds_": self.thresholds_,
            "n_train_": self.n_train_,
            "machines_": list(getattr(self, "machines_", [])),
        }
        enc.flush()
        (folder / META).write_text(json.dumps(meta, indent=1))

    @classmethod
    def load(cls, directory: str | os.PathLike, *, device: str = "cpu") -> "Detector":
        """Read a detector written by :meth:`save`.

        Parameters
        ----------
        directory : path-like
        device : str, default "cpu"
            Where its networks go (``"cuda"`` for a GPU).

        Returns
        -------
        Detector
            Of the saved class (``Detector.load`` reads any; ``OEVAEDetector.load``
            checks that the folder holds one).

        Raises
        ------
        ConfigError
            The folder holds no saved detector, one of another format version,
            or of another class than ``cls``.
        """
        folder = Path(directory)
        meta_path = folder / META
        if not meta_path.is_file():
            raise ConfigError(f"{str(folder)!r} holds no saved asdkit detector (no {META}); save one with "
                              "detector.save(folder) or asdkit run --save-models.")
        try:
            meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError as e:
            raise ConfigError(f"{str(meta_path)!r} is not valid JSON ({e}); the saved detector is damaged.") from None
        if meta.get("format") != "asdkit-detector" or meta.get("version") != FORMAT_VERSION:
            raise ConfigError(f"{str(folder)!r} holds a detector of format {meta.get('format')!r} version "
                              f"{meta.get('version')!r}; this asdkit reads version {FORMAT_VERSION}.")
        klass = detector_class(meta["class"], Detector._classes)
        if not issubclass(klass, cls):
            raise ConfigError(f"{str(folder)!r} holds a {klass.__name__}, not a {cls.__name__}; load it with "
                              "asdkit.Detector.load.")
        dec = StateDecoder(folder, device, Detector.load)
        params = {k: dec.param(v) for k, v in meta["params"].items()}
        if "device" in klass._param_names():
            params["device"] = device
        det = klass(**params)
        det._set_state(dec.decode(meta["state"]))
        det.train_scores_ = {k: np.asarray(v, dtype=np.float64) for k, v in dec.decode(meta["train_scores_"]).items()}
        det.thresholds_ = {k: float(v) for k, v in meta["thresholds_"].items()}
        det.threshold_ = det.thresholds_[det.score_key]
        det.n_train_ = int(meta["n_train_"])
        det.machines_ = list(meta.get("machines_", []))
        return det
