rule evaluate:
    """Evaluate a batch of fitted instances: one row per episode (or per call of the agent's own eval)."""
    input:
        fitted=FIT_BATCH.record,
    output:
        record=EVALUATE_BATCH.record,
    params:
        task=lambda w: rw.batch_task_json(STUDY, w.experiment, "evaluate", w.batch),  # the rerun trigger
        run=lambda w: rw.run_settings(STUDY, w.experiment),  # how it runs: not recorded, never a rerun trigger
        folder=lambda w: RESULTS.experiment(w.experiment).folder,
    log:
        EVALUATE_BATCH.log,
    threads: lambda w: rw.threads(STUDY, w.experiment)
    priority: lambda w: rw.job_priority(STUDY, w.experiment)  # experiments in the config's order
    resources:
        **JOB_RESOURCES,
    group:
        "instances"
    conda:
        "../envs/rlpipe.yaml"
    shell:
        "rlpipe evaluate --task {params.task:q} --run {params.run:q} --batch {wildcards.batch} --experiment-dir {params.folder:q} > {log:q} 2>&1"
