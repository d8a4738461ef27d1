"""Benchmark: conditional-DCGAN training throughput (real images/s) of ``medimbalance.gan``
against a bare PyTorch GAN loop with the same networks.

Both train the plain DCGAN's generator and discriminator (``medimbalance.gan.Generator`` and
``Discriminator``) for one epoch over the same images, batch size, optimisers, threads and
device; ours adds seeded batch order and noise, the NaN check and per-epoch statistics. The two
are interleaved and the best of ``--repeats`` is kept for each.

    .venv/bin/python benchmarks/gan_throughput.py --images 4000 --size 28 --channels 1
    .venv/bin/python benchmarks/gan_throughput.py --images 4000 --size 32 --channels 3
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from medimbalance.gan import Discriminator, GanConfig, Generator, train_gan
from medimbalance.jobs.runtime import configure, select_device


def bare_epoch(images, labels, num_classes, cfg, device) -> None:
    """The plainest conditional-GAN epoch: shuffle; D on real and fake; G to fool D."""
    g = Generator(num_classes, images.shape[1], images.shape[2:], cfg).to(device)
    d = Discriminator(num_classes, images.shape[1], images.shape[2:], cfg).to(device)
    opt_g = torch.optim.Adam(g.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
    x = torch.from_numpy(images.astype(np.float32) / 127.5 - 1).to(device)
    y = torch.from_numpy(labels).to(device)
    bce = nn.BCEWithLogitsLoss()
    for idx in torch.randperm(len(y), device=device).split(cfg.batch_size):
        fake = g(torch.randn(len(idx), cfg.latent_dim, device=device), y[idx])
        real_logit, fake_logit = d(x[idx], y[idx]), d(fake.detach(), y[idx])
        loss_d = bce(real_logit, torch.ones_like(real_logit)) + bce(
            fake_logit, torch.zeros_like(fake_logit)
        )
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        fooled = d(fake, y[idx])
        opt_g.zero_grad()
        bce(fooled, torch.ones_like(fooled)).backward()
        opt_g.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4000)
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--classes", type=int, default=5)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    configure(0, args.threads)
    device = select_device()
    rng = np.random.default_rng(0)
    shape = (args.images, args.channels, args.size, args.size)
    images = rng.integers(0, 255, shape, dtype=np.uint8)
    labels = rng.integers(0, args.classes, args.images)
    # The plain DCGAN, which is what the bare loop implements (the few-shot options add
    # DiffAugment, a moving average and other losses that a bare loop would need too).
    plain = dict(upsample="transposed", spectral_norm=False, loss="bce", diffaugment=(), ema=0.0)
    cfg = GanConfig(
        epochs=1, batch_size=args.batch, width=args.width, lr=2e-4, balanced=False, **plain
    )
    runs = {
        "medimbalance": lambda: train_gan(images, labels, args.classes, cfg, device=device),
        "bare PyTorch": lambda: bare_epoch(images, labels, args.classes, cfg, device),
    }
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(args.repeats):
        for name, run in runs.items():
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            run()
            if device.type == "cuda":
                torch.cuda.synchronize()
            best[name] = min(best[name], time.perf_counter() - start)
    rate = {name: args.images / seconds for name, seconds in best.items()}
    dims = f"{args.channels}x{args.size}x{args.size}"
    print(
        f"device={device} threads={args.threads} images={args.images} shape={dims} "
        f"width={args.width} batch={args.batch}"
    )
    for name, value in rate.items():
        print(f"{name:>13}: {value:8.1f} real images/s (best of {args.repeats})")
    print(f"ratio medimbalance / bare: {rate['medimbalance'] / rate['bare PyTorch']:.3f}")


if __name__ == "__main__":
    main()
