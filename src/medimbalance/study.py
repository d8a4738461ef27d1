"""A study's config as the workflow reads it: each dataset's task, raw-data plan, profiles,
methods and training settings, and the runs estimated under synthetic shifts.

Standard library only (with :mod:`.data.sources`' PyYAML), so ``common.smk`` uses it before any
job runs. The config is the one the schema validated, defaults filled in;
:func:`medimbalance.checks.config_errors` has checked what the schema cannot.
"""

from __future__ import annotations

import functools

from .data.sources import RawPlan, raw_plan, task_of
from .tasks import CLASS_TASKS, GENERATIVE, STAGE2_LOSS


class Study:
    """Accessors of one validated study config."""

    def __init__(self, config: dict) -> None:
        self.config = config
        self.name: str = config["study"]
        self.datasets: dict = config["datasets"]
        self.profiles: dict = config["profiles"]
        self.methods: dict = config["methods"]
        self.seeds: list[int] = config["seeds"]
        self.extractor: dict = config["feature_extractor"]  # model, seed, training
        self.evaluation: dict = config["evaluation"]  # calibration_bins, shift
        self.shift: dict = self.evaluation["shift"]  # methods, [profiles,] kinds, severities
        # Declared paper-shaped tables; a row that names a method is labelled by it by default.
        self.tables: dict = {
            name: {**spec, "rows": [{"label": r.get("method"), **r} for r in spec["rows"]]}
            for name, spec in config.get("tables", {}).items()
        }
        self.figures: dict = config.get("figures", {})  # declared sweep figures

    @functools.cached_property
    def tasks(self) -> dict[str, str]:
        """Dataset name → task."""
        return {name: task_of(dataset) for name, dataset in self.datasets.items()}

    @functools.cached_property
    def raw(self) -> dict[str, RawPlan]:
        """Dataset name → how its raw folder is made (generated, downloaded, converted)."""
        return {name: raw_plan(d, self.tasks[name]) for name, d in self.datasets.items()}

    @property
    def classification(self) -> list[str]:
        """The datasets whose task is multi-class or binary classification."""
        return [name for name in self.datasets if self.tasks[name] in CLASS_TASKS]

    @property
    def gan_methods(self) -> list[str]:
        """Methods whose new images come from a generative model trained in a rule of its own."""
        return [name for name, m in self.methods.items() if m["resample"] in GENERATIVE]

    def dataset_profiles(self, name: str) -> list[str]:
        """The profiles a dataset is studied under (all by default)."""
        return self.datasets[name].get("profiles", list(self.profiles))

    def dataset_methods(self, name: str) -> list[str]:
        """The methods trained on a dataset (all by default), in config order."""
        return self.datasets[name].get("methods", list(self.methods))

    def test_sets(self, name: str) -> list[str]:
        """The other datasets whose test splits the runs of dataset ``name`` are also scored on
        (``datasets.<name>.test_on``), in config order."""
        return list(self.datasets[name].get("test_on", []))

    def cross_methods(self, name: str) -> list[str]:
        """The methods of dataset ``name`` scored on its other test sets: those that give one
        network's outputs (not the one-class autoencoder ensembles)."""
        if not self.test_sets(name):
            return []
        methods = self.dataset_methods(name)
        return [m for m in methods if self.methods[m].get("schedule") != "one_class"]

    def table_cells(self, name: str) -> list[dict]:
        """The cells of declared table ``name``, row by row: each its ``row`` and ``column``
        labels and what it shows (``dataset``, ``profile``, ``method``, ``metric`` and
        ``test_sets``, a list whose values are pooled), from the table's ``select``, then the
        row's, then the column's keys. A dataset studied under one profile needs none; the
        test set defaults to the dataset's own; a ``metric_prefix`` (e.g. ``uniform_guess_``)
        is put before the metric."""
        spec = self.tables[name]
        cells = []
        for row in spec["rows"]:
            for column in spec["columns"]:
                chosen = {**spec.get("select", {}), **row, **column}
                chosen.pop("label")
                prefix = chosen.pop("metric_prefix", "")
                dataset = chosen.get("dataset")
                profiles = self.dataset_profiles(dataset) if dataset in self.datasets else []
                if "profile" not in chosen and len(profiles) == 1:
                    chosen["profile"] = profiles[0]
                test_set = chosen.pop("test_set", dataset)
                chosen["test_sets"] = test_set if isinstance(test_set, list) else [test_set]
                if "metric" in chosen:
                    chosen["metric"] = prefix + chosen["metric"]
                cells.append({"row": row["label"], "column": column["label"], **chosen})
        return cells

    def cell_metrics(self, cell: dict) -> list[str]:
        """``metrics.json`` of every seed of a table cell's runs (on its test set)."""
        run = "results/{}/runs/{dataset}/{profile}/{method}/seed{}".format
        paths = []
        for test_set in cell["test_sets"]:  # several: their values pooled
            own = test_set == cell["dataset"]
            name = "metrics.json" if own else f"test_on/{test_set}/metrics.json"
            paths += [f"{run(self.name, seed, **cell)}/{name}" for seed in self.seeds]
        return paths

    def figure_profiles(self, name: str) -> list[str]:
        """The profiles (points on the x axis) of declared figure ``name``: its ``profiles``, or
        every profile its dataset is studied under."""
        spec = self.figures[name]
        return list(spec.get("profiles") or self.dataset_profiles(spec["dataset"]))

    def figure_methods(self, name: str) -> list[str]:
        """The methods (lines) of declared figure ``name``: its ``methods``, or every method
        trained on its dataset."""
        spec = self.figures[name]
        return list(spec.get("methods") or self.dataset_methods(spec["dataset"]))

    def figure_metrics(self, name: str) -> list[str]:
        """``metrics.json`` of every point of declared figure ``name``: profile by profile,
        method by method, seed by seed."""
        dataset = self.figures[name]["dataset"]
        run = "results/{}/runs/{}/{}/{}/seed{}/metrics.json".format
        return [
            run(self.name, dataset, profile, method, seed)
            for profile in self.figure_profiles(name)
            for method in self.figure_methods(name)
            for seed in self.seeds
        ]

    def training(self, name: str, method: str | None = None) -> dict:
        """The training settings of a dataset (the shared ones, updated by its own) and, with
        ``method``, of that method's runs on it (updated by the method's recipe)."""
        recipe = self.methods[method].get("training", {}) if method else {}
        return {**self.config["training"], **self.datasets[name].get("training", {}), **recipe}

    def extractor_training(self, name: str) -> dict:
        """The training settings of the feature extractor of a dataset."""
        return {**self.training(name), **self.extractor["training"]}

    def gan_settings(self, method: str) -> dict:
        """The settings of a method's generative model: ``resample_args.gan`` of ``cdcgan``
        (medimbalance.gan.GanConfig keys) or ``resample_args.diffusion`` of ``diffusion``
        (medimbalance.diffusion.DiffusionConfig keys)."""
        key = "gan" if self.methods[method]["resample"] == "cdcgan" else "diffusion"
        return self.methods[method].get("resample_args", {}).get(key, {})

    def shift_methods(self, name: str) -> list[str]:
        """The methods of dataset ``name`` estimated under shifts (classification and
        segmentation only), in config order."""
        if self.tasks[name] not in (*CLASS_TASKS, "segmentation"):
            return []
        return [m for m in self.dataset_methods(name) if m in self.shift["methods"]]

    def natural_shifts(self, name: str) -> list[str]:
        """The other test sets of dataset ``name`` on which its shift methods' performance is
        also estimated without labels (``evaluation.shift.test_sets``): natural shifts."""
        if not self.shift_methods(name):
            return []
        return [t for t in self.test_sets(name) if t in self.shift.get("test_sets", [])]

    def shift_profiles(self, name: str) -> list[str]:
        """The profiles of dataset ``name`` under which its shift methods are estimated."""
        return [p for p in self.dataset_profiles(name) if p in self.shift.get("profiles", [p])]

    def method_spec(self, method: str) -> dict:
        """A method's recipe as its runs see it: a decoupled method takes its network (``model``)
        from its stage-1 method and, unless it names another loss than ``ce``, trains stage 2
        with its stage-2 method's own loss (``STAGE2_LOSS``)."""
        spec = {k: v for k, v in self.methods[method].items() if k != "training"}
        if spec.get("schedule") == "decoupled":
            stage1 = self.methods.get(spec.get("stage1", ""), {})
            spec["model"] = stage1.get("model", spec.get("model", "small_cnn"))
            if spec.get("loss", "ce") == "ce" and spec.get("stage2") in STAGE2_LOSS:
                spec["loss"] = STAGE2_LOSS[spec["stage2"]]
        return spec

    def stage1(self, method: str) -> str | None:
        """The stage-1 method of a decoupled method (``None`` for other methods)."""
        spec = self.methods[method]
        return spec.get("stage1") if spec.get("schedule") == "decoupled" else None

    def run_config(self, dataset: str, profile: str, method: str, seed: int) -> dict:
        """The resolved configuration of one run (``medimbalance.config.RunConfig``)."""
        return {
            "study": self.name,
            "dataset": dataset,
            "task": self.tasks[dataset],
            "profile": profile,
            "method": method,
            "seed": int(seed),
            "spec": self.method_spec(method),
            "training": self.training(dataset, method),
        }
