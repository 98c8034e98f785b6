rule evaluate:
    """Evaluate one fitted instance: one row per episode."""
    input:
        checkpoint=INSTANCE.checkpoint,
    output:
        episodes=INSTANCE.evaluation,
    params:
        task=lambda w: rw.eval_task_json(STUDY, w.experiment, w.instance),  # what it computes: the rerun trigger
        run=lambda w: rw.run_settings(STUDY, w.experiment),  # how it runs: not recorded, never a rerun trigger
        folder=lambda w, output: os.path.dirname(output.episodes),
    log:
        INSTANCE.evaluation_log,
    threads: 1
    conda:
        "../envs/rlpipe.yaml"
    shell:
        "rlpipe evaluate --task {params.task:q} --run {params.run:q} --instance-dir {params.folder:q} > {log:q} 2>&1"
