"""The DCASE 2025 and 2026 variants of the synthetic dataset.

``asdkit synth ROOT --year 2025`` writes the default clips (byte-identical to
``--year 2024``) and, per machine type, a ``supplemental/`` folder as the 2025
data has one: machine-only clips (the machine's own sound, no background) and
noise-only clips (the background alone)::

    <root>/dev_data/raw/<machine>/supplemental/section_00_machine_source_0000_noAttribute.wav
    <root>/dev_data/raw/<machine>/supplemental/section_00_noise_source_0000_noAttribute.wav

``asdkit synth ROOT --year 2026`` writes **two-channel** clips as the 2026
data: channel 0 from a microphone near the machine, channel 1 from one far
from it. An environmental noise source (a scene, :data:`NOISE_SCENES`) is heard
by both: the far microphone hears it 4-8 dB louder and the machine 14-20 dB
weaker than the near one, so it is mostly a noise reference. The scene varies by
domain (:data:`SCENES_BY_DOMAIN`): the source domain has a steady hall and a
ventilation scene, the target domain a workshop with random tool impacts at a
higher level, so that the noise is part of the domain shift. The scene is an
attribute in the names (``..._spd_1450rpm_mic_1_noise_2.wav``), as in the real
2026 names. The noise reaches the two microphones along paths with their own
delays and colourings (coherent, so a two-microphone canceller can learn the
path), plus a diffuse part 10 dB lower that differs between them (which no
canceller removes).
"""
from __future__ import annotations

import numpy as np
from scipy import fft as sp_fft

from asdkit.errors import ConfigError
from asdkit.synth import machines, signals

__all__ = ["YEARS", "NOISE_SCENES", "SCENES_BY_DOMAIN", "SUPPLEMENTAL_KINDS", "generate_two_channel",
           "generate_supplemental", "supplemental_seed", "supplemental_name", "conditions_2026", "n_supplemental"]

#: The years :func:`asdkit.synth.synthesize` can write: None and 2024 give the default data.
YEARS = (None, 2024, 2025, 2026)
#: Kinds of 2025 supplemental clips.
SUPPLEMENTAL_KINDS = ("machine", "noise")
_KIND_ID = {"machine": 0, "noise": 1}
_SUPPLEMENTAL_SPLIT_ID = 2                  # beside train = 0 and test = 1 in the clip seeds


# --------------------------------------------------------------------------- 2026 noise scenes
def _hits(rng: np.random.Generator, n: int, sr: int, rate: float) -> np.ndarray:
    """Tool impacts at random times: decaying resonances of random pitch and length."""
    out = np.zeros(n)
    for _ in range(rng.poisson(rate * n / sr)):
        f, tau = rng.uniform(400.0, 3000.0), rng.uniform(0.02, 0.08)
        t = np.arange(int(5 * tau * sr)) / sr
        kernel = np.exp(-t / tau) * np.sin(2 * np.pi * f * t) * np.exp(rng.normal(0.0, 0.5))
        a = int(rng.integers(0, n))
        b = min(n, a + kernel.size)
        out[a:b] += kernel[:b - a]
    return out


def _scene_hall(rng, n, sr):
    return signals.bg_hall(rng, n, sr)


def _scene_ventilation(rng, n, sr):
    voices = signals.shaped_noise(rng, n, signals.band_shape(n, sr, 300.0, 3000.0, 1.5))
    babble = voices * (0.5 + signals.burst_envelope(rng, n, sr, 3.0, (0.1, 0.4)))
    return signals.to_unit_rms(signals.bg_ventilation(rng, n, sr) + 0.7 * signals.to_unit_rms(babble))


def _scene_workshop(rng, n, sr):
    return signals.to_unit_rms(signals.bg_workshop(rng, n, sr) + 1.5 * signals.to_unit_rms(_hits(rng, n, sr, 2.0)))


#: Environmental noise scenes of the 2026 data: name -> (generator, (low, high) machine-to-scene ratio in dB
#: at the near microphone).
NOISE_SCENES = {
    "1": (_scene_hall, (6.0, 12.0)),
    "2": (_scene_ventilation, (2.0, 8.0)),
    "3": (_scene_workshop, (-3.0, 3.0)),
}
#: Scenes of each domain: the target domain's scene is louder and has impacts.
SCENES_BY_DOMAIN = {"source": ("1", "2"), "target": ("3",)}
#: What the far microphone hears relative to the near one (dB ranges): the machine, and the scene.
FAR_MACHINE_DB = (-20.0, -14.0)
FAR_SCENE_DB = (4.0, 8.0)


def conditions_2026(spec, domain: str) -> list[dict[str, str]]:
    """A machine's conditions of ``domain`` crossed with the domain's noise scenes (attribute ``noise``)."""
    return [dict(c, noise=scene) for c in spec.conditions(domain) for scene in SCENES_BY_DOMAIN[domain]]


def _path(x: np.ndarray, sr: int, *, delay_s: float, gain_db: float, cutoff_hz: float) -> np.ndarray:
    """``x`` delayed, attenuated and gently low-passed (a propagation path), in the frequency domain."""
    n = x.shape[0]
    f = sp_fft.rfftfreq(n, 1.0 / sr)
    h = 10 ** (gain_db / 20) * np.exp(-2j * np.pi * f * delay_s) / np.sqrt(1.0 + (f / cutoff_hz) ** 2)
    return sp_fft.irfft(sp_fft.rfft(x) * h, n)


def generate_two_channel(machine: str, *, domain: str = "source", label: str = "normal",
                         attributes: dict | None = None, rng: np.random.Generator | int | None = None,
                         seconds: float = 10.0, sr: int = 16000, anomaly: str | None = None,
                         severity: float | None = None, return_info: bool = False):
    """Synthesise one two-channel (near, far) clip of the 2026 kind in memory.

    The arguments are those of :func:`asdkit.synth.generate_clip`; ``attributes`` may also name the
    noise scene (``noise``: one of :data:`NOISE_SCENES`), which is otherwise drawn from the domain's scenes.

    Returns
    -------
    ndarray of shape (2, round(seconds * sr)), float32
        Channel 0 near the machine, channel 1 far from it; each at -30 to -18 dBFS RMS, peak below -1 dBFS.
        With ``return_info``, ``(waveform, info)``; ``info["condition"]`` holds the scene under ``noise``.

    Examples
    --------
    >>> y = generate_two_channel("SynFan", domain="target", rng=np.random.default_rng(0), seconds=2.0)
    >>> y.shape
    (2, 32000)
    """
    if domain not in SCENES_BY_DOMAIN:
        raise ConfigError(f"domain must be 'source' or 'target', got {domain!r}.")
    attrs = dict(attributes or {})
    scene = attrs.pop("noise", None)
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    if scene is None:
        scenes = SCENES_BY_DOMAIN[domain]
        scene = scenes[int(rng.integers(len(scenes)))]
    if scene not in NOISE_SCENES:
        raise ConfigError(f"noise={scene!r} is not a noise scene; choose one of {list(NOISE_SCENES)}.")
    parts = machines.machine_part(machine, domain=domain, label=label, attributes=attrs or None, rng=rng,
                            seconds=seconds, sr=sr, anomaly=anomaly, severity=severity)
    m, rng, cond, n = parts.machine, parts.rng, parts.condition, parts.n
    local = signals.db_gain(-rng.uniform(*parts.snr_range)) * parts.make_bg(rng, n, sr)
    make_scene, (lo, hi) = NOISE_SCENES[scene]
    level = signals.db_gain(-rng.uniform(lo, hi))
    noise = make_scene(rng, n, sr)
    pink = signals.band_shape(n, sr, 30.0, 7500.0) / np.sqrt(signals.rfft_freqs(n, sr))
    diffuse = [signals.shaped_noise(rng, n, pink) for _ in range(2)]
    near = (m + local + level * _path(noise, sr, delay_s=rng.uniform(0.002, 0.008), gain_db=0.0, cutoff_hz=5000.0)
            + level * signals.db_gain(-10.0) * diffuse[0])
    far_scene = level * signals.db_gain(rng.uniform(*FAR_SCENE_DB))
    far = (_path(m, sr, delay_s=rng.uniform(0.005, 0.015), gain_db=rng.uniform(*FAR_MACHINE_DB), cutoff_hz=3000.0)
           + 0.5 * local + far_scene * noise + far_scene * signals.db_gain(-10.0) * diffuse[1])
    near = sp_fft.irfft(sp_fft.rfft(near) * signals.mic_response(rng, cond.get("mic", parts.spec.mic), n, sr), n)
    far = sp_fft.irfft(sp_fft.rfft(far) * signals.mic_response(rng, "1", n, sr), n)
    y = np.stack([machines.set_level(rng, near), machines.set_level(rng, far)])
    if return_info:
        return y, {"condition": dict(cond, noise=scene), "anomaly": parts.anomaly, "severity": parts.severity}
    return y


# --------------------------------------------------------------------------- 2025 supplemental clips
def n_supplemental(preset) -> int:
    """Supplemental clips of each kind per machine type: a tenth of the source training clips, at least 10."""
    return max(10, preset.n_source_train // 10)


def supplemental_seed(seed: int, machine: str, kind: str, index: int) -> np.random.SeedSequence:
    """The seed sequence of one supplemental clip, apart from every training and test clip's."""
    if kind not in _KIND_ID:
        raise ConfigError(f"kind must be one of {list(SUPPLEMENTAL_KINDS)}, got {kind!r}.")
    return np.random.SeedSequence([int(seed), machines.machine_spec(machine).machine_id, _SUPPLEMENTAL_SPLIT_ID,
                                   _KIND_ID[kind], int(index)])


def supplemental_name(kind: str, index: int) -> str:
    """``section_00_<kind>_source_<index>_noAttribute.wav``, the 2025 supplemental naming."""
    return f"section_00_{kind}_source_{int(index):04d}_noAttribute.wav"


def generate_supplemental(machine: str, kind: str, *, rng: np.random.Generator | int | None = None,
                          seconds: float = 10.0, sr: int = 16000, return_info: bool = False):
    """One 2025-style supplemental clip: the machine alone (``"machine"``) or its background alone (``"noise"``).

    Both come from a source-domain condition, through that condition's microphone, at -30 to -18 dBFS RMS.

    Returns
    -------
    ndarray of shape (round(seconds * sr),), float32; with ``return_info`` also ``{"condition": ...}``
    """
    if kind not in _KIND_ID:
        raise ConfigError(f"kind must be one of {list(SUPPLEMENTAL_KINDS)}, got {kind!r}.")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    parts = machines.machine_part(machine, domain="source", label="normal", attributes=None, rng=rng, seconds=seconds,
                            sr=sr, anomaly=None, severity=None)
    n, cond = parts.n, parts.condition
    y = parts.machine if kind == "machine" else parts.make_bg(parts.rng, n, sr)
    y = sp_fft.irfft(sp_fft.rfft(y) * signals.mic_response(parts.rng, cond.get("mic", parts.spec.mic), n, sr), n)
    y = machines.set_level(parts.rng, y)
    return (y, {"condition": dict(cond)}) if return_info else y
