rule evaluate:
    input:
        predictions="results/{study}/runs/{dataset}/{profile}/{method}/seed{seed}/predictions.npz",
        meta="results/{study}/data/{dataset}/meta.json",
        train_targets="results/{study}/data/{dataset}/train_targets.npy",
        profile_indices="results/{study}/data/{dataset}/{profile}/train_indices.npy",
    output:
        metrics="results/{study}/runs/{dataset}/{profile}/{method}/seed{seed}/metrics.json",
    log:
        "logs/{study}/evaluate/{dataset}_{profile}_{method}_seed{seed}.log",
    conda:
        "../envs/analysis.yaml"
    params:
        bins=study.evaluation["calibration_bins"],
        guess_range=study.evaluation.get("uniform_guess"),
        shot_groups=study.evaluation["shot_groups"],
        surface_dice=study.evaluation.get("surface_dice"),
    script:
        "../scripts/evaluate.py"


rule estimate_shift:
    input:
        model="results/{study}/runs/{dataset}/{profile}/{method}/seed{seed}/model.pt",
        predictions="results/{study}/runs/{dataset}/{profile}/{method}/seed{seed}/predictions.npz",
        meta="results/{study}/data/{dataset}/meta.json",
        test_images="results/{study}/data/{dataset}/test_images.npy",
        test_targets="results/{study}/data/{dataset}/test_targets.npy",
        train_images="results/{study}/data/{dataset}/train_images.npy",
        train_targets="results/{study}/data/{dataset}/train_targets.npy",
        profile_indices="results/{study}/data/{dataset}/{profile}/train_indices.npy",
    output:
        shift="results/{study}/runs/{dataset}/{profile}/{method}/seed{seed}/shift.json",
        logits=report(
            "results/{study}/figures/{dataset}_{profile}_{method}_seed{seed}_logits.png",
            caption="../report/logits.rst",
            category="Figures",
            subcategory="Logit distributions",
            labels={"run": "{dataset}, {profile}, {method}, seed {seed}"},
        ),
    log:
        "logs/{study}/estimate_shift/{dataset}_{profile}_{method}_seed{seed}.log",
    wildcard_constraints:
        method=alternatives(study.shift["methods"]),
    conda:
        TORCH_ENV
    threads: 1
    resources:
        gpu=1,
    params:
        kinds=study.shift["kinds"],
        severities=study.shift["severities"],
    script:
        "../scripts/estimate_shift.py"


# ---- Cross-evaluation: the runs of a dataset scored on other datasets' test splits --------
rule prepare_external:
    input:
        unpack(get_external_raw),
        splits="results/{study}/data/{other}/splits.json",
        own_meta="results/{study}/data/{dataset}/meta.json",
    output:
        test_images="results/{study}/data/{dataset}/test_on/{other}/test_images.npy",
        test_targets="results/{study}/data/{dataset}/test_on/{other}/test_targets.npy",
        meta="results/{study}/data/{dataset}/test_on/{other}/meta.json",
    log:
        "logs/{study}/prepare_external/{dataset}_on_{other}.log",
    wildcard_constraints:
        other=alternatives(study.datasets),
    conda:
        "../envs/analysis.yaml"
    script:
        "../scripts/prepare_external.py"


rule predict_external:
    input:
        model=f"{RUN}/model.pt",
        predictions=f"{RUN}/predictions.npz",
        meta="results/{study}/data/{dataset}/meta.json",
        test_images="results/{study}/data/{dataset}/test_on/{other}/test_images.npy",
        test_targets="results/{study}/data/{dataset}/test_on/{other}/test_targets.npy",
    output:
        predictions=f"{RUN}/test_on/{{other}}/predictions.npz",
    log:
        "logs/{study}/predict_external/{dataset}_{profile}_{method}_seed{seed}_on_{other}.log",
    wildcard_constraints:
        other=alternatives(study.datasets),
    conda:
        TORCH_ENV
    threads: 1
    resources:
        gpu=1,
    script:
        "../scripts/predict_external.py"


rule estimate_natural:
    input:
        predictions=f"{RUN}/test_on/{{other}}/predictions.npz",
        meta="results/{study}/data/{dataset}/meta.json",
    output:
        estimate=f"{RUN}/test_on/{{other}}/estimate.json",
    log:
        "logs/{study}/estimate_natural/{dataset}_{profile}_{method}_seed{seed}_on_{other}.log",
    wildcard_constraints:
        other=alternatives(study.datasets),
    conda:
        "../envs/analysis.yaml"
    script:
        "../scripts/estimate_natural.py"


use rule evaluate as evaluate_external with:
    input:
        predictions=f"{RUN}/test_on/{{other}}/predictions.npz",
        # the external test set's own geometry (spacing, case sizes, regions)
        meta="results/{study}/data/{dataset}/test_on/{other}/meta.json",
        train_targets="results/{study}/data/{dataset}/train_targets.npy",
        profile_indices="results/{study}/data/{dataset}/{profile}/train_indices.npy",
    output:
        metrics=f"{RUN}/test_on/{{other}}/metrics.json",
    log:
        "logs/{study}/evaluate_external/{dataset}_{profile}_{method}_seed{seed}_on_{other}.log",
    wildcard_constraints:
        other=alternatives(study.datasets),
