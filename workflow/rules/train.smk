rule train:
    input:
        unpack(get_training_set),
        unpack(get_validation),
        unpack(get_stage1),
        unpack(get_pretrained),
        profile_indices="results/{study}/data/{dataset}/{profile}/train_indices.npy",
        train_images="results/{study}/data/{dataset}/train_images.npy",
        train_targets="results/{study}/data/{dataset}/train_targets.npy",
        val_images="results/{study}/data/{dataset}/val_images.npy",
        val_targets="results/{study}/data/{dataset}/val_targets.npy",
        test_images="results/{study}/data/{dataset}/test_images.npy",
        test_targets="results/{study}/data/{dataset}/test_targets.npy",
        meta="results/{study}/data/{dataset}/meta.json",
    output:
        model="results/{study}/runs/{dataset}/{profile}/{method}/seed{seed}/model.pt",
        history="results/{study}/runs/{dataset}/{profile}/{method}/seed{seed}/history.json",
        predictions="results/{study}/runs/{dataset}/{profile}/{method}/seed{seed}/predictions.npz",
        run_config="results/{study}/runs/{dataset}/{profile}/{method}/seed{seed}/run_config.json",
        env="results/{study}/runs/{dataset}/{profile}/{method}/seed{seed}/env.json",
    log:
        "logs/{study}/train/{dataset}_{profile}_{method}_seed{seed}.log",
    conda:
        TORCH_ENV
    threads: 1
    resources:
        gpu=1,
    params:
        run=lambda wc: study.run_config(wc.dataset, wc.profile, wc.method, wc.seed),
        tta=study.evaluation["tta"],
    script:
        "../scripts/train.py"
