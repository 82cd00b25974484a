"""How a detector's fitted state is saved: JSON for the tree, ``.npz`` for arrays, ``.pt`` for tensors.

Nothing is pickled: arrays are read with ``allow_pickle=False``, tensors with
``weights_only=True``, and a setting or detector class is only looked up by
name among asdkit's own classes (or registered Detector subclasses).
"""
from __future__ import annotations

import dataclasses
import importlib
import io
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from asdkit.errors import ConfigError

__all__ = ["StateEncoder", "StateDecoder", "detector_class", "META", "ARRAYS", "TENSORS"]

META = "detector.json"
ARRAYS = "arrays.npz"
TENSORS = "tensors.pt"


def detector_class(name: str, registry: dict) -> type:
    """The Detector class saved as ``module:qualname``.

    Looked up in the registry of Detector subclasses, importing its module first where needed.
    """
    if name not in registry:
        module, _, _ = name.partition(":")
        try:
            importlib.import_module(module)
        except ImportError as e:
            raise ConfigError(f"the saved detector's class {name!r} cannot be imported ({e}).") from None
    klass = registry.get(name)
    if klass is None:
        raise ConfigError(f"the saved detector's class {name!r} is not an asdkit Detector.")
    return klass


class StateEncoder:
    """Turns a state tree into JSON, collecting arrays and tensors into their files and detectors into folders."""

    def __init__(self, folder: Path, is_detector):
        self.folder = folder
        self.is_detector = is_detector
        self.arrays: dict[str, np.ndarray] = {}
        self.tensors: dict[str, torch.Tensor] = {}

    def param(self, name: str, value):
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {"__config__": f"{type(value).__module__}:{type(value).__qualname__}",
                    "fields": self.encode(dataclasses.asdict(value), f"params.{name}")}
        return self.encode(value, f"params.{name}")

    def encode(self, value, key: str):
        if self.is_detector(value):
            sub = f"members/{key.replace('/', '_')}"
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
            value._write(self.folder / sub)
            return {"__detector__": sub}
        if isinstance(value, torch.Tensor):
            self.tensors[key] = value.detach().cpu().clone()
            return {"__tensor__": key}
        if isinstance(value, np.ndarray):
            if value.dtype == object:
                return {"__objects__": self.encode(value.tolist(), key)}
            self.arrays[key] = value
            return {"__array__": key}
        if isinstance(value, pd.DataFrame):
            return {"__frame__": self.encode(value.to_dict(orient="tight"), key)}
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, dict):
            bad = [k for k in value if not isinstance(k, str)]
            if bad:
                return {"__items__": [[self.encode(k, f"{key}.k{i}"), self.encode(v, f"{key}.{i}")]
                                      for i, (k, v) in enumerate(value.items())]}
            return {k: self.encode(v, f"{key}.{k}") for k, v in value.items()}
        if isinstance(value, tuple):
            return {"__tuple__": [self.encode(v, f"{key}.{i}") for i, v in enumerate(value)]}
        if isinstance(value, list):
            return [self.encode(v, f"{key}.{i}") for i, v in enumerate(value)]
        if isinstance(value, Path):
            return str(value)
        if value is None or isinstance(value, (str, bool, int, float)):
            return value
        raise TypeError(f"cannot save a {type(value).__name__} at {key!r}; return arrays, tensors, numbers, "
                        "strings, lists or dicts from _get_state.")

    def flush(self) -> None:
        if self.arrays:
            buf = io.BytesIO()
            np.savez(buf, **self.arrays)
            (self.folder / ARRAYS).write_bytes(buf.getvalue())
        if self.tensors:
            torch.save(self.tensors, self.folder / TENSORS)


class StateDecoder:
    """Reads back what :class:`StateEncoder` wrote."""

    def __init__(self, folder: Path, device: str, load):
        self.folder = folder
        self.device = device
        self.load = load
        self._arrays = None
        self._tensors = None

    def arrays(self):
        if self._arrays is None:
            path = self.folder / ARRAYS
            with np.load(path, allow_pickle=False) as z:
                self._arrays = {k: z[k] for k in z.files}
        return self._arrays

    def tensors(self):
        if self._tensors is None:
            self._tensors = torch.load(self.folder / TENSORS, map_location="cpu", weights_only=True)
        return self._tensors

    def param(self, value):
        if isinstance(value, dict) and "__config__" in value:
            module, _, qual = value["__config__"].partition(":")
            if not module.startswith("asdkit."):
                raise ConfigError(f"a saved setting names the class {value['__config__']!r}, outside asdkit.")
            klass = getattr(importlib.import_module(module), qual)
            return klass(**self.decode(value["fields"]))
        return self.decode(value)

    def decode(self, value):
        if isinstance(value, list):
            return [self.decode(v) for v in value]
        if not isinstance(value, dict):
            return value
        if "__array__" in value:
            return self.arrays()[value["__array__"]]
        if "__tensor__" in value:
            return self.tensors()[value["__tensor__"]]
        if "__detector__" in value:
            return self.load(self.folder / value["__detector__"], device=self.device)
        if "__tuple__" in value:
            return tuple(self.decode(v) for v in value["__tuple__"])
        if "__objects__" in value:
            return np.asarray(self.decode(value["__objects__"]), dtype=object)
        if "__frame__" in value:
            return pd.DataFrame.from_dict(self.decode(value["__frame__"]), orient="tight")
        if "__items__" in value:
            return {self.decode(k): self.decode(v) for k, v in value["__items__"]}
        return {k: self.decode(v) for k, v in value.items()}
