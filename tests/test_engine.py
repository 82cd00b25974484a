import math
import os

import numpy as np
import pytest
import torch
from torch import nn

from asdkit import ConfigError
from asdkit.training.engine import CHECKPOINT_NAME, History, TrainConfig, fit, load_checkpoint, seeded, select_device

pytestmark = pytest.mark.usefixtures("one_thread")


class Net(nn.Module):
    """Small model with every kind of state the engine must carry: BatchNorm buffers, dropout (global RNG)."""

    def __init__(self, d=6):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(d, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, d))

    def forward(self, x):
        return self.body(x)


def loss_fn(model, batch):
    (x,) = batch
    return nn.functional.mse_loss(model(x), x)


def make_net(seed=0):
    with seeded(seed):
        return Net()


@pytest.fixture
def data(rng):
    x = rng.standard_normal((200, 6)).astype(np.float32) @ rng.standard_normal((6, 6)).astype(np.float32)
    return torch.utils.data.TensorDataset(torch.from_numpy(x))


def cfg(**kw):
    return TrainConfig(**{"epochs": 4, "batch_size": 32, "lr": 1e-2, "seed": 0, "progress": False, **kw})


def same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# --------------------------------------------------------------------------- device and config
def test_select_device():
    assert select_device("cpu") == torch.device("cpu")
    assert select_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ConfigError, match="not a device"):
        select_device("gpu please")
    with pytest.raises(ConfigError, match="cpu' or 'cuda"):
        select_device("meta")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_select_device_cuda_absent():
    with pytest.raises(ConfigError, match="no CUDA device"):
        select_device("cuda")


@pytest.mark.parametrize("kw, word", [({"epochs": 0}, "epochs"), ({"batch_size": 0}, "batch_size"),
                                      ({"lr": -1.0}, "lr"), ({"val_fraction": 1.0}, "val_fraction"),
                                      ({"seed": -1}, "seed"), ({"num_workers": -2}, "num_workers")])
def test_train_config_errors(kw, word):
    with pytest.raises(ConfigError, match=word):
        TrainConfig(**kw)


def test_empty_dataset_is_refused():
    empty = torch.utils.data.TensorDataset(torch.zeros(0, 6))
    with pytest.raises(ConfigError, match="empty"):
        fit(make_net(), loss_fn, empty, config=cfg())


# --------------------------------------------------------------------------- training
def test_loss_falls_and_history(data):
    model = make_net()
    h = fit(model, loss_fn, data, config=cfg(epochs=6), device="cpu")
    assert isinstance(h, History) and h.epochs == 6
    assert len(h.val_loss) == len(h.epoch_seconds) == 6
    assert (h.n_train, h.n_val) == (180, 20)
    assert h.train_loss[-1] < 0.5 * h.train_loss[0]
    assert h.val_loss[-1] < h.val_loss[0]
    assert not model.training


def test_validation_options(data, rng):
    h = fit(make_net(), loss_fn, data, config=cfg(epochs=1, val_fraction=0.0))
    assert h.n_val == 0 and math.isnan(h.val_loss[0])
    val = torch.utils.data.TensorDataset(torch.from_numpy(rng.standard_normal((10, 6)).astype(np.float32)))
    h = fit(make_net(), loss_fn, data, config=cfg(epochs=1), val_dataset=val)
    assert (h.n_train, h.n_val) == (200, 10) and np.isfinite(h.val_loss[0])


def test_same_seed_same_weights_other_seed_differs(data):
    rng_before = torch.get_rng_state()
    a, b, c = make_net(), make_net(), make_net()
    ha = fit(a, loss_fn, data, config=cfg())
    hb = fit(b, loss_fn, data, config=cfg())
    fit(c, loss_fn, data, config=cfg(seed=1))
    assert same_weights(a, b) and ha.train_loss == hb.train_loss
    assert not same_weights(a, c)
    # fit and seeded() leave the caller's global RNG alone
    assert torch.equal(torch.get_rng_state(), rng_before)


def test_callback_stops_training(data):
    seen = []

    def cb(epoch, history, model):
        seen.append((epoch, len(history.train_loss)))
        return epoch == 2

    h = fit(make_net(), loss_fn, data, config=cfg(), callbacks=[cb])
    assert seen == [(1, 1), (2, 2)] and h.epochs == 2


def test_diverging_loss_is_reported(data):
    def nan_loss(model, batch):
        return loss_fn(model, batch) * float("nan")

    with pytest.raises(ConfigError, match="diverged"):
        fit(make_net(), nan_loss, data, config=cfg(epochs=1))


# --------------------------------------------------------------------------- checkpoints
class Interrupt(Exception):
    pass


def test_resume_after_interruption_matches_uninterrupted(data, tmp_path):
    reference = make_net()
    h_ref = fit(reference, loss_fn, data, config=cfg())

    ckpt = tmp_path / "ckpt"

    def crash_at_2(epoch, history, model):
        if epoch == 2:
            raise Interrupt

    model = make_net()
    with pytest.raises(Interrupt):
        fit(model, loss_fn, data, config=cfg(checkpoint_dir=str(ckpt)), callbacks=[crash_at_2])
    state = load_checkpoint(ckpt / CHECKPOINT_NAME)
    assert state["epoch"] == 2 and len(state["history"]["train_loss"]) == 2
    assert {"model", "optimizer", "scaler", "sampler_rng", "torch_rng", "config"} <= set(state)
    assert os.listdir(ckpt) == [CHECKPOINT_NAME]          # the atomic write leaves no temporary file

    # a fresh process would rebuild the model from scratch: do the same
    resumed = make_net()
    h = fit(resumed, loss_fn, data, config=cfg(checkpoint_dir=str(ckpt)))
    assert same_weights(resumed, reference)
    assert h.train_loss == h_ref.train_loss and h.val_loss == h_ref.val_loss

    # a finished run resumes to its final state without training
    again = make_net()
    h2 = fit(again, loss_fn, data, config=cfg(checkpoint_dir=str(ckpt)), callbacks=[crash_at_2])
    assert same_weights(again, reference) and h2.epochs == 4


def test_resume_with_other_settings_is_refused(data, tmp_path):
    fit(make_net(), loss_fn, data, config=cfg(epochs=1, checkpoint_dir=str(tmp_path)))
    with pytest.raises(ConfigError, match="other settings.*lr"):
        fit(make_net(), loss_fn, data, config=cfg(epochs=2, lr=0.5, checkpoint_dir=str(tmp_path)))
    half = torch.utils.data.Subset(data, range(100))
    with pytest.raises(ConfigError, match="dataset of 200 items, this one has 100"):
        fit(make_net(), loss_fn, half, config=cfg(epochs=2, checkpoint_dir=str(tmp_path)))
    (tmp_path / CHECKPOINT_NAME).write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="not a readable"):
        fit(make_net(), loss_fn, data, config=cfg(checkpoint_dir=str(tmp_path)))


# --------------------------------------------------------------------------- memory
class CountingMemmapDataset(torch.utils.data.Dataset):
    """A memmap-backed dataset that records every read."""

    def __init__(self, path, n, d, rng):
        self.array = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, d))
        self.array[:] = rng.standard_normal((n, d))
        self.array.flush()
        self.array = np.load(path, mmap_mode="r")
        self.reads = []

    def __len__(self):
        return self.array.shape[0]

    def __getitem__(self, i):
        raise AssertionError("batched reads expected")

    def __getitems__(self, idx):
        self.reads.append(len(idx))
        return [torch.from_numpy(np.array(row)) for row in self.array[np.asarray(idx)]]


def test_engine_reads_batches_never_the_whole_dataset(tmp_path, rng):
    ds = CountingMemmapDataset(tmp_path / "x.npy", 300, 6, rng)

    def loss(model, x):
        return nn.functional.mse_loss(model(x), x)

    fit(make_net(), loss, ds, config=cfg(epochs=2, batch_size=64))
    assert max(ds.reads) <= 64
    assert sum(ds.reads) == 2 * 300                        # each item once per epoch (train + validation)


def test_step_statistics_are_averaged_over_each_epoch(data):
    """A step may return (loss, stats): plain values are weighted by the batch size, pairs by their own weight."""
    seen = []

    def step(model, batch):
        (x,) = batch
        loss = nn.functional.mse_loss(model(x), x)
        n = x.shape[0]
        positive = int((x[:, 0] > 0).sum())
        if model.training:                              # validation batches are not part of the statistics
            seen.append((float(loss), n, positive))
        return loss, {"loss_again": loss.detach(), "share": (positive / max(n, 1), n), "ones": (1.0, 1)}

    history = fit(make_net(), step, data, config=TrainConfig(epochs=2, batch_size=64, val_fraction=0.25,
                                                              progress=False))
    assert len(history.stats) == 2 and set(history.stats[0]) == {"loss_again", "share", "ones"}
    first = seen[:len(seen) // 2]
    n = sum(b for _, b, _ in first)
    assert history.stats[0]["loss_again"] == pytest.approx(sum(v * b for v, b, _ in first) / n)
    assert history.stats[0]["loss_again"] == pytest.approx(history.train_loss[0])
    assert history.stats[0]["share"] == pytest.approx(sum(p for _, _, p in first) / n)
    assert history.stats[0]["ones"] == 1.0
    assert math.isfinite(history.val_loss[0])              # validation takes the loss of (loss, stats)
    # the statistics survive a checkpoint round trip with the rest of the history
    assert History.from_dict(history.to_dict()).stats == history.stats
