"""Constants every layer shares, each defined once."""
from __future__ import annotations

import sys

__all__ = ["DOMAINS", "EPS"]

#: The two domains of DCASE 2021-2026, in the order the official evaluator reports them
#: (and in which per-domain statistics are kept).
DOMAINS: tuple[str, str] = ("source", "target")

#: ``sys.float_info.epsilon`` (about 2.2e-16): the floor the official evaluator applies to every
#: value entering the harmonic mean, and the log floor (``amin``) of the organisers' baseline.
EPS: float = sys.float_info.epsilon
