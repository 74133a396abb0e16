"""The Dagster definitions, one folder per concern; `dagster_project.definitions` loads them all.

Every module here defines its own assets, checks, jobs, schedules or sensors at module level, and
`load_from_defs_folder` collects them. The plain code they run (science, warehouse, tracking,
privacy) lives outside this folder and never imports from it.
"""
