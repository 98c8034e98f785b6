rule aggregate:
    """Gather an experiment's instances: tables, summary statistics and plots."""
    input:
        fitted=lambda w: rw.batch_records(STUDY, w.experiment, "fit"),
        evaluated=lambda w: rw.batch_records(STUDY, w.experiment, "evaluate"),
    output:
        writer_data=EXPERIMENT.writer_data,
        evaluation=EXPERIMENT.evaluation,
        summary=EXPERIMENT.summary,
        learning_curve=report(EXPERIMENT.learning_curve_plot, caption="../report/learning_curve.rst", category="Learning curves", labels=rw.experiment_labels(STUDY, "learning curve")),
        evaluation_plot=report(EXPERIMENT.evaluation_plot, caption="../report/evaluation.rst", category="Evaluation", labels=rw.experiment_labels(STUDY, "evaluation")),
    params:
        task=lambda w: rw.aggregate_task_json(STUDY, w.experiment),
        facts=lambda w: rw.caption_facts(STUDY, w.experiment),  # what the report's captions state
        folder=lambda w, output: os.path.dirname(output.summary),
    log:
        EXPERIMENT.aggregate_log,
    priority: lambda w: rw.job_priority(STUDY, w.experiment)
    resources:
        **rw.job_resources(STUDY, without=("cpus_per_task", "gpu")),
    conda:
        "../envs/rlpipe.yaml"
    shell:
        "rlpipe aggregate --task {params.task:q} --experiment-dir {params.folder:q} {input:q} > {log:q} 2>&1"
