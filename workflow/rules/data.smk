rule download:
    output:
        file="{download}",
    log:
        "logs/download/{download}.log",
    wildcard_constraints:
        download=alternatives(DOWNLOADS),
    localrule: True
    conda:
        "../envs/analysis.yaml"
    params:
        url=lambda wildcards: DOWNLOADS[wildcards.download].url,
        md5=lambda wildcards: DOWNLOADS[wildcards.download].md5,
    script:
        "../scripts/download.py"


rule extract_archive:
    input:
        archive=lambda wildcards: EXTRACTIONS[wildcards.folder],
    output:
        folder=directory("{folder}"),
    log:
        "logs/extract/{folder}.log",
    wildcard_constraints:
        folder=alternatives(EXTRACTIONS),
    conda:
        "../envs/analysis.yaml"
    params:
        url=lambda wildcards: DOWNLOADS[EXTRACTIONS[wildcards.folder]].url,
        md5=lambda wildcards: DOWNLOADS[EXTRACTIONS[wildcards.folder]].md5,
    script:
        "../scripts/extract_archive.py"


# Synthetic sources (medimbalance.data.sources.GENERATORS), written in the raw layout ...
rule synthesize:
    output:
        **raw_outputs("resources/synthetic/{generator}/{key}"),
    log:
        "logs/synthetic/{generator}/{key}.log",
    wildcard_constraints:
        generator=alternatives(RAW_GENERATORS),
        key=r"[0-9a-f]{12}",
    conda:
        "../envs/analysis.yaml"
    params:
        spec=lambda wildcards: GENERATED[
            f"resources/synthetic/{wildcards.generator}/{wildcards.key}"
        ],
    script:
        "../scripts/synthesize.py"


# ... or as image files with a manifest that a converter reads (tumours: NIfTI pairs).
rule synthesize_manifest:
    output:
        manifest="resources/synthetic/{generator}/{key}/manifest.tsv",
    log:
        "logs/synthetic/{generator}/{key}.log",
    wildcard_constraints:
        generator=alternatives(set(GENERATORS) - set(RAW_GENERATORS)),
        key=r"[0-9a-f]{12}",
    conda:
        "../envs/analysis.yaml"
    params:
        spec=lambda wildcards: GENERATED[
            f"resources/synthetic/{wildcards.generator}/{wildcards.key}"
        ],
    script:
        "../scripts/synthesize.py"


rule convert_source:
    input:
        source=lambda wildcards: CONVERSIONS[wildcards.raw][0],
    output:
        **raw_outputs("{raw}"),
    log:
        "logs/convert/{raw}.log",
    wildcard_constraints:
        raw=alternatives(CONVERSIONS),
    conda:
        "../envs/analysis.yaml"
    params:
        spec=lambda wildcards: CONVERSIONS[wildcards.raw][1],
    script:
        "../scripts/convert_source.py"


rule prepare_dataset:
    input:
        unpack(get_raw),
    output:
        train_images="results/{study}/data/{dataset}/train_images.npy",
        train_targets="results/{study}/data/{dataset}/train_targets.npy",
        val_images="results/{study}/data/{dataset}/val_images.npy",
        val_targets="results/{study}/data/{dataset}/val_targets.npy",
        test_images="results/{study}/data/{dataset}/test_images.npy",
        test_targets="results/{study}/data/{dataset}/test_targets.npy",
        meta="results/{study}/data/{dataset}/meta.json",
        splits="results/{study}/data/{dataset}/splits.json",
    log:
        "logs/{study}/prepare_dataset/{dataset}.log",
    conda:
        "../envs/analysis.yaml"
    params:
        split=lambda wildcards: study.datasets[wildcards.dataset]["split"],
        preprocess=lambda wildcards: study.datasets[wildcards.dataset]["preprocess"],
    script:
        "../scripts/prepare_dataset.py"


rule impose_profile:
    input:
        targets="results/{study}/data/{dataset}/train_targets.npy",
        meta="results/{study}/data/{dataset}/meta.json",
    output:
        indices="results/{study}/data/{dataset}/{profile}/train_indices.npy",
        counts="results/{study}/data/{dataset}/{profile}/class_counts.tsv",
    log:
        "logs/{study}/impose_profile/{dataset}_{profile}.log",
    conda:
        "../envs/analysis.yaml"
    params:
        profile=lambda wildcards: study.profiles[wildcards.profile],
    script:
        "../scripts/impose_profile.py"


rule shape_validation:
    input:
        indices="results/{study}/data/{dataset}/{profile}/train_indices.npy",
        train_targets="results/{study}/data/{dataset}/train_targets.npy",
        val_targets="results/{study}/data/{dataset}/val_targets.npy",
        meta="results/{study}/data/{dataset}/meta.json",
    output:
        indices="results/{study}/data/{dataset}/{profile}/val_indices.npy",
        counts="results/{study}/data/{dataset}/{profile}/val_class_counts.tsv",
    log:
        "logs/{study}/shape_validation/{dataset}_{profile}.log",
    conda:
        "../envs/analysis.yaml"
    params:
        profile=lambda wildcards: study.profiles[wildcards.profile],
    script:
        "../scripts/shape_validation.py"
