"""The one training engine of asdkit: device, seeds, mixed precision, checkpoints.

Every model of asdkit is a pure :class:`torch.nn.Module` that only computes;
:func:`fit` is the single place where one is trained. It owns

* the device (:func:`select_device`);
* the randomness: everything random in a run derives from ``config.seed``
  through explicit :class:`torch.Generator` objects (validation split, batch
  order, loader workers); the global torch RNG is used only inside a
  :func:`torch.random.fork_rng` block, so calling :func:`fit` leaves the
  caller's global RNG state untouched and importing asdkit seeds nothing;
* mixed precision, on CUDA only (``autocast`` with bf16 where the GPU supports
  it, else fp16 with a :class:`torch.amp.GradScaler`);
* checkpoints: at the end of every epoch, written atomically (temporary file +
  :func:`os.replace`), holding everything needed to resume bit-exactly.

Two runs with the same seed on CPU give bit-identical weights, and a run that
is interrupted and called again with the same ``checkpoint_dir`` ends with the
same weights as an uninterrupted one.

Datasets are ordinary map-style :class:`torch.utils.data.Dataset` objects. The
engine indexes them batch by batch and never copies the whole dataset, so a
dataset backed by a :class:`numpy.memmap` stays on disk. A dataset may define
``__getitems__(indices) -> list`` (the torch protocol for batched reads) to
serve a batch in one vectorised read; :class:`asdkit.models.baseline.FrameDataset`
does.

Example
-------
>>> import torch
>>> from asdkit.training.engine import TrainConfig, fit
>>> data = torch.utils.data.TensorDataset(torch.randn(64, 4))
>>> model = torch.nn.Linear(4, 4)
>>> def loss_fn(model, batch):
...     (x,) = batch
...     return torch.nn.functional.mse_loss(model(x), x)
>>> history = fit(model, loss_fn, data, config=TrainConfig(epochs=2, batch_size=16, progress=False))
>>> len(history.train_loss), len(history.val_loss)
(2, 2)
"""
from __future__ import annotations

import contextlib
import io
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler, SequentialSampler

from asdkit.errors import ConfigError
from asdkit.io import atomic_write_bytes
from asdkit.presets import check_integers, check_seed
from asdkit.runtime import select_device, show_progress

__all__ = ["select_device", "TrainConfig", "History", "fit", "seeded", "CHECKPOINT_NAME", "load_checkpoint"]

#: File name of the checkpoint inside ``TrainConfig.checkpoint_dir``.
CHECKPOINT_NAME = "checkpoint.pt"
_CHECKPOINT_VERSION = 1
#: Config fields that must agree between a checkpoint and the run that resumes it.
_RESUME_KEYS = ("batch_size", "lr", "seed", "val_fraction", "amp")

# Streams of the seed (see _derive_seed): each random consumer gets its own.
_STREAM_SPLIT, _STREAM_SAMPLER, _STREAM_TORCH, _STREAM_INIT = 0, 1, 2, 3


# --------------------------------------------------------------------------- device
# --------------------------------------------------------------------------- config and history
@dataclass(frozen=True)
class TrainConfig:
    """How :func:`fit` trains (frozen; vary with :func:`dataclasses.replace`).

    Attributes
    ----------
    epochs : int
        Passes over the training data.
    batch_size : int
        Items per optimiser step.
    lr : float
        Learning rate given to the optimiser factory.
    seed : int
        The one seed of the run: validation split, batch order, loader workers
        and the global torch RNG inside :func:`fit` (dropout etc.) derive from it.
    val_fraction : float
        Share of ``dataset`` held out for validation, in [0, 1), when no
        ``val_dataset`` is given. 0 disables validation (``val_loss`` is NaN).
    amp : bool
        Mixed precision. Used only on CUDA: bf16 autocast where the GPU supports
        bf16, else fp16 autocast with a gradient scaler. Ignored on CPU, where
        training stays in float32 (and bit-reproducible).
    progress : bool
        tqdm bars for the epochs and the batches of an epoch; never shown when
        the environment variable ``CI`` is set.
    checkpoint_dir : str, optional
        Folder for the end-of-epoch checkpoint (:data:`CHECKPOINT_NAME`). When it
        already holds one, :func:`fit` resumes from it.
    num_workers : int
        DataLoader worker processes (0 = load in the main process).
    """

    epochs: int = 10
    batch_size: int = 256
    lr: float = 1e-3
    seed: int = 0
    val_fraction: float = 0.1
    amp: bool = True
    progress: bool = True
    checkpoint_dir: str | None = None
    num_workers: int = 0

    def __post_init__(self):
        check_integers(self, ("epochs", "batch_size"), 1)
        check_integers(self, ("seed", "num_workers"), 0)
        if not (isinstance(self.lr, (int, float)) and np.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"TrainConfig.lr={self.lr!r}: must be a positive number.")
        if not (isinstance(self.val_fraction, (int, float)) and 0 <= self.val_fraction < 1):
            raise ConfigError(f"TrainConfig.val_fraction={self.val_fraction!r}: must lie in [0, 1).")
        if self.checkpoint_dir is not None:
            object.__setattr__(self, "checkpoint_dir", str(self.checkpoint_dir))

    def to_dict(self) -> dict:
        """Plain dict of the parameters (JSON-friendly)."""
        return asdict(self)


@dataclass
class History:
    """Per-epoch record of a run, one entry per finished epoch.

    Attributes
    ----------
    train_loss : list of float
        Mean training loss of each epoch (weighted by batch size, measured
        while the weights were being updated).
    val_loss : list of float
        Mean validation loss after each epoch (NaN without validation data).
    epoch_seconds : list of float
        Wall-clock time of each epoch.
    stats : list of dict
        Per epoch, the epoch mean of each statistic the training step returned
        beside its loss (see :func:`fit`); empty dicts for a step that returns
        a loss only.
    n_train, n_val : int
        Items in the training and validation sets.

    Plot with ``ax.plot(history.train_loss); ax.plot(history.val_loss)``.
    """

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    stats: list[dict] = field(default_factory=list)
    n_train: int = 0
    n_val: int = 0

    @property
    def epochs(self) -> int:
        """Finished epochs."""
        return len(self.train_loss)

    def to_dict(self) -> dict:
        """Plain dict (JSON-friendly)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


# --------------------------------------------------------------------------- helpers
def _derive_seed(seed: int, stream: int) -> int:
    """An independent 63-bit seed for one random consumer of a run."""
    return int(np.random.SeedSequence([int(seed), stream]).generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def _generator(seed: int, stream: int) -> torch.Generator:
    return torch.Generator().manual_seed(_derive_seed(seed, stream))


@contextlib.contextmanager
def seeded(seed: int):
    """Context in which the global torch RNG is seeded from ``seed``, restored on exit.

    For reproducible weight initialisation without a global side effect::

        with seeded(config.seed):
            model = DenseAE()

    The CPU generator's state is derived from ``seed`` (a stream of its own,
    independent of the streams :func:`fit` uses) inside
    :func:`torch.random.fork_rng`; build the model on the CPU, then move it.
    """
    check_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(_derive_seed(seed, _STREAM_INIT))
        yield


class _IndexSubset(Dataset):
    """A view of ``dataset`` at ``indices`` (int64 array), keeping batched reads batched."""

    def __init__(self, dataset: Dataset, indices: np.ndarray):
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64)

    def __len__(self) -> int:
        return int(self.indices.size)

    def __getitem__(self, i):
        return self.dataset[int(self.indices[i])]

    def __getitems__(self, idx: Sequence[int]) -> list:
        picked = self.indices[np.asarray(idx, dtype=np.int64)]
        if getattr(self.dataset, "__getitems__", None):
            return self.dataset.__getitems__(picked.tolist())
        return [self.dataset[int(i)] for i in picked]


def _split(dataset: Dataset, val_fraction: float, seed: int) -> tuple[Dataset, Dataset | None]:
    """Random train/validation split of ``dataset`` drawn from the seed's split stream."""
    n = len(dataset)
    n_val = int(round(n * val_fraction))
    if val_fraction == 0 or n_val == 0 or n - n_val < 1:
        return dataset, None
    perm = torch.randperm(n, generator=_generator(seed, _STREAM_SPLIT)).numpy()
    return _IndexSubset(dataset, np.sort(perm[n_val:])), _IndexSubset(dataset, np.sort(perm[:n_val]))


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(_to_device(v, device) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


def _batch_len(batch: Any) -> int:
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0])
    if isinstance(batch, dict):
        return _batch_len(next(iter(batch.values())))
    if isinstance(batch, (list, tuple)):
        return _batch_len(batch[0])
    return len(batch)


def _amp_settings(config: TrainConfig, device: torch.device) -> tuple[bool, torch.dtype | None, bool]:
    """(autocast on, autocast dtype, gradient scaler on)."""
    if not config.amp or device.type != "cuda":
        return False, None, False
    if torch.cuda.is_bf16_supported():
        return True, torch.bfloat16, False
    return True, torch.float16, True




def _checkpoint_path(config: TrainConfig) -> Path | None:
    return None if config.checkpoint_dir is None else Path(config.checkpoint_dir) / CHECKPOINT_NAME


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint written by :func:`fit` (a dict; tensors on CPU).

    Keys: ``version``, ``epoch`` (finished epochs), ``n_items`` (dataset size), ``config``, ``history``,
    ``model``, ``optimizer``, ``scaler``, ``sampler_rng``, ``torch_rng``,
    ``cuda_rng``.
    """
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated or foreign file
        raise ConfigError(f"{str(path)!r} is not a readable asdkit checkpoint ({e}). Delete it to start over.") from e
    if not isinstance(state, dict) or state.get("version") != _CHECKPOINT_VERSION:
        raise ConfigError(f"{str(path)!r} is not an asdkit checkpoint of version {_CHECKPOINT_VERSION}. "
                          "Delete it or use another checkpoint_dir.")
    return state


def _save_checkpoint(path: Path, *, epoch, n_items, config, history, model, optimizer, scaler, sampler_gen,
                     device) -> None:
    state = {
        "version": _CHECKPOINT_VERSION,
        "epoch": epoch,
        "n_items": n_items,
        "config": config.to_dict(),
        "history": history.to_dict(),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict(),
        "sampler_rng": sampler_gen.get_state(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
    }
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def _check_resumable(state: dict, config: TrainConfig, path: Path) -> None:
    old = state["config"]
    new = config.to_dict()
    diff = [f"{k}: {old.get(k)!r} -> {new[k]!r}" for k in _RESUME_KEYS if old.get(k) != new[k]]
    if diff:
        raise ConfigError(f"{str(path)!r} was written by a run with other settings ({'; '.join(diff)}). "
                          "Resume with the same settings, or use another checkpoint_dir.")


# --------------------------------------------------------------------------- the loop
def fit(model: torch.nn.Module, loss_fn: Callable[[torch.nn.Module, Any], torch.Tensor], dataset: Dataset, *,
        config: TrainConfig, optimizer_factory: Callable[..., torch.optim.Optimizer] | None = None,
        device: str | torch.device = "auto", val_dataset: Dataset | None = None,
        callbacks: Iterable[Callable[[int, History, torch.nn.Module], bool | None]] = ()) -> History:
    """Train ``model`` in place with mini-batch gradient descent.

    Parameters
    ----------
    model : torch.nn.Module
        Moved to ``device`` and trained in place. Its initial weights are the
        caller's (build it under a seed for reproducible initialisation, e.g.
        inside ``torch.random.fork_rng()`` after ``torch.manual_seed``).
    loss_fn : callable ``(model, batch) -> Tensor`` or ``-> (Tensor, dict)``
        The training step: the scalar loss of one batch, optionally with a
        dict of statistics of the batch (floats or 0-d tensors, e.g. an
        accuracy). ``batch`` is what the DataLoader yields (default collation),
        already moved to ``device``. It runs under autocast when mixed
        precision is on, so compute the final reduction in float32 (e.g.
        ``F.mse_loss(out.float(), x)``). The engine averages each statistic
        over the epoch, weighted by the batch size, or by the weight given with
        it as a pair ``(value, weight)`` (an accuracy over the batch's
        unmixed samples: ``(accuracy, n_unmixed)``), and records the means in
        ``History.stats``.
    dataset : torch.utils.data.Dataset
        Map-style training data. Read batch by batch (through
        ``__getitems__`` when the dataset has it), never materialised.
    config : TrainConfig
    optimizer_factory : callable, optional
        ``optimizer_factory(model.parameters(), lr=config.lr) -> Optimizer``;
        e.g. ``torch.optim.AdamW``. Default :class:`torch.optim.Adam`.
    device : str or torch.device, default "auto"
        See :func:`select_device`.
    val_dataset : Dataset, optional
        Validation data. Without it, ``config.val_fraction`` of ``dataset`` is
        held out by a random split drawn from ``config.seed``.
    callbacks : iterable of callables ``(epoch, history, model) -> bool | None``
        Called after each epoch, once its checkpoint is written, with the
        number of finished epochs (1-based). A callback returning True stops
        training; one that raises interrupts it (a later call with the same
        ``checkpoint_dir`` resumes after the last finished epoch).

    Returns
    -------
    History
        Per-epoch losses. With a checkpoint, it includes the epochs of the
        interrupted run(s). The model is left on ``device`` in eval mode.

    Raises
    ------
    ConfigError
        Empty dataset, a checkpoint written with other settings
        (``batch_size``, ``lr``, ``seed``, ``val_fraction``, ``amp``) or for a
        dataset of another size, or a non-finite training loss (lower ``lr``).

    Notes
    -----
    Reproducibility. The validation split, the order of batches (a
    :class:`torch.Generator` given to the sampler and the DataLoader, whose
    state is checkpointed) and the global torch RNG used inside the loop
    (dropout, noise) all derive from ``config.seed``. The global RNG is seeded
    inside :func:`torch.random.fork_rng`, so the caller's RNG state is the same
    before and after :func:`fit`. On CPU two runs with the same seed (and the
    same number of threads) give bit-identical weights; CUDA kernels may not be
    deterministic.

    A training batch of a single item is skipped (BatchNorm cannot normalise
    one sample; the organisers' baseline does the same).
    """
    if not isinstance(config, TrainConfig):
        raise ConfigError(f"config must be a TrainConfig, got {type(config).__name__}.")
    dev = select_device(device)
    n_total = len(dataset)
    if n_total == 0:
        raise ConfigError("fit() got an empty training dataset; give it at least one item.")
    if val_dataset is not None:
        train_ds, val_ds = dataset, (val_dataset if len(val_dataset) > 0 else None)
    else:
        train_ds, val_ds = _split(dataset, config.val_fraction, config.seed)
    callbacks = list(callbacks)
    ckpt = _checkpoint_path(config)

    model.to(dev)
    factory = optimizer_factory or torch.optim.Adam
    optimizer = factory(model.parameters(), lr=config.lr)
    autocast_on, amp_dtype, scaler_on = _amp_settings(config, dev)
    scaler = torch.amp.GradScaler("cuda", enabled=scaler_on)
    sampler_gen = _generator(config.seed, _STREAM_SAMPLER)
    history = History(n_train=len(train_ds), n_val=0 if val_ds is None else len(val_ds))
    start = 0

    cuda_devices = [dev.index if dev.index is not None else torch.cuda.current_device()] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda_devices):
        torch.default_generator.manual_seed(_derive_seed(config.seed, _STREAM_TORCH))
        if dev.type == "cuda":
            with torch.cuda.device(dev):
                torch.cuda.manual_seed(_derive_seed(config.seed, _STREAM_TORCH))
        step = _Step(model, loss_fn, optimizer, scaler, dev,
                     (lambda: torch.autocast(dev.type, dtype=amp_dtype)) if autocast_on else contextlib.nullcontext)
        if ckpt is not None and ckpt.is_file():
            history, start = _resume(ckpt, config, n_total, step, sampler_gen)
        loader = DataLoader(train_ds, batch_size=config.batch_size,
                            sampler=RandomSampler(train_ds, generator=sampler_gen), generator=sampler_gen,
                            num_workers=config.num_workers, pin_memory=dev.type == "cuda", drop_last=False)
        val_loader = None if val_ds is None else DataLoader(
            val_ds, batch_size=config.batch_size, sampler=SequentialSampler(val_ds),
            num_workers=config.num_workers, pin_memory=dev.type == "cuda")

        from tqdm.auto import tqdm

        show = show_progress(config.progress)
        epoch_bar = tqdm(total=config.epochs, initial=start, desc="epochs", unit="epoch", disable=not show)
        try:
            for epoch in range(start, config.epochs):
                t0 = time.perf_counter()
                batches = tqdm(loader, desc=f"epoch {epoch + 1}", unit="batch", leave=False, disable=not show)
                train_loss, stats = step.epoch(batches)
                if not np.isfinite(train_loss):
                    raise ConfigError(f"training diverged: the loss of epoch {epoch + 1} is {train_loss}. "
                                      f"Lower TrainConfig.lr (now {config.lr}) or check the data for NaN.")
                val_loss = (_evaluate(model, loss_fn, val_loader, dev, step.autocast) if val_loader is not None
                            else float("nan"))
                history.train_loss.append(train_loss)
                history.val_loss.append(val_loss)
                history.epoch_seconds.append(time.perf_counter() - t0)
                history.stats.append(stats)
                epoch_bar.update()
                epoch_bar.set_postfix(train=f"{train_loss:.4g}", val=f"{val_loss:.4g}")
                if ckpt is not None:
                    _save_checkpoint(ckpt, epoch=epoch + 1, n_items=n_total, config=config, history=history,
                                     model=model, optimizer=optimizer, scaler=scaler, sampler_gen=sampler_gen,
                                     device=dev)
                if _any_stops(callbacks, epoch + 1, history, model):
                    break
        finally:
            epoch_bar.close()
    model.eval()
    return history


@dataclass
class _Step:
    """What one optimisation step needs: the model, its loss, the optimiser and gradient scaler, the device."""

    model: torch.nn.Module
    loss_fn: Callable
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    device: torch.device
    autocast: Callable[[], Any]

    def epoch(self, batches) -> tuple[float, dict[str, float]]:
        """One pass over ``batches``: the mean loss over the items and the mean of each statistic."""
        self.model.train()
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        seen = 0
        sums: dict[str, list[float]] = {}
        for batch in batches:
            n = _batch_len(batch)
            if n < 2:
                continue
            batch = _to_device(batch, self.device)
            with self.autocast():
                loss, stats = _step(self.loss_fn, self.model, batch)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            total += loss.detach().double() * n
            seen += n
            _accumulate(sums, stats, n)
        if hasattr(batches, "close"):
            batches.close()
        return float(total) / max(seen, 1), {k: (s / w if w else float("nan")) for k, (s, w) in sums.items()}


def _resume(ckpt: Path, config: TrainConfig, n_total: int, step: _Step,
            sampler_gen: torch.Generator) -> tuple[History, int]:
    """Restore the model, optimiser, scaler and random states of a checkpoint; its history and epoch."""
    state = load_checkpoint(ckpt)
    _check_resumable(state, config, ckpt)
    if state.get("n_items") != n_total:
        raise ConfigError(f"{str(ckpt)!r} was written for a dataset of {state.get('n_items')} items, "
                          f"this one has {n_total}. Use another checkpoint_dir for other data.")
    step.model.load_state_dict(state["model"])
    step.optimizer.load_state_dict(state["optimizer"])
    step.scaler.load_state_dict(state["scaler"])
    sampler_gen.set_state(state["sampler_rng"])
    torch.set_rng_state(state["torch_rng"])
    if step.device.type == "cuda" and state["cuda_rng"] is not None:
        torch.cuda.set_rng_state(state["cuda_rng"], step.device)
    return History.from_dict(state["history"]), int(state["epoch"])


def _any_stops(callbacks, epoch: int, history: History, model: torch.nn.Module) -> bool:
    """Call every callback (all of them, even after one asks to stop); True when any asks to stop."""
    stop = False
    for cb in callbacks:
        stop = bool(cb(epoch, history, model)) or stop
    return stop


def _step(loss_fn, model, batch) -> tuple[torch.Tensor, dict]:
    """Run the training step; ``(loss, stats)`` whether it returns the loss alone or with statistics."""
    out = loss_fn(model, batch)
    if isinstance(out, tuple):
        loss, stats = out
        return loss, dict(stats or {})
    return out, {}


def _accumulate(sums: dict, stats: dict, n: int) -> None:
    """Add one batch's statistics (value or ``(value, weight)``; default weight: the batch size)."""
    for key, v in stats.items():
        value, weight = v if isinstance(v, tuple) else (v, n)
        weight = float(weight)
        acc = sums.setdefault(key, [0.0, 0.0])
        acc[0] += float(value) * weight
        acc[1] += weight


def _evaluate(model, loss_fn, loader, device, ctx) -> float:
    """Mean loss over ``loader`` in eval mode, without gradients."""
    model.eval()
    total, seen = 0.0, 0
    with torch.no_grad():
        for batch in loader:
            n = _batch_len(batch)
            batch = _to_device(batch, device)
            with ctx():
                loss, _ = _step(loss_fn, model, batch)
            total += float(loss) * n
            seen += n
    return total / max(seen, 1)
