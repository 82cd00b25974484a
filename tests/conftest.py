"""Shared fixtures of the asdkit test suite."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf


@pytest.fixture
def rng():
    """A seeded numpy Generator: tests are reproducible."""
    return np.random.default_rng(20241)


@pytest.fixture
def write_wav(tmp_path):
    """Write a waveform to a wav in tmp_path; returns the path."""

    def _write(name, y, sr=16000, subtype="PCM_16"):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), np.asarray(y), sr, subtype=subtype)
        return path

    return _write


@pytest.fixture(scope="module")
def one_thread():
    """One compute thread for a module's training tests, restored afterwards.

    On 2 shared cores two OpenMP/BLAS threads stall each other at every parallel
    region (a 20 ms step can take 0.5 s); results do not depend on the thread count.
    Use with ``pytestmark = pytest.mark.usefixtures("one_thread")``.
    """
    import torch
    from threadpoolctl import threadpool_limits

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(n)
