rule compare:
    """One row per experiment (CSV and Markdown) and a comparison plot."""
    input:
        summaries=lambda w: rw.summary_files(STUDY),
    output:
        csv=RESULTS.summary_csv,
        markdown=report(RESULTS.summary_md, category="Summary"),
        plot=report(RESULTS.comparison_plot, category="Summary"),
    params:
        root=RESULTS.root,
    log:
        RESULTS.compare_log,
    conda:
        "../envs/rlpipe.yaml"
    shell:
        "rlpipe compare --results-dir {params.root:q} {input.summaries:q} > {log:q} 2>&1"
