rule aggregate:
    """Gather an experiment's instances: tables, summary statistics and plots."""
    input:
        writers=lambda w: rw.instance_files(STUDY, w.experiment, "writer"),
        episodes=lambda w: rw.instance_files(STUDY, w.experiment, "evaluation"),
        records=lambda w: rw.instance_files(STUDY, w.experiment, "fit_record"),
    output:
        writer_data=EXPERIMENT.writer_data,
        evaluation=EXPERIMENT.evaluation,
        summary=EXPERIMENT.summary,
        learning_curve=report(EXPERIMENT.learning_curve_plot, caption="../report/learning_curve.rst", category="Learning curves"),
        evaluation_plot=report(EXPERIMENT.evaluation_plot, caption="../report/evaluation.rst", category="Evaluation"),
    params:
        task=lambda w: rw.aggregate_task_json(STUDY, w.experiment),
        folder=lambda w, output: os.path.dirname(output.summary),
    log:
        EXPERIMENT.aggregate_log,
    conda:
        "../envs/rlpipe.yaml"
    shell:
        "rlpipe aggregate --task {params.task:q} --experiment-dir {params.folder:q} > {log:q} 2>&1"
