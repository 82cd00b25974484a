"""The attribute value ``v`` that OEVAE's ``z_d`` follows (prior ``N(k v, 1)``), and ``k``."""
from __future__ import annotations

import re
from typing import NamedTuple

import numpy as np
import pandas as pd

from asdkit.errors import ConfigError, DatasetError

__all__ = ["attribute_values", "AttributeValues"]


class AttributeValues(NamedTuple):
    """What :func:`attribute_values` returns.

    Attributes
    ----------
    v : ndarray of shape (n_clips,)
        The value of each clip, centred on the training clips' mean.
    k : float
        ``k_scale / (smallest distance between distinct values)``.
    source : str
        ``"attribute <name>"`` (numeric), ``"attribute <name> (categorical: a=0, b=1, ...)"``
        or ``"power (dB, rounded to 1 dB)"``.
    codes : dict or None
        Categorical value -> number.
    """

    v: np.ndarray
    k: float
    source: str
    codes: dict | None

    def to_state(self) -> dict:
        """Plain values (an array, a float, a string, a dict of str to int or None), for saving."""
        return {"v": np.asarray(self.v, dtype=np.float64), "k": float(self.k), "source": str(self.source),
                "codes": None if self.codes is None else {str(a): int(b) for a, b in self.codes.items()}}

    @classmethod
    def from_state(cls, state) -> "AttributeValues":
        """The inverse of :meth:`to_state`."""
        return cls(v=np.asarray(state["v"], dtype=np.float64), k=float(state["k"]), source=str(state["source"]),
                   codes=None if state["codes"] is None else dict(state["codes"]))


def _mean_power_db(paths, sr: int, channels: str = "auto") -> np.ndarray:
    """Each clip's mean power in dB, of the channel(s) the policy reads (the near microphone under ``"both"``)."""
    from asdkit.data.audio import load_clip

    channels = "near" if channels == "both" else channels
    return np.array([10 * np.log10(np.mean(np.square(load_clip(p, sr=sr, channels=channels), dtype=np.float64))
                                   + 1e-12) for p in paths])


_NUMBER = re.compile(r"^([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)([A-Za-z%]*)$")


def _numeric(raw) -> tuple[np.ndarray, str] | None:
    """Numbers with one common unit suffix (``1200rpm``, ``40kg``, ``3``), else None."""
    parsed = [_NUMBER.match(str(r).strip()) for r in raw]
    if not all(parsed) or len({m.group(2) for m in parsed}) != 1:
        return None
    return np.array([float(m.group(1)) for m in parsed]), parsed[0].group(2)


def attribute_values(clips: pd.DataFrame, *, attribute: str | None = None, k_scale: float = 5.0,
                     sr: int = 16000, channels: str = "auto") -> AttributeValues:
    """The value ``v`` of each clip that ``z_d`` follows (prior ``N(k v, 1)``).

    The report trains with "a randomly selected attribute parameter", or the
    clip's average power for machine types without attributes. asdkit chooses
    deterministically:

    * ``attribute`` if given; else the first attribute (in file-name order)
      whose training values differ between the source and the target domain
      (the one most likely to cause the shift); else the first attribute;
    * numeric attributes (a number with one common unit suffix, ``1200rpm``)
      are used as numbers; categorical ones are mapped to 0, 1, 2, ... in
      sorted order of their values;
    * supplemental machine-only clips used as extra normals (pattern
      ``"supplemental"``, no attributes) get the mean value of the others;
    * without attributes (``noAttribute``), the clip's mean power
      ``10 log10(mean(y**2))`` of the raw waveform in dB, **rounded to 1 dB**
      so that "the smallest distance between distinct values" is defined (1 dB).

    ``v`` is centred on its mean over ``clips`` (the prior's means ``k v`` then
    lie around 0; the distances, hence ``k``, do not change).

    Parameters
    ----------
    clips : DataFrame
        A clip table of one machine type (``attributes``, ``domain``, ``path``
        columns), normally its training clips.
    attribute : str, optional
    k_scale : float, default 5.0
    sr : int, default 16000
    channels : str, default "auto"
        Channel policy the clips' power is read under (:mod:`asdkit.data.channels`).

    Returns
    -------
    AttributeValues
    """
    attrs = [a if isinstance(a, dict) else {} for a in clips["attributes"]]
    names = list(dict.fromkeys(k for a in attrs for k in a))
    codes = None
    if attribute is not None and attribute not in names:
        raise ConfigError(f"attribute {attribute!r} is not in these clips' names; they have {names or 'none'}.")
    if names:
        if attribute is None:
            dom = clips["domain"].to_numpy()
            attribute = names[0]
            for n in names:
                src = {a.get(n) for a, d in zip(attrs, dom) if d == "source"}
                tgt = {a.get(n) for a, d in zip(attrs, dom) if d == "target"}
                if src and tgt and src != tgt:
                    attribute = n
                    break
        raw_all = [a.get(attribute) for a in attrs]
        supplemental = ((clips["pattern"] == "supplemental").to_numpy() if "pattern" in clips
                        else np.zeros(len(attrs), bool))
        missing = np.array([r is None for r in raw_all])
        if (missing & ~supplemental).any() or missing.all():
            raise DatasetError(f"attribute {attribute!r} is missing from some clips' names.")
        raw = [r for r in raw_all if r is not None]
        numeric = _numeric(raw)
        if numeric is not None:
            present, unit = numeric
            source = f"attribute {attribute}" + (f" ({unit})" if unit else "")
        else:
            levels = sorted(set(map(str, raw)))
            codes = {lv: i for i, lv in enumerate(levels)}
            present = np.array([codes[str(r)] for r in raw], dtype=float)
            source = f"attribute {attribute} (categorical: " + ", ".join(f"{k}={v}" for k, v in codes.items()) + ")"
        # supplemental machine-only clips used as normals carry no attributes: they sit at the centre of the prior
        values = np.full(len(raw_all), float(np.mean(present)))
        values[~missing] = present
        distinct = np.unique(present)                     # k from the clips' own values only
    else:
        values = np.round(_mean_power_db(clips["path"], sr, channels))
        source = "power (dB, rounded to 1 dB)"
        distinct = np.unique(values)
    step = float(np.min(np.diff(distinct))) if distinct.size > 1 else 1.0
    return AttributeValues(v=values - values.mean(), k=float(k_scale / step), source=source, codes=codes)
