"""The notebooks' tooling: everything that runs, sizes, shows or records a notebook.

    profiles/   the smoke | laptop | gpu sizes and thresholds, one table per notebook
    results     `record_results`: a notebook's headline numbers in results.json
    compare     the one way to compare two systems: paired interval, verdict, sentence
    downstream  the genre probe every pretraining notebook reports beside random init
    stored      `sslm-lab execute`: stored outputs stamped with the code that made them
    recipes     pretrained encoders: one table row per objective, on any corpus
    reproduce   `sslm-lab reproduce`: every notebook through papermill, a results table
    cli         the `sslm-lab` command
    env         the machine and package versions a result was measured with
    widgets/    interactive views over pure functions, one module per notebook topic
    viz/        matplotlib figures, one module per notebook topic
    display     visible tokens and figures as PNG, shared by widgets and viz

This is the top layer: it may use every other part of sslm_lab, and none uses it.
"""
