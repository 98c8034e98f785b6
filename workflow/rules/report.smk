# What `snakemake --report` needs beyond the stages' own outputs: the provenance page of every result.


rule provenance:
    """The study's provenance page: the config as run and its hash, root seed, git commit, versions, machine."""
    input:
        summaries=lambda w: rw.summary_files(STUDY),
    output:
        page=report(RESULTS.provenance_html, caption="../report/provenance.rst", category="Provenance", labels={"page": "provenance of the results"}),
        record=RESULTS.provenance_json,
    params:
        config=lambda w: rw.config_json(config),  # a changed config rewrites the page
        code=lambda w: rw.code_state(),  # so does a new commit
        configfiles=rw.writeback_config_files(workflow.configfiles),
        root=RESULTS.root,
    log:
        RESULTS.provenance_log,
    resources:
        **rw.study_job_resources(),
    conda:
        "../envs/rlpipe.yaml"
    shell:
        "rlpipe provenance --config {params.config:q} --config-files {params.configfiles} --results-dir {params.root:q} {input.summaries:q} > {log:q} 2>&1"


rule tuning_page:
    """The tuning results the optimize target left on disk, for the report (a plain run never runs a study)."""
    output:
        page=report(RESULTS.tuning_page, caption="../report/tuning_page.rst", category="Hyperparameter optimization", labels={"page": "tuning results of every tuned experiment"}),
    params:
        current=lambda w: rw.tuning_studies_json(STUDY),
        state=lambda w: rw.opt_in_state(STUDY, "tuning"),  # the page is rewritten when the optimize target ran again
        root=RESULTS.root,
    log:
        RESULTS.page_log("tuning"),
    resources:
        **rw.study_job_resources(),
    conda:
        "../envs/rlpipe.yaml"
    shell:
        "rlpipe page tuning --current {params.current:q} --results-dir {params.root:q} --output {output.page:q} > {log:q} 2>&1"


rule adastop_page:
    """The AdaStop decisions the adastop target left on disk, for the report."""
    output:
        page=report(RESULTS.adastop_page, caption="../report/adastop_page.rst", category="AdaStop", labels={"page": "decisions of every comparison"}),
    params:
        current=lambda w: rw.adastop_tasks_json(STUDY),
        state=lambda w: rw.opt_in_state(STUDY, "adastop"),  # the page is rewritten when the adastop target ran again
        root=RESULTS.root,
    log:
        RESULTS.page_log("adastop"),
    resources:
        **rw.study_job_resources(),
    conda:
        "../envs/rlpipe.yaml"
    shell:
        "rlpipe page adastop --current {params.current:q} --results-dir {params.root:q} --output {output.page:q} > {log:q} 2>&1"
