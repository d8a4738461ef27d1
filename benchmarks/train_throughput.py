"""Benchmark: images/s of medimbalance's training step against a bare PyTorch loop.

Same model (MONAI ``small_cnn`` by default), data, batch size, optimiser, threads and device,
measured in one run, best of ``--repeats`` epochs each (interleaved, so drift hits all alike).
With ``--augment p`` our loop applies the augmentation preset (batched, on the training
device) and a third loop the same preset by MONAI's transforms one sample at a time (the
reference path), so the ratios give the cost of each against the bare, unaugmented loop.

    .venv/bin/python benchmarks/train_throughput.py --images 20000 --repeats 5
    .venv/bin/python benchmarks/train_throughput.py --images 5000 --repeats 3 --augment 0.3
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from medimbalance.augment import Augmenter
from medimbalance.jobs.runtime import configure, select_device
from medimbalance.models import build_model
from medimbalance.training import TensorSet, train_one_epoch


def bare_epoch(model, optimizer, images, labels, batch_size, generator) -> None:
    """The plainest loop: shuffle, forward, cross-entropy, backward, step."""
    model.train()
    order = torch.randperm(len(labels), generator=generator).to(labels.device)
    for start in range(0, len(labels), batch_size):
        idx = order[start : start + batch_size]
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(images[idx]), labels[idx]).backward()
        optimizer.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--model", default="small_cnn")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--augment",
        type=float,
        default=0.0,
        help="our loop also applies the augmentation preset with this probability (0: off); "
        "the bare loop never augments, so the ratio is then the cost of augmentation",
    )
    args = parser.parse_args()
    configure(0, args.threads)
    device = select_device()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (args.images, 1, args.size, args.size), dtype=np.uint8)
    data = TensorSet.from_arrays(images, rng.integers(0, 5, args.images), device, "multiclass")
    loss_fn = torch.nn.CrossEntropyLoss()
    ours = build_model(args.model, 1, 5, (args.size, args.size)).to(device)
    bare = build_model(args.model, 1, 5, (args.size, args.size)).to(device)
    opt_ours = torch.optim.Adam(ours.parameters(), 1e-3)
    opt_bare = torch.optim.Adam(bare.parameters(), 1e-3)
    gen_ours, gen_bare = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    augmenters = {"medimbalance": Augmenter(2, 1, args.augment) if args.augment else None}
    best = {"medimbalance": float("inf"), "bare PyTorch": float("inf")}
    models = {"medimbalance": (ours, opt_ours, gen_ours)}
    if args.augment:
        name = "medimbalance, per-sample MONAI augmentation"
        augmenters[name] = Augmenter(2, 1, args.augment, batched=False)
        reference = build_model(args.model, 1, 5, (args.size, args.size)).to(device)
        optimizer = torch.optim.Adam(reference.parameters(), 1e-3)
        models[name] = (reference, optimizer, torch.Generator().manual_seed(0))
        best[name] = float("inf")
    for epoch in range(1, args.repeats + 1):
        for name in best:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            if name in models:
                model, optimizer, generator = models[name]
                if augmenters[name] is not None:
                    augmenters[name].reseed(0, epoch)
                train_one_epoch(
                    model,
                    loss_fn,
                    optimizer,
                    data,
                    batch_size=args.batch,
                    generator=generator,
                    epoch=epoch,
                    augment=augmenters[name],
                )
            else:
                bare_epoch(bare, opt_bare, data.images, data.labels, args.batch, gen_bare)
            if device.type == "cuda":
                torch.cuda.synchronize()
            best[name] = min(best[name], time.perf_counter() - start)
    rate = {k: args.images / v for k, v in best.items()}
    print(
        f"{args.model}, {args.images} images {args.size}x{args.size}, batch {args.batch}, "
        f"{args.threads} thread(s), {device}, best of {args.repeats} epochs, "
        f"augmentation p = {args.augment} (ours only)"
    )
    print("| loop | images/s |\n| --- | --- |")
    for name, r in rate.items():
        print(f"| {name} | {r:,.0f} |")
    for name in models:
        print(f"ratio {name} / bare: {rate[name] / rate['bare PyTorch']:.3f}")


if __name__ == "__main__":
    main()
