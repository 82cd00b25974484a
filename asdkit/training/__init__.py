"""Training: the one engine that trains every asdkit network (device, seeds, mixed precision, checkpoints)."""
from asdkit.training.engine import CHECKPOINT_NAME, History, TrainConfig, fit, load_checkpoint, seeded, select_device  # noqa: F401
