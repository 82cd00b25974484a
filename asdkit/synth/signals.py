"""Signal building blocks of the synthetic machine sounds: shaped noise, tones, impacts, backgrounds, microphones.

Pure functions of a random generator and a length; :mod:`asdkit.synth.machines`
composes them into machine types. Changing any of them changes the bytes the
embedded dataset is written with.
"""
from __future__ import annotations

import functools
from typing import Callable, Sequence

import numpy as np
from scipy import fft as sp_fft

__all__ = [
    "rms", "to_unit_rms", "db_gain", "rfft_freqs", "band_shape", "log2_freqs", "bump", "shaped_noise", "random_walk",
    "rotation_phase", "tones", "carrier", "steady_tones", "harmonics", "ring", "place", "burst_envelope", "gate",
    "bg_hall", "bg_workshop", "bg_ventilation", "BACKGROUNDS", "MICROPHONES", "mic_response", "TWO_PI",
]

#: 2 pi.
TWO_PI = 2.0 * np.pi


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x)))) + 1e-12


def to_unit_rms(x: np.ndarray) -> np.ndarray:
    """Scale to unit RMS."""
    return x / rms(x)


def db_gain(value: float) -> float:
    return 10.0 ** (value / 20.0)


@functools.lru_cache(maxsize=8)
def rfft_freqs(n: int, sr: int) -> np.ndarray:
    """rfft bin frequencies (Hz), with bin 0 set to bin 1 so that log-frequency shapes stay finite."""
    f = np.fft.rfftfreq(n, 1.0 / sr)
    f[0] = f[1] if len(f) > 1 else 1.0
    f.flags.writeable = False
    return f


@functools.lru_cache(maxsize=64)
def _band_cached(n: int, sr: int, lo: float, hi: float, order: float) -> np.ndarray:
    f = rfft_freqs(n, sr)
    out = 1.0 / np.sqrt((1.0 + (lo / f) ** (2 * order)) * (1.0 + (f / hi) ** (2 * order)))
    out.flags.writeable = False
    return out


def band_shape(n: int, sr: int, lo: float, hi: float, order: float = 2.0) -> np.ndarray:
    """Smooth band-pass magnitude over the rfft bins of ``n`` samples (Butterworth-like shoulders)."""
    return _band_cached(n, sr, float(lo), float(hi), float(order))


@functools.lru_cache(maxsize=8)
def log2_freqs(n: int, sr: int) -> np.ndarray:
    out = np.log2(rfft_freqs(n, sr))
    out.flags.writeable = False
    return out


def bump(n: int, sr: int, fc: float, octaves: float, gain_db: float) -> np.ndarray:
    """Gain (linear) of a Gaussian bump of ``gain_db`` on a log-frequency axis, centred at ``fc``."""
    x = (log2_freqs(n, sr) - np.log2(fc)) / octaves
    return np.exp(gain_db * np.log(10.0) / 20.0 * np.exp(-0.5 * x * x))


def shaped_noise(rng: np.random.Generator, n: int, shape: np.ndarray) -> np.ndarray:
    """Noise with the magnitude spectrum ``shape`` (over rfft bins) and random phases, unit RMS."""
    angle = rng.random(len(shape)).astype(np.float32) * np.float32(TWO_PI)
    spec = shape * (np.cos(angle) + 1j * np.sin(angle))
    spec[0] = 0.0
    return to_unit_rms(sp_fft.irfft(spec, n))


def random_walk(rng: np.random.Generator, n: int, sr: int, rate: float) -> np.ndarray:
    """Slow random fluctuation of unit standard deviation, changing about ``rate`` times a second."""
    k = int(n / sr * rate) + 2
    points = rng.standard_normal(k)
    step = 16
    coarse = np.interp(np.linspace(0.0, k - 1.0, n // step + 1), np.arange(k), points)
    return np.repeat(coarse, step)[:n]


def rotation_phase(rng: np.random.Generator, f0: float, n: int, sr: int, jitter: float, rate: float) -> np.ndarray:
    """Running phase (rad) of a rotation at ``f0`` Hz whose speed wanders by ``jitter`` (relative)."""
    inst = f0 * (1.0 + jitter * random_walk(rng, n, sr, rate))
    return TWO_PI * np.cumsum(inst) / sr + rng.uniform(0.0, TWO_PI)


def tones(rng: np.random.Generator, phase: np.ndarray, levels_db: Sequence[float], sr: int,
           f0: float) -> np.ndarray:
    """Harmonic series ``sum_h 10**(level_h/20) sin(h * phase + random)`` for h = 1, 2, ...

    Harmonics above 0.45 ``sr`` (at the nominal fundamental ``f0``) are left out.
    Computed with complex powers of ``exp(i phase)`` (one cosine and one sine in
    all), which is much faster than a sine per harmonic.
    """
    cycles = phase * (1.0 / TWO_PI)
    wrapped = ((cycles - np.floor(cycles)) * TWO_PI).astype(np.float32)
    z = np.empty(len(phase), dtype=np.complex64)
    z.real, z.imag = np.cos(wrapped), np.sin(wrapped)
    return harmonics(rng, z, levels_db, sr, f0)


@functools.lru_cache(maxsize=8)
def carrier(n: int, sr: int, f0: float) -> np.ndarray:
    """``exp(i 2 pi f0 t)`` over ``n`` samples (a steady tone, e.g. mains hum), read-only."""
    z = np.exp(1j * TWO_PI * f0 * np.arange(n) / sr).astype(np.complex64)
    z.flags.writeable = False
    return z


def steady_tones(rng: np.random.Generator, f0: float, levels_db: Sequence[float], n: int, sr: int) -> np.ndarray:
    """Like :func:`tones` for a fundamental of constant frequency ``f0`` (no jitter)."""
    return harmonics(rng, carrier(n, sr, float(f0)), levels_db, sr, f0)


def harmonics(rng: np.random.Generator, z: np.ndarray, levels_db: Sequence[float], sr: int,
               f0: float) -> np.ndarray:
    power = z.copy()
    acc = np.zeros(len(z), dtype=np.complex64)
    for h, level in enumerate(levels_db, start=1):
        offset = rng.uniform(0.0, TWO_PI)
        if h * f0 < 0.45 * sr:
            acc += np.complex64(db_gain(level) * np.exp(1j * offset)) * power
        if h < len(levels_db):
            np.multiply(power, z, out=power)
    return acc.imag.astype(np.float64)


def ring(sr: int, freqs: Sequence[float], taus: Sequence[float], amps: Sequence[float],
          rng: np.random.Generator, seconds: float, attack: float = 5e-4) -> np.ndarray:
    """A decaying resonant impulse: a sum of damped sinusoids (one per mode)."""
    t = np.arange(int(seconds * sr)) / sr
    out = np.zeros_like(t)
    for fm, tau, a in zip(freqs, taus, amps):
        offset = rng.uniform(0, TWO_PI)
        if fm < 0.45 * sr:
            out += a * np.exp(-t / tau) * np.sin(TWO_PI * fm * t + offset)
    return out * (1.0 - np.exp(-t / attack))


def place(n: int, sr: int, times: np.ndarray, gains: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Add ``kernel`` at each time (s, may be negative) with its gain; the result has ``n`` samples."""
    out = np.zeros(n)
    k = len(kernel)
    for t, g in zip(np.asarray(times), np.asarray(gains)):
        i = int(round(t * sr))
        a, b = max(i, 0), min(i + k, n)
        if b > a and g:
            out[a:b] += g * kernel[a - i:b - i]
    return out


def burst_envelope(rng: np.random.Generator, n: int, sr: int, rate: float, length: tuple[float, float]) -> np.ndarray:
    """Envelope of short Hann-shaped bursts at random (Poisson) times."""
    count = rng.poisson(rate * n / sr)
    starts, durations = rng.uniform(0, n / sr, count), rng.uniform(*length, count)
    env = np.zeros(n)
    for start, dur in zip(starts, durations):
        a, m = int(start * sr), max(int(dur * sr), 4)
        seg = np.hanning(m)[: max(0, min(m, n - a))]
        env[a:a + len(seg)] += seg
    return env


def gate(n: int, sr: int, opens: np.ndarray, closes: np.ndarray, ramp: float) -> np.ndarray:
    """0..1 envelope that is 1 between each open and close time, with linear ramps of ``ramp`` s."""
    g = np.zeros(n)
    for o, c in zip(opens, closes):
        a, b = max(int(o * sr), 0), min(int(c * sr), n)
        if b > a:
            g[a:b] = 1.0
    k = max(int(ramp * sr), 1)
    c = np.concatenate([np.zeros(k), np.cumsum(g)])
    return (c[k:] - c[:-k]) / k

# --------------------------------------------------------------------------- backgrounds and microphones
def bg_hall(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Hall hum: pink noise plus 50 Hz mains hum harmonics."""
    pink = shaped_noise(rng, n, band_shape(n, sr, 25.0, 7000.0) / np.sqrt(rfft_freqs(n, sr)))
    hum = steady_tones(rng, 50.0, [0.0, -6.0, -12.0, -18.0], n, sr)
    return to_unit_rms(pink + 0.5 * to_unit_rms(hum))


def bg_workshop(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Workshop: low rumble plus modulated mid-band clatter and voices."""
    rumble = shaped_noise(rng, n, band_shape(n, sr, 20.0, 400.0) / rfft_freqs(n, sr))
    chatter = shaped_noise(rng, n, band_shape(n, sr, 300.0, 3000.0, 1.5))
    mod = np.clip(1.0 + 0.8 * random_walk(rng, n, sr, 5.0), 0.05, None)
    return to_unit_rms(rumble + 0.7 * to_unit_rms(chatter * mod))


def bg_ventilation(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Ventilation: broadband rushing noise with a broad 1.5 kHz peak and a slow swell."""
    shape = band_shape(n, sr, 60.0, 6000.0, 1.0) * bump(n, sr, 1500.0, 1.2, 8.0)
    return to_unit_rms(shaped_noise(rng, n, shape) * (1.0 + 0.15 * random_walk(rng, n, sr, 0.5)))


#: Background noise types: name -> (generator, (low, high) machine-to-background ratio in dB).
BACKGROUNDS: dict[str, tuple[Callable[..., np.ndarray], tuple[float, float]]] = {
    "A": (bg_hall, (11.0, 15.0)),
    "B": (bg_workshop, (6.0, 10.0)),
    "C": (bg_ventilation, (1.0, 9.0)),
}

#: Microphone positions: name -> (spectral tilt dB/octave re 1 kHz, resonance Hz,
#: resonance gain dB, low cut Hz). Each clip deviates a little at random.
MICROPHONES: dict[str, tuple[float, float, float, float]] = {
    "1": (0.0, 2500.0, 3.0, 40.0),
    "2": (-1.5, 800.0, 5.0, 60.0),
    "3": (1.5, 4000.0, 6.0, 150.0),
}


def mic_response(rng: np.random.Generator, mic: str, n: int, sr: int) -> np.ndarray:
    """Magnitude response (over rfft bins) of a microphone position, with a random per-clip deviation."""
    tilt, fc, gain, lowcut = MICROPHONES[mic]
    tilt += rng.normal(0.0, 0.15)
    gain += rng.normal(0.0, 0.6)
    fc *= np.exp(rng.normal(0.0, 0.03))
    slope = np.exp(tilt * np.log(10.0) / 20.0 * (log2_freqs(n, sr) - np.log2(1000.0)))
    return slope * bump(n, sr, fc, 0.8, gain) * band_shape(n, sr, lowcut, 0.49 * sr, 2.0)
