"""Data-quality gates: Great Expectations suites (`expectations/`) run as blocking Dagster asset checks.

`dagster_project.defs.quality.checks` holds the checks: `quality_checks` gate the warehouse,
`persona_quality_checks` the persona tables;
`gx_runner.build_data_docs(home)` renders the suites and their results under `$PERSONAS_HOME/gx/`.
"""
