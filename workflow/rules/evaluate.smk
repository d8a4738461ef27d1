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
            labels={
                "dataset": "{dataset}",
                "profile": "{profile}",
                "method": "{method}",
                "seed": "{seed}",
            },
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
