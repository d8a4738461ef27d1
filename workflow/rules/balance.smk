rule resample:
    input:
        unpack(get_embeddings),
        indices="results/{study}/data/{dataset}/{profile}/train_indices.npy",
        images="results/{study}/data/{dataset}/train_images.npy",
        targets="results/{study}/data/{dataset}/train_targets.npy",
        meta="results/{study}/data/{dataset}/meta.json",
    output:
        indices="results/{study}/runs/{dataset}/{profile}/{method}/seed{seed}/train_indices.npy",
        counts="results/{study}/runs/{dataset}/{profile}/{method}/seed{seed}/class_counts.tsv",
        synthetic="results/{study}/runs/{dataset}/{profile}/{method}/seed{seed}/synthetic.npz",
    log:
        "logs/{study}/resample/{dataset}_{profile}_{method}_seed{seed}.log",
    wildcard_constraints:
        method=alternatives(m for m in study.methods if m not in study.gan_methods),
    conda:
        "../envs/analysis.yaml"
    params:
        resampler=lambda wildcards: study.methods[wildcards.method]["resample"],
        args=lambda wildcards: study.methods[wildcards.method].get("resample_args", {}),
        seed=lambda wildcards: int(wildcards.seed),
    script:
        "../scripts/resample.py"


rule train_extractor:
    input:
        unpack(get_validation),
        indices="results/{study}/data/{dataset}/{profile}/train_indices.npy",
        train_images="results/{study}/data/{dataset}/train_images.npy",
        train_targets="results/{study}/data/{dataset}/train_targets.npy",
        val_images="results/{study}/data/{dataset}/val_images.npy",
        val_targets="results/{study}/data/{dataset}/val_targets.npy",
        meta="results/{study}/data/{dataset}/meta.json",
    output:
        model="results/{study}/features/{dataset}/{profile}/extractor.pt",
        embeddings="results/{study}/features/{dataset}/{profile}/train_embeddings.npy",
        history="results/{study}/features/{dataset}/{profile}/history.json",
    log:
        "logs/{study}/train_extractor/{dataset}_{profile}.log",
    conda:
        TORCH_ENV
    threads: 1
    resources:
        gpu=1,
    params:
        model=study.extractor["model"],
        seed=study.extractor["seed"],
        training=lambda wildcards: study.extractor_training(wildcards.dataset),
    script:
        "../scripts/train_extractor.py"


rule train_gan:
    input:
        unpack(get_synthesizer_references),
        indices="results/{study}/data/{dataset}/{profile}/train_indices.npy",
        train_images="results/{study}/data/{dataset}/train_images.npy",
        train_targets="results/{study}/data/{dataset}/train_targets.npy",
        test_images="results/{study}/data/{dataset}/test_images.npy",
        test_targets="results/{study}/data/{dataset}/test_targets.npy",
        meta="results/{study}/data/{dataset}/meta.json",
    output:
        generator="results/{study}/gans/{dataset}/{profile}/{method}/generator.pt",
        history="results/{study}/gans/{dataset}/{profile}/{method}/history.json",
        quality="results/{study}/tables/{dataset}_{profile}_{method}_synthesis.md",
        quality_html=report(
            "results/{study}/tables/{dataset}_{profile}_{method}_synthesis.html",
            caption="../report/synthesis.rst",
            category="Synthesis",
            subcategory="{dataset}, {profile}",
            labels={"method": "{method}", "kind": "quality"},
        ),
        samples=report(
            "results/{study}/figures/{dataset}_{profile}_{method}_samples.png",
            caption="../report/samples.rst",
            category="Synthesis",
            subcategory="{dataset}, {profile}",
            labels={"method": "{method}", "kind": "samples"},
        ),
    log:
        "logs/{study}/train_gan/{dataset}_{profile}_{method}.log",
    wildcard_constraints:
        method=alternatives(study.gan_methods),
    conda:
        TORCH_ENV
    threads: 1
    resources:
        gpu=1,
    params:
        kind=lambda wildcards: study.methods[wildcards.method]["resample"],
        gan=lambda wildcards: study.gan_settings(wildcards.method),
        tstr=synthesizer_training,
    script:
        "../scripts/train_gan.py"


rule gan_oversample:
    input:
        generator="results/{study}/gans/{dataset}/{profile}/{method}/generator.pt",
        indices="results/{study}/data/{dataset}/{profile}/train_indices.npy",
        targets="results/{study}/data/{dataset}/train_targets.npy",
        meta="results/{study}/data/{dataset}/meta.json",
    output:
        indices="results/{study}/runs/{dataset}/{profile}/{method}/seed{seed}/train_indices.npy",
        counts="results/{study}/runs/{dataset}/{profile}/{method}/seed{seed}/class_counts.tsv",
        synthetic="results/{study}/runs/{dataset}/{profile}/{method}/seed{seed}/synthetic.npz",
    log:
        "logs/{study}/gan_oversample/{dataset}_{profile}_{method}_seed{seed}.log",
    wildcard_constraints:
        method=alternatives(study.gan_methods),
    conda:
        TORCH_ENV
    threads: 1
    params:
        ratio=lambda wildcards: study.methods[wildcards.method]["resample_args"].get("ratio", 1.0),
        seed=lambda wildcards: int(wildcards.seed),
    script:
        "../scripts/gan_oversample.py"
