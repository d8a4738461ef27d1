"""Benchmark: what each of the conditional DCGAN's options does to its images, on the demo's
long-tailed graded lesions (12 training images in the rarest grade).

The data are the demo's: ``synthetic_graded_lesions`` (400 images per grade, 28 × 28), its
stratified split (val 0.15, test 0.25, seed 0) and its ``longtail`` profile (exponential, μ =
0.05). A ``small_cnn`` trained on the profile's real images (the workflow's feature extractor,
10 epochs) embeds images for the FID and is the reference accuracy. Every variant is the
default GAN with one option set back to the plain DCGAN's (and the plain DCGAN itself); each
reports the train-on-synthetic/test-on-real accuracy (TSTR, a ``small_cnn`` trained on 100
generated images per grade), its ratio to the real classifier's, the FID of every grade and
the ratio of the rarest grade's to the majority grade's, and the GAN's training seconds. The
variant ``diffusion`` trains the class-conditional diffusion model instead (``--set`` then
takes its settings).

``--shares`` adds the downstream test: a classifier trained on the real images plus generated
ones of each minority grade up to the given share of the majority count (0 = the baseline),
best epoch on the validation split, its test balanced accuracy (mean over ``--seeds``).

    .venv/bin/python benchmarks/gan_quality.py --epochs 60 --shares 0 0.5 1 --out OUT
    .venv/bin/python benchmarks/gan_quality.py --table OUT/results.json
    .venv/bin/python benchmarks/gan_quality.py --variants diffusion --epochs 100 \
        --set "channels=[16, 32, 32]" --shares 0 0.5 1 --out OUT
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from medimbalance.balancing import generation_labels
from medimbalance.config import TrainConfig
from medimbalance.data.profiles import impose_profile
from medimbalance.data.splits import stratified_split
from medimbalance.data.synthetic import GradedLesionsSpec, make_graded_lesions
from medimbalance.diffusion import DiffusionConfig, train_diffusion
from medimbalance.features import train_classifier
from medimbalance.gan import GanConfig, synthesis_quality, train_gan
from medimbalance.jobs.runtime import configure
from medimbalance.metrics import task_metrics
from medimbalance.training import load_set, predict_logits

PLAIN = {
    "upsample": "transposed",
    "spectral_norm": False,
    "loss": "bce",
    "diffaugment": (),
    "ema": 0.0,
    "balanced": False,
    "lr": 2e-4,
}
NAMES = {
    "upsample": "transposed conv",
    "spectral_norm": "no spectral norm",
    "loss": "BCE loss",
    "diffaugment": "no DiffAugment",
    "ema": "no EMA",
    "balanced": "no balanced batches",
    "lr": "lr 2e-4",
}
VARIANTS = {
    "default": {},
    **{NAMES[key]: {key: value} for key, value in PLAIN.items()},
    "projection": {"discriminator": "projection"},
    "plain DCGAN": PLAIN,
    # The class-conditional diffusion model instead of the GAN (--set takes its settings).
    "diffusion": None,
}


def demo_data() -> dict:
    spec = GradedLesionsSpec(n_per_class=400, image_size=28, noise=0.08, jitter=0.15, seed=0)
    images, labels = make_graded_lesions(spec)
    split = stratified_split(labels, 0.15, 0.25, seed=0)
    train = split["train"]
    rows = train[
        impose_profile({"kind": "exponential", "mu": 0.05}, labels[train], "multiclass", [])
    ]
    return {
        "classes": spec.class_names,
        "train": (images[rows], labels[rows]),
        "val": (images[split["val"]], labels[split["val"]]),
        "test": (images[split["test"]], labels[split["test"]]),
    }


def balanced_accuracy(model, images, labels, classes) -> float:
    logits = predict_logits(model, load_set(images, labels, "cpu", task="multiclass"))
    return task_metrics("multiclass", labels, logits.numpy(), classes)["balanced_accuracy"]


def downstream(data, gan, share, seed, training) -> float:
    """Test balanced accuracy of a classifier trained on the real images plus generated ones."""
    images, labels = data["train"]
    extra = generation_labels(labels, len(data["classes"]), share) if share else np.empty(0, int)
    if len(extra):
        images = np.concatenate([images, gan.sample(extra, seed)])
        labels = np.concatenate([labels, extra])
    model, _ = train_classifier(
        "small_cnn",
        images,
        labels,
        *data["val"],
        num_classes=len(data["classes"]),
        cfg=training,
        seed=seed,
        task="multiclass",
    )
    return balanced_accuracy(model, *data["test"], data["classes"])


def markdown(rows: list[dict], shares: list[float]) -> str:
    """The results as a Markdown table (``--table`` prints it again from ``results.json``)."""
    extra = [f"bal. acc. + {share:g}" for share in shares]
    lines = [
        "| variant | TSTR acc. | TSTR / real | FID | rarest / majority FID | "
        + "".join(f"{name} | " for name in extra)
        + "GAN s |",
        "|---" * (6 + len(extra)) + "|",
    ]
    for r in rows:
        downstream = "".join(f"{r[f'bal_acc_share_{share:g}']:.3f} | " for share in shares)
        lines.append(
            f"| {r['variant']} | {r['tstr_accuracy']:.3f} | {r['tstr_ratio']:.2f} | "
            f"{r['fid']:.2f} | {r['rarest_to_majority_fid']:.2f} | {downstream}"
            f"{r['gan_seconds']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument(
        "--set", nargs="*", default=[], metavar="KEY=VALUE", help="other GanConfig settings (YAML)"
    )
    parser.add_argument(
        "--variants",
        nargs="+",
        default=[v for v in VARIANTS if v != "diffusion"],
        choices=list(VARIANTS),
    )
    parser.add_argument("--shares", nargs="*", type=float, default=[])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, help="folder for results.json and sample grids")
    parser.add_argument("--table", type=Path, help="print the table of a results.json and stop")
    args = parser.parse_args()
    if args.table:
        saved = json.loads(args.table.read_text())
        print(f"commit {saved['commit']}, {saved['machine']}, {saved['args']}")
        print(markdown(saved["rows"], saved["args"]["shares"]))
        return
    configure(0, args.threads)
    data = demo_data()
    classes = data["classes"]
    training = TrainConfig(epochs=10)
    extractor, _ = train_classifier(
        "small_cnn",
        *data["train"],
        *data["val"],
        num_classes=len(classes),
        cfg=training,
        seed=0,
        task="multiclass",
    )
    counts = np.bincount(data["train"][1], minlength=len(classes))
    print(f"training images per grade: {counts.tolist()}", flush=True)
    settings = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    rows = []
    for name in args.variants:
        start = time.perf_counter()
        if VARIANTS[name] is None:
            cfg = DiffusionConfig(epochs=args.epochs, batch_size=args.batch, **settings)
            gan, _ = train_diffusion(*data["train"], len(classes), cfg)
        else:
            base = GanConfig(epochs=args.epochs, width=args.width, batch_size=args.batch)
            cfg = replace(base, **{**settings, **VARIANTS[name]})
            gan, _ = train_gan(*data["train"], len(classes), cfg)
        seconds = time.perf_counter() - start
        quality = synthesis_quality(
            gan,
            extractor,
            *data["test"],
            classes=classes,
            cfg=training,
            seed=0,
            tstr_per_class=100,
            task="multiclass",
        )
        per_class = quality["fid_per_class"]
        row = {
            "variant": name,
            "gan_seconds": seconds,
            "tstr_accuracy": quality["tstr_accuracy"],
            "real_accuracy": quality["real_accuracy"],
            "tstr_ratio": quality["tstr_accuracy"] / quality["real_accuracy"],
            "fid": quality["fid"],
            "fid_per_class": per_class,
            "rarest_to_majority_fid": per_class[classes[-1]] / per_class[classes[0]],
        }
        for share in args.shares:
            row[f"bal_acc_share_{share:g}"] = float(
                np.mean([downstream(data, gan, share, s, training) for s in args.seeds])
            )
        rows.append(row)
        print(json.dumps(row), flush=True)
        if args.out:
            from medimbalance.figures import plot_sample_grid

            args.out.mkdir(parents=True, exist_ok=True)
            grid = gan.sample(np.repeat(np.arange(len(classes)), 8), 0)
            images, labels = data["train"]
            real = [images[labels == c][:4] for c in range(len(classes))]
            slug = name.replace(" ", "_")
            plot_sample_grid(grid, classes, (0, 255), name, args.out / f"{slug}.png", real=real)
    print()
    print(markdown(rows, args.shares))
    if args.out:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        machine = {"cpu": platform.processor() or platform.machine(), "threads": args.threads}
        record = {"commit": commit, "args": vars(args) | {"out": str(args.out)}, "machine": machine}
        (args.out / "results.json").write_text(json.dumps({**record, "rows": rows}, indent=1))


if __name__ == "__main__":
    torch.set_grad_enabled(True)
    main()
