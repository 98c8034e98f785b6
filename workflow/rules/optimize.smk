# Opt-in hyperparameter optimisation: `snakemake --cores N optimize`. Workers share one Optuna study;
# the select job writes the best init_kwargs into the config file, so the next plain run refits.
OPTIMIZE = EXPERIMENT.optimize


rule optimize_worker:
    """Run trials of an experiment's study until it holds n_trials (workers may run on any node)."""
    output:
        record=OPTIMIZE.worker_record("{worker}"),
    params:
        task=lambda w: rw.optimize_task_json(STUDY, w.experiment),
        folder=lambda w: RESULTS.experiment(w.experiment).optimize.folder,
        worker=lambda w: w.worker,
    log:
        OPTIMIZE.worker_log("{worker}"),
    threads: lambda w: rw.threads(STUDY, w.experiment)
    resources:
        **rw.job_resources(STUDY, without=("runtime",)),
    conda:
        "../envs/rlpipe.yaml"
    shell:
        "rlpipe optimize-worker --task {params.task:q} --worker {params.worker} --optimize-dir {params.folder:q} 2>&1 | tee {log:q}"


rule optimize_select:
    """Summarize the study, then write its best init_kwargs into the config file in use (with a backup)."""
    input:
        workers=lambda w: rw.optimize_worker_files(STUDY, w.experiment, workflow.configfiles),
    output:
        best=OPTIMIZE.best_init_kwargs,
        trials=OPTIMIZE.trials,
        history=report(OPTIMIZE.history_plot, caption="../report/optimize_history.rst", category="Hyperparameter optimization"),
        importance=report(OPTIMIZE.importance_plot, caption="../report/optimize_importance.rst", category="Hyperparameter optimization"),
    params:
        task=lambda w: rw.optimize_task_json(STUDY, w.experiment),
        folder=lambda w: RESULTS.experiment(w.experiment).optimize.folder,
        config=lambda w: rw.writeback_config_file(workflow.configfiles, w.experiment),
        configfiles=rw.writeback_config_files(workflow.configfiles),  # shell-quoted: the write-back validates them merged
    log:
        OPTIMIZE.select_log,
    resources:
        **rw.study_job_resources(),
    conda:
        "../envs/rlpipe.yaml"
    shell:
        "rlpipe optimize-select --task {params.task:q} --optimize-dir {params.folder:q} --config {params.config:q} --config-files {params.configfiles} 2>&1 | tee {log:q}"


rule optimize:
    """Tune every experiment that has an `optimize` section."""
    input:
        lambda w: rw.optimize_outputs(STUDY, workflow.configfiles),  # a function: only an optimize run loads Optuna
