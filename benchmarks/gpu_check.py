"""GPU check: the CUDA path of the library, run end to end in one command (under 5 minutes).

On a CUDA machine it trains, on synthetic data, a few epochs of: a classification run with and
without the class-balanced sampler + augmentation, a two-phase run, a 3D U-Net segmentation
run and a conditional DCGAN. For each it checks that the network ran on the GPU (not a silent
CPU fallback) and that the forward pass runs in bfloat16 autocast, and for the classification
run that a run killed after the checkpoint of half its epochs and resumed from it gives the
outputs of an uninterrupted one. It then measures images/s of our training step against a bare
PyTorch loop on the GPU (``train_throughput.py``, with and without augmentation), the wall time
of ``--runs`` small runs (separate processes, as Snakemake starts them) with 1, 4 and 8 jobs per
GPU (``MEDIMBALANCE_JOBS_PER_GPU``), copy strategies for a streamed memory-mapped set (pinned
memory, prefetching) and ``channels_last`` / deterministic kernels off / ``torch.compile``.
It prints a Markdown report and writes it with the raw numbers as JSON (``--out``), section by
section.

The library runs directly, without Snakemake: ``src`` is put on the path, and MONAI, einops,
imbalanced-learn and PyYAML come from wheels unpacked beside it when the machine lacks them
(``benchmarks/gpu_wheels.sh`` fetches them into the git-ignored ``.gpu-wheels/``)::

    python benchmarks/gpu_check.py --out gpu_check.json
    python benchmarks/gpu_check.py --allow-cpu --quick   # a smoke run anywhere (CPU)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WHEELS = ROOT / ".gpu-wheels"


def add_library_paths() -> None:
    """``src`` first on ``sys.path`` and, last (the machine's own packages win), the wheels of
    ``.gpu-wheels`` unpacked once into ``.gpu-wheels/site``; both on ``PYTHONPATH`` too, for
    the child processes."""
    sys.path.insert(0, str(ROOT / "src"))
    paths = [str(ROOT / "src"), str(Path(__file__).parent)]
    site = WHEELS / "site"
    for wheel in sorted(WHEELS.glob("*.whl")) if WHEELS.is_dir() else ():
        marker = site / f".{wheel.name}"
        if not marker.exists():
            with zipfile.ZipFile(wheel) as archive:
                archive.extractall(site)
            marker.touch()
    if site.is_dir():
        sys.path.append(str(site))
        paths.append(str(site))
    os.environ["PYTHONPATH"] = os.pathsep.join([*paths, os.environ.get("PYTHONPATH", "")])


add_library_paths()

import numpy as np  # noqa: E402
import torch  # noqa: E402

from medimbalance.balancing import random_oversampling  # noqa: E402
from medimbalance.checkpoints import Checkpoints  # noqa: E402
from medimbalance.config import RunConfig  # noqa: E402
from medimbalance.data.synthetic import (  # noqa: E402
    GradedLesionsSpec,
    TumoursSpec,
    make_graded_lesions,
    make_tumours,
)
from medimbalance.experiment import run_training  # noqa: E402
from medimbalance.gan import GanConfig, train_gan  # noqa: E402
from medimbalance.jobs.runtime import configure, environment_info, select_device  # noqa: E402
from medimbalance.models import build_model  # noqa: E402
from medimbalance.schedules import RunArrays, TrainingJob  # noqa: E402
from medimbalance.training import TensorSet, forward, to_tensor, train_one_epoch  # noqa: E402


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def failure(error: BaseException) -> str:
    """An error as the report records it."""
    return f"{type(error).__name__}: {error}"[:2000]


def split(images: np.ndarray, targets: np.ndarray, seed: int = 0) -> RunArrays:
    """60 / 20 / 20 % train / validation / test rows of a shuffled set."""
    order = np.random.default_rng(seed).permutation(len(images))
    images, targets = images[order], targets[order]
    a, b = int(0.6 * len(images)), int(0.8 * len(images))
    rows = np.arange(a)
    return RunArrays(
        train_images=images[:a],
        train_targets=targets[:a],
        rows=rows,
        profile_rows=rows,
        val_images=images[a:b],
        val_targets=targets[a:b],
        test_images=images[b:],
        test_targets=targets[b:],
    )


def run_config(task: str, spec: dict, name: str, training: dict) -> RunConfig:
    return RunConfig.from_dict(
        {
            "study": "gpu_check",
            "dataset": "synthetic",
            "task": task,
            "profile": "natural",
            "method": name,
            "seed": 0,
            "spec": spec,
            "training": training,
        }
    )


def autocast_dtype(model: torch.nn.Module, images: torch.Tensor) -> str:
    """The dtype of the first convolution's output in the library's forward pass."""
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Conv3d))
    seen: list[torch.dtype] = []
    handle = conv.register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))
    try:
        with torch.no_grad():
            forward(model.eval(), images)
    finally:
        handle.remove()
    return str(seen[0]).removeprefix("torch.")


def train_case(name, task, spec, data, meta, training, device, folder) -> dict:
    """One run through the library's schedules; where its weights were and how long it took."""
    cfg = run_config(task, spec, name, training)
    synchronize(device)
    start = time.perf_counter()
    trained = run_training(TrainingJob(cfg, data, meta, device, Checkpoints(folder, name)))
    synchronize(device)
    seconds = time.perf_counter() - start
    sample = torch.from_numpy(np.asarray(data.test_images[:4], np.float32)).to(device)
    return {
        "seconds": round(seconds, 2),
        "device": str(next(trained.model.parameters()).device),
        "autocast": autocast_dtype(trained.model, sample),
        "epochs": len(trained.history),
        "outputs": trained.outputs["test"],
    }


class Killed(BaseException):
    """Stands for the job being killed right after a checkpoint was written."""


def resume_check(data, meta, training, device, folder: Path) -> dict:
    """An uninterrupted run against the same run killed right after the checkpoint of half its
    epochs and resumed from it (other initial weights: only the restored state can give equal
    outputs): the largest output difference."""
    spec = {"loss": "ce", "model": "small_cnn", "sampler": "class_balanced", "augment": "preset"}
    torch.manual_seed(0)
    whole = train_case("run", "multiclass", spec, data, meta, training, device, folder / "a")
    save, saves = Checkpoints.save, []

    def save_then_die(self, phase, parts, state):
        save(self, phase, parts, state)
        saves.append(phase)
        if len(saves) == max(training["epochs"] // 2, 1):
            raise Killed

    Checkpoints.save = save_then_die
    try:
        torch.manual_seed(0)
        train_case("run", "multiclass", spec, data, meta, training, device, folder / "b")
    except Killed:
        pass
    finally:
        Checkpoints.save = save
    torch.manual_seed(1)
    again = train_case("run", "multiclass", spec, data, meta, training, device, folder / "b")
    difference = float(np.abs(whole["outputs"] - again["outputs"]).max())
    return {
        "killed_after_checkpoints": len(saves),
        "max_abs_output_difference": difference,
        "identical": difference == 0.0,
    }


def gan_case(images, labels, device, epochs) -> dict:
    synchronize(device)
    start = time.perf_counter()
    gan, _ = train_gan(images, labels, 5, GanConfig(epochs=epochs, width=32), device=device)
    synchronize(device)
    return {
        "seconds": round(time.perf_counter() - start, 2),
        "device": str(next(gan.generator.parameters()).device),
        "autocast": "none (the GAN trains in float32)",
        "epochs": epochs,
    }


def small_run(seed: int, n_per_class: int, epochs: int) -> None:
    """One small run of the jobs-per-GPU measure, in a process of its own (as Snakemake runs a
    job): it claims a slot of the device pool like a workflow job."""
    configure(seed, 1)
    device = select_device()  # claims a slot of the pool
    images, labels = make_graded_lesions(GradedLesionsSpec(n_per_class=n_per_class, seed=seed))
    meta = {"classes": [f"g{i}" for i in range(5)], "channels": 1, "spatial_shape": [28, 28]}
    training = {"epochs": epochs, "batch_size": 64}
    with tempfile.TemporaryDirectory() as folder:
        spec = {"loss": "ce", "model": "small_cnn"}
        train_case(
            "small",
            "multiclass",
            spec,
            split(images, labels, seed),
            meta,
            training,
            device,
            Path(folder),
        )


def jobs_per_gpu(runs: int, slots: int, n_per_class: int, epochs: int, lock_dir: Path) -> float:
    """Wall time of ``runs`` small runs, ``slots`` at a time on one device, each a process."""
    env = {
        **os.environ,
        "MEDIMBALANCE_JOBS_PER_GPU": str(slots),
        "MEDIMBALANCE_GPU_LOCK_DIR": str(lock_dir),
        "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0],
    }
    code = f"import gpu_check; gpu_check.small_run({{seed}}, {n_per_class}, {epochs})"

    def one(seed: int) -> None:
        subprocess.run([sys.executable, "-c", code.format(seed=seed)], env=env, check=True)

    start = time.perf_counter()
    with ThreadPoolExecutor(slots) as pool:  # as --resources gpu=slots lets Snakemake start
        list(pool.map(one, range(runs)))
    return time.perf_counter() - start


def throughput(augment: float, images: int, device: torch.device) -> str:
    """``train_throughput.py``'s table (our loop against the bare one on this device)."""
    args = ["--images", str(images), "--repeats", "3", "--threads", "1"]
    if augment:
        args += ["--augment", str(augment)]
    script = Path(__file__).with_name("train_throughput.py")
    out = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"train_throughput.py {' '.join(args)} failed:\n{out.stderr}")
    return out.stdout.strip()


def epoch_rate(model, data, epochs: int, batch_size: int = 64) -> tuple[float, float]:
    """Seconds of the first epoch and images/s of the best later one, through the library's
    training step (``train_one_epoch``, cross-entropy, Adam)."""
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    loss_fn, generator = torch.nn.CrossEntropyLoss(), torch.Generator().manual_seed(0)
    times = []
    for epoch in range(1, epochs + 1):
        synchronize(data.labels.device)
        start = time.perf_counter()
        train_one_epoch(
            model,
            loss_fn,
            optimizer,
            data,
            batch_size=batch_size,
            generator=generator,
            epoch=epoch,
        )
        synchronize(data.labels.device)
        times.append(time.perf_counter() - start)
    return times[0], len(data) / min(times[1:])


def training_options(device: torch.device, quick: bool) -> dict:
    """images/s of the training step with each option against the default (deterministic
    kernels, contiguous layout, eager): ``channels_last``, deterministic kernels off (cuDNN
    autotuning on) and ``torch.compile``, for ``small_cnn`` on 28x28 and ``resnet18`` on 64x64
    images, all measured here in one run."""
    rng = np.random.default_rng(0)
    results: dict = {}
    for name, size, n in (("small_cnn", 28, 20000), ("resnet18", 64, 6000)):
        n = 256 if quick else n
        images = rng.integers(0, 255, (n, 1, size, size), dtype=np.uint8)
        data = TensorSet.from_arrays(images, rng.integers(0, 5, n), device, "multiclass")
        row: dict = {}
        for option in ("default", "channels_last", "deterministic off", "torch.compile"):
            torch.manual_seed(0)
            model = build_model(name, 1, 5, (size, size)).to(device)
            if option == "channels_last":
                model = model.to(memory_format=torch.channels_last)
                data.images = data.images.contiguous(memory_format=torch.channels_last)
            if option == "deterministic off":
                torch.use_deterministic_algorithms(False)
                torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = False, True
            if option == "torch.compile":
                model = torch.compile(model)
            try:
                first, rate = epoch_rate(model, data, 2 if quick else 4)
                row[option] = {"first_epoch_s": round(first, 2), "images_per_s": round(rate)}
            except Exception as error:
                row[option] = {"error": failure(error)}
            finally:
                data.images = data.images.contiguous()
                configure(0, 4)  # back to the default kernels
        base = row["default"]["images_per_s"]
        for value in row.values():
            if "images_per_s" in value:
                value["ratio"] = round(value["images_per_s"] / base, 3)
        results[f"{name} {size}x{size}"] = row
    return results


def streaming(device: torch.device, quick: bool) -> dict:
    """Batches/s of a training set streamed from a memory-mapped uint8 ``.npy`` (the path of
    sets too large to preload) by four copy strategies, each feeding the same small training
    step: the library's today (``to_tensor``: the gathered uint8 batch converted to float32
    on the host, four times the bytes copied), uint8 copied then scaled on the device, uint8
    through pinned memory with a non-blocking copy, and that with the next batch gathered and
    pinned by a background thread meanwhile."""
    n, size, batch = (512, 32, 64) if quick else (16384, 128, 256)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "images.npy"
        stored = np.lib.format.open_memmap(path, "w+", np.uint8, (n, 1, size, size))
        stored[:] = np.random.default_rng(0).integers(0, 255, stored.shape, dtype=np.uint8)
        stored.flush()
        images = np.load(path, mmap_mode="r")
        model = build_model("small_cnn", 1, 5, (size, size)).to(device)
        optimizer = torch.optim.SGD(model.parameters(), 1e-3)
        labels = torch.zeros(batch, dtype=torch.long, device=device)
        order = np.random.default_rng(1).permutation(n)
        batches = [np.sort(order[i : i + batch]) for i in range(0, n - batch + 1, batch)]

        def step(x: torch.Tensor) -> None:
            optimizer.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(forward(model, x), labels[: len(x)])
            loss.backward()
            optimizer.step()

        def scaled(x: torch.Tensor) -> torch.Tensor:
            return x.float().div_(255.0).sub_(0.5).div_(0.5)

        def gather_pinned(rows: np.ndarray) -> torch.Tensor:
            host = torch.from_numpy(images[rows])
            return host.pin_memory() if device.type == "cuda" else host

        def pageable_float(rows):
            step(to_tensor(images[rows], device))

        def uint8_then_scale(rows):
            step(scaled(torch.from_numpy(images[rows]).to(device)))

        def pinned(rows):
            step(scaled(gather_pinned(rows).to(device, non_blocking=True)))

        def run(strategy) -> float:
            synchronize(device)
            start = time.perf_counter()
            if strategy == "prefetch":
                with ThreadPoolExecutor(1) as pool:
                    ahead = pool.submit(gather_pinned, batches[0])
                    for following in [*batches[1:], None]:
                        host = ahead.result()
                        if following is not None:
                            ahead = pool.submit(gather_pinned, following)
                        step(scaled(host.to(device, non_blocking=True)))
            else:
                for rows in batches:
                    strategy(rows)
            synchronize(device)
            return len(batches) / (time.perf_counter() - start)

        strategies = {
            "float32 on the host (to_tensor)": pageable_float,
            "uint8 copied, scaled on the device": uint8_then_scale,
            "uint8 pinned, non-blocking copy": pinned,
            "pinned + next batch prefetched by a thread": "prefetch",
        }
        run(pageable_float)  # warm-up: page cache and kernels
        best = {name: 0.0 for name in strategies}
        for _ in range(3):
            for name, strategy in strategies.items():
                best[name] = max(best[name], run(strategy))
    base = best["float32 on the host (to_tensor)"]
    return {
        "set": f"{n} uint8 images 1x{size}x{size} memory-mapped, batches of {batch}",
        "batches_per_s": {k: round(v, 1) for k, v in best.items()},
        "ratio": {k: round(v / base, 3) for k, v in best.items()},
    }


def markdown(report: dict, device: torch.device) -> str:
    """The report as Markdown: what each section measured, or the error that stopped it."""
    env = report["environment"]
    lines = [f"# GPU check on {env.get('cuda', {}).get('name', str(device))}", ""]
    lines += [f"torch {env['packages'].get('torch')}, deterministic: {env['deterministic']}", ""]
    errors = report.get("errors", {})
    if "cases" in report:
        lines += ["| run | device | autocast | epochs | seconds |", "|---|---|---|---|---|"]
        for name, r in report["cases"].items():
            if "error" in r:
                lines.append(f"| {name} | error: {r['error'][:200]} | | | |")
            else:
                row = (r["device"], r["autocast"], r["epochs"], r["seconds"])
                lines.append(f"| {name} | " + " | ".join(map(str, row)) + " |")
        lines.append("")
    if "resume" in report:
        difference = report["resume"]["max_abs_output_difference"]
        lines += [f"Resumed against uninterrupted run: max |Δ output| = {difference:.3g}", ""]
    for name, table in report.get("throughput", {}).items():
        lines += [f"Throughput, {name}:", "", table, ""]
    if "jobs_per_gpu" in report:
        lines += [
            f"Wall time of {report['jobs_per_gpu_runs']} small runs (separate processes):",
            "",
            "| jobs per GPU | seconds |",
            "|---|---|",
            *(f"| {k} | {s} |" for k, s in report["jobs_per_gpu"].items()),
            "",
        ]
    if "streaming" in report:
        lines += [f"Streaming ({report['streaming']['set']}):", ""]
        lines += ["| copy | batches/s | ratio |", "|---|---|---|"]
        for k, v in report["streaming"]["batches_per_s"].items():
            lines.append(f"| {k} | {v} | {report['streaming']['ratio'][k]} |")
        lines.append("")
    for model, row in report.get("options", {}).items():
        lines += [f"Training options, {model}:", ""]
        lines += ["| option | first epoch s | images/s | ratio |", "|---|---|---|---|"]
        for option, v in row.items():
            cells = [v.get("first_epoch_s"), v.get("images_per_s"), v.get("ratio")]
            if "error" in v:
                cells = [f"error: {v['error'][:200]}", "", ""]
            lines.append(f"| {option} | " + " | ".join(map(str, cells)) + " |")
        lines.append("")
    lines += [f"Section {k} failed: {v}" for k, v in errors.items()]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the report and raw numbers as JSON")
    parser.add_argument("--allow-cpu", action="store_true", help="run without CUDA (a smoke run)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (the smoke run)")
    parser.add_argument(
        "--runs", type=int, default=16, help="small runs of the jobs-per-GPU measure"
    )
    parser.add_argument("--slots", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument(
        "--skip", nargs="*", default=[], help="sections to leave out (e.g. jobs_per_gpu options)"
    )
    args = parser.parse_args()
    configure(0, 4)
    device = select_device()
    if device.type != "cuda" and not args.allow_cpu:
        print("gpu_check: no CUDA device is visible to torch; --allow-cpu runs it on the CPU")
        return 2
    quick = args.quick
    report: dict = {"environment": environment_info(device), "seconds": {}, "errors": {}}

    def section(name: str, compute) -> None:
        """Run one section; its result, its time, or its error (the rest still runs), and the
        JSON rewritten after each (a run stopped by a time limit keeps what it had)."""
        if name in args.skip:
            return
        start = time.perf_counter()
        try:
            report[name] = compute()
        except Exception as error:
            report["errors"][name] = failure(error)
        report["seconds"][name] = round(time.perf_counter() - start, 1)
        print(f"gpu_check: {name} done in {report['seconds'][name]} s", file=sys.stderr)
        if args.out:
            args.out.write_text(json.dumps(report, indent=1, default=str))

    n_per_class, epochs = (12, 2) if quick else (400, 4)
    images, labels = make_graded_lesions(GradedLesionsSpec(n_per_class=n_per_class))
    lesions = split(images, labels)
    meta = {"classes": [f"g{i}" for i in range(5)], "channels": 1, "spatial_shape": [28, 28]}
    training = {"epochs": epochs, "batch_size": 64}
    shape = (16, 16, 16) if quick else (64, 64, 64)
    volumes, masks = make_tumours(TumoursSpec(n=10 if quick else 24, shape=shape, channels=2))
    seg_meta = {"classes": ["bg", "e", "n", "t"], "channels": 2, "spatial_shape": list(shape)}
    cases = {
        "classification": ("multiclass", {"loss": "ce", "model": "small_cnn"}, lesions, meta),
        "sampler + augmentation": (
            "multiclass",
            {"loss": "ce", "model": "small_cnn", "sampler": "class_balanced", "augment": "preset"},
            lesions,
            meta,
        ),
        "two-phase": (
            "multiclass",
            {"loss": "ce", "model": "small_cnn", "resample": "ros", "schedule": "two_phase"},
            lesions,
            meta,
        ),
        "3D U-Net": (
            "segmentation",
            {"loss": "dice_ce", "model": "unet"},
            split(volumes, masks),
            seg_meta,
        ),
    }
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)

        def train_cases() -> dict:
            results = {}
            for name, (task, spec, data, case_meta) in cases.items():
                case_training = (
                    {**training, "batch_size": 4} if task == "segmentation" else training
                )
                if spec.get("resample") == "ros":  # two-phase pretrains on the oversampled rows
                    rows = random_oversampling(data.rows, data.train_targets[data.rows], seed=0)
                    data = dataclasses.replace(data, rows=rows)
                try:
                    result = train_case(
                        name, task, spec, data, case_meta, case_training, device, folder / name
                    )
                    result.pop("outputs")
                except Exception as error:
                    result = {"error": failure(error)}
                results[name] = result
            try:
                results["cDCGAN"] = gan_case(images, labels, device, epochs)
            except Exception as error:
                results["cDCGAN"] = {"error": failure(error)}
            return results

        section("cases", train_cases)
        section("resume", lambda: resume_check(lesions, meta, training, device, folder / "r"))
        bench_images = 2000 if quick else 10000
        section(
            "throughput",
            lambda: {
                "no augmentation": throughput(0.0, bench_images, device),
                "augmentation p = 0.3": throughput(0.3, bench_images, device),
            },
        )
        runs, slots = (2, [1, 2]) if quick else (args.runs, args.slots)
        report["jobs_per_gpu_runs"] = runs
        section(
            "jobs_per_gpu",
            lambda: {
                str(k): round(
                    jobs_per_gpu(runs, k, 12 if quick else 400, 3, folder / f"locks{k}"), 1
                )
                for k in slots
            },
        )
        section("streaming", lambda: streaming(device, quick))
        section("options", lambda: training_options(device, quick))
    report["markdown"] = markdown(report, device)
    print(report["markdown"])
    if args.out:
        args.out.write_text(json.dumps(report, indent=1, default=str))
    cases_run = [r for r in report.get("cases", {}).values() if "device" in r]
    if not all(r["device"].startswith(device.type) for r in cases_run):
        print("gpu_check: a run did not train on the selected device", file=sys.stderr)
        return 1
    failed = [*report["errors"], *(k for k, r in report.get("cases", {}).items() if "error" in r)]
    if failed:
        print(f"gpu_check: failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
