"""Shared fixtures of the asdkit test suite."""
from __future__ import annotations

from pathlib import Path

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
    region (a 20 ms step can take 0.5 s). Results depend on the thread count (the order of a product's
    sums, amplified by training), so tests that compare two runs run both at one thread.
    Use with ``pytestmark = pytest.mark.usefixtures("one_thread")``.
    """
    import torch
    from threadpoolctl import threadpool_limits

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def quick_table(tmp_path_factory):
    """The embedded quick dataset (seed 0, every machine type), written once per test session: its clip table.

    Read only: a test that changes files makes its own root.
    """
    from asdkit.synth.dataset import synthesize

    return synthesize(tmp_path_factory.mktemp("quick"), preset="quick", seed=0, progress=False)


@pytest.fixture(scope="session")
def quick_root(quick_table) -> Path:
    """The folder of :func:`quick_table`."""
    return Path(quick_table.attrs["root"])
