# Opt-in hyperparameter optimisation: `snakemake --cores N optimize`. Workers share one Optuna study; confirm jobs
# refit its best trials and the config's own init_kwargs on fresh seeds shared by all of them; the select job writes
# the confirmed winner into the config file only if a paired test shows it better, so the next plain run refits.
OPTIMIZE = EXPERIMENT.optimize


wildcard_constraints:
    candidate=r"\d+|current",


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


rule optimize_confirm:
    """Refit one candidate of the finished study on the confirmation's fresh seeds: trial rank {candidate}, or the
    config's own init_kwargs ("current")."""
    input:
        workers=lambda w: rw.optimize_worker_files(STUDY, w.experiment, workflow.configfiles),
    output:
        record=OPTIMIZE.confirm_record("{candidate}"),
    params:
        task=lambda w: rw.optimize_task_json(STUDY, w.experiment),
        confirm=lambda w: rw.optimize_confirm_json(STUDY, w.experiment, w.candidate),
        folder=lambda w: RESULTS.experiment(w.experiment).optimize.folder,
    log:
        OPTIMIZE.confirm_log("{candidate}"),
    threads: lambda w: rw.threads(STUDY, w.experiment)
    resources:
        **JOB_RESOURCES,
    conda:
        "../envs/rlpipe.yaml"
    shell:
        "rlpipe optimize-confirm --task {params.task:q} --confirm {params.confirm:q} --optimize-dir {params.folder:q} 2>&1 | tee {log:q}"


rule optimize_select:
    """Summarize the study, select on the confirmed scores, and write the winner's init_kwargs into the config file in
    use (with a backup) only if it is shown better than the config's own; else report why not."""
    input:
        workers=lambda w: rw.optimize_worker_files(STUDY, w.experiment, workflow.configfiles),
        confirm=lambda w: rw.optimize_confirm_files(STUDY, w.experiment),
    output:
        best=OPTIMIZE.best_init_kwargs,
        confirmation=report(OPTIMIZE.confirmation, caption="../report/optimize_confirmation.rst", category="Hyperparameter optimization"),
        selection=OPTIMIZE.selection,
        trials=OPTIMIZE.trials,
        history=report(OPTIMIZE.history_plot, caption="../report/optimize_history.rst", category="Hyperparameter optimization"),
        importance=report(OPTIMIZE.importance_plot, caption="../report/optimize_importance.rst", category="Hyperparameter optimization"),
    params:
        task=lambda w: rw.optimize_task_json(STUDY, w.experiment),
        folder=lambda w: RESULTS.experiment(w.experiment).optimize.folder,
        config=lambda w: rw.writeback_config_file(workflow.configfiles, w.experiment),
        confirm=lambda w: rw.optimize_confirm_settings_json(STUDY, w.experiment),
        configfiles=rw.writeback_config_files(workflow.configfiles),  # shell-quoted: the write-back validates them merged
    log:
        OPTIMIZE.select_log,
    resources:
        **rw.study_job_resources(),
    conda:
        "../envs/rlpipe.yaml"
    shell:
        "rlpipe optimize-select --task {params.task:q} --optimize-dir {params.folder:q} --confirm {params.confirm:q} --confirm-records {input.confirm:q} --config {params.config:q} --config-files {params.configfiles} 2>&1 | tee {log:q}"


rule optimize:
    """Tune every experiment that has an `optimize` section."""
    input:
        lambda w: rw.optimize_outputs(STUDY, workflow.configfiles),  # a function: only an optimize run loads Optuna
