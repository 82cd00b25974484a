"""OEVAE training throughput: 2-s log-mel segments per second through f_FE, g_machine and the VAE.

For each preset, builds the OEVAE network and times optimiser steps
(:func:`asdkit.models.oevae.train.oevae_optimizer`, the training run's Adam) of the
joint loss (:func:`asdkit.models.oevae.train.oevae_loss`, Mixup on) on random segments of
the preset's input size (half normal, half pseudo-anomaly), after one warm-up
step. Prints segments/s, seconds per step and what an epoch over a paper-size
machine type (8 000 segments plus SMOTE) would take at that rate.

    python bench/bench_oevae.py [--presets quick cpu paper] [--steps N] [--device auto] [--threads N]

Measured on the development machine (2 cores, idle, 2026-11-24): see README, *OEVAE*.
"""
from __future__ import annotations

import argparse
import sys
import time

import torch

from asdkit.models.oevae.config import OEVAE_PRESETS
from asdkit.models.oevae.torch_model import OEVAENet
from asdkit.models.oevae.train import oevae_loss, oevae_optimizer
from asdkit.training.engine import seeded, select_device


def bench(preset: str, steps: int, device: torch.device) -> dict:
    cfg = OEVAE_PRESETS[preset]
    fc = cfg.feature_config
    n_frames = fc.n_frames
    with seeded(0):
        net = OEVAENet(cfg)
    net.to(device).train()
    opt = oevae_optimizer(net.parameters(), cfg.lr, vae=net.vae, lambda_vae=cfg.lambda_vae)
    half = cfg.batch_size // 2
    g = torch.Generator().manual_seed(0)
    x = torch.randn(half, fc.n_mels, n_frames, generator=g).to(device)
    xo = torch.randn(half, fc.n_mels, n_frames, generator=g).to(device)
    prior = torch.randn(half, generator=g).to(device)

    def step(i):
        opt.zero_grad(set_to_none=True)
        loss, _ = oevae_loss(net, x, prior, xo, lambda_vae=cfg.lambda_vae, mixup_alpha=cfg.mixup_alpha, rng=i)
        loss.backward()
        opt.step()

    step(0)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for i in range(steps):
        step(i + 1)
    if device.type == "cuda":
        torch.cuda.synchronize()
    dt = (time.perf_counter() - t) / steps
    return {"preset": preset, "input": f"{cfg.batch_size} x 1 x {fc.n_mels} x {n_frames}", "width": cfg.width,
            "s_per_step": dt, "segments_per_s": cfg.batch_size / dt,
            "paper_epoch_min": 8000 / half * dt / 60}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="+", default=["quick", "cpu", "paper"], choices=sorted(OEVAE_PRESETS))
    ap.add_argument("--steps", type=int, default=None, help="timed steps (default: 20 for quick/cpu, 3 for paper)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = select_device(args.device)
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"{'preset':<7} {'batch input':<22} {'width':>5} {'s/step':>8} {'segments/s':>11} "
          f"{'epoch of 8000 normal segments':>30}")
    for p in args.presets:
        steps = args.steps or (3 if p == "paper" and device.type == "cpu" else 20)
        r = bench(p, steps, device)
        print(f"{r['preset']:<7} {r['input']:<22} {r['width']:>5} {r['s_per_step']:>8.3f} "
              f"{r['segments_per_s']:>11.1f} {r['paper_epoch_min']:>26.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
