"""asdkit.runtime: the device, thread and progress decisions made once for the whole package."""
from __future__ import annotations

import pytest
import torch

from asdkit.errors import ConfigError
from asdkit.runtime import device_name, select_device, set_threads, show_progress, thread_limit


def test_show_progress_is_off_under_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    assert show_progress(True) and not show_progress(False)
    monkeypatch.setenv("CI", "true")
    assert not show_progress(True)


def test_thread_limit_restores_the_counts_and_checks_its_argument():
    before = torch.get_num_threads()
    with thread_limit(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with thread_limit(None):
        assert torch.get_num_threads() == before
    for bad in (0, -2, 1.5, True):
        with pytest.raises(ConfigError, match="threads"):
            with thread_limit(bad):
                pass
        with pytest.raises(ConfigError, match="threads"):
            set_threads(bad)


def test_device_choice():
    assert select_device("cpu") == torch.device("cpu") and device_name("cpu") == "cpu"
    assert device_name("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ConfigError, match="not a device"):
        select_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device"):
            device_name("cuda")
