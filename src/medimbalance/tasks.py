"""Which losses, models, validation metrics and method features fit which task.

Standard library only: the workflow (``common.smk``) imports this table to refuse a method that
does not fit a dataset's task, or gives its resampler or loss an argument it does not take,
before any job runs. ``tests/test_tasks.py`` checks that every registered loss, model and
monitor appears here, and that the argument tables equal the builders' signatures.
"""

from __future__ import annotations

TASKS = ("multiclass", "binary", "multilabel", "segmentation", "regression")
CLASS_TASKS = ("multiclass", "binary")
IMAGE_TASKS = ("multiclass", "binary", "multilabel", "regression")  # one output vector per image
# Resamplers whose new images come from a generative model (medimbalance.gan) that the workflow
# trains in a rule of its own.
GENERATIVE = ("cdcgan", "diffusion")
# Resamplers that add new images (medimbalance.balancing.SYNTHESIZERS and the generative ones).
SYNTHESIZING = ("smote", *GENERATIVE)

LOSS_TASKS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(
        (
            "ce",
            "weighted_ce",
            "cb_ce",
            "focal",
            "cb_focal",
            "cb_sigmoid",
            "cb_softmax_focal",
            "ldam",
            "logit_adjusted",
            "balanced_softmax",
            "grw_ce",
            "label_aware_smoothing",
            "vs",
            "lade",
        ),
        CLASS_TASKS,
    ),
    **dict.fromkeys(("bce", "weighted_bce", "focal_bce", "asl"), ("multilabel",)),
    **dict.fromkeys(
        (
            "dice_ce",
            "gdl_wll",
            "seg_focal",
            "asym_focal",
            "large_margin",
            "asym_large_margin",
            "seg_ce",
            "dice",
            "tversky",
            "fbeta",
            "margin_focal",
            "asym_margin_focal",
        ),
        ("segmentation",),
    ),
    **dict.fromkeys(("mse", "lds_mse", "balanced_mse"), ("regression",)),
}

MODEL_TASKS: dict[str, tuple[str, ...]] = {
    "small_cnn": IMAGE_TASKS,
    "resnet18": IMAGE_TASKS,
    "densenet121": IMAGE_TASKS,
    "resnet50": IMAGE_TASKS,
    "efficientnet_b0": IMAGE_TASKS,
    "seresnet50": IMAGE_TASKS,
    "vit_b16": IMAGE_TASKS,
    "regression_cnn": IMAGE_TASKS,
    "unet": ("segmentation",),
    "basic_unet": ("segmentation",),
}

# Validation metrics that can choose the best epoch: whether larger is better, and the tasks
# they are defined for.
_MONITORS: dict[str, tuple[bool, tuple[str, ...]]] = {
    "balanced_accuracy": (True, CLASS_TASKS),
    "accuracy": (True, CLASS_TASKS),
    "macro_f1": (True, CLASS_TASKS),
    "auroc": (True, (*CLASS_TASKS, "multilabel")),
    "average_precision": (True, ("multilabel",)),
    "dice": (True, ("segmentation",)),
    "mse": (False, ("regression",)),
    "mae": (False, ("regression",)),
    "loss": (False, TASKS),
}
MONITORS = {name: larger for name, (larger, _) in _MONITORS.items()}  # larger is better?
MONITOR_TASKS = {name: tasks for name, (_, tasks) in _MONITORS.items()}
# ``training.monitor: auto`` picks this metric for each task.
DEFAULT_MONITOR = {
    "multiclass": "balanced_accuracy",
    "binary": "balanced_accuracy",
    "multilabel": "auroc",
    "segmentation": "dice",
    "regression": "mse",
}

# The keys of methods.<name>.resample_args that each resampler takes.
_EMBEDDING = ("embedding", "embedding_components")
RESAMPLE_ARGS: dict[str, tuple[str, ...]] = {
    "none": (),
    "ros": ("ratio",),
    "rus": ("ratio",),
    "tomek": _EMBEDDING,
    "enn": ("n_neighbors", *_EMBEDDING),
    "oss": _EMBEDDING,
    "smote": ("ratio", "k_neighbors", *_EMBEDDING),
    "cdcgan": ("ratio", "gan"),
    "diffusion": ("ratio", "diffusion"),
}

# The keys of methods.<name>.loss_args that each loss takes (its builder's keyword arguments).
LOSS_ARGS: dict[str, tuple[str, ...]] = {
    "ce": (),
    "weighted_ce": ("weighting", "beta"),
    "cb_ce": ("beta",),
    "focal": ("gamma",),
    "cb_focal": ("gamma", "beta", "prior_bias"),
    "cb_sigmoid": ("beta", "prior_bias"),
    "cb_softmax_focal": ("gamma", "beta"),
    "ldam": ("max_margin", "scale", "drw_epoch", "beta"),
    "logit_adjusted": ("tau",),
    "balanced_softmax": (),
    "grw_ce": ("rho",),
    "label_aware_smoothing": ("smooth_head", "smooth_tail", "shape"),
    "vs": ("gamma", "tau"),
    "lade": ("alpha", "remine_lambda"),
    "bce": (),
    "weighted_bce": (),
    "focal_bce": ("gamma",),
    "asl": ("gamma_pos", "gamma_neg", "clip"),
    "dice_ce": (),
    "gdl_wll": (),
    "seg_focal": ("gamma",),
    "asym_focal": ("gamma",),
    "large_margin": ("margin",),
    "asym_large_margin": ("margin",),
    "seg_ce": (),
    "dice": ("include_background",),
    "tversky": ("alpha", "beta", "include_background"),
    "fbeta": ("beta", "include_background"),
    "margin_focal": ("margin", "gamma"),
    "asym_margin_focal": ("margin", "gamma"),
    "mse": (),
    "lds_mse": ("bins", "kernel_size", "sigma", "power", "form", "kernel"),
    "balanced_mse": ("sigma", "learn_sigma", "form", "components"),
}

# Stage-2 methods of schedule: decoupled (medimbalance.decoupled), the keys of their
# stage2_args, and the loss each trains with unless the method names another.
STAGE2_METHODS = ("crt", "tau_norm", "lws", "ncm", "disalign", "mislas")
STAGE2_ARGS: dict[str, tuple[str, ...]] = {
    "crt": (),
    "tau_norm": ("tau", "keep_bias"),
    "lws": (),
    "ncm": (),
    "disalign": (),
    "mislas": ("shift_bn",),
}
STAGE2_LOSS = {"disalign": "grw_ce", "mislas": "label_aware_smoothing"}

# Losses whose ``beta`` is the effective-number β of Cui et al. (2019), in [0, 1).
EFFECTIVE_NUMBER_LOSSES = (
    "weighted_ce",
    "cb_ce",
    "cb_focal",
    "cb_sigmoid",
    "cb_softmax_focal",
    "ldam",
)

# Loss arguments whose valid values depend on the loss (the schema lists their union).
LOSS_CHOICES: dict[tuple[str, str], tuple[str, ...]] = {
    ("lds_mse", "form"): ("reference", "paper"),
    ("balanced_mse", "form"): ("bmc", "gai"),
}

# The tasks each batch mix applies to (medimbalance.augment: Mixup, BatchMix).
_LABELLED = ("multiclass", "binary", "multilabel")
MIXUP_TASKS: dict[str, tuple[str, ...]] = {
    "mixup": ("segmentation", *_LABELLED),
    "asymmetric": ("segmentation",),
    "cutmix": _LABELLED,
    "remix": CLASS_TASKS,
    "balanced_mixup": CLASS_TASKS,
}

# The tasks each resampler applies to: the diffusion model also makes images for multi-label
# data (conditioned on findings vectors) and image–mask pairs for 2D segmentation (conditioned
# on label maps); every other resampler needs one class per image.
RESAMPLE_TASKS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys((name for name in RESAMPLE_ARGS if name != "none"), CLASS_TASKS),
    "diffusion": (*CLASS_TASKS, "multilabel", "segmentation"),
}

# Method settings that only make sense for some tasks: (key, value that is always allowed, tasks).
METHOD_FEATURES = (
    ("schedule", "single", CLASS_TASKS),
    ("head", "linear", CLASS_TASKS),
    ("posthoc_tau", 0.0, CLASS_TASKS),
    ("sampler", "none", (*CLASS_TASKS, "multilabel")),
    ("adversarial", "none", ("segmentation",)),
    ("patch", {}, ("segmentation",)),
)

# A method's ``patch`` mapping (medimbalance.patches.PatchSpec): its keys, and MONAI's blend
# modes for overlapping sliding windows.
PATCH_KEYS = ("size", "foreground", "class_ratios", "per_epoch", "overlap", "blend", "locations")
BLENDS = ("gaussian", "constant")


def patch_errors(patch: dict, spatial_dims: int, num_classes: int, where: str = "patch") -> list:
    """What is wrong with a method's ``patch`` mapping for images of ``spatial_dims`` axes
    and ``num_classes`` classes (empty when nothing is)."""
    if not isinstance(patch, dict):
        return [f"{where} must be a mapping with a size, got {patch!r}"]
    errors = []
    unknown = sorted(set(patch) - set(PATCH_KEYS))
    if unknown:
        errors.append(f"{where}: unknown key(s) {unknown}; valid keys: {list(PATCH_KEYS)}")
    size = patch.get("size")
    if (
        not isinstance(size, list | tuple)
        or len(size) != spatial_dims
        or not all(isinstance(n, int) and n >= 1 for n in size)
    ):
        errors.append(f"{where}.size must list {spatial_dims} positive voxel counts, got {size!r}")
    foreground = patch.get("foreground", 0.33)
    if not isinstance(foreground, int | float) or not 0 <= foreground <= 1:
        errors.append(f"{where}.foreground must lie in [0, 1], got {foreground!r}")
    ratios = patch.get("class_ratios")
    if ratios is not None:
        if "foreground" in patch:
            errors.append(f"{where}: give foreground or class_ratios, not both")
        if (
            not isinstance(ratios, list | tuple)
            or len(ratios) != num_classes
            or not all(isinstance(r, int | float) and r >= 0 for r in ratios)
            or not sum(ratios) > 0
        ):
            errors.append(
                f"{where}.class_ratios must give {num_classes} non-negative weights (background "
                f"first), not all 0, got {ratios!r}"
            )
    overlap = patch.get("overlap", 0.5)
    if not isinstance(overlap, int | float) or not 0 <= overlap < 1:
        errors.append(f"{where}.overlap must lie in [0, 1), got {overlap!r}")
    if patch.get("blend", "gaussian") not in BLENDS:
        errors.append(f"{where}.blend must be one of {list(BLENDS)}, got {patch.get('blend')!r}")
    for key in ("per_epoch", "locations"):
        value = patch.get(key, 1)
        if not isinstance(value, int) or value < (0 if key == "per_epoch" else 1):
            errors.append(f"{where}.{key} must be a whole number ≥ {int(key != 'per_epoch')}")
    return errors


def method_errors(method: dict, task: str) -> list[str]:
    """Why a method (its config mapping) cannot run on data of ``task``; empty if it can."""
    errors = []
    loss, model = method.get("loss", "ce"), method.get("model", "small_cnn")
    if task not in LOSS_TASKS.get(loss, TASKS):
        errors.append(f"loss {loss!r} is for {' or '.join(LOSS_TASKS[loss])} data")
    if task not in MODEL_TASKS.get(model, TASKS):
        errors.append(f"model {model!r} is for {' or '.join(MODEL_TASKS[model])} data")
    resample = method.get("resample", "none")
    fits = RESAMPLE_TASKS.get(resample, CLASS_TASKS)
    if resample != "none" and task not in fits:
        errors.append(f"resample: {resample!r} needs {' or '.join(fits)} data")
    if task == "segmentation" and resample in GENERATIVE and method.get("patch"):
        errors.append(
            f"resample: {resample!r} adds whole image–mask pairs, which patch training does not "
            "read; train on whole images (no patch) or drop the resampler"
        )
    for key, neutral, tasks in METHOD_FEATURES:
        value = method.get(key, neutral)
        if value != neutral and task not in tasks:
            errors.append(f"{key}: {value!r} needs {' or '.join(tasks)} data")
    if task == "multilabel" and method.get("sampler", "none") not in ("none", "class_balanced"):
        errors.append(
            f"sampler: {method['sampler']!r} is for single-label data (multilabel: class_balanced)"
        )
    mixup = method.get("mixup", "none")
    if mixup != "none" and task not in MIXUP_TASKS.get(mixup, ()):
        errors.append(f"mixup: {mixup!r} needs {' or '.join(MIXUP_TASKS[mixup])} data")
    if method.get("augment") == "randaugment" and task not in _LABELLED:
        errors.append("augment: 'randaugment' needs multiclass or binary or multilabel data")
    if method.get("augment") == "foreground" and task != "segmentation":
        errors.append("augment: 'foreground' needs segmentation data (use 'preset')")
    return errors


def argument_errors(method: dict) -> list[str]:
    """Keys of a method's ``resample_args`` and ``loss_args`` that its resampler and loss do
    not take; empty when every key is taken."""
    errors = []
    for component, table in (("resample", RESAMPLE_ARGS), ("loss", LOSS_ARGS)):
        name = method.get(component, "ce" if component == "loss" else "none")
        given = method.get(f"{component}_args", {})
        unknown = sorted(set(given) - set(table.get(name, ())))
        if unknown and name in table:
            takes = ", ".join(table[name]) or "none"
            errors.append(
                f"{component}_args {unknown} do not apply to {component} {name!r} "
                f"(it takes: {takes})"
            )
    loss, given = method.get("loss", "ce"), method.get("loss_args", {})
    for (name, key), choices in LOSS_CHOICES.items():
        if name == loss and key in given and given[key] not in choices:
            errors.append(
                f"loss_args.{key} {given[key]!r} is not a {key} of loss {loss!r} "
                f"(valid: {', '.join(choices)})"
            )
    if loss in EFFECTIVE_NUMBER_LOSSES and not 0 <= given.get("beta", 0) < 1:
        errors.append(
            f"loss_args.beta {given['beta']} of loss {loss!r} is an effective-number beta: it "
            "must lie in [0, 1)"
        )
    if loss == "lds_mse" and given.get("form", "reference") == "reference":
        if given.get("power", 1.0) not in (0.5, 1.0):
            errors.append(
                f"loss_args.power {given['power']} has no reference form of lds_mse (0.5 or 1; "
                "form: paper takes any power)"
            )
    return errors


def resolve_monitor(monitor: str, task: str) -> str:
    """The validation metric a run of ``task`` monitors; ``auto`` picks the task's default.
    Raises ``ValueError`` when the metric is not defined for the task."""
    if monitor == "auto":
        return DEFAULT_MONITOR[task]
    if monitor not in MONITOR_TASKS:
        raise ValueError(
            f"unknown monitor {monitor!r}; valid choices: auto, {', '.join(MONITOR_TASKS)}"
        )
    if task not in MONITOR_TASKS[monitor]:
        raise ValueError(
            f"monitor {monitor!r} is for {' or '.join(MONITOR_TASKS[monitor])} data, not {task}; "
            f"choose one of: auto, {', '.join(m for m, t in MONITOR_TASKS.items() if task in t)}"
        )
    return monitor
