rule fit:
    """Fit one instance of one experiment, checkpointing after each chunk of the budget."""
    output:
        checkpoint=INSTANCE.checkpoint,
        writer=INSTANCE.writer,
        record=INSTANCE.fit_record,
    params:
        task=lambda w: rw.fit_task_json(STUDY, w.experiment, w.instance),
        folder=lambda w, output: os.path.dirname(output.record),
    log:
        INSTANCE.fit_log,
    threads: 1
    conda:
        "../envs/rlpipe.yaml"
    shell:
        "rlpipe fit --task {params.task:q} --instance-dir {params.folder:q} > {log:q} 2>&1"
