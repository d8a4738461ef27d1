rule evaluate:
    input:
        predictions="results/{study}/runs/{dataset}/{profile}/{method}/seed{seed}/predictions.npz",
        meta="results/{study}/data/{dataset}/meta.json",
    output:
        metrics="results/{study}/runs/{dataset}/{profile}/{method}/seed{seed}/metrics.json",
    log:
        "logs/{study}/evaluate/{dataset}_{profile}_{method}_seed{seed}.log",
    conda:
        "../envs/analysis.yaml"
    script:
        "../scripts/evaluate.py"
