"""The embedded synthetic dataset: machine sounds written in the exact DCASE layout, no download needed.

* :mod:`asdkit.synth.machines`: the four synthetic machine types and how their
  sound is made (:data:`MACHINES`, :func:`generate_clip`);
* :mod:`asdkit.synth.dataset`: the dataset on disk (:func:`synthesize`, the
  presets :data:`PRESETS`, clip seeds, the plan of every clip);
* :mod:`asdkit.synth.years`: its DCASE 2025 and 2026 variants (supplemental
  clips, two microphones with noise scenes).

A layer of its own between :mod:`asdkit.data` (whose file names and layout it
writes) and :mod:`asdkit.features`; every file it writes is byte-identical per
seed.
"""
from asdkit.synth.dataset import PRESETS, SynthPreset, clip_plan, clip_seed, synthesize
from asdkit.synth.machines import MACHINES, MachineSpec, generate_clip, machine_spec

__all__ = ["synthesize", "SynthPreset", "PRESETS", "clip_plan", "clip_seed", "MACHINES", "MachineSpec",
           "generate_clip", "machine_spec"]
