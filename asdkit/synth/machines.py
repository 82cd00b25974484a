"""The synthetic machine types of the embedded dataset and how their sound is made.

:func:`generate_clip` makes one clip in memory; :func:`asdkit.synth.synthesize`
writes a whole dataset of them in the DCASE layout.

Four machine types with different sound physics are registered in
:data:`MACHINES` (the names are asdkit's own, not DCASE's):

``SynFan`` (rotating machine)
    Harmonics of the blade-pass frequency (7 blades x shaft rate) with slight
    speed jitter, weak shaft-rate harmonics and broadband airflow noise whose
    hump follows the speed. Attributes ``spd`` (speed) and ``mic`` (microphone
    position): source 1200/1450/1700 rpm x mic 1/2, target 2000/2250/2500/2750
    rpm x mic 3/2.
    Anomalies: ``imbalance`` (stronger 1x/2x shaft harmonics), ``bearing``
    (faint high-frequency noise bursts), ``blade`` (a damaged blade breaks the
    7-fold symmetry: rotor orders between the blade-pass harmonics), ``clog``
    (duller, louder airflow).
``SynGearbox`` (gear mesh)
    Mesh frequency = 29 teeth x shaft rate and its harmonics, amplitude
    modulated at the shaft rate (sidebands), shaft harmonics, motor hum and
    broadband noise; load deepens the modulation and raises the higher mesh
    harmonics and the noise. Attributes ``load`` and ``spd``: source
    0/20/40 kg x 900/1200 rpm, target 50/60/70/80 kg x 1050/1350 rpm.
    Anomalies: ``chipped_tooth`` (a once-per-revolution impulse), ``wear``
    (stronger sidebands), ``misalignment`` (twice-per-revolution frequency
    modulation and a stronger 2x tone), ``lubrication`` (raised high-frequency
    noise).
``SynPress`` (periodic impacts)
    A stamping press: decaying multi-mode resonant impacts at the stroke rate
    over a hydraulic pump whine. Attributes ``spm`` (strokes per minute) and
    ``bg`` (background): source 90/120 spm x background A/B, target
    140/160/180/200 spm x background C (louder, more variable ventilation
    noise) or B.
    Anomalies: ``worn_die`` (lower, longer resonances), ``irregular_timing``
    (stroke jitter and missed strokes), ``loose_part`` (a rattle after each
    impact), ``hydraulic_leak`` (a faint continuous hiss).
``SynValve`` (transients)
    A solenoid valve: open and close clicks, flow hiss while open and coil buzz,
    in a repeating cycle. Its attributes are concealed (``noAttribute`` in the
    names, as for several DCASE 2024 machines), but the domains still differ
    physically: source cycles of 700/1000/1300 ms (duty 40/50/35 %, 3/3/2 bar),
    target 500/600 ms x 45/50 % x 4/5 bar (faster and brighter).
    Anomalies: ``leak`` (hiss while closed), ``sticking`` (late, bouncing
    openings), ``weak_spring`` (soft closing with chatter), ``whistle`` (a
    faint tone in the flow).

Every clip also carries background noise (hall hum ``A``, workshop ``B`` or
ventilation ``C``) at a random level, a microphone colouring (per position,
with a small random per-clip deviation) and a random gain, and is written at
-18 to -30 dBFS RMS with its peak below -1 dBFS. As in DCASE, the source
domain has several operating conditions and 990 training clips, the target
domain other conditions and 10. As in real DCASE data, those ten target
clips are spread over eight conditions (a grid of each machine's target
settings), so ten clips describe the target domain loosely: statistics taken
from them alone are noisy, which is what per-domain scoring meets on real
recordings (see :func:`asdkit.scoring.shrink_toward`). Each anomalous clip has
one anomaly kind, drawn at random, with a severity drawn uniformly from [0, 1]:
severity 0 is about inaudible to the reference detector, severity 1 clearly
detectable.
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Callable, Mapping, NamedTuple, Sequence

import numpy as np
from scipy import fft as sp_fft

from asdkit.constants import DOMAINS
from asdkit.errors import ConfigError
from asdkit.synth.signals import (
    BACKGROUNDS,
    MICROPHONES,
    TWO_PI,
    band_shape,
    bump,
    burst_envelope,
    db_gain,
    gate,
    mic_response,
    place,
    random_walk,
    rfft_freqs,
    ring,
    rms,
    rotation_phase,
    shaped_noise,
    steady_tones,
    to_unit_rms,
    tones,
)

__all__ = ["MachineSpec", "MACHINES", "BACKGROUNDS", "MICROPHONES", "DOMAINS", "LABELS", "generate_clip",
           "machine_spec", "machine_part", "MachinePart", "set_level"]

#: The domains and labels of the clips, in the order of their ids in the clip seeds.
LABELS = ("normal", "anomaly")
_DOMAIN_ID = {d: i for i, d in enumerate(DOMAINS)}
_LABEL_ID = {lab: i for i, lab in enumerate(LABELS)}
#: Peak level the written clips never exceed (-1 dBFS), so int16 never clips.
_PEAK_LIMIT = 10 ** (-1.0 / 20)


# --------------------------------------------------------------------------- condition values
def _number(cond: Mapping[str, str], name: str, unit: str, *, low: float = 0.0, high: float = np.inf) -> float:
    """Read a numeric condition value such as ``"1450rpm"``; it must lie in (low, high]."""
    value = str(cond[name])
    m = re.fullmatch(r"(\d+(?:\.\d+)?)" + re.escape(unit), value)
    if not m or not low < float(m.group(1)) <= high:
        raise ConfigError(f"attribute {name}={value!r}: expected a number in ({low:g}, {high:g}] followed by "
                          f"{unit!r}, e.g. '{name}': '100{unit}'.")
    return float(m.group(1))


def _choice(cond: Mapping[str, str], name: str, choices: Mapping) -> str:
    value = str(cond[name])
    if value not in choices:
        raise ConfigError(f"attribute {name}={value!r}: choose one of {sorted(choices)}.")
    return value


# --------------------------------------------------------------------------- machines
# Each renderer takes two generators: ``rng`` for everything a normal clip has and
# ``arng`` for the anomaly alone, so that the same seed gives the same clip with and
# without an anomaly (``generate_clip(..., label="anomaly", anomaly=..., severity=...)``).
def _render_fan(rng, arng, cond, anomaly, sev, n, sr):
    """Rotating fan: blade-pass harmonics, shaft harmonics and airflow noise."""
    rpm = _number(cond, "spd", "rpm", low=100.0, high=6000.0)
    blades = 7
    fr = rpm / 60.0 * rng.uniform(0.99, 1.01)
    phase = rotation_phase(rng, fr, n, sr, jitter=0.004, rate=1.0)
    bpf_db = np.array([0.0, -5.0, -9.0, -13.0, -17.0, -21.0]) + rng.normal(0.0, 1.0, 6)
    tonal = tones(rng, blades * phase, bpf_db, sr, blades * fr) * (1.0 + 0.05 * random_walk(rng, n, sr, 3.0))
    shaft_db = np.array([-26.0, -32.0, -36.0]) + rng.normal(0.0, 1.5, 3)
    if anomaly == "imbalance":
        shaft_db[:2] += np.array([6.0 + 20.0 * sev, 3.0 + 12.0 * sev])
    tonal += tones(rng, phase, shaft_db, sr, fr)
    if anomaly == "blade":
        # a damaged blade breaks the 7-fold symmetry: rotor orders between the blade-pass harmonics
        orders = np.arange(1, 13)
        levels = np.where(orders % blades == 0, -120.0, -22.0 + 16.0 * sev - 0.5 * orders)
        tonal += tones(arng, phase, levels, sr, fr)
    fc = 350.0 * (rpm / 1450.0) ** 1.2 * np.exp(rng.normal(0.0, 0.05))
    noise_db = -3.0 + 12.0 * np.log10(rpm / 1450.0) + rng.normal(0.0, 0.7)
    if anomaly == "clog":
        fc *= 0.9 - 0.3 * sev
        noise_db += 1.0 + 5.0 * sev
    air_shape = band_shape(n, sr, 40.0, 7000.0, 1.0) / np.sqrt(rfft_freqs(n, sr)) * bump(n, sr, fc, 1.3, 12.0)
    y = to_unit_rms(tonal) + db_gain(noise_db) * shaped_noise(rng, n, air_shape)
    if anomaly == "bearing":
        hf = shaped_noise(arng, n, band_shape(n, sr, 3500.0, 7000.0, 3.0))
        env = burst_envelope(arng, n, sr, rate=arng.uniform(2.0, 6.0), length=(0.01, 0.04))
        y = y + db_gain(-23.0 + 10.0 * sev) * hf * env
    return y


def _render_gearbox(rng, arng, cond, anomaly, sev, n, sr):
    """Gear stage: mesh harmonics modulated at the shaft rate, motor hum, broadband noise."""
    load = _number(cond, "load", "kg", low=-1.0, high=200.0)
    rpm = _number(cond, "spd", "rpm", low=100.0, high=3000.0)
    teeth = 29
    fs = rpm / 60.0 * rng.uniform(0.995, 1.005)
    shaft = rotation_phase(rng, fs, n, sr, jitter=0.003, rate=1.5)
    depth = (0.08 + 0.0025 * load) * rng.uniform(0.9, 1.1)
    if anomaly == "wear":
        depth *= 1.2 + 2.3 * sev
    mod = 1.0 + depth * tones(rng, shaft, [0.0, -6.0, -12.0], sr, fs)
    mesh = teeth * shaft
    if anomaly == "misalignment":
        mesh = mesh + (0.02 + 0.2 * sev) * np.sin(2.0 * shaft + arng.uniform(0, TWO_PI))
    mesh_db = (np.array([0.0, -7.0, -13.0, -19.0]) + load / 100.0 * np.array([0.0, 3.0, 5.0, 6.0])
               + rng.normal(0.0, 1.0, 4))
    tonal = tones(rng, mesh, mesh_db, sr, teeth * fs) * mod
    shaft_db = np.array([-28.0, -34.0]) + rng.normal(0.0, 1.0, 2)
    if anomaly == "misalignment":
        shaft_db[1] += 1.0 + 6.0 * sev
    tonal += tones(rng, shaft, shaft_db, sr, fs)
    tonal += db_gain(-22.0) * steady_tones(rng, 100.0, [0.0], n, sr)  # motor hum
    noise_db = -14.0 + 0.06 * load + rng.normal(0.0, 0.7)
    pink = band_shape(n, sr, 80.0, 7000.0, 1.0) / np.sqrt(rfft_freqs(n, sr))
    y = to_unit_rms(tonal) + db_gain(noise_db) * shaped_noise(rng, n, pink)
    if anomaly == "lubrication":
        y = y + db_gain(-28.0 + 14.0 * sev) * shaped_noise(arng, n, band_shape(n, sr, 2000.0, 6000.0, 2.0))
    if anomaly == "chipped_tooth":
        kernel = ring(sr, [arng.uniform(2600, 3400), arng.uniform(5000, 6000)], [0.0025, 0.0015], [1.0, 0.5],
                       arng, 0.02)
        angle = arng.uniform(0, TWO_PI)
        hits = np.flatnonzero(np.diff(np.floor((shaft - angle) / TWO_PI)) > 0) / sr
        # scale so that the impulse train has the RMS 10**(level/20) relative to the unit machine sound
        kernel = kernel / rms(kernel) * db_gain(-40.0 + 14.0 * sev) * np.sqrt(sr / fs / len(kernel))
        y = y + place(n, sr, hits, np.ones(len(hits)), kernel)
    return y


def _render_press(rng, arng, cond, anomaly, sev, n, sr):
    """Stamping press: resonant impacts at the stroke rate over a hydraulic pump whine."""
    spm = _number(cond, "spm", "spm", low=10.0, high=600.0)
    period = 60.0 / spm
    modes = np.array([520.0, 1340.0, 2650.0, 4100.0]) * rng.uniform(0.98, 1.02, 4)
    taus = np.array([0.12, 0.06, 0.035, 0.02])
    amps = np.array([1.0, 0.8, 0.6, 0.4]) * rng.uniform(0.8, 1.2, 4)
    if anomaly == "worn_die":
        modes[:3] *= 1.0 - (0.005 + 0.03 * sev)
        taus = taus * (1.0 + 0.4 * sev)
    kernel = ring(sr, list(modes) + [70.0], list(taus) + [0.04], list(amps) + [1.2], rng, 0.5)
    start = rng.uniform(-period, 0.0)
    count = int(np.ceil((n / sr - start) / period)) + 1
    times = start + np.arange(count) * period + rng.normal(0.0, 0.004, count)
    gains = rng.uniform(0.85, 1.15, count)
    if anomaly == "irregular_timing":
        times = times + arng.normal(0.0, 0.03 + 0.1 * sev, count)
        gains = gains * (arng.random(count) >= 0.1 + 0.4 * sev)
    impacts = place(n, sr, times, gains, kernel)
    if anomaly == "loose_part":
        rattle = ring(sr, [arng.uniform(5000, 6000)], [0.004], [1.0], arng, 0.03)
        rattle *= db_gain(-22.0 + 18.0 * sev) * np.max(np.abs(kernel)) / np.max(np.abs(rattle))
        r_times = np.concatenate([times + arng.uniform(0.015, 0.07, count) for _ in range(2)])
        r_gains = np.concatenate([gains * arng.uniform(0.3, 1.0, count) for _ in range(2)])
        impacts = impacts + place(n, sr, r_times, r_gains, rattle)
    pump_f = 1450.0 / 60.0 * 9.0 * rng.uniform(0.99, 1.01)
    pump = tones(rng, rotation_phase(rng, pump_f, n, sr, jitter=0.002, rate=1.0), [0.0, -5.0, -10.0, -15.0], sr, pump_f)
    rumble = shaped_noise(rng, n, band_shape(n, sr, 20.0, 300.0))
    y = to_unit_rms(impacts) + db_gain(-18.0 + rng.normal(0.0, 1.0)) * to_unit_rms(pump) + db_gain(-22.0) * rumble
    if anomaly == "hydraulic_leak":
        y = y + db_gain(-40.0 + 18.0 * sev) * shaped_noise(arng, n, band_shape(n, sr, 2500.0, 7000.0, 2.0))
    return y


def _render_valve(rng, arng, cond, anomaly, sev, n, sr):
    """Solenoid valve: open/close clicks, flow hiss while open and coil buzz, in a repeating cycle."""
    cycle = _number(cond, "cyc", "ms", low=50.0, high=10000.0) / 1000.0
    duty = _number(cond, "duty", "pct", low=0.0, high=95.0) / 100.0
    pressure = _number(cond, "prs", "bar", low=0.0, high=20.0)
    start = rng.uniform(-cycle, 0.0)
    count = int(np.ceil((n / sr - start) / cycle)) + 1
    opens = start + np.arange(count) * cycle + rng.normal(0.0, 0.003, count)
    closes = opens + duty * cycle + rng.normal(0.0, 0.003, count)
    open_gain = rng.uniform(0.9, 1.1, count)
    close_gain = 1.6 * rng.uniform(0.9, 1.1, count)
    if anomaly == "sticking":
        late = arng.random(count) < 0.4 + 0.6 * sev
        opens = opens + late * arng.exponential(0.02 + 0.12 * sev, count)
    g = gate(n, sr, opens, closes, ramp=0.015)
    hiss_shape = band_shape(n, sr, 500.0, 7500.0, 1.5) * bump(n, sr, 1800.0 * np.sqrt(pressure / 3.0), 1.0, 9.0)
    y = db_gain(6.0 * np.log2(pressure / 3.0)) * shaped_noise(rng, n, hiss_shape) * g
    open_click = ring(sr, [2200.0 * rng.uniform(0.97, 1.03), 5200.0], [0.005, 0.002], [1.0, 0.4], rng, 0.04)
    close_click = ring(sr, [3300.0 * rng.uniform(0.97, 1.03), 6100.0], [0.0035, 0.0015], [1.0, 0.5], rng, 0.04)
    open_click *= 4.0 / np.max(np.abs(open_click))
    close_click *= 4.0 / np.max(np.abs(close_click))
    clicks = place(n, sr, opens, open_gain, open_click)
    if anomaly == "sticking":
        bounce = arng.random(count) < 0.2 + 0.5 * sev
        clicks += place(n, sr, opens[bounce] + arng.uniform(0.004, 0.02, int(bounce.sum())),
                         0.5 * open_gain[bounce], open_click)
    if anomaly == "weak_spring":
        close_gain = close_gain * (0.85 - 0.75 * sev)
        for _ in range(3):
            clicks += place(n, sr, closes + arng.uniform(0.005, 0.03, count),
                             close_gain * arng.uniform(0.15, 0.4, count) * (0.5 + 2.0 * sev), close_click)
    clicks += place(n, sr, closes, close_gain, close_click)
    coil = steady_tones(rng, 100.0, [0.0, -6.0, -12.0], n, sr)
    y = y + clicks + db_gain(-30.0) * coil * g
    if anomaly == "leak":
        y = y + db_gain(-36.0 + 16.0 * sev) * shaped_noise(arng, n, hiss_shape) * (1.0 - g)
    if anomaly == "whistle":
        fw = arng.uniform(2500.0, 5000.0)
        tone = tones(arng, rotation_phase(arng, fw, n, sr, jitter=0.005, rate=4.0), [0.0], sr, fw)
        y = y + db_gain(-28.0 + 20.0 * sev) * tone * g
    return y


def _grid(**values: Sequence[str]) -> tuple[tuple[tuple[str, str], ...], ...]:
    """All combinations of attribute values, as tuples of (param, value) pairs, in a fixed order."""
    names = list(values)
    return tuple(tuple(zip(names, combo)) for combo in itertools.product(*(values[k] for k in names)))


@dataclass(frozen=True)
class MachineSpec:
    """One synthetic machine type.

    Attributes
    ----------
    name : str
        Folder name, e.g. ``"SynFan"``.
    machine_id : int
        Stable number used in the per-clip seed (never a dict position).
    physics : str
        One line on how the sound is made.
    source_conditions, target_conditions : tuple
        Operating conditions of each domain, each a tuple of ``(param, value)``
        pairs; clips cycle through them in order.
    anomalies : tuple of str
        The anomaly kinds, one drawn at random per anomalous clip.
    attributes_written : bool
        False for machines whose attributes are concealed (``noAttribute``); their
        conditions still shape the sound.
    mic : str
        Microphone position used when the conditions do not name one.
    background : str
        Background type used when the conditions do not name one.
    render : callable
        ``render(rng, arng, condition, anomaly, severity, n_samples, sr) -> ndarray``,
        the machine's own sound before background, microphone and gain; ``arng``
        drives the anomaly alone, ``anomaly`` is None for a normal clip.
    """

    name: str
    machine_id: int
    physics: str
    source_conditions: tuple
    target_conditions: tuple
    anomalies: tuple[str, ...]
    attributes_written: bool
    mic: str
    background: str
    render: Callable[..., np.ndarray] = field(repr=False, compare=False)

    @property
    def params(self) -> tuple[str, ...]:
        """Names of the condition parameters, in name order."""
        return tuple(k for k, _ in self.source_conditions[0])

    def conditions(self, domain: str) -> list[dict[str, str]]:
        """The operating conditions of a domain, as dicts."""
        if domain not in _DOMAIN_ID:
            raise ConfigError(f"domain must be 'source' or 'target', got {domain!r}.")
        conds = self.source_conditions if domain == "source" else self.target_conditions
        return [dict(c) for c in conds]


#: The registered machine types, by name (see the module docstring).
MACHINES: dict[str, MachineSpec] = {spec.name: spec for spec in (
    MachineSpec(
        name="SynFan", machine_id=1,
        physics="rotating fan: blade-pass harmonics with speed jitter, shaft harmonics, airflow noise",
        source_conditions=_grid(spd=("1200rpm", "1450rpm", "1700rpm"), mic=("1", "2")),
        target_conditions=_grid(spd=("2000rpm", "2250rpm", "2500rpm", "2750rpm"), mic=("3", "2")),
        anomalies=("imbalance", "bearing", "blade", "clog"),
        attributes_written=True, mic="1", background="A", render=_render_fan),
    MachineSpec(
        name="SynGearbox", machine_id=2,
        physics="gear mesh: 29 teeth x shaft rate and harmonics, sidebands at the shaft rate",
        source_conditions=_grid(load=("0kg", "20kg", "40kg"), spd=("900rpm", "1200rpm")),
        target_conditions=_grid(load=("50kg", "60kg", "70kg", "80kg"), spd=("1050rpm", "1350rpm")),
        anomalies=("chipped_tooth", "wear", "misalignment", "lubrication"),
        attributes_written=True, mic="2", background="A", render=_render_gearbox),
    MachineSpec(
        name="SynPress", machine_id=3,
        physics="stamping press: decaying multi-mode resonant impacts at a stroke rate over a pump whine",
        source_conditions=_grid(spm=("90spm", "120spm"), bg=("A", "B")),
        target_conditions=_grid(spm=("140spm", "160spm", "180spm", "200spm"), bg=("C", "B")),
        anomalies=("worn_die", "irregular_timing", "loose_part", "hydraulic_leak"),
        attributes_written=True, mic="1", background="A", render=_render_press),
    MachineSpec(
        name="SynValve", machine_id=4,
        physics="solenoid valve: open/close clicks and flow hiss in a repeating cycle",
        source_conditions=(
            (("cyc", "700ms"), ("duty", "40pct"), ("prs", "3bar")),
            (("cyc", "1000ms"), ("duty", "50pct"), ("prs", "3bar")),
            (("cyc", "1300ms"), ("duty", "35pct"), ("prs", "2bar")),
        ),
        target_conditions=_grid(cyc=("500ms", "600ms"), duty=("45pct", "50pct"), prs=("4bar", "5bar")),
        anomalies=("leak", "sticking", "weak_spring", "whistle"),
        attributes_written=False, mic="1", background="A", render=_render_valve),
)}


def machine_spec(machine: str | MachineSpec) -> MachineSpec:
    if isinstance(machine, MachineSpec):
        return machine
    if isinstance(machine, str) and machine in MACHINES:
        return MACHINES[machine]
    raise ConfigError(f"unknown synthetic machine type {machine!r}; choose from {list(MACHINES)}.")


# --------------------------------------------------------------------------- one clip
def generate_clip(machine: str, *, domain: str = "source", label: str = "normal",
                  attributes: Mapping[str, str] | None = None, rng: np.random.Generator | int | None = None,
                  seconds: float = 10.0, sr: int = 16000, anomaly: str | None = None,
                  severity: float | None = None, return_info: bool = False):
    """Synthesise one clip in memory.

    Parameters
    ----------
    machine : str
        A machine type of :data:`MACHINES`, e.g. ``"SynFan"``.
    domain : {"source", "target"}
        The domain; it decides which conditions are drawn when ``attributes`` is
        None (for ``noAttribute`` machines, the concealed conditions).
    label : {"normal", "anomaly"}
    attributes : dict of str to str, optional
        The operating condition, e.g. ``{"spd": "1450rpm", "mic": "1"}`` for
        ``SynFan``; numeric values may be any number with the unit. For machines
        with concealed attributes the concealed condition may be given (see
        :attr:`MachineSpec.source_conditions`). None or ``{}`` draws one of the
        domain's conditions at random.
    rng : numpy.random.Generator or int, optional
        Source of randomness (an int seeds a new generator). None draws fresh
        entropy; pass a generator for reproducible clips.
    seconds : float, default 10.0
        Clip length.
    sr : int, default 16000
        Sample rate.
    anomaly : str, optional
        For ``label="anomaly"``: force this anomaly kind (one of the machine's
        ``anomalies``); by default one is drawn at random.
    severity : float, optional
        For ``label="anomaly"``: severity in [0, 1]; by default drawn uniformly.
    return_info : bool, default False
        Also return a dict with the condition, anomaly kind and severity used.

    Returns
    -------
    ndarray of shape (round(seconds * sr),), float32
        The waveform, peak below -1 dBFS. With ``return_info``, ``(waveform, info)``.

    Raises
    ------
    ConfigError
        Unknown machine, domain, label, attribute or anomaly kind.

    Examples
    --------
    >>> import numpy as np
    >>> y = generate_clip("SynFan", domain="target", label="anomaly",
    ...                   rng=np.random.default_rng(0), seconds=2.0)
    >>> y.shape, bool(np.abs(y).max() < 1.0)
    ((32000,), True)
    """
    parts = machine_part(machine, domain=domain, label=label, attributes=attributes, rng=rng, seconds=seconds,
                          sr=sr, anomaly=anomaly, severity=severity)
    y, rng, cond, n = parts.machine, parts.rng, parts.condition, parts.n
    y = y + db_gain(-rng.uniform(*parts.snr_range)) * parts.make_bg(rng, n, sr)
    y = sp_fft.irfft(sp_fft.rfft(y) * mic_response(rng, cond.get("mic", parts.spec.mic), n, sr), n)
    y = set_level(rng, y)
    if return_info:
        return y, {"condition": dict(cond), "anomaly": parts.anomaly, "severity": parts.severity}
    return y


class MachinePart(NamedTuple):
    """What :func:`generate_clip` draws before the background: the machine's own sound and its condition."""

    spec: MachineSpec
    machine: np.ndarray
    rng: np.random.Generator
    condition: dict
    anomaly: str | None
    severity: float
    n: int
    make_bg: Callable[..., np.ndarray]
    snr_range: tuple[float, float]


def set_level(rng: np.random.Generator, y: np.ndarray) -> np.ndarray:
    """Scale to a random -30 to -18 dBFS RMS, peak below -1 dBFS; float32."""
    y = y * (db_gain(rng.uniform(-30.0, -18.0)) / rms(y))
    peak = float(np.max(np.abs(y)))
    if peak > _PEAK_LIMIT:
        y *= _PEAK_LIMIT / peak
    return y.astype(np.float32)


def machine_part(machine, *, domain, label, attributes, rng, seconds, sr, anomaly, severity) -> MachinePart:
    """Check the arguments of :func:`generate_clip` and draw the machine's own sound (unit RMS)."""
    spec = machine_spec(machine)
    if label not in _LABEL_ID:
        raise ConfigError(f"label must be 'normal' or 'anomaly', got {label!r}.")
    conditions = spec.conditions(domain)
    if not np.isfinite(seconds) or seconds <= 0.1:
        raise ConfigError(f"seconds={seconds!r}: must be a finite length above 0.1 s.")
    if not isinstance(sr, (int, np.integer)) or sr < 8000:
        raise ConfigError(f"sr={sr!r}: must be an integer sample rate of at least 8000 Hz.")
    if label == "normal" and (anomaly is not None or severity is not None):
        raise ConfigError("anomaly and severity apply to label='anomaly' only.")
    if anomaly is not None and anomaly not in spec.anomalies:
        raise ConfigError(f"anomaly={anomaly!r} is not an anomaly of {spec.name}; "
                          f"choose one of {list(spec.anomalies)}.")
    if severity is not None and not 0.0 <= severity <= 1.0:
        raise ConfigError(f"severity={severity!r}: must lie in [0, 1].")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    n = int(round(seconds * sr))

    if attributes:
        cond = {str(k): str(v) for k, v in attributes.items()}
        if sorted(cond) != sorted(spec.params):
            raise ConfigError(f"{spec.name} attributes must name exactly {list(spec.params)}, got {sorted(cond)}.")
    else:
        cond = conditions[int(rng.integers(len(conditions)))]
    for name, table in (("mic", MICROPHONES), ("bg", BACKGROUNDS)):
        if name in cond:
            _choice(cond, name, table)

    # the anomaly has its own stream, so the same seed gives the same clip with and without it
    arng = np.random.default_rng(rng.integers(0, 2**62, size=4))
    drawn_kind = spec.anomalies[int(arng.integers(len(spec.anomalies)))]
    drawn_sev = float(arng.random())
    kind, sev = None, float("nan")
    if label == "anomaly":
        kind = anomaly if anomaly is not None else drawn_kind
        sev = float(severity) if severity is not None else drawn_sev

    y = spec.render(rng, arng, cond, kind, sev, n, sr)
    y = to_unit_rms(np.asarray(y, dtype=np.float64))
    make_bg, snr_range = BACKGROUNDS[cond.get("bg", spec.background)]
    return MachinePart(spec, y, rng, cond, kind, sev, n, make_bg, snr_range)
