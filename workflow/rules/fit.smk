rule fit:
    """Fit one instance of one experiment, checkpointing after each chunk of the budget."""
    output:
        checkpoint=INSTANCE.checkpoint,
        writer=INSTANCE.writer,
        record=INSTANCE.fit_record,
    params:
        task=lambda w: rw.fit_task_json(STUDY, w.experiment, w.instance),  # what it computes: the rerun trigger
        run=lambda w: rw.run_settings(STUDY, w.experiment),  # how it runs: not recorded, never a rerun trigger
        folder=lambda w, output: os.path.dirname(output.record),
    log:
        INSTANCE.fit_log,
    threads: 1
    conda:
        "../envs/rlpipe.yaml"
    shell:
        "rlpipe fit --task {params.task:q} --run {params.run:q} --instance-dir {params.folder:q} > {log:q} 2>&1"
