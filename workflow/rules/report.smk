rule results_table:
    input:
        metrics=get_run_metrics,
    output:
        markdown="results/{study}/tables/{dataset}_{profile}.md",
        html=report(
            "results/{study}/tables/{dataset}_{profile}.html",
            caption="../report/table.rst",
            category="Tables",
            subcategory="{dataset}, {profile}",
            labels={"format": "table"},
        ),
        csv=report(
            "results/{study}/tables/{dataset}_{profile}.csv",
            caption="../report/table.rst",
            category="Tables",
            subcategory="{dataset}, {profile}",
            labels={"format": "CSV"},
        ),
    log:
        "logs/{study}/results_table/{dataset}_{profile}.log",
    localrule: True
    conda:
        "../envs/analysis.yaml"
    params:
        methods=lambda wildcards: study.dataset_methods(wildcards.dataset),
        seeds=study.seeds,
        task=lambda wildcards: study.tasks[wildcards.dataset],
    script:
        "../scripts/results_table.py"


rule class_distribution_figure:
    input:
        counts="results/{study}/data/{dataset}/{profile}/class_counts.tsv",
    output:
        figure=report(
            "results/{study}/figures/{dataset}_{profile}_class_distribution.png",
            caption="../report/class_distribution.rst",
            category="Figures",
            subcategory="Class distributions",
            labels={"training set": "{dataset}, {profile}"},
        ),
    log:
        "logs/{study}/class_distribution_figure/{dataset}_{profile}.log",
    localrule: True
    conda:
        "../envs/analysis.yaml"
    params:
        task=lambda wildcards: study.tasks[wildcards.dataset],
    script:
        "../scripts/class_distribution_figure.py"


rule confusion_figure:
    input:
        metrics=get_run_metrics,
    output:
        figure=report(
            "results/{study}/figures/{dataset}_{profile}_confusion.png",
            caption="../report/confusion.rst",
            category="Figures",
            subcategory="Confusion matrices",
            labels={"training set": "{dataset}, {profile}"},
        ),
    log:
        "logs/{study}/confusion_figure/{dataset}_{profile}.log",
    localrule: True
    conda:
        "../envs/analysis.yaml"
    params:
        methods=lambda wildcards: study.dataset_methods(wildcards.dataset),
        seeds=study.seeds,
    script:
        "../scripts/confusion_figure.py"


rule logit_figure:
    input:
        metrics=get_run_metrics,
    output:
        figure=report(
            "results/{study}/figures/{dataset}_{profile}_logit_histograms.png",
            caption="../report/logits.rst",
            category="Figures",
            subcategory="Logit histograms",
            labels={"training set": "{dataset}, {profile}"},
        ),
    log:
        "logs/{study}/logit_figure/{dataset}_{profile}.log",
    localrule: True
    conda:
        "../envs/analysis.yaml"
    params:
        methods=lambda wildcards: study.dataset_methods(wildcards.dataset),
        seeds=study.seeds,
    script:
        "../scripts/logit_figure.py"


rule calibration_table:
    input:
        metrics=get_run_metrics,
    output:
        markdown="results/{study}/tables/{dataset}_{profile}_calibration.md",
        html=report(
            "results/{study}/tables/{dataset}_{profile}_calibration.html",
            caption="../report/calibration.rst",
            category="Calibration",
            subcategory="{dataset}, {profile}",
            labels={"kind": "table"},
        ),
        csv="results/{study}/tables/{dataset}_{profile}_calibration.csv",
        figure=report(
            "results/{study}/figures/{dataset}_{profile}_reliability.png",
            caption="../report/reliability.rst",
            category="Calibration",
            subcategory="{dataset}, {profile}",
            labels={"kind": "reliability"},
        ),
    log:
        "logs/{study}/calibration_table/{dataset}_{profile}.log",
    localrule: True
    conda:
        "../envs/analysis.yaml"
    params:
        methods=lambda wildcards: study.dataset_methods(wildcards.dataset),
        seeds=study.seeds,
        bins=study.evaluation["calibration_bins"],
    script:
        "../scripts/calibration_table.py"


rule shift_table:
    input:
        unpack(get_run_shifts),
    output:
        markdown="results/{study}/tables/{dataset}_{profile}_shift.md",
        html=report(
            "results/{study}/tables/{dataset}_{profile}_shift.html",
            caption="../report/shift.rst",
            category="Performance estimation",
            labels={"training set": "{dataset}, {profile}"},
        ),
        csv="results/{study}/tables/{dataset}_{profile}_shift.csv",
    log:
        "logs/{study}/shift_table/{dataset}_{profile}.log",
    localrule: True
    conda:
        "../envs/analysis.yaml"
    params:
        methods=lambda wildcards: study.shift_methods(wildcards.dataset),
        seeds=study.seeds,
        natural=lambda wildcards: study.natural_shifts(wildcards.dataset),
    script:
        "../scripts/shift_table.py"


rule cross_table:
    input:
        metrics=get_cross_metrics,
    output:
        markdown="results/{study}/tables/{dataset}_{profile}_test_on.md",
        html=report(
            "results/{study}/tables/{dataset}_{profile}_test_on.html",
            caption="../report/cross_table.rst",
            category="Tables",
            subcategory="{dataset}, {profile}",
            labels={"format": "on other test sets"},
        ),
        csv="results/{study}/tables/{dataset}_{profile}_test_on.csv",
    log:
        "logs/{study}/cross_table/{dataset}_{profile}.log",
    localrule: True
    conda:
        "../envs/analysis.yaml"
    params:
        test_sets=lambda wildcards: [wildcards.dataset, *study.test_sets(wildcards.dataset)],
        methods=lambda wildcards: study.cross_methods(wildcards.dataset),
        seeds=study.seeds,
    script:
        "../scripts/cross_table.py"


rule declared_table:
    input:
        metrics=lambda wildcards: [
            path
            for cell in study.table_cells(wildcards.table)
            for path in study.cell_metrics(cell)
        ],
    output:
        markdown="results/{study}/tables/paper/{table}.md",
        html=report(
            "results/{study}/tables/paper/{table}.html",
            caption="../report/declared_table.rst",
            category="Paper tables",
            labels={"table": "{table}"},
        ),
        csv="results/{study}/tables/paper/{table}.csv",
        tex="results/{study}/tables/paper/{table}.tex",
    log:
        "logs/{study}/declared_table/{table}.log",
    wildcard_constraints:
        table=alternatives(study.tables),
    localrule: True
    conda:
        "../envs/analysis.yaml"
    params:
        spec=lambda wildcards: study.tables[wildcards.table],
        cells=lambda wildcards: study.table_cells(wildcards.table),
        seeds=study.seeds,
    script:
        "../scripts/declared_table.py"


rule sweep_figure:
    input:
        unpack(get_figure_data),
        metrics=lambda wildcards: study.figure_metrics(wildcards.figure),
    output:
        png=report(
            "results/{study}/figures/paper/{figure}.png",
            caption="../report/sweep_figure.rst",
            category="Paper figures",
            labels={"figure": "{figure}"},
        ),
        pdf="results/{study}/figures/paper/{figure}.pdf",
        csv="results/{study}/figures/paper/{figure}.csv",
    log:
        "logs/{study}/sweep_figure/{figure}.log",
    wildcard_constraints:
        figure=alternatives(study.figures),
    localrule: True
    conda:
        "../envs/analysis.yaml"
    params:
        name=lambda wildcards: wildcards.figure,
        spec=lambda wildcards: study.figures[wildcards.figure],
        profiles=lambda wildcards: study.figure_profiles(wildcards.figure),
        methods=lambda wildcards: study.figure_methods(wildcards.figure),
        seeds=study.seeds,
    script:
        "../scripts/sweep_figure.py"
