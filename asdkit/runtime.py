"""The process's resources, decided in one place: the compute device, CPU threads and progress bars.

Nothing here imports torch at module level, so ``import asdkit.runtime`` is cheap.
"""
from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Iterator

from asdkit.errors import ConfigError
from asdkit.presets import check_integer

if TYPE_CHECKING:                                   # pragma: no cover
    import torch

__all__ = ["select_device", "device_name", "set_threads", "thread_limit", "show_progress"]


def select_device(name: "str | torch.device | None" = "auto") -> "torch.device":
    """Resolve a device name.

    Parameters
    ----------
    name : str or torch.device, default "auto"
        ``"auto"`` (or None) picks CUDA when a GPU is present, else CPU;
        ``"cpu"``, ``"cuda"``, ``"cuda:1"`` etc. are taken as asked.

    Returns
    -------
    torch.device

    Raises
    ------
    ConfigError
        ``"cuda"`` is asked but no CUDA device is present, the CUDA index does
        not exist, or the name is not a device.
    """
    import torch

    if isinstance(name, torch.device):
        dev = name
    elif name is None or name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            dev = torch.device(name)
        except (RuntimeError, TypeError):
            raise ConfigError(f"device={name!r} is not a device name; use 'auto', 'cpu' or 'cuda[:index]'.") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device={str(dev)!r} was asked for, but no CUDA device is present (torch "
                              f"{torch.__version__}). Use device='auto' or 'cpu'.")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"device={str(dev)!r}: only {torch.cuda.device_count()} CUDA device(s) present.")
    elif dev.type != "cpu":
        raise ConfigError(f"device={str(dev)!r}: asdkit trains on 'cpu' or 'cuda' only.")
    return dev


def device_name(name: "str | torch.device | None" = "auto") -> str:
    """:func:`select_device` as a string (``"cpu"``, ``"cuda"``, ``"cuda:1"``), e.g. for a saved configuration."""
    return str(select_device(name))


def _check_threads(n) -> int:
    return check_integer(n, "threads", hint="a number of CPU threads")


def set_threads(n: int | None) -> None:
    """Limit torch's threads and the BLAS/OpenMP pools of numpy and scipy to ``n`` for the rest of the process.

    None leaves them as they are. Results depend on the thread count in the
    last digits (the order of a matrix product's sums).
    """
    if n is None:
        return
    n = _check_threads(n)
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(n)
    threadpool_limits(n)


@contextlib.contextmanager
def thread_limit(n: int | None) -> Iterator[None]:
    """:func:`set_threads` for the ``with`` block only; the counts before it are restored after it."""
    if n is None:
        yield
        return
    n = _check_threads(n)
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(n):
            yield
    finally:
        torch.set_num_threads(before)


def show_progress(progress: bool = True) -> bool:
    """Whether to draw progress bars: as asked, and never where the environment variable ``CI`` is set."""
    return bool(progress) and not os.environ.get("CI")
