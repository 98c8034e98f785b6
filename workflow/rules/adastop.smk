# Opt-in AdaStop comparisons: `snakemake --cores N adastop` (the config's adastop section). Each interim is a
# checkpoint: its decision job reads which experiments the previous interim left undecided. Instances below an
# experiment's n_fit are the plain run's; the flow fits the others, in the experiment's folder.
from rlpipe.pipeline import adastop as ra

ADASTOP_FIT = EXPERIMENT.batch(f"{ra.PREFIX}fit", "{batch}")
ADASTOP_EVALUATE = EXPERIMENT.batch(f"{ra.PREFIX}evaluate", "{batch}")
COMPARISON = RESULTS.adastop("{comparison}")


wildcard_constraints:
    comparison=rw.EXPERIMENT_PATTERN,
    interim=r"\d+",


rule adastop_fit:
    """Fit a batch of the instances beyond an experiment's n_fit that an AdaStop comparison needs."""
    output:
        record=ADASTOP_FIT.record,
    params:
        task=lambda w: ra.batch_task_json(STUDY, w.experiment, "fit", w.batch),  # the rerun trigger
        run=lambda w: rw.run_settings(STUDY, w.experiment),  # how it runs: never a rerun trigger
        folder=lambda w: RESULTS.experiment(w.experiment).folder,
        prefix=ra.PREFIX,
    log:
        ADASTOP_FIT.log,
    threads: lambda w: rw.threads(STUDY, w.experiment)
    resources:
        **JOB_RESOURCES,
    group:
        "instances"
    conda:
        "../envs/rlpipe.yaml"
    shell:
        "rlpipe fit --task {params.task:q} --run {params.run:q} --batch {wildcards.batch} --record-prefix {params.prefix} --experiment-dir {params.folder:q} > {log:q} 2>&1"


rule adastop_evaluate:
    """Evaluate a batch of the instances an AdaStop comparison fitted."""
    input:
        fitted=ADASTOP_FIT.record,
    output:
        record=ADASTOP_EVALUATE.record,
    params:
        task=lambda w: ra.batch_task_json(STUDY, w.experiment, "evaluate", w.batch),
        run=lambda w: rw.run_settings(STUDY, w.experiment),
        folder=lambda w: RESULTS.experiment(w.experiment).folder,
        prefix=ra.PREFIX,
    log:
        ADASTOP_EVALUATE.log,
    threads: lambda w: rw.threads(STUDY, w.experiment)
    resources:
        **JOB_RESOURCES,
    group:
        "instances"
    conda:
        "../envs/rlpipe.yaml"
    shell:
        "rlpipe evaluate --task {params.task:q} --run {params.run:q} --batch {wildcards.batch} --record-prefix {params.prefix} --experiment-dir {params.folder:q} > {log:q} 2>&1"


checkpoint adastop_interim:
    """An interim's decisions: adastop's comparator replayed from interim 0 on the scores of every instance so far."""
    input:
        unpack(lambda w: ra.interim_inputs(STUDY, w.comparison, w.interim, ra.interim_files(checkpoints, w.comparison))),
    output:
        state=COMPARISON.interim("{interim}"),
    params:
        task=lambda w: ra.decide_task_json(STUDY, w.comparison),
        root=RESULTS.root,
    log:
        COMPARISON.interim_log("{interim}"),
    resources:
        **rw.study_job_resources(),
    conda:
        "../envs/rlpipe.yaml"
    shell:
        "rlpipe adastop-decide --task {params.task:q} --interim {wildcards.interim} --results-dir {params.root:q} --output {output.state:q} {input.records:q} > {log:q} 2>&1"


rule adastop_report:
    """A finished comparison's decisions, scores, seeds used and figure."""
    input:
        interim=lambda w: ra.final_interim(STUDY, w.comparison, ra.interim_files(checkpoints, w.comparison)),
    output:
        decisions=report(COMPARISON.decisions_csv, caption="../report/adastop_decisions.rst", category="AdaStop", subcategory="{comparison}"),
        markdown=report(COMPARISON.decisions_md, caption="../report/adastop_decisions.rst", category="AdaStop", subcategory="{comparison}"),
        scores=report(COMPARISON.scores_csv, caption="../report/adastop_scores.rst", category="AdaStop", subcategory="{comparison}"),
        seeds=report(COMPARISON.seeds_csv, caption="../report/adastop_scores.rst", category="AdaStop", subcategory="{comparison}"),
        plot=report(COMPARISON.plot, caption="../report/adastop_plot.rst", category="AdaStop", subcategory="{comparison}"),
    params:
        facts=lambda w, input: ra.caption_facts(STUDY, w.comparison, input.interim),  # what the captions state
        folder=lambda w: RESULTS.adastop(w.comparison).folder,
    log:
        COMPARISON.report_log,
    resources:
        **rw.study_job_resources(),
    conda:
        "../envs/rlpipe.yaml"
    shell:
        "rlpipe adastop-report --interim-file {input.interim:q} --output-dir {params.folder:q} > {log:q} 2>&1"


rule adastop:
    """Run every AdaStop comparison of the config's adastop section."""
    input:
        lambda w: ra.adastop_outputs(STUDY),
