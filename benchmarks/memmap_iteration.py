"""Benchmark: iterate a memory-mapped dataset larger than a memory cap, with bounded memory.

Writes an image array of ``--size-mb`` (uint8, 224×224, like ChestMNIST-224) with the same
chunked writer as the workflow, then, each in a fresh process under ``RLIMIT_DATA = --cap-mb``
(the kernel's cap on anonymous memory), reads it for several epochs in shuffled batches the way
a training loop does:

- ``memmap``: ``np.load(mmap_mode="r")``, the workflow's format (pages come from the page cache
  and can be evicted, so they do not count against the cap);
- ``full``: the baseline, ``np.load`` into memory, under the same cap and without one.

Prints peak anonymous and total resident memory per mode and their ratio to the dataset size.

    .venv/bin/python benchmarks/memmap_iteration.py --size-mb 2048 --cap-mb 512
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from medimbalance.data.io import atomic_memmap

ROW = (1, 224, 224)


def memory_mb() -> dict[str, float]:
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("RssAnon", "VmRSS"):
            fields[key] = int(value.split()[0]) / 1024
    return fields


def child(path: str, mode: str, cap_mb: int, epochs: int, batch: int) -> dict:
    if cap_mb > 0:
        cap = cap_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))
    peak = {"RssAnon": 0.0, "VmRSS": 0.0}
    start = time.perf_counter()
    try:
        images = np.load(path, mmap_mode="r" if mode == "memmap" else None)
        rng = np.random.default_rng(0)
        checksum = 0.0
        for _ in range(epochs):
            order = rng.permutation(len(images))
            for s in range(0, len(order), batch):
                idx = np.sort(order[s : s + batch])
                x = images[idx].astype(np.float32) / 255.0  # what a training step receives
                checksum += float(x[:, 0, 0, 0].sum())
                for key, value in memory_mb().items():
                    peak[key] = max(peak[key], value)
        ok = True
    except MemoryError:
        ok, checksum = False, None
    return {
        "mode": mode,
        "ok": ok,
        "seconds": time.perf_counter() - start,
        "peak_anon_mb": peak["RssAnon"],
        "peak_rss_mb": peak["VmRSS"],
        "checksum": checksum,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=2048, help="dataset size in MiB")
    parser.add_argument("--cap-mb", type=int, default=512, help="RLIMIT_DATA of each reader")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--workdir", default="/tmp/medimbalance-bench")
    parser.add_argument("--child", choices=["memmap", "full"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    path = Path(args.workdir) / f"images_{args.size_mb}mb.npy"
    if args.child:
        print(json.dumps(child(str(path), args.child, args.cap_mb, args.epochs, args.batch)))
        return
    n = args.size_mb * 1024 * 1024 // int(np.prod(ROW))
    if not path.exists():
        with atomic_memmap(path, np.uint8, (n, *ROW)) as out:
            for s in range(0, n, 1024):
                out[s : s + 1024] = (np.arange(s, min(n, s + 1024)) % 251)[:, None, None, None]
    size_mb = path.stat().st_size / 2**20
    results = []
    for mode, cap in (("memmap", args.cap_mb), ("full", args.cap_mb), ("full", 0)):
        run = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                mode,
                "--size-mb",
                str(args.size_mb),
                "--cap-mb",
                str(cap),
                "--epochs",
                str(args.epochs),
                "--batch",
                str(args.batch),
                "--workdir",
                args.workdir,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        results.append({**json.loads(run.stdout), "cap": f"{cap} MiB" if cap else "none"})
    print(
        f"dataset {size_mb:.0f} MiB ({n} images {ROW}), cap (RLIMIT_DATA) {args.cap_mb} MiB, "
        f"{args.epochs} epochs, batch {args.batch}"
    )
    print(
        "| reader | cap | finished | peak anonymous MiB | peak resident MiB | "
        "anonymous / dataset | seconds |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(
            f"| {r['mode']} | {r['cap']} | {'yes' if r['ok'] else 'no (MemoryError)'} | "
            f"{r['peak_anon_mb']:.0f} | {r['peak_rss_mb']:.0f} | "
            f"{r['peak_anon_mb'] / size_mb:.3f} | {r['seconds']:.1f} |"
        )


if __name__ == "__main__":
    main()
