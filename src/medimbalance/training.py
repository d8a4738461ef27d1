"""The training loop: hook-shaped, seeded, checkpointed every epoch and resumable.

``fit`` runs ``train_one_epoch`` → ``evaluate`` → ``on_epoch_end`` for each epoch, keeps the
weights of the best epoch by the monitored validation metric, stops early after ``patience``
epochs without improvement, and writes a checkpoint after every epoch from which a killed run
continues exactly (same batches, same result on the CPU).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .adversarial import AdversarialPerturbation
from .augment import Augmenter, BatchMix, MixedTargets, Mixup
from .checkpoints import Checkpoints
from .config import MONITORS, TrainConfig
from .metrics import TASK_SCALARS, task_metrics
from .models import OUTPUT_LAYERS
from .optim import build_optimizer, build_scheduler
from .tasks import resolve_monitor

log = logging.getLogger(__name__)


# Training images up to this size (as float32) are moved to the device once; larger sets are
# read from their memory-mapped files batch by batch, so memory stays bounded.
PRELOAD_LIMIT_BYTES = 2 * 1024**3


def to_tensor(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """Images as float32 on ``device``: uint8 scaled to ``[-1, 1]`` (MedMNIST's
    ``Normalize(0.5, 0.5)``); float images (already normalised) unchanged."""
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device=device, dtype=torch.float32)
    return x.div_(255.0).sub_(0.5).div_(0.5) if images.dtype == np.uint8 else x


def to_labels(labels: np.ndarray, device: torch.device, task: str) -> torch.Tensor:
    """Targets on ``device``: class labels ``(N,)`` int64; multi-hot labels ``(N, L)`` and
    regression targets ``(N,)`` float32; segmentation masks ``(N, *spatial)`` as stored (uint8
    masks stay compact and are widened per batch by :func:`widen`)."""
    t = torch.from_numpy(np.ascontiguousarray(labels))
    if task in ("multilabel", "regression"):
        t = t.float()
    elif task != "segmentation":
        t = t.long()
    return t.to(device)


def widen(targets: torch.Tensor) -> torch.Tensor:
    """Integer targets as int64 (what the losses index with); float targets unchanged."""
    return targets if targets.is_floating_point() else targets.long()


@dataclass
class TensorSet:
    """Images ``(N, C, *spatial)`` float32 and their targets (``labels``, first axis ``N``),
    moved to the device once."""

    images: torch.Tensor
    labels: torch.Tensor

    @classmethod
    def from_arrays(
        cls, images: np.ndarray, labels: np.ndarray, device: torch.device, task: str
    ) -> TensorSet:
        return cls(to_tensor(images, device), to_labels(labels, device, task))

    def batch(self, idx: torch.Tensor) -> torch.Tensor:
        return self.images[idx]

    def targets(self, idx: torch.Tensor) -> torch.Tensor:
        return widen(self.labels[idx])

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class MemmapSet:
    """Images stay in their memory-mapped ``.npy`` file; each batch is read, scaled and moved
    when needed (bounded memory). ``rows[i]`` is the file row of sample ``i`` (repeats allowed,
    as after oversampling); targets (``labels``, first axis ``N``) live on the device."""

    images: np.ndarray
    rows: np.ndarray
    labels: torch.Tensor

    def batch(self, idx: torch.Tensor) -> torch.Tensor:
        return to_tensor(self.images[self.rows[idx.cpu().numpy()]], self.labels.device)

    def targets(self, idx: torch.Tensor) -> torch.Tensor:
        return widen(self.labels[idx])

    def __len__(self) -> int:
        return len(self.labels)


def load_set(
    images: np.ndarray,
    labels: np.ndarray,
    device: torch.device,
    rows: np.ndarray | None = None,
    *,
    task: str,
    preload_limit: int = PRELOAD_LIMIT_BYTES,
) -> TensorSet | MemmapSet:
    """The samples ``images[rows]`` (all rows by default) with their ``labels`` (aligned with
    ``rows``): preloaded on the device when they fit in ``preload_limit`` bytes as float32,
    else streamed from disk."""
    rows = np.arange(len(images)) if rows is None else np.asarray(rows)
    row_bytes = 4 * int(np.prod(images.shape[1:]))
    if len(rows) * row_bytes <= preload_limit:
        return TensorSet.from_arrays(images[rows], labels, device, task)
    return MemmapSet(images, rows, to_labels(labels, device, task))


def forward(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Logits in float32; the forward pass runs in bfloat16 autocast on CUDA (off on the CPU,
    where results stay bit-identical)."""
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=images.device.type == "cuda"):
        return model(images).float()


def train_one_epoch(
    model: nn.Module,
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: TensorSet | MemmapSet,
    *,
    batch_size: int,
    generator: torch.Generator,
    epoch: int,
    frozen_features: bool = False,
    reconstruct: bool = False,
    sampler_weights: torch.Tensor | None = None,
    augment: Augmenter | None = None,
    mix: Mixup | BatchMix | None = None,
    batch_losses: list[float] | None = None,
    sam_rho: float = 0.0,
    adversarial: AdversarialPerturbation | None = None,
) -> float:
    """One pass in a seeded random order; returns the mean training loss (and appends each
    batch's loss to ``batch_losses`` when given).

    ``frozen_features`` keeps every module in evaluation mode (fixed batch-norm statistics, no
    dropout) while the trainable parameters learn: two-phase fine-tuning. ``reconstruct``
    compares the output with the input images instead of the labels (autoencoders). With
    ``sampler_weights`` (one per sample), the epoch draws ``len(data)`` samples with replacement in
    proportion to them (a weighted random sampler) instead of a permutation. ``augment``
    transforms every batch on the fly, and ``mix`` (mixup) then blends it. ``sam_rho`` > 0
    makes every step sharpness-aware (:func:`sam_step`); ``adversarial`` adds a second step on
    the adversarially perturbed batch after each (:mod:`medimbalance.adversarial`).
    Raises ``FloatingPointError`` naming the epoch and batch when the loss is NaN or infinite.
    """
    model.eval() if frozen_features else model.train()
    if sampler_weights is None:
        order = torch.randperm(len(data), generator=generator)
    else:
        order = torch.multinomial(sampler_weights, len(data), replacement=True, generator=generator)
    order = order.to(data.labels.device)
    total, seen = 0.0, 0
    for batch, idx in enumerate(order.split(batch_size)):
        optimizer.zero_grad(set_to_none=True)
        x, y = data.batch(idx), data.targets(idx)
        if augment is not None:
            x, y = augment(x, y)
        if mix is not None:
            x, y = mix(x, y, generator)

        def batch_loss(x=x, y=y) -> torch.Tensor:
            out = forward(model, x)
            if isinstance(y, MixedTargets):
                return y.loss(loss_fn, out)
            return loss_fn(out, x if reconstruct else y)

        loss = batch_loss()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {loss.item()} at epoch {epoch}, batch {batch}")
        loss.backward()
        if sam_rho > 0:
            sam_step(optimizer, batch_loss, sam_rho)
        optimizer.step()
        if adversarial is not None:
            r = adversarial(model, x, y, generator)
            optimizer.zero_grad(set_to_none=True)
            batch_loss(x + r, y).backward()
            optimizer.step()
        total += loss.item() * idx.numel()
        seen += idx.numel()
        if batch_losses is not None:
            batch_losses.append(loss.item())
    return total / seen


@torch.no_grad()
def _norm(grads: list[torch.Tensor]) -> torch.Tensor:
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))


def sam_step(
    optimizer: torch.optim.Optimizer, batch_loss: Callable[[], torch.Tensor], rho: float
) -> None:
    """Turn the gradients already in the parameters into sharpness-aware ones (Foret et al.,
    "Sharpness-Aware Minimization for Efficiently Improving Generalization", ICLR 2021): move
    the weights to ``w + ρ g/‖g‖``, take the gradient of ``batch_loss`` there, and move them
    back, so that the optimizer's step uses ``∇L(w + ε)``. (Batch-norm statistics see the batch
    twice.)"""
    params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    if not params:
        return
    scale = rho / (_norm([p.grad for p in params]) + 1e-12)
    with torch.no_grad():
        moves = [p.grad * scale for p in params]
        for p, e in zip(params, moves, strict=True):
            p.add_(e)
    optimizer.zero_grad(set_to_none=True)
    batch_loss().backward()
    with torch.no_grad():
        for p, e in zip(params, moves, strict=True):
            p.sub_(e)


def ordered_indices(data: TensorSet | MemmapSet, batch_size: int) -> tuple[torch.Tensor, ...]:
    """The sample indices of ``data`` in order, ``batch_size`` at a time."""
    return torch.arange(len(data), device=data.labels.device).split(batch_size)


def ordered_batches(data: TensorSet | MemmapSet, batch_size: int) -> Iterator[torch.Tensor]:
    """The images of ``data`` in order, ``batch_size`` at a time."""
    for idx in ordered_indices(data, batch_size):
        yield data.batch(idx)


@torch.no_grad()
def predict_logits(
    model: nn.Module, data: TensorSet | MemmapSet, batch_size: int = 512
) -> torch.Tensor:
    """Logits ``(N, K)`` for every sample of ``data``, in order, in evaluation mode."""
    model.eval()
    return torch.cat([forward(model, x) for x in ordered_batches(data, batch_size)])


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loss_fn: nn.Module,
    data: TensorSet | MemmapSet,
    *,
    task: str,
    batch_size: int = 256,
) -> dict:
    """Validation loss (mean over samples) and the task's scalar metrics (``TASK_SCALARS``, but
    no Hausdorff distances), batch by batch: segmentation keeps only the predicted label maps."""
    model.eval()
    if hasattr(data, "logits"):  # whole cases by sliding windows (medimbalance.patches)
        return evaluate_cases(model, loss_fn, data, task=task)
    total, outputs = 0.0, []
    for idx in ordered_indices(data, batch_size):
        out = forward(model, data.batch(idx))
        total += float(loss_fn(out, data.targets(idx))) * len(idx)
        outputs.append((out.argmax(1).to(torch.uint8) if task == "segmentation" else out).cpu())
    outputs = torch.cat(outputs).numpy()
    names = [str(c) for c in range(out.shape[1])]
    m = task_metrics(task, data.labels.cpu().numpy(), outputs, names, hausdorff=False)
    scalars = {f"val_{k}": m[k] for k in TASK_SCALARS[task] if k in m}
    return {"val_loss": total / len(data), **scalars}


@torch.no_grad()
def evaluate_cases(model: nn.Module, loss_fn: nn.Module, data, *, task: str) -> dict:
    """:func:`evaluate` on whole cases inferred by sliding windows (a
    :class:`medimbalance.patches.CaseSet`), one case at a time: the loss is the mean over
    cases of each case's loss, the metrics are scored on each case at its own size."""
    from itertools import chain

    from .metrics import segmentation_scores

    losses = []

    def case(i: int) -> tuple[np.ndarray, np.ndarray, int]:  # prediction, truth, classes
        out = data.logits(model, i)
        mask = data.case(i)[1]
        losses.append(float(loss_fn(out, mask)))
        return out.argmax(1)[0].cpu().numpy(), mask[0].cpu().numpy(), out.shape[1]

    first = case(0)
    names = [str(c) for c in range(first[2])]
    cases = ((p, t, None) for p, t, _ in chain([first], (case(i) for i in range(1, len(data)))))
    m = segmentation_scores(cases, names, hausdorff=False)
    scalars = {f"val_{k}": m[k] for k in TASK_SCALARS[task] if k in m}
    return {"val_loss": sum(losses) / len(losses), **scalars}


def log_epoch(record: dict) -> None:
    """Default ``on_epoch_end`` hook: one progress line per epoch (``epoch=5/15`` when the
    record carries the planned number of epochs as ``of``)."""
    shown = dict(record)
    if "of" in shown:
        shown["epoch"] = f"{shown['epoch']}/{shown.pop('of')}"
    log.info(
        " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items())
    )


def fit(
    model: nn.Module,
    loss_fn: nn.Module,
    train: TensorSet | MemmapSet,
    val: TensorSet | MemmapSet,
    cfg: TrainConfig,
    seed: int,
    *,
    task: str,
    phase: str = "train",
    checkpoints: Checkpoints | None = None,
    trainable: Iterable[nn.Parameter] | None = None,
    sampler_weights: torch.Tensor | None = None,
    augment: Augmenter | None = None,
    mix: Mixup | BatchMix | None = None,
    adversarial: AdversarialPerturbation | None = None,
    on_epoch_end: Callable[[dict], None] = log_epoch,
) -> list[dict]:
    """Train ``model`` for ``cfg.epochs`` epochs (fewer with early stopping) on data of
    ``task``; returns the history and leaves the best epoch's weights in ``model``.

    A run whose parameters become NaN or infinite, or whose loss grows past
    ``cfg.divergence_factor`` × its initial loss, fails (:func:`check_divergence`).
    ``trainable`` restricts learning to those parameters (the rest stay frozen, in evaluation
    mode); otherwise the model and the loss's own learnable parameters (Balanced MSE's noise
    scale) learn. With ``checkpoints``, the state after every epoch is saved as ``phase``, and
    a state of this phase and run found at the start is resumed. ``sampler_weights`` (per
    sample) turn on a weighted random sampler, ``augment`` on-the-fly augmentation (reseeded
    from ``(seed, epoch)`` every epoch so a resumed run repeats it) and ``mix`` mixup.
    """
    if trainable is not None:
        params = list(trainable)
    else:
        params = [*model.parameters(), *(p for p in loss_fn.parameters() if p.requires_grad)]
    optimizer = build_optimizer(cfg, params)
    scheduler = build_scheduler(cfg, optimizer)
    generator = torch.Generator().manual_seed(seed)
    monitor = resolve_monitor(cfg.monitor, task)
    larger_is_better = MONITORS[monitor]
    parts = dict(
        model=model, loss=loss_fn, optimizer=optimizer, scheduler=scheduler, generator=generator
    )
    state = fresh_state()
    if checkpoints is not None:
        state = checkpoints.restore(phase, parts) or state
    while not state["done"] and state["epoch"] < cfg.epochs:
        epoch = state["epoch"] + 1
        if hasattr(loss_fn, "set_epoch"):  # deferred re-weighting (LDAM-DRW) follows the epoch
            loss_fn.set_epoch(epoch)
        if augment is not None:
            augment.reseed(seed, epoch)
        if hasattr(train, "reseed"):  # patches: this epoch's draws (medimbalance.patches)
            train.reseed(seed, epoch)
        batch_losses = []
        train_loss = train_one_epoch(
            model,
            loss_fn,
            optimizer,
            train,
            batch_size=cfg.batch_size,
            generator=generator,
            epoch=epoch,
            frozen_features=trainable is not None,
            sampler_weights=sampler_weights,
            augment=augment,
            mix=mix,
            batch_losses=batch_losses,
            sam_rho=cfg.sam_rho,
            adversarial=adversarial,
        )
        lr = optimizer.param_groups[0]["lr"]
        scheduler.step()
        record = {"phase": phase, "epoch": epoch, "lr": lr, "train_loss": train_loss}
        record.update(evaluate(model, loss_fn, val, task=task))
        score = record[f"val_{monitor}"]  # None when undefined (an AUROC without positives)
        if state["best_weights"] is None or _improves(score, state["best"], larger_is_better):
            state.update(
                best=score,
                best_epoch=epoch,
                best_weights=copy.deepcopy(model.state_dict()),
                stale=0,
            )
        else:
            state["stale"] += 1
        state["epoch"] = epoch
        state["history"].append(record)
        if state["initial_loss"] is None:  # the first batch's, before any step
            state["initial_loss"] = batch_losses[0]
        check_divergence(
            f"phase {phase}, epoch {epoch}", train_loss, state["initial_loss"], params, cfg
        )
        state["done"] = epoch == cfg.epochs or 0 < cfg.patience <= state["stale"]
        if checkpoints is not None:
            checkpoints.save(phase, parts, state)
        on_epoch_end({**record, "of": cfg.epochs})
    model.load_state_dict(state["best_weights"])
    kept = state["best_epoch"]
    for record in state["history"]:  # the epoch whose weights the model keeps
        record["kept"] = record["epoch"] == kept
    log.info(
        "phase %s: kept epoch %d of %d (best val_%s = %s)",
        phase,
        kept,
        state["epoch"],
        monitor,
        "undefined" if state["best"] is None else f"{state['best']:.4g}",
    )
    return state["history"]


class TrainingDivergedError(FloatingPointError):
    """Training diverged: a parameter became NaN or infinite, or the loss exploded."""


def check_divergence(
    where: str, loss: float, initial: float, params: Iterable[nn.Parameter], cfg: TrainConfig
) -> None:
    """Raise :class:`TrainingDivergedError` naming ``where`` when a parameter is NaN or infinite,
    or when an epoch's mean training ``loss`` exceeds ``cfg.divergence_factor`` × the
    ``initial`` loss (the first batch's, before any optimisation step; when it is positive, and
    unless the factor is 0)."""
    for param in params:
        if not torch.isfinite(param).all():
            raise TrainingDivergedError(
                f"training diverged: parameters are NaN or infinite after {where}; lower "
                f"training.lr (now {cfg.lr:g})"
            )
    factor = cfg.divergence_factor
    if factor and initial > 0 and loss > factor * initial:
        raise TrainingDivergedError(
            f"training diverged: mean training loss {loss:.4g} at {where} is more than "
            f"training.divergence_factor = {factor:g} times the initial loss {initial:.4g}; "
            f"lower training.lr (now {cfg.lr:g}), or set divergence_factor: 0 to allow it"
        )


def fresh_state() -> dict:
    """The loop state before the first epoch; checkpoints save and restore exactly these keys."""
    return {
        "epoch": 0,
        "history": [],
        "best": None,
        "best_epoch": None,  # the epoch of best_weights
        "best_weights": None,
        "stale": 0,
        "done": False,
        "initial_loss": None,  # the first batch's loss, the scale of divergence checks
    }


def _improves(score: float | None, best: float | None, larger_is_better: bool) -> bool:
    """Whether a monitored ``score`` beats the ``best`` so far (an undefined score never does)."""
    if score is None:
        return False
    return best is None or (score > best if larger_is_better else score < best)


def last_layer(model: nn.Module) -> nn.Module:
    """The output layer of ``model`` (its last linear or cosine classifier): the layer before
    the softmax."""
    heads = [m for m in model.modules() if isinstance(m, OUTPUT_LAYERS)]
    if not heads:
        raise ValueError(f"{type(model).__name__} has no linear output layer to fine-tune")
    return heads[-1]


def fine_tune_last_layer(
    model: nn.Module,
    loss_fn: nn.Module,
    train: TensorSet | MemmapSet,
    val: TensorSet | MemmapSet,
    cfg: TrainConfig,
    seed: int,
    *,
    task: str,
    checkpoints: Checkpoints | None = None,
    on_epoch_end: Callable[[dict], None] = log_epoch,
) -> list[dict]:
    """Phase 2 of two-phase training: only the last layer learns, on ``train`` (the original
    imbalanced set), with the same hyperparameters and learning-rate policy.

    Buda et al., "A systematic study of the class imbalance problem in convolutional neural
    networks", Neural Networks 2018.
    """
    head = last_layer(model)
    for p in model.parameters():
        p.requires_grad_(False)
    for p in head.parameters():
        p.requires_grad_(True)
    try:
        return fit(
            model,
            loss_fn,
            train,
            val,
            cfg,
            seed,
            task=task,
            phase="finetune",
            checkpoints=checkpoints,
            trainable=head.parameters(),
            on_epoch_end=on_epoch_end,
        )
    finally:
        for p in model.parameters():
            p.requires_grad_(True)
