rule synthesize_graded_lesions:
    output:
        images="resources/synthetic/graded_lesions/{key}/images.npy",
        labels="resources/synthetic/graded_lesions/{key}/labels.npy",
        meta="resources/synthetic/graded_lesions/{key}/meta.json",
    log:
        "logs/synthetic/graded_lesions/{key}.log",
    conda:
        "../envs/analysis.yaml"
    params:
        spec=lambda wildcards: SYNTHETIC[wildcards.key],
    script:
        "../scripts/synthesize_graded_lesions.py"


rule split_dataset:
    input:
        unpack(get_source),
    output:
        train_images="results/{study}/data/{dataset}/train_images.npy",
        train_labels="results/{study}/data/{dataset}/train_labels.npy",
        val_images="results/{study}/data/{dataset}/val_images.npy",
        val_labels="results/{study}/data/{dataset}/val_labels.npy",
        test_images="results/{study}/data/{dataset}/test_images.npy",
        test_labels="results/{study}/data/{dataset}/test_labels.npy",
        meta="results/{study}/data/{dataset}/meta.json",
        splits="results/{study}/data/{dataset}/splits.json",
    log:
        "logs/{study}/split_dataset/{dataset}.log",
    conda:
        "../envs/analysis.yaml"
    params:
        split=lambda wildcards: DATASETS[wildcards.dataset]["split"],
    script:
        "../scripts/split_dataset.py"


rule impose_profile:
    input:
        labels="results/{study}/data/{dataset}/train_labels.npy",
        meta="results/{study}/data/{dataset}/meta.json",
    output:
        indices="results/{study}/data/{dataset}/{profile}/train_indices.npy",
        counts="results/{study}/data/{dataset}/{profile}/class_counts.tsv",
    log:
        "logs/{study}/impose_profile/{dataset}_{profile}.log",
    conda:
        "../envs/analysis.yaml"
    params:
        profile=lambda wildcards: PROFILES[wildcards.profile],
    script:
        "../scripts/impose_profile.py"
