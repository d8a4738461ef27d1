"""Cross-field config checks and the study accessors, without Snakemake's DAG: the config is
validated by the schema first (which fills in its defaults), as common.smk does."""

import pytest
import yaml
from conftest import REPO
from snakemake.utils import validate

from medimbalance.checks import config_errors
from medimbalance.study import Study

DEFAULT = yaml.safe_load((REPO / "config/config.yaml").read_text())


def validated(edit=lambda c: None):
    config = yaml.safe_load(yaml.safe_dump(DEFAULT))
    edit(config)
    validate(config, str(REPO / "workflow/schemas/config.schema.yaml"))
    return config


def test_every_error_is_reported_at_once_each_naming_its_key():
    def edit(c):
        c["datasets"]["graded_lesions"]["split"].update(val=0.6, test=0.5)
        c["methods"]["focal"]["loss_args"] = {"gama": 2}
        c["evaluation"] = {"shift": {"methods": ["basline"]}, "shot_groups": {"few": 200}}

    errors = config_errors(validated(edit))
    assert [e.split(":")[0] for e in errors] == [
        "config key datasets.graded_lesions.split",
        "config key methods.focal",
        "config key evaluation.shot_groups",
        "config key evaluation.shift.methods",
    ]
    assert "few (200) must not exceed many (100)" in errors[2]


def test_the_schema_supplies_every_default_the_workflow_reads():
    study = Study(validated())
    assert study.evaluation["calibration_bins"] == 15
    assert study.shift["kinds"] == ["noise", "blur", "contrast", "bias_field"]
    assert study.shift["severities"] == [1, 3, 5]
    assert study.evaluation["shot_groups"] == {"rule": "thresholds", "many": 100, "few": 20}
    assert study.extractor["model"] == "small_cnn" and study.extractor["seed"] == 0
    bare = Study(validated(lambda c: (c.pop("evaluation"), c.pop("feature_extractor"))))
    assert bare.extractor == {"model": "small_cnn", "seed": 0, "training": {}}
    assert bare.shift["methods"] == [] and bare.shift_methods("graded_lesions") == []


def test_study_accessors():
    study = Study(validated())
    assert study.tasks == {
        "graded_lesions": "multiclass",
        "findings": "multilabel",
        "tumours": "segmentation",
        "std_regression": "regression",
    }
    assert study.classification == ["graded_lesions"] and study.gan_methods == ["cdcgan"]
    assert study.training("tumours")["epochs"] == 40  # the dataset's own value wins
    assert study.training("tumours")["lr"] == DEFAULT["training"]["lr"]
    assert study.shift_methods("tumours") == ["dice_ce"]
    assert study.shift_profiles("graded_lesions") == ["longtail"]
    run = study.run_config("findings", "natural", "bce", "1")
    assert run["task"] == "multilabel" and run["seed"] == 1 and run["spec"]["loss"] == "bce"


def test_a_method_recipe_overrides_the_dataset_and_the_study():
    def edit(c):
        c["methods"]["ldam_drw"] = {
            "resample": "none",
            "loss": "ldam",
            "model": "small_cnn",
            "training": {"optimizer": "sgd", "lr": 0.1, "momentum": 0.8, "warmup_epochs": 5},
        }
        c["datasets"]["graded_lesions"]["training"] = {"epochs": 7, "lr": 0.01}

    study = Study(validated(edit))
    assert config_errors(study.config) == []
    recipe = study.training("graded_lesions", "ldam_drw")
    assert (recipe["optimizer"], recipe["lr"], recipe["momentum"]) == ("sgd", 0.1, 0.8)
    assert recipe["epochs"] == 7  # the dataset's, which the recipe leaves alone
    assert recipe["batch_size"] == DEFAULT["training"]["batch_size"]  # the study's
    assert study.training("graded_lesions", "baseline")["lr"] == 0.01  # no recipe
    run = study.run_config("graded_lesions", "longtail", "ldam_drw", 0)
    assert run["training"] == recipe and "training" not in run["spec"]


def test_a_method_recipe_that_does_not_fit_a_dataset_names_both():
    def edit(c):
        c["methods"]["mse"]["training"] = {"monitor": "balanced_accuracy"}

    errors = config_errors(validated(edit))
    assert any(
        e.startswith("config key methods.mse.training (on dataset 'std_regression'): monitor")
        for e in errors
    ), errors


def test_a_declared_figure_names_what_the_study_runs_on_an_axis_its_task_has():
    def edit(c):
        c["figures"] = {
            "lesions": {
                "caption": "x",
                "dataset": "graded_lesions",
                "metric": "balanced_accuracy",
                "x": "imbalance_factor",
                "methods": ["baseline", "bce"],
            },
            "one_point": {
                "caption": "x",
                "dataset": "tumours",
                "metric": "dice",
                "x": "training_fraction",
            },
            "regression": {
                "caption": "x",
                "dataset": "std_regression",
                "metric": "mse",
                "x": "imbalance_factor",
            },
            "unknown": {
                "caption": "x",
                "dataset": "lesion",
                "metric": "mse",
                "x": "training_fraction",
            },
        }

    errors = config_errors(validated(edit))
    assert [e for e in errors if "figures" in e] == [
        "config key figures.lesions.methods: ['bce'] not studied on dataset 'graded_lesions' (its "
        "methods: " + str(DEFAULT["datasets"]["graded_lesions"]["methods"]) + ")",
        "config key figures.one_point.profiles: a sweep needs at least 2 profiles",
        "config key figures.regression.x: imbalance_factor needs class labels, dataset "
        "'std_regression' is regression; use training_fraction",
        "config key figures.unknown.dataset: unknown dataset 'lesion'",
    ]
    study = Study(validated(edit))
    # defaults: the dataset's profiles and methods; metrics profile by profile, then method, seed
    assert study.figure_profiles("regression") == ["u1_5", "normal_5_5"]
    assert study.figure_methods("regression") == ["mse", "balanced_mse"]
    paths = study.figure_metrics("regression")
    assert len(paths) == 2 * 2 * len(DEFAULT["seeds"])
    assert paths[0] == "results/demo/runs/std_regression/u1_5/mse/seed0/metrics.json"


def test_a_dataset_without_a_split_gets_the_documented_one():
    config = validated(lambda c: c["datasets"]["findings"].pop("split"))
    assert config["datasets"]["findings"]["split"] == {"val": 0.1, "test": 0.2, "seed": 0}
    assert config_errors(config) == []


def test_decoupled_methods_take_the_stage1_network_and_their_stage2_loss():
    def edit(c):
        c["methods"]["erm18"] = {"resample": "none", "model": "resnet18"}
        c["methods"]["disalign"] = {
            "schedule": "decoupled",
            "stage1": "erm18",
            "stage2": "disalign",
        }
        c["methods"]["crt"] = {"schedule": "decoupled", "stage1": "baseline", "loss": "cb_ce"}

    study = Study(validated(edit))
    assert config_errors(study.config) == []
    disalign = study.method_spec("disalign")
    assert disalign["model"] == "resnet18" and disalign["loss"] == "grw_ce"
    assert disalign["resample"] == "none"  # the schema's default
    assert (
        study.method_spec("crt")["loss"] == "cb_ce" and study.method_spec("crt")["stage2"] == "crt"
    )
    assert study.stage1("disalign") == "erm18" and study.stage1("baseline") is None


def test_decoupled_config_errors_name_the_key_and_what_is_expected():
    def edit(c):
        methods = c["methods"]
        methods["a"] = {"schedule": "decoupled", "stage1": "nope"}
        methods["b"] = {"schedule": "decoupled", "stage1": "two_phase_ros", "resample": "ros"}
        methods["c"] = {
            "schedule": "decoupled",
            "stage1": "baseline",
            "stage2": "ncm",
            "stage2_args": {"tau": 1},
        }
        methods["d"] = {"schedule": "decoupled", "stage1": "ldam_drw"}  # a cosine head
        methods["e"] = {"resample": "none", "model": "small_cnn", "schedule": "two_phase"}

    errors = config_errors(validated(edit))
    assert any(
        e.startswith("config key methods.a.stage1: 'nope' is not another method") for e in errors
    )
    assert any("methods.b.stage1: 'two_phase_ros' has schedule 'two_phase'" in e for e in errors)
    assert any(
        "methods.b: resample 'ros' does not apply to schedule decoupled" in e for e in errors
    )
    assert (
        "config key methods.c.stage2_args: ['tau'] do not apply to stage2 'ncm' (it takes: none)"
        in errors
    )
    assert any("methods.d.stage1: 'ldam_drw' ends in a cosine layer" in e for e in errors)
    two_phase = next(e for e in errors if e.startswith("config key methods.e:"))
    assert "use schedule: decoupled with stage1" in two_phase and "tau_norm" in two_phase


def test_a_pretrained_checkpoint_is_a_training_input_and_not_for_decoupled_methods(tmp_path):
    md5 = "0" * 32

    def edit(c):
        c["methods"]["warm"] = {
            "resample": "none",
            "model": "small_cnn",
            "pretrained": {"file": "weights/cnn.pt", "md5": md5},
        }
        c["methods"]["crt"] = {
            "schedule": "decoupled",
            "stage1": "warm",
            "pretrained": {"file": "x.pt", "md5": md5},
        }

    config = validated(edit)
    assert config["methods"]["warm"]["pretrained"] == {
        "file": "weights/cnn.pt",
        "md5": md5,
        "strip_prefix": "",
        "channels": "repeat",
    }
    assert config_errors(config) == [
        "config key methods.crt: pretrained does not apply to schedule decoupled (a decoupled "
        "method starts from its stage-1 network: give that method the checkpoint)"
    ]
    with pytest.raises(Exception, match="does not match"):
        validated(lambda c: c["methods"]["ros"].update(pretrained={"file": "a.pt", "md5": "abc"}))


def test_patch_settings_are_checked_against_the_dataset():
    def edit(c):
        c["methods"]["dice_ce"]["patch"] = {"size": [32, 32, 32], "foreground": 2}
        c["methods"]["baseline"]["patch"] = {"size": [8, 8]}

    errors = config_errors(validated(edit))
    tumours = next(e for e in errors if e.startswith("config key methods.dice_ce"))
    # The demo's tumours are 2D slices: a 3-axis patch and a share above 1 are both named.
    assert "patch.size must list 2 positive voxel counts, got [32, 32, 32]" in tumours
    assert "patch.foreground must lie in [0, 1], got 2" in tumours
    assert "dataset 'tumours' is segmentation" in tumours
    lesions = next(e for e in errors if e.startswith("config key methods.baseline"))
    assert "patch: {'size': [8, 8]} needs segmentation data" in lesions
    with pytest.raises(Exception, match="size"):  # the schema requires a size
        validated(lambda c: c["methods"]["dice_ce"].update(patch={"foreground": 0.5}))
