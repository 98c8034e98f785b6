rule compare:
    """One row per experiment (CSV and Markdown) and a comparison plot."""
    input:
        summaries=lambda w: rw.summary_files(STUDY),
    output:
        csv=report(RESULTS.summary_csv, caption="../report/summary_table.rst", category="Summary", labels={"result": "summary of every experiment", "kind": "table (CSV)"}),
        markdown=report(RESULTS.summary_md, caption="../report/summary_table.rst", category="Summary", labels={"result": "summary of every experiment", "kind": "table (Markdown)"}),
        plot=report(RESULTS.comparison_plot, caption="../report/comparison.rst", category="Summary", labels={"result": "experiments compared", "kind": "figure"}),
    params:
        root=RESULTS.root,
        facts=lambda w: rw.study_facts(STUDY),  # what the report's captions state
    log:
        RESULTS.compare_log,
    resources:
        **rw.study_job_resources(),
    conda:
        "../envs/rlpipe.yaml"
    shell:
        "rlpipe compare --results-dir {params.root:q} {input.summaries:q} > {log:q} 2>&1"


rule cross_env:
    """Metrics across environments (rliable's), in the default target when the config has a metrics section."""
    input:
        summaries=lambda w: rw.summary_files(STUDY),
        writer_data=lambda w: rw.writer_data_files(STUDY),
    output:
        scores=CROSS_ENV.scores,
        aggregates=report(CROSS_ENV.table("aggregates"), caption="../report/cross_env_aggregates.rst", category="Across environments", labels={"result": "aggregate metrics", "kind": "table"}),
        aggregates_md=CROSS_ENV.table("aggregates", "md"),
        aggregates_tex=CROSS_ENV.table("aggregates", "tex"),
        improvement=report(CROSS_ENV.table("improvement"), caption="../report/cross_env_improvement.rst", category="Across environments", labels={"result": "probability of improvement", "kind": "table"}),
        improvement_md=CROSS_ENV.table("improvement", "md"),
        improvement_tex=CROSS_ENV.table("improvement", "tex"),
        profiles=CROSS_ENV.table("profiles"),
        sample_efficiency=CROSS_ENV.table("sample_efficiency"),
        aggregates_png=report(CROSS_ENV.figure("aggregates"), caption="../report/cross_env_aggregates.rst", category="Across environments", labels={"result": "aggregate metrics", "kind": "figure"}),
        aggregates_pdf=CROSS_ENV.figure("aggregates", "pdf"),
        improvement_png=report(CROSS_ENV.figure("improvement"), caption="../report/cross_env_improvement.rst", category="Across environments", labels={"result": "probability of improvement", "kind": "figure"}),
        improvement_pdf=CROSS_ENV.figure("improvement", "pdf"),
        profiles_png=report(CROSS_ENV.figure("profiles"), caption="../report/cross_env_profiles.rst", category="Across environments", labels={"result": "performance profiles", "kind": "figure"}),
        profiles_pdf=CROSS_ENV.figure("profiles", "pdf"),
        sample_efficiency_png=report(CROSS_ENV.figure("sample_efficiency"), caption="../report/cross_env_sample_efficiency.rst", category="Across environments", labels={"result": "sample efficiency", "kind": "figure"}),
        sample_efficiency_pdf=CROSS_ENV.figure("sample_efficiency", "pdf"),
    params:
        task=lambda w: rw.cross_env_task_json(STUDY),
        facts=lambda w: rw.cross_env_facts(STUDY),  # what the report's captions state
        root=RESULTS.root,
    log:
        CROSS_ENV.log,
    resources:
        **rw.study_job_resources(),
    conda:
        "../envs/rlpipe.yaml"
    shell:
        "rlpipe cross-env --task {params.task:q} --results-dir {params.root:q} > {log:q} 2>&1"
