"""Experiments: named systems, the experiment protocol, ``asdkit run``, ablations and weight sweeps."""
