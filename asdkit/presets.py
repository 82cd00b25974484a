"""Named, frozen settings: one lookup for every family of presets (features, baseline, OEVAE, ...)."""
from __future__ import annotations

from dataclasses import replace
from typing import Mapping, TypeVar

import numpy as np

from asdkit.errors import ConfigError

__all__ = ["named_preset", "check_integers", "check_integer", "check_seed", "is_integer"]

T = TypeVar("T")


def named_preset(presets: Mapping[str, T], preset, what: str, caller: str, **overrides) -> T:
    """``presets[preset]`` (or ``preset`` itself when it is already a settings object), with fields replaced.

    Parameters
    ----------
    presets : mapping of name to a frozen dataclass instance
    preset : str or an instance of the presets' class
    what : str
        Which settings, for the error message (``"baseline"`` -> "unknown baseline preset ...").
    caller : str
        The public function asked (``"baseline_config"``), named in the error for an unknown field.
    **overrides
        Fields to replace (:func:`dataclasses.replace`).

    Raises
    ------
    ConfigError
        An unknown name or an unknown field.
    """
    cls = type(next(iter(presets.values())))
    if isinstance(preset, cls):
        base = preset
    elif isinstance(preset, str) and preset in presets:
        base = presets[preset]
    else:
        raise ConfigError(f"unknown {what} preset {preset!r}; choose one of {sorted(presets)} "
                          f"or pass a {cls.__name__}.")
    try:
        return replace(base, **overrides) if overrides else base
    except TypeError as e:
        raise ConfigError(f"{caller}: {e}") from None


def is_integer(value) -> bool:
    """True for Python and numpy integers, False for bools and everything else."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_integer(value, name: str, *, low: int = 1, high: int | None = None, who: str = "",
                  hint: str = "") -> int:
    """``value`` as an int, or a :class:`ConfigError` naming ``name`` unless it is an integer in [low, high].

    >>> check_integer(3, "n_neighbors", who="KNNScorer")
    3
    >>> check_integer(0, "n_neighbors", who="KNNScorer")
    Traceback (most recent call last):
    ...
    asdkit.errors.ConfigError: KNNScorer: n_neighbors=0 must be an integer >= 1.
    """
    if not is_integer(value) or value < low or (high is not None and value > high):
        span = f">= {low}" if high is None else f"from {low} to {high}"
        raise ConfigError(f"{who + ': ' if who else ''}{name}={value!r} must be an integer {span}"
                          f"{' (' + hint + ')' if hint else ''}.")
    return int(value)


def check_seed(seed) -> int:
    """``seed`` as an int, or a :class:`ConfigError` when it is not a non-negative integer."""
    return check_integer(seed, "seed", low=0)


def check_integers(config, names, low: int = 1) -> None:
    """Raise a :class:`ConfigError` naming the field unless each of ``names`` of ``config`` is an integer >= ``low``.

    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class C:
    ...     epochs: int = 0
    >>> check_integers(C(), ["epochs"])
    Traceback (most recent call last):
    ...
    asdkit.errors.ConfigError: C.epochs=0 must be an integer >= 1.
    """
    for name in names:
        check_integer(getattr(config, name), f"{type(config).__name__}.{name}", low=low)
