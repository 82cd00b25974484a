"""The classes the classification-based model learns to tell apart: :func:`class_labels`."""
from __future__ import annotations

import pandas as pd

from asdkit.errors import ConfigError

__all__ = ["class_labels"]


def _attribute_string(a) -> str:
    """``"k1=v1_k2=v2"`` of an attribute dict, ``"noAttribute"`` for none."""
    if not isinstance(a, dict) or not a:
        return "noAttribute"
    return "_".join(f"{k}={v}" for k, v in a.items())


def class_labels(clips: pd.DataFrame, *, domain_in_class: bool = True) -> pd.Series:
    """The class of each clip: machine type, section, (domain,) and attribute values, as one string.

    Parameters
    ----------
    clips : pandas.DataFrame of n clips
        Clip table (rows of :func:`asdkit.scan_root`): ``machine``, ``section``,
        ``attributes`` and, with ``domain_in_class``, ``domain``.
    domain_in_class : bool, default True
        Split the classes by domain too.

    Returns
    -------
    pandas.Series of str, shape (n,), named ``"class"``

    Examples
    --------
    >>> t = pd.DataFrame({"machine": ["fan", "fan"], "section": ["00", "00"], "domain": ["source", "target"],
    ...                   "attributes": [{"spd": "1200rpm"}, {}]})
    >>> class_labels(t).tolist()
    ['fan|00|source|spd=1200rpm', 'fan|00|target|noAttribute']
    """
    missing = [c for c in ("machine", "section", "attributes") if c not in clips.columns]
    if missing:
        raise ConfigError(f"class_labels needs a clip table (asdkit.scan_root rows); it lacks {missing}.")
    parts = [clips["machine"].astype(str), clips["section"].astype(str)]
    if domain_in_class:
        if "domain" not in clips.columns or clips["domain"].isna().any():
            raise ConfigError("class_labels: domain_in_class needs every clip's domain (training clips of the "
                              "2021-2024 naming).")
        parts.append(clips["domain"].astype(str))
    parts.append(clips["attributes"].map(_attribute_string))
    out = parts[0]
    for p in parts[1:]:
        out = out + "|" + p
    return out.rename("class")
