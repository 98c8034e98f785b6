rule compare:
    """One row per experiment (CSV and Markdown) and a comparison plot."""
    input:
        summaries=lambda w: rw.summary_files(STUDY),
    output:
        csv=report(RESULTS.summary_csv, caption="../report/summary_table.rst", category="Summary"),
        markdown=report(RESULTS.summary_md, caption="../report/summary_table.rst", category="Summary"),
        plot=report(RESULTS.comparison_plot, caption="../report/comparison.rst", category="Summary"),
    params:
        root=RESULTS.root,
    log:
        RESULTS.compare_log,
    resources:
        **rw.study_job_resources(),
    conda:
        "../envs/rlpipe.yaml"
    shell:
        "rlpipe compare --results-dir {params.root:q} {input.summaries:q} > {log:q} 2>&1"
