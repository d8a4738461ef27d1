"""Cross-field config checks that JSON Schema cannot express, run before any job.

Standard library only (``common.smk`` imports it); the config is the one the schema validated,
defaults filled in. Each error names its config key and what was expected.
"""

from __future__ import annotations

from .config import TrainConfig
from .data.sources import PROFILE_TASKS, declared_geometry, task_of
from .study import Study
from .tasks import (
    CLASS_TASKS,
    GENERATIVE,
    STAGE2_ARGS,
    SYNTHESIZING,
    argument_errors,
    method_errors,
    patch_errors,
    resolve_monitor,
)


def config_errors(config: dict) -> list[str]:
    """Every cross-field error of a validated study config (empty when it is sound)."""
    study = Study(config)
    errors = []
    for name, dataset in study.datasets.items():
        where = f"config key datasets.{name}"
        split = dataset["split"]
        if split["val"] + split["test"] >= 1:
            errors.append(
                f"{where}.split: val + test must be < 1 to leave training images, "
                f"got {split['val']} + {split['test']}"
            )
        try:
            task = task_of(dataset)
        except ValueError as error:
            errors.append(f"{where}: {error}")
            continue
        errors += _profile_errors(study, name, task) + _method_errors(study, name, task)
    for name, method in study.methods.items():
        errors += [
            f"config key methods.{name}: {e}" for e in argument_errors(study.method_spec(name))
        ]
        errors += _schedule_errors(name, method) + _decoupled_errors(study, name, method)
    groups = study.evaluation["shot_groups"]
    if groups["rule"] == "thresholds" and groups["few"] > groups["many"]:
        errors.append(
            "config key evaluation.shot_groups: few-shot classes have fewer than `few` training "
            f"images and many-shot ones more than `many`, so few ({groups['few']}) must not "
            f"exceed many ({groups['many']})"
        )
    return (
        errors
        + _shift_errors(study)
        + _test_on_errors(study)
        + _table_errors(study)
        + _figure_errors(study)
    )


def _table_errors(study: Study) -> list[str]:
    """Every cell of a declared table names runs the study makes and a metric; published
    values and the reference row name rows and columns of the table."""
    errors = []
    for name, spec in study.tables.items():
        where = f"config key tables.{name}"
        rows = [r["label"] for r in spec["rows"]]
        columns = [c["label"] for c in spec["columns"]]
        for kind, labels in (("row", rows), ("column", columns)):
            repeated = sorted({label for label in labels if labels.count(label) > 1})
            if repeated:
                errors.append(f"{where}: {kind} label(s) {repeated} used more than once")
        for cell in study.table_cells(name):
            at = f"{where}, row {cell['row']!r}, column {cell['column']!r}"
            missing = [k for k in ("dataset", "method", "metric") if not cell.get(k)]
            if missing:
                errors.append(
                    f"{at}: no {', '.join(missing)} (set it in select, the row or the column)"
                )
                continue
            dataset, method = cell["dataset"], cell["method"]
            if dataset not in study.datasets:
                errors.append(f"{at}: unknown dataset {dataset!r}")
                continue
            if "profile" not in cell:
                errors.append(
                    f"{at}: dataset {dataset!r} has several profiles; name one "
                    f"({', '.join(study.dataset_profiles(dataset))})"
                )
            elif cell["profile"] not in study.dataset_profiles(dataset):
                errors.append(
                    f"{at}: dataset {dataset!r} is not studied under profile {cell['profile']!r}"
                )
            if method not in study.dataset_methods(dataset):
                errors.append(f"{at}: method {method!r} is not trained on dataset {dataset!r}")
            else:
                for test_set in cell["test_sets"]:
                    if test_set != dataset and (
                        test_set not in study.test_sets(dataset)
                        or method not in study.cross_methods(dataset)
                    ):
                        errors.append(
                            f"{at}: dataset {dataset!r}'s runs of {method!r} are not scored on "
                            f"{test_set!r}; add it to datasets.{dataset}.test_on"
                        )
        published = spec.get("published", {}).get("values", {})
        for row, values in published.items():
            unknown = [c for c in values if c not in columns]
            if row not in rows or unknown:
                errors.append(
                    f"{where}.published.values: {row!r} / {unknown or list(values)} are not "
                    f"rows / columns of the table (rows {rows}, columns {columns})"
                )
        if spec.get("reference") and spec["reference"] not in rows:
            errors.append(f"{where}.reference: {spec['reference']!r} is not a row ({rows})")
        if spec.get("test", "none") != "none" and not spec.get("reference"):
            errors.append(f"{where}.test: a paired test needs a reference row")
    return errors


def _figure_errors(study: Study) -> list[str]:
    """A declared figure's dataset, profiles and methods are ones the study runs, and its x
    axis suits the dataset's task."""
    errors = []
    for name, spec in study.figures.items():
        where, dataset = f"config key figures.{name}", spec["dataset"]
        if dataset not in study.datasets:
            errors.append(f"{where}.dataset: unknown dataset {dataset!r}")
            continue
        for key, chosen, studied in (
            ("profiles", study.figure_profiles(name), study.dataset_profiles(dataset)),
            ("methods", study.figure_methods(name), study.dataset_methods(dataset)),
        ):
            unknown = [n for n in chosen if n not in studied]
            if unknown:
                errors.append(
                    f"{where}.{key}: {unknown} not studied on dataset {dataset!r} (its {key}: "
                    f"{studied})"
                )
        if len(study.figure_profiles(name)) < 2:
            errors.append(f"{where}.profiles: a sweep needs at least 2 profiles")
        task = study.tasks[dataset]
        if spec["x"] == "imbalance_factor" and task not in (*CLASS_TASKS, "multilabel"):
            errors.append(
                f"{where}.x: imbalance_factor needs class labels, dataset {dataset!r} is "
                f"{task}; use training_fraction"
            )
    return errors


def _test_on_errors(study: Study) -> list[str]:
    """An external test set must be another dataset of the same task whose images and classes
    fit the training dataset's models (as far as the config tells)."""
    errors = []
    for name in study.datasets:
        where = f"config key datasets.{name}.test_on"
        for other in study.test_sets(name):
            if other == name:
                errors.append(f"{where}: {name!r} is always scored on its own test split")
                continue
            if other not in study.datasets:
                errors.append(
                    f"{where}: unknown dataset {other!r}; defined: {', '.join(study.datasets)}"
                )
                continue
            try:
                tasks = task_of(study.datasets[name]), task_of(study.datasets[other])
            except ValueError:
                continue  # reported with the dataset itself
            if tasks[0] != tasks[1]:
                errors.append(
                    f"{where}: dataset {other!r} is {tasks[1]}, but {name!r} is {tasks[0]}; "
                    "a model can only be scored on a test set of its own task"
                )
                continue
            mine = declared_geometry(study.datasets[name])
            # the test set is prepared as the training dataset's images are
            theirs = declared_geometry(
                study.datasets[other], study.datasets[name].get("preprocess", {})
            )
            for key in ("classes", "channels", "spatial_shape"):
                if key in mine and key in theirs and mine[key] != theirs[key]:
                    what = "number of classes" if key == "classes" else key.replace("_", " ")
                    hint = (
                        f"; set datasets.{name}.preprocess.shape to resample both"
                        if key == "spatial_shape"
                        else ""
                    )
                    errors.append(
                        f"{where}: dataset {other!r} has {what} {theirs[key]}, but {name!r} "
                        f"has {mine[key]} (after preprocessing){hint}"
                    )
        one_class = [m for m in study.dataset_methods(name) if m not in study.cross_methods(name)]
        if study.test_sets(name) and one_class:
            errors.append(
                f"{where}: method(s) {one_class} train one autoencoder per class, which are not "
                "scored on other test sets; list them for a dataset without test_on"
            )
    return errors


def _profile_errors(study: Study, name: str, task: str) -> list[str]:
    where, errors = f"config key datasets.{name}", []
    for profile in study.dataset_profiles(name):
        if profile not in study.profiles:
            errors.append(
                f"{where}.profiles: unknown profile {profile!r}; "
                f"defined: {', '.join(study.profiles)}"
            )
            continue
        kind = study.profiles[profile]["kind"]
        if task not in PROFILE_TASKS[kind]:
            errors.append(
                f"config key profiles.{profile}: kind {kind!r} applies to "
                f"{', '.join(PROFILE_TASKS[kind])} data, but dataset {name!r} is {task}; "
                f"list the profiles it should use in {where}.profiles"
            )
    return errors


def _method_errors(study: Study, name: str, task: str) -> list[str]:
    """The methods and training settings of dataset ``name`` must fit its ``task``."""
    where, errors = f"config key datasets.{name}", []
    for method in study.dataset_methods(name):
        if method not in study.methods:
            errors.append(
                f"{where}.methods: unknown method {method!r}; defined: {', '.join(study.methods)}"
            )
            continue
        unfit = method_errors(study.methods[method], task)
        patch = study.methods[method].get("patch")
        if patch and task == "segmentation":
            geometry = declared_geometry(study.datasets[name])
            size = patch.get("size") if isinstance(patch, dict) else None
            dims = len(geometry.get("spatial_shape") or size or [])
            classes = geometry.get("classes") or len(patch.get("class_ratios") or [])
            unfit += patch_errors(patch, dims, classes)
        if task == "segmentation" and study.methods[method]["resample"] in GENERATIVE:
            shape = declared_geometry(study.datasets[name]).get("spatial_shape")
            if shape is not None and len(shape) != 2:
                errors.append(
                    f"config key methods.{method}: resample "
                    f"{study.methods[method]['resample']!r} makes 2D image–mask pairs, but "
                    f"dataset {name!r} has {len(shape)}D images; list the methods it should use "
                    f"in {where}.methods"
                )
        if unfit:
            errors.append(
                f"config key methods.{method}: {'; '.join(unfit)}, but dataset {name!r} is "
                f"{task}; list the methods it should use in {where}.methods"
            )
    try:
        resolve_monitor(TrainConfig(**study.training(name)).monitor, task)
    except (TypeError, ValueError) as error:
        errors.append(f"{where}.training: {error}")
    for method in study.dataset_methods(name):
        if "training" not in study.methods.get(method, {}):
            continue
        try:
            resolve_monitor(TrainConfig(**study.training(name, method)).monitor, task)
        except (TypeError, ValueError) as error:
            errors.append(f"config key methods.{method}.training (on dataset {name!r}): {error}")
    try:
        TrainConfig(**study.extractor_training(name))
    except (TypeError, ValueError) as error:
        errors.append(f"config key feature_extractor.training: {error}")
    return errors


def _schedule_errors(name: str, method: dict) -> list[str]:
    where, schedule, errors = f"config key methods.{name}", method.get("schedule"), []
    if schedule == "two_phase" and method["resample"] == "none":
        errors.append(
            f"{where}: schedule two_phase pretrains on a resampled set; set resample to ros or "
            "rus. To re-balance the classifier of a network trained on the imbalanced set "
            "instead, use schedule: decoupled with stage1: <that method> and stage2: crt, "
            "tau_norm, lws, ncm, disalign or mislas"
        )
    if schedule == "one_class" and method.get("posthoc_tau"):
        errors.append(
            f"{where}: schedule one_class scores by reconstruction distance, not logits; "
            "posthoc_tau does not apply to it"
        )
    if schedule == "one_class" and method["resample"] in SYNTHESIZING:
        errors.append(
            f"{where}: schedule one_class trains on real images only; "
            f"resample {method['resample']!r} adds synthetic ones"
        )
    return errors


def _decoupled_errors(study: Study, name: str, method: dict) -> list[str]:
    """A decoupled method names a stage-1 method that trains one network with a linear output
    layer on the profile's own images, and stage-2 arguments its stage-2 method takes."""
    where, errors = f"config key methods.{name}", []
    if method.get("schedule") in ("decoupled", "one_class") and method.get("pretrained"):
        errors.append(
            f"{where}: pretrained does not apply to schedule {method['schedule']} (a decoupled "
            "method starts from its stage-1 network: give that method the checkpoint)"
        )
    if method.get("schedule") != "decoupled":
        if method.get("stage2_args"):
            errors.append(f"{where}: stage2_args apply to schedule decoupled only")
        return errors
    stage1 = method.get("stage1")
    if stage1 not in study.methods or stage1 == name:
        errors.append(
            f"{where}.stage1: {stage1!r} is not another method of the study; name the method "
            f"whose trained network stage 2 re-balances (defined: {', '.join(study.methods)})"
        )
    else:
        first = study.methods[stage1]
        if first.get("schedule", "single") != "single":
            errors.append(
                f"{where}.stage1: {stage1!r} has schedule {first['schedule']!r}; a stage-1 "
                "method trains one network in a single phase"
            )
        if first.get("head", "linear") != "linear":
            errors.append(
                f"{where}.stage1: {stage1!r} ends in a {first['head']} layer; stage 2 "
                "re-balances a linear one"
            )
    if method.get("resample", "none") != "none":
        errors.append(
            f"{where}: resample {method['resample']!r} does not apply to schedule decoupled: "
            "stage 2 learns from the profile's own images (resample those of the stage-1 method)"
        )
    stage2 = method.get("stage2", "crt")
    unknown = sorted(set(method.get("stage2_args", {})) - set(STAGE2_ARGS.get(stage2, ())))
    if unknown:
        takes = ", ".join(STAGE2_ARGS.get(stage2, ())) or "none"
        errors.append(
            f"{where}.stage2_args: {unknown} do not apply to stage2 {stage2!r} (it takes: {takes})"
        )
    return errors


def _shift_errors(study: Study) -> list[str]:
    where, shift, errors = "config key evaluation.shift", study.shift, []
    unknown = [m for m in shift["methods"] if m not in study.methods]
    if unknown:
        errors.append(
            f"{where}.methods: unknown method(s) {unknown}; defined: {', '.join(study.methods)}"
        )
    for name in (m for m in shift["methods"] if m in study.methods):
        method = study.methods[name]
        if method.get("schedule") == "one_class":
            errors.append(
                f"{where}.methods: {name!r} trains one autoencoder per class, whose scores are "
                "not class probabilities; list other methods"
            )
        if method.get("patch"):
            errors.append(
                f"{where}.methods: {name!r} trains on patches and keeps the label maps of whole "
                "cases (sliding windows), not the logits estimation under shift needs; list "
                "other methods"
            )
        if method.get("posthoc_tau"):
            errors.append(
                f"{where}.methods: {name!r} adjusts its logits after training (posthoc_tau), "
                "which estimation under shift does not apply to the shifted images' logits; "
                "list other methods"
            )
    natural = {t for name in study.datasets for t in study.natural_shifts(name)}
    unused = [t for t in shift.get("test_sets", []) if t not in natural]
    if unused:
        errors.append(
            f"{where}.test_sets: {unused} is no test_on set of a dataset that runs one of "
            "evaluation.shift.methods; list it in that dataset's test_on"
        )
    unknown_profiles = [p for p in shift.get("profiles", []) if p not in study.profiles]
    if unknown_profiles:
        errors.append(
            f"{where}.profiles: unknown profile(s) {unknown_profiles}; "
            f"defined: {', '.join(study.profiles)}"
        )
    return errors
