"""Bad configs fail before any job runs, with the offending key and the allowed values named:
every case through the schema and medimbalance.checks in-process, a few through Snakemake."""

import re
from dataclasses import fields

import pytest
import yaml
from conftest import REPO, run_snakemake
from jsonschema import Draft202012Validator
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from medimbalance.balancing import resampler_names
from medimbalance.checks import config_errors
from medimbalance.config import AUGMENTS, MIXUPS, MONITORS, SAMPLERS, TrainConfig
from medimbalance.losses import LOSSES
from medimbalance.models import MODELS
from medimbalance.schedules import SCHEDULES
from medimbalance.tasks import LOSS_ARGS

SCHEMA_PATH = REPO / "workflow/schemas/config.schema.yaml"
SCHEMA = yaml.safe_load(SCHEMA_PATH.read_text())
DEFAULT = yaml.safe_load((REPO / "config/config.yaml").read_text())


def method_enum(component):
    return SCHEMA["properties"]["methods"]["additionalProperties"]["properties"][component]["enum"]


def test_schema_enums_are_the_library_registries():
    assert method_enum("resample") == resampler_names()
    assert sorted(method_enum("loss")) == LOSSES.names()
    assert sorted(method_enum("model")) == MODELS.names()
    assert method_enum("mixup") == list(MIXUPS)
    assert method_enum("sampler") == list(SAMPLERS)
    assert method_enum("augment") == list(AUGMENTS)
    assert sorted(method_enum("schedule")) == SCHEDULES.names()
    training = SCHEMA["$defs"]["training_settings"]["properties"]
    assert training["monitor"]["enum"] == ["auto", *MONITORS]
    assert set(training) == {f.name for f in fields(TrainConfig)}
    assert SCHEMA["$defs"]["training_settings"]["propertyNames"]["enum"] == list(training)


def test_training_keys_have_one_definition_with_ranges_wherever_they_appear():
    places = (
        SCHEMA["properties"]["training"],
        SCHEMA["properties"]["datasets"]["additionalProperties"]["properties"]["training"],
        SCHEMA["properties"]["methods"]["additionalProperties"]["properties"]["training"],
        SCHEMA["properties"]["feature_extractor"]["properties"]["training"],
    )
    assert all(p["$ref"] == "#/$defs/training_settings" for p in places)
    defaults = SCHEMA["properties"]["training"]["properties"]
    assert all(set(v) == {"default"} for v in defaults.values())  # only defaults, no types
    for name, rule in SCHEMA["$defs"]["training_settings"]["properties"].items():
        assert {"type", "enum", "anyOf"} & set(rule), name


def test_every_loss_argument_has_a_type_and_a_range():
    arguments = SCHEMA["properties"]["methods"]["additionalProperties"]["properties"]["loss_args"]
    taken = {a for args in LOSS_ARGS.values() for a in args}
    assert set(arguments["properties"]) == taken
    for name, rule in arguments["properties"].items():
        bounded = {"minimum", "exclusiveMinimum", "enum"} & set(rule) or rule.get(
            "type"
        ) == "boolean"
        assert bounded, f"loss_args.{name} has no range"


def test_default_config_is_valid():
    Draft202012Validator(SCHEMA).validate(DEFAULT)


def broken(edit):
    config = yaml.safe_load(yaml.safe_dump(DEFAULT))
    edit(config)
    return config


CASES = {
    "unknown loss": (
        lambda c: c["methods"]["ros"].update(loss="fancy"),
        [r"'fancy' is not one of \['ce', 'weighted_ce'", r"\['methods'\]\['ros'\]\['loss'\]"],
    ),
    "unknown resampler": (
        lambda c: c["methods"]["rus"].update(resample="adasyn"),
        [
            r"'adasyn' is not one of \['cdcgan', 'diffusion', 'enn', 'none', 'oss', 'ros', 'rus'",
            r"\['methods'\]\['rus'\]",
        ],
    ),
    "missing key": (lambda c: c.pop("seeds"), [r"'seeds' is a required property"]),
    "wrong type": (
        lambda c: c["training"].update(epochs="ten"),
        [r"'ten' is not of type 'integer'", r"\['training'\]\['epochs'\]"],
    ),
    "ratio above 1": (
        lambda c: c["profiles"]["longtail"].update(mu=1.5),
        [r"1.5 is greater than the maximum of 1", r"\['profiles'\]\['longtail'\]\['mu'\]"],
    ),
    "negative ratio": (
        lambda c: c["profiles"]["longtail"].update(mu=-0.1),
        [r"-0.1 is less than or equal to the minimum of 0", r"\['mu'\]"],
    ),
    "negative split fraction": (
        lambda c: c["datasets"]["graded_lesions"]["split"].update(val=-0.2),
        [r"-0.2 is less than or equal to the minimum of 0", r"\['split'\]\['val'\]"],
    ),
    "misspelt key": (
        lambda c: c["methods"]["ros"].update(los="ce"),
        [r"'los' was unexpected"],
    ),
    "splits leave no training data": (
        lambda c: c["datasets"]["graded_lesions"]["split"].update(val=0.5, test=0.5),
        [r"config key datasets.graded_lesions.split: val \+ test must be < 1"],
    ),
    "unknown source": (
        lambda c: c["datasets"]["graded_lesions"].update(source="medmnist_xyz"),
        [r"'medmnist_xyz' is not one of \['synthetic_graded_lesions', 'synthetic_findings'"],
    ),
    "medmnist without flag": (
        lambda c: c["datasets"]["graded_lesions"].update(source="medmnist", generator={}),
        [r"'flag' is a required property", r"\['datasets'\]\['graded_lesions'\]"],
    ),
    "unknown medmnist flag": (
        lambda c: c["datasets"]["graded_lesions"].update(source="medmnist", flag="mnist"),
        [r"'mnist' is not one of \['pathmnist', 'chestmnist'"],
    ),
    "mirror without checksum": (
        lambda c: c["datasets"]["graded_lesions"].update(source="cifar10", url="http://x/c.tgz"),
        [r"'md5' is a dependency of 'url'"],
    ),
    "folder without manifest": (
        lambda c: c["datasets"]["graded_lesions"].update(source="folder", task="binary"),
        [r"'manifest' is a required property"],
    ),
    "profile that does not fit the task": (
        lambda c: c["datasets"].update(
            findings={"source": "synthetic_findings", "split": {"val": 0.2, "test": 0.2}}
        ),
        [
            r"config key profiles.balanced: kind 'exponential' applies to multiclass, binary data, "
            r"but dataset 'findings' is multilabel; list the profiles it should use in "
            r"config key datasets.findings.profiles"
        ],
    ),
    "loss that does not fit the task": (
        lambda c: c["methods"]["focal"].update(loss="gdl_wll"),
        [
            r"config key methods.focal: loss 'gdl_wll' is for segmentation data, but dataset "
            r"'graded_lesions' is multiclass; list the methods it should use in config key "
            r"datasets.graded_lesions.methods"
        ],
    ),
    "model that does not fit the task": (
        lambda c: c["methods"]["bce"].update(model="unet"),
        [r"config key methods.bce: model 'unet' is for segmentation data, but dataset 'findings'"],
    ),
    "resampling regression data": (
        lambda c: c["methods"]["mse"].update(resample="ros"),
        [
            r"config key methods.mse: resample: 'ros' needs multiclass or binary data, but dataset "
            r"'std_regression' is regression"
        ],
    ),
    "image-mask pairs of 3D images": (
        lambda c: (
            c["methods"]["dice_ce"].update(resample="diffusion"),
            c["datasets"]["tumours"]["generator"].update(shape=[16, 16, 16]),
        ),
        [
            r"config key methods.dice_ce: resample 'diffusion' makes 2D image–mask pairs, but "
            r"dataset 'tumours' has 3D images; list the methods it should use in config key "
            r"datasets.tumours.methods"
        ],
    ),
    "mixup outside segmentation": (
        lambda c: c["methods"]["baseline"].update(mixup="asymmetric"),
        [r"config key methods.baseline: mixup: 'asymmetric' needs segmentation data"],
    ),
    "unknown method of a dataset": (
        lambda c: c["datasets"]["findings"].update(methods=["bce", "wbce"]),
        [r"config key datasets.findings.methods: unknown method 'wbce'; defined: \w+, "],
    ),
    "monitor that does not fit the task": (
        lambda c: c["datasets"]["tumours"]["training"].update(monitor="balanced_accuracy"),
        [
            r"config key datasets.tumours.training: monitor 'balanced_accuracy' is for multiclass "
            r"or binary data, not segmentation; choose one of: auto, dice, loss"
        ],
    ),
    "unknown training key of a dataset": (
        lambda c: c["datasets"]["tumours"]["training"].update(epoch=3),
        [r"'epoch' is not one of \['epochs', 'batch_size'"],
    ),
    "resample_args the resampler does not take": (
        lambda c: c["methods"]["ros"].update(resample_args={"ratio": 0.5, "k_neighbors": 3}),
        [
            r"config key methods.ros: resample_args \['k_neighbors'\] do not apply to resample "
            r"'ros' \(it takes: ratio\)"
        ],
    ),
    "unknown GAN setting": (
        lambda c: c["methods"]["ros"].update(
            resample="cdcgan", resample_args={"gan": {"epochs": 2, "lr_d": 0.1}}
        ),
        [r"'lr_d' was unexpected", r"\['methods'\]\['ros'\]\['resample_args'\]\['gan'\]"],
    ),
    "unknown DiffAugment policy": (
        lambda c: c["methods"]["ros"].update(
            resample="cdcgan", resample_args={"gan": {"diffaugment": ["translation", "flip"]}}
        ),
        [
            r"'flip' is not one of \['translation', 'cutout', 'color'\]",
            r"\['gan'\]\['diffaugment'\]",
        ],
    ),
    "resampling ratio above 1": (
        lambda c: c["methods"]["ros"].update(resample_args={"ratio": 1.5}),
        [r"1.5 is greater than the maximum of 1", r"\['methods'\]\['ros'\]\['resample_args'\]"],
    ),
    "unknown sampler": (
        lambda c: c["methods"]["ros"].update(sampler="balanced"),
        [r"'balanced' is not one of \['none', 'class_balanced', 'sqrt', 'effective_number'\]"],
    ),
    "sampler on regression data": (
        lambda c: c["methods"]["mse"].update(sampler="sqrt"),
        [r"config key methods.mse: sampler: 'sqrt' needs multiclass or binary or multilabel data"],
    ),
    "foreground augmentation outside segmentation": (
        lambda c: c["methods"]["baseline"].update(augment="foreground"),
        [r"config key methods.baseline: augment: 'foreground' needs segmentation data"],
    ),
    "one-class training with synthetic images": (
        lambda c: c["methods"]["one_class_ae"].update(resample="smote"),
        [r"config key methods.one_class_ae: schedule one_class trains on real images only"],
    ),
    "bad feature-extractor training": (
        lambda c: c.update(feature_extractor={"training": {"epochs": 0}}),
        [r"0 is less than the minimum of 1", r"\['feature_extractor'\]\['training'\]\['epochs'\]"],
    ),
    "unknown method to estimate under shifts": (
        lambda c: c.update(evaluation={"shift": {"methods": ["baseline", "basline"]}}),
        [r"config key evaluation.shift.methods: unknown method\(s\) \['basline'\]"],
    ),
    "one-class method under shifts": (
        lambda c: c.update(evaluation={"shift": {"methods": ["one_class_ae"]}}),
        [r"config key evaluation.shift.methods: 'one_class_ae' trains one autoencoder per class"],
    ),
    "post-hoc adjusted method under shifts": (
        lambda c: (
            c["methods"]["baseline"].update(posthoc_tau=1.0),
            c.update(evaluation={"shift": {"methods": ["baseline"]}}),
        ),
        [r"config key evaluation.shift.methods: 'baseline' adjusts its logits after training"],
    ),
    "unknown shift profile": (
        lambda c: c.update(evaluation={"shift": {"methods": ["baseline"], "profiles": ["tail"]}}),
        [r"config key evaluation.shift.profiles: unknown profile\(s\) \['tail'\]"],
    ),
    "unknown shift kind": (
        lambda c: c.update(evaluation={"shift": {"methods": ["baseline"], "kinds": ["rain"]}}),
        [r"'rain' is not one of \['noise', 'blur', 'contrast', 'bias_field'\]"],
    ),
    "loss argument the loss does not take": (
        lambda c: c["methods"]["focal"].update(loss_args={"gama": 2}),
        [
            r"config key methods.focal: loss_args \['gama'\] do not apply to loss 'focal' "
            r"\(it takes: gamma\)"
        ],
    ),
    "loss argument of a loss without arguments": (
        lambda c: c["methods"]["baseline"].update(loss_args={"weight": 2}),
        [
            r"config key methods.baseline: loss_args \['weight'\] do not apply to loss 'ce' "
            r"\(it takes: none\)"
        ],
    ),
    "a dataset with no methods": (
        lambda c: c["datasets"]["graded_lesions"].update(methods=[]),
        [r"\[\] should be non-empty", r"'graded_lesions'\]\['methods'\]"],
    ),
    "negative focal gamma": (
        lambda c: c["methods"]["focal"].update(loss_args={"gamma": -1}),
        [r"-1 is less than the minimum of 0", r"\['focal'\]\['loss_args'\]\['gamma'\]"],
    ),
    "fractional dataset epochs": (
        lambda c: c["datasets"]["graded_lesions"].update(training={"epochs": 2.5}),
        [r"2.5 is not of type 'integer'", r"\['training'\]\['epochs'\]"],
    ),
    "epochs as a string": (
        lambda c: c["datasets"]["graded_lesions"].update(training={"epochs": "3"}),
        [r"'3' is not of type 'integer'", r"\['training'\]\['epochs'\]"],
    ),
    "extractor learning rate out of range": (
        lambda c: c.update(feature_extractor={"training": {"lr": -0.1}}),
        [r"-0.1 is less than or equal to the minimum of 0", r"\['feature_extractor'\]"],
    ),
    "method recipe momentum out of range": (
        lambda c: c["methods"]["baseline"].update(training={"optimizer": "sgd", "momentum": 1.5}),
        [r"1.5 is greater than or equal to the maximum of 1", r"\['baseline'\]\['training'\]"],
    ),
    "test set of another task": (
        lambda c: c["datasets"]["graded_lesions"].update(test_on=["tumours"]),
        [
            r"config key datasets.graded_lesions.test_on: dataset 'tumours' is segmentation, "
            r"but 'graded_lesions' is multiclass"
        ],
    ),
    "test set of another image size": (
        lambda c: (
            c["datasets"].update(
                big_lesions={
                    **c["datasets"]["graded_lesions"],
                    "generator": {"image_size": 32},
                    "methods": ["baseline"],
                }
            ),
            c["datasets"]["graded_lesions"].update(test_on=["big_lesions"]),
        ),
        [
            r"test_on: dataset 'big_lesions' has spatial shape \[32, 32\], but 'graded_lesions' "
            r"has \[28, 28\] \(after preprocessing\); set datasets.graded_lesions.preprocess.shape"
        ],
    ),
    "unknown test set": (
        lambda c: c["datasets"]["graded_lesions"].update(test_on=["lesions"]),
        [r"test_on: unknown dataset 'lesions'; defined: findings, graded_lesions"],
    ),
    "one-class method with test sets": (
        lambda c: (
            c["datasets"].update(more={**c["datasets"]["graded_lesions"], "methods": ["baseline"]}),
            c["datasets"]["graded_lesions"].update(test_on=["more"]),
        ),
        [r"test_on: method\(s\) \['one_class_ae'\] train one autoencoder per class"],
    ),
    "natural shift to a test set no dataset uses": (
        lambda c: c.update(
            evaluation={"shift": {"methods": ["baseline"], "test_sets": ["tumours"]}}
        ),
        [r"config key evaluation.shift.test_sets: \['tumours'\] is no test_on set of a dataset"],
    ),
    "divergence factor below one": (
        lambda c: c["training"].update(divergence_factor=0.5),
        [r"\['training'\]\['divergence_factor'\]"],
    ),
    "unknown generator key": (
        lambda c: c["datasets"]["graded_lesions"]["generator"].update(n_grades=3),
        [r"'n_grades' was unexpected"],
    ),
}


def refusal(config):
    """What the workflow says of a config before building its DAG: the schema's error, or
    every cross-field error (empty when the config is sound)."""
    try:
        validate(config, str(SCHEMA_PATH))  # as common.smk does: defaults are filled in
    except WorkflowError as error:
        return str(error)
    return "\n".join(config_errors(config))


def test_the_default_config_passes_every_check():
    assert refusal(broken(lambda c: None)) == ""


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_config_is_refused(case):
    edit, patterns = CASES[case]
    output = refusal(broken(edit))
    assert output
    for pattern in patterns:
        assert re.search(pattern, output), f"{pattern!r} not in:\n{output[-2000:]}"


END_TO_END = (
    "unknown loss",
    "splits leave no training data",
    "loss argument the loss does not take",
    "fractional dataset epochs",
    "test set of another task",
)


@pytest.mark.parametrize("case", END_TO_END)
def test_bad_config_is_refused_by_snakemake_before_any_job(case, tmp_path):
    edit, patterns = CASES[case]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(broken(edit)))
    done = run_snakemake("-n", "--configfile", str(path), "--directory", str(tmp_path))
    output = done.stdout + done.stderr
    assert done.returncode != 0
    for pattern in patterns:
        assert re.search(pattern, output), f"{pattern!r} not in:\n{output[-2000:]}"
    assert "Job stats" not in output  # nothing was scheduled
