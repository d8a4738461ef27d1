"""Typed run configuration, resolved from the workflow config and saved with every run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace

from .tasks import MONITORS, TASKS, resolve_monitor

OPTIMIZERS = ("adam", "sgd")
LR_SCHEDULES = ("constant", "step", "cosine")
MIXUPS = ("none", "mixup", "asymmetric", "cutmix", "remix", "balanced_mixup")
SAMPLERS = ("none", "class_balanced", "sqrt", "effective_number")  # balancing.sample_weights
AUGMENTS = ("none", "preset", "foreground", "randaugment")  # augment.build_augmenter


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings shared by every method unless a method overrides them."""

    epochs: int = 10  # passes over the (resampled) training set, per phase
    batch_size: int = 64  # images per optimisation step
    lr: float = 1e-3  # initial learning rate
    weight_decay: float = 0.0  # L2 penalty
    momentum: float = 0.9  # SGD momentum (Adam ignores it)
    optimizer: str = "adam"  # "adam" or "sgd" (with ``momentum``)
    lr_schedule: str = "constant"  # "constant", "step" (× gamma at each milestone) or "cosine"
    milestones: tuple[int, ...] = ()  # epochs after which "step" multiplies the rate by gamma
    gamma: float = 0.1  # step decay factor
    warmup_epochs: int = 0  # linear warm-up from lr/warmup_epochs to lr over these epochs
    monitor: str = "auto"  # validation metric choosing the best epoch ("auto": the task's default)
    patience: int = 0  # stop after this many epochs without improvement (0: never)
    # fail the run when an epoch's mean training loss exceeds this multiple of the first
    # epoch's (a diverged optimisation whose loss is still finite); 0: never
    divergence_factor: float = 1000.0
    # sharpness-aware minimisation: each step descends from the weights moved by sam_rho along
    # the normalised gradient (Foret et al., ICLR 2021); 0: plain steps
    sam_rho: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "milestones", tuple(self.milestones))
        for name, choices in (
            ("optimizer", OPTIMIZERS),
            ("lr_schedule", LR_SCHEDULES),
            ("monitor", ("auto", *MONITORS)),
        ):
            if getattr(self, name) not in choices:
                raise ValueError(
                    f"training.{name}: unknown {getattr(self, name)!r}; valid choices: "
                    f"{', '.join(choices)}"
                )
        if self.warmup_epochs < 0 or self.patience < 0:
            raise ValueError("training.warmup_epochs and training.patience must be ≥ 0")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"training.{name} must be ≥ 1, got {getattr(self, name)}")
        if self.sam_rho < 0:
            raise ValueError(f"training.sam_rho must be ≥ 0, got {self.sam_rho}")
        if self.lr <= 0:
            raise ValueError(f"training.lr must be > 0, got {self.lr}")
        if self.weight_decay < 0:
            raise ValueError(f"training.weight_decay must be ≥ 0, got {self.weight_decay}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"training.momentum must be in [0, 1), got {self.momentum}")
        if self.divergence_factor != 0 and self.divergence_factor <= 1:
            raise ValueError(
                f"training.divergence_factor must be 0 (off) or > 1, got {self.divergence_factor}"
            )


@dataclass(frozen=True)
class MethodSpec:
    """A named recipe: each component is chosen by name from a library registry."""

    resample: str = "none"  # balancing.RESAMPLERS
    resample_args: dict = field(default_factory=dict)  # e.g. ratio; embedding for cleaning
    loss: str = "ce"  # losses.LOSSES
    model: str = "small_cnn"  # models.MODELS
    head: str = "linear"  # output layer: "linear" or "cosine" (normalised, as LDAM uses)
    schedule: str = "single"  # "single": one phase on the resampled set; "two_phase": Buda et al.
    loss_args: dict = field(default_factory=dict)  # keyword arguments of the loss (e.g. gamma)
    posthoc_tau: float = 0.0  # post-hoc logit adjustment of predictions: z − τ log π (0: none)
    measure: str = "squared"  # one_class: reconstruction error measure (one_class.MEASURES)
    # batch mixing: mixup (every task), asymmetric (segmentation: foreground labels kept hard),
    # cutmix, remix, balanced_mixup (image-level tasks; augment.BatchMix)
    mixup: str = "none"
    mixup_alpha: float = 0.2  # mixing weights λ ~ Beta(α, α) (Balanced-MixUp: Beta(α, 1))
    sampler: str = "none"  # weighted random sampler: class_balanced, sqrt or effective_number
    sampler_beta: float = 0.999  # β of the effective_number sampler
    augment: str = "none"  # on-the-fly augmentation: "preset" (every sample) or "foreground"
    augment_prob: float = 0.3  # probability of each transform of the preset
    randaugment_n: int = 2  # randaugment: operations per image (Cubuk et al. 2020's N)
    randaugment_m: float = 9.0  # randaugment: their magnitude, 0 to 10 (M)
    stage1: str = ""  # decoupled: the method whose trained network is the stage-1 representation
    stage2: str = "crt"  # decoupled: how the classifier is re-balanced (decoupled.STAGE2_METHODS)
    stage2_args: dict = field(default_factory=dict)  # decoupled: e.g. tau for tau_norm
    # segmentation: an adversarial step after each step (adversarial.py), Li et al. 2021
    adversarial: str = "none"  # "symmetric" or "asymmetric" (foreground voxels only)
    adversarial_eps: float = 10.0  # size of the perturbation (L2 norm per image)
    adversarial_xi: float = 1e-5  # size of the random probe
    # weights from a local checkpoint: file, md5, strip_prefix, channels (medimbalance.pretrained)
    pretrained: dict = field(default_factory=dict)
    # segmentation: train on patches, infer by sliding windows (medimbalance.patches); {}: whole
    patch: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, choices in (("mixup", MIXUPS), ("sampler", SAMPLERS), ("augment", AUGMENTS)):
            if getattr(self, name) not in choices:
                raise ValueError(
                    f"{name}: unknown {getattr(self, name)!r}; valid choices: {', '.join(choices)}"
                )
        if not 0 <= self.sampler_beta < 1:
            raise ValueError(f"sampler_beta must lie in [0, 1), got {self.sampler_beta}")
        if not 0 <= self.augment_prob <= 1:
            raise ValueError(f"augment_prob must lie in [0, 1], got {self.augment_prob}")
        if self.mixup_alpha <= 0:
            raise ValueError(f"mixup_alpha must be > 0, got {self.mixup_alpha}")


@dataclass(frozen=True)
class RunConfig:
    """Everything that identifies and drives one training run (``run_config.json``)."""

    study: str
    dataset: str
    task: str  # medimbalance.tasks.TASKS
    profile: str
    method: str
    seed: int  # seeds model initialisation, batch order and resampling
    spec: MethodSpec
    training: TrainConfig

    @classmethod
    def from_dict(cls, d: dict) -> RunConfig:
        """Build and check a run config; ``training.monitor: auto`` becomes the task's metric."""
        task = d.get("task")
        if task not in TASKS:
            raise ValueError(f"task: unknown {task!r}; valid choices: {', '.join(TASKS)}")
        training = _build(TrainConfig, d["training"], "training")
        try:
            training = replace(training, monitor=resolve_monitor(training.monitor, task))
        except ValueError as error:
            raise ValueError(f"training.monitor: {error}") from None
        return cls(
            study=d["study"],
            dataset=d["dataset"],
            task=task,
            profile=d["profile"],
            method=d["method"],
            seed=int(d["seed"]),
            spec=_build(MethodSpec, d["spec"], "methods." + d["method"]),
            training=training,
        )

    def to_dict(self) -> dict:
        return asdict(self)


def _build(kind, values: dict, where: str):
    known = {f.name for f in fields(kind)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(known)}")
    return kind(**values)
