"""Decoupled two-stage training: a representation learnt once (stage 1, an ordinary run of
another method, shared by every stage-2 method that names it), then only the classifier
re-balanced on the frozen features (stage 2).

Kang et al., "Decoupling Representation and Classifier for Long-Tailed Recognition", ICLR
2020, and the methods that followed it:

- ``crt``: classifier re-training — a new linear layer trained with class-balanced sampling;
- ``tau_norm``: each class's weight vector divided by its norm to the power τ
  (``w_c / ‖w_c‖^τ``), no training; τ given, or chosen on the validation split from 0, 0.1, …,
  2 (the grid of Kang et al.'s script) by the run's monitored metric;
- ``lws``: learnable weight scaling — one scale per class learnt with class-balanced sampling,
  the weights frozen (folded into the linear layer afterwards);
- ``ncm``: nearest class mean on centred, L2-normalised features (no training);
- ``disalign``: distribution alignment (Zhang et al., CVPR 2021) — a per-class magnitude and
  margin gated by an input-dependent confidence, learnt with the generalized re-weighting loss
  on the instance-balanced set;
- ``mislas``: Zhong et al., "Improving Calibration for Long-Tailed Recognition", CVPR 2021 —
  batch-norm statistics re-estimated on class-balanced batches ("shifted" batch norm), then
  the classifier and a per-class scale learnt with label-aware smoothing and class-balanced
  sampling (their stage 1 trains with mixup).

Stage 2 works on features computed once: the input of the stage-1 network's output layer for
every image of the profile's training set (un-augmented), the validation and the test split.
Its epochs therefore cost a pass over a feature matrix, not over the images; the network that
is saved is the stage-1 network with its output layer replaced, so it runs on images like any
other.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from .balancing import sample_weights
from .metrics import task_metrics
from .models import DisAlignClassifier, NCMClassifier, replace_head
from .tasks import MONITORS, STAGE2_METHODS
from .training import TensorSet, fit, last_layer, predict_logits

if TYPE_CHECKING:
    from .schedules import TrainingJob

log = logging.getLogger(__name__)

TAU_GRID = tuple(round(t, 1) for t in np.linspace(0, 2, 21))  # Kang et al.'s τ values


@torch.no_grad()
def extract_features(model: nn.Module, data, batch_size: int = 512) -> torch.Tensor:
    """The input of ``model``'s output layer ``(N, F)`` float32 for every sample of ``data``, in
    order, in evaluation mode."""
    captured: list[torch.Tensor] = []
    hook = last_layer(model).register_forward_hook(
        lambda module, inputs, output: captured.append(inputs[0].detach().float())
    )
    try:
        predict_logits(model, data, batch_size)
    finally:
        hook.remove()
    return torch.cat(captured)


def tau_normalised(layer: nn.Linear, tau: float, keep_bias: bool = True) -> nn.Linear:
    """A copy of ``layer`` whose class weight vectors are ``w_c / ‖w_c‖^τ`` (Kang et al. 2020);
    τ = 0 leaves them as they are. The bias is kept unless ``keep_bias`` is false (Kang et
    al.'s evaluation script drops it)."""
    if tau < 0:
        raise ValueError(f"tau must be ≥ 0, got {tau}")
    out = nn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None)
    out = out.to(layer.weight.device)
    with torch.no_grad():
        norms = layer.weight.norm(dim=1, keepdim=True)
        out.weight.copy_(layer.weight / norms.pow(tau))
        if out.bias is not None:
            out.bias.copy_(layer.bias if keep_bias else torch.zeros_like(layer.bias))
    return out


class ScaledLinear(nn.Module):
    """``f ⊙ (Wx + b)`` with one learnable scale ``f_c`` per class (starting at 1) on a copy of
    ``layer``; ``W`` and ``b`` learn too when ``learn_weights`` (MiSLAS) and stay frozen
    otherwise (LWS, Kang et al. 2020). :meth:`fold` gives the equivalent linear layer."""

    def __init__(self, layer: nn.Linear, learn_weights: bool = False) -> None:
        super().__init__()
        self.linear = nn.Linear(layer.in_features, layer.out_features).to(layer.weight.device)
        self.linear.load_state_dict(layer.state_dict())
        self.linear.requires_grad_(learn_weights)
        self.scales = nn.Parameter(torch.ones(layer.out_features, device=layer.weight.device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) * self.scales

    @torch.no_grad()
    def fold(self) -> nn.Linear:
        out = nn.Linear(self.linear.in_features, self.linear.out_features)
        out = out.to(self.scales.device)
        out.weight.copy_(self.linear.weight * self.scales[:, None])
        out.bias.copy_(self.linear.bias * self.scales)
        return out


@torch.no_grad()
def shift_batch_norm(
    model: nn.Module, data, weights: torch.Tensor, batch_size: int, seed: int
) -> int:
    """Re-estimate the running statistics of every batch-norm layer of ``model`` from one epoch
    of batches drawn with per-sample ``weights`` (class-balanced for MiSLAS), as a cumulative
    average; nothing else changes. Returns the number of layers re-estimated (0 for networks
    with instance norm only, such as ``small_cnn``)."""
    layers = [
        m
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
    ]
    if not layers:
        return 0
    momenta = [m.momentum for m in layers]
    generator = torch.Generator().manual_seed(seed)
    order = torch.multinomial(weights, len(data), replacement=True, generator=generator)
    model.eval()
    try:
        for m in layers:
            m.reset_running_stats()
            m.momentum = None  # cumulative moving average over the epoch
            m.train()
        for idx in order.to(data.labels.device).split(batch_size):
            model(data.batch(idx))
    finally:
        for m, momentum in zip(layers, momenta, strict=True):
            m.momentum = momentum
        model.eval()
    return len(layers)


def choose_tau(
    layer: nn.Linear,
    features: torch.Tensor,
    labels: torch.Tensor,
    monitor: str,
    task: str,
    keep_bias: bool = True,
) -> tuple[float, list[dict]]:
    """The τ of :data:`TAU_GRID` whose normalised layer scores best on ``features`` (the
    validation split) by ``monitor`` (ties: the smallest τ), and the score of each."""
    larger = MONITORS[monitor]
    scores = []
    classes = [str(c) for c in range(layer.out_features)]
    target = labels.cpu().numpy()
    for tau in TAU_GRID:
        with torch.no_grad():
            logits = tau_normalised(layer, tau, keep_bias)(features).cpu().numpy()
        value = task_metrics(task, target, logits, classes)[monitor]
        scores.append({"tau": tau, f"val_{monitor}": value})
    values = [s[f"val_{monitor}"] for s in scores]
    best = (max if larger else min)(values)
    return TAU_GRID[values.index(best)], scores


def train_stage2(job: TrainingJob) -> tuple[nn.Module, list[dict], str]:
    """Stage 2 of ``job``'s decoupled method on its stage-1 network (``job.stage1``): the network
    with its output layer replaced, the history and the kind of its new output layer (``linear``,
    ``ncm`` or ``disalign``)."""
    spec, run = job.run.spec, job.run
    name, args = spec.stage2, dict(spec.stage2_args)
    if name not in STAGE2_METHODS:
        raise ValueError(f"unknown stage2 {name!r}; valid choices: {', '.join(STAGE2_METHODS)}")
    model = job.stage1
    if model is None:
        raise ValueError(f"method {run.method!r}: schedule decoupled needs its stage-1 network")
    head = last_layer(model)
    if type(head) is not nn.Linear:
        raise ValueError(
            f"stage2 {name!r} re-balances a linear output layer; the stage-1 network of "
            f"{spec.stage1!r} ends in {type(head).__name__}"
        )
    for p in model.parameters():
        p.requires_grad_(False)
    a = job.arrays
    rows = a.profile_rows
    train = job.load(a.train_images, a.train_targets[rows], rows)
    stats = job.stats(rows)
    labels = train.labels
    balanced = torch.from_numpy(
        sample_weights(labels.cpu().numpy(), len(job.classes), "class_balanced")
    )
    cfg = run.training
    if name == "mislas" and args.get("shift_bn", True):
        shifted = shift_batch_norm(model, train, balanced, cfg.batch_size, run.seed)
        log.info("shifted batch norm: %d layer(s) re-estimated on class-balanced batches", shifted)
    features = {
        split: extract_features(model, data) for split, data in (("train", train), ("val", job.val))
    }
    log.info(
        "stage 2 %s on the frozen features of %s: %d training images, %d features",
        name,
        spec.stage1,
        len(labels),
        features["train"].shape[1],
    )
    train_f = TensorSet(features["train"], labels)
    val_f = TensorSet(features["val"], job.val.labels)

    def learn(layer: nn.Module, trainable, sampler) -> list[dict]:
        return fit(
            layer,
            job.loss(stats),
            train_f,
            val_f,
            cfg,
            run.seed,
            task=run.task,
            phase="stage2",
            checkpoints=job.checkpoints,
            trainable=trainable,
            sampler_weights=sampler,
        )

    history: list[dict] = []
    kind = "linear"
    if name == "crt":
        layer = nn.Linear(head.in_features, head.out_features).to(job.device)
        history = learn(layer, list(layer.parameters()), balanced)
    elif name in ("lws", "mislas"):
        scaled = ScaledLinear(head, learn_weights=name == "mislas")
        history = learn(scaled, [p for p in scaled.parameters() if p.requires_grad], balanced)
        layer = scaled.fold()
    elif name == "disalign":
        layer = DisAlignClassifier(head.in_features, head.out_features).to(job.device)
        with torch.no_grad():
            layer.weight.copy_(head.weight)
            layer.bias.copy_(head.bias)
        layer.weight.requires_grad_(False)
        layer.bias.requires_grad_(False)
        trainable = [layer.scale, layer.margin, layer.gate_weight, layer.gate_bias]
        history = learn(layer, trainable, None)  # GRW re-weights the instance-balanced set
        kind = "disalign"
    elif name == "ncm":
        layer = NCMClassifier(head.in_features, head.out_features).to(job.device)
        layer.fit(features["train"], labels)
        kind = "ncm"
    else:  # tau_norm
        keep_bias = bool(args.get("keep_bias", True))
        tau = args.get("tau", "auto")
        if tau == "auto":
            tau, scores = choose_tau(
                head, features["val"], job.val.labels, cfg.monitor, run.task, keep_bias
            )
            history = [{"phase": "stage2", **s, "chosen": s["tau"] == tau} for s in scores]
            log.info("tau-normalisation: tau %.1f chosen on the validation split", tau)
        layer = tau_normalised(head, float(tau), keep_bias)
    replace_head(model, layer)
    model.requires_grad_(True)
    return model.eval(), history, kind
