"""Benchmark: patch training and sliding-window inference on a BraTS-shaped set larger than RAM.

Writes ``--cases`` synthetic cases of 4 × 240 × 240 × 155 float32 voxels (143 MiB each: 180
cases are 25.2 GiB, more than this machine's 24 GiB) and their uint8 masks (a small tumour of
three labels per case) in the workflow's prepared layout, with its chunked writer. Then, each in
a fresh process:

- ``ours``: the workflow's pipeline (:class:`medimbalance.patches.PatchSet` over the
  memory-mapped arrays: voxel locations per case, MONAI's centre samplers, only the patch read
  from disk), ``--patches`` patches of 96³ (a third centred on tumour) in batches of 2, then
  ``--steps`` training steps of a small 3D U-Net on such batches and sliding-window inference
  (:class:`medimbalance.patches.CaseSet`) on ``--infer`` whole cases;
- ``monai``: the plain MONAI pipeline on the same data, a ``monai.data.Dataset`` whose
  transform loads a whole case (image and mask) and crops it with ``RandCropByPosNegLabeld``
  (the same size and foreground share), through a ``torch.utils.data.DataLoader`` (batches of
  2, ``--workers`` worker processes), the same number of patches.

Prints, per pipeline, patches per second and the peak resident memory of the process (its
``VmHWM``; the DataLoader's workers' peaks included), and the throughput ratio.

    .venv/bin/python benchmarks/patch_training.py --cases 180 --folder /tmp/brats_like
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from medimbalance.data.io import atomic_memmap

SHAPE = (240, 240, 155)
CHANNELS = 4
PATCH = (96, 96, 96)
FOREGROUND = 1 / 3


def write_cases(folder: Path, cases: int, seed: int = 0) -> None:
    """The BraTS-shaped set: noise around a head-like level, a tumour ball per case."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    base = rng.normal(0.0, 1.0, (CHANNELS, *SHAPE)).astype(np.float32)  # reused, shifted
    grid = np.ogrid[tuple(slice(0, n) for n in SHAPE)]
    with (
        atomic_memmap(folder / "images.npy", np.float32, (cases, CHANNELS, *SHAPE)) as images,
        atomic_memmap(folder / "masks.npy", np.uint8, (cases, *SHAPE)) as masks,
    ):
        for i in range(cases):
            centre = rng.integers([40, 40, 30], [200, 200, 125])
            radius = rng.uniform(8, 20)
            d2 = sum((g - c) ** 2 for g, c in zip(grid, centre, strict=True))
            mask = np.zeros(SHAPE, np.uint8)
            mask[d2 <= radius**2] = 1
            mask[d2 <= (0.7 * radius) ** 2] = 3
            mask[d2 <= (0.45 * radius) ** 2] = 2
            masks[i] = mask
            images[i] = np.roll(base, i, axis=1) + mask[None] * 0.5
            images.flush()


def peak_rss_mib() -> float:
    """The peak resident memory of this process (``VmHWM``: reset by ``execve``, unlike
    ``ru_maxrss``) and of its finished children (the DataLoader's workers), the larger one."""
    status = Path("/proc/self/status").read_text().splitlines()
    own = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def run_ours(folder: Path, patches: int, steps: int, infer: int) -> dict:
    import torch
    from monai.networks.nets import UNet

    from medimbalance.data.io import load_array
    from medimbalance.patches import CaseSet, PatchSet, PatchSpec

    torch.manual_seed(0)
    images = load_array(folder / "images.npy", mmap=True)
    masks = load_array(folder / "masks.npy", mmap=True)
    spec = PatchSpec(size=PATCH, foreground=FOREGROUND, per_epoch=patches)
    device = torch.device("cpu")
    start = time.perf_counter()
    data = PatchSet(images, masks, np.arange(len(images)), None, spec, 4, device, seed=0)
    setup = time.perf_counter() - start
    start = time.perf_counter()
    held = 0
    for idx in torch.arange(patches).split(2):
        data.batch(idx)  # what a training step reads: the images' patches and the masks'
        held += int((data.targets(idx) > 0).flatten(1).any(1).sum())
    seconds = time.perf_counter() - start
    net = UNet(3, CHANNELS, 4, channels=(8, 16), strides=(2,), num_res_units=0)
    optimizer = torch.optim.Adam(net.parameters(), 1e-3)
    start = time.perf_counter()
    for idx in torch.arange(2 * steps).split(2):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(data.batch(idx)), data.targets(idx))
        loss.backward()
        optimizer.step()
    train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    cases = CaseSet(images[:infer], masks[:infer], None, PatchSpec(PATCH, overlap=0.25), device)
    labels = cases.predicted_labels(net)
    infer_seconds = time.perf_counter() - start
    return {
        "pipeline": "ours",
        "patches": patches,
        "patches_per_s": patches / seconds,
        "foreground_share": held / patches,
        "setup_s": setup,
        "train_steps": steps,
        "train_s": train_seconds,
        "inferred_cases": infer,
        "infer_s": infer_seconds,
        "inferred_shape": list(labels.shape),
        "peak_rss_mib": peak_rss_mib(),
    }


def run_monai(folder: Path, patches: int, workers: int) -> dict:
    import torch
    from monai.data import Dataset
    from monai.transforms import RandCropByPosNegLabeld

    images_path, masks_path = str(folder / "images.npy"), str(folder / "masks.npy")
    cases = len(np.load(masks_path, mmap_mode="r"))

    class LoadCase:
        """MONAI's usual first transform: read the whole case (image and label) from disk."""

        def __call__(self, index: int) -> dict:
            images = np.load(images_path, mmap_mode="r")
            masks = np.load(masks_path, mmap_mode="r")
            return {"image": np.array(images[index]), "label": np.array(masks[index])[None]}

    crop = RandCropByPosNegLabeld(
        ["image", "label"], "label", PATCH, pos=1, neg=2, num_samples=1
    )  # pos / (pos + neg) = 1/3 of the patches centred on foreground
    crop.set_random_state(0)

    def transform(index):
        return crop(LoadCase()(index))[0]

    order = np.random.default_rng(0).integers(0, cases, patches)
    loader = torch.utils.data.DataLoader(
        Dataset(order.tolist(), transform), batch_size=2, num_workers=workers
    )
    start = time.perf_counter()
    held = 0
    for batch in loader:
        held += int((torch.as_tensor(batch["label"]) > 0).flatten(1).any(1).sum())
    seconds = time.perf_counter() - start
    return {
        "pipeline": "monai",
        "patches": patches,
        "patches_per_s": patches / seconds,
        "foreground_share": held / patches,
        "workers": workers,
        "peak_rss_mib": peak_rss_mib(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=180, help="cases of 143 MiB each")
    parser.add_argument("--folder", type=Path, default=Path("/tmp/brats_like"))
    parser.add_argument("--patches", type=int, default=60)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--infer", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the written set")
    parser.add_argument("--child", choices=("write", "ours", "monai"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "write":
        write_cases(args.folder, args.cases)
        return
    if args.child == "ours":
        print(json.dumps(run_ours(args.folder, args.patches, args.steps, args.infer)))
        return
    if args.child == "monai":
        print(json.dumps(run_monai(args.folder, args.patches, args.workers)))
        return
    start = time.perf_counter()
    if not (args.folder / "masks.npy").exists():  # in a child: this process stays small
        subprocess.run([sys.executable, __file__, "--child", "write", *sys.argv[1:]], check=True)
    size = sum(f.stat().st_size for f in args.folder.glob("*.npy")) / 1024**3
    print(f"dataset: {args.cases} cases, {size:.1f} GiB ({time.perf_counter() - start:.0f} s)")
    results = []
    try:
        for pipeline in ("ours", "monai"):
            done = subprocess.run(
                [sys.executable, __file__, "--child", pipeline, *sys.argv[1:]],
                capture_output=True,
                text=True,
                check=True,
            )
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(json.dumps(results[-1]))
    finally:
        if not args.keep:
            shutil.rmtree(args.folder, ignore_errors=True)
    ours, monai = results
    print(
        f"throughput ours / plain MONAI: {ours['patches_per_s'] / monai['patches_per_s']:.2f}; "
        f"peak RSS ours {ours['peak_rss_mib']:.0f} MiB, MONAI {monai['peak_rss_mib']:.0f} MiB, "
        f"dataset {size:.1f} GiB"
    )


if __name__ == "__main__":
    main()
