rule resample:
    input:
        indices="results/{study}/data/{dataset}/{profile}/train_indices.npy",
        images="results/{study}/data/{dataset}/train_images.npy",
        targets="results/{study}/data/{dataset}/train_targets.npy",
        meta="results/{study}/data/{dataset}/meta.json",
    output:
        indices="results/{study}/runs/{dataset}/{profile}/{method}/seed{seed}/train_indices.npy",
        counts="results/{study}/runs/{dataset}/{profile}/{method}/seed{seed}/class_counts.tsv",
    log:
        "logs/{study}/resample/{dataset}_{profile}_{method}_seed{seed}.log",
    conda:
        "../envs/analysis.yaml"
    params:
        resampler=lambda wildcards: METHODS[wildcards.method]["resample"],
        args=lambda wildcards: METHODS[wildcards.method].get("resample_args", {}),
        seed=lambda wildcards: int(wildcards.seed),
    script:
        "../scripts/resample.py"
